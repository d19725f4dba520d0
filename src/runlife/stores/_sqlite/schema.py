"""The tables of a runlife SQLite file, their migrations, and the checks that
keep runlife away from files it must not touch.

``runlife_schema`` records each applied migration (its version and when). On
opening, before anything is written, `check` reads the file: an empty file gets
the schema, an older runlife schema is migrated forward by `migrate`, and
anything else (not SQLite, another application's tables, a newer runlife) is
refused with `SchemaMismatch`, the file left as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Final

from runlife.exceptions import SchemaMismatch
from runlife.stores._sqlite import sql
from runlife.stores._sqlite.errors import is_busy

__all__ = ("APPLICATION_ID", "MIGRATIONS", "RUNLIFE_TABLES", "SCHEMA_VERSION", "check", "migrate")

SCHEMA_VERSION = 4
"""The schema version this runlife writes; a database at a higher one is refused."""

APPLICATION_ID: Final = 0x726C6966
"""``PRAGMA application_id`` of a runlife file ("rlif"), for file(1) and tools."""

MIGRATIONS: Mapping[int, Sequence[str]] = {
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
    2: (
        # A run's cancel request, for the process that holds it (one per run).
        """CREATE TABLE cancel_requests (
            run_id TEXT PRIMARY KEY,
            requested_by TEXT NOT NULL,
            reason TEXT,
            at INTEGER NOT NULL
        ) WITHOUT ROWID""",
    ),
    # The store puts a batch of lines into the full-text index itself, with one
    # statement: a trigger that indexes them one at a time costs five times more.
    3: ("DROP TRIGGER logs_ai",),
    # Each distinct message of a run's log is stored once, in log_messages, and the
    # full-text index holds those: a log's lines repeat their messages (the values
    # are in the fields), and indexing each line's copy cost more than storing the
    # line. A line names its message by ``mid``; ``lid`` and its index go.
    4: (
        """CREATE TABLE log_messages (
            mid INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            message TEXT NOT NULL
        )""",
        "CREATE INDEX log_messages_moving ON log_messages (run_id, message)",
        "INSERT INTO log_messages (run_id, message)"
        " SELECT run_id, message FROM logs GROUP BY run_id, message ORDER BY min(lid)",
        """CREATE TABLE logs_by_message (
            run_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            at INTEGER NOT NULL,
            stream TEXT NOT NULL,
            level TEXT NOT NULL,
            mid INTEGER NOT NULL,
            item TEXT,
            attempt INTEGER,
            fields TEXT,
            PRIMARY KEY (run_id, seq)
        ) WITHOUT ROWID""",
        "INSERT INTO logs_by_message"
        " SELECT l.run_id, l.seq, l.at, l.stream, l.level, m.mid, l.item, l.attempt, l.fields"
        " FROM logs l JOIN log_messages m ON m.run_id = l.run_id AND m.message = l.message",
        "DROP TABLE logs",
        "DROP TABLE logs_fts",
        "ALTER TABLE logs_by_message RENAME TO logs",
        "DROP INDEX log_messages_moving",
        # A run's messages (for search and purge), and its lines of one message.
        "CREATE INDEX logs_mid ON logs (run_id, mid)",
        "CREATE VIRTUAL TABLE log_messages_fts USING fts5("
        "message, content='log_messages', content_rowid='mid', tokenize='trigram')",
        "INSERT INTO log_messages_fts (log_messages_fts) VALUES ('rebuild')",
        """CREATE TRIGGER log_messages_ad AFTER DELETE ON log_messages BEGIN
            INSERT INTO log_messages_fts (log_messages_fts, rowid, message)
            VALUES ('delete', old.mid, old.message);
        END""",
    ),
}
"""The statements of each schema version, applied in order on top of the previous one."""

RUNLIFE_TABLES: Final = frozenset(
    {
        "runlife_schema",
        "jobs",
        "runs",
        "run_labels",
        "items",
        "logs",
        "log_messages",
        "signals",
        "events",
        "cancel_requests",
    }
)


def check(conn: sqlite3.Connection, path: str) -> int:
    """The runlife schema version of the file (0: empty); refuses files runlife
    must not touch with `SchemaMismatch`. Reads only.

    A busy database raises the driver's error (the caller waits it out).
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
                f"{path!r} is a SQLite database of another application "
                f"(tables: {foreign}); runlife left it untouched"
            )
        (version,) = conn.execute("SELECT max(version) FROM runlife_schema").fetchone()
    except sqlite3.DatabaseError as exc:
        if is_busy(exc):
            raise
        raise SchemaMismatch(
            f"{path!r} is not a usable SQLite database ({exc}); runlife left it untouched"
        ) from exc
    version = int(version or 0)
    if version > SCHEMA_VERSION:
        raise SchemaMismatch(
            f"{path!r} has runlife schema version {version}, newer than "
            f"this runlife's {SCHEMA_VERSION}; upgrade runlife to open it "
            "(it was left untouched)"
        )
    return version


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the file up to `SCHEMA_VERSION` in one write transaction (creating
    the schema in an empty file). Checked again under the write lock: another
    process may have migrated it meanwhile."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = check(conn, path)
        if version == 0:
            conn.execute(
                "CREATE TABLE runlife_schema ("
                " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
            )
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        for number in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[number]:
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO runlife_schema (version, applied_at) VALUES (?, {sql.NOW})",
                (number,),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
