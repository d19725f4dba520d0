"""The reaper: the attempts of lost workers fail as abandoned, and policy decides.

Every ``interval`` seconds of clock time it asks the store for RUNNING and WAITING
runs whose lease has lapsed by *store* time (their worker crashed, hung, or lost
the store for longer than its lease). Each one's attempt ends with error kind
``abandoned`` and its job's retry policy decides what follows: RETRYING (the
mover queues it again after the delay) or FAILED once its budget is spent, so a
run that kills its worker every time (a poison run) cannot loop for ever.

A run that another process asked to cancel (a stored cancel request) and that
would be retried ends CANCELLED instead, as the request says: its holder was
lost before it could honour it.

The write is made with ``only_if_lapsed=True``: if the worker renewed its lease
in the meantime, the store refuses it and the run is left alone. Any live runtime
reaps any job's runs (the policy of a job it does not import comes from the
job's stored spec), so runs are recovered as long as one runtime is up.
"""

from __future__ import annotations

from typing import Final

import structlog

from runlife._core.policy import decide_failure
from runlife._core.queries import CancelRequest
from runlife._core.records import ErrorInfo
from runlife._core.run import Run
from runlife._core.status import Status
from runlife._runtime.guard import StoreGuard
from runlife._runtime.jobs import JobBook, apply_decision, honour_cancel
from runlife._runtime.mover import Mover
from runlife._runtime.wake import Pulse
from runlife.abc import Clock
from runlife.exceptions import Conflict, RunlifeError

__all__ = ("Reaper",)

_BATCH: Final = 100


class Reaper:
    """Reaps runs whose lease lapsed (see the module docstring).

    Args:
        guard: the store.
        clock: the runtime's clock.
        book: the jobs, own and stored.
        mover: told when a reaped run is due to be queued again.
        interval: seconds of clock time between two looks.
        changed: pulsed after each reaped run.

    >>> import anyio
    >>> from datetime import datetime, UTC
    >>> from runlife import DEFAULT_LIFECYCLE, Run, Status
    >>> from runlife._runtime.worker import Worker
    >>> from runlife.stores import MemoryStore
    >>> from runlife.testing import VirtualClock
    >>> clock = VirtualClock(start=datetime(2026, 3, 10, 2, tzinfo=UTC))
    >>> store = MemoryStore(clock=clock)
    >>> guard = StoreGuard(store, clock)
    >>> book = JobBook({}, guard)
    >>> worker = Worker(guard=guard, clock=clock, jobs={}, worker_id="w1")
    >>> reaper = Reaper(guard=guard, clock=clock, book=book,
    ...                 mover=Mover(guard=guard, clock=clock, book=book, worker=worker))
    >>> async def main():
    ...     run = await store.create_run(Run.create(job="sync", at=clock.now(),
    ...                                             initial=Status.QUEUED))
    ...     await store.claim("lost-worker", {"sync": DEFAULT_LIFECYCLE}, limit=1, lease=30)
    ...     clock.advance(31)  # its lease lapsed; a job without a record has one attempt
    ...     reaped = await reaper.tick()
    ...     run = await store.get_run(run.id)
    ...     return reaped, run.status, run.attempts[0].outcome
    >>> from structlog.testing import capture_logs
    >>> with capture_logs() as logs:
    ...     result = anyio.run(main)
    >>> result, logs[0]["event"]
    ((1, <Status.FAILED: 'FAILED'>, 'abandoned'), 'reaped an abandoned run')
    """

    def __init__(
        self,
        *,
        guard: StoreGuard,
        clock: Clock,
        book: JobBook,
        mover: Mover,
        interval: float = 10,
        changed: Pulse | None = None,
    ) -> None:
        self.guard = guard
        self.clock = clock
        self.book = book
        self.mover = mover
        self.interval = interval
        self.changed = changed or Pulse()
        self._log = structlog.get_logger("runlife.reaper")

    async def serve(self) -> None:
        """Reap until cancelled."""
        while True:
            try:
                await self.tick()
            except RunlifeError as exc:
                self._log.error("reaping failed", error=str(exc))
            await self.clock.sleep(self.interval)

    async def tick(self) -> int:
        """Reap every run whose lease has lapsed now; returns how many."""
        reaped = 0
        while True:
            runs = await self.guard.abandoned(limit=_BATCH)
            requests = await self.guard.cancel_requests([r.id for r in runs]) if runs else {}
            count = 0
            for run in runs:
                count += await self._reap(run, requests.get(run.id))
            reaped += count
            if len(runs) < _BATCH or not count:
                return reaped

    async def _reap(self, run: Run, request: CancelRequest | None) -> int:
        spec = await self.book.spec_or_none(run.job)
        if spec is None:
            return 0
        error = ErrorInfo(
            kind="abandoned",
            type="LeaseExpired",
            message=f"attempt {run.attempt} was abandoned: its worker's lease lapsed "
            "without a heartbeat",
        )
        now = self.clock.now()
        decision = decide_failure(run, error, at=now, retry=spec.retry, timeout=spec.timeout)
        try:
            moved = apply_decision(decision, run, spec.lifecycle)
            moved = honour_cancel(run, moved, request, spec.lifecycle, at=now)
            await self.guard.update_run(moved, expected_version=run.version, only_if_lapsed=True)
        except Conflict:
            return 0  # its worker came back, or another reaper was first
        except RunlifeError as exc:
            self._log.error("could not reap a run", run_id=run.id, error=str(exc))
            return 0
        self._log.warning(
            "reaped an abandoned run", run_id=run.id, job=run.job, outcome=moved.history[-1].reason
        )
        if moved.status is Status.RETRYING and moved.due_at is not None:
            self.mover.hint(moved.due_at)
        self.changed.pulse()
        return 1
