"""An example runlife store plugin: every run, item, log line and event kept in one
JSON file: ``json:///relative/runs.json`` or ``json:////absolute/runs.json``.

It is small because it does not reimplement the store rules: it is runlife's
`MemoryStore` (claims, leases, limits, queries, all of it) whose state is loaded
from the file when the store opens and written back, atomically, after every
change and when it closes. One process at a time may use a file: a store for
demos, tests and single-process tools, not for a fleet.

The package registers the ``json`` scheme in the ``runlife.stores`` entry-point
group (see its pyproject.toml), so ``runlife.stores.open_store("json:///runs.json")``
and ``AsyncRuntime(store="json:///runs.json")`` find it, and its tests certify it
with ``runlife.testing.StoreContract``.
"""

from __future__ import annotations

import enum
import importlib
import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from runlife.stores import MemoryStore

__all__ = ("JSONFileStore", "open_json_store")

# MemoryStore's state, as its attributes: everything but its clock and its locks.
_STATE = (
    "_jobs", "_runs", "_by_status", "_by_job_status", "_by_key", "_by_slot",
    "_queue", "_queue_of", "_events", "_event_seqs", "_event_outputs", "_next_event",
)  # fmt: skip


def open_json_store(url: str) -> JSONFileStore:
    """The ``runlife.stores`` entry point: a `JSONFileStore` for a ``json:`` URL."""
    # As SQLAlchemy spells file URLs: json:///relative.json, json:////absolute.json.
    path = url.partition(":")[2]
    if path.startswith("//"):
        path = path[2:]
        path = path[1:] if path.startswith("/") else path
    if not path:
        raise ValueError(
            f"url={url!r} is invalid: expected json:///relative.json or json:////absolute.json"
        )
    return JSONFileStore(path)


class JSONFileStore(MemoryStore):
    """A `MemoryStore` kept in a JSON file: loaded at open, saved after each change."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)
        self.url = f"json:///{self.path}"

    def __repr__(self) -> str:
        return f"<JSONFileStore {self.path}>"

    async def _open(self) -> None:
        await super()._open()
        if self.path.exists():
            state = _decode(json.loads(self.path.read_text(encoding="utf-8")))
            for name in _STATE:
                setattr(self, name, state[name])

    async def _close(self) -> None:
        self._save()
        await super()._close()

    def _notify(self) -> None:
        # MemoryStore calls it after every change it made.
        self._save()
        super()._notify()

    def _save(self) -> None:
        state = {name: getattr(self, name) for name in _STATE}
        text = json.dumps(_encode(state), separators=(",", ":"))
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(self.path)  # atomic: a reader sees the old file or the new one


# -- a JSON codec for the store's values: attrs records, datetimes, enums, tuples --


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return {"$enum": _path(type(value)), "v": value.value}
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$td": value.total_seconds()}
    if attrs.has(type(value)):
        fields = {f.name: _encode(getattr(value, f.name)) for f in attrs.fields(type(value))}
        return {"$attrs": _path(type(value)), "f": fields}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    if isinstance(value, frozenset | set):
        return {"$set": [_encode(v) for v in value], "frozen": isinstance(value, frozenset)}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {"$map": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, type):
        return {"$type": _path(value)}
    raise TypeError(f"cannot keep a {type(value).__name__} in a JSON file: {value!r}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$enum" in value:
        return _load(value["$enum"])(value["v"])
    if "$dt" in value:
        return datetime.fromisoformat(value["$dt"])
    if "$td" in value:
        return timedelta(seconds=value["$td"])
    if "$attrs" in value:
        cls = _load(value["$attrs"])
        record = object.__new__(cls)  # as stored: no validation, no defaults
        for name, field in value["f"].items():
            object.__setattr__(record, name, _decode(field))
        return record
    if "$tuple" in value:
        return tuple(_decode(v) for v in value["$tuple"])
    if "$set" in value:
        items = [_decode(v) for v in value["$set"]]
        return frozenset(items) if value["frozen"] else set(items)
    if "$map" in value:
        return {_decode(k): _decode(v) for k, v in value["$map"]}
    if "$type" in value:
        return _load(value["$type"])
    raise ValueError(f"not a value this store wrote: {value!r}")


def _path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _load(path: str) -> Any:
    module, _, qualname = path.partition(":")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found
