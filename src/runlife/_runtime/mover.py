"""The mover: moves runs whose wait is over, and ends runs that waited too long.

Every ``poll`` seconds of clock time, and at each moment another service of its
runtime told it about (`Mover.hint`: a retry delay that ends, a start time), it
asks the store for the runs whose ``due_at`` has come:

* RETRYING, its retry delay over: QUEUED again (a worker claims it);
* PENDING with a start time (``submit(..., at=...)``) that has come: QUEUED, or
  for a job declared ``queued=False`` claimed and started by this runtime;
* QUEUED past its job's ``Timeout(queued=...)`` (or its whole ``run=`` limit,
  after a retry): CANCELLED with error kind ``timeout`` (QUEUED cannot fail).

Every move is a compare-and-set, so two runtimes' movers never move a run twice.
It moves the runs of any job in the store, reading the policy of jobs it does not
import from their stored specs.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from typing import Final

import structlog

from runlife._core.records import ErrorInfo
from runlife._core.run import Run
from runlife._core.status import Status
from runlife._runtime.guard import StoreGuard
from runlife._runtime.jobs import JobBook, to_queue
from runlife._runtime.wake import Pulse, nap
from runlife._runtime.worker import Worker
from runlife.abc import Clock
from runlife.exceptions import Conflict, RunlifeError

__all__ = ("Mover",)

_DUE: Final = (Status.RETRYING, Status.PENDING, Status.QUEUED)
_BATCH: Final = 100


class Mover:
    """Moves due runs (see the module docstring).

    Args:
        guard: the store.
        clock: the runtime's clock.
        book: the jobs, own and stored.
        worker: the runtime's worker (told when runs become claimable, and given
            the runs of ``queued=False`` jobs it claims).
        lease: the lease of such a claim.
        poll: seconds of clock time between two looks at the store.
        changed: pulsed after each move.

    >>> import anyio
    >>> from datetime import datetime, timedelta, UTC
    >>> from runlife import DEFAULT_LIFECYCLE as lc, Run, Status
    >>> from runlife.stores import MemoryStore
    >>> from runlife.testing import VirtualClock
    >>> clock = VirtualClock(start=datetime(2026, 3, 10, 2, tzinfo=UTC))
    >>> store = MemoryStore(clock=clock)
    >>> guard = StoreGuard(store, clock)
    >>> worker = Worker(guard=guard, clock=clock, jobs={}, worker_id="w1")
    >>> mover = Mover(guard=guard, clock=clock, book=JobBook({}, guard), worker=worker)
    >>> async def main():
    ...     t0 = clock.now()
    ...     run = await store.create_run(Run.create(job="sync", at=t0, initial=Status.QUEUED))
    ...     (claim,) = await store.claim("w0", {"sync": lc}, limit=1, lease=30)
    ...     retrying = lc.transition(claim.run, Status.RETRYING, at=t0,
    ...                              due_at=t0 + timedelta(seconds=60))
    ...     await store.update_run(retrying, expected_version=claim.run.version, claim=claim)
    ...     early = await mover.tick()
    ...     clock.advance(60)
    ...     return early, await mover.tick(), (await store.get_run(run.id)).status
    >>> anyio.run(main)
    (0, 1, <Status.QUEUED: 'QUEUED'>)
    """

    def __init__(
        self,
        *,
        guard: StoreGuard,
        clock: Clock,
        book: JobBook,
        worker: Worker,
        lease: float = 30,
        poll: float = 5,
        changed: Pulse | None = None,
    ) -> None:
        self.guard = guard
        self.clock = clock
        self.book = book
        self.worker = worker
        self.lease = lease
        self.poll = poll
        self.changed = changed or Pulse()
        self._hints: list[datetime] = []
        self._pulse = Pulse()
        self._log = structlog.get_logger("runlife.mover")

    def hint(self, at: datetime) -> None:
        """Look at the store at *at* (when a run is due to move)."""
        heapq.heappush(self._hints, at)
        self._pulse.pulse()

    async def serve(self) -> None:
        """Move due runs until cancelled."""
        while True:
            seen = self._pulse.count
            try:
                await self.tick()
            except RunlifeError as exc:
                self._log.error("moving due runs failed", error=str(exc))
            now = self.clock.now()
            while self._hints and self._hints[0] <= now:
                heapq.heappop(self._hints)
            until = now + timedelta(seconds=self.poll)
            if self._hints and self._hints[0] < until:
                until = self._hints[0]
            await nap(self.clock, until, pulses=[(self._pulse, seen)])

    async def tick(self) -> int:
        """Move every run that is due now; returns how many moved."""
        moved = 0
        while True:
            runs = await self.guard.due(_DUE, limit=_BATCH)
            count = 0
            for run in runs:
                count += await self._move(run)
            moved += count
            if len(runs) < _BATCH or not count:
                return moved

    async def _move(self, run: Run) -> int:
        spec = await self.book.spec_or_none(run.job)
        if spec is None:
            return 0
        now = self.clock.now()
        try:
            if run.status is Status.QUEUED:
                expired = spec.timeout.expired(run, now)
                if expired is None or expired.kind not in ("queued", "run"):
                    return 0
                error: ErrorInfo = expired.error()
                new = spec.lifecycle.transition(
                    run, Status.CANCELLED, at=now, reason=error.message, error=error
                )
                await self.guard.update_run(new, expected_version=run.version)
            elif run.status is Status.PENDING and not spec.queued:
                job = self.book.get(run.job)
                if job is None:
                    return 0  # a runtime that has the job starts it
                claim = await self.guard.claim_run(
                    run.id, self.worker.worker_id, spec.lifecycle, lease=self.lease
                )
                self.worker.adopt(claim)
            else:
                why = "retry delay over" if run.status is Status.RETRYING else "start time reached"
                new = to_queue(run, spec, at=now, reason=why)
                await self.guard.update_run(new, expected_version=run.version)
                if new.due_at is not None:
                    self.hint(new.due_at)
                self.worker.claimable.pulse()
        except Conflict:
            return 0  # another writer moved it first
        except RunlifeError as exc:
            self._log.error("could not move a due run", run_id=run.id, error=str(exc))
            return 0
        self.changed.pulse()
        return 1
