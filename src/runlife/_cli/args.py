"""The values the ``runlife`` command reads from its arguments, checked once here.

Each reader is an ``argparse`` ``type=``: it returns the value or raises
`argparse.ArgumentTypeError` with one line that names what was given and what is
accepted (the parser adds the option's name).
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from runlife._core.humane import read_moment
from runlife._core.status import Status, Trigger

__all__ = (
    "label",
    "moment",
    "output_file",
    "payload",
    "positive_int",
    "span",
    "status",
    "trigger",
)

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SPAN_FORMS = "a span such as 30m, 24h, 7d or 2w (s, m, h, d, w)"
_MOMENT_FORMS = (
    f"{_SPAN_FORMS} back from now, or an ISO 8601 moment such as 2026-03-10 or "
    "2026-03-10T02:00 (UTC unless it names its offset)"
)


def span(text: str) -> timedelta:
    """A span of time: ``"90d"`` is 90 days.

    >>> span("90d")
    datetime.timedelta(days=90)
    """
    found = _SPAN.match(text)
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a span of time: expected {_SPAN_FORMS}")
    return timedelta(seconds=float(found.group(1)) * _UNIT[found.group(2)])


def moment(text: str) -> datetime | timedelta:
    """A moment: a span back from now (returned as the span) or an ISO 8601 moment
    (naive ones are UTC).

    >>> moment("24h"), moment("2026-03-10T02:00")
    (datetime.timedelta(days=1), datetime.datetime(2026, 3, 10, 2, 0, tzinfo=datetime.timezone.utc))
    """
    if _SPAN.match(text):
        return span(text)
    try:
        return read_moment(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: expected {_MOMENT_FORMS}"
        ) from None


def status(text: str) -> Status:
    """A run status, in any case: ``failed`` is FAILED."""
    try:
        return Status(text.strip().upper())
    except ValueError:
        names = ", ".join(s.value for s in Status)
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a status: expected one of {names}"
        ) from None


def trigger(text: str) -> Trigger:
    """A trigger, in any case: ``adhoc`` is ADHOC."""
    try:
        return Trigger(text.strip().upper())
    except ValueError:
        names = ", ".join(t.value for t in Trigger)
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a trigger: expected one of {names}"
        ) from None


def label(text: str) -> tuple[str, str]:
    """A label filter ``key=value``.

    >>> label("site=dc1")
    ('site', 'dc1')
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a label: expected KEY=VALUE, such as site=dc1"
        )
    return key.strip(), value


def positive_int(text: str) -> int:
    """An int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count: expected an integer >= 1")
    return value


def payload(text: str) -> Any:
    """A signal's payload: JSON text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not JSON ({exc.msg} at character {exc.pos}): expected a JSON "
            """value such as '{"approved": true}' or '"yes"'"""
        ) from None


def output_file(text: str) -> Path:
    """A file to write: not a directory, in a directory that exists."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text!r} is a directory: expected a file path to write, such as run.log"
        )
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text!r} is in a directory that does not exist ({path.parent}): expected a "
            "file path in an existing directory"
        )
    return path
