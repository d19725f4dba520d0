"""RunContext: what a job function knows and says; custom lifecycle states."""

from __future__ import annotations

import anyio
import anyio.from_thread
import pytest
import structlog
from structlog.testing import capture_logs

import runlife
from runlife import AsyncRuntime, InvalidTransition, Lifecycle, RunContext, Status
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from .conftest import T0

pytestmark = pytest.mark.anyio

TASKS = Lifecycle(
    "tasks",
    {
        "IDLE": "PENDING",
        "TRIGGER": "QUEUED",
        "STARTED": "RUNNING",
        "RUNNING": "RUNNING",
        "SUCCESS": "SUCCEEDED",
        "FAILED": "FAILED",
        "TERMINATED": "CANCELLED",
    },
    {
        "IDLE": ["TRIGGER"],
        "TRIGGER": ["STARTED", "TERMINATED"],
        "STARTED": ["RUNNING", "FAILED", "TERMINATED"],
        "RUNNING": ["SUCCESS", "FAILED", "TERMINATED"],
    },
)


async def test_the_context_describes_the_attempt(clock: VirtualClock, store: MemoryStore) -> None:
    seen: dict[str, object] = {}

    @runlife.job
    async def look(ctx: RunContext, device: str) -> None:
        ctx.params["device"] = "changed here only"
        seen.update(
            run_id=ctx.run_id,
            job=ctx.job,
            attempt=ctx.attempt,
            state=ctx.state,
            cancelled=ctx.cancelled,
        )

    async with AsyncRuntime(jobs=[look], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(look, params={"device": "r1"})).id)
    assert seen == {
        "run_id": run.id,
        "job": "look",
        "attempt": 1,
        "state": Status.RUNNING,
        "cancelled": False,
    }
    assert run.params == {"device": "r1"}


async def test_the_log_is_bound_to_run_job_and_attempt_and_stored(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """ctx.log carries the run, job and attempt in its context; its lines are
    stored with the run, and the host's structlog configuration sees none."""
    bound: dict[str, object] = {}

    @runlife.job
    async def talk(ctx: RunContext) -> None:
        bound.update(structlog.get_context(ctx.log))
        ctx.log.info("backing up", host="core-rtr-01")

    with capture_logs() as host:
        async with AsyncRuntime(jobs=[talk], store=store, clock=clock) as rt:
            run = await rt.wait((await rt.submit(talk)).id)
            (line,) = (await rt.logs(run.id)).lines
    assert bound == {"run_id": run.id, "job": "talk", "attempt": 1}
    assert (line.run_id, line.seq, line.at, line.attempt) == (run.id, 1, T0, 1)
    assert (line.stream, line.level, line.message, line.item) == ("log", "info", "backing up", None)
    assert line.fields == {"host": "core-rtr-01"}
    assert [e for e in host if e["event"] == "backing up"] == []


async def test_set_state_moves_within_a_status_and_is_stored(
    clock: VirtualClock, store: MemoryStore
) -> None:
    states: list[str] = []

    @runlife.job(lifecycle=TASKS)
    async def task(ctx: RunContext) -> None:
        states.append(ctx.state)
        await ctx.set_state("RUNNING")
        states.append(ctx.state)
        states.append((await store.get_run(ctx.run_id)).state)
        with pytest.raises(InvalidTransition) as caught:
            await ctx.set_state("SUCCESS")  # another status: the runtime's move
        assert caught.value.allowed == frozenset()

    async with AsyncRuntime(jobs=[task], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(task)).id)
    assert states == ["STARTED", "RUNNING", "RUNNING"]
    assert run.state == "SUCCESS"
    assert [t.to for t in run.history] == ["TRIGGER", "STARTED", "RUNNING", "SUCCESS"]
    assert run.history[2].reason == "set by the job"


async def test_a_failure_in_a_lifecycle_without_retrying_fails_the_run(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job(lifecycle=TASKS, retry=runlife.Retry(max_attempts=3))
    async def task(ctx: RunContext) -> None:
        raise RuntimeError("device offline")

    async with AsyncRuntime(jobs=[task], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(task)).id)
    assert run.state == "FAILED"
    assert run.error is not None
    assert run.error.message == "device offline"
    assert "cannot retry" in (run.history[-1].reason or "")


async def test_a_thread_sets_state_through_anyio(clock: VirtualClock, store: MemoryStore) -> None:
    @runlife.job(lifecycle=TASKS)
    def task(ctx: RunContext) -> None:
        anyio.from_thread.run(ctx.set_state, "RUNNING")
        ctx.warn("set from a thread")

    async with AsyncRuntime(jobs=[task], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(task)).id)
    assert [t.to for t in run.history] == ["TRIGGER", "STARTED", "RUNNING", "SUCCESS"]
    assert run.warnings == ("set from a thread",)


async def test_warn_refuses_what_is_not_text(clock: VirtualClock, store: MemoryStore) -> None:
    @runlife.job
    async def bad(ctx: RunContext) -> None:
        ctx.warn(42)  # type: ignore[arg-type]

    async with AsyncRuntime(jobs=[bad], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(bad)).id)
    assert run.status is Status.FAILED
    assert run.error is not None
    assert run.error.type == "InvalidValue"
