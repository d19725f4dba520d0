"""The JSON form of what the ``runlife`` command prints with ``--json``.

Every runlife value is written as an object of its fields: moments as ISO 8601
text in UTC, durations as seconds (a float), statuses, triggers and other enums
as their names, sets as sorted lists, schedules and policies as their spec
(``to_spec()``). A `Run` also gets ``duration`` (seconds, or null while active)
and ``has_warnings``. Nothing else is added or renamed, so the form follows the
Python API field for field.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from runlife._core.graph import Explanation, Workflow
from runlife._core.run import Run
from runlife._core.schedule import Cron, Every

__all__ = ("dumps", "jsonable")


def jsonable(value: Any) -> Any:
    """*value* as plain JSON data (see the module docstring).

    >>> from datetime import UTC, datetime
    >>> run = Run.create(job="backup", at=datetime(2026, 3, 10, 2, tzinfo=UTC))
    >>> data = jsonable(run)
    >>> data["status"], data["created_at"], data["duration"]
    ('PENDING', '2026-03-10T02:00:00+00:00', None)
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Cron | Every):
        return value.to_spec()
    if isinstance(value, Workflow):
        return value.to_spec()
    if isinstance(value, Explanation):
        return {**_fields(value), "text": value.text}
    if isinstance(value, Run):
        data = _fields(value)
        data["duration"] = jsonable(value.duration)
        data["has_warnings"] = value.has_warnings
        return data
    if attrs.has(type(value)):
        return _fields(value)
    if isinstance(value, Mapping):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, frozenset | set):
        return sorted((jsonable(v) for v in value), key=str)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def _fields(value: Any) -> dict[str, Any]:
    return {
        f.name.lstrip("_"): jsonable(getattr(value, f.name))
        for f in attrs.fields(type(value))
        if f.init or not f.name.startswith("_")
    }


def dumps(value: Any) -> str:
    """*value* as indented JSON text."""
    return json.dumps(jsonable(value), indent=2, ensure_ascii=False)
