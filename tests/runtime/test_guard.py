"""The store guard: store calls keep virtual time still, and outages are ridden out."""

from __future__ import annotations

import time
from typing import Any, cast

import anyio
import pytest
from structlog.testing import capture_logs

import runlife
from runlife import AsyncRuntime, Retry, Run, RunContext, SchemaMismatch, Status, StoreError
from runlife._runtime.guard import StoreGuard
from runlife.abc import Store
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from .conftest import T0, at

pytestmark = pytest.mark.anyio


class Flaky:
    """A memory store whose chosen methods fail with StoreError while ``down``."""

    def __init__(self, store: MemoryStore, *methods: str) -> None:
        self._store = store
        self._methods = set(methods)
        self.down = False
        self.failures = 0
        self.lose_replies = 0
        self.failed_at: list[Any] = []
        self.up_after: int | None = None

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if name not in self._methods:
            return target
        store = self

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                self.failures += 1
                self.failed_at.append(store.clock_now())
                if self.failures == self.up_after:
                    self.down = False
                raise StoreError("connection refused")
            result = await target(*args, **kwargs)
            if self.lose_replies:
                self.lose_replies -= 1
                self.failures += 1
                raise StoreError("connection reset after the commit")
            return result

        return call

    def clock_now(self) -> Any:
        return self._store._clock.now()


async def test_an_outage_is_ridden_out_and_logged(clock: VirtualClock, store: MemoryStore) -> None:
    """While the store refuses writes for two minutes, the outcome of an attempt is
    retried with backoff, said in the log, and written once the store is back."""
    flaky = Flaky(store, "update_run")

    @runlife.job
    async def work(ctx: RunContext) -> str:
        flaky.down = True
        return "done"

    with capture_logs() as logs:
        async with AsyncRuntime(jobs=[work], store=cast(Store, flaky), clock=clock) as rt:
            run = await rt.submit(work)

            async def restore() -> None:
                await clock.sleep(120)
                flaky.down = False

            async with anyio.create_task_group() as tg:
                tg.start_soon(restore)
                done = await rt.wait(run.id)
            outages = rt.guard.outages
    assert done.status is Status.SUCCEEDED
    assert done.result == "done"
    assert done.ended_at is not None
    assert done.ended_at == T0  # the outcome's moment, written late
    assert flaky.failures >= 5
    assert outages == 1
    events = [e["event"] for e in logs if e.get("call") == "update_run"]
    assert events[0] == "store unavailable; retrying"
    assert events[-1] == "store available again"
    assert clock.now() >= at(120)


async def test_a_write_whose_reply_was_lost_is_not_written_twice(
    clock: VirtualClock, store: MemoryStore
) -> None:
    run = await store.create_run(Run.create(job="sync", at=clock.now()))
    flaky = Flaky(store, "update_run")
    flaky.lose_replies = 1
    guard = StoreGuard(cast(Store, flaky), clock)
    moved = runlife.DEFAULT_LIFECYCLE.transition(run, Status.QUEUED, at=clock.now())
    stored = await guard.update_run(moved, expected_version=run.version)
    assert stored.version == run.version + 1
    assert [t.to for t in stored.history] == [Status.QUEUED]
    assert flaky.failures == 1


async def test_a_real_conflict_after_an_outage_is_raised(
    clock: VirtualClock, store: MemoryStore
) -> None:
    run = await store.create_run(Run.create(job="sync", at=clock.now()))
    flaky = Flaky(store, "update_run")
    flaky.lose_replies = 1
    guard = StoreGuard(cast(Store, flaky), clock)
    lc = runlife.DEFAULT_LIFECYCLE
    await guard.update_run(lc.transition(run, Status.QUEUED, at=clock.now()), expected_version=0)
    other = lc.transition(run, Status.CANCELLED, at=clock.now())
    with pytest.raises(runlife.ConcurrentUpdate):
        await guard.update_run(other, expected_version=0)


async def test_an_outage_that_ends_in_a_refusal_is_logged_as_over(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """The store came back and refused the write (its run was reaped meanwhile, say):
    the outage is over all the same, and the log says so."""
    run = await store.create_run(Run.create(job="sync", at=clock.now()))
    flaky = Flaky(store, "update_run")
    flaky.down, flaky.up_after = True, 3
    guard = StoreGuard(cast(Store, flaky), clock)
    stale = runlife.DEFAULT_LIFECYCLE.transition(run, Status.QUEUED, at=clock.now())
    with capture_logs() as logs, pytest.raises(runlife.ConcurrentUpdate):
        await guard.update_run(stale, expected_version=run.version + 1)
    assert [(e["event"], e["failures"]) for e in logs] == [
        ("store unavailable; retrying", 1),
        ("store available again", 3),
    ]
    assert guard.outages == 1


async def test_store_calls_keep_virtual_time_still(clock: VirtualClock) -> None:
    """A store call that works in a thread (as SQL stores do) is marked busy: a
    pending virtual deadline does not fire under it."""

    class Slow(MemoryStore):
        async def now(self) -> Any:
            await anyio.to_thread.run_sync(time.sleep, 0.05)
            return await super().now()

    guard = StoreGuard(Slow(clock=clock), clock)
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.sleep, 60)
        assert await guard.now() == T0
        assert clock.now() == T0
    assert clock.now() == at(60)


async def test_a_schema_mismatch_is_not_an_outage(clock: VirtualClock) -> None:
    class Foreign(MemoryStore):
        async def now(self) -> Any:
            raise SchemaMismatch("not a runlife database")

    guard = StoreGuard(Foreign(clock=clock), clock)
    with pytest.raises(SchemaMismatch):
        await guard.now()
    assert clock.now() == T0


async def test_retries_back_off_up_to_a_cap(clock: VirtualClock, store: MemoryStore) -> None:
    flaky = Flaky(store, "now")
    flaky.down, flaky.up_after = True, 7
    guard = StoreGuard(cast(Store, flaky), clock, first_delay=1, max_delay=8)
    assert await guard.now() == at(39)
    assert [(t - T0).total_seconds() for t in flaky.failed_at] == [0, 1, 3, 7, 15, 23, 31]


async def test_a_failing_claim_does_not_stop_the_worker(
    clock: VirtualClock, store: MemoryStore
) -> None:
    flaky = Flaky(store, "claim")

    @runlife.job(retry=Retry(max_attempts=1))
    async def job(ctx: RunContext) -> int:
        return 1

    async with AsyncRuntime(jobs=[job], store=cast(Store, flaky), clock=clock) as rt:
        flaky.down = True
        run = await rt.submit(job)
        await clock.sleep(30)
        assert (await rt.get_run(run.id)).status is Status.QUEUED
        flaky.down = False
        done = await rt.wait(run.id)
    assert done.status is Status.SUCCEEDED
