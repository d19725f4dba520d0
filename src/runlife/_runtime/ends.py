"""Waiting for a run's end: woken by that run's end, not by every change.

`AsyncRuntime.wait` reads the run, then waits for a reason to read it again. In
this process every stored write passes the runtime's `StoreGuard`, which tells
`Ends.moved`: a run that became terminal here wakes the waits on that run at
once, and nobody else, and hands them the run as stored (a terminal run never
changes, so they need not read it again). Another process's write reaches the runtime only as a
hint that the store changed (any write is one, this process's own included), so
a hint makes a wait read its run again no sooner than `HINT_EVERY` after its
last read, and each read that finds the run still active doubles that spacing,
up to `HINT_MOST`: a hundred waits on a busy store read it a few times a second
each at first, and about twice a second once they have waited a while, not once
per write. A run that ends in another process is seen within that spacing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import attrs

from runlife._core.run import Run
from runlife._runtime.wake import Pulse

__all__ = ("HINT_EVERY", "HINT_MOST", "Ended", "Ends")

HINT_EVERY: Final = 0.02
"""Seconds (clock time) between a wait's first two reads on store hints."""

HINT_MOST: Final = 0.5
"""The most seconds (clock time) between two reads of one wait on store hints."""


class Ended(Pulse):
    """The pulse of one waited run's end, with the run as this process stored it."""

    __slots__ = ("_run",)

    def __init__(self) -> None:
        super().__init__()
        self._run: Run | None = None

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

    __slots__ = ("_watched",)

    def __init__(self) -> None:
        self._watched: dict[str, tuple[Ended, list[int]]] = {}

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
