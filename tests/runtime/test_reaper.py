"""The reaper: runs of lost workers are retried by policy; a poison run ends FAILED."""

from __future__ import annotations

import anyio
import pytest

import runlife
from runlife import (
    DEFAULT_LIFECYCLE,
    AsyncRuntime,
    JobRecord,
    JobSpec,
    Retry,
    Run,
    RunContext,
    Status,
)
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from .conftest import at

pytestmark = pytest.mark.anyio


async def test_the_run_of_a_dead_worker_is_retried(clock: VirtualClock, store: MemoryStore) -> None:
    """A claim made directly through the store and never heartbeated: once its lease
    lapses, the reaper fails the attempt as abandoned and the retry runs it."""

    @runlife.job(retry=Retry(max_attempts=2, delay=0))
    async def sync(ctx: RunContext) -> int:
        return ctx.attempt

    await store.save_job(sync.to_record())
    run = await store.create_run(Run.create(job="sync", at=clock.now(), initial=Status.QUEUED))
    await store.claim("dead-worker", {"sync": DEFAULT_LIFECYCLE}, limit=1, lease=30)
    async with AsyncRuntime(jobs=[sync], store=store, clock=clock, lease=30) as rt:
        done = await rt.wait(run.id)
    assert done.status is Status.SUCCEEDED
    assert done.result == 2
    first, second = done.attempts
    assert first.outcome == "abandoned"
    assert first.error is not None
    assert first.error.message == (
        "attempt 1 was abandoned: its worker's lease lapsed without a heartbeat"
    )
    # Reaped within lease + reaper interval (a third of the lease).
    assert first.ended_at is not None
    assert at(30) <= first.ended_at <= at(40)
    assert second.started_at == first.ended_at


async def test_a_live_worker_is_not_reaped(clock: VirtualClock, store: MemoryStore) -> None:
    @runlife.job
    async def long(ctx: RunContext) -> str:
        await clock.sleep(600)
        return "ok"

    async with AsyncRuntime(jobs=[long], store=store, clock=clock, lease=30) as rt:
        done = await rt.wait((await rt.submit(long)).id)
    assert done.status is Status.SUCCEEDED
    assert [a.outcome for a in done.attempts] == ["succeeded"]


async def test_a_poison_run_ends_failed_after_its_budget(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A run whose worker dies every time: a reaper in a runtime that does not have
    the job (its policy comes from the stored spec) ends it FAILED, kind abandoned,
    after three attempts."""
    spec = JobSpec(retry=Retry(max_attempts=3, delay=5))
    await store.save_job(JobRecord(name="oom", spec=spec.to_spec()))
    run = await store.create_run(Run.create(job="oom", at=clock.now(), initial=Status.QUEUED))
    claims = 0

    async def dying_worker() -> None:
        nonlocal claims
        while True:
            if await store.claim("doomed", {"oom": DEFAULT_LIFECYCLE}, limit=1, lease=30):
                claims += 1
            await clock.sleep(1)

    async with AsyncRuntime(store=store, clock=clock) as rt, anyio.create_task_group() as tg:
        tg.start_soon(dying_worker)
        done = await rt.wait(run.id)
        tg.cancel_scope.cancel()
    assert claims == 3
    assert done.status is Status.FAILED
    assert done.error is not None
    assert done.error.kind == "abandoned"
    assert [a.outcome for a in done.attempts] == ["abandoned"] * 3
    assert "no attempts left" in (done.history[-1].reason or "")


async def test_retry_abandoned_false_fails_at_once(clock: VirtualClock, store: MemoryStore) -> None:
    spec = JobSpec(retry=Retry(max_attempts=3, retry_abandoned=False))
    await store.save_job(JobRecord(name="transfer", spec=spec.to_spec()))
    run = await store.create_run(Run.create(job="transfer", at=clock.now(), initial=Status.QUEUED))
    await store.claim("gone", {"transfer": DEFAULT_LIFECYCLE}, limit=1, lease=30)
    async with AsyncRuntime(store=store, clock=clock) as rt:
        done = await rt.wait(run.id)
    assert done.status is Status.FAILED
    assert done.attempt == 1
    assert "retry_abandoned=False" in (done.history[-1].reason or "")
