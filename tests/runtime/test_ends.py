"""Ends: a wait woken by its run's end, and the one watcher that reads waited runs
again on the store's hints (the ends of other processes)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

import anyio
import pytest

from runlife import DEFAULT_LIFECYCLE as lc
from runlife import Run, RunNotFound, Status
from runlife._runtime.ends import HINT_EVERY, HINT_MOST, Ended, Ends
from runlife._runtime.wake import Pulse
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


class Watched:
    """A watcher serving in virtual time over *runs*: its clock, what it reads, the
    store's hints."""

    def __init__(self, *runs: Run) -> None:
        self.clock = VirtualClock(start=T0)
        self.store = Stored(self.clock, *runs)
        self.hints = Pulse()
        self.ends = Ends(hints=self.hints)

    def read_now(self, ended: Ended) -> int:
        """As a wait does: read the run (found active); the pulse count it then waits on."""
        self.ends.read(ended, self.clock.now(), self.ends.hints)
        return ended.count


@asynccontextmanager
async def watched(*runs: Run, held: Collection[str] = ()) -> AsyncIterator[Watched]:
    w = Watched(*runs)
    async with anyio.create_task_group() as tg:
        tg.start_soon(w.ends.serve, w.clock, w.store.get_run, held)
        yield w
        tg.cancel_scope.cancel()


async def test_a_hint_has_the_watcher_read_again_and_wake_the_wait_of_an_ended_run() -> None:
    run = running()
    async with watched(run) as w:
        with w.ends.watching(run.id) as ended:
            seen = w.read_now(ended)
            await w.clock.sleep(5)
            assert w.store.reads == []  # no hint: nothing to read

            w.hints.pulse()
            await w.clock.sleep(5)
            assert w.store.reads == [(5, run.id)]  # its last read was long enough ago
            assert ended.count == seen  # still RUNNING: its wait sleeps on

            w.store.runs[run.id] = lc.transition(run, Status.SUCCEEDED, at=w.clock.now())
            w.hints.pulse()
            await w.clock.sleep(5)
            assert len(w.store.reads) == 2
            assert ended.count == seen + 1
            assert ended.run is not None
            assert ended.run.status is Status.SUCCEEDED


async def test_a_burst_of_hints_costs_one_read_and_the_spacing_doubles() -> None:
    run = running()
    async with watched(run) as w:
        with w.ends.watching(run.id) as ended:
            w.read_now(ended)
            for _ in range(100):
                w.hints.pulse()
            await w.clock.sleep(1)
            assert len(w.store.reads) == 1
            # Each read that finds the run active doubles the spacing, up to
            # HINT_MOST: a hint each HINT_MOST seconds is a read each.
            for _ in range(8):
                w.hints.pulse()
                await w.clock.sleep(HINT_MOST + HINT_EVERY)
            assert len(w.store.reads) == 1 + 8
            assert ended.spacing == HINT_MOST


async def test_a_run_held_here_is_not_read_again() -> None:
    # This process writes its end (and lets it go first if its lease is lost).
    run, other = running(), running()
    async with watched(run, other, held={run.id}) as w:
        with w.ends.watching(run.id) as mine, w.ends.watching(other.id) as theirs:
            w.read_now(mine)
            w.read_now(theirs)
            w.hints.pulse()
            await w.clock.sleep(1)
            assert [run_id for _, run_id in w.store.reads] == [other.id]


async def test_a_run_gone_wakes_its_wait_to_read_it_itself() -> None:
    run = running()
    async with watched() as w:  # purged meanwhile, say
        with w.ends.watching(run.id) as ended:
            seen = w.read_now(ended)
            w.hints.pulse()
            await w.clock.sleep(1)
            assert ended.count == seen + 1
            assert ended.run is None  # the wait reads, and raises RunNotFound


async def test_a_run_that_ended_here_is_handed_over_and_not_read() -> None:
    run = running()
    async with watched(run) as w:
        with w.ends.watching(run.id) as ended:
            seen = w.read_now(ended)
            w.ends.moved(lc.transition(run, Status.SUCCEEDED, at=w.clock.now()))
            w.hints.pulse()
            await w.clock.sleep(1)
            assert w.store.reads == []
            assert ended.count == seen + 1


def test_the_spacing_starts_at_hint_every() -> None:
    ended = Ended("01a2")
    assert (ended.reads, ended.spacing) == (0, HINT_EVERY)  # not read yet
