"""Converters and checks shared by the core records and policies."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from runlife.exceptions import NotSerializable

__all__ = ("aware", "aware_or_none", "check_json", "frozen_labels", "to_timedelta")

JSON = Any
"""A JSON value: str, int, float, bool, None, lists and str-keyed dicts of them."""


def aware(value: datetime) -> datetime:
    """Return *value* as an aware datetime, reading a naive one as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def aware_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value)


def to_timedelta(value: float | timedelta) -> timedelta:
    """Read seconds (int or float) or a timedelta as a timedelta."""
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=value)


def frozen_labels(labels: Mapping[str, str] | None, field: str = "labels") -> Mapping[str, str]:
    """Copy *labels* into a fresh dict, refusing anything but str -> str."""
    if not labels:
        return {}
    out: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise NotSerializable(f"{field}[{key!r}]", value)
        out[key] = value
    return out


def check_json(value: object, field: str) -> None:
    """Raise `NotSerializable` naming the path of the first non-JSON part of *value*.

    Accepted: str, int, float (finite), bool, None, and lists, tuples and dicts with
    str keys made of those. Non-finite floats are refused because PostgreSQL's
    jsonb and strict JSON parsers refuse them.

    >>> check_json({"devices": ["a", 1, 2.5, None]}, "params")
    >>> check_json({"when": object()}, "params")
    Traceback (most recent call last):
    ...
    runlife.exceptions.NotSerializable: params['when'] is not JSON-serialisable: ...
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise NotSerializable(field, value)
        return
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                raise NotSerializable(f"{field} key {key!r}", key)
            check_json(item, f"{field}[{key!r}]")
        return
    if kind is list or kind is tuple:
        for index, item in enumerate(value):  # type: ignore[arg-type]
            check_json(item, f"{field}[{index}]")
        return
    raise NotSerializable(field, value)
