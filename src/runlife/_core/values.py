"""The rules for values that enter a store: one check per kind of value.

Every store, the memory store included, accepts exactly the values these
functions accept and refuses the rest before it writes anything, with an error
that names the field, the value and what would have been accepted:

- **text**: a ``str`` without NUL characters and without lone surrogates (text
  must encode as UTF-8; PostgreSQL refuses NUL in text and JSON alike);
- **moments**: aware datetimes (a naive one is read as UTC) from `MIN_TIME` to
  `MAX_TIME`, kept to the microsecond;
- **integers**: within each field's range (`INT32` for priorities and attempt
  numbers, `INT64` for versions and JSON numbers);
- **JSON**: str, int, finite float, bool, None, lists and str-keyed dicts of
  them, nested at most `MAX_DEPTH` levels, whose strings and keys are text;
- **counts and durations** given to the store's methods: a page size from 1 to
  `MAX_PAGE`, a lease of more than 0 and at most `MAX_LEASE` seconds.

The checks are plain functions of the value; they never touch a store.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from runlife.exceptions import InvalidValue, NotSerializable

__all__ = (
    "INT32",
    "INT64",
    "MAX_DEPTH",
    "MAX_LEASE",
    "MAX_PAGE",
    "MAX_SECONDS",
    "MAX_TIME",
    "MIN_TIME",
    "check_count",
    "check_int",
    "check_json",
    "check_labels",
    "check_lease",
    "check_moment",
    "check_names",
    "check_page",
    "check_text",
    "is_text",
)

MIN_TIME: Final = datetime(1, 1, 2, tzinfo=UTC)
"""The earliest moment a store keeps (a day after `datetime.min`, so that every
UTC offset can be applied to it)."""
MAX_TIME: Final = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
"""The latest moment a store keeps (a day before `datetime.max`, for the same reason)."""
INT32: Final = (-(2**31), 2**31 - 1)
INT64: Final = (-(2**63), 2**63 - 1)
MAX_DEPTH: Final = 100
"""How deeply JSON values may nest (lists and dicts inside one another)."""
MAX_PAGE: Final = 100_000
"""The most rows one call of a store may be asked for."""
MAX_SECONDS: Final = 100 * 366 * 86_400.0
"""The longest duration a policy may name, in seconds (a century): retry delays,
timeouts, schedule intervals."""
MAX_LEASE: Final = 366 * 86_400.0
"""The longest lease a claim or heartbeat may take, in seconds (a year)."""

_TIME_RANGE: Final = "an aware datetime from 0001-01-02 to 9999-12-30 UTC"


def is_text(value: object) -> bool:
    """Whether *value* is a str a store can keep: no NUL, no lone surrogate."""
    if value.__class__ is not str:
        if not isinstance(value, str):
            return False
        value = str.__str__(value)  # a str subclass (a StrEnum member): its text
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(field: str, value: object, *, empty: bool = True, optional: bool = False) -> None:
    """Refuse *value* unless it is text (see the module); ``None`` passes if *optional*.

    >>> check_text("job", "nightly_backup")
    >>> check_text("job", "a\\x00b")
    Traceback (most recent call last):
    ...
    runlife.exceptions.InvalidValue: job='a\\x00b' is invalid: expected text without NUL ...
    """
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise InvalidValue(field, value, "a str" + (" or None" if optional else ""))
    if not value and not empty:
        raise InvalidValue(field, value, "a non-empty str")
    if not is_text(value):
        raise InvalidValue(field, value, "text without NUL characters or lone surrogates")


def check_names(field: str, values: object, *, each: str) -> tuple[str, ...]:
    """*values* as a tuple of distinct non-empty texts (item keys, target names),
    refused with the index of the first bad or repeated one; *each* says what a
    value is, for the message.

    >>> check_names("keys", ["rtr-1", "rtr-2"], each="keys")
    ('rtr-1', 'rtr-2')
    >>> check_names("keys", ["rtr-1", "rtr-1"], each="keys")
    Traceback (most recent call last):
    ...
    runlife.exceptions.InvalidValue: keys[1]='rtr-1' is invalid: expected keys that are distinct
    """
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidValue(field, values, f"an iterable of {each} (str), such as a list")
    checked = tuple(values)
    seen: set[str] = set()
    for index, value in enumerate(checked):
        check_text(f"{field}[{index}]", value, empty=False)
        if value in seen:
            raise InvalidValue(f"{field}[{index}]", value, f"{field} that are distinct")
        seen.add(value)
    return checked


def check_moment(field: str, value: object, *, optional: bool = False) -> datetime | None:
    """*value* as an aware UTC datetime, refused outside `MIN_TIME` .. `MAX_TIME`.

    A naive datetime is read as UTC. Returns None for None when *optional*.

    >>> check_moment("at", datetime(2026, 3, 10, 2))
    datetime.datetime(2026, 3, 10, 2, 0, tzinfo=datetime.timezone.utc)
    """
    if value is None and optional:
        return None
    if not isinstance(value, datetime):
        raise InvalidValue(field, value, _TIME_RANGE)
    if value.tzinfo is UTC:
        moment = value
    elif value.tzinfo is None:
        moment = value.replace(tzinfo=UTC)
    else:
        try:
            offset = value.utcoffset()
        except Exception as exc:  # a tzinfo whose utcoffset fails
            raise InvalidValue(field, value, _TIME_RANGE) from exc
        if offset is None:
            moment = value.replace(tzinfo=UTC)
        else:
            try:
                moment = value.astimezone(UTC)
            except (OverflowError, ValueError) as exc:
                raise InvalidValue(field, value, _TIME_RANGE) from exc
    if moment < MIN_TIME or moment > MAX_TIME:
        raise InvalidValue(field, value, _TIME_RANGE)
    return moment


def check_int(field: str, value: object, bounds: tuple[int, int] = INT64) -> int:
    """Refuse *value* unless it is an int (not a bool) within *bounds* (inclusive)."""
    low, high = bounds
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidValue(field, value, f"an int from {low} to {high}")
        value = int(value)
    if value < low or value > high:
        raise InvalidValue(field, value, f"an int from {low} to {high}")
    return value


def check_page(field: str, value: object) -> int:
    """A page size: an int from 1 to `MAX_PAGE`."""
    return check_int(field, value, (1, MAX_PAGE))


def check_count(field: str, value: object) -> int:
    """A count that may be zero: an int from 0 to `MAX_PAGE`."""
    return check_int(field, value, (0, MAX_PAGE))


def check_lease(field: str, value: object) -> timedelta:
    """A lease in seconds: a finite number above 0 and at most `MAX_LEASE`.

    >>> check_lease("lease", 30)
    datetime.timedelta(seconds=30)
    """
    expected = f"a number of seconds above 0 and at most {MAX_LEASE:g}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(field, value, expected)
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_LEASE:
        raise InvalidValue(field, value, expected)
    return timedelta(seconds=seconds)


def check_labels(field: str, labels: object) -> dict[str, str]:
    """A fresh ``dict`` of *labels*, refusing anything but text -> text."""
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise InvalidValue(field, labels, "a mapping of str to str")
    out: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise NotSerializable(f"{field}[{key!r}]", value)
        if not is_text(key) or not key:
            raise InvalidValue(f"{field} key", key, "non-empty text without NUL characters")
        if not is_text(value):
            raise InvalidValue(
                f"{field}[{key!r}]", value, "text without NUL characters or lone surrogates"
            )
        out[key] = value
    return out


def check_json(value: object, field: str) -> None:
    """Raise `NotSerializable` naming the path of the first part of *value* a store
    cannot keep as JSON.

    Accepted: text, int (64 bits), finite float, bool, None, and lists, tuples and
    str-keyed dicts of those, nested at most `MAX_DEPTH` levels. Non-finite floats,
    NUL characters and lone surrogates are refused because PostgreSQL's jsonb and
    strict JSON parsers refuse them.

    >>> check_json({"devices": ["a", 1, 2.5, None]}, "params")
    >>> check_json({"when": object()}, "params")
    Traceback (most recent call last):
    ...
    runlife.exceptions.NotSerializable: params['when'] is not JSON-serialisable: ...
    """
    kind = type(value)
    if kind is str:
        if not is_text(value):
            raise NotSerializable(field, value, "text without NUL characters or lone surrogates")
        return
    if kind is bool or value is None:
        return
    if kind is int:
        if not INT64[0] <= value <= INT64[1]:  # type: ignore[operator]
            raise NotSerializable(field, value, "integers of 64 bits at most")
        return
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise NotSerializable(field, value)
        return
    if kind is dict:
        if not _plain_keys(value) or not _plain_scalars(value.values()):  # type: ignore[arg-type, attr-defined]
            _check_container(value, field)
        return
    if kind is list or kind is tuple:
        if not _plain_scalars(value):  # type: ignore[arg-type]
            _check_container(value, field)
        return
    raise NotSerializable(field, value)


_INT64_LOW, _INT64_HIGH = INT64


def _plain_keys(value: Iterable[object]) -> bool:
    """Whether every key of *value* is ASCII text without NUL (the common case,
    told apart cheaply; any other goes through the full check, which names it)."""
    for key in value:
        if key.__class__ is not str or not key.isascii() or "\x00" in key:
            return False
    return True


def _plain_scalars(values: Iterable[object]) -> bool:
    """Whether each of *values* is a plain scalar a store keeps: ASCII text without
    NUL, a 64-bit int, a bool or None (the common params and results, told apart
    cheaply; anything else, a nested value included, goes through the full check,
    which builds the paths that name what it refuses)."""
    for item in values:
        kind = item.__class__
        if kind is str:
            if not item.isascii() or "\x00" in item:  # type: ignore[attr-defined, operator]
                return False
        elif kind is int:
            if not _INT64_LOW <= item <= _INT64_HIGH:  # type: ignore[operator]
                return False
        elif item is not None and kind is not bool:
            return False
    return True


def _check_container(root: object, field: str) -> None:
    # An explicit stack: a value nested deeper than Python's recursion limit is
    # refused by name instead of crashing the check.
    stack: list[tuple[object, str, int]] = [(root, field, 1)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise NotSerializable(path, value, f"values nested at most {MAX_DEPTH} levels deep")
        children: list[tuple[object, str]] = []
        if type(value) is dict:
            for key, item in value.items():
                if type(key) is not str:
                    raise NotSerializable(f"{path} key {key!r}", key)
                if not is_text(key):
                    raise NotSerializable(f"{path} key {key!r}", key, "text without NUL characters")
                children.append((item, f"{path}[{key!r}]"))
        else:
            items: list[object] | tuple[object, ...] = value  # type: ignore[assignment]
            children = [(item, f"{path}[{i}]") for i, item in enumerate(items)]
        for item, where in children:
            kind = type(item)
            if kind is dict or kind is list or kind is tuple:
                stack.append((item, where, depth + 1))
            else:
                check_json(item, where)
