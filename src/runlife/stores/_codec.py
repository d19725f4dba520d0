"""Encoding shared by the stores: records to JSON-able values and back, cursors, time.

Every store (memory included) goes through the same codec, so a run reads back the
same from each of them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from runlife._core.convert import check_json
from runlife._core.records import Attempt, ErrorInfo, Item, LogLine, Transition
from runlife._core.status import Status
from runlife.exceptions import InvalidPolicy

__all__ = (
    "EPOCH",
    "attempts_from_json",
    "attempts_to_json",
    "decode_cursor",
    "dumps",
    "encode_cursor",
    "error_from_json",
    "error_to_json",
    "from_us",
    "item_output_json",
    "loads",
    "to_us",
    "transition_from_json",
    "transition_to_json",
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch (exact, unlike ``timestamp()``)."""
    return (moment - EPOCH) // _US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def to_us_or_none(moment: datetime | None) -> int | None:
    return None if moment is None else to_us(moment)


def from_us_or_none(us: int | None) -> datetime | None:
    return None if us is None else from_us(us)


def dumps(value: Any, field: str) -> str:
    """Compact JSON of *value*, refused with `NotSerializable` naming *field*."""
    check_json(value, field)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes | None) -> Any:
    return None if text is None else json.loads(text)


def error_to_json(error: ErrorInfo | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"kind": error.kind, "type": error.type, "message": error.message,
            "traceback": error.traceback}  # fmt: skip


def error_from_json(data: Mapping[str, Any] | None) -> ErrorInfo | None:
    if data is None:
        return None
    return ErrorInfo(kind=data["kind"], type=data["type"], message=data["message"],
                     traceback=data.get("traceback"))  # fmt: skip


def attempts_to_json(attempts: tuple[Attempt, ...]) -> list[dict[str, Any]]:
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


def attempts_from_json(data: list[dict[str, Any]] | None) -> tuple[Attempt, ...]:
    return tuple(
        Attempt(
            number=a["n"],
            started_at=from_us(a["s"]),
            ended_at=from_us_or_none(a["e"]),
            outcome=a["o"],
            error=error_from_json(a["err"]),
        )
        for a in data or ()
    )


def transition_to_json(t: Transition) -> dict[str, Any]:
    return {"f": str(t.from_), "t": str(t.to), "at": to_us(t.at), "r": t.reason}


def transition_from_json(
    data: Mapping[str, Any], states: Mapping[str, str] | None = None
) -> Transition:
    """Read a transition back; *states* maps stored names to the lifecycle's own
    state objects (`Status` members for the default lifecycle)."""
    lookup = states if states is not None else _STATUS_BY_NAME
    return Transition(from_=lookup.get(data["f"], data["f"]), to=lookup.get(data["t"], data["t"]),
                      at=from_us(data["at"]), reason=data["r"])  # fmt: skip


_STATUS_BY_NAME: Mapping[str, str] = {s.value: s for s in Status}


def state_from_text(text: str) -> str:
    """A stored state name as the state object: a `Status` where the name is one."""
    return _STATUS_BY_NAME.get(text, text)


def item_output_json(item: Item) -> str:
    return dumps(item.output, f"item {item.key!r} output")


def log_fields_json(line: LogLine) -> str:
    return dumps(dict(line.fields), "log fields")


def encode_cursor(*parts: int | str) -> str:
    """An opaque, URL-safe cursor holding *parts*."""
    return base64.urlsafe_b64encode(json.dumps(parts, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The parts of a cursor made by `encode_cursor`; a foreign or damaged cursor
    raises `InvalidPolicy` naming it."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as exc:
        raise InvalidPolicy("cursor", cursor, "a next_cursor returned by a previous page") from exc
    if not isinstance(parts, list) or len(parts) != arity:
        raise InvalidPolicy("cursor", cursor, "a next_cursor returned by a previous page")
    return parts
