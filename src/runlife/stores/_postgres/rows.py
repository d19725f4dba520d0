"""Rows <-> records: the columns of every table, named once, with their readers and writers.

Each table has a tuple of column names and, beside it, the function that turns a
row of exactly those columns into a record; statements select columns through
these tuples (``sql.py``), so a row is only ever read by destructuring it into
names. JSON columns come back as text and are decoded here, through the core
codec (`runlife._core.codec`), the same forms every store writes.

Writes of runs travel as one JSON document (a row per run, see `new_run_row` and
`move_row`), in the codec's forms: moments as integer microseconds since the
epoch (which the SQL turns into ``timestamptz`` exactly), transitions as
``{"f", "t", "at", "r"}``. Every value a write returns to its caller is computed
here, from the admitted run, before the write is sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from runlife._core import codec
from runlife._core.fast import compile_copier, compile_maker
from runlife._core.queries import CancelRequest, JobRecord
from runlife._core.records import Event, Item, ItemCounts, LogLine
from runlife._core.run import Run
from runlife._core.status import Status, Trigger

__all__ = (
    "CANCEL_COLUMNS",
    "CANDIDATE_COLUMNS",
    "EVENT_COLUMNS",
    "ITEM_COLUMNS",
    "JOB_COLUMNS",
    "LOG_COLUMNS",
    "RUN_COLUMNS",
    "STORED_COLUMNS",
    "cancel_from_row",
    "candidate_from_row",
    "counts_row",
    "event_from_row",
    "item_event_body",
    "item_from_row",
    "item_note",
    "item_row",
    "job_from_row",
    "line_from_row",
    "log_row",
    "lowered",
    "moment",
    "move_row",
    "new_run_row",
    "progress",
    "rows_json",
    "run_from_row",
    "search_terms",
    "stored_from_row",
    "with_json",
)

_EPOCH: Final = codec.EPOCH
_STATUS: Final[Mapping[str, Status]] = {s.value: s for s in Status}
_TRIGGER: Final[Mapping[str, Trigger]] = {t.value: t for t in Trigger}
_state = codec.state_from_text
_loads = json.loads
_raw = codec.raw_dumps
_to_us = codec.to_us
_us = codec.to_us_or_none

_make_run = compile_maker(Run)
_with_json = compile_copier(Run, ("params", "result", "labels", "progress"))


def moment(value: datetime) -> datetime:
    """A ``timestamptz`` as read, in UTC."""
    return _utc(value)


def _utc(moment: datetime) -> datetime:
    # Connections run in UTC, so psycopg already returns UTC moments.
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else _utc(moment)


# -- runs ------------------------------------------------------------------------------

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
    "warnings",
    "parent_id",
    "root_id",
    "workflow_run_id",
    "idempotency_key",
    "priority",
    "version",
    "p_pending",
    "p_running",
    "p_succeeded",
    "p_failed",
    "p_skipped",
    "history",
)
"""The columns a `Run` is read from; ``history`` is the JSON array of its
transitions (``sql.HISTORY``). Reads may add columns after these."""


def progress(pending: int, running: int, succeeded: int, failed: int, skipped: int) -> ItemCounts:
    """The item counts of a run from its ``p_*`` columns."""
    return ItemCounts(
        total=pending + running + succeeded + failed + skipped,
        pending=pending,
        running=running,
        succeeded=succeeded,
        failed=failed,
        skipped=skipped,
    )


def run_from_row(row: Sequence[Any]) -> Run:
    """A `Run` from a row of `RUN_COLUMNS` (and any columns after them)."""
    (id, job, status, state, trigger, params, result, error, labels, created_at,
     scheduled_for, queued_at, started_at, ended_at, due_at, attempts, warnings,
     parent_id, root_id, workflow_run_id, idempotency_key, priority, version,
     pending, running, succeeded, failed, skipped, history, *_) = row  # fmt: skip
    return _make_run(  # type: ignore[no-any-return]
        id,
        job,
        _STATUS[status],
        _state(state),
        _TRIGGER[trigger],
        _loads(params),
        codec.loads(result),
        codec.error_from_json(codec.loads(error)),
        _loads(labels),
        _utc(created_at),
        _utc_or_none(scheduled_for),
        _utc_or_none(queued_at),
        _utc_or_none(started_at),
        _utc_or_none(ended_at),
        _utc_or_none(due_at),
        codec.attempts_from_json(_loads(attempts)),
        codec.history_from_text(history),
        tuple(_loads(warnings)),
        progress(pending, running, succeeded, failed, skipped),
        parent_id,
        root_id,
        workflow_run_id,
        idempotency_key,
        priority,
        version,
    )


CANDIDATE_COLUMNS: Final = (*RUN_COLUMNS, "now")
"""A run offered to a claim, and the store time of the statement that read it."""


def candidate_from_row(row: Sequence[Any]) -> tuple[Run, datetime]:
    """The run and store time of a row of `CANDIDATE_COLUMNS`."""
    *_, now = row
    return run_from_row(row), _utc(now)


STORED_COLUMNS: Final = (*RUN_COLUMNS, "owner", "fence", "lapsed")
"""A run with its hold (owner and fence) and whether its lease has lapsed."""


def stored_from_row(row: Sequence[Any]) -> tuple[Run, str | None, int, bool]:
    """The run, owner, fence and lapse of a row of `STORED_COLUMNS`."""
    *_, owner, fence, lapsed = row
    return run_from_row(row), owner, fence, lapsed


def with_json(run: Run, params: str, result: str, counts: ItemCounts) -> Run:
    """*run* with fresh copies of its JSON parts (from their text) and *counts*: the
    value handed to a caller, who may change its dicts without changing the store's."""
    return _with_json(  # type: ignore[no-any-return]
        run, params=_loads(params), result=_loads(result), labels=dict(run.labels),
        progress=counts,
    )  # fmt: skip


def search_terms(run: Run) -> list[str]:
    """What `RunQuery.text` searches in *run*, lowered as the memory store lowers it
    (``str.lower()``): its job, its error message, its label values."""
    terms = [run.job.lower()]
    if run.error is not None and run.error.message:
        terms.append(run.error.message.lower())
    terms.extend(value.lower() for value in run.labels.values())
    return terms


def _history_rows(run: Run, known: int) -> list[dict[str, Any]]:
    return [
        {"f": str(t.from_), "t": str(t.to), "at": _to_us(t.at), "r": t.reason}
        for t in run.history[known:]
    ]


def new_run_row(run: Run, params: str, result: str) -> str:
    """*run* (admitted, new) as a JSON row of ``sql.RUN_ROWS``, without its ``ord``
    and closing brace; *params* and *result* are its JSON parts as text."""
    head = _raw(
        {
            "id": run.id, "job": run.job, "status": run.status.value, "state": str(run.state),
            "trigger": run.trigger.value, "error": codec.error_to_json(run.error),
            "labels": run.labels, "search": search_terms(run),
            "created_at": _to_us(run.created_at), "scheduled_for": _us(run.scheduled_for),
            "queued_at": _us(run.queued_at), "started_at": _us(run.started_at),
            "ended_at": _us(run.ended_at), "due_at": _us(run.due_at),
            "attempts": codec.attempts_to_json(run.attempts), "warnings": list(run.warnings),
            "parent_id": run.parent_id, "root_id": run.root_id,
            "workflow_run_id": run.workflow_run_id, "idempotency_key": run.idempotency_key,
            "priority": run.priority, "n0": 0, "h": _history_rows(run, 0),
        }
    )  # fmt: skip
    return f'{head[:-1]},"params":{params},"result":{result}'


def move_row(run: Run, known: int, result: str, **extra: Any) -> str:
    """The changed fields of *run* (an admitted successor whose first *known*
    history rows are stored) as a JSON row of ``sql.MOVE_ROWS``, without its
    ``ord`` and closing brace; *extra* adds the write's conditions."""
    head = _raw(
        {
            "id": run.id, "job": run.job, "status": run.status.value, "state": str(run.state),
            "error": codec.error_to_json(run.error), "labels": run.labels,
            "search": search_terms(run), "queued_at": _us(run.queued_at),
            "started_at": _us(run.started_at), "ended_at": _us(run.ended_at),
            "due_at": _us(run.due_at), "attempts": codec.attempts_to_json(run.attempts),
            "warnings": list(run.warnings), "priority": run.priority, "version": run.version,
            "n0": known, "h": _history_rows(run, known), **extra,
        }
    )  # fmt: skip
    return f'{head[:-1]},"result":{result}'


def counts_row(counts: ItemCounts) -> list[int]:
    """The ``counts`` condition of a `move_row`: *counts* from pending to skipped."""
    return [counts.pending, counts.running, counts.succeeded, counts.failed, counts.skipped]


def rows_json(rows: Sequence[str]) -> str:
    """The JSON array of rows made by `new_run_row` or `move_row`, each given its
    ``ord`` (its index)."""
    return "[" + ",".join(f'{row},"ord":{i}}}' for i, row in enumerate(rows)) + "]"


# -- jobs ------------------------------------------------------------------------------

JOB_COLUMNS: Final = (
    "name",
    "spec",
    "max_concurrency",
    "per_label",
    "paused",
    "last_scheduled_for",
    "updated_at",
)


def job_from_row(row: Sequence[Any]) -> JobRecord:
    """A `JobRecord` from a row of `JOB_COLUMNS`."""
    name, spec, max_concurrency, per_label, paused, last_scheduled_for, updated_at = row
    return JobRecord(
        name=name,
        spec=_loads(spec),
        max_concurrency=max_concurrency,
        per_label=_loads(per_label),
        paused=paused,
        last_scheduled_for=_utc_or_none(last_scheduled_for),
        updated_at=_utc_or_none(updated_at),
    )


# -- items -----------------------------------------------------------------------------

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


def item_from_row(row: Sequence[Any]) -> Item:
    """An `Item` from a row of `ITEM_COLUMNS`."""
    run_id, key, phase, status, started_at, ended_at, attempts, note, output = row
    error, reason = codec.item_note_from_json(codec.loads(note))
    return Item(
        run_id=run_id,
        key=key,
        phase=phase,
        status=_STATUS[status],
        started_at=_utc_or_none(started_at),
        ended_at=_utc_or_none(ended_at),
        attempts=attempts,
        error=error,
        output=codec.loads(output),
        reason=reason,
    )


def item_note(item: Item) -> str | None:
    """The ``error`` column of *item*: its error and reason (the codec's item note)."""
    note = codec.item_note_to_json(item.error, item.reason)
    return None if note is None else _raw(note)


def item_row(item: Item, output: str) -> str:
    """*item* (admitted) as a JSON array of ``sql.SAVE_ITEMS``; *output* is its
    output as JSON text."""
    head = _raw([item.key, item.phase, item.status.value, _us(item.started_at),
                 _us(item.ended_at), item.attempts])  # fmt: skip
    return f"{head[:-1]},{item_note(item) or 'null'},{output}]"


def item_event_body(item: Item, output: str) -> str:
    """The body of an ``item`` event: the codec's form of *item*; *output* is its
    output as JSON text."""
    body = codec.item_to_json(item)
    del body["output"]
    return f'{_raw(body)[:-1]},"output":{output}}}'


# -- logs ------------------------------------------------------------------------------

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


def line_from_row(row: Sequence[Any]) -> LogLine:
    """A `LogLine` from a row of `LOG_COLUMNS`."""
    run_id, seq, at, stream, level, message, item, attempt, fields = row
    return LogLine(
        run_id=run_id,
        seq=seq,
        at=_utc(at),
        stream=stream,
        level=level,
        message=message,
        item=item,
        attempt=attempt,
        fields=_loads(fields),
    )


def lowered(message: str) -> str | None:
    """What `search_logs` matches for *message* (``str.lower()``, as the memory
    store does); None when that is the message itself."""
    low = message.lower()
    return None if low == message else low


def log_row(line: LogLine, seq: int, fields: str) -> str:
    """*line* (admitted), numbered *seq*, as a JSON array of ``sql.INSERT_LOGS``;
    *fields* is its fields as JSON text."""
    head = _raw([line.run_id, seq, _to_us(line.at), line.stream, line.level, line.message,
                 lowered(line.message), line.item, line.attempt])  # fmt: skip
    return f"{head[:-1]},{fields}]"


# -- events ----------------------------------------------------------------------------

EVENT_COLUMNS: Final = ("seq", "run_id", "job", "kind", "at", "status", "body")


def event_from_row(row: Sequence[Any]) -> Event:
    """An `Event` from a row of `EVENT_COLUMNS`."""
    seq, run_id, job, kind, at, status, body = row
    data = _loads(body)
    item = line = progress = lines = None
    if kind == "item":
        item = codec.item_from_json(data)
        counts = data.get("n")  # not in the events of schemas before it was written
        progress = None if counts is None else codec.counts_from_json(counts)
    elif kind == "log":
        line, lines = codec.line_from_json(data["line"]), data["lines"]
    return Event(
        kind=kind,
        run_id=run_id,
        job=job,
        at=_utc(at),
        status=_STATUS[status],
        transition=codec.transition_from_json(data) if kind == "transition" else None,
        item=item,
        log=line,
        lines=lines,
        progress=progress,
        seq=seq,
    )


# -- cancel requests ---------------------------------------------------------------------

CANCEL_COLUMNS: Final = ("run_id", "requested_by", "reason", "at")


def cancel_from_row(row: Sequence[Any]) -> CancelRequest:
    """A `CancelRequest` from a row of `CANCEL_COLUMNS`."""
    run_id, by, reason, at = row
    return CancelRequest(run_id=run_id, by=by, reason=reason, at=moment(at))
