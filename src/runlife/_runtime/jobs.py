"""What the runtime knows of jobs: its own, and the others' from their stored specs.

A runtime runs only its own jobs, but it moves, reaps, cancels and retries the
runs of any job in its store: for a job it does not import it reads the job's
`JobSpec` from the store's record (written by the runtime that has the job). The
record is also where ``set_policy`` changes a job's policy, so a runtime reads it
for its own jobs too (`JobBook`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

import attrs
import structlog

from runlife._core.fast import compile_copier
from runlife._core.lifecycle import Lifecycle
from runlife._core.policy import FailureDecision
from runlife._core.queries import CancelRequest, JobRecord
from runlife._core.records import ErrorInfo
from runlife._core.run import Run
from runlife._core.spec import JobSpec
from runlife._core.status import Status
from runlife._runtime.guard import StoreGuard
from runlife._runtime.job import Job, record_of
from runlife._runtime.wake import Latch
from runlife.exceptions import InvalidLifecycle, InvalidPolicy, InvalidTransition, JobNotFound

__all__ = ("GOES_ON", "JobBook", "apply_decision", "honour_cancel", "to_cancelled", "to_queue")

# A queued run's due time and version set on the hot path of every submit (see
# `runlife._core.fast`: attrs.evolve would check every field again).
_due_copy: Callable[..., Run] = compile_copier(Run, ("due_at", "version"))

GOES_ON: Final = frozenset({Status.RETRYING, Status.QUEUED})
"""The statuses in which a run whose attempt ended goes on to another attempt."""


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
    return _due_copy(
        moved,
        due_at=None if deadline is None else deadline.at,
        version=run.version if new else moved.version,
    )


def to_cancelled(
    run: Run, lifecycle: Lifecycle, *, at: datetime, message: str, note: str = ""
) -> Run:
    """*run* moved to CANCELLED at *at*: *message* (a `cancel_message`) is the
    move's reason and, with *note* after it, its error's message (kind
    ``cancelled``; its attempt, if one was running, ends ``cancelled``).

    >>> from datetime import datetime, UTC
    >>> from runlife import DEFAULT_LIFECYCLE as lc, Status
    >>> t0 = datetime(2026, 3, 10, 2, tzinfo=UTC)
    >>> run = Run.create(job="sync", at=t0, initial=Status.QUEUED)
    >>> done = to_cancelled(run, lc, at=t0, message="cancelled by ops:ana")
    >>> done.status, done.error.kind, done.error.message, done.history[-1].reason
    (<Status.CANCELLED: 'CANCELLED'>, 'cancelled', 'cancelled by ops:ana', 'cancelled by ops:ana')
    """
    error = ErrorInfo(kind="cancelled", type="Cancelled", message=message + note)
    return lifecycle.transition(run, Status.CANCELLED, at=at, reason=message, error=error)


def honour_cancel(
    run: Run,
    moved: Run,
    request: CancelRequest | None,
    lifecycle: Lifecycle,
    *,
    at: datetime,
    note: str = "",
) -> Run:
    """*moved*, the successor of *run* a service built when its attempt ended,
    unless it goes on to another attempt (`GOES_ON`) while *request* stands: then
    *run* CANCELLED as the request says. A run that ends (SUCCEEDED, FAILED) ends
    as it would have: the request came too late.

    >>> from datetime import datetime, UTC
    >>> from runlife import DEFAULT_LIFECYCLE as lc, Status
    >>> t0 = datetime(2026, 3, 10, 2, tzinfo=UTC)
    >>> run = lc.transition(Run.create(job="sync", at=t0, initial=Status.QUEUED), "RUNNING", at=t0)
    >>> request = CancelRequest(run_id=run.id, by="ops:ana", at=t0)
    >>> honour_cancel(run, lc.transition(run, "RETRYING", at=t0), request, lc, at=t0).status
    <Status.CANCELLED: 'CANCELLED'>
    >>> honour_cancel(run, lc.transition(run, "SUCCEEDED", at=t0), request, lc, at=t0).status
    <Status.SUCCEEDED: 'SUCCEEDED'>
    """
    if request is None or moved.status not in GOES_ON:
        return moved
    return to_cancelled(run, lifecycle, at=at, message=request.message, note=note)


@attrs.frozen
class _Seen:
    raw: Mapping[str, Any]
    spec: JobSpec
    at: datetime


class _Reading:
    """A read of a job's record in flight, that other callers may wait for."""

    __slots__ = ("done", "spec")

    def __init__(self) -> None:
        self.spec: JobSpec | None = None
        self.done = Latch()


class JobBook:
    """The runtime's jobs by name, and the policy in force for every job of its store.

    A job's policy lives in its stored record, where ``set_policy`` changes it (in
    any process). For a job of this runtime, the policy in force is the job's own
    declaration with the fields set in the stored spec kept
    (`JobSpec.redeclared`): so processes that run different versions of a job's
    code each keep their own, and agree on what was set. For a job the runtime
    does not have, it is the stored spec.

    `fresh` reads the record now (one store read, shared by the callers that ask
    meanwhile; the spec is parsed again only when it changed); `spec` uses what
    was read less than *max_age* seconds of clock time ago.

    Args:
        jobs: the runtime's own jobs.
        guard: the store.
        max_age: how old (clock seconds) a spec `spec` returns may be.
    """

    def __init__(self, jobs: Mapping[str, Job], guard: StoreGuard, *, max_age: float = 5) -> None:
        self.local = dict(jobs)
        self._guard = guard
        self.max_age = timedelta(seconds=max_age)
        self._seen: dict[str, _Seen] = {}
        self._reading: dict[str, _Reading] = {}
        self.workflows: set[str] = set()
        """The names of the workflows among the specs it knows (its own and read)."""
        self._log = structlog.get_logger("runlife.runtime")

    def add_spec(self, name: str, spec: JobSpec) -> None:
        """Know *spec* as the spec of *name* (a workflow of the runtime, say)."""
        self._seen[name] = _Seen(spec.to_spec(), spec, self._guard.clock.now())
        if spec.workflow is not None:
            self.workflows.add(name)

    def get(self, name: str) -> Job | None:
        """The runtime's own job called *name*, if it has one."""
        return self.local.get(name)

    async def spec(self, name: str) -> JobSpec:
        """The policy in force for job *name*, as read at most *max_age* ago.

        Raises:
            JobNotFound: neither this runtime nor the store knows the job.
            InvalidPolicy, InvalidLifecycle: the stored spec of a job this runtime
                does not have cannot be read here.
        """
        seen = self._seen.get(name)
        if seen is not None and self._guard.clock.now() - seen.at < self.max_age:
            return seen.spec
        return await self.fresh(name)

    async def fresh(self, name: str) -> JobSpec:
        """The policy in force for job *name*, read from the store now.

        Callers that ask while a read of the job is in flight share that read
        (the attempts of one batch of claims read their job's record once).
        For a job of this runtime, a record that is missing or cannot be read
        here (a newer runlife wrote it; logged) leaves the job's own declaration.

        Raises:
            The errors of `spec`.
        """
        reading = self._reading.get(name)
        if reading is not None:
            await reading.done.wait()
            if reading.spec is not None:
                return reading.spec
            # That read failed or was cancelled: this caller reads on its own.
        reading = _Reading()
        self._reading[name] = reading
        try:
            reading.spec = await self._read_record(name)
            return reading.spec
        finally:
            if self._reading.get(name) is reading:
                del self._reading[name]
            reading.done.set()

    async def _read_record(self, name: str) -> JobSpec:
        try:
            record = await self._guard.get_job(name)
        except JobNotFound:
            job = self.local.get(name)
            if job is None:
                raise
            return self._learn(name, {}).spec
        return self._learn(name, record.spec).spec

    async def declare(self, job: Job) -> JobRecord:
        """The record a runtime saves for its *job* when it starts: the job's own
        declaration, with the policy fields set in the stored spec kept."""
        try:
            record = await self._guard.get_job(job.name)
        except JobNotFound:
            return job.to_record()
        return record_of(job.name, self._learn(job.name, record.spec).spec)

    def saved(self, record: JobRecord) -> None:
        """Know the spec of *record*, a job's record as its save stored it."""
        self._learn(record.name, record.spec)

    async def set_policy(self, name: str, **changes: Any) -> JobSpec:
        """Set policy fields of job *name* in its stored spec (*changes* as
        `JobSpec.with_policy` takes them) and return the policy now in force.

        Raises:
            JobNotFound: the store has no record of the job.
            InvalidPolicy: a bad value (see `JobSpec.with_policy`), or a stored
                spec that cannot be read here.
            InvalidLifecycle: a stored lifecycle that cannot be read here.
        """
        record = await self._guard.get_job(name)
        stored = JobSpec.from_spec(record.spec) if record.spec else JobSpec()
        changed = stored.with_policy(**changes)
        saved = await self._guard.save_job(
            attrs.evolve(
                record_of(name, changed),
                paused=record.paused,
                last_scheduled_for=record.last_scheduled_for,
            )
        )
        return self._learn(name, saved.spec).spec

    def _learn(self, name: str, raw: Mapping[str, Any]) -> _Seen:
        now = self._guard.clock.now()
        seen = self._seen.get(name)
        if seen is not None and seen.raw == raw:
            seen = _Seen(seen.raw, seen.spec, now)
        else:
            seen = _Seen(copy.deepcopy(dict(raw)), self._read(name, raw), now)
            if seen.spec.workflow is not None:
                self.workflows.add(name)
        self._seen[name] = seen
        return seen

    def _read(self, name: str, raw: Mapping[str, Any]) -> JobSpec:
        job = self.local.get(name)
        try:
            stored = JobSpec.from_spec(raw) if raw else JobSpec()
        except (InvalidPolicy, InvalidLifecycle) as exc:
            if job is None:
                raise
            self._log.error(
                "stored job spec unreadable; the job's own policy applies",
                job=name,
                error=str(exc),
            )
            return job.spec
        return stored if job is None else stored.redeclared(job.spec)

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
