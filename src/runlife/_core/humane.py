"""Durations and moments as people read them: one form for every face and every text
runlife writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ("human_duration", "moment_text", "read_moment")

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def human_duration(value: timedelta | float | None) -> str:
    """*value* (a `timedelta` or seconds) in the one human form: the two largest units.

    Under a second shows milliseconds; nothing (``None``) shows as ``"-"``.

    >>> [human_duration(s) for s in (0.25, 9, 226, 3720, 93784)]
    ['250ms', '9s', '3m 46s', '1h 2m', '1d 2h']
    >>> human_duration(None)
    '-'
    """
    if value is None:
        return "-"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        return "-" + human_duration(-seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    left = int(seconds)
    parts: list[str] = []
    for unit, size in _UNITS:
        count, left = divmod(left, size)
        if count or parts:
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    if len(parts) == 2 and parts[1].startswith("0"):
        parts.pop()
    return " ".join(parts)


def moment_text(moment: datetime | None, *, short: bool = False) -> str:
    """*moment* in the one human form, in UTC: ``"2026-03-10 02:00:01"`` (``short``:
    ``"03-10 02:00:01"``, for tables); nothing (``None``) shows as ``"-"``.

    >>> from datetime import UTC, datetime, timedelta, timezone
    >>> moment_text(datetime(2026, 3, 10, 3, 0, 1, tzinfo=timezone(timedelta(hours=1))))
    '2026-03-10 02:00:01'
    >>> moment_text(datetime(2026, 3, 10, 2, 0, 1, tzinfo=UTC), short=True), moment_text(None)
    ('03-10 02:00:01', '-')
    """
    if moment is None:
        return "-"
    utc = moment.astimezone(UTC)
    return f"{utc:%m-%d %H:%M:%S}" if short else f"{utc:%Y-%m-%d %H:%M:%S}"


def read_moment(text: str) -> datetime:
    """A moment as a person types it: ISO 8601, UTC unless it names its offset.

    Raises `ValueError` for anything else (each face says what it accepts).

    >>> read_moment(" 2026-03-10T02:00 ")
    datetime.datetime(2026, 3, 10, 2, 0, tzinfo=datetime.timezone.utc)
    """
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
