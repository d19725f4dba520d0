"""Converters and checks shared by the core records and policies."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from runlife._core.values import check_json
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
