"""The claim step: which QUEUED runs a worker takes, and how each one moves.

A store finds the candidates (QUEUED runs of the worker's jobs, by priority, then
age, then id) and the live runs of the limited jobs; `ClaimPlan` decides, one
candidate at a time, which to take within the jobs' capacity, and moves each
taken run into RUNNING through its job's lifecycle (walking its way there: a
custom lifecycle may pass through more QUEUED states first). The store then
writes the moves with the owner, the lease and the fence. Every store takes the
same runs in the same order.

>>> from datetime import datetime, UTC
>>> from runlife import DEFAULT_LIFECYCLE, Run, Status
>>> t0 = datetime(2026, 3, 10, 2, tzinfo=UTC)
>>> plan = ClaimPlan("w1", {"backup": DEFAULT_LIFECYCLE}, {}, now=t0, limit=1)
>>> moved = plan.offer(Run.create(job="backup", at=t0, initial=Status.QUEUED))
>>> moved.status, plan.done
(<Status.RUNNING: 'RUNNING'>, True)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final

import attrs

from runlife._core.lifecycle import Lifecycle
from runlife._core.queries import JobRecord
from runlife._core.records import Transition
from runlife._core.run import Run
from runlife._core.status import Status
from runlife.exceptions import InvalidLifecycle

__all__ = (
    "LIVE",
    "Capacity",
    "ClaimPlan",
    "JobLimits",
    "claim_move",
    "claim_moves",
    "claim_order",
    "claim_reason",
    "claimed_by",
)

LIVE: Final = frozenset({Status.RUNNING, Status.WAITING})
"""The statuses of a held run: they count against a job's capacity."""


@attrs.frozen
class JobLimits:
    """A job's capacity: at most ``max_concurrency`` live runs, and at most
    ``per_label[key]`` live runs per value of their label *key*."""

    max_concurrency: int | None = None
    per_label: Mapping[str, int] = attrs.field(factory=dict)

    @classmethod
    def of(cls, job: JobRecord) -> JobLimits | None:
        """The limits of *job*'s record, or None if it has none."""
        if job.max_concurrency is None and not job.per_label:
            return None
        return cls(job.max_concurrency, dict(job.per_label))


class Capacity:
    """What the limited jobs may still start, counted from their live runs.

    Count every live run of each limited job with `count`, then ask `fits` for
    each candidate and `count` the ones taken. Jobs without limits always fit.
    """

    __slots__ = ("_by_label", "_limits", "_running")

    def __init__(self, limits: Mapping[str, JobLimits]) -> None:
        self._limits = dict(limits)
        self._running: dict[str, int] = dict.fromkeys(self._limits, 0)
        self._by_label: dict[tuple[str, str, str], int] = {}

    @property
    def limited(self) -> frozenset[str]:
        """The names of the jobs that have limits."""
        return frozenset(self._limits)

    def count(self, job: str, labels: Mapping[str, str]) -> None:
        """Count one more live run of *job* with *labels*."""
        limits = self._limits.get(job)
        if limits is None:
            return
        self._running[job] += 1
        for key in limits.per_label:
            value = labels.get(key)
            if value is not None:
                slot = (job, key, value)
                self._by_label[slot] = self._by_label.get(slot, 0) + 1

    def full(self, job: str) -> bool:
        """Whether *job* is at its ``max_concurrency``: no more of its runs fit."""
        limits = self._limits.get(job)
        return (
            limits is not None
            and limits.max_concurrency is not None
            and self._running[job] >= limits.max_concurrency
        )

    def fits(self, job: str, labels: Mapping[str, str]) -> bool:
        """Whether one more live run of *job* with *labels* stays within its limits."""
        limits = self._limits.get(job)
        if limits is None:
            return True
        if self.full(job):
            return False
        for key, cap in limits.per_label.items():
            value = labels.get(key)
            if value is not None and self._by_label.get((job, key, value), 0) >= cap:
                return False
        return True


def claim_order(run: Run) -> tuple[int, datetime, str]:
    """The sort key of claim order: higher priority first, then older, then by id."""
    return (-run.priority, run.created_at, run.id)


def claim_reason(worker: str) -> str:
    """The reason recorded on each move of a claim by *worker*."""
    return f"claimed by {worker}"


def claimed_by(run: Run) -> str | None:
    """The worker whose claim started *run*'s last attempt, as its history
    records it (None: never claimed, or started some other way).

    >>> from datetime import datetime, UTC
    >>> from runlife import DEFAULT_LIFECYCLE as lc
    >>> at = datetime(2026, 3, 10, 2, tzinfo=UTC)
    >>> run = lc.transition(Run.create(job="backup", at=at), Status.QUEUED, at=at)
    >>> claimed_by(run), claimed_by(claim_move(run, lc, "w1", at))
    (None, 'w1')
    """
    prefix = claim_reason("")
    for move in reversed(run.history):
        if move.reason is not None and move.reason.startswith(prefix):
            return move.reason[len(prefix) :]
    return None


def claim_move(run: Run, lifecycle: Lifecycle, worker: str, now: datetime) -> Run | None:
    """*run* moved into RUNNING by *worker*'s claim at *now* (along its way there,
    see `Lifecycle.path`), or None if it has none (then it is not claimable and is
    passed over)."""
    try:
        if not lifecycle.path(run.state, Status.RUNNING):
            return None
    except InvalidLifecycle:  # a state not of this lifecycle
        return None
    return lifecycle.transition(run, Status.RUNNING, at=now, reason=claim_reason(worker))


def claim_moves(run: Run, worker: str) -> tuple[Transition, ...]:
    """The moves that *worker*'s claim made, read from the claimed *run*: its last
    moves, those with the claim's reason (a claim always starts from a move that
    is not a claim's, the one that put the run where it was claimed).

    >>> from datetime import datetime, UTC
    >>> from runlife import DEFAULT_LIFECYCLE, Run, Status
    >>> t0 = datetime(2026, 3, 10, 2, tzinfo=UTC)
    >>> queued = Run.create(job="backup", at=t0, initial=Status.QUEUED)
    >>> moved = claim_move(queued, DEFAULT_LIFECYCLE, "w1", t0)
    >>> [(str(t.from_), str(t.to), t.reason) for t in claim_moves(moved, "w1")]
    [('QUEUED', 'RUNNING', 'claimed by w1')]
    """
    reason = claim_reason(worker)
    history = run.history
    start = len(history)
    while start and history[start - 1].reason == reason:
        start -= 1
    return history[start:]


class ClaimPlan:
    """Decides a claim: offer it candidates in claim order; it takes what fits.

    Args:
        worker: who claims.
        jobs: the lifecycle of each job the worker runs; runs of other jobs are
            never taken.
        limits: the limits of the jobs that have them.
        now: the store's time of the claim.
        limit: how many runs to take at most.
        live: ``(job, labels)`` of the live runs of the limited jobs.
    """

    __slots__ = ("_jobs", "capacity", "limit", "now", "taken", "worker")

    def __init__(
        self,
        worker: str,
        jobs: Mapping[str, Lifecycle],
        limits: Mapping[str, JobLimits],
        *,
        now: datetime,
        limit: int,
        live: Iterable[tuple[str, Mapping[str, str]]] = (),
    ) -> None:
        self.worker = worker
        self._jobs = jobs
        self.now = now
        self.limit = limit
        self.capacity = Capacity({name: lim for name, lim in limits.items() if name in jobs})
        for job, labels in live:
            self.capacity.count(job, labels)
        self.taken: list[tuple[Run, Run]] = []

    @property
    def done(self) -> bool:
        """Whether the plan has taken as many runs as it may."""
        return len(self.taken) >= self.limit

    def open(self, job: str) -> bool:
        """Whether runs of *job* may still be taken (a store may stop reading a job's
        queue once it is not)."""
        return job in self._jobs and not self.capacity.full(job) and not self.done

    def offer(self, run: Run) -> Run | None:
        """Take *run* if it fits: returns it moved into RUNNING, or None."""
        if self.done:
            return None
        lifecycle = self._jobs.get(run.job)
        if lifecycle is None or run.status is not Status.QUEUED:
            return None
        if not self.capacity.fits(run.job, run.labels):
            return None
        moved = claim_move(run, lifecycle, self.worker, self.now)
        if moved is None:
            return None
        self.capacity.count(run.job, run.labels)
        self.taken.append((run, moved))
        return moved
