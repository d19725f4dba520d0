"""The values that cross the store port: job records, claims, queries and pages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

import attrs

from runlife._core.records import LogLine
from runlife._core.run import Run
from runlife._core.status import Status, Trigger
from runlife.exceptions import InvalidValue

__all__ = (
    "CancelRequest",
    "Claim",
    "JobRecord",
    "LogPage",
    "LogQuery",
    "Page",
    "RunQuery",
    "cancel_message",
)


def _members(kind: type[Status] | type[Trigger], field: str, value: object) -> frozenset[Any]:
    if value is None:
        return frozenset()
    values: Iterable[Any] = (value,) if isinstance(value, str) else value  # type: ignore[assignment]
    try:
        return frozenset(kind(v) for v in values)
    except (TypeError, ValueError):
        names = ", ".join(kind)
        raise InvalidValue(field, value, f"one or several of {names}") from None


def _statuses(
    value: Status | str | frozenset[Status] | tuple[Status, ...] | None,
) -> frozenset[Status]:
    return _members(Status, "status", value)


def _triggers(
    value: Trigger | str | frozenset[Trigger] | tuple[Trigger, ...] | None,
) -> frozenset[Trigger]:
    return _members(Trigger, "trigger", value)


@attrs.frozen(kw_only=True)
class JobRecord:
    """What a store keeps of a job: its limits, its spec and its schedule state.

    ``max_concurrency`` and ``per_label`` are the job's capacity limits, which the
    store enforces when it claims (``per_label={"device": 1}``: at most one running
    run of this job per value of its ``device`` label). ``spec`` is the rest of the
    job's policy as JSON, for the runtime and the CLI. ``last_scheduled_for`` is the
    latest ``scheduled_for`` of a SCHEDULED run created for the job.
    """

    name: str
    spec: Mapping[str, Any] = attrs.field(factory=dict)
    max_concurrency: int | None = None
    per_label: Mapping[str, int] = attrs.field(factory=dict)
    paused: bool = False
    last_scheduled_for: datetime | None = None
    updated_at: datetime | None = None


@attrs.frozen(kw_only=True)
class Claim:
    """A worker's hold on a run: who holds it, under which fence, until when.

    Every worker write after the claim passes the claim; the store refuses it with
    `LeaseLost` unless ``(run.id, owner, fence)`` still match what it holds.
    ``run`` is the run as it was right after the claim (already RUNNING).
    """

    run: Run
    owner: str
    fence: int
    expires_at: datetime

    @property
    def run_id(self) -> str:
        """The id of the claimed run."""
        return self.run.id


def cancel_message(by: str, reason: str | None = None) -> str:
    """How a cancelled run says who cancelled it and why: the reason of its
    CANCELLED move and the message of its error.

    >>> cancel_message("ops:ana", "change window closed")
    'cancelled by ops:ana: change window closed'
    >>> cancel_message("ops:ana")
    'cancelled by ops:ana'
    """
    return f"cancelled by {by}: {reason}" if reason else f"cancelled by {by}"


@attrs.frozen(kw_only=True)
class CancelRequest:
    """A stored request to cancel a run that a process holds (RUNNING or WAITING).

    The process that holds the run reads the requests of its runs once per
    heartbeat round (``Store.cancel_requests``), cancels the attempt, and ends
    the run CANCELLED with `message`. ``by`` is who asked, ``reason`` why (None:
    no reason given), ``at`` when the store took the request (store time). A
    run keeps its first request until it is purged.

    >>> from datetime import datetime, UTC
    >>> request = CancelRequest(run_id="r1", by="ops:ana", reason="wrong device",
    ...                         at=datetime(2026, 3, 10, 2, tzinfo=UTC))
    >>> request.message
    'cancelled by ops:ana: wrong device'
    """

    run_id: str
    by: str
    reason: str | None = None
    at: datetime

    @property
    def message(self) -> str:
        """What the cancelled run says of it (`cancel_message`)."""
        return cancel_message(self.by, self.reason)


TimeField = Literal["created", "started", "ended"]


@attrs.frozen(kw_only=True)
class RunQuery:
    """A filter over runs; every given criterion must hold.

    ``status`` and ``trigger`` take one value or several; ``labels`` must all match;
    ``since``/``until`` bound ``field`` (created, started or ended at;
    ``since <= t < until``); ``text`` matches case-insensitively in the job name,
    the error message and label values. Pages are newest first (by creation,
    then id), ``limit`` runs at a time, continued by the opaque ``cursor``.

    >>> RunQuery(status="FAILED", labels={"site": "dc1"}).status
    frozenset({<Status.FAILED: 'FAILED'>})
    """

    job: str | None = None
    status: frozenset[Status] = attrs.field(factory=frozenset, converter=_statuses)
    trigger: frozenset[Trigger] = attrs.field(factory=frozenset, converter=_triggers)
    labels: Mapping[str, str] = attrs.field(factory=dict)
    since: datetime | None = None
    until: datetime | None = None
    field: TimeField = "created"
    text: str | None = None
    workflow_run_id: str | None = None
    parent_id: str | None = None
    limit: int = 50
    cursor: str | None = None


@attrs.frozen(kw_only=True)
class Page:
    """One page of runs, newest first; ``next_cursor`` is None on the last page."""

    runs: tuple[Run, ...]
    next_cursor: str | None = None


@attrs.frozen(kw_only=True)
class LogQuery:
    """A filter over one run's log, read in order from after ``cursor``."""

    run_id: str
    stream: str | None = None
    item: str | None = None
    level: str | None = None
    cursor: str | None = None
    limit: int = 500


@attrs.frozen(kw_only=True)
class LogPage:
    """One page of log lines in order; ``next_cursor`` is None once nothing is left."""

    lines: tuple[LogLine, ...]
    next_cursor: str | None = None
