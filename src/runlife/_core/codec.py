"""The JSON form of runlife's records: one codec for every store and every export.

Every store (memory included) writes and reads records through these functions,
so a run reads back the same from each of them; the same forms serve exports,
hooks and machine output. The forms are compact, because stores keep many of
them, and stable, because databases keep them for years:

===============  ============================================================
record           JSON form
===============  ============================================================
moment           int: microseconds since 1970-01-01T00:00:00Z (exact)
`Transition`     ``{"f": from, "t": to, "at": moment, "r": reason}``
`ErrorInfo`      ``{"kind", "type", "message", "traceback"}``
`Attempt`        ``{"n": number, "s": started, "e": ended, "o": outcome, "err": error}``
`Item`           ``{"run_id", "key", "phase", "status", "s", "e", "attempts", "err", "output"}``
                 (and ``"why"``, its reason, when it has one)
item note        an item's error and reason in one object, as SQL stores keep them
                 in its ``error`` column: the `ErrorInfo` form (or none) plus ``"why"``
`ItemCounts`     ``[total, pending, running, succeeded, failed, skipped]``
`LogLine`        ``{"run_id", "seq", "at", "stream", "level", "message", "item",
                 "attempt", "fields"}``
`Run`            an object of its fields by name, each in its form above (``error``,
                 ``attempts``, ``history``, ``progress``; moments as int); its
                 status, state and trigger as text
`JobRecord`      ``{"name", "spec", "max_concurrency", "per_label", "paused",
                 "last_scheduled_for", "updated_at"}``
`CancelRequest`  ``{"run_id", "by", "reason", "at"}``
`Event`          ``{"seq", "kind", "run_id", "job", "at", "status"}`` and, by kind,
                 ``"transition"`` (its form), ``"item"`` and ``"n"`` (the counts
                 after it), or ``"log"`` (the last line) and ``"lines"``
cursor           URL-safe base64 of a JSON array of its parts
===============  ============================================================

State names are written as text and read back as the lifecycle's state objects
(`Status` members for the canonical names).
"""

from __future__ import annotations

import base64
import json
import json.scanner
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from runlife._core.fast import compile_maker
from runlife._core.queries import CancelRequest, JobRecord
from runlife._core.records import Attempt, ErrorInfo, Event, Item, ItemCounts, LogLine, Transition
from runlife._core.run import Run
from runlife._core.status import Status, Trigger
from runlife._core.values import check_json
from runlife.exceptions import InvalidValue

__all__ = (
    "EPOCH",
    "attempts_from_json",
    "attempts_from_text",
    "attempts_text",
    "attempts_to_json",
    "cancel_from_json",
    "cancel_to_json",
    "counts_after_each",
    "counts_from_json",
    "counts_to_json",
    "decode_cursor",
    "dumps",
    "encode_cursor",
    "error_from_json",
    "error_to_json",
    "event_from_json",
    "event_to_json",
    "from_us",
    "from_us_or_none",
    "history_from_text",
    "history_text",
    "item_from_json",
    "item_note_from_json",
    "item_note_to_json",
    "item_output_json",
    "item_to_json",
    "job_from_json",
    "job_to_json",
    "line_from_json",
    "line_to_json",
    "loads",
    "log_fields_json",
    "raw_dumps",
    "run_from_json",
    "run_to_json",
    "state_from_text",
    "stored_loads",
    "to_us",
    "to_us_or_none",
    "transition_from_json",
    "transition_to_json",
    "with_counts",
)

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
# Reading back is the hot path of every store: records are built positionally,
# past attrs' keyword plumbing (these records have no converters or validators).
_make_transition = compile_maker(Transition)
_make_attempt = compile_maker(Attempt)
_make_error = compile_maker(ErrorInfo)


_last_us: tuple[object, int] = (None, 0)


def to_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch (exact, unlike ``timestamp()``); a naive
    *moment* is read as UTC.

    >>> to_us(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC))
    1000005
    """
    # A move writes its moment several times (its history row, its event, its
    # attempt, the run's columns), and a claim one moment for all its runs: the
    # last moment converted is remembered with its value (held, so never another
    # object at its address; one tuple, so threads always see a matching pair).
    global _last_us
    last = _last_us
    if last[0] is moment:
        return last[1]
    if moment.tzinfo is None:
        us = (moment.replace(tzinfo=UTC) - EPOCH) // _US
    else:
        us = (moment - EPOCH) // _US
    _last_us = (moment, us)
    return us


def from_us(us: int) -> datetime:
    """The UTC moment *us* microseconds after the Unix epoch."""
    return EPOCH + timedelta(microseconds=us)


def to_us_or_none(moment: datetime | None) -> int | None:
    return None if moment is None else to_us(moment)


def from_us_or_none(us: int | None) -> datetime | None:
    return None if us is None else EPOCH + timedelta(microseconds=us)


_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _make_raw() -> Any:
    # JSONEncoder.encode builds a C encoder (and a cycle check) on every call;
    # the store's own structures are acyclic, so build it once. A Python whose
    # private signature differs gets the plain encoder.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _encoder.encode
    try:
        c_encode = make(None, _encoder.default, json.encoder.encode_basestring, None,
                        ":", ",", False, False, True)  # fmt: skip
        sample: Any = [{"a": "é\n", "b": [1, 2.5, None, True]}, "x"]
        if "".join(c_encode(sample, 0)) != _encoder.encode(sample):
            return _encoder.encode
    except Exception:
        return _encoder.encode

    def raw(value: Any) -> str:
        return "".join(c_encode(value, 0))

    return raw


raw_dumps: Final = _make_raw()
"""Compact JSON of a value already known to be JSON (no check, no cycle test)."""


def dumps(value: Any, field: str) -> str:
    """Compact JSON of *value*, refused with `NotSerializable` naming *field*."""
    check_json(value, field)
    return raw_dumps(value)  # type: ignore[no-any-return]


_decode: Final = json.JSONDecoder().raw_decode


def loads(text: str | bytes | None) -> Any:
    """The value of JSON *text* (None for None); a fresh value each time.

    >>> loads('{"a": [1]}'), loads("{}"), loads("null"), loads(None)
    ({'a': [1]}, {}, None, None)
    """
    if text is None or text == "null":
        return None
    if text == "{}":
        return {}  # the params and items of most runs: no parser needed
    if text.__class__ is str and text[:1] not in _SPACE and text[-1:] not in _SPACE:
        value, end = _decode(text)
        if end == len(text):
            return value
    return json.loads(text)


_SPACE: Final = frozenset(" \t\n\r")


def _make_stored_loads() -> Any:
    # The decoder's C scanner reads a value in one call, without json.loads's
    # type checks and whitespace matching (what a store wrote has no surrounding
    # space); a text it does not read whole goes to json.loads.
    decoder = json.JSONDecoder()
    make = getattr(json.scanner, "c_make_scanner", None)
    scan = decoder.scan_once if make is None else make(decoder)  # type: ignore[attr-defined]

    def stored_loads(text: str) -> Any:
        try:
            value, end = scan(text, 0)
        except (StopIteration, TypeError):
            return json.loads(text)  # raises the decoder's own error, or reads bytes
        if end != len(text):
            return json.loads(text)
        return value

    return stored_loads


stored_loads: Final = _make_stored_loads()
"""The value of JSON *text* a store wrote (a fresh value each time): as
``json.loads``, faster for compact text.

>>> stored_loads('{"a":[1,2.5,null]}'), stored_loads(' [1] ')
({'a': [1, 2.5, None]}, [1])
"""


_STATUS_BY_NAME: Final[Mapping[str, str]] = {s.value: s for s in Status}


def state_from_text(text: str) -> str:
    """A stored state name as the state object: a `Status` where the name is one."""
    return _STATUS_BY_NAME.get(text, text)


def error_to_json(error: ErrorInfo | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"kind": error.kind, "type": error.type, "message": error.message,
            "traceback": error.traceback}  # fmt: skip


def error_from_json(data: Mapping[str, Any] | None) -> ErrorInfo | None:
    if data is None:
        return None
    return _make_error(  # type: ignore[no-any-return]
        data["kind"], data["type"], data["message"], data.get("traceback")
    )


def attempts_to_json(attempts: Sequence[Attempt]) -> list[dict[str, Any]]:
    return [
        {
            "n": a.number,
            "s": to_us(a.started_at),
            "e": to_us_or_none(a.ended_at),
            "o": a.outcome,
            "err": error_to_json(a.error),
        }
        for a in attempts
    ]


_string: Final = json.encoder.encode_basestring  # the encoder's own (C) quoting of a str


def _error_text(error: ErrorInfo | None) -> str:
    if error is None:
        return "null"
    tb = error.traceback
    return (
        f'{{"kind":{_string(error.kind)},"type":{_string(error.type)},'
        f'"message":{_string(error.message)},"traceback":{"null" if tb is None else _string(tb)}}}'
    )


def attempts_text(attempts: Sequence[Attempt]) -> str:
    """``raw_dumps(attempts_to_json(attempts))``, written out directly (a store
    writes the attempts of a run on every move).

    >>> at = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    >>> attempts_text([Attempt(number=1, started_at=at)])
    '[{"n":1,"s":1000000,"e":null,"o":null,"err":null}]'
    """
    if not attempts:
        return "[]"
    parts = []
    for a in attempts:
        ended, outcome = a.ended_at, a.outcome
        parts.append(
            f'{{"n":{a.number},"s":{to_us(a.started_at)},'
            f'"e":{"null" if ended is None else to_us(ended)},'
            f'"o":{"null" if outcome is None else _string(outcome)},"err":{_error_text(a.error)}}}'
        )
    return f"[{','.join(parts)}]"


def history_text(history: Iterable[Transition]) -> str:
    """``raw_dumps([transition_to_json(t) for t in history])``, written out directly.

    >>> at = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    >>> history_text([Transition(from_=Status.PENDING, to=Status.QUEUED, at=at)])
    '[{"f":"PENDING","t":"QUEUED","at":1000000,"r":null}]'
    """
    parts = []
    for t in history:
        reason = t.reason
        parts.append(
            f'{{"f":{_string(str(t.from_))},"t":{_string(str(t.to))},"at":{to_us(t.at)},'
            f'"r":{"null" if reason is None else _string(reason)}}}'
        )
    return f"[{','.join(parts)}]"


def attempts_from_json(data: Sequence[Mapping[str, Any]] | None) -> tuple[Attempt, ...]:
    epoch, delta, make, error = EPOCH, timedelta, _make_attempt, error_from_json
    return tuple(
        make(a["n"], epoch + delta(0, 0, a["s"]), None if a["e"] is None else
             epoch + delta(0, 0, a["e"]), a["o"], error(a["err"]))
        for a in data or ()
    )  # fmt: skip


def attempts_from_text(text: str) -> tuple[Attempt, ...]:
    """The attempts of their stored JSON array *text*."""
    return () if text == "[]" else attempts_from_json(stored_loads(text))


def transition_to_json(t: Transition) -> dict[str, Any]:
    return {"f": str(t.from_), "t": str(t.to), "at": to_us(t.at), "r": t.reason}


def transition_from_json(data: Mapping[str, Any]) -> Transition:
    return _make_transition(  # type: ignore[no-any-return]
        state_from_text(data["f"]),
        state_from_text(data["t"]),
        EPOCH + timedelta(0, 0, data["at"]),
        data["r"],
    )


def history_from_text(text: str) -> tuple[Transition, ...]:
    """The transitions of their stored JSON array *text*."""
    if text == "[]":
        return ()
    state, epoch, delta, make = state_from_text, EPOCH, timedelta, _make_transition
    return tuple(
        make(state(t["f"]), state(t["t"]), epoch + delta(0, 0, t["at"]), t["r"])
        for t in stored_loads(text)
    )


def counts_to_json(counts: ItemCounts) -> list[int]:
    return [counts.total, counts.pending, counts.running, counts.succeeded, counts.failed,
            counts.skipped]  # fmt: skip


def counts_from_json(data: Sequence[int] | None) -> ItemCounts:
    if not data:
        return ItemCounts()
    total, pending, running, succeeded, failed, skipped = data
    return ItemCounts(total=total, pending=pending, running=running, succeeded=succeeded,
                      failed=failed, skipped=skipped)  # fmt: skip


def counts_after_each(
    counts: ItemCounts, moves: Iterable[tuple[Status | None, Status]]
) -> tuple[list[str], ItemCounts]:
    """The counts after each of *moves* (as in `ItemCounts.moved`), from *counts*,
    as `counts_to_json` text each, and the counts after the last: what the events
    of a batch of items carry, at the cost of a few additions each.

    >>> counts_after_each(ItemCounts(), [(None, Status.RUNNING), (Status.RUNNING, Status.FAILED)])
    (['[1,0,1,0,0,0]', '[1,0,0,0,1,0]'], ItemCounts(total=1, pending=0, running=0, succeeded=0, failed=1, skipped=0))
    """  # noqa: E501
    at = {name: getattr(counts, name) for name in _BUCKETS}
    total = counts.total
    out = []
    for old, new in moves:
        if old is None:
            total += 1
        else:
            at[ItemCounts.bucket(old)] -= 1
        at[ItemCounts.bucket(new)] += 1
        out.append(
            f"[{total},{at['pending']},{at['running']},{at['succeeded']},{at['failed']},"
            f"{at['skipped']}]"
        )
    return out, ItemCounts(total=total, **at)


_BUCKETS: Final = ("pending", "running", "succeeded", "failed", "skipped")


def with_counts(body: str, counts: str) -> str:
    """The JSON object *body* (an item event's) with the run's item *counts* after
    it (`counts_to_json` text) as ``n``.

    >>> with_counts('{"key":"r1"}', "[1,0,1,0,0,0]")
    '{"key":"r1","n":[1,0,1,0,0,0]}'
    """
    return f'{body[:-1]},"n":{counts}}}'


def line_to_json(line: LogLine) -> dict[str, Any]:
    """The JSON form of *line* (its fields must already be known to be JSON)."""
    return {"run_id": line.run_id, "seq": line.seq, "at": to_us(line.at), "stream": line.stream,
            "level": line.level, "message": line.message, "item": line.item,
            "attempt": line.attempt, "fields": dict(line.fields)}  # fmt: skip


def line_from_json(data: Mapping[str, Any]) -> LogLine:
    return LogLine(run_id=data["run_id"], seq=data["seq"], at=from_us(data["at"]),
                   stream=data["stream"], level=data["level"], message=data["message"],
                   item=data["item"], attempt=data["attempt"], fields=data["fields"])  # fmt: skip


def item_to_json(item: Item) -> dict[str, Any]:
    """The JSON form of *item* (its output must already be known to be JSON)."""
    data = {
        "run_id": item.run_id,
        "key": item.key,
        "phase": item.phase,
        "status": item.status.value,
        "s": to_us_or_none(item.started_at),
        "e": to_us_or_none(item.ended_at),
        "attempts": item.attempts,
        "err": error_to_json(item.error),
        "output": item.output,
    }
    if item.reason is not None:
        data["why"] = item.reason
    return data


def item_from_json(data: Mapping[str, Any]) -> Item:
    return Item(
        run_id=data["run_id"],
        key=data["key"],
        phase=data["phase"],
        status=Status(data["status"]),
        started_at=from_us_or_none(data["s"]),
        ended_at=from_us_or_none(data["e"]),
        attempts=data["attempts"],
        error=error_from_json(data["err"]),
        output=data["output"],
        reason=data.get("why"),
    )


def run_to_json(run: Run) -> dict[str, Any]:
    """The JSON form of *run* (its params and result must already be known to be JSON).

    >>> run = Run.create(job="backup", at=datetime(2026, 3, 10, 2, tzinfo=UTC))
    >>> data = run_to_json(run)
    >>> data["status"], data["created_at"], run_from_json(data) == run
    ('PENDING', 1773108000000000, True)
    """
    return {
        "id": run.id, "job": run.job, "status": str(run.status), "state": str(run.state),
        "trigger": str(run.trigger), "params": dict(run.params), "result": run.result,
        "error": error_to_json(run.error), "labels": dict(run.labels),
        "created_at": to_us(run.created_at), "scheduled_for": to_us_or_none(run.scheduled_for),
        "queued_at": to_us_or_none(run.queued_at), "started_at": to_us_or_none(run.started_at),
        "ended_at": to_us_or_none(run.ended_at), "due_at": to_us_or_none(run.due_at),
        "attempts": attempts_to_json(run.attempts),
        "history": [transition_to_json(t) for t in run.history],
        "warnings": list(run.warnings), "progress": counts_to_json(run.progress),
        "parent_id": run.parent_id, "root_id": run.root_id,
        "workflow_run_id": run.workflow_run_id, "idempotency_key": run.idempotency_key,
        "priority": run.priority, "version": run.version,
    }  # fmt: skip


def run_from_json(data: Mapping[str, Any]) -> Run:
    """The run of its JSON form (see `run_to_json`)."""
    return Run(
        id=data["id"], job=data["job"], status=Status(data["status"]),
        state=state_from_text(data["state"]), trigger=Trigger(data["trigger"]),
        params=data["params"], result=data["result"], error=error_from_json(data["error"]),
        labels=data["labels"], created_at=from_us(data["created_at"]),
        scheduled_for=from_us_or_none(data["scheduled_for"]),
        queued_at=from_us_or_none(data["queued_at"]),
        started_at=from_us_or_none(data["started_at"]),
        ended_at=from_us_or_none(data["ended_at"]), due_at=from_us_or_none(data["due_at"]),
        attempts=attempts_from_json(data["attempts"]),
        history=tuple(transition_from_json(t) for t in data["history"]),
        warnings=tuple(data["warnings"]), progress=counts_from_json(data["progress"]),
        parent_id=data["parent_id"], root_id=data["root_id"],
        workflow_run_id=data["workflow_run_id"], idempotency_key=data["idempotency_key"],
        priority=data["priority"], version=data["version"],
    )  # fmt: skip


def job_to_json(job: JobRecord) -> dict[str, Any]:
    """The JSON form of *job* (its spec must already be known to be JSON)."""
    return {"name": job.name, "spec": dict(job.spec), "max_concurrency": job.max_concurrency,
            "per_label": dict(job.per_label), "paused": job.paused,
            "last_scheduled_for": to_us_or_none(job.last_scheduled_for),
            "updated_at": to_us_or_none(job.updated_at)}  # fmt: skip


def job_from_json(data: Mapping[str, Any]) -> JobRecord:
    """The job record of its JSON form (see `job_to_json`)."""
    return JobRecord(name=data["name"], spec=data["spec"],
                     max_concurrency=data["max_concurrency"], per_label=data["per_label"],
                     paused=data["paused"],
                     last_scheduled_for=from_us_or_none(data["last_scheduled_for"]),
                     updated_at=from_us_or_none(data["updated_at"]))  # fmt: skip


def cancel_to_json(request: CancelRequest) -> dict[str, Any]:
    """The JSON form of a cancel request."""
    return {"run_id": request.run_id, "by": request.by, "reason": request.reason,
            "at": to_us(request.at)}  # fmt: skip


def cancel_from_json(data: Mapping[str, Any]) -> CancelRequest:
    """The cancel request of its JSON form (see `cancel_to_json`)."""
    return CancelRequest(run_id=data["run_id"], by=data["by"], reason=data["reason"],
                         at=from_us(data["at"]))  # fmt: skip


def event_to_json(event: Event) -> dict[str, Any]:
    """The JSON form of *event* (its item's output and line's fields must already
    be known to be JSON)."""
    data: dict[str, Any] = {"seq": event.seq, "kind": event.kind, "run_id": event.run_id,
                            "job": event.job, "at": to_us(event.at),
                            "status": str(event.status)}  # fmt: skip
    if event.transition is not None:
        data["transition"] = transition_to_json(event.transition)
    if event.item is not None:
        data["item"] = item_to_json(event.item)
    if event.progress is not None:
        data["n"] = counts_to_json(event.progress)
    if event.log is not None:
        data["log"] = line_to_json(event.log)
    if event.lines is not None:
        data["lines"] = event.lines
    return data


def event_from_json(data: Mapping[str, Any]) -> Event:
    """The event of its JSON form (see `event_to_json`)."""
    moved, item, line, counts = (data.get(k) for k in ("transition", "item", "log", "n"))
    return Event(
        kind=data["kind"], run_id=data["run_id"], job=data["job"], at=from_us(data["at"]),
        status=Status(data["status"]),
        transition=None if moved is None else transition_from_json(moved),
        item=None if item is None else item_from_json(item),
        log=None if line is None else line_from_json(line),
        seq=data["seq"], progress=None if counts is None else counts_from_json(counts),
        lines=data.get("lines"),
    )  # fmt: skip


def item_note_to_json(error: ErrorInfo | None, reason: str | None) -> dict[str, Any] | None:
    """An item's error and reason as one object (None when it has neither).

    >>> item_note_to_json(None, "succeeded in run r1")
    {'why': 'succeeded in run r1'}
    """
    data = error_to_json(error)
    if reason is None:
        return data
    if data is None:
        return {"why": reason}
    data["why"] = reason
    return data


def item_note_from_json(data: Mapping[str, Any] | None) -> tuple[ErrorInfo | None, str | None]:
    """The error and reason of an item note (see `item_note_to_json`).

    >>> item_note_from_json({"why": "succeeded in run r1"})
    (None, 'succeeded in run r1')
    """
    if data is None:
        return None, None
    error = error_from_json(data) if "kind" in data else None
    return error, data.get("why")


def item_output_json(item: Item) -> str:
    return dumps(item.output, f"item {item.key!r} output")


def log_fields_json(line: LogLine) -> str:
    return dumps(dict(line.fields), "log fields")


def encode_cursor(*parts: int | str) -> str:
    """An opaque, URL-safe cursor holding *parts*."""
    return base64.urlsafe_b64encode(json.dumps(parts, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: object, *kinds: type) -> list[Any]:
    """The parts of a cursor made by `encode_cursor`, of the given *kinds* in order;
    a foreign or damaged cursor raises `InvalidValue` naming it.

    >>> decode_cursor(encode_cursor(7, "abc"), int, str)
    [7, 'abc']
    """
    expected = "a next_cursor returned by a previous page"
    if not isinstance(cursor, str) or not cursor.isascii():
        raise InvalidValue("cursor", cursor, expected)
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as exc:
        raise InvalidValue("cursor", cursor, expected) from exc
    if (
        not isinstance(parts, list)
        or len(parts) != len(kinds)
        or any(type(p) is not k for p, k in zip(parts, kinds, strict=True))
    ):
        raise InvalidValue("cursor", cursor, expected)
    return parts
