"""Rows <-> records: the columns of every table, named once, with their readers.

Each table (or partial read of one) has a tuple of column names and, beside it,
the function that turns a row of exactly those columns into a record (or a record
into the values of a write). Statements select columns through these tuples
(see ``sql.py``), so a row is always read by destructuring it into names.

Moments are stored as microseconds since the Unix epoch (exact), JSON through
the core codec (`runlife._core.codec`), so that SQLite and PostgreSQL hold the
same JSON. Reading trusts the stored values (they were admitted when written)
and builds records through positional makers, which skip attrs' keyword
plumbing: reading pages of runs and log lines is mostly building records.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, Final

from runlife._core import codec
from runlife._core.fast import compile_copier, compile_maker
from runlife._core.queries import CancelRequest, JobRecord
from runlife._core.records import ErrorInfo, Event, Item, ItemCounts, LogLine, Transition
from runlife._core.run import Run
from runlife._core.status import Status, Trigger

__all__ = (
    "CANCEL_COLUMNS",
    "EVENT_COLUMNS",
    "HEAD_COLUMNS",
    "ITEM_COLUMNS",
    "JOB_COLUMNS",
    "LABEL_COLUMNS",
    "LOG_COLUMNS",
    "LOG_STORED_COLUMNS",
    "MOVE_COLUMNS",
    "NO_PROGRESS",
    "PAGE_COLUMNS",
    "RUN_COLUMNS",
    "RUN_INSERT_COLUMNS",
    "TRANSITION_EVENT_COLUMNS",
    "CLAIMABLE_COLUMNS",
    "HOLD_COLUMNS",
    "ITEM_RUN_COLUMNS",
    "as_returned",
    "cancel_from_row",
    "claimable_from_row",
    "claimable_state",
    "event_from_row",
    "fresh_copy",
    "appended",
    "item_as_returned",
    "item_event_text",
    "item_from_row",
    "item_values",
    "job_from_row",
    "job_values",
    "json_copy",
    "label_rows",
    "log_from_row",
    "log_rows",
    "move_values",
    "page_from_rows",
    "newest_first",
    "progress_from_text",
    "progress_text",
    "queue_position",
    "run_from_row",
    "run_insert_values",
    "transition_event_values",
    "with_progress",
)

_EPOCH: Final = codec.EPOCH
_US: Final = timedelta(microseconds=1)
_STATUS: Final[Mapping[str, Status]] = {s.value: s for s in Status}
_STATUS_TEXT: Final[Mapping[Status, str]] = {s: s.value for s in Status}
_TRIGGER: Final[Mapping[str, Trigger]] = {t.value: t for t in Trigger}
_state = codec.state_from_text
# Status and Trigger are StrEnums: str() of a member is its value, and much cheaper
# than .value (a property).
_loads = json.loads
_stored = codec.stored_loads
_raw = codec.raw_dumps
_to_us = codec.to_us
_to_us_or_none = codec.to_us_or_none
_from_us_or_none = codec.from_us_or_none
_attempts_text = codec.attempts_text
_history_text = codec.history_text

NO_PROGRESS: Final = ItemCounts()

_make_run = compile_maker(Run)
_make_transition = compile_maker(Transition)
_make_log = compile_maker(LogLine)
_with_progress = compile_copier(Run, ("progress",))
_returned = compile_copier(Run, ("params", "result", "progress"))
_item_with_output = compile_copier(Item, ("output",))


def _picker(columns: Sequence[str], *names: str) -> Callable[[Sequence[Any]], Any]:
    """A function that picks the columns *names* (a tuple of them) out of a row of
    *columns*."""
    return itemgetter(*(columns.index(name) for name in names))


def _flat(value: Any) -> bool:
    """Whether the JSON *value* reads back as itself: a scalar, or a dict or list of
    scalars (no tuple, nothing nested)."""
    kind = value.__class__
    if kind is dict:
        items: Any = value.values()
    elif kind is list:
        items = value
    else:
        return kind is not tuple
    for item in items:
        inner = item.__class__
        if inner is dict or inner is list or inner is tuple:
            return False
    return True


def json_copy(value: Any) -> Any:
    """A copy of the JSON *value* as reading it back gives it (lists for tuples,
    fresh containers); a flat one is copied shallowly."""
    if not _flat(value):
        return _loads(_raw(value))
    kind = value.__class__
    return value.copy() if kind is dict or kind is list else value


def _moment(us: int) -> datetime:
    return _EPOCH + timedelta(0, 0, us)


def _error_text(error: ErrorInfo | None) -> str | None:
    return None if error is None else _raw(codec.error_to_json(error))


# -- runs ------------------------------------------------------------------------

RUN_COLUMNS: Final = (
    "id",
    "job",
    "status",
    "state",
    "trigger",
    "params",
    "result",
    "error",
    "labels",
    "created_at",
    "scheduled_for",
    "queued_at",
    "started_at",
    "ended_at",
    "due_at",
    "attempts",
    "history",
    "warnings",
    "progress",
    "parent_id",
    "root_id",
    "workflow_run_id",
    "idempotency_key",
    "priority",
    "version",
)
"""The columns a `Run` is read from, in the order of its fields."""


def progress_from_text(text: str | None) -> ItemCounts:
    """The item counts of a run's ``progress`` column."""
    return NO_PROGRESS if text is None else codec.counts_from_json(_stored(text))


def progress_text(counts: ItemCounts) -> str:
    """The ``progress`` column of *counts*."""
    return _raw(codec.counts_to_json(counts))  # type: ignore[no-any-return]


def run_from_row(row: Sequence[Any]) -> Run:
    """A run from a row of `RUN_COLUMNS`."""
    (id_, job, status, state, trigger, params, result, error, labels, created_at,
     scheduled_for, queued_at, started_at, ended_at, due_at, attempts, history, warnings,
     progress, parent_id, root_id, workflow_run_id, idempotency_key, priority,
     version) = row  # fmt: skip
    return _make_run(  # type: ignore[no-any-return]
        id_,
        job,
        _STATUS[status],
        _state(state),
        _TRIGGER[trigger],
        _stored(params),
        None if result is None else _stored(result),
        None if error is None else codec.error_from_json(_stored(error)),
        _stored(labels),
        _moment(created_at),
        _from_us_or_none(scheduled_for),
        _from_us_or_none(queued_at),
        _from_us_or_none(started_at),
        _from_us_or_none(ended_at),
        _from_us_or_none(due_at),
        codec.attempts_from_text(attempts),
        codec.history_from_text(history),
        () if warnings == "[]" else tuple(_stored(warnings)),
        progress_from_text(progress),
        parent_id,
        root_id,
        workflow_run_id,
        idempotency_key,
        priority,
        version,
    )


def with_progress(run: Run, progress: str | None) -> Run:
    """*run* with the store's item counts of its ``progress`` column."""
    if progress is None:
        return run
    return _with_progress(run, progress=progress_from_text(progress))  # type: ignore[no-any-return]


def as_returned(run: Run, progress: str | None = None) -> Run:
    """The admitted *run* as a write returns it: its params and result as reading
    them back gives them, with the store's item counts of its ``progress`` column.
    (A flat params or result already is what reading gives: kept as it is.)"""
    if progress is None and _flat(run.params) and _flat(run.result):
        return run
    return _returned(  # type: ignore[no-any-return]
        run,
        params=json_copy(run.params),
        result=json_copy(run.result),
        progress=progress_from_text(progress),
    )


_newest_first = _picker(RUN_COLUMNS, "created_at", "id")


def newest_first(row: Sequence[Any]) -> tuple[int, str]:
    """The page order of a row of `RUN_COLUMNS` (sorted in reverse: newest first)."""
    return _newest_first(row)  # type: ignore[no-any-return]


CLAIMABLE_COLUMNS: Final = (*RUN_COLUMNS, "fence")
"""A QUEUED run a claim may take, with its fence."""
_RUN_PART: Final = slice(0, len(RUN_COLUMNS))
_queue_key = _picker(CLAIMABLE_COLUMNS, "priority", "created_at", "id")
_claimable_state = _picker(CLAIMABLE_COLUMNS, "id", "version", "created_at", "progress", "fence")
_fresh = compile_copier(Run, ("params", "labels", "progress"))


def queue_position(row: Sequence[Any]) -> tuple[int, int, str]:
    """The claim order of a row of `CLAIMABLE_COLUMNS`: higher priority first, then
    older, then by id (as `runlife._core.claiming.claim_order`)."""
    priority, created_at, id_ = _queue_key(row)
    return (-priority, created_at, id_)


def claimable_state(row: Sequence[Any]) -> tuple[str, int, int, str | None, int]:
    """The id, version, creation (µs), ``progress`` column and fence of a row of
    `CLAIMABLE_COLUMNS`."""
    return _claimable_state(row)  # type: ignore[no-any-return]


def claimable_from_row(row: Sequence[Any]) -> Run:
    """The run of a row of `CLAIMABLE_COLUMNS`."""
    return run_from_row(row[_RUN_PART])


def fresh_copy(run: Run, params: Any, labels: Mapping[str, str], progress: str | None) -> Run:
    """*run* with *params* and *labels* (dicts no one else holds) and the item counts
    of the ``progress`` column *progress*."""
    return _fresh(  # type: ignore[no-any-return]
        run, params=params, labels=labels, progress=progress_from_text(progress)
    )


RUN_INSERT_COLUMNS: Final = (*RUN_COLUMNS, "error_message")
"""The columns `run_insert_values` writes for a new run (``error_message`` is
the error's message again, for text search)."""


def run_insert_values(run: Run, params: str) -> tuple[Any, ...]:
    """The values of `RUN_INSERT_COLUMNS` for the admitted *run* whose params are
    the JSON *params*."""
    error = run.error
    return (
        run.id,
        run.job,
        str(run.status),
        str(run.state),
        str(run.trigger),
        params,
        None if run.result is None else _raw(run.result),
        _error_text(error),
        _raw(run.labels),
        _to_us(run.created_at),
        _to_us_or_none(run.scheduled_for),
        _to_us_or_none(run.queued_at),
        _to_us_or_none(run.started_at),
        _to_us_or_none(run.ended_at),
        _to_us_or_none(run.due_at),
        _attempts_text(run.attempts),
        _history_text(run.history),
        _raw(list(run.warnings)) if run.warnings else "[]",
        None,
        run.parent_id,
        run.root_id,
        run.workflow_run_id,
        run.idempotency_key,
        run.priority,
        run.version,
        None if error is None else error.message,
    )


MOVE_COLUMNS: Final = (
    "status",
    "state",
    "attempts",
    "queued_at",
    "started_at",
    "ended_at",
    "due_at",
    "error",
    "error_message",
    "result",
    "warnings",
    "version",
    "owner",
    "lease_expires_at",
)
"""The columns a successor rewrites (besides its history, which it appends to):
what a move of the lifecycle, a result or a warning changes, and the hold."""


def appended(
    run: Run, transitions: Sequence[Transition]
) -> tuple[str | None, list[tuple[Any, ...]]]:
    """What *run*'s new *transitions* add: the JSON that appends them to the stored
    history array (the objects, comma-separated, and the closing bracket; None
    when there are none), and their `TRANSITION_EVENT_COLUMNS` rows."""
    if not transitions:
        return None, []
    status, rid, job = str(run.status), run.id, run.job
    events = [
        (rid, job, "transition", _to_us(t.at), status, str(t.from_), str(t.to), t.reason)
        for t in transitions
    ]
    return _history_text(transitions)[1:], events


def move_values(run: Run, owner: str | None, lease: int | None) -> tuple[Any, ...]:
    """The values of `MOVE_COLUMNS` for the admitted successor *run*, held by
    *owner* until *lease* (µs)."""
    error = run.error
    result = run.result
    return (
        str(run.status),
        str(run.state),
        _attempts_text(run.attempts),
        _to_us_or_none(run.queued_at),
        _to_us_or_none(run.started_at),
        _to_us_or_none(run.ended_at),
        _to_us_or_none(run.due_at),
        _error_text(error),
        None if error is None else error.message,
        None if result is None else _raw(result),
        _raw(list(run.warnings)) if run.warnings else "[]",
        run.version,
        owner,
        lease,
    )


HEAD_COLUMNS: Final = ("version", "owner", "fence", "lease_expires_at", "created_at", "progress")
"""What a write checks of a stored run before anything else: its version and
hold (and its creation, which tells a run apart from another one that had its
id before a purge)."""

HOLD_COLUMNS: Final = ("owner", "fence")
"""Who holds a run, under which fence."""

ITEM_RUN_COLUMNS: Final = ("owner", "fence", "status", "job", "progress")
"""What saving an item reads of its run."""

# -- labels ------------------------------------------------------------------------

LABEL_COLUMNS: Final = ("run_id", "key", "value", "status", "created_at")
"""A run's labels are also rows of ``run_labels``, with the run's status and
creation copied beside them for the status + label filters."""


def label_rows(run: Run) -> list[tuple[str, str, str, str, int]]:
    """The `LABEL_COLUMNS` rows of *run*'s labels."""
    status, created = str(run.status), _to_us(run.created_at)
    return [(run.id, key, value, status, created) for key, value in run.labels.items()]


# -- events ------------------------------------------------------------------------

EVENT_COLUMNS: Final = (
    "seq",
    "run_id",
    "job",
    "kind",
    "at",
    "status",
    "from_state",
    "to_state",
    "reason",
    "data",
)
"""An event: a transition keeps its move in columns, an item event its item as JSON."""

TRANSITION_EVENT_COLUMNS: Final = (
    "run_id",
    "job",
    "kind",
    "at",
    "status",
    "from_state",
    "to_state",
    "reason",
)


def transition_event_values(run: Run, transitions: Sequence[Transition]) -> list[tuple[Any, ...]]:
    """The `TRANSITION_EVENT_COLUMNS` rows of *run*'s new *transitions*."""
    status, rid, job = str(run.status), run.id, run.job
    return [
        (rid, job, "transition", _to_us(t.at), status, str(t.from_), str(t.to), t.reason)
        for t in transitions
    ]


def event_from_row(row: Sequence[Any]) -> Event:
    """An event from a row of `EVENT_COLUMNS`."""
    seq, run_id, job, kind, at, status, from_state, to_state, reason, data = row
    transition = item = line = progress = lines = None
    if kind == "transition":
        transition = _make_transition(_state(from_state), _state(to_state), _moment(at), reason)
    elif kind == "item":
        body = _loads(data)
        item = codec.item_from_json(body)
        counts = body.get("n")  # not in the events of files before it was written
        progress = None if counts is None else codec.counts_from_json(counts)
    else:
        body = _loads(data)
        line, lines = codec.line_from_json(body["line"]), body["lines"]
    return Event(
        kind=kind,
        run_id=run_id,
        job=job,
        at=_moment(at),
        status=_STATUS[status],
        transition=transition,
        item=item,
        log=line,
        lines=lines,
        progress=progress,
        seq=seq,
    )


def log_event_text(line: LogLine, lines: int) -> str:
    """The ``data`` of a ``log`` event: *lines* appended to a run's log in one
    write, the last of which is *line* (stored)."""
    return _raw({"lines": lines, "line": codec.line_to_json(line)})  # type: ignore[no-any-return]


# -- items -------------------------------------------------------------------------

ITEM_COLUMNS: Final = (
    "run_id",
    "key",
    "phase",
    "status",
    "started_at",
    "ended_at",
    "attempts",
    "error",
    "output",
)


def item_values(item: Item, output: str) -> tuple[Any, ...]:
    """The values of `ITEM_COLUMNS` for the admitted *item* whose output is the JSON *output*."""
    return (
        item.run_id,
        item.key,
        item.phase,
        _STATUS_TEXT[item.status],
        _to_us_or_none(item.started_at),
        _to_us_or_none(item.ended_at),
        item.attempts,
        _note_text(item.error, item.reason),
        output,
    )


def _note_text(error: ErrorInfo | None, reason: str | None) -> str | None:
    # The error column holds the item's error and its reason (the codec's item note).
    if reason is None:
        return _error_text(error)
    return _raw(codec.item_note_to_json(error, reason))  # type: ignore[no-any-return]


def item_as_returned(item: Item, output: str) -> Item:
    """The admitted *item* as saving it returns it: its output as reading it back
    gives it."""
    if output == "null" and item.output is None:
        return item
    return _item_with_output(item, output=_loads(output))  # type: ignore[no-any-return]


def item_event_text(item: Item, values: Sequence[Any]) -> str:
    """The ``data`` of *item*'s event (the codec's JSON form of it), from its
    `item_values` *values*."""
    run_id, key, phase, status, started, ended, attempts, _, output = values
    body = {"run_id": run_id, "key": key, "phase": phase, "status": status, "s": started,
            "e": ended, "attempts": attempts,
            "err": None if item.error is None else codec.error_to_json(item.error)}  # fmt: skip
    if item.reason is not None:
        body["why"] = item.reason
    return f'{_raw(body)[:-1]},"output":{output}}}'


def item_from_row(row: Sequence[Any]) -> Item:
    """An item from a row of `ITEM_COLUMNS`."""
    run_id, key, phase, status, started_at, ended_at, attempts, note, output = row
    error, reason = (None, None) if note is None else codec.item_note_from_json(_loads(note))
    return Item(
        run_id=run_id,
        key=key,
        phase=phase,
        status=_STATUS[status],
        started_at=_from_us_or_none(started_at),
        ended_at=_from_us_or_none(ended_at),
        attempts=attempts,
        error=error,
        output=_loads(output),
        reason=reason,
    )


# -- logs --------------------------------------------------------------------------

LOG_COLUMNS: Final = (
    "run_id",
    "seq",
    "at",
    "stream",
    "level",
    "message",
    "item",
    "attempt",
    "fields",
)
"""A log line as read; ``fields`` is NULL when it has none."""

LOG_STORED_COLUMNS: Final = (
    "run_id",
    "seq",
    "at",
    "stream",
    "level",
    "mid",
    "item",
    "attempt",
    "fields",
)
"""A log line as stored: its message is the row ``mid`` of ``log_messages``."""

_numbered_log = compile_copier(LogLine, ("seq", "fields"))


def log_rows(
    lines: Sequence[LogLine],
    flat: Sequence[bool],
    seqs: dict[str, int],
    mids: Mapping[str, Mapping[str, int]],
) -> tuple[list[LogLine], list[tuple[Any, ...]]]:
    """The admitted *lines* (*flat*: whether the admission found each one's fields
    scalars) numbered on from *seqs* (the last seq of each run, updated), as a
    read returns them: a flat line numbered as stored is the caller's own, others
    are copies, their fields read back from their JSON. And their rows of
    `LOG_STORED_COLUMNS`, each naming its message's id in *mids* (by run id, then
    message)."""
    stored: list[LogLine] = []
    values: list[tuple[Any, ...]] = []
    add, add_row, epoch, us, raw = stored.append, values.append, _EPOCH, _US, _raw
    for line, plain in zip(lines, flat, strict=True):
        run_id, fields = line.run_id, line.fields
        seq = seqs[run_id] = seqs[run_id] + 1
        text = raw(fields) if fields else None
        # The admission made every time an aware UTC datetime.
        add_row((run_id, seq, (line.at - epoch) // us, line.stream, line.level,
                 mids[run_id][line.message], line.item, line.attempt, text))  # fmt: skip
        if plain or text is None:
            add(line if line.seq == seq else _numbered_log(line, seq=seq, fields=fields))
        else:
            add(_numbered_log(line, seq=seq, fields=_loads(text)))
    return stored, values


def log_from_row(row: Sequence[Any]) -> LogLine:
    """A log line from a row of `LOG_COLUMNS`."""
    run_id, seq, at, stream, level, message, item, attempt, fields = row
    return _make_log(  # type: ignore[no-any-return]
        run_id, seq, _EPOCH + timedelta(0, 0, at), stream, level, message, item, attempt,
        {} if fields is None else _loads(fields),
    )  # fmt: skip


PAGE_COLUMNS: Final = LOG_COLUMNS[1:]
"""A page of one run's log: the lines without their run id (the query has it)."""


def page_from_rows(run_id: str, found: Sequence[Sequence[Any]]) -> tuple[LogLine, ...]:
    """The log lines of *run_id* from rows of `PAGE_COLUMNS`.

    A page is mostly building records: the run id is the query's (one string for
    all lines), and the ``fields`` JSON that lines repeat is decoded once a page,
    each line getting its own copy."""
    decoded: dict[str, tuple[dict[str, Any], bool]] = {}
    epoch, delta, make, loads = _EPOCH, timedelta, _make_log, _loads
    out = []
    for seq, at, stream, level, message, item, attempt, fields in found:
        if fields is None:
            values: dict[str, Any] = {}
        else:
            seen = decoded.get(fields)
            if seen is None:
                values = loads(fields)
                decoded[fields] = (values, _flat(values))
            elif seen[1]:
                values = seen[0].copy()
            else:
                values = loads(fields)
        out.append(
            make(
                run_id, seq, epoch + delta(0, 0, at), stream, level, message, item, attempt, values
            )
        )
    return tuple(out)


# -- jobs --------------------------------------------------------------------------

JOB_COLUMNS: Final = (
    "name",
    "spec",
    "max_concurrency",
    "per_label",
    "paused",
    "last_scheduled_for",
    "updated_at",
)


def job_values(job: JobRecord, now: int) -> tuple[Any, ...]:
    """The values of `JOB_COLUMNS` for the admitted *job*, saved at *now* (µs)."""
    return (
        job.name,
        _raw(job.spec),
        job.max_concurrency,
        _raw(job.per_label),
        int(job.paused),
        _to_us_or_none(job.last_scheduled_for),
        now,
    )


def job_from_row(row: Sequence[Any]) -> JobRecord:
    """A job record from a row of `JOB_COLUMNS`."""
    name, spec, max_concurrency, per_label, paused, last_scheduled_for, updated_at = row
    return JobRecord(
        name=name,
        spec=_loads(spec),
        max_concurrency=max_concurrency,
        per_label=_loads(per_label) if per_label else {},
        paused=bool(paused),
        last_scheduled_for=_from_us_or_none(last_scheduled_for),
        updated_at=_from_us_or_none(updated_at),
    )


# -- cancel requests ---------------------------------------------------------------

CANCEL_COLUMNS: Final = ("run_id", "requested_by", "reason", "at")


def cancel_from_row(row: Sequence[Any]) -> CancelRequest:
    """A cancel request from a row of `CANCEL_COLUMNS`."""
    run_id, by, reason, at = row
    return CancelRequest(run_id=run_id, by=by, reason=reason, at=_moment(at))
