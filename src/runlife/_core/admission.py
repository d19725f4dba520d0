"""What a store may accept: the checks every store runs before it writes.

A store calls these and persists what they return; it never decides on its own
whether a value or a write is acceptable, so every store accepts the same writes
and returns the same values.

- `admit_new` checks a run given to ``create_run``;
- `admit_successor` checks a run given to ``update_run`` against the stored one
  (the store's last line of defence of the lifecycle);
- `admit_item`, `admit_items`, `admit_lines` and `admit_job` check the other
  records, `check_item_query` the arguments of ``items``.

Each returns the value *as stored*: every moment in UTC, state names as the
lifecycle's own state objects, fresh dicts and tuples, so that a store returns
the same value whatever it keeps underneath. Nothing here does I/O.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs

from runlife._core.codec import decode_cursor, from_us, state_from_text
from runlife._core.fast import compile_copier
from runlife._core.lifecycle import Lifecycle
from runlife._core.queries import JobRecord, LogQuery, RunQuery
from runlife._core.records import Attempt, ErrorInfo, Item, ItemCounts, LogLine, Transition
from runlife._core.run import Run
from runlife._core.spec import lifecycle_of
from runlife._core.status import TERMINAL, Status, Trigger
from runlife._core.values import (
    INT32,
    INT64,
    MAX_PAGE,
    check_count,
    check_int,
    check_json,
    check_labels,
    check_lease,
    check_moment,
    check_page,
    check_text,
    is_text,
)
from runlife.exceptions import ConcurrentUpdate, InvalidValue, NotASuccessor, RunlifeError

__all__ = (
    "IDENTITY",
    "admit_item",
    "admit_items",
    "admit_job",
    "admit_kept",
    "admit_lines",
    "admit_log_query",
    "admit_new",
    "admit_run_query",
    "admit_successor",
    "check_cancel_request",
    "check_claim_args",
    "check_events_args",
    "check_expected_progress",
    "check_item_query",
    "check_progress",
    "check_purge_args",
    "check_run_ids",
    "check_search",
    "check_statuses",
    "check_timeout",
)

IDENTITY: Final = (
    "id",
    "job",
    "created_at",
    "trigger",
    "scheduled_for",
    "parent_id",
    "root_id",
    "workflow_run_id",
    "idempotency_key",
    "params",
)
"""The fields of a run that no write may change once it is stored."""

_STARTS: Final = frozenset({Status.PENDING, Status.QUEUED})
_STREAMS: Final = frozenset({"log", "stdout", "stderr"})
_NO_PROGRESS: Final = ItemCounts()
_VERSIONS: Final = (0, INT64[1])
_SEQUENCES: Final = (tuple, list)  # for isinstance: a tuple of types costs less than a union

_stored_run = compile_copier(
    Run,
    (
        "state",
        "created_at",
        "scheduled_for",
        "queued_at",
        "started_at",
        "ended_at",
        "due_at",
        "attempts",
        "history",
        "warnings",
        "labels",
        "progress",
    ),
)


_SAFE_YEARS: Final = range(2, 9999)
"""The years of a moment that needs no look at its range (the common case)."""


def _is_utc(moment: object) -> bool:
    """Whether *moment* needs no normalising: an aware UTC datetime well in range
    (the common case, told apart cheaply)."""
    return moment.__class__ is datetime and moment.tzinfo is UTC and moment.year in _SAFE_YEARS


def _utc_column(moments: Sequence[Any]) -> bool:
    """Whether every one of *moments* is as `_is_utc` says, looked at a column at
    a time."""
    if set(map(type, moments)) != {datetime} or set(map(_column("tzinfo"), moments)) != {UTC}:
        return False
    years = set(map(_column("year"), moments))
    return min(years) in _SAFE_YEARS and max(years) in _SAFE_YEARS


def _plain_moments(moments: Sequence[Any]) -> bool:
    """Whether each of *moments* is None or as `_is_utc` says, in one pass (a run's
    moments, the first one never None)."""
    return moments[0] is not None and all(m is None or _is_utc(m) for m in moments)


def _utc(field: str, moment: datetime) -> datetime:
    if _is_utc(moment):  # the common case, checked cheaply
        return moment
    out = check_moment(field, moment)
    assert out is not None
    return out


def _utc_or_none(field: str, moment: datetime | None) -> datetime | None:
    return None if moment is None else _utc(field, moment)


def _check_error(field: str, error: object) -> ErrorInfo | None:
    if error is None:
        return None
    if not isinstance(error, ErrorInfo):
        raise InvalidValue(field, error, "an ErrorInfo or None")
    check_text(f"{field}.kind", error.kind, empty=False)
    check_text(f"{field}.type", error.type)
    check_text(f"{field}.message", error.message)
    check_text(f"{field}.traceback", error.traceback, optional=True)
    return error


def _plain_text(value: object) -> bool:
    """Whether *value* is None or a plain str that is text (the common case)."""
    return value is None or (value.__class__ is str and is_text(value))


def _transition(index: int, t: object) -> Transition:
    if (
        t.__class__ is Transition
        and _is_utc(t.at)
        and _plain_text(t.reason)
        and state_from_text(t.from_) is t.from_
        and state_from_text(t.to) is t.to
        and is_text(t.from_)
        and is_text(t.to)
    ):
        return t
    return _transition_checked(index, t)


def _transition_checked(index: int, t: object) -> Transition:
    if not isinstance(t, Transition):
        raise InvalidValue(f"history[{index}]", t, "a Transition")
    from_, to = state_from_text(t.from_), state_from_text(t.to)
    if not is_text(from_) or not is_text(to):
        raise InvalidValue(f"history[{index}]", t, "state names that are text")
    check_text(f"history[{index}].reason", t.reason, optional=True)
    at = _utc(f"history[{index}].at", t.at)
    if from_ is t.from_ and to is t.to and at is t.at:
        return t
    return Transition(from_=from_, to=to, at=at, reason=t.reason)


def _attempt(index: int, a: object) -> Attempt:
    if a.__class__ is Attempt:
        number, started, ended = a.number, a.started_at, a.ended_at
        if (
            number == index + 1
            and number.__class__ is int
            and number <= INT32[1]
            and _is_utc(started)
            and (ended is None or (_is_utc(ended) and ended >= started))
            and _plain_text(a.outcome)
            and a.error is None
        ):
            return a
    return _attempt_checked(index, a)


def _attempt_checked(index: int, a: object) -> Attempt:
    field = f"attempts[{index}]"
    if not isinstance(a, Attempt):
        raise InvalidValue(field, a, "an Attempt")
    if a.number != index + 1 or type(a.number) is not int:
        raise InvalidValue(f"{field}.number", a.number, f"{index + 1} (attempts count from 1)")
    check_int(f"{field}.number", a.number, INT32)
    started = _utc(f"{field}.started_at", a.started_at)
    ended = _utc_or_none(f"{field}.ended_at", a.ended_at)
    if ended is not None and ended < started:
        raise InvalidValue(f"{field}.ended_at", a.ended_at, "a moment at or after started_at")
    check_text(f"{field}.outcome", a.outcome, optional=True)
    _check_error(f"{field}.error", a.error)
    if started is a.started_at and ended is a.ended_at:
        return a
    return attrs.evolve(a, started_at=started, ended_at=ended)


def _check_plain_fields(run: Run, stored: Run | None = None) -> None:
    """The fields of *run* that need no lifecycle; with *stored*, only those that
    differ from it (the stored ones were checked when they entered)."""
    if not isinstance(run, Run):
        raise InvalidValue("run", run, "a Run")
    if run.status.__class__ is not Status:
        raise InvalidValue("status", run.status, "a Status")
    check_text("state", run.state, empty=False)
    check_int("version", run.version, _VERSIONS)
    if stored is None or run.priority != stored.priority:
        check_int("priority", run.priority, INT32)
    if stored is None or run.result is not stored.result:
        check_json(run.result, "result")
    if stored is None or (run.error is not stored.error and run.error != stored.error):
        _check_error("error", run.error)
    if stored is None or run.warnings != stored.warnings:
        if not isinstance(run.warnings, _SEQUENCES):
            raise InvalidValue("warnings", run.warnings, "a tuple of str")
        for index, warning in enumerate(run.warnings):
            check_text(f"warnings[{index}]", warning)
    if stored is not None:
        return  # the identity fields are the stored ones: checked by the caller
    check_text("id", run.id, empty=False)
    check_text("job", run.job, empty=False)
    if run.trigger.__class__ is not Trigger:
        raise InvalidValue("trigger", run.trigger, "a Trigger")
    for name, value in (
        ("parent_id", run.parent_id),
        ("root_id", run.root_id),
        ("workflow_run_id", run.workflow_run_id),
        ("idempotency_key", run.idempotency_key),
    ):
        if value is not None:
            check_text(name, value)
    if not isinstance(run.params, dict):
        raise InvalidValue("params", run.params, "a dict of JSON values")
    check_json(run.params, "params")


def _as_stored(
    run: Run, history: tuple[Transition, ...], lifecycle: Lifecycle, stored: Run | None = None
) -> Run:
    """*run* with the normalised *history* and every other moment in UTC; parts
    equal to *stored*'s are taken from it as they are."""
    state = state_from_text(run.state)
    if state not in lifecycle.states:
        names = ", ".join(str(s) for s in lifecycle.states)
        raise InvalidValue("state", run.state, f"a state of lifecycle {lifecycle.name!r}: {names}")
    if lifecycle.status_of(state) is not run.status:
        raise InvalidValue(
            "status",
            run.status,
            f"{lifecycle.status_of(state)}, the status of its state {state!r}",
        )
    terminal = run.status in TERMINAL
    if terminal and run.ended_at is None:
        raise InvalidValue("ended_at", None, f"the moment the run became {run.status}")
    if not terminal and run.ended_at is not None:
        raise InvalidValue("ended_at", run.ended_at, f"None while the run is {run.status}")
    given: object = run.attempts
    if not isinstance(given, _SEQUENCES):
        raise InvalidValue("attempts", given, "a tuple of Attempt")
    old = () if stored is None else stored.attempts
    kept = len(old)
    attempts = tuple(
        [a if i < kept and a is old[i] else _attempt(i, a) for i, a in enumerate(given)]
    )
    if stored is not None and (run.labels is stored.labels or run.labels == stored.labels):
        labels = stored.labels
    else:
        labels = check_labels("labels", run.labels)
    created, scheduled, queued = run.created_at, run.scheduled_for, run.queued_at
    started, ended, due = run.started_at, run.ended_at, run.due_at
    if not _plain_moments((created, scheduled, queued, started, ended, due)):
        created = _utc("created_at", created)
        scheduled = _utc_or_none("scheduled_for", scheduled)
        queued = _utc_or_none("queued_at", queued)
        started = _utc_or_none("started_at", started)
        ended = _utc_or_none("ended_at", ended)
        due = _utc_or_none("due_at", due)
    return _stored_run(  # type: ignore[no-any-return]
        run,
        state=state,
        created_at=created,
        scheduled_for=scheduled,
        queued_at=queued,
        started_at=started,
        ended_at=ended,
        due_at=due,
        attempts=attempts,
        history=history,
        warnings=run.warnings if run.warnings.__class__ is tuple else tuple(run.warnings),
        labels=labels,
        progress=_NO_PROGRESS,
    )


def _check_moves(
    run_id: str,
    start: str,
    start_at: datetime,
    rows: Sequence[Transition],
    lifecycle: Lifecycle,
) -> str:
    """Walk *rows* from *start*; the state they end in, or `NotASuccessor`."""
    state, latest = start, start_at
    for t in rows:
        if t.from_ != state:
            raise NotASuccessor(
                run_id, state, t.to, f"a history row moves from {t.from_}, the run was in {state}"
            )
        allowed = lifecycle.allowed(state)
        if t.to not in allowed:
            names = ", ".join(sorted(allowed)) or "nothing"
            raise NotASuccessor(
                run_id,
                state,
                t.to,
                f"{state} -> {t.to} is not a move of lifecycle {lifecycle.name!r} "
                f"(allowed from {state}: {names})",
            )
        if t.at < latest:
            raise NotASuccessor(
                run_id, state, t.to, f"the move to {t.to} at {t.at} is earlier than {latest}"
            )
        state, latest = t.to, t.at
    return state


def admit_new(run: Run, lifecycle: Lifecycle) -> Run:
    """Check a run given to ``create_run``; return it as stored.

    A new run has version 0, a state of its job's *lifecycle* with that state's
    status, and a history that starts in a state of status PENDING or QUEUED and
    moves only as *lifecycle* allows, ending in its state.

    Raises:
        InvalidValue: a field is not storable (naming the field and the value).
        NotSerializable: params or result are not JSON.
        NotASuccessor: its history is not a walk of *lifecycle*.
    """
    _check_plain_fields(run)
    if run.version != 0:
        raise InvalidValue("version", run.version, "0 for a new run")
    return _admit_walk(run, lifecycle)


def admit_kept(run: Run, lifecycle: Lifecycle) -> Run:
    """Check a run a store is given as it was kept (a snapshot's), of any version;
    return it as stored. As `admit_new`, but for the version."""
    _check_plain_fields(run)
    return _admit_walk(run, lifecycle)


def _admit_walk(run: Run, lifecycle: Lifecycle) -> Run:
    """*run* as stored, its history checked: a walk of *lifecycle* from a state
    of status PENDING or QUEUED to its state."""
    history = tuple([_transition(i, t) for i, t in enumerate(run.history)])
    stored = _as_stored(run, history, lifecycle)
    start = history[0].from_ if history else stored.state
    if start not in lifecycle.states or lifecycle.status_of(start) not in _STARTS:
        raise NotASuccessor(
            run.id, start, stored.state, f"a new run starts in PENDING or QUEUED, not in {start}"
        )
    end = _check_moves(run.id, start, stored.created_at, history, lifecycle)
    if end != stored.state:
        raise NotASuccessor(
            run.id, end, stored.state, f"its history ends in {end}, its state is {stored.state}"
        )
    return stored


def admit_successor(
    stored: Run, run: Run, *, expected_version: int, lifecycle: Lifecycle
) -> tuple[Run, int]:
    """Check a run given to ``update_run`` against *stored*; return it as stored,
    with how many of its history rows were stored already (the rest are new).

    The store has checked that ``stored.version == expected_version`` (a
    mismatch is a `ConcurrentUpdate`). A successor then:

    - continues a stored run that is not terminal;
    - keeps every field of `IDENTITY`;
    - carries the stored history unchanged, followed by moves of *lifecycle*
      (from the stored state, never back in time) that end in its state;
    - has version ``expected_version + 1``, or higher by one per appended move;
    - keeps the stored attempts, except that the last one may have ended, and
      adds attempts numbered on from there.

    Raises:
        NotASuccessor: naming what the write broke.
        InvalidValue, NotSerializable: a field is not storable.
    """
    rid = stored.id
    if stored.status in TERMINAL:
        raise NotASuccessor(
            rid, stored.state, run.state, f"it is {stored.status}, and a terminal run never changes"
        )
    if not isinstance(run, Run):
        raise InvalidValue("run", run, "a Run")
    if _identity(run) != _identity(stored):
        for name in IDENTITY:
            new, old = getattr(run, name), getattr(stored, name)
            if new != old:
                raise NotASuccessor(
                    rid,
                    stored.state,
                    run.state,
                    f"{name} is {old!r:.80} and cannot become {new!r:.80}",
                )
    _check_plain_fields(run, stored)
    n = len(stored.history)
    history = run.history
    if len(history) < n or (
        history[:n] != stored.history and _prefix(history, n) != stored.history
    ):
        raise NotASuccessor(
            rid,
            stored.state,
            run.state,
            f"its history does not extend the stored history of {n} moves",
        )
    added = tuple([_transition(i, t) for i, t in enumerate(history[n:], n)])
    want = expected_version + max(1, len(added))
    if run.version != want:
        raise NotASuccessor(
            rid,
            stored.state,
            run.state,
            f"its version is {run.version}, a write after version {expected_version} "
            f"with {len(added)} new moves has version {want}",
        )
    start_at = stored.history[-1].at if stored.history else stored.created_at
    end = _check_moves(rid, stored.state, start_at, added, lifecycle)
    out = _as_stored(run, (*stored.history, *added), lifecycle, stored)
    if end != out.state:
        raise NotASuccessor(
            rid, stored.state, out.state, f"its history ends in {end}, its state is {out.state}"
        )
    old_attempts, attempts = stored.attempts, out.attempts
    keep = max(len(old_attempts) - 1, 0)
    if len(attempts) < len(old_attempts) or attempts[:keep] != old_attempts[:keep]:
        raise NotASuccessor(
            rid, stored.state, out.state, "its attempts do not continue the stored attempts"
        )
    if old_attempts:
        last, now = old_attempts[-1], attempts[keep]
        # The last stored attempt may end now; once ended, it never changes.
        if now.started_at != last.started_at or (last.ended_at is not None and now != last):
            raise NotASuccessor(
                rid, stored.state, out.state, "its attempts do not continue the stored attempts"
            )
    return out, n


def _identity(run: Run) -> tuple[object, ...]:
    return (run.id, run.job, run.created_at, run.trigger, run.scheduled_for, run.parent_id,
            run.root_id, run.workflow_run_id, run.idempotency_key, run.params)  # fmt: skip


def _prefix(history: tuple[Transition, ...], n: int) -> tuple[Transition, ...]:
    # Equal histories may differ in how their moments are written (another UTC
    # offset): compare them normalised.
    return tuple(_transition(i, t) for i, t in enumerate(history[:n]))


def admit_item(item: Item) -> Item:
    """Check an item given to ``save_item``; return it as stored (output kept as given).

    Raises:
        InvalidValue: a field is not storable (naming the field and the value).
        NotSerializable: its output is not JSON.
    """
    if not isinstance(item, Item):
        raise InvalidValue("item", item, "an Item")
    check_text("item.run_id", item.run_id, empty=False)
    check_text("item.key", item.key, empty=False)
    check_text("item.phase", item.phase, optional=True)
    check_text("item.reason", item.reason, optional=True)
    if item.status.__class__ is not Status:
        raise InvalidValue("item.status", item.status, "a Status")
    check_int("item.attempts", item.attempts, (0, INT32[1]))
    _check_error("item.error", item.error)
    check_json(item.output, f"item {item.key!r} output")
    started = _utc_or_none("item.started_at", item.started_at)
    ended = _utc_or_none("item.ended_at", item.ended_at)
    if started is item.started_at and ended is item.ended_at:
        return item
    return attrs.evolve(item, started_at=started, ended_at=ended)


def admit_items(items: Sequence[Item], claimed: str | None = None) -> tuple[Item, ...]:
    """Check items given to ``save_items``; return them as stored. They are items
    of one run: with *claimed* (the run of the writer's claim), of that run.

    Raises:
        InvalidValue: a field is not storable, or the items are of several runs
            (naming the item and the field).
        NotSerializable: an output is not JSON.
    """
    try:
        plain = _plain_items(items, claimed)
    except TypeError:  # an unhashable value where text belongs: named below
        plain = False
    if plain:
        return tuple(items)
    out: list[Item] = []
    run_id = claimed
    for index, item in enumerate(items):
        try:
            stored = admit_item(item)
        except InvalidValue as exc:
            raise InvalidValue(
                f"items[{index}]{exc.field.removeprefix('item')}", exc.value, exc.expected
            ) from None
        if run_id is None:
            run_id = stored.run_id
        elif stored.run_id != run_id:
            what = f"{run_id!r}, the claimed run" if claimed else f"{run_id!r}, the run of items[0]"
            raise InvalidValue(f"items[{index}].run_id", stored.run_id, what)
        out.append(stored)
    return tuple(out)


def check_item_query(
    run_id: object, status: object, phase: object, after: object, limit: object
) -> Status | None:
    """Check the arguments of ``items``; return the status (or None).

    Raises:
        InvalidValue: naming the argument and the value.
    """
    check_text("run_id", run_id)
    check_text("phase", phase, optional=True)
    check_text("after", after, optional=True, empty=False)
    if limit is not None:
        check_page("limit", limit)
    if status is None:
        return None
    (one,) = check_statuses("status", (status,))
    return one


_TEXT: Final[frozenset[type]] = frozenset({str})
_TEXT_OR_NONE: Final[frozenset[type]] = frozenset({str, type(None)})
_column = operator.attrgetter


def _is_ascii_text(text: str) -> bool:
    """Whether *text* is ASCII without NUL (what a plain line holds)."""
    return text.isascii() and "\x00" not in text


def _texts(
    column: Sequence[Any],
    kinds: frozenset[type] = _TEXT,
    good: Callable[[str], bool] = _is_ascii_text,
) -> bool:
    """Whether every value of *column* is of *kinds* (str, or None too) and each
    str among them *good*, each distinct one looked at once. The classes are
    looked at first: a set keeps one of the values that are equal, and a str
    subclass equals its str."""
    if not set(map(type, column)) <= kinds:
        return False
    return all(text is None or good(text) for text in set(column))


_NONE: Final[frozenset[type]] = frozenset({type(None)})
_MOMENT_OR_NONE: Final[frozenset[type]] = frozenset({datetime, type(None)})


def _plain_items(items: Sequence[Item], claimed: str | None) -> bool:
    """Whether the items are plain (what `admit_item` accepts as it is, all of one
    run: *claimed* if given), checked a column at a time. False says only that
    some item needs the item-by-item check (which names what is wrong)."""
    if not items or set(map(type, items)) != {Item}:
        return not items
    run_ids = set(map(_column("run_id"), items))
    if len(run_ids) != 1 or (claimed is not None and run_ids != {claimed}):
        return False
    keys = list(map(_column("key"), items))
    if not _texts([*run_ids, *keys], _TEXT, is_text) or "" in run_ids or "" in keys:
        return False
    if not _texts(list(map(_column("phase"), items)), _TEXT_OR_NONE, is_text):
        return False
    if not _texts(list(map(_column("reason"), items)), _TEXT_OR_NONE, is_text):
        return False
    if set(map(type, map(_column("status"), items))) != {Status}:
        return False
    if not set(map(type, map(_column("error"), items))) <= _NONE:
        return False
    attempts = list(map(_column("attempts"), items))
    if set(map(type, attempts)) != {int} or min(attempts) < 0 or max(attempts) > INT32[1]:
        return False
    moments = [*map(_column("started_at"), items), *map(_column("ended_at"), items)]
    if not set(map(type, moments)) <= _MOMENT_OR_NONE:
        return False
    moments = list(filter(None, moments))
    if moments and not _utc_column(moments):
        return False
    try:
        for item in items:
            if item.output is not None:
                check_json(item.output, f"item {item.key!r} output")
    except RunlifeError:  # named by the item-by-item check
        return False
    return True


def admit_lines(
    lines: Sequence[LogLine], claimed: str | None = None, *, flat: list[bool] | None = None
) -> tuple[LogLine, ...]:
    """Check log lines given to ``append_logs``; return them as stored (``seq`` is
    the store's to give). With *claimed* (the run of the writer's claim), every
    line must be of that run. With *flat*, it gets, for each line, whether its
    fields are a dict of scalars (str, int, float, bool, None), which a store
    need not look at again.

    Raises:
        InvalidValue: a field is not storable (naming the line, the field and the value).
        NotSerializable: its fields are not JSON.
    """
    try:
        plain = _plain_batch(lines, claimed)
    except TypeError:  # an unhashable value where text belongs: named below
        plain = False
    if plain:
        if flat is not None:
            flat.extend([True] * len(lines))
        return tuple(lines)
    out: list[LogLine] = []
    append = out.append
    # The texts of a batch repeat (its run, levels, field names, hosts): each
    # is checked once (a str never changes).
    good: set[str] = set()
    for index, line in enumerate(lines):
        # Most lines are plain (ASCII text, flat fields, a UTC time): checked
        # cheaply; any other line takes the full check, which names what is wrong.
        if line.__class__ is LogLine and _plain_line(line, claimed, good):
            append(line)
            if flat is not None:
                flat.append(True)
        else:
            append(_admit_line(index, line, claimed))
            if flat is not None:
                flat.append(False)
    return tuple(out)


_SCALAR_KINDS: Final = frozenset({str, int, float, bool, type(None)})


def _of_kind(values: Sequence[Any], kinds: Sequence[type], kind: type) -> list[Any]:
    """The values of *values* whose class (in *kinds*, beside them) is *kind*."""
    return list(itertools.compress(values, map(operator.is_, kinds, itertools.repeat(kind))))


def _plain_batch(lines: Sequence[LogLine], claimed: str | None) -> bool:
    """Whether every line of *lines* is plain (what `_plain_line` checks of one),
    checked a column at a time: each distinct value of a column is looked at
    once, and the columns are walked by the interpreter's own loops (map,
    compress), not a bytecode loop per line. False says only that some line
    needs the line-by-line check (which names what is wrong)."""
    if not lines or set(map(type, lines)) != {LogLine}:
        return not lines
    run_ids = list(map(_column("run_id"), lines))
    if not _texts(run_ids) or "" in run_ids:
        return False
    if claimed is not None and set(run_ids) != {claimed}:
        return False
    streams = list(map(_column("stream"), lines))
    if not set(map(type, streams)) <= _TEXT or not set(streams) <= _STREAMS:
        return False
    levels = list(map(_column("level"), lines))
    if not _texts(levels):
        return False
    for level in set(levels):
        if not level.islower():
            return False
    if not _texts(list(map(_column("message"), lines))):
        return False
    if not _texts(list(map(_column("item"), lines)), _TEXT_OR_NONE):
        return False
    attempts = list(map(_column("attempt"), lines))
    attempt_kinds = set(map(type, attempts))
    if not attempt_kinds <= {int, type(None)}:
        return False
    if int in attempt_kinds:
        numbers = set(filter(functools.partial(operator.is_not, None), attempts))
        if not (min(numbers) >= 1 and max(numbers) <= INT32[1]):
            return False
    if not _utc_column(list(map(_column("at"), lines))):
        return False
    every = list(map(_column("fields"), lines))
    if set(map(type, every)) != {dict}:
        return False
    keys = list(itertools.chain.from_iterable(every))
    if keys and not _texts(keys):
        return False
    values = list(itertools.chain.from_iterable(map(dict.values, every)))
    kinds = list(map(type, values))
    present = set(kinds)
    if not present <= _SCALAR_KINDS:
        return False
    if str in present and not _texts(_of_kind(values, kinds, str)):
        return False
    if int in present:
        ints = _of_kind(values, kinds, int)
        if not (min(ints) >= INT64[0] and max(ints) <= INT64[1]):
            return False
    return float not in present or all(map(math.isfinite, _of_kind(values, kinds, float)))


_PLAIN_VALUES: Final = frozenset({bool, type(None)})


def _plain_line(line: LogLine, claimed: str | None, good: set[str]) -> bool:
    # Written out, not factored: this runs once per line of every log. A text in
    # *good* is a str found ASCII without NUL already.
    run_id, level, message, item = line.run_id, line.level, line.message, line.item
    if run_id.__class__ is not str or level.__class__ is not str or message.__class__ is not str:
        return False
    if not run_id:
        return False
    if run_id not in good:
        if not (run_id.isascii() and "\x00" not in run_id):
            return False
        good.add(run_id)
    if claimed is not None and run_id != claimed:
        return False
    if line.stream not in _STREAMS:
        return False
    if not (level.isascii() and level.islower() and "\x00" not in level):
        return False
    if message not in good:
        if not (message.isascii() and "\x00" not in message):
            return False
        good.add(message)
    if item is not None:
        if item.__class__ is not str:
            return False
        if item not in good:
            if not (item.isascii() and "\x00" not in item):
                return False
            good.add(item)
    attempt = line.attempt
    if attempt is not None and not (attempt.__class__ is int and 1 <= attempt <= INT32[1]):
        return False
    at = line.at
    if not (at.__class__ is datetime and at.tzinfo is UTC and at.year in _SAFE_YEARS):
        return False
    fields = line.fields
    if fields.__class__ is not dict:
        return False
    for key, value in fields.items():
        if key.__class__ is not str:
            return False
        if key not in good:
            if not (key.isascii() and "\x00" not in key):
                return False
            good.add(key)
        kind = value.__class__
        if kind is str:
            if value not in good:
                if not value.isascii() or "\x00" in value:
                    return False
                good.add(value)
        elif kind is int:
            if not INT64[0] <= value <= INT64[1]:
                return False
        elif kind is float:
            if not math.isfinite(value):
                return False
        elif kind not in _PLAIN_VALUES:
            return False
    return True


def _admit_line(index: int, line: LogLine, claimed: str | None) -> LogLine:
    field = f"lines[{index}]"
    if not isinstance(line, LogLine):
        raise InvalidValue(field, line, "a LogLine")
    check_text(f"{field}.run_id", line.run_id, empty=False)
    if claimed is not None and line.run_id != claimed:
        raise InvalidValue(f"{field}.run_id", line.run_id, f"{claimed!r}, the claimed run")
    if line.stream not in _STREAMS:
        raise InvalidValue(f"{field}.stream", line.stream, "'log', 'stdout' or 'stderr'")
    check_text(f"{field}.level", line.level, empty=False)
    if line.level != line.level.lower():
        raise InvalidValue(f"{field}.level", line.level, "a lowercase level such as 'info'")
    check_text(f"{field}.message", line.message)
    check_text(f"{field}.item", line.item, optional=True)
    if line.attempt is not None:
        check_int(f"{field}.attempt", line.attempt, (1, INT32[1]))
    check_json(dict(line.fields), f"{field}.fields")
    at = _utc(f"{field}.at", line.at)
    return line if at is line.at else attrs.evolve(line, at=at)


def admit_job(job: JobRecord) -> JobRecord:
    """Check a job record given to ``save_job``; return it as stored.

    Raises:
        InvalidValue: a field is not storable (naming the field and the value).
        NotSerializable: its spec is not JSON.
    """
    if not isinstance(job, JobRecord):
        raise InvalidValue("job", job, "a JobRecord")
    check_text("name", job.name, empty=False)
    check_json(dict(job.spec), f"job {job.name!r} spec")
    lifecycle_of(job.spec)  # a spec is empty or a versioned JobSpec form
    if job.max_concurrency is not None:
        check_int("max_concurrency", job.max_concurrency, (1, INT32[1]))
    per_label = {}
    for key, cap in job.per_label.items():
        check_text("per_label key", key, empty=False)
        per_label[key] = check_int(f"per_label[{key!r}]", cap, (1, INT32[1]))
    last = check_moment("last_scheduled_for", job.last_scheduled_for, optional=True)
    return attrs.evolve(job, per_label=per_label, last_scheduled_for=last, spec=dict(job.spec))


# -- the port's other arguments ---------------------------------------------------

_TIME_FIELDS: Final = ("created", "started", "ended")


def admit_run_query(query: RunQuery) -> tuple[RunQuery, tuple[datetime, str] | None]:
    """Check a query given to ``list_runs`` or ``count_runs``; return it with its
    moments in UTC, and the position its cursor continues after (None: the start).

    Raises:
        InvalidValue: naming the field and the value.
    """
    if not isinstance(query, RunQuery):
        raise InvalidValue("query", query, "a RunQuery")
    check_text("job", query.job, optional=True)
    if query.field not in _TIME_FIELDS:
        raise InvalidValue("field", query.field, "'created', 'started' or 'ended'")
    check_labels("labels", query.labels)
    check_text("text", query.text, optional=True)
    check_text("workflow_run_id", query.workflow_run_id, optional=True)
    check_text("parent_id", query.parent_id, optional=True)
    check_page("limit", query.limit)
    since = check_moment("since", query.since, optional=True)
    until = check_moment("until", query.until, optional=True)
    after = None
    if query.cursor is not None:
        us, run_id = decode_cursor(query.cursor, int, str)
        after = (from_us(check_int("cursor", us)), run_id)
    if since is not query.since or until is not query.until:
        query = attrs.evolve(query, since=since, until=until)
    return query, after


def admit_log_query(query: LogQuery) -> tuple[LogQuery, int]:
    """Check a query given to ``logs``; return it with the ``seq`` its cursor
    continues after (0: the start).

    Raises:
        InvalidValue: naming the field and the value.
    """
    if not isinstance(query, LogQuery):
        raise InvalidValue("query", query, "a LogQuery")
    check_text("run_id", query.run_id, empty=False)
    if query.stream is not None and query.stream not in _STREAMS:
        raise InvalidValue("stream", query.stream, "'log', 'stdout', 'stderr' or None")
    check_text("item", query.item, optional=True)
    check_text("level", query.level, optional=True)
    check_page("limit", query.limit)
    after = 0
    if query.cursor is not None:
        (after,) = decode_cursor(query.cursor, int)
        check_int("cursor", after, (0, INT64[1]))
    return query, after


def check_search(run_id: object, text: object, limit: object) -> None:
    """Check the arguments of ``search_logs``."""
    check_text("run_id", run_id, empty=False)
    check_text("text", text)
    check_page("limit", limit)


# The jobs mappings of the latest claims checked, each with a copy: a worker (or a
# workflow driver) claims with the same mapping again and again, and comparing it
# with its copy (in C, the lifecycles by identity) costs a fraction of checking a
# thousand job names once more.
_CLAIMED: dict[int, tuple[Mapping[Any, Any], dict[Any, Any]]] = {}
_CLAIMED_MAX: Final = 16


def check_claim_args(worker: object, jobs: object, limit: object, lease: object) -> timedelta:
    """Check the arguments of ``claim``; return the lease."""
    check_text("worker", worker, empty=False)
    if not isinstance(jobs, Mapping):
        raise InvalidValue("jobs", jobs, "a mapping of job names to lifecycles")
    seen = _CLAIMED.get(id(jobs))
    if seen is None or seen[0] is not jobs or jobs != seen[1]:
        for name, lifecycle in jobs.items():
            check_text("jobs key", name, empty=False)
            if not isinstance(lifecycle, Lifecycle):
                raise InvalidValue(f"jobs[{name!r}]", lifecycle, "a Lifecycle")
        if len(_CLAIMED) >= _CLAIMED_MAX:
            _CLAIMED.clear()
        _CLAIMED[id(jobs)] = (jobs, dict(jobs))
    check_count("limit", limit)
    return check_lease("lease", lease)


def check_cancel_request(run_id: object, by: object, reason: object) -> None:
    """Check the arguments of ``request_cancel``: a run id, who asks (text, not
    empty) and why (text, or None)."""
    check_text("run_id", run_id, empty=False)
    check_text("by", by, empty=False)
    check_text("reason", reason, optional=True)


def check_run_ids(field: str, run_ids: object) -> tuple[str, ...]:
    """A collection of run ids (at most `MAX_PAGE`), as a tuple without repeats."""
    expected = f"a collection of at most {MAX_PAGE} run ids"
    if isinstance(run_ids, str) or not isinstance(run_ids, Iterable):
        raise InvalidValue(field, run_ids, expected)
    given = tuple(run_ids)
    for index, run_id in enumerate(given):
        check_text(f"{field}[{index}]", run_id, empty=False)
    out = tuple(dict.fromkeys(given))
    if len(out) > MAX_PAGE:
        raise InvalidValue(field, f"{len(out)} ids", expected)
    return out


def check_events_args(after: object, run_id: object, limit: object) -> int:
    """Check the arguments of ``events``; return the ``seq`` to read after."""
    check_text("run_id", run_id, optional=True)
    check_page("limit", limit)
    if after is None:
        return 0
    return check_int("after", after, (0, INT64[1]))


_COUNTS: Final = tuple(field.name for field in attrs.fields(ItemCounts))


def check_expected_progress(value: object) -> ItemCounts | None:
    """The *expected_progress* of ``update_run``: None, or item counts that a
    store can hold (each an int from 0, the total their sum).

    >>> check_expected_progress(ItemCounts(total=1, failed=1)).failed
    1
    """
    if value is None:
        return None
    expected = "None or an ItemCounts of ints from 0, its total their sum"
    if value.__class__ is not ItemCounts:
        raise InvalidValue("expected_progress", value, expected)
    assert isinstance(value, ItemCounts)
    numbers = [getattr(value, name) for name in _COUNTS]
    if any(n.__class__ is not int or not 0 <= n <= INT64[1] for n in numbers) or (
        value.total != sum(numbers[1:])
    ):
        raise InvalidValue("expected_progress", value, expected)
    return value


def check_progress(
    run_id: str, version: int, stored: ItemCounts, expected: ItemCounts | None
) -> None:
    """Refuse, with `ConcurrentUpdate`, a write of run *run_id* (stored at
    *version*) that *expected* other item counts than the *stored* ones.

    >>> check_progress("01J9", 3, ItemCounts(), None)
    >>> check_progress("01J9", 3, ItemCounts(total=1, failed=1), ItemCounts())
    Traceback (most recent call last):
    ...
    runlife.exceptions.ConcurrentUpdate: run 01J9 changed concurrently: its items changed \
since the write was decided (expected no items, found 1 failed of 1); read it again and retry
    """
    if expected is not None and stored != expected:
        raise ConcurrentUpdate(
            run_id,
            version,
            version,
            why=f"its items changed since the write was decided (expected "
            f"{_counts_text(expected)}, found {_counts_text(stored)})",
        )


def _counts_text(counts: ItemCounts) -> str:
    parts = [f"{n} {name}" for name in _COUNTS[1:] if (n := getattr(counts, name))]
    return f"{', '.join(parts)} of {counts.total}" if parts else "no items"


def check_timeout(field: str, value: object) -> float:
    """A wait in seconds: a finite number of 0 or more (at most a day)."""
    expected = "a number of seconds from 0 to 86400"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(field, value, expected)
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 <= seconds <= 86_400:
        raise InvalidValue(field, value, expected)
    return seconds


def check_purge_args(
    older_than: object, batch: object, statuses: object = None
) -> tuple[datetime, frozenset[Status]]:
    """Check the arguments of ``purge``; return the cutoff in UTC and the statuses
    of the runs to delete (every terminal status for *statuses* None)."""
    check_page("batch", batch)
    cutoff = check_moment("older_than", older_than)
    assert cutoff is not None
    if statuses is None:
        return cutoff, TERMINAL
    chosen = check_statuses("statuses", statuses)
    expected = f"terminal statuses ({', '.join(sorted(TERMINAL))}): an active run is never purged"
    for status in chosen:
        if status not in TERMINAL:
            raise InvalidValue("statuses", status, expected)
    if not chosen:
        raise InvalidValue("statuses", statuses, f"None (all of them) or some {expected}")
    return cutoff, chosen


def check_statuses(field: str, statuses: object) -> frozenset[Status]:
    """A collection of statuses (members or their names) as a frozenset of `Status`."""
    if isinstance(statuses, str) or not isinstance(statuses, Iterable):
        raise InvalidValue(field, statuses, "a collection of Status values")
    out = set()
    for status in statuses:
        try:
            out.add(Status(status))
        except ValueError:
            raise InvalidValue(field, status, f"a Status: {', '.join(Status)}") from None
    return frozenset(out)
