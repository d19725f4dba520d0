"""The live event stream: the store's events, read page by page, as they are stored.

`follow` serves the runtime's ``events``. Events come from the store: each
transition of a run, each item saved (with the run's progress after it), and
each batch of log lines appended (one event per batch and run, with its count
and its last line: a line each would write the log twice). So it sees what
every process wrote, not only this one. Between two reads it waits for one of
the runtime's pulses (this process wrote; the store says it changed: SQLite's
``data_version``, PostgreSQL's LISTEN/NOTIFY, both counted from the store's
opening) or ``poll`` seconds of clock time. The hint only saves time: what is
read is always the store's events after the cursor.

**The cursor.** Each event has the ``seq`` the store gave it, and the store's
events are ordered by it. ``after`` is such a ``seq`` (the events stored after
it), None (every event the store keeps, from the first) or ``"now"`` (only the
events stored after the iteration's first step: nothing is read before). A
monitor that handles an event and keeps its ``seq`` can reconnect with
``after=seq`` and misses nothing, and gets nothing twice.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Sequence
from datetime import timedelta
from typing import Final, Literal, get_args

import attrs

from runlife._core.admission import check_statuses
from runlife._core.records import Event, EventKind
from runlife._core.status import Status
from runlife._core.values import INT64, check_int, check_text
from runlife._runtime.guard import StoreGuard
from runlife._runtime.wake import Pulse, nap
from runlife.abc import Clock
from runlife.exceptions import InvalidValue

__all__ = ("EventFilter", "follow", "event_filter")

# Events read per store call.
_PAGE: Final = 1000


_KINDS: Final = frozenset(get_args(EventKind))


@attrs.frozen
class EventFilter:
    """Which events a stream gives: of *job*, in *statuses*, of *run_id*, of
    *kinds* (None: any)."""

    job: str | None = None
    statuses: frozenset[Status] | None = None
    run_id: str | None = None
    kinds: frozenset[str] | None = None

    def __call__(self, event: Event) -> bool:
        return (
            (self.job is None or event.job == self.job)
            and (self.statuses is None or event.status in self.statuses)
            and (self.run_id is None or event.run_id == self.run_id)
            and (self.kinds is None or event.kind in self.kinds)
        )


def event_filter(
    job: str | None,
    status: Status | str | Iterable[Status | str] | None,
    run_id: str | None,
    kind: str | Iterable[str] | None = None,
) -> EventFilter:
    """The filter of ``events(job=, status=, run_id=, kind=)``: *status* one
    status (or its name) or several; *kind* one kind or several.

    Raises:
        InvalidValue: a job or run id that is not text, a bad status or kind.

    >>> event_filter("backup", "FAILED", None).statuses
    frozenset({<Status.FAILED: 'FAILED'>})
    >>> sorted(event_filter(None, None, None, ["item", "log"]).kinds)
    ['item', 'log']
    """
    check_text("job", job, empty=False, optional=True)
    check_text("run_id", run_id, empty=False, optional=True)
    statuses: frozenset[Status] | None = None
    if status is not None:
        one = isinstance(status, Status | str)
        statuses = check_statuses("status", (status,) if one else status)
        if not statuses:
            raise InvalidValue("status", status, "a Status, or a non-empty collection of them")
    kinds: frozenset[str] | None = None
    if kind is not None:
        given = (kind,) if isinstance(kind, str) else kind
        wanted = "'transition', 'item' or 'log', or a non-empty collection of them"
        if not isinstance(given, Iterable):
            raise InvalidValue("kind", kind, wanted)
        kinds = frozenset(given)
        if not kinds or not kinds <= _KINDS:
            raise InvalidValue("kind", kind, wanted)
    return EventFilter(job, statuses, run_id, kinds)


def check_after(after: object) -> int | Literal["now"] | None:
    """The cursor of ``events(after=)``: None, an event's ``seq`` or ``"now"``.

    Raises:
        InvalidValue: anything else, named.
    """
    if after is None:
        return None
    if after == "now":
        return "now"
    if isinstance(after, str):
        raise InvalidValue("after", after, "an event's seq (an int >= 0), 'now' or None")
    return check_int("after", after, (0, INT64[1]))


async def follow(
    guard: StoreGuard,
    clock: Clock,
    wanted: EventFilter,
    *,
    after: int | Literal["now"] | None,
    pulses: Sequence[Pulse],
    poll: float,
) -> AsyncGenerator[Event, None]:
    """The store's events that *wanted* keeps, from after *after* (see the module
    docstring), as they are stored; it never ends by itself."""
    cursor = 0 if after is None else after
    if cursor == "now":
        cursor = await _last_seq(guard, wanted.run_id)
    assert isinstance(cursor, int)
    while True:
        # Counts taken before the read: a write after it wakes the wait below.
        seen = [(pulse, pulse.count) for pulse in pulses]
        while True:
            page = await guard.events(after=cursor, run_id=wanted.run_id, limit=_PAGE)
            for event in page:
                assert event.seq is not None
                cursor = event.seq
                if wanted(event):
                    yield event
            if len(page) < _PAGE:
                break
        await nap(clock, clock.now() + timedelta(seconds=poll), pulses=seen)


async def _last_seq(guard: StoreGuard, run_id: str | None) -> int:
    cursor = 0
    while True:
        page = await guard.events(after=cursor, run_id=run_id, limit=_PAGE)
        if page:
            last = page[-1].seq
            assert last is not None
            cursor = last
        if len(page) < _PAGE:
            return cursor
