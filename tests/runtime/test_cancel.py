"""Cancel across runtimes: at once by compare-and-set, or by a stored request that
the holding runtime honours within one heartbeat round.

The first tests run in virtual time over one MemoryStore shared by two runtime
objects (a runtime holds the run, another cancels it). The last ones run in real
time with two runtime objects over one SQLite file and over one PostgreSQL
database, each runtime with its own store object, as two processes would.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

import anyio
import pytest
from structlog.testing import capture_logs

import runlife
from runlife import DEFAULT_LIFECYCLE, AsyncRuntime, Retry, RunContext, Status
from runlife._runtime.jobs import to_cancelled
from runlife.exceptions import InvalidValue
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from .conftest import at

pytestmark = pytest.mark.anyio


def sleeper(stopped: list[datetime], clock: VirtualClock) -> runlife.Job:
    @runlife.job(name="sync_devices", retry=Retry(max_attempts=3, delay=0))
    async def sync_devices(ctx: RunContext) -> str:
        try:
            await anyio.sleep_forever()
        finally:
            stopped.append(clock.now())
        return "never"

    return sync_devices


# -- in virtual time ------------------------------------------------------------------


async def test_a_run_held_by_another_runtime_is_cancelled_within_one_heartbeat(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """The holder (lease 30: a heartbeat round every 10 s) reads the request stored
    at 02:00:01 in its round at 02:00:10, cancels the attempt through its cancel
    scope and records CANCELLED with the request's reason and who asked; the
    canceller's call returns then."""
    stopped: list[datetime] = []
    job = sleeper(stopped, clock)
    async with AsyncRuntime(jobs=[job], store=store, clock=clock, lease=30) as holder:
        run = await holder.submit(job)
        await clock.sleep(1)
        assert (await holder.get_run(run.id)).status is Status.RUNNING
        async with AsyncRuntime(store=store, clock=clock, worker_id="canceller") as other:
            cancelled = await other.cancel(run.id, "wrong device", by="ops:ana")
            assert clock.now() == at(10)
        assert await holder.get_run(run.id) == cancelled
    assert stopped == [at(10)]
    assert cancelled.status is Status.CANCELLED
    assert cancelled.ended_at == at(10)
    assert cancelled.error is not None
    assert (cancelled.error.kind, cancelled.error.type, cancelled.error.message) == (
        "cancelled",
        "Cancelled",
        "cancelled by ops:ana: wrong device",
    )
    assert cancelled.history[-1].reason == "cancelled by ops:ana: wrong device"
    assert [a.outcome for a in cancelled.attempts] == ["cancelled"]
    assert await store.cancel_requests([run.id]) == {
        run.id: runlife.CancelRequest(run_id=run.id, by="ops:ana", reason="wrong device", at=at(1))
    }


async def test_who_asked_is_the_cancelling_runtime_unless_given(
    clock: VirtualClock, store: MemoryStore
) -> None:
    stopped: list[datetime] = []
    job = sleeper(stopped, clock)
    async with AsyncRuntime(jobs=[job], store=store, clock=clock, lease=30) as holder:
        run = await holder.submit(job)
        await clock.sleep(1)
        async with AsyncRuntime(store=store, clock=clock, worker_id="host-b:7") as other:
            cancelled = await other.cancel(run.id)
    assert cancelled.error is not None
    assert cancelled.error.message == "cancelled by host-b:7"


async def test_cancel_without_waiting_returns_once_the_request_is_stored(
    clock: VirtualClock, store: MemoryStore
) -> None:
    stopped: list[datetime] = []
    job = sleeper(stopped, clock)
    async with AsyncRuntime(jobs=[job], store=store, clock=clock, lease=30) as holder:
        run = await holder.submit(job)
        await clock.sleep(1)
        async with AsyncRuntime(store=store, clock=clock) as other:
            asked = await other.cancel(run.id, "stop", by="ops:ana", wait=False)
            assert (asked.status, clock.now()) == (Status.RUNNING, at(1))
            again = await other.cancel(run.id, "later", by="ops:bob", wait=False)
            assert again.status is Status.RUNNING
            done = await other.wait(run.id)
    assert done.status is Status.CANCELLED
    assert done.ended_at == at(10)
    assert done.error is not None
    assert done.error.message == "cancelled by ops:ana: stop"  # the first request stands


async def test_a_queued_run_is_cancelled_at_once_from_another_runtime(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A QUEUED run nobody holds is cancelled by compare-and-set, no request stored."""
    job = sleeper([], clock)
    await store.save_job(job.to_record())
    async with AsyncRuntime(store=store, clock=clock) as other:
        run = await other.submit("sync_devices")
        await clock.sleep(5)
        cancelled = await other.cancel(run.id, "not needed", by="ops:ana")
        assert clock.now() == at(5)
    assert cancelled.status is Status.CANCELLED
    assert cancelled.attempts == ()
    assert cancelled.error is not None
    assert cancelled.error.message == "cancelled by ops:ana: not needed"
    assert [t.to for t in cancelled.history] == [Status.QUEUED, Status.CANCELLED]
    assert await store.cancel_requests([run.id]) == {}


async def test_a_run_whose_holder_was_lost_is_cancelled_by_the_reaper(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A run claimed by a process that then died carries the request until its
    lease lapses; the reaper then ends it CANCELLED instead of retrying it."""
    job = sleeper([], clock)
    await store.save_job(job.to_record())
    await store.create_run(
        runlife.Run.create(job="sync_devices", at=clock.now(), initial=Status.QUEUED)
    )
    (claim,) = await store.claim("lost", {"sync_devices": DEFAULT_LIFECYCLE}, limit=1, lease=30)
    async with AsyncRuntime(store=store, clock=clock, lease=30) as other:
        cancelled = await other.cancel(claim.run_id, "host is gone", by="ops:ana")
    assert cancelled.status is Status.CANCELLED
    assert cancelled.ended_at == at(30)  # the lease lapsed at 02:00:30, the reaper's tick
    assert cancelled.error is not None
    assert cancelled.error.message == "cancelled by ops:ana: host is gone"
    assert [a.outcome for a in cancelled.attempts] == ["cancelled"]


async def test_an_attempt_that_fails_while_a_request_stands_is_not_retried(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A request stored between two heartbeat rounds, then a failure of the attempt:
    the run ends CANCELLED, not RETRYING (its retry budget is not used)."""

    @runlife.job(retry=Retry(max_attempts=3, delay=0))
    async def flaky(ctx: RunContext) -> None:
        await clock.sleep(5)
        raise ConnectionError("no route to host")

    async with AsyncRuntime(jobs=[flaky], store=store, clock=clock, lease=30) as rt:
        run = await rt.submit(flaky)
        await clock.sleep(1)
        assert await store.request_cancel(run.id, by="ops:ana", reason="stop") is not None
        done = await rt.wait(run.id)
    assert done.status is Status.CANCELLED
    assert done.ended_at == at(5)
    assert done.error is not None
    assert done.error.message == "cancelled by ops:ana: stop"
    assert [a.outcome for a in done.attempts] == ["cancelled"]


async def test_a_run_that_succeeded_before_its_holder_saw_the_request_stays_succeeded(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job
    async def quick(ctx: RunContext) -> str:
        await clock.sleep(5)
        return "done"

    async with AsyncRuntime(jobs=[quick], store=store, clock=clock, lease=30) as rt:
        run = await rt.submit(quick)
        await clock.sleep(1)
        assert await store.request_cancel(run.id, by="ops:ana") is not None
        done = await rt.wait(run.id)
        assert await rt.cancel(run.id) == done
    assert (done.status, done.result) == (Status.SUCCEEDED, "done")


async def test_an_outcome_of_a_run_cancelled_over_its_holder_is_not_written(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A run ended CANCELLED by another writer (its hold is gone) while its attempt
    was finishing: the attempt's result is not written, and the worker says the run
    was cancelled elsewhere (no warning)."""

    @runlife.job
    async def quick(ctx: RunContext) -> str:
        await clock.sleep(5)
        return "done"

    with capture_logs() as logs:
        async with AsyncRuntime(jobs=[quick], store=store, clock=clock, lease=30) as rt:
            run = await rt.submit(quick)
            await clock.sleep(1)
            running = await store.get_run(run.id)
            ended = to_cancelled(running, DEFAULT_LIFECYCLE, at=clock.now(), message="by x")
            cancelled = await store.update_run(ended, expected_version=running.version)
            await clock.sleep(10)
            final = await rt.get_run(run.id)
    assert final == cancelled
    assert final.result is None
    said = [(e["event"], e["log_level"]) for e in logs if e.get("run_id") == run.id]
    assert said == [
        ("the run was cancelled elsewhere; the attempt's outcome was not written", "info")
    ]


async def test_cancel_refuses_a_reason_or_asker_that_is_not_text(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(store=store, clock=clock) as rt:
        with pytest.raises(InvalidValue, match="reason=5"):
            await rt.cancel("any", reason=5)  # type: ignore[arg-type]
        with pytest.raises(InvalidValue, match="by=''"):
            await rt.cancel("any", by="")


# -- in real time, two runtime objects over one SQLite file or PostgreSQL database ----

LEASE = 1.5
"""The holder renews its leases, and reads cancel requests, every 0.5 s."""


async def _running(rt: AsyncRuntime, run_id: str) -> None:
    with anyio.fail_after(10):
        while (await rt.get_run(run_id)).status is not Status.RUNNING:
            await anyio.sleep(0.01)


async def test_a_run_held_by_another_runtime_is_cancelled_within_a_heartbeat_round(
    url: str,
) -> None:
    stopped = threading.Event()

    @runlife.job
    async def sync_devices(ctx: RunContext) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            stopped.set()

    async with AsyncRuntime(jobs=[sync_devices], store=url, lease=LEASE) as holder:
        run = await holder.submit(sync_devices)
        await _running(holder, run.id)
        async with AsyncRuntime(store=url, lease=LEASE, poll=0.1) as other:
            started = time.monotonic()
            cancelled = await other.cancel(run.id, "wrong device", by="ops:ana")
            took = time.monotonic() - started
        assert await holder.get_run(run.id) == cancelled
    assert stopped.is_set()
    assert cancelled.status is Status.CANCELLED
    assert cancelled.error is not None
    assert cancelled.error.message == "cancelled by ops:ana: wrong device"
    assert [a.outcome for a in cancelled.attempts] == ["cancelled"]
    # One heartbeat round is LEASE / 3; the rest is slack for a loaded machine. The
    # holder's lease never lapsed: the reaper had no part in it.
    assert took < LEASE, f"the cancel took {took:.2f} s"


async def test_a_queued_run_is_cancelled_at_once_over_a_shared_store(url: str) -> None:
    @runlife.job(name="later")
    async def later(ctx: RunContext) -> None:
        return None

    async with AsyncRuntime(store=url, lease=LEASE) as other:
        await other.store.save_job(later.to_record())
        run = await other.submit("later")  # no runtime has the job: it stays QUEUED
        cancelled = await other.cancel(run.id, "not needed", by="ops:ana")
    assert cancelled.status is Status.CANCELLED
    assert cancelled.attempts == ()
    assert cancelled.error is not None
    assert cancelled.error.message == "cancelled by ops:ana: not needed"


async def test_a_thread_attempt_held_elsewhere_stops_through_ctx_cancelled(url: str) -> None:
    """A thread cannot be interrupted: the holder tells it through ctx.cancelled,
    records the run CANCELLED at once, and says the thread is still running (it
    is: it finishes its step only after the cancel returned)."""
    started, saw_cancel, step_done = threading.Event(), threading.Event(), threading.Event()

    @runlife.job
    def copy_files(ctx: RunContext) -> str:
        started.set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if ctx.cancelled:
                saw_cancel.set()
                step_done.wait(10)  # the step under way ends, then the function stops
                return "stopped"
            time.sleep(0.01)
        return "copied"

    async with AsyncRuntime(jobs=[copy_files], store=url, lease=LEASE, grace=0) as holder:
        run = await holder.submit(copy_files)
        await _running(holder, run.id)
        with anyio.fail_after(10):
            while not started.is_set():
                await anyio.sleep(0.01)
        async with AsyncRuntime(store=url, lease=LEASE, poll=0.1) as other:
            started_at = time.monotonic()
            try:
                cancelled = await other.cancel(run.id, "disk full", by="ops:ana")
            finally:
                step_done.set()
            took = time.monotonic() - started_at
    assert cancelled.status is Status.CANCELLED
    assert cancelled.error is not None
    assert cancelled.error.message == (
        "cancelled by ops:ana: disk full; its thread could not be interrupted and is still running"
    )
    assert cancelled.attempts[-1].error == cancelled.error
    assert saw_cancel.wait(5)
    assert took < LEASE, f"the cancel took {took:.2f} s"
