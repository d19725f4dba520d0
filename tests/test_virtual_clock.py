"""VirtualClock: autojump in virtual time on asyncio and trio, fast in real time."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from runlife import DEFAULT_LIFECYCLE, Run, Status, SystemClock
from runlife._core.policy import Retry, Timeout, decide_failure
from runlife.abc import Clock
from runlife.testing._clock import VirtualClock

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_both_clocks_are_clocks() -> None:
    assert isinstance(VirtualClock(start=T0), Clock)
    assert isinstance(SystemClock(), Clock)


def test_a_naive_start_is_utc() -> None:
    assert VirtualClock(start=datetime(2026, 3, 10, 2)).now() == T0


async def test_seventeen_virtual_minutes_with_heartbeats_take_well_under_a_second() -> None:
    """A 17-minute sleep beside a 5 s heartbeat (204 jumps) in real milliseconds."""
    clock = VirtualClock(start=T0)
    beats: list[datetime] = []

    async def heartbeat() -> None:
        while True:
            await clock.sleep(5)
            beats.append(clock.now())

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(heartbeat)
        await clock.sleep(17 * 60)
        tg.cancel_scope.cancel()
    elapsed = time.perf_counter() - started
    assert clock.now() == at(17)
    assert len(beats) == 17 * 12
    assert beats == [T0 + timedelta(seconds=5 * (i + 1)) for i in range(len(beats))]
    assert elapsed < 0.5, f"{elapsed:.3f} s of real time"


async def test_sleepers_wake_in_deadline_order() -> None:
    clock = VirtualClock(start=T0)
    woke: list[tuple[float, datetime]] = []
    delays = [30.0, 5.0, 60.0, 5.0, 0.5, 3600.0, 12.25]
    random.Random(7).shuffle(delays)

    async def sleeper(delay: float) -> None:
        await clock.sleep(delay)
        woke.append((delay, clock.now()))

    async with anyio.create_task_group() as tg:
        for delay in delays:
            tg.start_soon(sleeper, delay)
    assert [d for d, _ in woke] == sorted(delays)
    assert all(now == T0 + timedelta(seconds=d) for d, now in woke)


async def test_time_does_not_jump_while_marked_busy() -> None:
    """Work in a thread, marked busy, finishes before the sleeper's deadline comes."""
    clock = VirtualClock(start=T0)
    seen: list[tuple[str, datetime]] = []
    release = threading.Event()

    def work() -> None:
        release.wait(5)

    async def worker() -> None:
        with clock.busy():
            await anyio.to_thread.run_sync(work)
            seen.append(("work done", clock.now()))

    async def sleeper() -> None:
        await clock.sleep(60)
        seen.append(("sleeper woke", clock.now()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker)
        tg.start_soon(sleeper)
        await anyio.sleep(0.05)  # real time: the loop is idle, only the thread works
        assert clock.now() == T0
        release.set()
    assert seen == [("work done", T0), ("sleeper woke", at(1))]


async def test_a_cancelled_sleep_leaves_no_deadline() -> None:
    clock = VirtualClock(start=T0)
    with anyio.move_on_after(0.01):
        with clock.busy():  # hold time still so that the real timeout fires first
            await clock.sleep(3600)
    assert clock.pending == 0
    await clock.sleep(10)
    assert clock.now() == T0 + timedelta(seconds=10)


async def test_past_deadlines_return_at_once() -> None:
    clock = VirtualClock(start=T0)
    await clock.sleep(0)
    await clock.sleep(-5)
    await clock.sleep_until(T0 - timedelta(days=1))
    assert (clock.now(), clock.jumps) == (T0, 0)


async def test_move_on_at_cuts_a_hanging_task_at_the_virtual_deadline() -> None:
    clock = VirtualClock(start=T0)
    with clock.move_on_at(at(5)) as scope:
        await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert clock.now() == at(5)
    assert clock.pending == 0
    with clock.move_on_at(at(1)) as scope:  # already past: cancelled at once
        await anyio.lowlevel.checkpoint()
    assert scope.cancelled_caught


async def test_manual_advance_without_autojump() -> None:
    clock = VirtualClock(start=T0, autojump=False)
    woke: list[datetime] = []

    async def sleeper() -> None:
        await clock.sleep(60)
        woke.append(clock.now())

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper)
        await anyio.sleep(0.01)
        assert (woke, clock.pending, clock.next_deadline) == ([], 1, at(1))
        clock.advance(30)
        await anyio.sleep(0.01)
        assert woke == []
        clock.advance(30)
    assert woke == [at(1)]
    with pytest.raises(ValueError, match="seconds=-1"):
        clock.advance(-1)


async def test_the_nightly_retry_timeline_in_virtual_time() -> None:
    """The nightly retry timeline, run with the clock: a job that hangs, cut by the clock."""
    clock = VirtualClock(start=T0)
    retry, timeout, lc = Retry(max_attempts=3, delay=60), Timeout(attempt=300), DEFAULT_LIFECYCLE
    run = lc.transition(Run.create(job="nightly_backup", at=T0), Status.QUEUED, at=T0)
    started = time.perf_counter()
    while not run.is_terminal:
        run = lc.transition(run, Status.RUNNING, at=clock.now())
        deadline = timeout.next_deadline(run)
        assert deadline is not None
        with clock.move_on_at(deadline.at):
            await anyio.sleep_forever()  # the job hangs
        decision = decide_failure(run, deadline.error(run.attempt), at=clock.now(), retry=retry)
        run = decision.apply(run)
        if decision.due_at is not None:
            await clock.sleep_until(decision.due_at)
            run = lc.transition(run, Status.QUEUED, at=clock.now())
    assert [a.started_at for a in run.attempts] == [at(0), at(6), at(12)]
    assert (run.status, run.ended_at) == (Status.FAILED, at(17))
    assert run.error is not None
    assert run.error.kind == "timeout"
    assert time.perf_counter() - started < 0.5


async def test_the_system_clock_cuts_and_sleeps_in_real_time() -> None:
    clock = SystemClock()
    with clock.busy(), clock.move_on_at(clock.now() + timedelta(seconds=0.02)) as scope:
        await anyio.sleep_forever()
    assert scope.cancelled_caught
    before = clock.now()
    await clock.sleep_until(before + timedelta(seconds=0.01))
    assert clock.now() >= before + timedelta(seconds=0.01)
