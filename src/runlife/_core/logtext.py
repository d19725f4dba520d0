"""Log lines as text: what a job hands its log made storable, and a run's log
rendered for people (text) and for machines (JSON lines).

A job logs whatever it likes: a message with a NUL byte, a field holding a
``Path``, a float that is NaN. A store keeps only text and JSON (see
`runlife._core.values`), so `clean_text` and `clean_fields` make each line
storable on its way in, once, instead of letting one odd value refuse a whole
batch of lines: text keeps its characters, with NUL and lone surrogates written
as backslash escapes; a field value that is not JSON becomes its text (``str``;
a datetime its ISO form).

`render_text` is the form an operator attaches to an escalation: a header naming
the run, then one line per log line with its time (UTC, milliseconds), attempt,
stream, level and item. `render_jsonl` is one JSON object per line. Nothing here
does I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from runlife._core.humane import human_duration
from runlife._core.records import LogLine
from runlife._core.run import Run
from runlife._core.values import INT64, MAX_DEPTH

__all__ = ("clean_fields", "clean_text", "render_jsonl", "render_line", "render_text")

_PLAIN: Final = (str, int, bool, type(None))
_TIME: Final = "%Y-%m-%d %H:%M:%S"


def clean_text(text: str) -> str:
    """*text* as a store keeps it: NUL and lone surrogates written as escapes.

    >>> clean_text("ok"), clean_text("a\\x00b"), clean_text("bad \\udc80 byte")
    ('ok', 'a\\\\x00b', 'bad \\\\udc80 byte')
    """
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def clean_fields(fields: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """*fields* as JSON a store keeps, and their size in characters (about the
    size of their JSON, for a log's byte limit). Fields that are storable already
    (the common case) are returned as they are, not copied.

    >>> from pathlib import PurePosixPath
    >>> clean_fields({"host": "r1", "tries": 2, "path": PurePosixPath("/tmp/x"), "ratio": math.nan})
    ({'host': 'r1', 'tries': 2, 'path': '/tmp/x', 'ratio': 'nan'}, 44)
    """
    size = 0
    for key, value in fields.items():
        if key.__class__ is not str or not key.isascii() or "\x00" in key:
            break
        kind = value.__class__
        if kind is str:
            if not value.isascii() or "\x00" in value:
                break
            size += len(key) + len(value)
        elif kind is int:
            if not INT64[0] <= value <= INT64[1]:
                break
            size += len(key) + 8
        elif kind is bool or value is None or (kind is float and math.isfinite(value)):
            size += len(key) + 8
        else:
            break
    else:
        return fields, size
    return _cleaned(fields)


def _cleaned(fields: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    size = 0
    for key, value in fields.items():
        name = key if type(key) is str else str(key)
        if not name.isascii() or "\x00" in name:
            name = clean_text(name)
        kind = type(value)
        if kind is str:
            if not value.isascii() or "\x00" in value:
                value = clean_text(value)
            size += len(name) + len(value)
        elif kind in _PLAIN:
            if kind is int and not INT64[0] <= value <= INT64[1]:
                value = str(value)
            size += len(name) + 8
        elif kind is float:
            if not math.isfinite(value):
                value = str(value)
            size += len(name) + 8
        else:
            value = _jsonable(value, 1)
            size += len(name) + len(json.dumps(value, ensure_ascii=False))
        out[name] = value
    return out, size


def _jsonable(value: Any, depth: int) -> Any:
    kind = type(value)
    if kind is str:
        return clean_text(value)
    if kind is bool or value is None:
        return value
    if kind is int:
        return value if INT64[0] <= value <= INT64[1] else str(value)
    if kind is float:
        return value if math.isfinite(value) else str(value)
    if depth < MAX_DEPTH:
        if isinstance(value, Mapping):
            return {clean_text(str(k)): _jsonable(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    try:
        text = str(value)
    except Exception:
        text = object.__repr__(value)
    return clean_text(text)


# -- reading ---------------------------------------------------------------------


def render_line(line: LogLine) -> str:
    """One log line as text: time (UTC, milliseconds), attempt, stream, level,
    ``[item]``, message and fields as ``key=value``; an exception's traceback
    follows, indented.

    >>> from datetime import UTC
    >>> line = LogLine(run_id="r", seq=1, at=datetime(2026, 3, 10, 2, 0, 1, tzinfo=UTC),
    ...                level="info", message="backing up", item="core-rtr-01",
    ...                attempt=1, fields={"host": "10.1.0.1"})
    >>> render_line(line)
    '2026-03-10 02:00:01.000Z a1 log    info     [core-rtr-01] backing up host=10.1.0.1'
    """
    at = line.at
    parts = [
        f"{at:{_TIME}}.{at.microsecond // 1000:03d}Z",
        "a-" if line.attempt is None else f"a{line.attempt}",
        f"{line.stream:<6}",
        f"{line.level:<8}",
    ]
    if line.item is not None:
        parts.append(f"[{line.item}]")
    parts.append(line.message)
    extra: list[str] = []
    for key, value in line.fields.items():
        if key in ("exception", "stack") and isinstance(value, str):
            extra.append(value)
            continue
        parts.append(f"{key}={_value_text(value)}")
    text = " ".join(parts)
    for block in extra:
        text += "".join("\n    " + part for part in block.rstrip("\n").split("\n"))
    return text


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        if value and not any(c in value for c in ' ="\n\t'):
            return value
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def render_text(run: Run, lines: Iterable[LogLine]) -> str:
    """A run's log as text, ready to attach to an escalation: a header with the
    run's id, job, status, times, attempts and error, then `render_line` for each
    line (and a note when there are none)."""
    head = [f"run {run.id} of job {run.job}: {run.status.value}"]
    if run.state != run.status.value:
        head[0] += f" (state {run.state})"
    if run.labels:
        head.append("labels: " + ", ".join(f"{k}={v}" for k, v in sorted(run.labels.items())))
    times = [f"created {run.created_at:{_TIME}}Z"]
    if run.started_at is not None:
        times.append(f"started {run.started_at:{_TIME}}Z")
    if run.ended_at is not None:
        times.append(f"ended {run.ended_at:{_TIME}}Z")
    if run.duration is not None:
        times.append(f"took {human_duration(run.duration)}")
    head.append(", ".join(times))
    if run.attempts:
        head.append(f"attempts: {len(run.attempts)}")
    if run.error is not None:
        head.append(f"error ({run.error.kind}): {run.error.type}: {run.error.message}")
    for warning in run.warnings:
        head.append(f"warning: {warning}")
    body = [render_line(line) for line in lines]
    if not body:
        body = ["(no log lines)"]
    return "\n".join([*head, "", *body]) + "\n"


def render_jsonl(lines: Iterable[LogLine]) -> str:
    """A run's log as JSON lines: one object per line with ``run_id``, ``seq``,
    ``at`` (ISO 8601, UTC), ``stream``, ``level``, ``message``, ``item``,
    ``attempt`` and ``fields``."""
    out = []
    for line in lines:
        record = {
            "run_id": line.run_id,
            "seq": line.seq,
            "at": line.at.isoformat(),
            "stream": line.stream,
            "level": line.level,
            "message": line.message,
            "item": line.item,
            "attempt": line.attempt,
            "fields": dict(line.fields),
        }
        out.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    return "".join(out)
