"""The tables, their migrations, and the check that a database is runlife's.

`migrate` runs when a store is first used: under a session advisory lock (so
that many processes starting at once migrate once) it reads ``runlife_schema``,
applies the missing versions in order, each in its own transaction, and records
each. A database of a newer schema, or with a ``runlife_runs`` table that runlife
did not make, raises `SchemaMismatch` and is left untouched.

Column types follow the values a store accepts (``runlife._core.values``):
``integer`` for the 32-bit fields (priorities, attempt numbers, limits),
``bigint`` for the 64-bit ones (versions, fences, sequence numbers), ``timestamptz``
(microseconds) for moments, ``json`` for opaque JSON (it keeps the text as
written) and ``jsonb`` where the store filters by content (labels).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import psycopg  # noqa: TID251 - the PostgreSQL store is where psycopg lives
from psycopg import sql  # noqa: TID251

from runlife.exceptions import SchemaMismatch

__all__ = ("MIGRATIONS", "SCHEMA_VERSION", "ensure_trgm", "migrate")

SCHEMA_VERSION = 2
"""The schema version this runlife writes (and the newest it opens)."""

# Advisory lock keys: arbitrary constants that name runlife's locks.
MIGRATION_LOCK: Final = 0x72756E6C69666501  # "runlife" + 1
EVENT_LOCK: Final = 0x72756E6C69666502

_SCHEMA_V1 = """
CREATE TABLE runlife_jobs (
    name text PRIMARY KEY,
    spec json NOT NULL DEFAULT '{}',
    max_concurrency integer,
    per_label jsonb NOT NULL DEFAULT '{}',
    paused boolean NOT NULL DEFAULT false,
    last_scheduled_for timestamptz,
    updated_at timestamptz
);
CREATE TABLE runlife_runs (
    id text PRIMARY KEY,
    job text NOT NULL,
    status text NOT NULL,
    state text NOT NULL,
    trigger text NOT NULL,
    params json NOT NULL,
    result json,
    error json,
    labels jsonb NOT NULL,
    -- What RunQuery.text searches (job, error message, label values), each
    -- lowered by Python's str.lower() when written.
    search text[] NOT NULL,
    created_at timestamptz NOT NULL,
    scheduled_for timestamptz,
    queued_at timestamptz,
    started_at timestamptz,
    ended_at timestamptz,
    due_at timestamptz,
    attempts json NOT NULL,
    warnings json NOT NULL,
    parent_id text,
    root_id text,
    workflow_run_id text,
    idempotency_key text,
    priority integer NOT NULL,
    version bigint NOT NULL,
    owner text,
    fence bigint NOT NULL DEFAULT 0,
    expires_at timestamptz,
    n_logs bigint NOT NULL DEFAULT 0,
    p_pending bigint NOT NULL DEFAULT 0,
    p_running bigint NOT NULL DEFAULT 0,
    p_succeeded bigint NOT NULL DEFAULT 0,
    p_failed bigint NOT NULL DEFAULT 0,
    p_skipped bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 80);
CREATE UNIQUE INDEX runlife_runs_idempotency ON runlife_runs (job, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX runlife_runs_slot ON runlife_runs (job, scheduled_for)
    WHERE trigger = 'SCHEDULED' AND scheduled_for IS NOT NULL;
CREATE INDEX runlife_runs_newest ON runlife_runs (created_at DESC, id DESC);
CREATE INDEX runlife_runs_job ON runlife_runs (job, status);
CREATE INDEX runlife_runs_queue ON runlife_runs (priority DESC, created_at, id)
    WHERE status = 'QUEUED';
CREATE INDEX runlife_runs_live ON runlife_runs (expires_at NULLS FIRST)
    WHERE status IN ('RUNNING', 'WAITING');
CREATE INDEX runlife_runs_due ON runlife_runs (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX runlife_runs_ended ON runlife_runs (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX runlife_runs_labels ON runlife_runs USING gin (labels jsonb_path_ops)
    WHERE labels <> '{}';
CREATE INDEX runlife_runs_workflow ON runlife_runs (workflow_run_id)
    WHERE workflow_run_id IS NOT NULL;
CREATE INDEX runlife_runs_parent ON runlife_runs (parent_id) WHERE parent_id IS NOT NULL;
CREATE TABLE runlife_transitions (
    run_id text NOT NULL,
    n integer NOT NULL,
    from_state text NOT NULL,
    to_state text NOT NULL,
    at timestamptz NOT NULL,
    reason text,
    PRIMARY KEY (run_id, n)
);
CREATE TABLE runlife_items (
    run_id text NOT NULL,
    key text NOT NULL,
    ord bigint GENERATED ALWAYS AS IDENTITY,
    phase text,
    status text NOT NULL,
    started_at timestamptz,
    ended_at timestamptz,
    attempts integer NOT NULL,
    error json,
    output json,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX runlife_items_order ON runlife_items (run_id, ord);
CREATE TABLE runlife_logs (
    run_id text NOT NULL,
    seq bigint NOT NULL,
    at timestamptz NOT NULL,
    stream text NOT NULL,
    level text NOT NULL,
    message text NOT NULL,
    -- The message lowered by Python's str.lower(), for search_logs; NULL when
    -- that is the message itself.
    lowered text,
    item text,
    attempt integer,
    fields json NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE runlife_signals (
    run_id text NOT NULL,
    name text NOT NULL,
    payload json,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE runlife_events (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id text NOT NULL,
    job text NOT NULL,
    kind text NOT NULL,
    at timestamptz NOT NULL,
    status text NOT NULL,
    body json NOT NULL
);
CREATE INDEX runlife_events_run ON runlife_events (run_id, seq);
"""

_SCHEMA_V2 = """
-- A run's cancel request, for the process that holds it (one per run).
CREATE TABLE runlife_cancel_requests (
    run_id text PRIMARY KEY,
    requested_by text NOT NULL,
    reason text,
    at timestamptz NOT NULL
);
"""

MIGRATIONS: Mapping[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2}
"""The statements that bring a database from the version before to each version."""

_Conn = psycopg.Connection[tuple[Any, ...]]


def migrate(conn: _Conn, url: str) -> None:
    """Bring the database of *conn* (autocommit) to `SCHEMA_VERSION`.

    Raises:
        SchemaMismatch: the database is of a newer schema, or not runlife's.
    """
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        _migrate_locked(conn, url)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    ensure_trgm(conn)


def _migrate_locked(conn: _Conn, url: str) -> None:
    found = conn.execute(
        "SELECT to_regclass('runlife_schema') IS NOT NULL, to_regclass('runlife_runs') IS NOT NULL"
    ).fetchone()
    assert found is not None
    has_schema, has_runs = found
    version = 0
    if has_schema:
        (newest,) = conn.execute("SELECT max(version) FROM runlife_schema").fetchone() or (None,)
        version = newest or 0
    elif has_runs:
        raise SchemaMismatch(
            f"{url} has a runlife_runs table but no runlife_schema table; "
            "it was not made by runlife and was left untouched"
        )
    if version > SCHEMA_VERSION:
        raise SchemaMismatch(
            f"{url} has runlife schema version {version}, newer than the "
            f"{SCHEMA_VERSION} this runlife knows; upgrade runlife (nothing was changed)"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        with conn.transaction():
            if target == 1:
                conn.execute(
                    "CREATE TABLE runlife_schema (version integer NOT NULL, "
                    "applied_at timestamptz NOT NULL DEFAULT now())"
                )
            conn.execute(MIGRATIONS[target])
            conn.execute("INSERT INTO runlife_schema (version) VALUES (%s)", (target,))


def ensure_trgm(conn: _Conn) -> bool:
    """Index log search by trigrams when pg_trgm can be had; whether it is there.

    Without it, search scans the run's own lines (still correct, slower on huge logs).
    """
    (exists,) = conn.execute("SELECT to_regclass('runlife_logs_trgm') IS NOT NULL").fetchone() or (
        False,
    )
    if exists:
        return True
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            found = conn.execute(
                "SELECT extnamespace::regnamespace::text FROM pg_extension "
                "WHERE extname = 'pg_trgm'"
            ).fetchone()
            assert found is not None
            (schema,) = found
            conn.execute(
                sql.SQL(
                    "CREATE INDEX IF NOT EXISTS runlife_logs_trgm ON runlife_logs "
                    "USING gin ((coalesce(lowered, message)) {}.gin_trgm_ops)"
                ).format(sql.Identifier(schema))
            )
    except psycopg.Error:
        return False
    return True
