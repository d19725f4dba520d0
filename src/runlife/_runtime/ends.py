"""Waiting for a run's end: woken by that run's end, not by every change.

`AsyncRuntime.wait` reads the run, then waits for a reason to read it again. In
this process every stored write passes the runtime's `StoreGuard`, which tells
`Ends.moved`: a run that became terminal here wakes the waits on that run at
once, and nobody else, and hands them the run as stored (a terminal run never
changes, so they need not read it again).

Another process's write reaches the runtime only as a hint that the store changed
(any write is one, this process's own included). The waits do not each wake on it:
one task of the runtime, `Ends.serve`, reads again the waited runs the hint may
concern, no sooner than `HINT_EVERY` after a run's last read, each read that finds
the run still active doubling that spacing up to `HINT_MOST`, and wakes the waits
of those it finds ended (and of those gone). A hundred waits on a busy store cost
one wake-up per hint and a few reads a second each at first, about two once they
have waited a while; a run that ends in another process is seen within that
spacing. A wait still reads its run itself every ``poll`` seconds.
"""

from __future__ import annotations

import copy
import heapq
import itertools
from collections.abc import Awaitable, Callable, Container, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Final

import anyio
import attrs
import structlog

from runlife._core.run import Run
from runlife._runtime.wake import Pulse, nap
from runlife.abc import Clock
from runlife.exceptions import RunlifeError

__all__ = ("HINT_EVERY", "HINT_MOST", "Ended", "Ends")

HINT_EVERY: Final = 0.02
"""Seconds (clock time) between a wait's first two reads on store hints."""

HINT_MOST: Final = 0.5
"""The most seconds (clock time) between two reads of one wait on store hints."""

_log = structlog.get_logger("runlife.runtime")

_Due = tuple[datetime, int, int, "Ended"]
"""A read in the watcher's schedule: when it falls due, a tie-breaker, the
number of the read it follows (a later read replaces it), and the run's pulse."""


class Ended(Pulse):
    """The pulse of one waited run's end, with the run as this process stored it."""

    __slots__ = ("_run", "hint", "reads", "run_id", "spacing", "users")

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.users = 0
        """How many waits share it; none: it is no longer watched."""
        self._run: Run | None = None
        self.hint = 0
        """The count of the store's hints at its last read: a later one may concern it."""
        self.spacing = HINT_EVERY
        """Seconds from that read to the next one a hint makes."""
        self.reads = 0
        """How many reads found the run active (the watcher's schedule is of the last)."""

    @property
    def run(self) -> Run | None:
        """The terminal run as stored (a copy of its own for each caller), once
        this process stored its end."""
        run = self._run
        if run is None:
            return None
        return attrs.evolve(
            run,
            params=copy.deepcopy(run.params),
            result=copy.deepcopy(run.result),
            labels=dict(run.labels),
        )


class Ends:
    """A pulse per waited run, pulsed when this process stores its end.

    >>> from datetime import datetime, UTC
    >>> from runlife import DEFAULT_LIFECYCLE as lc, Status
    >>> at = datetime(2026, 3, 10, 2, tzinfo=UTC)
    >>> run = lc.transition(Run.create(job="backup", at=at, initial=Status.QUEUED),
    ...                     Status.RUNNING, at=at)
    >>> ends = Ends(hints=Pulse())
    >>> with ends.watching(run.id) as ended:
    ...     ends.moved(run)                      # RUNNING: not its end
    ...     ends.moved(lc.transition(run, Status.SUCCEEDED, at=at))
    ...     ended.count, ended.run.status
    (1, <Status.SUCCEEDED: 'SUCCEEDED'>)
    """

    __slots__ = ("_due", "_hints", "_quiet", "_seq", "_watched")

    def __init__(self, hints: Pulse) -> None:
        self._watched: dict[str, Ended] = {}
        self._hints = hints
        """Pulsed on each of the store's change hints (the runtime's watcher of them)."""
        # The watcher's schedule of reads: those a hint came after (by the moment
        # each falls due), and those read since the latest hint (no read yet).
        self._due: list[_Due] = []
        self._quiet: list[_Due] = []
        self._seq = itertools.count()

    @contextmanager
    def watching(self, run_id: str) -> Iterator[Ended]:
        """The pulse of *run_id*'s end, while the block runs (waits share it)."""
        ended = self._watched.get(run_id)
        if ended is None:
            ended = self._watched[run_id] = Ended(run_id)
        ended.users += 1
        try:
            yield ended
        finally:
            ended.users -= 1
            if not ended.users:
                del self._watched[run_id]

    def moved(self, run: Run) -> None:
        """Told of every stored write of this process: *run* as stored."""
        if run.status.is_terminal:
            ended = self._watched.get(run.id)
            if ended is not None:
                ended._run = run
                ended.pulse()

    @property
    def hints(self) -> int:
        """How many hints the store gave: read it before reading a waited run."""
        return self._hints.count

    def read(self, ended: Ended, at: datetime, hint: int) -> None:
        """A read of *ended*'s run began at *at*, after *hint* hints, and found it
        active: a later hint makes it due for another read, ``spacing`` after."""
        ended.hint = hint
        ended.reads += 1
        due = at + timedelta(seconds=ended.spacing)
        self._quiet.append((due, next(self._seq), ended.reads, ended))

    def _ready(self, now: datetime, held: Container[str]) -> list[Ended]:
        """The waited runs to read now: a hint came after their last read, their
        spacing has passed since, and they are not *held* here (those wait for
        the next hint)."""
        hints, due = self._hints.count, self._due
        if self._quiet:
            quiet = []
            for entry in self._quiet:
                if entry[3].hint == hints:
                    quiet.append(entry)  # read since the latest hint
                else:
                    heapq.heappush(due, entry)
            self._quiet = quiet
        ready = []
        while due and due[0][0] <= now:
            entry = heapq.heappop(due)
            ended = entry[3]
            if ended.users == 0 or ended._run is not None or entry[2] != ended.reads:
                continue  # no longer waited, ended here, or read again since
            if ended.run_id in held:
                ended.hint = hints
                self._quiet.append(entry)
            else:
                ready.append(ended)
        return ready

    async def serve(
        self,
        clock: Clock,
        get_run: Callable[[str], Awaitable[Run]],
        held: Container[str] = (),
    ) -> None:
        """Read again the waited runs each hint makes due (see the module), and wake
        the waits of those ended or gone. The runs in *held* (this process's worker
        holds them: it writes their end, or lets them go once their lease is lost)
        are not read while held. Runs until cancelled."""
        hints, due = self._hints, self._due
        async with anyio.create_task_group() as tg:
            while True:
                seen = hints.count
                # Each read on its own: a slow one holds up no other. A run being
                # read is out of the schedule until its read puts it back.
                for ended in self._ready(clock.now(), held):
                    tg.start_soon(self._look, clock, get_run, ended)
                if due:
                    await nap(clock, due[0][0], pulses=[(hints, seen)])
                else:
                    await hints.wait(seen)

    async def _look(
        self, clock: Clock, get_run: Callable[[str], Awaitable[Run]], ended: Ended
    ) -> None:
        hint, at = self._hints.count, clock.now()
        try:
            run = await get_run(ended.run_id)
        except RunlifeError as exc:  # gone, or a store that failed: the wait reads itself
            _log.debug("a waited run could not be read", run_id=ended.run_id, error=str(exc))
            ended.pulse()
            return
        if run.is_terminal:
            ended._run = run
            ended.pulse()
        else:
            ended.spacing = min(2 * ended.spacing, HINT_MOST)
            self.read(ended, at, hint)
