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


class Ended(Pulse):
    """The pulse of one waited run's end, with the run as this process stored it."""

    __slots__ = ("_run", "hint", "read_at", "spacing")

    def __init__(self) -> None:
        super().__init__()
        self._run: Run | None = None
        self.read_at: datetime | None = None
        """When the run was last read (clock time); None before its first read."""
        self.hint = 0
        """The count of the store's hints at that read: a later one may concern it."""
        self.spacing = HINT_EVERY
        """Seconds from that read to the next one a hint makes."""

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
    >>> ends = Ends()
    >>> with ends.watching(run.id) as ended:
    ...     ends.moved(run)                      # RUNNING: not its end
    ...     ends.moved(lc.transition(run, Status.SUCCEEDED, at=at))
    ...     ended.count, ended.run.status
    (1, <Status.SUCCEEDED: 'SUCCEEDED'>)
    """

    __slots__ = ("_hints", "_watched")

    def __init__(self) -> None:
        self._watched: dict[str, tuple[Ended, list[int]]] = {}
        self._hints = Pulse()

    @contextmanager
    def watching(self, run_id: str) -> Iterator[Ended]:
        """The pulse of *run_id*'s end, while the block runs (waits share it)."""
        entry = self._watched.get(run_id)
        if entry is None:
            entry = self._watched[run_id] = (Ended(), [0])
        users = entry[1]
        users[0] += 1
        try:
            yield entry[0]
        finally:
            users[0] -= 1
            if not users[0]:
                del self._watched[run_id]

    def moved(self, run: Run) -> None:
        """Told of every stored write of this process: *run* as stored."""
        if run.status.is_terminal:
            entry = self._watched.get(run.id)
            if entry is not None:
                entry[0]._run = run
                entry[0].pulse()

    @property
    def hints(self) -> int:
        """How many hints the store gave: read it before reading a waited run."""
        return self._hints.count

    def read(self, ended: Ended, at: datetime, hint: int) -> None:
        """A wait began reading its run at *at*, after *hint* hints, and found it
        active: later hints may concern it."""
        ended.read_at, ended.hint = at, hint

    def hinted(self) -> None:
        """The store changed (a hint): every waited run may have, in another process."""
        self._hints.pulse()

    def _due(
        self, now: datetime, held: Container[str]
    ) -> tuple[list[tuple[str, Ended]], datetime | None]:
        """The waited runs a hint since their last read makes due for a read by
        *now*, and the moment the next of the others falls due (None: none); not
        those *held* here, whose end this process writes."""
        hints, ready, later = self._hints.count, [], None
        for run_id, (ended, _) in self._watched.items():
            if ended.read_at is None or ended._run is not None or ended.hint == hints:
                continue
            if run_id in held:
                continue
            at = ended.read_at + timedelta(seconds=ended.spacing)
            if at <= now:
                ready.append((run_id, ended))
            elif later is None or at < later:
                later = at
        return ready, later

    async def serve(
        self,
        clock: Clock,
        get_run: Callable[[str], Awaitable[Run]],
        held: Container[str] = (),
    ) -> None:
        """Read again the waited runs each hint makes due (see the module), and wake
        the waits of those ended or gone; at most one look at them every
        ``HINT_EVERY / 2``, however often the store hints. The runs in *held* (this
        process's worker holds them: it writes their end, or lets them go once
        their lease is lost) are not read. Runs until cancelled."""
        hints, pause = self._hints, timedelta(seconds=HINT_EVERY / 2)
        while True:
            seen = hints.count
            looked = clock.now()
            ready, later = self._due(looked, held)
            if ready:
                async with anyio.create_task_group() as tg:
                    for run_id, ended in ready:
                        tg.start_soon(self._look, clock, get_run, run_id, ended)
            elif later is None:
                await hints.wait(seen)  # nothing is due until a hint
            else:
                await nap(clock, later, pulses=[(hints, seen)])
            await nap(clock, looked + pause)

    async def _look(
        self, clock: Clock, get_run: Callable[[str], Awaitable[Run]], run_id: str, ended: Ended
    ) -> None:
        hint, at = self._hints.count, clock.now()
        try:
            run = await get_run(run_id)
        except RunlifeError as exc:  # gone, or a store that failed: the wait reads itself
            _log.debug("a waited run could not be read", run_id=run_id, error=str(exc))
            ended.read_at, ended.hint = at, hint
            ended.pulse()
            return
        ended.read_at, ended.hint = at, hint
        if run.is_terminal:
            ended._run = run
            ended.pulse()
        else:
            ended.spacing = min(2 * ended.spacing, HINT_MOST)
