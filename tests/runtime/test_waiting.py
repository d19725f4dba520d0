"""Waiting for people and systems: ``ctx.wait_for`` and the WAITING status, in
virtual time, under asyncio and trio."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import anyio
import anyio.from_thread
import pytest

import runlife
from runlife import AsyncRuntime, Lifecycle, Retry, Run, RunContext, Status, Timeout
from runlife.exceptions import StoreError
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from .conftest import at

pytestmark = pytest.mark.anyio

HOUR = 3600


def moves(run: Run) -> list[tuple[str, datetime, str | None]]:
    """The run's history as (state entered, when, why)."""
    return [(t.to, t.at, t.reason) for t in run.history]


def states(run: Run) -> list[str]:
    return [t.to for t in run.history]


async def until(
    clock: VirtualClock, rt: AsyncRuntime, run_id: str, check: Callable[[Run], bool]
) -> Run:
    """The run once *check* holds, looking every virtual second."""
    while not check(run := await rt.get_run(run_id)):
        await clock.sleep(1)
    return run


async def test_an_approval_two_hours_later_resumes_the_run(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """RUNNING -> WAITING (reason naming the signal) -> RUNNING when the signal comes
    two hours later, with its payload; the attempt stays alive (one attempt, never
    reaped with a 30 s lease), and neither its 300 s attempt timeout nor its 120 s
    heartbeat limit counts the wait."""

    @runlife.job(timeout=Timeout(attempt=300, heartbeat=120), retry=Retry(max_attempts=3))
    async def deploy(ctx: RunContext, version: str) -> dict[str, Any]:
        await clock.sleep(60)
        approval = await ctx.wait_for("approved", timeout=3 * HOUR)
        await clock.sleep(60)
        return {"version": version, "approved_by": approval["by"]}

    async with AsyncRuntime(jobs=[deploy], store=store, clock=clock, lease=30) as rt:
        run = await rt.submit(deploy, params={"version": "v2"})
        await clock.sleep(HOUR)
        waiting = await rt.get_run(run.id)
        await clock.sleep(HOUR)
        await rt.signal(run.id, "approved", {"by": "ana"})
        done = await rt.wait(run.id)

    assert waiting.status is Status.WAITING
    assert done.status is Status.SUCCEEDED
    assert done.result == {"version": "v2", "approved_by": "ana"}
    assert moves(done) == [
        (Status.QUEUED, at(0), "submitted (adhoc)"),
        (Status.RUNNING, at(0), "claimed by " + rt.worker_id),
        (Status.WAITING, at(60), "waiting for signal 'approved' (timeout 10800 s)"),
        (Status.RUNNING, at(2 * HOUR), "signal 'approved' received"),
        (Status.SUCCEEDED, at(2 * HOUR + 60), "attempt 1 succeeded"),
    ]
    assert [(a.number, a.outcome) for a in done.attempts] == [(1, "succeeded")]


async def test_a_signal_sent_before_the_wait_returns_at_once(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A stored signal is found at once: no WAITING at all. It stays stored, so a
    second wait for it returns the same payload."""

    @runlife.job
    async def release(ctx: RunContext) -> list[Any]:
        await clock.sleep(60)
        first = await ctx.wait_for("go", timeout=10)
        again = await ctx.wait_for("go")
        return [first, again]

    async with AsyncRuntime(jobs=[release], store=store, clock=clock) as rt:
        run = await rt.submit(release)
        await clock.sleep(30)
        await rt.signal(run.id, "go", {"window": "02:00-04:00"})
        done = await rt.wait(run.id)

    assert done.status is Status.SUCCEEDED
    assert done.result == [{"window": "02:00-04:00"}] * 2
    assert states(done) == [Status.QUEUED, Status.RUNNING, Status.SUCCEEDED]
    assert done.ended_at == at(60)


async def test_a_wait_that_times_out_fails_the_run_without_a_retry(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """No signal within the wait's timeout: WAITING -> FAILED, kind timeout, the
    message naming the signal and the timeout; the retry budget is not used."""

    @runlife.job(retry=Retry(max_attempts=3, delay=0))
    async def deploy(ctx: RunContext) -> None:
        await ctx.wait_for("approved", timeout=HOUR)

    async with AsyncRuntime(jobs=[deploy], store=store, clock=clock) as rt:
        done = await rt.wait((await rt.submit(deploy)).id)

    assert done.status is Status.FAILED
    assert done.error is not None
    assert (done.error.kind, done.error.type) == ("timeout", "SignalTimeout")
    assert done.error.message == "attempt 1 waited 3600 s for signal 'approved', which did not come"
    assert moves(done)[2:] == [
        (Status.WAITING, at(0), "waiting for signal 'approved' (timeout 3600 s)"),
        (
            Status.FAILED,
            at(HOUR),
            "no signal 'approved' within its wait's timeout of 3600 s; "
            "a wait's timeout is not retried",
        ),
    ]
    assert [a.outcome for a in done.attempts] == ["timeout"]


async def test_the_attempt_timeout_stands_still_while_waiting(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """Timeout(attempt=300): 200 s of work, an hour of waiting, then the attempt
    is cut after 100 s more: 300 s of its own time."""

    @runlife.job(timeout=Timeout(attempt=300))
    async def migrate(ctx: RunContext) -> None:
        await clock.sleep(200)
        await ctx.wait_for("approved")
        await anyio.sleep_forever()

    async with AsyncRuntime(jobs=[migrate], store=store, clock=clock) as rt:
        run = await rt.submit(migrate)
        await clock.sleep(200 + HOUR)
        await rt.signal(run.id, "approved")
        done = await rt.wait(run.id)

    assert done.status is Status.FAILED
    assert done.error is not None
    assert (done.error.kind, done.error.message) == (
        "timeout",
        "attempt 1 exceeded its timeout of 300 s",
    )
    assert [(s, t) for s, t, _ in moves(done)] == [
        (Status.QUEUED, at(0)),
        (Status.RUNNING, at(0)),
        (Status.WAITING, at(200)),
        (Status.RUNNING, at(200 + HOUR)),
        (Status.FAILED, at(300 + HOUR)),
    ]


async def test_the_run_timeout_counts_the_wait(clock: VirtualClock, store: MemoryStore) -> None:
    """Timeout(run=1800) bounds the run's whole life, waits included: the run is
    cut while WAITING."""

    @runlife.job(timeout=Timeout(run=1800))
    async def review(ctx: RunContext) -> None:
        await ctx.wait_for("reviewed")

    async with AsyncRuntime(jobs=[review], store=store, clock=clock) as rt:
        done = await rt.wait((await rt.submit(review)).id)

    assert done.status is Status.FAILED
    assert done.error is not None
    assert (done.error.kind, done.error.message) == (
        "timeout",
        "the run exceeded its timeout of 1800 s",
    )
    assert states(done)[-2:] == [Status.WAITING, Status.FAILED]
    assert done.ended_at == at(1800)


async def test_cancel_while_waiting_ends_the_run_at_once(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """WAITING -> CANCELLED when cancelled, at that moment; the attempt ends
    cleanly (its cleanup ran, its worker holds nothing)."""
    cleaned: list[datetime] = []

    @runlife.job
    async def deploy(ctx: RunContext) -> None:
        try:
            await ctx.wait_for("approved", timeout=24 * HOUR)
        finally:
            cleaned.append(clock.now())

    async with AsyncRuntime(jobs=[deploy], store=store, clock=clock) as rt:
        run = await rt.submit(deploy)
        await clock.sleep(600)
        cancelled = await rt.cancel(run.id, reason="release withdrawn", by="ops:ana")
        held = dict(rt.worker.held)

    assert cancelled.status is Status.CANCELLED
    assert cancelled.error is not None
    assert (cancelled.error.kind, cancelled.error.message) == (
        "cancelled",
        "cancelled by ops:ana: release withdrawn",
    )
    assert moves(cancelled)[2:] == [
        (Status.WAITING, at(0), "waiting for signal 'approved' (timeout 86400 s)"),
        (Status.CANCELLED, at(600), "cancelled by ops:ana: release withdrawn"),
    ]
    assert [a.outcome for a in cancelled.attempts] == ["cancelled"]
    assert cleaned == [at(600)]
    assert held == {}


async def test_cancel_from_another_process_while_waiting(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A runtime without the job cancels a run waiting in another: CANCELLED in the
    store at once; the waiting runtime finds its lease gone at its next heartbeat
    and ends the attempt without writing."""
    cleaned: list[datetime] = []

    @runlife.job
    async def deploy(ctx: RunContext) -> None:
        try:
            await ctx.wait_for("approved")
        finally:
            cleaned.append(clock.now())

    async with AsyncRuntime(jobs=[deploy], store=store, clock=clock, lease=30) as here:
        run = await here.submit(deploy)
        await until(clock, here, run.id, lambda r: r.status is Status.WAITING)
        async with AsyncRuntime(store=store, clock=clock) as there:
            cancelled = await there.cancel(run.id)
        await clock.sleep(10)  # one heartbeat (lease / 3)
        held = dict(here.worker.held)
        final = await here.get_run(run.id)

    assert cancelled.status is Status.CANCELLED
    assert final == cancelled
    assert states(final) == [Status.QUEUED, Status.RUNNING, Status.WAITING, Status.CANCELLED]
    assert len(cleaned) == 1
    assert cleaned[0] <= cancelled.history[-1].at + (at(10) - at(0))
    assert held == {}


class Partitioned:
    """A store this process can be cut off from: while ``down``, every call fails
    with `StoreError`, as a lost network would."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.down = False

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not callable(found):
            return found

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise StoreError("the network is down")
            return await found(*args, **kwargs)

        return call


async def test_a_waiting_run_of_a_lost_worker_is_retried_and_its_wait_returns_at_once(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A runtime loses the store while its run waits; the signal is sent meanwhile.
    Another runtime's reaper ends the attempt as abandoned (WAITING -> RETRYING),
    the retry finds the stored signal at once, and the run succeeds. When the lost
    runtime comes back it writes nothing over it."""
    waits: list[tuple[str, int]] = []

    @runlife.job(retry=Retry(max_attempts=2, delay=0))
    async def deploy(ctx: RunContext) -> str:
        approval = await ctx.wait_for("approved")
        waits.append((ctx.run_id, ctx.attempt))
        return f"approved by {approval['by']}"

    cut_off = Partitioned(store)
    common = {"jobs": [deploy], "clock": clock, "lease": 30}
    async with AsyncRuntime(store=cut_off, worker_id="lost", **common) as lost:  # type: ignore[arg-type]
        run = await lost.submit(deploy)
        await until(clock, lost, run.id, lambda r: r.status is Status.WAITING)
        cut_off.down = True
        async with AsyncRuntime(store=store, worker_id="alive", **common) as alive:
            await alive.signal(run.id, "approved", {"by": "ana"})
            done = await alive.wait(run.id)
        cut_off.down = False
        await clock.sleep(30)  # the lost runtime hears of it: its lease is gone
        held = dict(lost.worker.held)

    assert done.status is Status.SUCCEEDED
    assert done.result == "approved by ana"
    assert states(done) == [
        Status.QUEUED,
        Status.RUNNING,
        Status.WAITING,
        Status.RETRYING,
        Status.QUEUED,
        Status.RUNNING,
        Status.SUCCEEDED,
    ]
    assert done.history[1].reason == "claimed by lost"
    assert done.history[5].reason == "claimed by alive"
    first, second = done.attempts
    assert first.outcome == "abandoned"
    assert first.ended_at is not None
    assert at(30) <= first.ended_at <= at(40)  # within lease + reaper interval
    assert second.started_at == second.ended_at  # its wait returned at once
    assert waits == [(run.id, 2)]
    assert await store.get_run(run.id) == done
    assert held == {}


async def test_a_shutdown_requeues_a_waiting_run_and_the_next_attempt_finds_its_signal(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """Leaving the runtime interrupts a waiting attempt like a running one
    (WAITING -> RETRYING -> QUEUED, no budget spent: one attempt allowed); the next
    runtime's attempt finds the signal sent meanwhile at once."""

    @runlife.job(retry=Retry(max_attempts=1))
    async def deploy(ctx: RunContext) -> Any:
        return await ctx.wait_for("approved")

    async with AsyncRuntime(jobs=[deploy], store=store, clock=clock, grace=10) as rt:
        run = await rt.submit(deploy)
        await until(clock, rt, run.id, lambda r: r.status is Status.WAITING)
    requeued = await store.get_run(run.id)
    await store.send_signal(run.id, "approved", "yes")
    async with AsyncRuntime(jobs=[deploy], store=store, clock=clock) as rt:
        done = await rt.wait(run.id)

    assert states(requeued) == [
        Status.QUEUED,
        Status.RUNNING,
        Status.WAITING,
        Status.RETRYING,
        Status.QUEUED,
    ]
    assert (done.status, done.result) == (Status.SUCCEEDED, "yes")
    assert [a.outcome for a in done.attempts] == ["interrupted", "succeeded"]
    assert states(done)[5:] == [Status.RUNNING, Status.SUCCEEDED]


PROMOTE = Lifecycle(
    "promote",
    {
        "IDLE": "PENDING",
        "NEW": "QUEUED",
        "STARTED": "RUNNING",
        "CHECKING": "RUNNING",
        "ON_HOLD": "WAITING",
        "DONE": "SUCCEEDED",
        "BROKEN": "FAILED",
        "STOPPED": "CANCELLED",
    },
    {
        "IDLE": ["NEW"],
        "NEW": ["STARTED", "STOPPED"],
        "STARTED": ["CHECKING", "BROKEN", "STOPPED"],
        "CHECKING": ["ON_HOLD", "DONE", "BROKEN", "STOPPED"],
        "ON_HOLD": ["STARTED", "CHECKING", "BROKEN", "STOPPED"],
    },
)
NO_WAITING = Lifecycle(
    "plain",
    {"IDLE": "PENDING", "NEW": "QUEUED", "ON": "RUNNING", "OK": "SUCCEEDED", "KO": "FAILED"},
    {"IDLE": ["NEW"], "NEW": ["ON"], "ON": ["OK", "KO"]},
)


async def test_a_custom_lifecycle_returns_to_the_state_it_left(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """In a custom lifecycle the run waits in its WAITING state and comes back to
    the RUNNING state it left; a lifecycle without WAITING cannot wait."""

    @runlife.job(lifecycle=PROMOTE)
    async def promote(ctx: RunContext) -> str:
        await ctx.set_state("CHECKING")
        await ctx.wait_for("go")
        return ctx.state

    @runlife.job(lifecycle=NO_WAITING)
    async def plain(ctx: RunContext) -> None:
        await ctx.wait_for("go")

    async with AsyncRuntime(jobs=[promote, plain], store=store, clock=clock) as rt:
        run = await rt.submit(promote)
        refused = await rt.wait((await rt.submit(plain)).id)
        await clock.sleep(60)
        await rt.signal(run.id, "go")
        done = await rt.wait(run.id)

    assert done.result == "CHECKING"
    assert states(done) == ["NEW", "STARTED", "CHECKING", "ON_HOLD", "CHECKING", "DONE"]
    assert refused.error is not None
    assert refused.error.type == "InvalidTransition"
    assert refused.error.message.endswith("cannot move from ON to WAITING; allowed from ON: KO, OK")
    assert states(refused) == ["NEW", "ON", "KO"]


async def test_a_sync_job_waits_from_its_thread(clock: VirtualClock, store: MemoryStore) -> None:
    """A sync job blocks its thread in ``anyio.from_thread.run(ctx.wait_for, ...)``;
    virtual time moves on meanwhile (the thread is not busy), and the payload
    comes back to the thread."""

    @runlife.job
    def approve(ctx: RunContext, change: str) -> str:
        approval = anyio.from_thread.run(ctx.wait_for, "approved", 4 * HOUR)
        return f"{change} approved by {approval['by']}"

    async with AsyncRuntime(jobs=[approve], store=store, clock=clock) as rt:
        run = await rt.submit(approve, params={"change": "CHG-42"})
        await clock.sleep(2 * HOUR)
        await rt.signal(run.id, "approved", {"by": "ana"})
        done = await rt.wait(run.id)

    assert done.status is Status.SUCCEEDED
    assert done.result == "CHG-42 approved by ana"
    assert [(s, t) for s, t, _ in moves(done)] == [
        (Status.QUEUED, at(0)),
        (Status.RUNNING, at(0)),
        (Status.WAITING, at(0)),
        (Status.RUNNING, at(2 * HOUR)),
        (Status.SUCCEEDED, at(2 * HOUR)),
    ]


async def test_a_sync_job_stopped_while_waiting(clock: VirtualClock, store: MemoryStore) -> None:
    """A cancel (or a timeout) reaches the waiting thread: its wait_for raises, the
    thread unwinds, and the attempt's error does not call it still running."""
    stopped: list[str] = []

    @runlife.job
    def approve(ctx: RunContext, timeout: float | None) -> None:
        try:
            anyio.from_thread.run(ctx.wait_for, "approved", timeout)
        except BaseException as exc:
            stopped.append(type(exc).__name__)
            raise

    async with AsyncRuntime(jobs=[approve], store=store, clock=clock) as rt:
        first = await rt.submit(approve, params={"timeout": None})
        second = await rt.submit(approve, params={"timeout": HOUR})
        await clock.sleep(600)
        cancelled = await rt.cancel(first.id, reason="withdrawn", by="ops:ana")
        timed_out = await rt.wait(second.id)
        await until(clock, rt, second.id, lambda r: len(stopped) == 2)

    assert cancelled.status is Status.CANCELLED
    assert cancelled.error is not None
    assert cancelled.error.message == "cancelled by ops:ana: withdrawn"
    assert states(cancelled)[-2:] == [Status.WAITING, Status.CANCELLED]
    assert timed_out.status is Status.FAILED
    assert timed_out.error is not None
    assert timed_out.error.message == (
        "attempt 1 waited 3600 s for signal 'approved', which did not come"
    )
    assert states(timed_out)[-2:] == [Status.WAITING, Status.FAILED]
    assert stopped == ["AttemptStopped", "AttemptStopped"]


async def test_wait_for_refuses_bad_values(clock: VirtualClock, store: MemoryStore) -> None:
    """An empty signal name or a timeout that is not positive seconds fails the
    attempt with InvalidValue naming the field, before any WAITING."""

    @runlife.job
    async def bad(ctx: RunContext, name: str, timeout: Any) -> None:
        await ctx.wait_for(name, timeout=timeout)

    async with AsyncRuntime(jobs=[bad], store=store, clock=clock) as rt:
        empty = await rt.wait((await rt.submit(bad, params={"name": "", "timeout": 5})).id)
        negative = await rt.wait((await rt.submit(bad, params={"name": "go", "timeout": -1})).id)

    assert empty.error is not None
    assert (empty.error.type, empty.error.message) == (
        "InvalidValue",
        "signal='' is invalid: expected a non-empty str",
    )
    assert negative.error is not None
    assert negative.error.type == "InvalidPolicy"
    assert negative.error.message.startswith("timeout=-1 is invalid")
    assert Status.WAITING not in states(empty) + states(negative)
