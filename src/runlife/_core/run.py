"""`Run`: one execution of a job, as a frozen value."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs

from runlife._core.convert import aware, frozen_labels
from runlife._core.fast import compile_copier, compile_maker
from runlife._core.ids import new_id
from runlife._core.records import Attempt, ErrorInfo, ItemCounts, Transition
from runlife._core.status import Status, Trigger
from runlife._core.values import INT32, check_int, check_json, check_moment, check_text
from runlife.exceptions import InvalidPolicy

__all__ = ("Run",)


class _States(Protocol):
    """What `Run.create` needs of a lifecycle (`runlife.Lifecycle` has it): the run
    values sit below the lifecycles that move them, and never import them."""

    @property
    def initial(self) -> str: ...

    def resolve(self, target: Status | str) -> str: ...

    def status_of(self, state: str) -> Status: ...


def _status(initial: Status | str) -> Status:
    try:
        return Status(initial)
    except ValueError:
        raise InvalidPolicy("initial", initial, "a state of status PENDING or QUEUED") from None


@attrs.frozen(kw_only=True)
class Run:
    """One execution of a job: its status, lifecycle history, attempts and outcome.

    ``due_at`` is when the run is due to move on by itself: the start time of a run
    submitted for later, the end of a retry delay. Each transition sets it anew.

    Runs are values: every change (`Lifecycle.transition`) returns a new `Run` with
    ``version`` one higher, which stores use for compare-and-set. Make new runs with
    `Run.create`; the plain constructor trusts its arguments (stores use it to load).

    >>> from datetime import datetime, UTC
    >>> run = Run.create(job="nightly_backup", at=datetime(2026, 3, 10, 2, tzinfo=UTC),
    ...                  params={"devices": ["core-rtr-01"]}, labels={"site": "dc1"})
    >>> run.status, run.trigger, run.version, run.duration
    (<Status.PENDING: 'PENDING'>, <Trigger.ADHOC: 'ADHOC'>, 0, None)
    """

    id: str
    job: str
    status: Status
    state: str
    trigger: Trigger = Trigger.ADHOC
    params: Mapping[str, Any] = attrs.field(factory=dict)
    result: Any = None
    error: ErrorInfo | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict)
    created_at: datetime
    scheduled_for: datetime | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    due_at: datetime | None = None
    attempts: tuple[Attempt, ...] = ()
    history: tuple[Transition, ...] = ()
    warnings: tuple[str, ...] = ()
    progress: ItemCounts = attrs.field(factory=ItemCounts)
    parent_id: str | None = None
    root_id: str | None = None
    workflow_run_id: str | None = None
    idempotency_key: str | None = None
    priority: int = 0
    version: int = 0

    @classmethod
    def create(
        cls,
        *,
        job: str,
        at: datetime,
        trigger: Trigger = Trigger.ADHOC,
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        lifecycle: _States | None = None,
        initial: Status | str | None = None,
        id: str | None = None,
        scheduled_for: datetime | None = None,
        parent: Run | None = None,
        workflow_run_id: str | None = None,
        idempotency_key: str | None = None,
        priority: int = 0,
    ) -> Run:
        """Make a new run of *job*, created at *at*, in its lifecycle's initial state.

        Args:
            lifecycle: `DEFAULT_LIFECYCLE` unless given.
            initial: a state or a status (its entry state) to start in instead of
                the lifecycle's initial state; its status must be PENDING or QUEUED.
            parent: the run this one retries, reruns or resumes; sets ``parent_id``
                and ``root_id`` (the first run of the chain).

        Raises:
            NotSerializable: *params* is not JSON; the message names the path.
            InvalidValue: *job* is empty or not text, *at* is not a datetime in
                runlife's range, *priority* is not a 32-bit int (each names the field).
        """
        if lifecycle is None:
            # The default lifecycle's states are the statuses; it starts in PENDING.
            state: str = Status.PENDING if initial is None else _status(initial)
            status = Status(state)
        else:
            state = lifecycle.initial if initial is None else lifecycle.resolve(initial)
            status = lifecycle.status_of(state)
        if status is not Status.PENDING and status is not Status.QUEUED:
            # Attempts and started_at begin with a move into RUNNING.
            raise InvalidPolicy("initial", initial, "a state of status PENDING or QUEUED")
        check_text("job", job, empty=False)
        check_int("priority", priority, INT32)
        check_text("idempotency_key", idempotency_key, optional=True)
        check_text("workflow_run_id", workflow_run_id, optional=True)
        params = dict(params) if params else {}
        check_json(params, "params")
        created_at: datetime = check_moment("at", at)  # type: ignore[assignment]
        scheduled_for = check_moment("scheduled_for", scheduled_for, optional=True)
        fields = (
            id if id is not None else new_id(),
            job,
            status,
            state,
            trigger if trigger.__class__ is Trigger else Trigger(trigger),
            params,
            None,  # result
            None,  # error
            frozen_labels(labels),
            created_at,
            scheduled_for,
            created_at if status is Status.QUEUED else None,  # queued_at
            None,  # started_at
            None,  # ended_at
            scheduled_for,  # due_at
            (),  # attempts
            (),  # history
            (),  # warnings
            _NO_PROGRESS,
            parent.id if parent else None,
            (parent.root_id or parent.id) if parent else None,
            workflow_run_id,
            idempotency_key,
            priority,
            0,  # version
        )
        if cls is Run:  # every field is given, and checked above: set directly
            return _make_run(*fields)  # type: ignore[no-any-return]
        names = [field.name for field in attrs.fields(Run)]
        return cls(**dict(zip(names, fields, strict=True)))  # type: ignore[arg-type]

    @property
    def duration(self) -> timedelta | None:
        """``ended_at - started_at``; None while the run is active or if it never started."""
        if self.ended_at is None or self.started_at is None:
            return None
        return self.ended_at - self.started_at

    def elapsed(self, now: datetime) -> timedelta:
        """How long the run has taken so far (its duration, once it ended).

        Counts from ``started_at``, or from ``created_at`` for a run that has not
        started yet (so a queued run shows how long it has waited).
        """
        start = self.started_at or self.created_at
        return (self.ended_at or aware(now)) - start

    @property
    def is_terminal(self) -> bool:
        """Whether the run is over (its status is terminal)."""
        return self.status.is_terminal

    @property
    def has_warnings(self) -> bool:
        """Whether the run recorded warnings (a run can succeed with warnings)."""
        return bool(self.warnings)

    @property
    def attempt(self) -> int:
        """The number of the current (or last) attempt; 0 before the first."""
        return len(self.attempts)

    if TYPE_CHECKING:

        def _moved(
            self,
            *,
            status: Status,
            state: str,
            history: tuple[Transition, ...],
            attempts: tuple[Attempt, ...],
            queued_at: datetime | None,
            started_at: datetime | None,
            ended_at: datetime | None,
            due_at: datetime | None,
            error: ErrorInfo | None,
        ) -> Run: ...


Run._moved = compile_copier(  # type: ignore[method-assign]
    Run,
    (
        "status",
        "state",
        "history",
        "attempts",
        "queued_at",
        "started_at",
        "ended_at",
        "due_at",
        "error",
    ),
    {"version": "self.version + 1"},
)

_make_run = compile_maker(Run)
_NO_PROGRESS: Final = ItemCounts()
