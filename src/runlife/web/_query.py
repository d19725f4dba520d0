"""The monitor's query strings, read once at the edge: filters of the runs page.

Every bad value is refused with `BadParam`, which names the parameter, the value
and what would be accepted; the page answers it with a 400 that says so.

>>> from datetime import UTC, datetime
>>> f = runs_filter({"status": ["FAILED"], "range": ["24h"]}, now=datetime(2026, 3, 10, tzinfo=UTC))
>>> [s.value for s in f.status], f.since
(['FAILED'], datetime.datetime(2026, 3, 9, 0, 0, tzinfo=datetime.timezone.utc))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final, TypeVar
from urllib.parse import urlencode

import attrs

from runlife import Status, Trigger
from runlife._core.humane import read_moment

__all__ = ("RANGES", "BadParam", "RunsFilter", "runs_filter")

RANGES: Final = {
    "6h": timedelta(hours=6),
    "12h": timedelta(hours=12),
    "24h": timedelta(hours=24),
    "3d": timedelta(days=3),
    "7d": timedelta(days=7),
}
_MAX_TEXT: Final = 200
_E = TypeVar("_E", Status, Trigger)


class BadParam(ValueError):
    """A query parameter the monitor cannot use: ``param``, ``value``, ``expected``."""

    def __init__(self, param: str, value: str, expected: str) -> None:
        self.param = param
        self.value = value
        self.expected = expected
        super().__init__(f"{param}={value!r} is invalid: expected {expected}")


@attrs.frozen(kw_only=True)
class RunsFilter:
    """What the runs page shows: the filters as the runtime's ``list_runs`` takes them,
    and the page's own settings (the range's name, the page cursor, live or calm)."""

    status: frozenset[Status] = frozenset()
    job: str | None = None
    trigger: frozenset[Trigger] = frozenset()
    labels: Mapping[str, str] = attrs.field(factory=dict)
    text: str | None = None
    range: str = ""
    since: datetime | None = None
    until: datetime | None = None
    cursor: str | None = None
    mode: str = "live"

    def query(self, **changes: str | None) -> str:
        """This filter as a query string (with *changes*; None drops a parameter)."""
        pairs: list[tuple[str, str]] = [("status", s.value) for s in sorted(self.status)]
        if self.job:
            pairs.append(("job", self.job))
        pairs += [("trigger", t.value) for t in sorted(self.trigger)]
        pairs += [("label", f"{k}={v}") for k, v in sorted(self.labels.items())]
        if self.text:
            pairs.append(("q", self.text))
        if self.range:
            pairs.append(("range", self.range))
            if self.range == "custom":
                if self.since:
                    pairs.append(("since", self.since.isoformat()))
                if self.until:
                    pairs.append(("until", self.until.isoformat()))
        if self.mode != "live":
            pairs.append(("mode", self.mode))
        if self.cursor:
            pairs.append(("cursor", self.cursor))
        names = set(changes)
        pairs = [(k, v) for k, v in pairs if k not in names]
        pairs += [(k, v) for k, v in changes.items() if v is not None]
        return urlencode(pairs)


_KNOWN: Final = frozenset(
    {"status", "job", "trigger", "label", "q", "range", "since", "until", "cursor", "mode"}
)


def runs_filter(params: Mapping[str, Sequence[str]], *, now: datetime) -> RunsFilter:
    """The runs page's filter from its query parameters (each name to its values).

    Raises:
        BadParam: an unknown parameter or a bad value, named.
    """
    for name in params:
        if name not in _KNOWN:
            raise BadParam(name, ",".join(params[name]), "one of " + ", ".join(sorted(_KNOWN)))
    status = frozenset(_enum(params, "status", Status))
    trigger = frozenset(_enum(params, "trigger", Trigger))
    labels: dict[str, str] = {}
    for pair in _values(params, "label"):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadParam("label", pair, "key=value")
        labels[key.strip()] = value.strip()
    job = _one(params, "job")
    text = _one(params, "q")
    for name, given in (("job", job), ("q", text)):
        if given is not None and len(given) > _MAX_TEXT:
            raise BadParam(name, given[:40] + "...", f"at most {_MAX_TEXT} characters")
    span = _one(params, "range") or ""
    since = until = None
    if span in RANGES:
        since = now - RANGES[span]
    elif span == "custom":
        since = _moment(params, "since")
        until = _moment(params, "until")
        if since and until and until < since:
            raise BadParam("until", until.isoformat(), "a moment after since")
    elif span:
        raise BadParam("range", span, "one of " + ", ".join([*RANGES, "custom"]))
    mode = _one(params, "mode") or "live"
    if mode not in ("live", "calm"):
        raise BadParam("mode", mode, "live or calm")
    return RunsFilter(
        status=status,
        job=job,
        trigger=trigger,
        labels=labels,
        text=text,
        range=span,
        since=since,
        until=until,
        cursor=_one(params, "cursor"),
        mode=mode,
    )


def _values(params: Mapping[str, Sequence[str]], name: str) -> list[str]:
    # Repeated parameters and comma lists both work: ?status=FAILED&status=RUNNING
    # as a form sends them, ?status=FAILED,RUNNING as a person types them.
    out: list[str] = []
    for value in params.get(name, ()):
        out += [part.strip() for part in value.split(",") if part.strip()]
    return out


def _one(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = [v.strip() for v in params.get(name, ()) if v.strip()]
    if len(values) > 1:
        raise BadParam(name, ",".join(values), "one value")
    return values[0] if values else None


def _enum(params: Mapping[str, Sequence[str]], name: str, kind: type[_E]) -> list[_E]:
    out: list[_E] = []
    for value in _values(params, name):
        try:
            out.append(kind(value.upper()))
        except ValueError:
            raise BadParam(name, value, "one of " + ", ".join(m.value for m in kind)) from None
    return out


def _moment(params: Mapping[str, Sequence[str]], name: str) -> datetime | None:
    value = _one(params, name)
    if value is None:
        return None
    try:
        return read_moment(value)
    except ValueError:
        raise BadParam(name, value, "an ISO 8601 moment such as 2026-03-10T02:00") from None
