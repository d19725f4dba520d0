"""The small records a run is made of: transitions, attempts, errors, items, logs, events.

All are frozen attrs values; they are built by the core and the runtime and read by
everyone else. `Run` itself lives in `runlife._core.run`.
"""

from __future__ import annotations

import traceback as _traceback
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

import attrs

from runlife._core.convert import aware, aware_or_none
from runlife._core.status import Status

__all__ = (
    "Attempt",
    "ErrorInfo",
    "ErrorKind",
    "Event",
    "EventKind",
    "Item",
    "ItemCounts",
    "LogLine",
    "Transition",
)

ErrorKind = Literal["error", "timeout", "abandoned", "interrupted", "items", "cancelled"]
"""Why a run or attempt failed.

``error`` an exception in the job, ``timeout`` a deadline passed, ``abandoned`` its
worker was lost, ``interrupted`` its runtime shut down, ``items`` too many of its
items failed, ``cancelled`` a person or the host stopped it.
"""

EventKind = Literal["transition", "item", "log"]


@attrs.frozen(kw_only=True)
class ErrorInfo:
    """Why something failed: a kind, the exception's type, its message and traceback.

    >>> ErrorInfo.from_exception(TimeoutError("no route to host"), kind="timeout").type
    'TimeoutError'
    """

    kind: ErrorKind = "error"
    type: str = ""
    message: str = ""
    traceback: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, *, kind: ErrorKind = "error") -> ErrorInfo:
        """Describe *exc*, keeping its formatted traceback."""
        tb = "".join(_traceback.format_exception(exc)) if exc.__traceback__ else None
        return cls(kind=kind, type=type(exc).__qualname__, message=str(exc), traceback=tb)


@attrs.frozen(kw_only=True)
class Transition:
    """One move of a run between two states of its lifecycle, at a moment, for a reason.

    ``from_`` and ``to`` are state names; for `DEFAULT_LIFECYCLE` they are `Status`
    members.
    """

    from_: str
    to: str
    at: datetime
    reason: str | None = None


@attrs.frozen(kw_only=True)
class Attempt:
    """One try inside a run. ``number`` starts at 1; ``outcome`` is None while it runs.

    ``outcome`` is ``"succeeded"``, ``"cancelled"``, ``"failed"`` or the kind of the
    error that ended it (``"error"``, ``"timeout"``, ``"abandoned"``, ``"interrupted"``).
    """

    number: int
    started_at: datetime
    ended_at: datetime | None = None
    outcome: str | None = None
    error: ErrorInfo | None = None

    @property
    def duration(self) -> timedelta | None:
        """How long the attempt ran; None while it runs."""
        return None if self.ended_at is None else self.ended_at - self.started_at


@attrs.frozen(kw_only=True)
class ItemCounts:
    """How many items of a run are in each status.

    >>> ItemCounts.of([Status.SUCCEEDED, Status.FAILED, Status.RUNNING])
    ItemCounts(total=3, pending=0, running=1, succeeded=1, failed=1, skipped=0)
    """

    total: int = 0
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0

    @classmethod
    def of(cls, statuses: Iterable[Status]) -> ItemCounts:
        """Count *statuses* (of items) into an `ItemCounts`."""
        counts = dict.fromkeys(_BUCKETS, 0)
        total = 0
        for status in statuses:
            total += 1
            counts[_ITEM_BUCKET[status]] += 1
        return cls(total=total, **counts)

    @staticmethod
    def bucket(status: Status) -> str:
        """The field that counts an item in *status* (``"pending"`` ... ``"skipped"``).

        >>> ItemCounts.bucket(Status.CANCELLED)
        'failed'
        """
        return _ITEM_BUCKET[status]

    def moved(self, old: Status | None, new: Status) -> ItemCounts:
        """The counts after one item moved from *old* (None: a new item) to *new*.

        >>> ItemCounts().moved(None, Status.RUNNING).moved(Status.RUNNING, Status.FAILED)
        ItemCounts(total=1, pending=0, running=0, succeeded=0, failed=1, skipped=0)
        """
        counts = {name: getattr(self, name) for name in _BUCKETS}
        total = self.total
        if old is None:
            total += 1
        else:
            counts[_ITEM_BUCKET[old]] -= 1
        counts[_ITEM_BUCKET[new]] += 1
        return ItemCounts(total=total, **counts)

    def moved_all(self, moves: Iterable[tuple[Status | None, Status]]) -> ItemCounts:
        """The counts after each of *moves* (``(old, new)`` as in `moved`), in order.

        >>> ItemCounts().moved_all([(None, Status.PENDING), (Status.PENDING, Status.SKIPPED)])
        ItemCounts(total=1, pending=0, running=0, succeeded=0, failed=0, skipped=1)
        """
        counts = {name: getattr(self, name) for name in _BUCKETS}
        total = self.total
        bucket = _ITEM_BUCKET
        for old, new in moves:
            if old is None:
                total += 1
            else:
                counts[bucket[old]] -= 1
            counts[bucket[new]] += 1
        return ItemCounts(total=total, **counts)

    @property
    def done(self) -> int:
        """Items that reached an outcome (succeeded, failed or skipped)."""
        return self.succeeded + self.failed + self.skipped


_BUCKETS = ("pending", "running", "succeeded", "failed", "skipped")
_ITEM_BUCKET: Mapping[Status, str] = {
    Status.PENDING: "pending",
    Status.QUEUED: "pending",
    Status.RUNNING: "running",
    Status.RETRYING: "running",
    Status.WAITING: "running",
    Status.SUCCEEDED: "succeeded",
    Status.FAILED: "failed",
    Status.CANCELLED: "failed",
    Status.SKIPPED: "skipped",
}


@attrs.frozen(kw_only=True)
class Item:
    """One record, device, container or step that a run processes.

    ``phase`` groups items (``"pre-check"``, ``"change"``); ``attempts`` counts the
    tries it took; ``error`` is the last try's; ``output`` is JSON; ``reason``
    says why a SKIPPED item was skipped (``"succeeded in run ..., which this run
    resumes"``).
    """

    run_id: str
    key: str
    phase: str | None = None
    status: Status = Status.PENDING
    started_at: datetime | None = attrs.field(default=None, converter=aware_or_none)
    ended_at: datetime | None = attrs.field(default=None, converter=aware_or_none)
    attempts: int = 0
    error: ErrorInfo | None = None
    output: Any = None
    reason: str | None = None

    @property
    def duration(self) -> timedelta | None:
        """How long the item took; None until it ended."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


@attrs.frozen(kw_only=True)
class LogLine:
    """One line of a run's log.

    ``seq`` orders the lines of one run (from 1); ``stream`` is ``"log"``, ``"stdout"``
    or ``"stderr"``; ``level`` is lowercase (``"info"``, ``"error"``); ``item`` names
    the item the line belongs to, if any; ``fields`` holds structured context.
    """

    run_id: str
    seq: int
    at: datetime = attrs.field(converter=aware)
    stream: Literal["log", "stdout", "stderr"] = "log"
    level: str = "info"
    message: str = ""
    item: str | None = None
    attempt: int | None = None
    fields: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Event:
    """Something that happened to a run, for live subscribers and hooks.

    ``kind`` says what, and ``status`` is the run's status after it:

    * ``"transition"``: ``transition`` is set;
    * ``"item"``: an item was saved; ``item`` is it, as saved, and ``progress``
      the run's item counts right after it;
    * ``"log"``: lines were appended to the run's log, in one write (a batch):
      ``lines`` says how many, and ``log`` is the last of them (so the batch is
      the lines ``log.seq - lines + 1`` to ``log.seq``).

    ``seq`` orders a store's events.
    """

    kind: EventKind
    run_id: str
    job: str
    at: datetime
    status: Status
    transition: Transition | None = None
    item: Item | None = None
    log: LogLine | None = None
    seq: int | None = None
    progress: ItemCounts | None = None
    lines: int | None = None
