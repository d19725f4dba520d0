"""The runs this store last wrote or read: what a successor is checked against.

`update_run` must check the new run against the stored one. Versions only grow
and every change of a run bumps its version, so ``(id, version)`` names one
content: when the version the caller expects is the version of the cached run,
the cached run is the stored run as long as the compare-and-set on that version
succeeds, and the check needs no read of the database. A miss (or an older
version) costs one read.
"""

from __future__ import annotations

from typing import Final

from runlife._core.run import Run

__all__ = ("CACHE_SIZE", "RunCache")

CACHE_SIZE: Final = 4096
"""How many runs the cache keeps (the least recently stored go first)."""


class RunCache:
    """A bounded map of run id -> (run, its params as JSON text).

    The cached runs are the store's own: their dicts are never handed to a caller.
    """

    __slots__ = ("_runs", "_size")

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._runs: dict[str, tuple[Run, str]] = {}

    def get(self, run_id: str) -> tuple[Run, str] | None:
        """The cached run and its params' text, or None."""
        return self._runs.get(run_id)

    def put(self, run: Run, params: str) -> None:
        """Remember *run* (whose dicts nobody else holds) as stored, with *params*."""
        runs = self._runs
        if runs.pop(run.id, None) is None and len(runs) >= self._size:
            del runs[next(iter(runs))]
        runs[run.id] = (run, params)

    def __len__(self) -> int:
        return len(self._runs)
