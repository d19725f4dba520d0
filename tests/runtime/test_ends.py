"""Ends: a wait woken by its run's end, and the one watcher that reads waited runs
again on the store's hints (the ends of other processes)."""

from __future__ import annotations

from collections.abc import Container

import anyio
import pytest

from runlife import DEFAULT_LIFECYCLE as lc
from runlife import Run, RunNotFound, Status
from runlife._runtime.ends import HINT_EVERY, HINT_MOST, Ended, Ends
from runlife.testing import VirtualClock

from .conftest import T0

pytestmark = pytest.mark.anyio


class Stored:
    """What the watcher reads: the runs by id, and when it read which."""

    def __init__(self, clock: VirtualClock, *runs: Run) -> None:
        self.clock = clock
        self.runs = {run.id: run for run in runs}
        self.reads: list[tuple[float, str]] = []

    async def get_run(self, run_id: str) -> Run:
        self.reads.append(((self.clock.now() - T0).total_seconds(), run_id))
        try:
            return self.runs[run_id]
        except KeyError:
            raise RunNotFound(run_id) from None


def running() -> Run:
    queued = Run.create(job="sync", at=T0, initial=Status.QUEUED)
    return lc.transition(queued, Status.RUNNING, at=T0)


def read_now(ends: Ends, ended: Ended, clock: VirtualClock) -> int:
    """As a wait does: read the run (found active); the pulse count it then waits on."""
    ends.read(ended, clock.now(), ends.hints)
    return ended.count


async def test_a_hint_has_the_watcher_read_again_and_wake_the_wait_of_an_ended_run() -> None:
    clock = VirtualClock(start=T0)
    run = running()
    store, ends = Stored(clock, run), Ends()
    async with anyio.create_task_group() as tg:
        tg.start_soon(ends.serve, clock, store.get_run)
        with ends.watching(run.id) as ended:
            seen = read_now(ends, ended, clock)
            await clock.sleep(5)
            assert store.reads == []  # no hint: nothing to read

            ends.hinted()
            await clock.sleep(5)
            assert store.reads == [(5, run.id)]  # its last read was long enough ago
            assert ended.count == seen  # still RUNNING: its wait sleeps on

            store.runs[run.id] = lc.transition(run, Status.SUCCEEDED, at=clock.now())
            ends.hinted()
            await clock.sleep(5)
            assert len(store.reads) == 2
            assert ended.count == seen + 1
            assert ended.run is not None
            assert ended.run.status is Status.SUCCEEDED
        tg.cancel_scope.cancel()


async def test_a_burst_of_hints_costs_one_read_and_the_spacing_doubles() -> None:
    clock = VirtualClock(start=T0)
    run = running()
    store, ends = Stored(clock, run), Ends()
    async with anyio.create_task_group() as tg:
        tg.start_soon(ends.serve, clock, store.get_run)
        with ends.watching(run.id) as ended:
            read_now(ends, ended, clock)
            for _ in range(100):
                ends.hinted()
            await clock.sleep(1)
            assert len(store.reads) == 1
            # Each read that finds the run active doubles the spacing, up to
            # HINT_MOST: a hint each HINT_MOST seconds is a read each.
            for _ in range(8):
                ends.hinted()
                await clock.sleep(HINT_MOST + HINT_EVERY)
            assert len(store.reads) == 1 + 8
            assert ended.spacing == HINT_MOST
        tg.cancel_scope.cancel()


async def test_a_run_held_here_is_not_read_again() -> None:
    # This process writes its end (and lets it go first if its lease is lost).
    clock = VirtualClock(start=T0)
    run, other = running(), running()
    store, ends = Stored(clock, run, other), Ends()
    held: Container[str] = {run.id}
    async with anyio.create_task_group() as tg:
        tg.start_soon(ends.serve, clock, store.get_run, held)
        with ends.watching(run.id) as mine, ends.watching(other.id) as theirs:
            read_now(ends, mine, clock)
            read_now(ends, theirs, clock)
            ends.hinted()
            await clock.sleep(1)
            assert [run_id for _, run_id in store.reads] == [other.id]
        tg.cancel_scope.cancel()


async def test_a_run_gone_wakes_its_wait_to_read_it_itself() -> None:
    clock = VirtualClock(start=T0)
    run = running()
    store, ends = Stored(clock), Ends()  # purged meanwhile, say
    async with anyio.create_task_group() as tg:
        tg.start_soon(ends.serve, clock, store.get_run)
        with ends.watching(run.id) as ended:
            seen = read_now(ends, ended, clock)
            ends.hinted()
            await clock.sleep(1)
            assert ended.count == seen + 1
            assert ended.run is None  # the wait reads, and raises RunNotFound
        tg.cancel_scope.cancel()


async def test_a_run_that_ended_here_is_handed_over_and_not_read() -> None:
    clock = VirtualClock(start=T0)
    run = running()
    store, ends = Stored(clock, run), Ends()
    async with anyio.create_task_group() as tg:
        tg.start_soon(ends.serve, clock, store.get_run)
        with ends.watching(run.id) as ended:
            seen = read_now(ends, ended, clock)
            ends.moved(lc.transition(run, Status.SUCCEEDED, at=clock.now()))
            ends.hinted()
            await clock.sleep(1)
            assert store.reads == []
            assert ended.count == seen + 1
        tg.cancel_scope.cancel()


def test_the_spacing_starts_at_hint_every() -> None:
    ended = Ended("01a2")
    assert (ended.read_at, ended.spacing) == (None, HINT_EVERY)
