"""The runtime walks a custom lifecycle: moved between statuses, a run passes every
named state on its way, and each one is in its history (memory and SQLite stores)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import runlife
from runlife import AsyncRuntime, Lifecycle, Retry, RunContext, Status
from runlife.abc import Clock, Store
from runlife.stores import MemoryStore, open_store
from runlife.testing import VirtualClock

from .conftest import T0

pytestmark = pytest.mark.anyio

TASKS = Lifecycle(
    "tasks",
    {
        "IDLE": "PENDING",
        "ACTIVE": "QUEUED",
        "TRIGGER": "QUEUED",
        "STARTED": "RUNNING",
        "RUNNING": "RUNNING",
        "BACKOFF": "RETRYING",
        "SUCCESS": "SUCCEEDED",
        "FAILED": "FAILED",
        "TERMINATED": "CANCELLED",
    },
    {
        "IDLE": ["ACTIVE", "TERMINATED"],
        "ACTIVE": ["TRIGGER", "TERMINATED"],
        "TRIGGER": ["STARTED", "TERMINATED"],
        "STARTED": ["RUNNING", "FAILED", "TERMINATED"],
        "RUNNING": ["SUCCESS", "BACKOFF", "FAILED", "TERMINATED"],
        "BACKOFF": ["ACTIVE", "FAILED", "TERMINATED"],
    },
)


@pytest.fixture(params=["memory", "sqlite"])
async def where(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Store, Clock | None]]:
    """A store and the runtime's clock: memory in virtual time, SQLite in real time
    (its leases are judged by the database's clock)."""
    if request.param == "memory":
        clock = VirtualClock(start=T0)
        async with MemoryStore(clock=clock) as memory:
            yield memory, clock
    else:
        async with open_store(f"sqlite:///{tmp_path / 'runs.db'}") as sqlite:
            yield sqlite, None


async def test_every_state_of_the_tasks_lifecycle_is_in_the_history(
    where: tuple[Store, Clock | None],
) -> None:
    store, clock = where

    @runlife.job(lifecycle=TASKS)
    async def promote(ctx: RunContext, release: str) -> str:
        assert ctx.state == "STARTED"
        await ctx.set_state("RUNNING")
        return f"promoted {release}"

    async with AsyncRuntime(jobs=[promote], store=store, clock=clock, worker_id="w1") as rt:
        run = await rt.wait((await rt.submit(promote, params={"release": "2026.3"})).id)
    assert run.result == "promoted 2026.3"
    assert [(t.from_, t.to, t.reason) for t in run.history] == [
        ("IDLE", "ACTIVE", "submitted (adhoc)"),
        ("ACTIVE", "TRIGGER", "claimed by w1"),
        ("TRIGGER", "STARTED", "claimed by w1"),
        ("STARTED", "RUNNING", "set by the job"),
        ("RUNNING", "SUCCESS", "attempt 1 succeeded"),
    ]
    assert run.version == 4  # created QUEUED at version 0, then one version per move
    assert TASKS.replay(run.history, TASKS.initial) == "SUCCESS"
    assert [a.outcome for a in run.attempts] == ["succeeded"]
    assert await store.get_run(run.id) == run


async def test_a_retried_run_walks_on_each_move_of_the_runtime(
    where: tuple[Store, Clock | None],
) -> None:
    """The job fails in STARTED (no move to BACKOFF there): the worker walks it
    through RUNNING; the mover queues it into ACTIVE; the next claim walks it
    through TRIGGER again."""
    store, clock = where

    @runlife.job(lifecycle=TASKS, retry=Retry(max_attempts=2, delay=0))
    async def promote(ctx: RunContext) -> int:
        if ctx.attempt == 1:
            raise ConnectionRefusedError("no route to host")
        return ctx.attempt

    async with AsyncRuntime(jobs=[promote], store=store, clock=clock, worker_id="w1") as rt:
        run = await rt.wait((await rt.submit(promote)).id)
    assert run.result == 2
    failed = "attempt 1 of 2 failed (error ConnectionRefusedError); retrying in 0 s"
    assert [(t.from_, t.to, t.reason) for t in run.history] == [
        ("IDLE", "ACTIVE", "submitted (adhoc)"),
        ("ACTIVE", "TRIGGER", "claimed by w1"),
        ("TRIGGER", "STARTED", "claimed by w1"),
        ("STARTED", "RUNNING", failed),
        ("RUNNING", "BACKOFF", failed),
        ("BACKOFF", "ACTIVE", "retry delay over"),
        ("ACTIVE", "TRIGGER", "claimed by w1"),
        ("TRIGGER", "STARTED", "claimed by w1"),
        ("STARTED", "RUNNING", "attempt 2 succeeded"),
        ("RUNNING", "SUCCESS", "attempt 2 succeeded"),
    ]
    assert [a.outcome for a in run.attempts] == ["error", "succeeded"]


async def test_a_run_cancelled_while_queued_ends_in_its_cancelled_state(
    where: tuple[Store, Clock | None],
) -> None:
    store, clock = where

    @runlife.job(lifecycle=TASKS)
    async def promote(ctx: RunContext) -> None:
        return None

    async with AsyncRuntime(store=store, clock=clock) as rt:
        await store.save_job(promote.to_record())
        run = await rt.submit("promote")
        cancelled = await rt.cancel(run.id, reason="not needed")
    assert [(t.from_, t.to) for t in cancelled.history] == [
        ("IDLE", "ACTIVE"),
        ("ACTIVE", "TERMINATED"),
    ]
    assert cancelled.status is Status.CANCELLED


DIRECT = Lifecycle(
    "direct",
    {"IDLE": "PENDING", "BOOT": "RUNNING", "UP": "RUNNING", "OK": "SUCCEEDED", "KO": "FAILED",
     "STOP": "CANCELLED"},
    {"IDLE": ["BOOT", "STOP"], "BOOT": ["UP", "KO"], "UP": ["OK", "KO"]},
    entries={"RUNNING": "UP"},
)  # fmt: skip


async def test_a_run_started_without_queueing_walks_into_running(
    where: tuple[Store, Clock | None],
) -> None:
    """``queued=False``: the store's claim of the PENDING run walks IDLE -> BOOT -> UP."""
    store, clock = where

    @runlife.job(lifecycle=DIRECT, queued=False)
    async def promote(ctx: RunContext) -> str:
        return ctx.state

    async with AsyncRuntime(jobs=[promote], store=store, clock=clock, worker_id="w1") as rt:
        run = await rt.wait((await rt.submit(promote)).id)
    assert run.result == "UP"
    assert [(t.from_, t.to, t.reason) for t in run.history] == [
        ("IDLE", "BOOT", "claimed by w1"),
        ("BOOT", "UP", "claimed by w1"),
        ("UP", "OK", "attempt 1 succeeded"),
    ]
