"""The text of the store's statements, built from the column lists of ``rows.py``.

Only statement text lives here; the values are always bound as parameters. The
few statements whose shape depends on a query (`select_runs`, `run_filters`,
`log_page`) are built by functions from the query's criteria.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Final

from runlife._core.codec import to_us
from runlife._core.queries import LogQuery, RunQuery
from runlife.stores._sqlite.rows import (
    CANCEL_COLUMNS,
    CLAIMABLE_COLUMNS,
    EVENT_COLUMNS,
    HEAD_COLUMNS,
    HOLD_COLUMNS,
    ITEM_COLUMNS,
    ITEM_RUN_COLUMNS,
    JOB_COLUMNS,
    LABEL_COLUMNS,
    LOG_STORED_COLUMNS,
    MOVE_COLUMNS,
    RUN_COLUMNS,
    RUN_INSERT_COLUMNS,
    TRANSITION_EVENT_COLUMNS,
)

NOW: Final = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) * 1000"
"""SQLite's clock in µs since the epoch. Its 'now' has millisecond resolution;
rounding to it keeps the value exact."""


def _names(columns: Sequence[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + c for c in columns)


def _marks(n: int) -> str:
    return ", ".join("?" * n)


RUNS: Final = _names(RUN_COLUMNS)
R_RUNS: Final = _names(RUN_COLUMNS, "r")

# -- runs --------------------------------------------------------------------------

GET_RUN: Final = f"SELECT {RUNS} FROM runs WHERE id = ?"


def get_runs(n: int) -> str:
    """The select of *n* runs by id."""
    return _GET_RUNS.get(n) or _GET_RUNS.setdefault(
        n, f"SELECT {RUNS} FROM runs WHERE id IN ({_marks(n)})"
    )


_GET_RUNS: dict[int, str] = {}
GET_HEAD: Final = f"SELECT {_names(HEAD_COLUMNS)} FROM runs WHERE id = ?"
RUN_BY_KEY: Final = f"SELECT {RUNS} FROM runs WHERE job = ? AND idempotency_key = ?"
RUN_BY_SLOT: Final = (
    f"SELECT {RUNS} FROM runs WHERE job = ? AND scheduled_for = ? AND trigger = 'SCHEDULED'"
)
INSERT_RUN: Final = (
    f"INSERT INTO runs ({_names(RUN_INSERT_COLUMNS)})"
    f" VALUES ({_marks(len(RUN_INSERT_COLUMNS))}) ON CONFLICT (id) DO NOTHING"
)
# A successor appends its new transitions to the stored history JSON instead of
# writing it again: the parameter is the tail of the array (the new objects and
# the closing bracket), or NULL for none. SQLite updates every index covering a
# column named in SET, changed or not, so only the columns a move changes are named.
_APPEND_HISTORY: Final = (
    "history = coalesce(substr(history, 1, length(history) - 1)"
    " || iif(length(history) > 2, ',', '') || ?, history)"
)
_SET_MOVE: Final = f"{_APPEND_HISTORY}, " + ", ".join(f"{c} = ?" for c in MOVE_COLUMNS)
MOVE_RUN: Final = f"UPDATE runs SET {_SET_MOVE} WHERE id = ?"
"""A successor: the history tail, the values of `MOVE_COLUMNS`, the id."""
CLAIM_RUN: Final = f"UPDATE runs SET {_SET_MOVE}, fence = ? WHERE id = ?"
"""A claim: as `MOVE_RUN`, and the new fence before the id."""


@functools.cache
def move_guarded(*, held: bool, claim: bool, lapsed: bool) -> str:
    """A successor written only if the stored run is the one it was checked
    against: as `MOVE_RUN`, but the hold (owner and lease) is kept as stored if
    *held* (it is then not bound), and the id is followed by the version and
    creation it must have, the *claim*'s owner and fence it must be held under,
    and (*lapsed*) the store time its lease must have lapsed by. Returns the run's
    ``progress`` when it was written (no row: a check failed, nothing changed)."""
    columns = MOVE_COLUMNS[:-2] if held else MOVE_COLUMNS
    sets = ", ".join([_APPEND_HISTORY, *(f"{c} = ?" for c in columns)])
    where = "id = ? AND version = ? AND created_at = ?"
    if claim:
        where += " AND owner = ? AND fence = ?"
    if lapsed:
        where += " AND (lease_expires_at IS NULL OR lease_expires_at <= ?)"
    return f"UPDATE runs SET {sets} WHERE {where} RETURNING progress"


SET_LABELS: Final = "UPDATE runs SET labels = ?, priority = ? WHERE id = ?"
SET_PROGRESS: Final = "UPDATE runs SET progress = ? WHERE id = ?"
RUN_HOLD: Final = f"SELECT {_names(HOLD_COLUMNS)} FROM runs WHERE id = ?"
ITEM_RUN: Final = f"SELECT {_names(ITEM_RUN_COLUMNS)} FROM runs WHERE id = ?"
RUN_EXISTS: Final = "SELECT 1 FROM runs WHERE id = ?"

INSERT_LABEL: Final = (
    f"INSERT INTO run_labels ({_names(LABEL_COLUMNS)}) VALUES ({_marks(len(LABEL_COLUMNS))})"
)
DELETE_LABELS: Final = "DELETE FROM run_labels WHERE run_id = ?"
LABEL_STATUS: Final = "UPDATE run_labels SET status = ? WHERE run_id = ?"

ADVANCE_SCHEDULE: Final = (
    "INSERT INTO jobs (name, spec, per_label, last_scheduled_for, updated_at)"
    " VALUES (?1, '{}', '{}', ?2, ?3) ON CONFLICT (name) DO UPDATE SET"
    " last_scheduled_for = max(coalesce(last_scheduled_for, ?2), ?2)"
)
"""A SCHEDULED run's job (name, slot, now): its latest slot, never moved back."""

_CLAIMABLE: Final = _names(CLAIMABLE_COLUMNS)
QUEUED_FIRST: Final = (
    f"SELECT {_CLAIMABLE} FROM runs INDEXED BY runs_queue"
    " WHERE job = ? AND status = 'QUEUED' ORDER BY priority DESC, created_at, id LIMIT ?"
)
QUEUED_AFTER: Final = (
    f"SELECT {_CLAIMABLE} FROM runs INDEXED BY runs_queue"
    " WHERE job = ? AND status = 'QUEUED' AND (-priority, created_at, id) > (?, ?, ?)"
    " ORDER BY priority DESC, created_at, id LIMIT ?"
)
"""QUEUED runs of a job in claim order, by chunks (`CLAIMABLE_COLUMNS`)."""
CLAIMABLE_ONE: Final = f"SELECT {_CLAIMABLE} FROM runs WHERE id = ?"

HEARTBEAT: Final = (
    "UPDATE runs SET lease_expires_at = ? WHERE id = ? AND owner = ? AND fence = ?"
    " AND status IN ('RUNNING', 'WAITING')"
)
ABANDONED: Final = (
    f"SELECT {RUNS} FROM runs WHERE status IN ('RUNNING', 'WAITING')"
    f" AND (lease_expires_at IS NULL OR lease_expires_at <= {NOW})"
    " ORDER BY lease_expires_at, id LIMIT ?"
)


def due(n: int) -> str:
    """Runs in *n* statuses whose due time has come by store time."""
    return (
        f"SELECT {RUNS} FROM runs WHERE status IN ({_marks(n)})"
        f" AND due_at IS NOT NULL AND due_at <= {NOW} ORDER BY due_at, id LIMIT ?"
    )


# -- jobs --------------------------------------------------------------------------

JOBS: Final = _names(JOB_COLUMNS)
SAVE_JOB: Final = (
    f"INSERT INTO jobs ({JOBS}) VALUES ({_marks(len(JOB_COLUMNS))})"
    " ON CONFLICT (name) DO UPDATE SET spec = excluded.spec,"
    " max_concurrency = excluded.max_concurrency,"
    " per_label = excluded.per_label, updated_at = excluded.updated_at"
)
GET_JOB: Final = f"SELECT {JOBS} FROM jobs WHERE name = ?"
LIST_JOBS: Final = f"SELECT {JOBS} FROM jobs ORDER BY name"
JOB_NAMES: Final = "SELECT name FROM jobs ORDER BY name"
JOB_SPEC: Final = "SELECT spec FROM jobs WHERE name = ?"
SET_PAUSED: Final = "UPDATE jobs SET paused = ?, updated_at = ? WHERE name = ?"


def jobs_named(n: int) -> str:
    """The records of *n* named jobs."""
    return f"SELECT {JOBS} FROM jobs WHERE name IN ({_marks(n)})"


def live_runs(n: int) -> str:
    """The job and labels of every live run of *n* jobs."""
    return (
        "SELECT job, labels FROM runs INDEXED BY runs_live"
        f" WHERE job IN ({_marks(n)}) AND status IN ('RUNNING', 'WAITING')"
    )


# -- items, logs, signals, events --------------------------------------------------

ITEMS: Final = _names(ITEM_COLUMNS)
SAVE_ITEM: Final = (
    f"INSERT INTO items ({ITEMS}) VALUES ({_marks(len(ITEM_COLUMNS))})"
    " ON CONFLICT (run_id, key) DO UPDATE SET phase = excluded.phase,"
    " status = excluded.status, started_at = excluded.started_at,"
    " ended_at = excluded.ended_at, attempts = excluded.attempts,"
    " error = excluded.error, output = excluded.output"
)
ITEM_STATUS: Final = "SELECT status FROM items WHERE run_id = ? AND key = ?"
ITEMS_OF: Final = f"SELECT {ITEMS} FROM items WHERE run_id = ? ORDER BY rowid"
ITEM_KEYS_AT_ONCE: Final = 500
"""How many keys one `item_statuses` statement looks up."""


def item_statuses(n: int) -> str:
    """The stored ``key, status`` of *n* keys of one run (its id first)."""
    return f"SELECT key, status FROM items WHERE run_id = ? AND key IN ({_marks(n)})"


def select_items(*, status: bool, phase: bool, after: bool, limit: bool) -> str:
    """A run's items (rows of `ITEM_COLUMNS`) in first-saved order; its id comes
    first, then the status, phase, ``(run id, key)`` of the item to continue
    after, and the limit, for each that is set."""
    where = ["run_id = ?"]
    if status:
        where.append("status = ?")
    if phase:
        where.append("phase = ?")
    if after:
        # No such item: the comparison with NULL selects nothing.
        where.append("rowid > (SELECT rowid FROM items WHERE run_id = ? AND key = ?)")
    text = f"SELECT {ITEMS} FROM items WHERE {' AND '.join(where)} ORDER BY rowid"
    return f"{text} LIMIT ?" if limit else text


LAST_SEQ: Final = "SELECT coalesce(max(seq), 0) FROM logs WHERE run_id = ?"
INSERT_LOG: Final = (
    f"INSERT INTO logs ({_names(LOG_STORED_COLUMNS)}) VALUES ({_marks(len(LOG_STORED_COLUMNS))})"
)
LAST_MID: Final = "SELECT coalesce(max(mid), 0) FROM log_messages"
INSERT_MESSAGE: Final = "INSERT INTO log_messages (mid, run_id, message) VALUES (?, ?, ?)"
INDEX_MESSAGES: Final = (
    "INSERT INTO log_messages_fts (rowid, message)"
    " SELECT mid, message FROM log_messages WHERE mid > ? AND mid <= ?"
)
"""The messages of mids in a range (those one append wrote) into the full-text index,
in one statement: no value goes through Python again."""
MESSAGES_IN: Final = (
    "SELECT mid, run_id, message FROM log_messages WHERE mid IN (SELECT value FROM json_each(?))"
)
"""The messages of the mids of a JSON array."""

# A line reads its message from log_messages: the line's table comes first (CROSS
# JOIN keeps that order), a page being a range of it.
_LINE: Final = "l.run_id, l.seq, l.at, l.stream, l.level, m.message, l.item, l.attempt, l.fields"
_LINES: Final = "logs l CROSS JOIN log_messages m ON m.mid = l.mid"
LOGS_OF: Final = f"SELECT {_LINE} FROM {_LINES} WHERE l.run_id = ? ORDER BY l.seq LIMIT ?"
LOGS_WITH: Final = (
    f"SELECT {_LINE} FROM {_LINES.replace('logs l', 'logs l INDEXED BY logs_mid')}"
    " WHERE l.run_id = ? AND l.mid IN (SELECT value FROM json_each(?)) ORDER BY l.seq LIMIT ?"
)
"""A run's lines of the mids of a JSON array, in order: through the index of its
lines by message (a search finds few messages, often of few lines)."""
MID_RANGE: Final = (
    "SELECT (SELECT min(mid) FROM logs WHERE run_id = ?),"
    " (SELECT max(mid) FROM logs WHERE run_id = ?)"
)
"""The lowest and highest mid of a run's lines (two lookups in the index: a min and a
max in one select would scan the run's stretch of it)."""
# A run's messages get increasing mids, so the lowest and highest of its lines bound
# its stretch of the full-text index.
SEARCH_FTS: Final = (
    "SELECT m.mid, m.message FROM log_messages_fts f"
    " CROSS JOIN log_messages m ON m.mid = f.rowid"
    " WHERE log_messages_fts MATCH ? AND f.rowid BETWEEN ? AND ? AND m.run_id = ?"
)
MESSAGES_OF: Final = (
    "SELECT mid, message FROM log_messages WHERE mid IN (SELECT mid FROM logs WHERE run_id = ?)"
)
"""Every message of a run's log (the needles too short for the index)."""


def log_page(query: LogQuery) -> tuple[str, list[Any]]:
    """The statement (rows of `rows.PAGE_COLUMNS`) and parameters of a page of
    *query*, but its run, position and limit (``run_id``, the ``seq`` to read
    after, ``limit + 1`` come first and last)."""
    where = ["l.run_id = ?", "l.seq > ?"]
    args: list[Any] = []
    for column, value in (("stream", query.stream), ("item", query.item),
                          ("level", query.level)):  # fmt: skip
        if value is not None:
            where.append(f"l.{column} = ?")
            args.append(value)
    page = _LINE.removeprefix("l.run_id, ")
    text = f"SELECT {page} FROM {_LINES} WHERE {' AND '.join(where)}"
    return f"{text} ORDER BY l.seq LIMIT ?", args


SAVE_SIGNAL: Final = (
    "INSERT INTO signals (run_id, name, payload, at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (run_id, name) DO UPDATE SET payload = excluded.payload, at = excluded.at"
)
SIGNALS_OF: Final = "SELECT name, payload FROM signals WHERE run_id = ? ORDER BY name"

RUN_STATUS: Final = "SELECT status FROM runs WHERE id = ?"
_CANCELS: Final = _names(CANCEL_COLUMNS)
SAVE_CANCEL: Final = (
    f"INSERT INTO cancel_requests ({_CANCELS}) VALUES ({_marks(len(CANCEL_COLUMNS))})"
    " ON CONFLICT (run_id) DO NOTHING"
)
"""A run's cancel request; its first one stands."""
CANCEL_OF: Final = f"SELECT {_CANCELS} FROM cancel_requests WHERE run_id = ?"
CANCELS_IN: Final = (
    f"SELECT {_CANCELS} FROM cancel_requests WHERE run_id IN (SELECT value FROM json_each(?))"
)
"""The cancel requests of the run ids of a JSON array."""

EVENTS: Final = f"SELECT {_names(EVENT_COLUMNS)} FROM events"
EVENTS_AFTER: Final = f"{EVENTS} WHERE seq > ? ORDER BY seq LIMIT ?"
EVENTS_OF_RUN: Final = f"{EVENTS} WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?"
INSERT_TRANSITION_EVENT: Final = (
    f"INSERT INTO events ({_names(TRANSITION_EVENT_COLUMNS)})"
    f" VALUES ({_marks(len(TRANSITION_EVENT_COLUMNS))})"
)
INSERT_LOG_EVENT: Final = (
    "INSERT INTO events (run_id, job, kind, at, status, data) VALUES (?, ?, 'log', ?, ?, ?)"
)
INSERT_ITEM_EVENT: Final = (
    "INSERT INTO events (run_id, job, kind, at, status, data) VALUES (?, ?, 'item', ?, ?, ?)"
)

# -- retention ---------------------------------------------------------------------


def purgeable(n: int) -> str:
    """Runs in *n* (terminal) statuses that ended before a moment."""
    return (
        "SELECT id FROM runs WHERE ended_at IS NOT NULL AND ended_at < ?"
        f" AND status IN ({_marks(n)}) LIMIT ?"
    )


PURGE_OWNED: Final = (
    # A run's messages first: its lines name them.
    "DELETE FROM log_messages WHERE mid IN (SELECT mid FROM logs WHERE run_id = ?)",
    *(
        f"DELETE FROM {table} WHERE run_id = ?"
        for table in ("run_labels", "items", "logs", "signals", "events", "cancel_requests")
    ),
)
PURGE_RUN: Final = "DELETE FROM runs WHERE id = ?"

# -- queries of runs ---------------------------------------------------------------

_TIME_COLUMN: Final = {"created": "created_at", "started": "started_at", "ended": "ended_at"}


def _criteria(query: RunQuery, alias: str) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if query.job is not None:
        where.append(f"{alias}.job = ?")
        args.append(query.job)
    if query.trigger:
        triggers = sorted(t.value for t in query.trigger)
        where.append(f"{alias}.trigger IN ({_marks(len(triggers))})")
        args.extend(triggers)
    column = _TIME_COLUMN[query.field]
    if query.since is not None:
        where.append(f"{alias}.{column} >= ?")
        args.append(to_us(query.since))
    if query.until is not None:
        where.append(f"{alias}.{column} < ?")
        args.append(to_us(query.until))
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


def count_runs(query: RunQuery) -> tuple[str, list[Any]]:
    """How many runs match all of *query*'s criteria (but its cursor and limit), by status."""
    where, args = _criteria(query, "r")
    if query.status:
        statuses = sorted(s.value for s in query.status)
        where.append(f"r.status IN ({_marks(len(statuses))})")
        args.extend(statuses)
    for key, value in query.labels.items():
        where.append(
            "EXISTS (SELECT 1 FROM run_labels x WHERE x.run_id = r.id"
            " AND x.key = ? AND x.value = ?)"
        )
        args.extend((key, value))
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    return f"SELECT r.status, count(*) FROM runs r{clause} GROUP BY r.status", args


def select_runs(
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
        text = (
            f"SELECT {R_RUNS} FROM run_labels l INDEXED BY {index}"
            " JOIN runs r ON r.id = l.run_id"
            f" WHERE {' AND '.join(head + where)}"
            " ORDER BY l.created_at DESC, l.run_id DESC LIMIT ?"
        )
        return text, [*head_args, *args, limit]
    if status is not None:
        where.append("r.status = ?")
        args.append(status)
    if after is not None:
        where.append("(r.created_at, r.id) < (?, ?)")
        args.extend(after)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    text = f"SELECT {R_RUNS} FROM runs r{clause} ORDER BY r.created_at DESC, r.id DESC LIMIT ?"
    return text, [*args, limit]
