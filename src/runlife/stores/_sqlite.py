"""`SQLiteStore`: the embedded default store, one durable file in WAL mode.

How it is built (the reasons are in docs/sqlite.md):

- **One writer connection, group commit.** Every write is an *operation* (a
  function of the connection and the store time) put on an async-side queue. The
  first writer that finds no flush in progress becomes the *leader*: it takes every
  pending operation and runs them all in ONE transaction (``BEGIN IMMEDIATE``) in a
  worker thread, each inside its own ``SAVEPOINT`` so that one failing operation
  fails alone. It then wakes each caller with its own result or error and hands the
  lead to the next waiting writer, if any. No background task is needed, so the
  same code runs on asyncio and trio.
- **Reads on their own connections.** WAL lets readers run beside the writer; a
  small pool of read-only connections serves them in worker threads.
- **Busy handling.** Other processes may hold the write lock: ``busy_timeout``
  waits for it, and a lock still held after that is retried with capped, jittered
  backoff until ``lock_timeout``; "database is locked" never reaches a caller
  before then (and then only as `StoreError`).
- **Store time** is the database's clock (``julianday('now')``), read inside the
  transaction that judges leases.
- **Schema.** ``runlife_schema`` records applied migrations. A file that is not a
  SQLite database, a database with foreign tables, or one migrated by a newer
  runlife is refused with `SchemaMismatch` before anything is written to it.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from runlife._core.fast import compile_maker
from runlife._core.lifecycle import Lifecycle
from runlife._core.queries import Claim, JobRecord, LogPage, LogQuery, Page, RunQuery
from runlife._core.records import Attempt, Event, Item, ItemCounts, LogLine, Transition
from runlife._core.run import Run
from runlife._core.status import Status, Trigger
from runlife.exceptions import (
    ConcurrentUpdate,
    InvalidPolicy,
    JobNotFound,
    LeaseLost,
    RunNotFound,
    SchemaMismatch,
    StoreError,
)
from runlife.stores import _codec as codec
from runlife.stores._failpoints import FailpointError, hit
from runlife.stores._failpoints import _armed as _failpoints_armed

__all__ = ("SCHEMA_VERSION", "SQLiteStore")

T = TypeVar("T")

SCHEMA_VERSION: Final = 1
"""The schema version this runlife writes; a database at a higher one is refused."""

_APPLICATION_ID: Final = 0x726C6966  # "rlif", set in the file header for file(1) and tools
_LIVE: Final = (Status.RUNNING.value, Status.WAITING.value)
_TERMINAL: Final = ("SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED")
_STATUS: Final[Mapping[str, Status]] = {s.value: s for s in Status}
_TRIGGER: Final[Mapping[str, Trigger]] = {t.value: t for t in Trigger}
_TIME_COLUMN: Final = {"created": "created_at", "started": "started_at", "ended": "ended_at"}
# SQLite's 'now' has millisecond resolution; rounding to it keeps the value exact.
_NOW_SQL: Final = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) * 1000"
_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

# -- schema -------------------------------------------------------------------

_MIGRATIONS: Final[Mapping[int, Sequence[str]]] = {
    1: (
        """CREATE TABLE jobs (
            name TEXT PRIMARY KEY,
            spec TEXT NOT NULL,
            max_concurrency INTEGER,
            per_label TEXT,
            paused INTEGER NOT NULL DEFAULT 0,
            last_scheduled_for INTEGER,
            updated_at INTEGER
        )""",
        # History, attempts, labels and params live as JSON on the run row: a
        # transition rewrites one row instead of inserting into several tables, and a
        # run reads back in one lookup. Labels are also in run_labels, for filtering.
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            job TEXT NOT NULL,
            status TEXT NOT NULL,
            state TEXT NOT NULL,
            trigger TEXT NOT NULL,
            params TEXT NOT NULL,
            result TEXT,
            error TEXT,
            labels TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            scheduled_for INTEGER,
            queued_at INTEGER,
            started_at INTEGER,
            ended_at INTEGER,
            due_at INTEGER,
            attempts TEXT NOT NULL,
            history TEXT NOT NULL,
            warnings TEXT NOT NULL,
            progress TEXT,
            parent_id TEXT,
            root_id TEXT,
            workflow_run_id TEXT,
            idempotency_key TEXT,
            priority INTEGER NOT NULL,
            version INTEGER NOT NULL,
            nhist INTEGER NOT NULL,
            error_message TEXT,
            owner TEXT,
            fence INTEGER NOT NULL DEFAULT 0,
            lease_expires_at INTEGER
        )""",
        "CREATE INDEX runs_created ON runs (created_at DESC, id DESC)",
        "CREATE INDEX runs_status ON runs (status, created_at DESC, id DESC)",
        "CREATE INDEX runs_job ON runs (job, created_at DESC, id DESC)",
        "CREATE INDEX runs_queue ON runs (job, priority DESC, created_at, id)"
        " WHERE status = 'QUEUED'",
        "CREATE INDEX runs_live ON runs (job, lease_expires_at)"
        " WHERE status IN ('RUNNING', 'WAITING')",
        "CREATE INDEX runs_due ON runs (status, due_at) WHERE due_at IS NOT NULL",
        "CREATE INDEX runs_ended ON runs (ended_at) WHERE ended_at IS NOT NULL",
        "CREATE INDEX runs_parent ON runs (parent_id) WHERE parent_id IS NOT NULL",
        "CREATE INDEX runs_workflow ON runs (workflow_run_id) WHERE workflow_run_id IS NOT NULL",
        "CREATE UNIQUE INDEX runs_idempotency ON runs (job, idempotency_key)"
        " WHERE idempotency_key IS NOT NULL",
        "CREATE UNIQUE INDEX runs_slot ON runs (job, scheduled_for)"
        " WHERE trigger = 'SCHEDULED' AND scheduled_for IS NOT NULL",
        # status and created_at are copied here so that "status + label, newest
        # first" is one index range, whatever the selectivity of either.
        """CREATE TABLE run_labels (
            run_id TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (run_id, key)
        ) WITHOUT ROWID""",
        "CREATE INDEX run_labels_kv ON run_labels (key, value, created_at DESC, run_id DESC)",
        "CREATE INDEX run_labels_kvs ON run_labels"
        " (key, value, status, created_at DESC, run_id DESC)",
        """CREATE TABLE items (
            rowid INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            key TEXT NOT NULL,
            phase TEXT,
            status TEXT NOT NULL,
            started_at INTEGER,
            ended_at INTEGER,
            attempts INTEGER NOT NULL,
            error TEXT,
            output TEXT,
            UNIQUE (run_id, key)
        )""",
        # Clustered on (run_id, seq): a page of a run's log is one contiguous range
        # of the table itself, whatever its offset. ``lid`` numbers lines store-wide
        # for the full-text index, which needs an integer key.
        """CREATE TABLE logs (
            run_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            lid INTEGER NOT NULL,
            at INTEGER NOT NULL,
            stream TEXT NOT NULL,
            level TEXT NOT NULL,
            message TEXT NOT NULL,
            item TEXT,
            attempt INTEGER,
            fields TEXT,
            PRIMARY KEY (run_id, seq)
        ) WITHOUT ROWID""",
        "CREATE UNIQUE INDEX logs_lid ON logs (lid)",
        # Trigram tokens give case-insensitive substring search (3 characters or
        # more; shorter needles scan the run's lines).
        "CREATE VIRTUAL TABLE logs_fts USING fts5("
        "message, content='logs', content_rowid='lid', tokenize='trigram')",
        """CREATE TRIGGER logs_ai AFTER INSERT ON logs BEGIN
            INSERT INTO logs_fts (rowid, message) VALUES (new.lid, new.message);
        END""",
        """CREATE TRIGGER logs_ad AFTER DELETE ON logs BEGIN
            INSERT INTO logs_fts (logs_fts, rowid, message)
            VALUES ('delete', old.lid, old.message);
        END""",
        """CREATE TABLE signals (
            run_id TEXT NOT NULL,
            name TEXT NOT NULL,
            payload TEXT NOT NULL,
            at INTEGER NOT NULL,
            PRIMARY KEY (run_id, name)
        ) WITHOUT ROWID""",
        # AUTOINCREMENT: a seq is never reused, even after purge deleted the last ones.
        # A transition's fields have columns of their own (no JSON on the hot path);
        # item events keep the item as JSON in data.
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL,
            job TEXT NOT NULL,
            kind TEXT NOT NULL,
            at INTEGER NOT NULL,
            status TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT,
            reason TEXT,
            data TEXT
        )""",
        "CREATE INDEX events_run ON events (run_id, seq)",
    ),
}
_RUNLIFE_TABLES: Final = frozenset(
    {"runlife_schema", "jobs", "runs", "run_labels", "items", "logs", "signals", "events"}
)

# -- rows <-> records ---------------------------------------------------------

_RUN_COLUMNS: Final = (
    "id, job, status, state, trigger, params, result, error, labels, created_at,"
    " scheduled_for, queued_at, started_at, ended_at, due_at, attempts, history,"
    " warnings, progress, parent_id, root_id, workflow_run_id, idempotency_key,"
    " priority, version"
)
_R_COLUMNS: Final = ", ".join(f"r.{c.strip()}" for c in _RUN_COLUMNS.split(","))
_INSERT_RUN: Final = (
    f"INSERT INTO runs ({_RUN_COLUMNS}, nhist, error_message) VALUES ({', '.join('?' * 27)})"
    " ON CONFLICT (id) DO NOTHING"
)
_SET_RUN: Final = (
    "UPDATE runs SET status = ?, state = ?, trigger = ?, params = ?, result = ?, error = ?,"
    " labels = ?, scheduled_for = ?, queued_at = ?, started_at = ?, ended_at = ?,"
    " due_at = ?, attempts = ?, history = ?, warnings = ?, parent_id = ?, root_id = ?,"
    " workflow_run_id = ?, idempotency_key = ?, priority = ?, version = ?, nhist = ?,"
    " error_message = ?, owner = ?, lease_expires_at = ?"
)
_UPDATE_RUN: Final = f"{_SET_RUN} WHERE id = ?"
# A move of the lifecycle changes only these columns: writing only them keeps
# SQLite from touching the indexes on the others (it updates every index that
# covers a column named in SET, changed or not).
_SET_MOVE: Final = (
    "UPDATE runs SET status = ?, state = ?, history = ?, nhist = ?, attempts = ?,"
    " queued_at = ?, started_at = ?, ended_at = ?, due_at = ?, error = ?,"
    " error_message = ?, version = ?, result = ?, warnings = ?, owner = ?,"
    " lease_expires_at = ?"
)
_MOVE_RUN: Final = f"{_SET_MOVE} WHERE id = ?"
# The claiming op read the fence in the same write transaction (one writer), so it
# sets fence + 1 itself: a batch of claims is then one executemany.
_CLAIM_RUN: Final = f"{_SET_MOVE}, fence = ? WHERE id = ?"
# For structures the store builds from already-checked values (history, attempts,
# errors, labels): plain JSON, without check_json's walk.
_raw_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _make_raw() -> Callable[[Any], str]:
    """`_raw_encoder.encode`, or the same without its per-call set-up when the C
    encoder is there: JSONEncoder.encode builds a new C encoder (and a cycle
    check) on every call, a few of which every write makes (~3% of a lifecycle).
    The values are the store's own acyclic structures, so no cycle check."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _raw_encoder.encode
    try:
        c_encode = make(None, _raw_encoder.default, json.encoder.encode_basestring, None,
                        ":", ",", False, False, True)  # fmt: skip
        sample: Any = [{"a": "é\n", "b": [1, 2.5, None, True]}, "x"]
        if "".join(c_encode(sample, 0)) != _raw_encoder.encode(sample):
            return _raw_encoder.encode
    except Exception:  # another Python's private signature: the plain encoder
        return _raw_encoder.encode

    def raw(value: Any) -> str:
        return "".join(c_encode(value, 0))

    return raw


_raw: Final = _make_raw()

_EPOCH: Final = codec.EPOCH
_US: Final = timedelta(microseconds=1)


def _us(moment: datetime) -> int:
    """Microseconds since the epoch of *moment* (a naive one read as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _US


_from_us = codec.from_us


def _us_or_none(moment: datetime | None) -> int | None:
    return None if moment is None else _us(moment)


def _json_or_none(value: Any, field: str) -> str | None:
    return None if value is None else codec.dumps(value, field)


def _history_json(history: Sequence[Transition]) -> str:
    return _raw([codec.transition_to_json(t) for t in history])


def _warnings_json(warnings: Sequence[str]) -> str:
    return codec.dumps(list(warnings), "warnings") if warnings else "[]"


def _appended(text: str, items: Sequence[Any]) -> str:
    """The JSON array *text* with *items* appended (without decoding it again)."""
    if not items:
        return text
    tail = _raw(list(items))[1:]
    return ("[" + tail) if text == "[]" else (text[:-1] + "," + tail)


def _move_values(run: Run, result: str | None, history: str | None = None) -> list[Any]:
    """The values of `_SET_MOVE` up to ``warnings`` (owner and lease are the caller's);
    *history* is its JSON when the caller has it already."""
    error = run.error
    return [
        run.status.value,
        str(run.state),
        _history_json(run.history) if history is None else history,
        len(run.history),
        _raw(codec.attempts_to_json(run.attempts)),
        _us_or_none(run.queued_at),
        _us_or_none(run.started_at),
        _us_or_none(run.ended_at),
        _us_or_none(run.due_at),
        None if error is None else _raw(codec.error_to_json(error)),
        None if error is None else error.message,
        run.version,
        result,
        _warnings_json(run.warnings),
    ]


def _run_values(run: Run) -> tuple[Any, ...]:
    """The values of `_INSERT_RUN` for *run* (progress is the store's: not written)."""
    error = run.error
    return (
        run.id,
        run.job,
        run.status.value,
        str(run.state),
        run.trigger.value,
        codec.dumps(dict(run.params), "params"),
        _json_or_none(run.result, "result"),
        None if error is None else _raw(codec.error_to_json(error)),
        _raw(dict(run.labels)),
        _us(run.created_at),
        _us_or_none(run.scheduled_for),
        _us_or_none(run.queued_at),
        _us_or_none(run.started_at),
        _us_or_none(run.ended_at),
        _us_or_none(run.due_at),
        _raw(codec.attempts_to_json(run.attempts)),
        _history_json(run.history),
        _warnings_json(run.warnings),
        None,
        run.parent_id,
        run.root_id,
        run.workflow_run_id,
        run.idempotency_key,
        run.priority,
        run.version,
        len(run.history),
        None if error is None else error.message,
    )


def _progress_from_json(text: str | None) -> ItemCounts:
    if text is None:
        return ItemCounts()
    t, p, r, s, f, k = codec.loads(text)
    return ItemCounts(total=t, pending=p, running=r, succeeded=s, failed=f, skipped=k)


def _progress_json(counts: ItemCounts) -> str:
    return codec.dumps(
        [counts.total, counts.pending, counts.running, counts.succeeded, counts.failed,
         counts.skipped],
        "progress",
    )  # fmt: skip


# Positional makers that skip attrs' keyword plumbing and converters: the values
# read back are already checked and aware (UTC). Reading pages of runs and log
# lines is dominated by building these records.
_make_run = compile_maker(Run)
_make_transition = compile_maker(Transition)
_make_attempt = compile_maker(Attempt)
_make_log = compile_maker(LogLine)
_loads = json.loads
_state = codec.state_from_text


def _from_us_or_none(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


def _history_from_json(text: str) -> tuple[Transition, ...]:
    return tuple(
        _make_transition(
            _state(t["f"]), _state(t["t"]), _EPOCH + timedelta(microseconds=t["at"]), t["r"]
        )
        for t in _loads(text)
    )


def _attempts_from_json(text: str) -> tuple[Attempt, ...]:
    if text == "[]":
        return ()
    return tuple(
        _make_attempt(
            a["n"],
            _EPOCH + timedelta(microseconds=a["s"]),
            _from_us_or_none(a["e"]),
            a["o"],
            None if a["err"] is None else codec.error_from_json(a["err"]),
        )
        for a in _loads(text)
    )


def _run_from_row(row: Sequence[Any]) -> Run:
    """A run from a row of `_RUN_COLUMNS` (whose order is `Run`'s field order)."""
    (run_id, job, status, state, trigger, params, result, error, labels, created,
     scheduled, queued, started, ended, due, attempts, history, warnings, progress,
     parent_id, root_id, workflow_run_id, key, priority, version) = row  # fmt: skip
    return _make_run(  # type: ignore[no-any-return]
        run_id,
        job,
        _STATUS[status],
        _state(state),
        _TRIGGER[trigger],
        _loads(params),
        None if result is None else _loads(result),
        None if error is None else codec.error_from_json(_loads(error)),
        _loads(labels),
        _EPOCH + timedelta(microseconds=created),
        _from_us_or_none(scheduled),
        _from_us_or_none(queued),
        _from_us_or_none(started),
        _from_us_or_none(ended),
        _from_us_or_none(due),
        _attempts_from_json(attempts),
        _history_from_json(history),
        () if warnings == "[]" else tuple(_loads(warnings)),
        _NO_PROGRESS if progress is None else _progress_from_json(progress),
        parent_id,
        root_id,
        workflow_run_id,
        key,
        priority,
        version,
    )


def _all_utc(run: Run) -> bool:
    for moment in (run.created_at, run.scheduled_for, run.queued_at, run.started_at,
                   run.ended_at, run.due_at):  # fmt: skip
        if moment is not None and moment.tzinfo is not UTC:
            return False
    for t in run.history:
        if t.at.tzinfo is not UTC:
            return False
    for a in run.attempts:
        if a.started_at.tzinfo is not UTC or (
            a.ended_at is not None and a.ended_at.tzinfo is not UTC
        ):
            return False
    return True


def _as_stored(conn: sqlite3.Connection, run: Run, progress: str | None) -> Run:
    """*run* as a read returns it (UTC times, canonical state objects, the store's
    progress): *run* itself when it already is, else read back."""
    if progress is None and run.progress == _NO_PROGRESS and _all_utc(run):
        return run
    row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run.id,)).fetchone()
    return _run_from_row(row)


_NO_PROGRESS: Final = ItemCounts()


def _item_to_json(item: Item) -> dict[str, Any]:
    return {
        "run_id": item.run_id,
        "key": item.key,
        "phase": item.phase,
        "status": item.status.value,
        "s": _us_or_none(item.started_at),
        "e": _us_or_none(item.ended_at),
        "attempts": item.attempts,
        "err": codec.error_to_json(item.error),
        "output": item.output,
    }


def _item_from_json(data: Mapping[str, Any]) -> Item:
    return Item(
        run_id=data["run_id"],
        key=data["key"],
        phase=data["phase"],
        status=_STATUS[data["status"]],
        started_at=_from_us_or_none(data["s"]),
        ended_at=_from_us_or_none(data["e"]),
        attempts=data["attempts"],
        error=codec.error_from_json(data["err"]),
        output=data["output"],
    )


_ITEM_COLUMNS: Final = "run_id, key, phase, status, started_at, ended_at, attempts, error, output"


def _item_from_row(row: Sequence[Any]) -> Item:
    loads = codec.loads
    return Item(
        run_id=row[0],
        key=row[1],
        phase=row[2],
        status=_STATUS[row[3]],
        started_at=_from_us_or_none(row[4]),
        ended_at=_from_us_or_none(row[5]),
        attempts=row[6],
        error=codec.error_from_json(loads(row[7])),
        output=loads(row[8]),
    )


_LOG_COLUMNS: Final = "run_id, seq, at, stream, level, message, item, attempt, fields"


def _log_from_row(row: Sequence[Any]) -> LogLine:
    run_id, seq, at, stream, level, message, item, attempt, fields = row
    return _make_log(  # type: ignore[no-any-return]
        run_id, seq, _EPOCH + timedelta(microseconds=at), stream, level, message, item,
        attempt, {} if fields is None else _loads(fields),
    )  # fmt: skip


def _event_from_row(row: Sequence[Any]) -> Event:
    seq, run_id, job, kind, at, status, from_state, to_state, reason, data = row
    transition = item = None
    if kind == "transition":
        transition = Transition(
            from_=codec.state_from_text(from_state),
            to=codec.state_from_text(to_state),
            at=_from_us(at),
            reason=reason,
        )
    else:
        item = _item_from_json(codec.loads(data))
    return Event(
        kind=kind,
        run_id=run_id,
        job=job,
        at=_from_us(at),
        status=_STATUS[status],
        transition=transition,
        item=item,
        seq=seq,
    )


def _job_from_row(row: Sequence[Any]) -> JobRecord:
    name, spec, max_concurrency, per_label, paused, last, updated = row
    return JobRecord(
        name=name,
        spec=codec.loads(spec),
        max_concurrency=max_concurrency,
        per_label=codec.loads(per_label) or {},
        paused=bool(paused),
        last_scheduled_for=_from_us_or_none(last),
        updated_at=_from_us_or_none(updated),
    )


_JOB_COLUMNS: Final = (
    "name, spec, max_concurrency, per_label, paused, last_scheduled_for, updated_at"
)


_INSERT_EVENT: Final = (
    "INSERT INTO events (run_id, job, kind, at, status, from_state, to_state, reason)"
    " VALUES (?, ?, 'transition', ?, ?, ?, ?, ?)"
)


class _Later:
    """Rows that every op of a batch adds at its end: transition events and label
    statuses, written with one ``executemany`` each just before the commit. An op
    that fails takes its rows back (`mark` / `reset`)."""

    __slots__ = ("events", "labels")

    def __init__(self) -> None:
        self.labels: list[tuple[str, str]] = []
        self.events: list[tuple[Any, ...]] = []

    def add_events(self, run: Run, transitions: Sequence[Transition]) -> None:
        status = run.status.value
        self.events.extend(
            (run.id, run.job, _us(t.at), status, str(t.from_), str(t.to), t.reason)
            for t in transitions
        )

    def mark(self) -> tuple[int, int]:
        return len(self.labels), len(self.events)

    def reset(self, mark: tuple[int, int]) -> None:
        del self.labels[mark[0] :]
        del self.events[mark[1] :]

    def write(self, conn: sqlite3.Connection) -> None:
        if self.labels:
            conn.executemany("UPDATE run_labels SET status = ? WHERE run_id = ?", self.labels)
        if self.events:
            conn.executemany(_INSERT_EVENT, self.events)


def _is_busy(exc: BaseException) -> bool:
    return (
        isinstance(exc, sqlite3.OperationalError)
        and (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _BUSY_CODES
    )


def _icontains(haystack: str | None, needle: str) -> bool:
    # Python's lower(), as MemoryStore matches; SQLite's LIKE folds ASCII only.
    return haystack is not None and needle in haystack.lower()


# -- the group-commit queue ---------------------------------------------------


def _op_error(exc: Exception) -> Exception:
    """What the caller of a failed op sees: domain errors as they are, driver errors
    as `StoreError`."""
    if isinstance(exc, sqlite3.Error):
        error = StoreError(f"SQLite error: {exc}")
        error.__cause__ = exc
        return error
    return exc


class _Op:
    """One queued write: its function, and then its outcome."""

    __slots__ = ("abandoned", "done", "error", "finished", "fn", "lead", "name", "result")

    def __init__(self, name: str | None, fn: Callable[[sqlite3.Connection, int], Any]) -> None:
        self.name = name
        self.fn = fn
        self.done = anyio.Event()
        self.finished = False
        self.lead = False
        self.abandoned = False
        self.result: Any = None
        self.error: BaseException | None = None


class SQLiteStore:
    """The embedded default store: one SQLite file in WAL mode, group-committed.

    Args:
        path: the database file (created with its schema when absent or empty).
        readers: how many read connections may work at once.
        busy_timeout: seconds SQLite itself waits for a lock held by another
            process before the store's own backoff takes over.
        lock_timeout: seconds a write may wait, in all, for the write lock before
            it fails with `StoreError`.

    Raises:
        SchemaMismatch: on opening, the file is not a SQLite database, holds foreign
            tables, or was migrated by a newer runlife; it is left untouched.
        StoreError: on opening, the file cannot be opened.

    >>> import anyio, tempfile, os
    >>> async def main(path):
    ...     async with SQLiteStore(path) as store:
    ...         return await store.list_jobs()
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     anyio.run(main, os.path.join(tmp, "runs.db"))
    ()
    """

    url: str

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        readers: int = 4,
        busy_timeout: float = 1.0,
        lock_timeout: float = 60.0,
    ) -> None:
        path = os.fspath(path)
        if not path or path == ":memory:":
            # SQLite's own :memory: database lives inside one connection, and this
            # store has several (a writer and readers).
            raise InvalidPolicy(
                "path", path, "a file path (use MemoryStore, memory://, for a store in memory)"
            )
        if readers < 1:
            raise InvalidPolicy("readers", readers, "an int of 1 or more")
        self.url = f"sqlite:///{path}"
        self.path = path
        self._readers = readers
        self._busy_ms = int(busy_timeout * 1000)
        self._lock_timeout = lock_timeout
        self._open_lock: anyio.Lock | None = None
        self._opened = False
        self._closed = False
        self._writer: sqlite3.Connection | None = None
        self._idle: list[sqlite3.Connection] = []
        self._all_readers: list[sqlite3.Connection] = []
        self._reader_slots: anyio.Semaphore | None = None
        self._pending: list[_Op] = []
        self._flushing = False
        self._flush_idle: anyio.Event | None = None
        self._changed: anyio.Event | None = None
        self._watch: sqlite3.Connection | None = None
        self._watch_lock = threading.Lock()
        self._data_version: int | None = None
        # The rows the ops of the batch being committed add at its end (writer
        # thread only).
        self._later = _Later()

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r}>"

    # -- opening and closing ---------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._ensure_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _ensure_open(self) -> None:
        if self._opened:
            return
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        if self._open_lock is None:
            self._open_lock = anyio.Lock()
        async with self._open_lock:
            if not self._opened:
                await self._open()

    async def _open(self) -> None:
        self._writer = await anyio.to_thread.run_sync(self._open_writer)
        self._reader_slots = anyio.Semaphore(self._readers)
        self._changed = anyio.Event()
        self._opened = True

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: the store says BEGIN and COMMIT itself.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_writer(self) -> sqlite3.Connection:
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path!r}: {exc}") from exc
        try:
            version = self._with_busy_retry(lambda: self._check_schema(conn))
            self._with_busy_retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
            # NORMAL in WAL mode: a commit survives a crash of the process; only a
            # power loss may lose the last commits (never corrupting the file).
            conn.execute("PRAGMA synchronous = NORMAL")
            if version < SCHEMA_VERSION:
                self._with_busy_retry(lambda: self._migrate(conn))
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot open SQLite database {self.path!r}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_schema(self, conn: sqlite3.Connection) -> int:
        """The schema version of the file (0: empty); refuses files runlife must not touch.

        Reads only: nothing is written before this has passed.
        """
        try:
            tables = {
                name
                for (name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
                    " AND name NOT LIKE 'sqlite_%'"
                )
            }
            if not tables:
                return 0
            if "runlife_schema" not in tables:
                foreign = ", ".join(sorted(tables)[:5])
                raise SchemaMismatch(
                    f"{self.path!r} is a SQLite database of another application "
                    f"(tables: {foreign}); runlife left it untouched"
                )
            (version,) = conn.execute("SELECT max(version) FROM runlife_schema").fetchone()
        except sqlite3.DatabaseError as exc:
            if _is_busy(exc):
                raise
            raise SchemaMismatch(
                f"{self.path!r} is not a usable SQLite database ({exc}); runlife left it untouched"
            ) from exc
        version = int(version or 0)
        if version > SCHEMA_VERSION:
            raise SchemaMismatch(
                f"{self.path!r} has runlife schema version {version}, newer than "
                f"this runlife's {SCHEMA_VERSION}; upgrade runlife to open it "
                "(it was left untouched)"
            )
        return version

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Checked again under the write lock: another process may have migrated.
            version = self._check_schema(conn)
            if version == 0:
                conn.execute(
                    "CREATE TABLE runlife_schema ("
                    " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
                )
                conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[number]:
                    conn.execute(statement)
                conn.execute(
                    f"INSERT INTO runlife_schema (version, applied_at) VALUES (?, {_NOW_SQL})",
                    (number,),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _with_busy_retry(self, fn: Callable[[], T]) -> T:
        """Run *fn*, retrying while another process holds a lock (capped backoff)."""
        deadline = time.monotonic() + self._lock_timeout
        delay = 0.002
        while True:
            try:
                return fn()
            except sqlite3.Error as exc:
                if not _is_busy(exc):
                    raise StoreError(f"SQLite error on {self.path!r}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"{self.path!r} stayed locked by another writer for "
                        f"{self._lock_timeout:g} s"
                    ) from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.1)

    async def aclose(self) -> None:
        """Finish the writes in flight, then close every connection."""
        if self._closed:
            return
        self._closed = True
        if not self._opened:
            return
        while self._flushing or self._pending:
            if self._flush_idle is None:
                self._flush_idle = anyio.Event()
            await self._flush_idle.wait()
        assert self._reader_slots is not None
        for _ in range(self._readers):
            await self._reader_slots.acquire()
        conns = [*self._all_readers, self._writer]
        with self._watch_lock:  # a poll of wait_changed may be using it
            if self._watch is not None:
                conns.append(self._watch)
        self._all_readers.clear()
        self._idle.clear()

        self._writer = self._watch = None
        self._opened = False
        for conn in conns:
            if conn is not None:
                conn.close()

    # -- the two paths: group-committed writes and pooled reads -----------------

    async def _write(self, name: str | None, fn: Callable[[sqlite3.Connection, int], T]) -> T:
        await self._ensure_open()
        op = _Op(name, fn)
        self._pending.append(op)
        if not self._flushing:
            self._flushing = True
            await self._lead(op)
        else:
            try:
                await op.done.wait()
            except BaseException:
                self._abandon(op)
                raise
            if not op.finished:  # we were handed the lead
                await self._lead(op)
        if op.error is not None:
            raise op.error
        return op.result  # type: ignore[no-any-return]

    def _abandon(self, op: _Op) -> None:
        """A waiting writer was cancelled: drop its op, and pass on the lead if it had it."""
        if op.finished:
            return
        # A leader cancelled before its thread started puts its batch back on the
        # queue: an op whose caller is gone must not go back (nor be handed the lead).
        op.abandoned = True
        if op in self._pending:
            self._pending.remove(op)
        if op.lead:
            self._hand_off()

    def _hand_off(self) -> None:
        if self._pending:
            nxt = self._pending[0]
            nxt.lead = True
            nxt.done.set()
        else:
            self._flushing = False
            if self._flush_idle is not None:
                self._flush_idle.set()
                self._flush_idle = None

    async def _lead(self, op: _Op) -> None:
        try:
            while not op.finished:
                # Let the tasks that are ready (those the last batch woke, mostly)
                # queue their next writes first: a flush costs a thread hand-off
                # and a commit whatever its size, and while a batch runs its thread
                # and the event loop fight over the GIL. Without this the lead
                # passes at once and a full batch alternates with small ones
                # (~4,300 -> ~5,500 lifecycles/s in benchmarks/bench_sqlite.py).
                # A few passes at most, and shielded: the writes already queued
                # are never held back for long, and a cancelled leader is still
                # handled below (run_sync).
                for _ in range(4):
                    n = len(self._pending)
                    await anyio.lowlevel.cancel_shielded_checkpoint()
                    if len(self._pending) == n:
                        break
                batch, self._pending = self._pending, []
                ran = [False]
                try:
                    await anyio.to_thread.run_sync(self._commit_batch, batch, ran)
                except BaseException:
                    if not ran[0]:
                        # Cancelled before the thread started: the others' writes
                        # go back to the queue for the next leader.
                        self._pending[:0] = [o for o in batch if o is not op and not o.abandoned]
                        batch = [op]
                    for other in batch:
                        if other.error is None and other is not op:
                            other.error = StoreError("the batch of this write failed")
                    raise
                finally:
                    for other in batch:
                        other.finished = True
                        if other is not op:
                            other.done.set()
                assert self._changed is not None
                self._changed.set()
                self._changed = anyio.Event()
        finally:
            self._hand_off()

    def _commit_batch(self, batch: list[_Op], ran: list[bool]) -> None:
        """Run *batch* in one transaction (in a worker thread), each op failing alone.

        Every op checks before it writes, so one that fails has usually written
        nothing: the batch first runs without savepoints. If an op fails after
        writing (``total_changes`` moved), the transaction is rolled back and the
        batch runs again with a ``SAVEPOINT`` per op. Armed failpoints (which
        fail after writing on purpose) take the savepoint path from the start.
        """
        ran[0] = True
        conn = self._writer
        assert conn is not None
        deadline = time.monotonic() + self._lock_timeout
        delay = 0.002
        savepoints = bool(_failpoints_armed)
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    (now,) = conn.execute(f"SELECT {_NOW_SQL}").fetchone()
                    later = self._later = _Later()
                    if savepoints:
                        for op in batch:
                            self._run_op(conn, op, now, later)
                    elif not all(self._run_op_plain(conn, op, now, later) for op in batch):
                        conn.execute("ROLLBACK")
                        savepoints = True
                        continue
                    later.write(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                if _is_busy(exc) and time.monotonic() < deadline:
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 0.1)
                    continue
                error = StoreError(f"SQLite error on {self.path!r}: {exc}")
                error.__cause__ = exc
                for op in batch:
                    op.error = error
                    op.result = None
                return
            break
        for op in batch:
            if op.name is not None and op.error is None:
                try:
                    hit(f"{op.name}.after_commit")
                except FailpointError as exc:
                    op.error = exc

    @staticmethod
    def _run_op_plain(conn: sqlite3.Connection, op: _Op, now: int, later: _Later) -> bool:
        """Run *op* without a savepoint; False if it failed after writing."""
        before = conn.total_changes
        mark = later.mark()
        try:
            op.result = op.fn(conn, now)
        except sqlite3.OperationalError:
            raise  # busy, I/O, disk full: the whole transaction is in doubt
        except Exception as exc:
            later.reset(mark)
            op.result = None
            op.error = _op_error(exc)
            return conn.total_changes == before
        op.error = None
        return True

    @staticmethod
    def _run_op(conn: sqlite3.Connection, op: _Op, now: int, later: _Later) -> None:
        conn.execute("SAVEPOINT op")
        mark = later.mark()
        try:
            op.result = op.fn(conn, now)
            if op.name is not None:
                hit(f"{op.name}.before_commit")
        except sqlite3.OperationalError:
            raise  # busy, I/O, disk full: the whole transaction is in doubt
        except Exception as exc:
            later.reset(mark)
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            op.result = None
            op.error = _op_error(exc)
        else:
            op.error = None
            conn.execute("RELEASE op")

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        await self._ensure_open()
        assert self._reader_slots is not None
        async with self._reader_slots:
            if self._closed:
                raise StoreError(f"{self!r} is closed")
            conn = self._idle.pop() if self._idle else None
            # The thread puts the connection back when it is done with it (even if
            # this task is cancelled meanwhile: run_sync waits for the thread).
            return await anyio.to_thread.run_sync(self._run_read, conn, fn)

    def _run_read(
        self, conn: sqlite3.Connection | None, fn: Callable[[sqlite3.Connection], T]
    ) -> T:
        if conn is None:
            try:
                conn = self._connect()
                conn.execute("PRAGMA query_only = 1")
                conn.create_function("rl_icontains", 2, _icontains, deterministic=True)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open SQLite database {self.path!r}: {exc}") from exc
            self._all_readers.append(conn)
        try:
            return self._with_busy_retry(lambda: fn(conn))
        finally:
            self._idle.append(conn)

    # -- time ------------------------------------------------------------------

    async def now(self) -> datetime:
        """The database's clock (SQLite's ``julianday('now')``, millisecond resolution)."""

        def read(conn: sqlite3.Connection) -> int:
            (us,) = conn.execute(f"SELECT {_NOW_SQL}").fetchone()
            return int(us)

        return _from_us(await self._read(read))

    # -- jobs ------------------------------------------------------------------

    async def save_job(self, job: JobRecord) -> JobRecord:
        """Insert or replace *job*, keeping the stored ``paused`` and ``last_scheduled_for``."""
        spec = codec.dumps(dict(job.spec), "spec")
        per_label = codec.dumps(dict(job.per_label), "per_label")

        def op(conn: sqlite3.Connection, now: int) -> JobRecord:
            conn.execute(
                f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET spec = excluded.spec,"
                " max_concurrency = excluded.max_concurrency,"
                " per_label = excluded.per_label, updated_at = excluded.updated_at",
                (job.name, spec, job.max_concurrency, per_label, int(job.paused),
                 _us_or_none(job.last_scheduled_for), now),
            )  # fmt: skip
            return self._get_job(conn, job.name)

        return await self._write(None, op)

    @staticmethod
    def _get_job(conn: sqlite3.Connection, name: str) -> JobRecord:
        row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = [n for (n,) in conn.execute("SELECT name FROM jobs")]
            raise JobNotFound(name, known)
        return _job_from_row(row)

    async def get_job(self, name: str) -> JobRecord:
        """The job's record; raises `JobNotFound`."""
        return await self._read(lambda conn: self._get_job(conn, name))

    async def list_jobs(self) -> tuple[JobRecord, ...]:
        """All job records, by name."""

        def read(conn: sqlite3.Connection) -> tuple[JobRecord, ...]:
            rows = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY name")
            return tuple(_job_from_row(row) for row in rows)

        return await self._read(read)

    async def set_paused(self, name: str, paused: bool) -> JobRecord:
        """Pause or unpause a job's schedule; raises `JobNotFound`."""

        def op(conn: sqlite3.Connection, now: int) -> JobRecord:
            cur = conn.execute(
                "UPDATE jobs SET paused = ?, updated_at = ? WHERE name = ?",
                (int(paused), now, name),
            )
            if cur.rowcount == 0:
                self._get_job(conn, name)  # raises JobNotFound with the known names
            return self._get_job(conn, name)

        return await self._write(None, op)

    # -- runs ------------------------------------------------------------------

    @staticmethod
    def _load_run(conn: sqlite3.Connection, run_id: str) -> Run:
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        return _run_from_row(row)

    async def create_run(self, run: Run) -> Run:
        """Store a new run with its history and a ``transition`` event per history row.

        Returns the stored run: the existing one for a repeated id, idempotency key
        or schedule slot.

        Raises:
            NotSerializable: params, result or labels are not JSON (naming the field),
                before anything is written.
            InvalidPolicy: ``run.version`` is not 0.
        """
        if run.version != 0:
            raise InvalidPolicy("version", run.version, "0 for a new run")
        values = _run_values(run)
        labels = [
            (run.id, key, value, run.status.value, values[9]) for key, value in run.labels.items()
        ]
        scheduled = run.trigger is Trigger.SCHEDULED and run.scheduled_for is not None

        def op(conn: sqlite3.Connection, now: int) -> Run:
            existing = None
            if run.idempotency_key is not None:
                existing = conn.execute(
                    "SELECT id FROM runs WHERE job = ? AND idempotency_key = ?",
                    (run.job, run.idempotency_key),
                ).fetchone()
            if existing is None and scheduled:
                existing = conn.execute(
                    "SELECT id FROM runs WHERE job = ? AND scheduled_for = ?"
                    " AND trigger = 'SCHEDULED'",
                    (run.job, values[10]),
                ).fetchone()
            if existing is not None:
                return self._load_run(conn, existing[0])
            if conn.execute(_INSERT_RUN, values).rowcount == 0:  # the id is stored
                return self._load_run(conn, run.id)
            if labels:
                conn.executemany(
                    "INSERT INTO run_labels (run_id, key, value, status, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    labels,
                )
            if run.history:
                self._later.add_events(run, run.history)
            if scheduled:
                conn.execute(
                    "INSERT INTO jobs (name, spec, per_label, last_scheduled_for, updated_at)"
                    " VALUES (?, '{}', '{}', ?, ?) ON CONFLICT (name) DO UPDATE SET"
                    " last_scheduled_for = max(coalesce(last_scheduled_for, ?), ?)",
                    (run.job, values[10], now, values[10], values[10]),
                )
            return _as_stored(conn, run, None)

        return await self._write("create_run", op)

    async def get_run(self, run_id: str) -> Run:
        """The run, with its current progress; raises `RunNotFound`."""
        return await self._read(lambda conn: self._load_run(conn, run_id))

    async def update_run(
        self,
        run: Run,
        *,
        expected_version: int,
        claim: Claim | None = None,
        only_if_lapsed: bool = False,
    ) -> Run:
        """Write *run* if the stored version is *expected_version* (see `runlife.abc.Store`).

        Raises:
            LeaseLost: *claim* no longer matches the stored owner and fence.
            ConcurrentUpdate: the version differs, or (*only_if_lapsed*) the lease
                still holds.
            RunNotFound: no such run.
            NotSerializable: the result or params are not JSON.
        """
        result = _json_or_none(run.result, "result")
        # The history is filled in by the op: the stored JSON with the new
        # transitions appended (as `runlife.abc.Store.update_run` says), instead of
        # encoding the whole history again on every write.
        moves = _move_values(run, result, "")
        live = run.status.value in _LIVE
        rare = (run.trigger.value, _us_or_none(run.scheduled_for), run.parent_id, run.root_id,
                run.workflow_run_id, run.idempotency_key, run.priority)  # fmt: skip

        def op(conn: sqlite3.Connection, now: int) -> Run:
            row = conn.execute(
                "SELECT version, status, owner, fence, lease_expires_at, nhist, progress,"
                " params, labels, trigger, scheduled_for, parent_id, root_id,"
                " workflow_run_id, idempotency_key, priority, history FROM runs WHERE id = ?",
                (run.id,),
            ).fetchone()
            if row is None:
                raise RunNotFound(run.id)
            version, status, owner, fence, lease, nhist, progress, params, labels = row[:9]
            if claim is not None and (
                claim.run_id != run.id or owner != claim.owner or fence != claim.fence
            ):
                raise LeaseLost(run.id, claim.owner, claim.fence)
            if version != expected_version:
                raise ConcurrentUpdate(run.id, expected_version, version)
            if only_if_lapsed and lease is not None and lease > now:
                raise ConcurrentUpdate(run.id, expected_version, version)
            hold = (owner, lease) if live else (None, None)
            same_labels = codec.loads(labels) == run.labels
            if len(run.history) >= nhist:
                added = [codec.transition_to_json(t) for t in run.history[nhist:]]
                moves[2] = _appended(row[16], added)
            else:  # not a successor's history: written as given
                moves[2] = _history_json(run.history)
            if row[9:16] == rare and same_labels and codec.loads(params) == run.params:
                conn.execute(_MOVE_RUN, (*moves, *hold, run.id))
            else:  # a rare change beyond the lifecycle's: write every column
                values = _run_values(run)
                conn.execute(
                    _UPDATE_RUN,
                    (*values[2:9], *values[10:18], *values[19:], *hold, run.id),
                )
            new_status = moves[0]
            if not same_labels:
                conn.execute("DELETE FROM run_labels WHERE run_id = ?", (run.id,))
                created = _us(run.created_at)
                conn.executemany(
                    "INSERT INTO run_labels (run_id, key, value, status, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(run.id, k, v, new_status, created) for k, v in run.labels.items()],
                )
                # Also at the end: an earlier op of this batch may have left a status.
                self._later.labels.append((new_status, run.id))
            elif status != new_status and run.labels:
                self._later.labels.append((new_status, run.id))
            if len(run.history) > nhist:
                self._later.add_events(run, run.history[nhist:])
            return _as_stored(conn, run, progress)

        return await self._write("update_run", op)

    async def claim(
        self,
        worker: str,
        jobs: Mapping[str, Lifecycle],
        *,
        limit: int,
        lease: float,
    ) -> tuple[Claim, ...]:
        """Claim up to *limit* QUEUED runs of *jobs* for *worker* (see `runlife.abc.Store`)."""
        if limit <= 0 or not jobs:
            return ()
        lease_us = round(lease * 1_000_000)
        names = sorted(jobs)

        def op(conn: sqlite3.Connection, now: int) -> tuple[Claim, ...]:
            marks = ", ".join("?" * len(names))
            limits: dict[str, tuple[int | None, dict[str, int]]] = {}
            for name, max_c, per_label in conn.execute(
                f"SELECT name, max_concurrency, per_label FROM jobs WHERE name IN ({marks})",
                names,
            ):
                per = codec.loads(per_label) or {}
                if max_c is not None or per:
                    limits[name] = (max_c, per)
            active: dict[str, int] = {}
            label_active: dict[tuple[str, str, str], int] = {}
            if limits:
                limited = sorted(limits)
                lmarks = ", ".join("?" * len(limited))
                for name, count in conn.execute(
                    f"SELECT job, count(*) FROM runs WHERE job IN ({lmarks})"
                    " AND status IN ('RUNNING', 'WAITING') GROUP BY job",
                    limited,
                ):
                    active[name] = count
                for name, (_, per) in limits.items():
                    for key in per:
                        for value, count in conn.execute(
                            "SELECT l.value, count(*) FROM runs r JOIN run_labels l"
                            " ON l.run_id = r.id AND l.key = ?"
                            " WHERE r.job = ? AND r.status IN ('RUNNING', 'WAITING')"
                            " GROUP BY l.value",
                            (key, name),
                        ):
                            label_active[(name, key, value)] = count
            claims: list[Claim] = []
            writes: list[tuple[Any, ...]] = []
            # A k-way merge of the jobs' queues in claim order; a job that reaches
            # its max_concurrency leaves the merge instead of being scanned to the end.
            heap: list[tuple[int, int, str, int, Sequence[Any]]] = []
            streams = [_queued(conn, name, limit) for name in names]
            for index, stream in enumerate(streams):
                first = next(stream, None)
                if first is not None:
                    heap.append((*first[:3], index, first[3]))
            heapq.heapify(heap)
            while heap and len(claims) < limit:
                *_, index, row = heap[0]
                job = row[1]
                nxt = next(streams[index], None)
                if nxt is None:
                    heapq.heappop(heap)
                else:
                    heapq.heapreplace(heap, (*nxt[:3], index, nxt[3]))
                job_limits = limits.get(job)
                if job_limits is not None:
                    max_c, per = job_limits
                    if max_c is not None and active.get(job, 0) >= max_c:
                        heap = [entry for entry in heap if entry[3] != index]
                        heapq.heapify(heap)
                        continue
                    labels = codec.loads(row[8])
                    keys = [(job, key, labels[key]) for key in per if key in labels]
                    if any(label_active.get(k, 0) >= per[k[1]] for k in keys):
                        continue
                    active[job] = active.get(job, 0) + 1
                    for k in keys:
                        label_active[k] = label_active.get(k, 0) + 1
                claims.append(
                    self._claim_one(row, worker, jobs[job], now, lease_us, self._later, writes)
                )
            conn.executemany(_CLAIM_RUN, writes)
            return tuple(claims)

        return await self._write("claim", op)

    @staticmethod
    def _claim_one(
        row: Sequence[Any],
        worker: str,
        lifecycle: Lifecycle,
        now: int,
        lease_us: int,
        later: _Later,
        writes: list[tuple[Any, ...]],
    ) -> Claim:
        """Move the run of *row* (a `_RUN_COLUMNS` row, then the fence) to RUNNING for
        *worker*: its `_CLAIM_RUN` values go to *writes*, its label and event rows to
        *later*."""
        run = _run_from_row(row[:-1])
        claimed = lifecycle.transition(
            run, Status.RUNNING, at=_from_us(now), reason=f"claimed by {worker}"
        )
        expires = now + lease_us
        # A claim only appends to the history: extend the stored JSON.
        added = claimed.history[len(run.history) :]
        history = _appended(row[16], [codec.transition_to_json(t) for t in added])
        moves = _move_values(claimed, row[6], history)
        fence = row[-1] + 1
        writes.append((*moves, worker, expires, fence, run.id))
        if claimed.labels and claimed.status is not run.status:
            later.labels.append((moves[0], run.id))
        later.add_events(claimed, added)
        return Claim(run=claimed, owner=worker, fence=fence, expires_at=_from_us(expires))

    async def claim_run(
        self, run_id: str, worker: str, lifecycle: Lifecycle, *, lease: float
    ) -> Claim:
        """Claim the PENDING or QUEUED run *run_id*, ignoring limits.

        Raises `ConcurrentUpdate` if it is no longer PENDING or QUEUED, `RunNotFound`
        if absent.
        """
        lease_us = round(lease * 1_000_000)

        def op(conn: sqlite3.Connection, now: int) -> Claim:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS}, fence FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            if row[2] not in ("PENDING", "QUEUED"):
                raise ConcurrentUpdate(run_id, row[24], row[24])
            writes: list[tuple[Any, ...]] = []
            claim = self._claim_one(row, worker, lifecycle, now, lease_us, self._later, writes)
            conn.executemany(_CLAIM_RUN, writes)
            return claim

        return await self._write("claim", op)

    async def heartbeat(self, claim: Claim, *, lease: float) -> datetime:
        """Extend *claim*'s lease to store time + *lease*; raises `LeaseLost` if the
        claim no longer holds (a purged run included)."""
        lease_us = round(lease * 1_000_000)

        def op(conn: sqlite3.Connection, now: int) -> datetime:
            cur = conn.execute(
                "UPDATE runs SET lease_expires_at = ? WHERE id = ? AND owner = ? AND fence = ?"
                " AND status IN ('RUNNING', 'WAITING')",
                (now + lease_us, claim.run_id, claim.owner, claim.fence),
            )
            if cur.rowcount == 0:  # taken over, ended, or purged: the hold is gone
                raise LeaseLost(claim.run_id, claim.owner, claim.fence)
            return _from_us(now + lease_us)

        return await self._write(None, op)

    async def abandoned(self, *, limit: int = 100) -> tuple[Run, ...]:
        """RUNNING or WAITING runs whose lease has lapsed by store time (or that have
        none), oldest lapse first."""

        def read(conn: sqlite3.Connection) -> tuple[Run, ...]:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE status IN ('RUNNING', 'WAITING')"
                f" AND (lease_expires_at IS NULL OR lease_expires_at <= {_NOW_SQL})"
                " ORDER BY lease_expires_at, id LIMIT ?",
                (limit,),
            )
            return tuple(_run_from_row(row) for row in rows)

        return await self._read(read)

    async def due(self, statuses: Collection[Status], *, limit: int = 100) -> tuple[Run, ...]:
        """Runs in *statuses* whose ``due_at`` has come by store time, earliest first."""
        wanted = sorted(Status(s).value for s in statuses)
        if not wanted:
            return ()

        def read(conn: sqlite3.Connection) -> tuple[Run, ...]:
            marks = ", ".join("?" * len(wanted))
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE status IN ({marks})"
                f" AND due_at IS NOT NULL AND due_at <= {_NOW_SQL}"
                " ORDER BY due_at, id LIMIT ?",
                (*wanted, limit),
            )
            return tuple(_run_from_row(row) for row in rows)

        return await self._read(read)

    # -- queries ---------------------------------------------------------------

    async def list_runs(self, query: RunQuery) -> Page:
        """Runs matching *query*, newest first (by creation, then id), one page at a time.

        Raises `InvalidPolicy` for a cursor this store did not make.
        """
        after = None
        if query.cursor is not None:
            created, run_id = codec.decode_cursor(query.cursor, 2)
            after = (int(created), str(run_id))
        if query.limit < 1:
            raise InvalidPolicy("limit", query.limit, "a positive number of runs")
        limit = query.limit
        # Several statuses: one index range per status, merged here (the planner would
        # otherwise sort every matching row to find the newest).
        statuses: list[str | None] = [None]
        if query.status:
            statuses = [*sorted(s.value for s in query.status)]

        def read(conn: sqlite3.Connection) -> Page:
            streams = []
            for status in statuses:
                sql, args = _select_runs(query, status, after, limit + 1)
                rows = conn.execute(sql, args).fetchall()
                streams.append(rows)
            if len(streams) == 1:
                rows = streams[0]
            else:
                rows = list(
                    itertools.islice(
                        heapq.merge(*streams, key=lambda r: (r[9], r[0]), reverse=True),
                        limit + 1,
                    )
                )
            runs = tuple(_run_from_row(row) for row in rows[:limit])
            cursor = None
            if len(rows) > limit and runs:
                last = runs[-1]
                cursor = codec.encode_cursor(_us(last.created_at), last.id)
            return Page(runs=runs, next_cursor=cursor)

        return await self._read(read)

    async def count_runs(self, query: RunQuery) -> Mapping[Status, int]:
        """How many runs matching *query* (limit and cursor aside) are in each status."""

        def read(conn: sqlite3.Connection) -> Mapping[Status, int]:
            where, args = _run_filters(query, "r")
            sql = f"SELECT r.status, count(*) FROM runs r{where} GROUP BY r.status"
            return {_STATUS[s]: n for s, n in conn.execute(sql, args) if n}

        return await self._read(read)

    # -- items -----------------------------------------------------------------

    async def save_item(self, item: Item, *, claim: Claim | None = None) -> Item:
        """Insert or replace the item ``(run_id, key)``, update the run's progress and
        write an ``item`` event. Raises `LeaseLost` for a stale *claim*, `RunNotFound`."""
        output = codec.item_output_json(item)
        error = _json_or_none(codec.error_to_json(item.error), "item error")
        event_data = codec.dumps(_item_to_json(item), "item")
        new_status = item.status.value

        def op(conn: sqlite3.Connection, now: int) -> Item:
            row = conn.execute(
                "SELECT owner, fence, status, job, progress FROM runs WHERE id = ?",
                (item.run_id,),
            ).fetchone()
            if row is None:
                raise RunNotFound(item.run_id)
            owner, fence, run_status, job, progress = row
            if claim is not None and (
                claim.run_id != item.run_id or owner != claim.owner or fence != claim.fence
            ):
                raise LeaseLost(item.run_id, claim.owner, claim.fence)
            old = conn.execute(
                "SELECT status FROM items WHERE run_id = ? AND key = ?", (item.run_id, item.key)
            ).fetchone()
            conn.execute(
                f"INSERT INTO items ({_ITEM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, key) DO UPDATE SET phase = excluded.phase,"
                " status = excluded.status, started_at = excluded.started_at,"
                " ended_at = excluded.ended_at, attempts = excluded.attempts,"
                " error = excluded.error, output = excluded.output",
                (item.run_id, item.key, item.phase, new_status, _us_or_none(item.started_at),
                 _us_or_none(item.ended_at), item.attempts, error, output),
            )  # fmt: skip
            counts = _progress_from_json(progress)
            counts = counts.moved(None if old is None else _STATUS[old[0]], item.status)
            conn.execute(
                "UPDATE runs SET progress = ? WHERE id = ?",
                (_progress_json(counts), item.run_id),
            )
            conn.execute(
                "INSERT INTO events (run_id, job, kind, at, status, data)"
                " VALUES (?, ?, 'item', ?, ?, ?)",
                (item.run_id, job, now, run_status, event_data),
            )
            return item

        return await self._write(None, op)

    async def items(self, run_id: str, status: Status | None = None) -> tuple[Item, ...]:
        """The run's items in the order they were first saved."""

        def read(conn: sqlite3.Connection) -> tuple[Item, ...]:
            if status is None:
                rows = conn.execute(
                    f"SELECT {_ITEM_COLUMNS} FROM items WHERE run_id = ? ORDER BY rowid",
                    (run_id,),
                )
            else:
                rows = conn.execute(
                    f"SELECT {_ITEM_COLUMNS} FROM items WHERE run_id = ? AND status = ?"
                    " ORDER BY rowid",
                    (run_id, Status(status).value),
                )
            return tuple(_item_from_row(row) for row in rows)

        return await self._read(read)

    # -- logs ------------------------------------------------------------------

    async def append_logs(
        self, lines: Sequence[LogLine], *, claim: Claim | None = None
    ) -> tuple[LogLine, ...]:
        """Append *lines* in one transaction, numbering each run's lines on from its last.

        Raises `LeaseLost` for a stale *claim* (or a line of another run than the
        claim's), `RunNotFound`, `NotSerializable` for non-JSON fields.
        """
        if not lines:
            return ()
        encoded = [
            (line, None if not line.fields else codec.log_fields_json(line)) for line in lines
        ]

        def op(conn: sqlite3.Connection, now: int) -> tuple[LogLine, ...]:
            last_seq: dict[str, int] = {}
            for line, _ in encoded:
                if line.run_id in last_seq:
                    continue
                row = conn.execute(
                    "SELECT owner, fence FROM runs WHERE id = ?", (line.run_id,)
                ).fetchone()
                if row is None:
                    raise RunNotFound(line.run_id)
                owner, fence = row
                if claim is not None and (
                    claim.run_id != line.run_id or owner != claim.owner or fence != claim.fence
                ):
                    raise LeaseLost(line.run_id, claim.owner, claim.fence)
                (last,) = conn.execute(
                    "SELECT coalesce(max(seq), 0) FROM logs WHERE run_id = ?", (line.run_id,)
                ).fetchone()
                last_seq[line.run_id] = last
            stored: list[LogLine] = []
            rows = []
            for line, fields in encoded:
                seq = last_seq[line.run_id] + 1
                last_seq[line.run_id] = seq
                out = LogLine(
                    run_id=line.run_id, seq=seq, at=line.at, stream=line.stream,
                    level=line.level, message=line.message, item=line.item,
                    attempt=line.attempt, fields=line.fields,
                )  # fmt: skip
                stored.append(out)
                rows.append((line.run_id, seq, _us(out.at), out.stream, out.level, out.message,
                             out.item, out.attempt, fields))  # fmt: skip
            # No event per line (as MemoryStore): followers page the log by cursor.
            (lid,) = conn.execute("SELECT coalesce(max(lid), 0) FROM logs").fetchone()
            conn.executemany(
                f"INSERT INTO logs ({_LOG_COLUMNS}, lid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*row, lid + n) for n, row in enumerate(rows, 1)],
            )
            return tuple(stored)

        return await self._write(None, op)

    async def logs(self, query: LogQuery) -> LogPage:
        """A page of the run's log lines after ``query.cursor``, in order."""
        after = 0
        if query.cursor is not None:
            (after,) = codec.decode_cursor(query.cursor, 1)
            after = int(after)
        if query.limit < 1:
            raise InvalidPolicy("limit", query.limit, "a positive number of lines")
        limit = query.limit
        where = ["run_id = ?", "seq > ?"]
        args: list[Any] = [query.run_id, after]
        for column, value in (("stream", query.stream), ("item", query.item),
                              ("level", query.level)):  # fmt: skip
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT {_LOG_COLUMNS} FROM logs WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?"
        args.append(limit + 1)

        def read(conn: sqlite3.Connection) -> LogPage:
            rows = conn.execute(sql, args).fetchall()
            lines = tuple(_log_from_row(row) for row in rows[:limit])
            cursor = None
            if len(rows) > limit and lines:
                cursor = codec.encode_cursor(lines[-1].seq)
            return LogPage(lines=lines, next_cursor=cursor)

        return await self._read(read)

    async def search_logs(
        self, run_id: str, text: str, *, limit: int = 1000
    ) -> tuple[LogLine, ...]:
        """Lines of the run's log whose message contains *text* (case-insensitive), in order.

        Needles of 3 characters or more go through the FTS5 trigram index; shorter
        ones scan the run's lines.
        """
        needle = text.lower()

        def read(conn: sqlite3.Connection) -> tuple[LogLine, ...]:
            if not needle:
                rows: Iterator[Sequence[Any]] = conn.execute(
                    f"SELECT {_LOG_COLUMNS} FROM logs WHERE run_id = ? ORDER BY seq LIMIT ?",
                    (run_id, limit),
                )
                return tuple(_log_from_row(row) for row in rows)
            # A run's lines get increasing lids as they get increasing seqs, so
            # its first and last lines bound its stretch of the full-text index.
            first = conn.execute(
                "SELECT lid FROM logs WHERE run_id = ? ORDER BY seq LIMIT 1", (run_id,)
            ).fetchone()
            if first is None:
                return ()
            if len(text) >= 3:
                (last,) = conn.execute(
                    "SELECT lid FROM logs WHERE run_id = ? ORDER BY seq DESC LIMIT 1", (run_id,)
                ).fetchone()
                # The trigram match may be looser than Python's lower(), so every hit
                # is checked again below.
                rows = conn.execute(
                    f"SELECT {', '.join('l.' + c.strip() for c in _LOG_COLUMNS.split(','))}"
                    " FROM logs_fts f JOIN logs l INDEXED BY logs_lid ON l.lid = f.rowid"
                    " WHERE logs_fts MATCH ? AND f.rowid BETWEEN ? AND ? AND l.run_id = ?"
                    " ORDER BY l.seq",
                    ('"' + text.replace('"', '""') + '"', first[0], last, run_id),
                )
            else:
                rows = conn.execute(
                    f"SELECT {_LOG_COLUMNS} FROM logs WHERE run_id = ?"
                    " AND rl_icontains(message, ?) ORDER BY seq",
                    (run_id, needle),
                )
            out = []
            for row in rows:
                if needle in row[5].lower():
                    out.append(_log_from_row(row))
                    if len(out) >= limit:
                        break
            return tuple(out)

        return await self._read(read)

    # -- signals and events ------------------------------------------------------

    async def send_signal(self, run_id: str, name: str, payload: Any = None) -> None:
        """Store signal *name* with JSON *payload* for the run; raises `RunNotFound`."""
        data = codec.dumps(payload, f"signal {name!r} payload")

        def op(conn: sqlite3.Connection, now: int) -> None:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise RunNotFound(run_id)
            conn.execute(
                "INSERT INTO signals (run_id, name, payload, at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (run_id, name) DO UPDATE SET payload = excluded.payload,"
                " at = excluded.at",
                (run_id, name, data, now),
            )

        await self._write(None, op)

    async def signals(self, run_id: str) -> Mapping[str, Any]:
        """The run's delivered signals, by name."""

        def read(conn: sqlite3.Connection) -> Mapping[str, Any]:
            rows = conn.execute(
                "SELECT name, payload FROM signals WHERE run_id = ? ORDER BY name", (run_id,)
            )
            return {name: codec.loads(payload) for name, payload in rows}

        return await self._read(read)

    async def events(
        self, *, after: int | None = None, run_id: str | None = None, limit: int = 1000
    ) -> tuple[Event, ...]:
        """Stored events with ``seq`` greater than *after*, in order."""
        columns = "seq, run_id, job, kind, at, status, from_state, to_state, reason, data"

        def read(conn: sqlite3.Connection) -> tuple[Event, ...]:
            if run_id is None:
                rows = conn.execute(
                    f"SELECT {columns} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after or 0, limit),
                )
            else:
                rows = conn.execute(
                    f"SELECT {columns} FROM events WHERE run_id = ? AND seq > ?"
                    " ORDER BY seq LIMIT ?",
                    (run_id, after or 0, limit),
                )
            return tuple(_event_from_row(row) for row in rows)

        return await self._read(read)

    async def wait_changed(self, timeout: float) -> None:
        """Return when this process wrote, another process committed, or *timeout* passed.

        Writes of this store wake waiters at once; commits of other processes are
        seen by polling SQLite's ``data_version`` every 50 ms.
        """
        await self._ensure_open()
        with anyio.move_on_after(timeout):
            while True:
                changed = self._changed
                assert changed is not None
                with anyio.move_on_after(0.05):
                    await changed.wait()
                    return
                if await anyio.to_thread.run_sync(self._poll_data_version):
                    return

    def _poll_data_version(self) -> bool:
        with self._watch_lock:
            if self._closed:
                return True
            try:
                if self._watch is None:
                    self._watch = self._connect()
                (version,) = self._watch.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite error on {self.path!r}: {exc}") from exc
            changed = self._data_version is not None and version != self._data_version
            self._data_version = version
            return changed

    # -- retention ---------------------------------------------------------------

    async def purge(self, *, older_than: datetime, batch: int = 1000) -> int:
        """Delete terminal runs that ended before *older_than* with everything of theirs,
        *batch* runs per transaction; never an active run. Returns how many went."""
        cutoff = _us(older_than)
        total = 0

        def op(conn: sqlite3.Connection, now: int) -> int:
            ids = [
                (run_id,)
                for (run_id,) in conn.execute(
                    "SELECT id FROM runs WHERE ended_at IS NOT NULL AND ended_at < ?"
                    " AND status IN ('SUCCEEDED', 'FAILED', 'CANCELLED', 'SKIPPED') LIMIT ?",
                    (cutoff, batch),
                )
            ]
            for table in ("run_labels", "items", "logs", "signals", "events"):
                conn.executemany(f"DELETE FROM {table} WHERE run_id = ?", ids)
            conn.executemany("DELETE FROM runs WHERE id = ?", ids)
            return len(ids)

        while True:
            deleted = await self._write(None, op)
            total += deleted
            if deleted < batch:
                return total


def _queued(
    conn: sqlite3.Connection, job: str, chunk: int
) -> Iterator[tuple[int, int, str, Sequence[Any]]]:
    """QUEUED runs of *job* in claim order (priority desc, created_at, id), fetched
    *chunk* rows at a time so that writes never interleave with an open cursor."""
    after: tuple[int, int, str] | None = None
    chunk = max(chunk, 16)
    while True:
        if after is None:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS}, fence FROM runs INDEXED BY runs_queue"
                " WHERE job = ? AND status = 'QUEUED'"
                " ORDER BY priority DESC, created_at, id LIMIT ?",
                (job, chunk),
            ).fetchall()
        else:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS}, fence FROM runs INDEXED BY runs_queue"
                " WHERE job = ? AND status = 'QUEUED'"
                " AND (-priority, created_at, id) > (?, ?, ?)"
                " ORDER BY priority DESC, created_at, id LIMIT ?",
                (job, *after, chunk),
            ).fetchall()
        for row in rows:
            yield (-row[23], row[9], row[0], row)
        if len(rows) < chunk:
            return
        last = rows[-1]
        after = (-last[23], last[9], last[0])


def _run_filters(query: RunQuery, alias: str) -> tuple[str, list[Any]]:
    """The WHERE clause (with a leading space, or empty) of all of *query*'s criteria
    but its cursor and limit (for counts)."""
    where, args = _criteria(query, alias)
    if query.status:
        statuses = sorted(s.value for s in query.status)
        where.append(f"{alias}.status IN ({', '.join('?' * len(statuses))})")
        args.extend(statuses)
    for key, value in query.labels.items():
        where.append(
            f"EXISTS (SELECT 1 FROM run_labels x WHERE x.run_id = {alias}.id"
            " AND x.key = ? AND x.value = ?)"
        )
        args.extend((key, value))
    return (" WHERE " + " AND ".join(where)) if where else "", args


def _criteria(query: RunQuery, alias: str) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if query.job is not None:
        where.append(f"{alias}.job = ?")
        args.append(query.job)
    if query.trigger:
        triggers = sorted(t.value for t in query.trigger)
        where.append(f"{alias}.trigger IN ({', '.join('?' * len(triggers))})")
        args.extend(triggers)
    column = _TIME_COLUMN[query.field]
    if query.since is not None:
        where.append(f"{alias}.{column} >= ?")
        args.append(_us(query.since))
    if query.until is not None:
        where.append(f"{alias}.{column} < ?")
        args.append(_us(query.until))
    if query.workflow_run_id is not None:
        where.append(f"{alias}.workflow_run_id = ?")
        args.append(query.workflow_run_id)
    if query.parent_id is not None:
        where.append(f"{alias}.parent_id = ?")
        args.append(query.parent_id)
    if query.text:
        needle = query.text.lower()
        where.append(
            f"(rl_icontains({alias}.job, ?) OR rl_icontains({alias}.error_message, ?)"
            f" OR EXISTS (SELECT 1 FROM run_labels t WHERE t.run_id = {alias}.id"
            " AND rl_icontains(t.value, ?)))"
        )
        args.extend((needle, needle, needle))
    return where, args


def _select_runs(
    query: RunQuery, status: str | None, after: tuple[int, str] | None, limit: int
) -> tuple[str, list[Any]]:
    """One keyset page of runs in one status (or any), newest first.

    With labels, the first label drives the query through ``run_labels`` (whose
    ``(key, value, status, created_at, run_id)`` index yields rows in page order);
    otherwise ``runs`` is read through its status or creation index.
    """
    where, args = _criteria(query, "r")
    labels = list(query.labels.items())
    if labels:
        key, value = labels[0]
        head = ["l.key = ?", "l.value = ?"]
        head_args: list[Any] = [key, value]
        if status is not None:
            head.append("l.status = ?")
            head_args.append(status)
        if after is not None:
            head.append("(l.created_at, l.run_id) < (?, ?)")
            head_args.extend(after)
        for k, v in labels[1:]:
            where.append(
                "EXISTS (SELECT 1 FROM run_labels x WHERE x.run_id = r.id"
                " AND x.key = ? AND x.value = ?)"
            )
            args.extend((k, v))
        index = "run_labels_kvs" if status is not None else "run_labels_kv"
        sql = (
            f"SELECT {_R_COLUMNS} FROM run_labels l INDEXED BY {index}"
            " JOIN runs r ON r.id = l.run_id"
            f" WHERE {' AND '.join(head + where)}"
            " ORDER BY l.created_at DESC, l.run_id DESC LIMIT ?"
        )
        return sql, [*head_args, *args, limit]
    if status is not None:
        where.append("r.status = ?")
        args.append(status)
    if after is not None:
        where.append("(r.created_at, r.id) < (?, ?)")
        args.extend(after)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    sql = f"SELECT {_R_COLUMNS} FROM runs r{clause} ORDER BY r.created_at DESC, r.id DESC LIMIT ?"
    return sql, [*args, limit]
