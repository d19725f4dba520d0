"""What the runtime knows of jobs: its own, and the others' from their stored specs.

A runtime runs only its own jobs, but it moves, reaps, cancels and retries the
runs of any job in its store: for a job it does not import it reads the job's
`JobSpec` from the store's record (written by the runtime that has the job).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import attrs
import structlog

from runlife._core.lifecycle import Lifecycle
from runlife._core.policy import FailureDecision
from runlife._core.run import Run
from runlife._core.spec import JobSpec
from runlife._core.status import Status
from runlife._runtime.guard import StoreGuard
from runlife._runtime.job import Job
from runlife.exceptions import InvalidLifecycle, InvalidPolicy, InvalidTransition, JobNotFound

__all__ = ("JobBook", "apply_decision", "to_queue")


def apply_decision(decision: FailureDecision, run: Run, lifecycle: Lifecycle) -> Run:
    """*run* moved as *decision* says; a retry in a lifecycle that cannot retry
    (it has no RETRYING state, or no move to it) fails the run instead.

    >>> from datetime import datetime, UTC
    >>> from runlife import Lifecycle, Retry, decide_failure
    >>> lc = Lifecycle("plain", {"NEW": "QUEUED", "ON": "RUNNING", "OK": "SUCCEEDED",
    ...                          "KO": "FAILED"}, {"NEW": ["ON"], "ON": ["OK", "KO"]})
    >>> t0 = datetime(2026, 3, 10, 2, tzinfo=UTC)
    >>> run = lc.transition(Run.create(job="x", at=t0, lifecycle=lc), "ON", at=t0)
    >>> decision = decide_failure(run, ValueError("boom"), at=t0, retry=Retry())
    >>> apply_decision(decision, run, lc).state
    'KO'
    """
    try:
        return decision.apply(run, lifecycle)
    except (InvalidTransition, InvalidLifecycle):
        if not decision.retry:
            raise
    failed = attrs.evolve(
        decision,
        status=Status.FAILED,
        reason=f"{decision.reason}; but lifecycle {lifecycle.name!r} cannot retry",
        due_at=None,
        delay=None,
    )
    return failed.apply(run, lifecycle)


def to_queue(run: Run, spec: JobSpec, *, at: datetime, reason: str, new: bool = False) -> Run:
    """*run* moved to QUEUED at *at*, due again when its queue wait (or its whole
    run) must end by its job's timeout, so that the mover finds it then.

    With *new*, *run* is a run not stored yet: it keeps version 0 (a store takes
    a new run with its history, at version 0).

    >>> from datetime import datetime, UTC
    >>> from runlife import Run, Timeout
    >>> t0 = datetime(2026, 3, 10, 2, tzinfo=UTC)
    >>> run = to_queue(Run.create(job="sync", at=t0), JobSpec(timeout=Timeout(queued=600)),
    ...                at=t0, reason="submitted", new=True)
    >>> run.status, run.due_at.time(), run.version
    (<Status.QUEUED: 'QUEUED'>, datetime.time(2, 10), 0)
    """
    moved = spec.lifecycle.transition(run, Status.QUEUED, at=at, reason=reason)
    deadline = spec.timeout.next_deadline(moved)
    if deadline is None and not new:
        return moved
    return attrs.evolve(
        moved,
        due_at=None if deadline is None else deadline.at,
        version=run.version if new else moved.version,
    )


class JobBook:
    """The runtime's jobs by name, and a cache of the specs of the others.

    A stored spec is read once per runtime: a policy changed in the store by
    another process is seen by a runtime started after the change.
    """

    def __init__(self, jobs: Mapping[str, Job], guard: StoreGuard) -> None:
        self.local = dict(jobs)
        self._guard = guard
        self._specs: dict[str, JobSpec] = {}
        self.workflows: set[str] = set()
        """The names of the workflows among the specs it knows (its own and read)."""
        self._log = structlog.get_logger("runlife.runtime")

    def add_spec(self, name: str, spec: JobSpec) -> None:
        """Know *spec* as the spec of *name* (a workflow of the runtime, say)."""
        self._specs[name] = spec
        if spec.workflow is not None:
            self.workflows.add(name)

    def get(self, name: str) -> Job | None:
        """The runtime's own job called *name*, if it has one."""
        return self.local.get(name)

    async def spec(self, name: str) -> JobSpec:
        """The spec of job *name*: its own, or the stored one.

        Raises:
            JobNotFound: neither this runtime nor the store knows the job.
            InvalidPolicy, InvalidLifecycle: the stored spec cannot be read here.
        """
        job = self.local.get(name)
        if job is not None:
            return job.spec
        spec = self._specs.get(name)
        if spec is None:
            record = await self._guard.get_job(name)
            spec = JobSpec.from_spec(record.spec) if record.spec else JobSpec()
            self._specs[name] = spec
            if spec.workflow is not None:
                self.workflows.add(name)
        return spec

    async def spec_or_none(self, name: str) -> JobSpec | None:
        """The spec of job *name* for a service: the default spec for a job
        without a record, None (logged) for one whose spec cannot be read here."""
        try:
            return await self.spec(name)
        except JobNotFound:
            return JobSpec()
        except (InvalidPolicy, InvalidLifecycle) as exc:
            self._log.error(
                "job spec unreadable; its runs are left alone", job=name, error=str(exc)
            )
            return None
