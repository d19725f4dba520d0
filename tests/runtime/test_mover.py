"""The mover: retry delays and start times end on time; queue waits have a limit."""

from __future__ import annotations

import anyio
import pytest

import runlife
from runlife import DEFAULT_LIFECYCLE, AsyncRuntime, Retry, Run, RunContext, Status, Timeout
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from .conftest import at

pytestmark = pytest.mark.anyio


async def test_a_retry_delay_ends_on_time(clock: VirtualClock, store: MemoryStore) -> None:
    @runlife.job(retry=Retry(max_attempts=3, delay=45))
    async def once_broken(ctx: RunContext) -> int:
        if ctx.attempt == 1:
            raise OSError("link down")
        return ctx.attempt

    async with AsyncRuntime(jobs=[once_broken], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(once_broken)).id)
    assert run.result == 2
    retrying, queued = run.history[2], run.history[3]
    assert (retrying.to, retrying.at) == (Status.RETRYING, at(0))
    assert (queued.to, queued.at, queued.reason) == (Status.QUEUED, at(45), "retry delay over")
    assert run.attempts[1].started_at == at(45)


async def test_a_queued_run_past_its_limit_is_cancelled_as_timeout(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A run that waits in QUEUED longer than Timeout(queued=...) is CANCELLED with kind
    timeout (QUEUED cannot fail); the runtime here does not have the job, so the run
    is never claimed."""
    spec = runlife.JobSpec(timeout=Timeout(queued=600))
    await store.save_job(runlife.JobRecord(name="report", spec=spec.to_spec()))
    async with AsyncRuntime(store=store, clock=clock) as rt:
        run = await rt.submit("report")
        assert run.due_at == at(600)
        done = await rt.wait(run.id)
    assert done.status is Status.CANCELLED
    assert done.ended_at == at(600)
    assert done.error is not None
    assert done.error.kind == "timeout"
    assert done.error.message == "the run waited in QUEUED longer than its timeout of 600 s"


async def test_a_claimed_run_is_not_cancelled_by_its_queue_limit(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job(timeout=Timeout(queued=60))
    async def quick(ctx: RunContext) -> str:
        await clock.sleep(120)
        return "ok"

    async with AsyncRuntime(jobs=[quick], store=store, clock=clock) as rt:
        done = await rt.wait((await rt.submit(quick)).id)
    assert done.status is Status.SUCCEEDED
    assert done.due_at is None


async def test_due_runs_of_other_processes_are_moved(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A RETRYING run left by another process is queued again when its delay ends,
    found by the mover's poll."""
    await store.save_job(runlife.JobRecord(name="sync", spec=runlife.JobSpec().to_spec()))
    run = await store.create_run(Run.create(job="sync", at=clock.now(), initial=Status.QUEUED))
    (claim,) = await store.claim("elsewhere", {"sync": DEFAULT_LIFECYCLE}, limit=1, lease=300)
    failed = DEFAULT_LIFECYCLE.transition(claim.run, Status.RETRYING, at=clock.now(), due_at=at(30))
    await store.update_run(failed, expected_version=claim.run.version, claim=claim)
    async with AsyncRuntime(store=store, clock=clock, poll=5) as rt:
        await clock.sleep(40)
        moved = await rt.get_run(run.id)
    assert moved.status is Status.QUEUED
    assert moved.queued_at == at(30)


async def test_two_movers_move_a_run_once(clock: VirtualClock, store: MemoryStore) -> None:
    await store.save_job(runlife.JobRecord(name="sync", spec=runlife.JobSpec().to_spec()))
    async with (
        AsyncRuntime(store=store, clock=clock) as one,
        AsyncRuntime(store=store, clock=clock) as two,
    ):
        run = await one.submit("sync", at=at(100))
        await clock.sleep(200)
        moved = await two.get_run(run.id)
    assert moved.status is Status.QUEUED
    assert [t.to for t in moved.history] == [Status.QUEUED]
    assert moved.version == 1


async def test_hints_wake_the_mover_between_polls(clock: VirtualClock, store: MemoryStore) -> None:
    """With a long poll, a retry delay still ends on time: the worker tells the mover."""

    @runlife.job(retry=Retry(max_attempts=2, delay=7))
    async def flaky(ctx: RunContext) -> None:
        if ctx.attempt == 1:
            raise OSError("once")
        await anyio.lowlevel.checkpoint()

    async with AsyncRuntime(jobs=[flaky], store=store, clock=clock, poll=3600) as rt:
        run = await rt.wait((await rt.submit(flaky)).id)
    assert run.attempts[1].started_at == at(7)
