"""`PostgresStore`: the Store protocol on PostgreSQL, for many processes on many machines.

How it works, in the order a reader will ask:

* **asyncio and trio.** Every transaction is written once, as a generator that
  yields statements and receives their rows (a `_Program`). On asyncio a driver
  runs it on a psycopg ``AsyncConnection`` (no thread hop); on trio, where
  psycopg's async API does not run, on a sync ``Connection`` in a worker thread
  (``anyio.to_thread.run_sync``). A cancelled call waits for its statement: a
  write is never left half-known.
* **Round trips and group commit.** Connections are in autocommit mode and the
  hot writes (``create_run``, ``update_run``, ``heartbeat``) are single
  statements: one round trip, one transaction. Concurrent ``create_run`` (and
  ``update_run``) calls of one store share one statement, each with its own
  outcome (`PostgresStore._batched`). Only while a test arms a failpoint do they
  run inside BEGIN ... COMMIT, so that a failure can strike before the commit.
* **Claims** lock the rows of the *limited* jobs among those asked for
  (``SELECT ... FROM runlife_jobs ... ORDER BY name FOR UPDATE``, in name order
  so claimers never deadlock), count their RUNNING and WAITING runs in a fresh
  READ COMMITTED snapshot, then pick QUEUED runs with ``FOR UPDATE SKIP LOCKED``
  by priority, age and id. Successors are computed in Python through the job's
  lifecycle and written back in the same transaction. Claimers of unlimited jobs
  never wait for one another.
* **Events** are numbered by a sequence, whose values commit out of order. So
  that ``events(after=seq)`` never skips an event that commits late, every
  transaction that writes events takes one transaction-level advisory lock just
  before its last statement: events commit in ``seq`` order.
* **Store time** is the database's ``statement_timestamp()``.
* **Schema** is created and migrated under a session advisory lock, recorded in
  ``runlife_schema``; a newer schema is refused with `SchemaMismatch`. Tables live
  in the connection's ``search_path`` (add ``?options=-csearch_path%3Dmyschema`` to
  the URL to choose one).
* **Wake-ups**: every write does ``NOTIFY runlife``; `wait_changed` listens on a
  dedicated connection and falls back on its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Collection, Generator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar, overload
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.to_thread
import attrs
import psycopg  # noqa: TID251 - the one module that may use psycopg
import psycopg_pool
from psycopg import sql  # noqa: TID251

from runlife._core.convert import aware, frozen_labels
from runlife._core.lifecycle import Lifecycle
from runlife._core.queries import Claim, JobRecord, LogPage, LogQuery, Page, RunQuery
from runlife._core.records import Attempt, Event, Item, ItemCounts, LogLine, Transition
from runlife._core.run import Run
from runlife._core.status import TERMINAL, Status, Trigger
from runlife.exceptions import (
    ConcurrentUpdate,
    InvalidPolicy,
    InvalidTransition,
    JobNotFound,
    LeaseLost,
    RunlifeError,
    RunNotFound,
    SchemaMismatch,
    StoreError,
)
from runlife.stores import _codec, _failpoints
from runlife.stores._failpoints import hit

__all__ = ("PostgresStore",)

SCHEMA_VERSION = 1
_T = TypeVar("_T")
_Conn = psycopg.Connection[tuple[Any, ...]]
_AConn = psycopg.AsyncConnection[tuple[Any, ...]]
_Rows = list[tuple[Any, ...]]
_Stmt = tuple[str, Sequence[Any] | None]
_Program = Generator[_Stmt, _Rows, _T]
"""A transaction, written once for both drivers: it yields statements, gets rows."""

# Advisory lock keys: arbitrary constants that name runlife's two locks.
_MIGRATION_LOCK = 0x72756E6C69666501  # "runlife" + 1
_EVENT_LOCK = 0x72756E6C69666502
_CHANNEL = "runlife"

_LIVE_SET = frozenset({Status.RUNNING, Status.WAITING})
_TERMINAL_TEXT = [s.value for s in TERMINAL]
# The progress columns of runlife_runs, in the order a delta lists them.
_PROGRESS = ("pending", "running", "succeeded", "failed", "skipped")

# -- schema -------------------------------------------------------------------------

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
    version integer NOT NULL,
    n_history integer NOT NULL,
    owner text,
    fence bigint NOT NULL DEFAULT 0,
    expires_at timestamptz,
    n_logs bigint NOT NULL DEFAULT 0,
    p_pending integer NOT NULL DEFAULT 0,
    p_running integer NOT NULL DEFAULT 0,
    p_succeeded integer NOT NULL DEFAULT 0,
    p_failed integer NOT NULL DEFAULT 0,
    p_skipped integer NOT NULL DEFAULT 0
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

_MIGRATIONS: Mapping[int, str] = {1: _SCHEMA_V1}

# -- reading runs ------------------------------------------------------------------

_US = "(extract(epoch FROM t.at) * 1000000)::bigint"
_RUN_COLUMNS = f"""
    r.id, r.job, r.status, r.state, r.trigger, r.params, r.result, r.error, r.labels,
    r.created_at, r.scheduled_for, r.queued_at, r.started_at, r.ended_at, r.due_at,
    r.attempts, r.warnings, r.parent_id, r.root_id, r.workflow_run_id, r.idempotency_key,
    r.priority, r.version,
    r.p_pending, r.p_running, r.p_succeeded, r.p_failed, r.p_skipped,
    (SELECT coalesce(json_agg(json_build_array(t.from_state, t.to_state, {_US}, t.reason)
                              ORDER BY t.n), '[]')
       FROM runlife_transitions t WHERE t.run_id = r.id)
"""
_N_RUN_COLUMNS = 29


@overload
def _utc(moment: datetime) -> datetime: ...
@overload
def _utc(moment: None) -> None: ...
@overload
def _utc(moment: datetime | None) -> datetime | None: ...
def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is UTC:
        return moment
    return moment.astimezone(UTC)


def _run_from_row(row: Sequence[Any]) -> Run:
    p = row[23:28]
    return Run(
        id=row[0],
        job=row[1],
        status=Status(row[2]),
        state=_codec.state_from_text(row[3]),
        trigger=Trigger(row[4]),
        params=row[5],
        result=row[6],
        error=_codec.error_from_json(row[7]),
        labels=row[8],
        created_at=_utc(row[9]),
        scheduled_for=_utc(row[10]),
        queued_at=_utc(row[11]),
        started_at=_utc(row[12]),
        ended_at=_utc(row[13]),
        due_at=_utc(row[14]),
        attempts=_codec.attempts_from_json(row[15]),
        warnings=tuple(row[16]),
        history=tuple(
            Transition(
                from_=_codec.state_from_text(f),
                to=_codec.state_from_text(t),
                at=_codec.from_us(at),
                reason=reason,
            )
            for f, t, at, reason in row[28]
        ),
        progress=ItemCounts(
            total=sum(p), pending=p[0], running=p[1], succeeded=p[2], failed=p[3], skipped=p[4]
        ),
        parent_id=row[17],
        root_id=row[18],
        workflow_run_id=row[19],
        idempotency_key=row[20],
        priority=row[21],
        version=row[22],
    )


def _job_from_row(row: Sequence[Any]) -> JobRecord:
    return JobRecord(
        name=row[0],
        spec=row[1],
        max_concurrency=row[2],
        per_label=row[3],
        paused=row[4],
        last_scheduled_for=_utc(row[5]),
        updated_at=_utc(row[6]),
    )


_JOB_COLUMNS = "name, spec, max_concurrency, per_label, paused, last_scheduled_for, updated_at"


def _item_from_row(row: Sequence[Any]) -> Item:
    return Item(
        run_id=row[0],
        key=row[1],
        phase=row[2],
        status=Status(row[3]),
        started_at=_utc(row[4]),
        ended_at=_utc(row[5]),
        attempts=row[6],
        error=_codec.error_from_json(row[7]),
        output=row[8],
    )


_ITEM_COLUMNS = "run_id, key, phase, status, started_at, ended_at, attempts, error, output"


def _line_from_row(row: Sequence[Any]) -> LogLine:
    return LogLine(
        run_id=row[0],
        seq=row[1],
        at=_utc(row[2]),
        stream=row[3],
        level=row[4],
        message=row[5],
        item=row[6],
        attempt=row[7],
        fields=row[8],
    )


_LOG_COLUMNS = "run_id, seq, at, stream, level, message, item, attempt, fields"


def _item_json(item: Item, output: str) -> str:
    # The event body of an item update; output is already JSON text.
    err = _codec.error_to_json(item.error)
    head = _codec.dumps(
        {
            "key": item.key,
            "phase": item.phase,
            "status": str(item.status),
            "s": _codec.to_us_or_none(item.started_at),
            "e": _codec.to_us_or_none(item.ended_at),
            "attempts": item.attempts,
            "err": err,
        },
        "item",
    )
    return head[:-1] + ',"output":' + output + "}"


def _event_from_row(row: Sequence[Any]) -> Event:
    seq, run_id, job, kind, at, status, body = row
    transition = item = None
    if kind == "transition":
        transition = _codec.transition_from_json(body)
    elif kind == "item":
        item = Item(
            run_id=run_id,
            key=body["key"],
            phase=body["phase"],
            status=Status(body["status"]),
            started_at=_codec.from_us_or_none(body["s"]),
            ended_at=_codec.from_us_or_none(body["e"]),
            attempts=body["attempts"],
            error=_codec.error_from_json(body["err"]),
            output=body["output"],
        )
    return Event(
        kind=kind,
        run_id=run_id,
        job=job,
        at=_utc(at),
        status=Status(status),
        transition=transition,
        item=item,
        seq=seq,
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}"))


# -- the rows a write produces ---------------------------------------------------------


def _ts(expr: str) -> str:
    """SQL for the timestamptz of *expr* microseconds since the epoch (NULL stays NULL)."""
    return f"('epoch'::timestamptz + ({expr}) * interval '1 microsecond')"


# Runs travel to the hot writes as one JSON array, a row per run (see `_run_row`):
# the driver sends one text parameter, and concurrent calls of one process share
# one statement (see `PostgresStore._batched`). Times are microseconds since the
# epoch; ``h`` holds history rows as [n, from, to, at, reason].
_RUN_ROWS = """
    SELECT * FROM json_to_recordset(%s::json) AS v(
        ord int, id text, job text, status text, state text, trigger text,
        params json, result json, error json, labels jsonb, created_at bigint,
        scheduled_for bigint, queued_at bigint, started_at bigint, ended_at bigint,
        due_at bigint, attempts json, warnings json, parent_id text, root_id text,
        workflow_run_id text, idempotency_key text, priority int, version int,
        n_history int, h json, scheduled boolean, live boolean, expected int,
        owner text, fence bigint, only_if_lapsed boolean)"""
# The events of the history rows a statement inserted (CTE ``hist``, joined to the
# written runs ``w`` and their input rows ``v``), written after the event lock (CTE
# ``ordered``, taken only when there are events). The lock waits for every other
# write of the statement: taken last, it is held for microseconds and never while
# waiting for a row lock, so it cannot deadlock.
_HIST_EVENTS = f"""
ordered AS MATERIALIZED (
    SELECT pg_notify('{_CHANNEL}', ''),
           CASE WHEN c.n > 0 THEN pg_advisory_xact_lock({_EVENT_LOCK}) END
    FROM (SELECT count(*) AS n FROM hist) c {{also}}),
events AS (
    INSERT INTO runlife_events (run_id, job, kind, at, status, body)
    SELECT h.run_id, v.job, 'transition', h.at, v.status,
           json_build_object('f', h.from_state, 't', h.to_state,
                              'at', (extract(epoch FROM h.at) * 1000000)::bigint,
                              'r', h.reason)
    FROM ordered, hist h JOIN w ON w.id = h.run_id JOIN v ON v.ord = w.ord
    ORDER BY v.ord, h.n)
"""
_HIST_ROWS = f"""
    SELECT w.id, (e->>0)::int AS n, e->>1, e->>2, {_ts("(e->>3)::bigint")}, e->>4
    FROM w JOIN v ON v.ord = w.ord, json_array_elements(v.h) AS e"""
_INSERT_RUNS = f"""
WITH v AS MATERIALIZED ({_RUN_ROWS}),
w AS (
    INSERT INTO runlife_runs (id, job, status, state, trigger, params, result, error, labels,
        created_at, scheduled_for, queued_at, started_at, ended_at, due_at, attempts, warnings,
        parent_id, root_id, workflow_run_id, idempotency_key, priority, version, n_history)
    SELECT v.id, v.job, v.status, v.state, v.trigger, v.params, v.result, v.error, v.labels,
        {_ts("v.created_at")}, {_ts("v.scheduled_for")}, {_ts("v.queued_at")},
        {_ts("v.started_at")}, {_ts("v.ended_at")}, {_ts("v.due_at")}, v.attempts,
        v.warnings, v.parent_id, v.root_id, v.workflow_run_id, v.idempotency_key,
        v.priority, 0, v.n_history
    FROM v ORDER BY v.ord
    ON CONFLICT DO NOTHING
    RETURNING id, job, scheduled_for, trigger),
-- The input row of a written run: the first with its id (later ones conflicted).
w2 AS (SELECT DISTINCT ON (w.id) w.*, v.ord FROM w JOIN v ON v.id = w.id ORDER BY w.id, v.ord),
hist AS (
    INSERT INTO runlife_transitions (run_id, n, from_state, to_state, at, reason)
    {_HIST_ROWS.replace("FROM w JOIN", "FROM w2 w JOIN")}
    RETURNING run_id, n, from_state, to_state, at, reason),
slot AS (
    INSERT INTO runlife_jobs AS j (name, last_scheduled_for, updated_at)
    SELECT w.job, max(w.scheduled_for), statement_timestamp() FROM w
    WHERE w.trigger = 'SCHEDULED' AND w.scheduled_for IS NOT NULL GROUP BY w.job
    ON CONFLICT (name) DO UPDATE SET
        last_scheduled_for = GREATEST(j.last_scheduled_for, EXCLUDED.last_scheduled_for),
        updated_at = EXCLUDED.updated_at
    RETURNING 1),
{_HIST_EVENTS.replace("JOIN w ON", "JOIN w2 w ON").format(also=", (SELECT count(*) FROM slot) s")}
SELECT ord FROM w2
UNION ALL SELECT -1 FROM ordered  -- so that ordered (the NOTIFY) always runs
"""
_UPDATE_RUNS_SQL = f"""
WITH v AS MATERIALIZED ({_RUN_ROWS}),
{{locked}}
w AS (
    UPDATE runlife_runs r SET status = v.status, state = v.state, params = v.params,
        result = v.result, error = v.error, labels = v.labels,
        queued_at = {_ts("v.queued_at")}, started_at = {_ts("v.started_at")},
        ended_at = {_ts("v.ended_at")}, due_at = {_ts("v.due_at")},
        attempts = v.attempts, warnings = v.warnings, priority = v.priority,
        version = v.version, n_history = v.n_history,
        owner = CASE WHEN v.live THEN r.owner END,
        expires_at = CASE WHEN v.live THEN r.expires_at END
    FROM v
    WHERE r.id = ANY(ARRAY(SELECT id FROM {{ids}})) AND r.id = v.id AND r.version = v.expected
      AND (v.owner IS NULL OR (r.owner = v.owner AND r.fence = v.fence))
      AND (NOT v.only_if_lapsed OR r.expires_at IS NULL
           OR r.expires_at <= statement_timestamp())
    RETURNING r.id, v.ord, r.p_pending, r.p_running, r.p_succeeded, r.p_failed, r.p_skipped),
hist AS (
    -- Each run's whole history is sent; the rows already stored are skipped.
    INSERT INTO runlife_transitions (run_id, n, from_state, to_state, at, reason)
    {_HIST_ROWS}
    ON CONFLICT (run_id, n) DO NOTHING
    RETURNING run_id, n, from_state, to_state, at, reason),
{_HIST_EVENTS.format(also="")}
SELECT ord, p_pending, p_running, p_succeeded, p_failed, p_skipped FROM w
UNION ALL SELECT -1, 0, 0, 0, 0, 0 FROM ordered  -- so that ordered (the NOTIFY) always runs
"""
# Several runs: lock their rows in id order before any write, so that concurrent
# batches never deadlock (ids = ANY(ARRAY(...)) makes it an index scan, whatever the
# planner guesses of v's size). One run: no lock to order, and none taken twice.
_UPDATE_RUNS = _UPDATE_RUNS_SQL.format(
    locked="""locked AS MATERIALIZED (
    SELECT r.id FROM runlife_runs r WHERE r.id = ANY(ARRAY(SELECT id FROM v))
    ORDER BY r.id FOR UPDATE),""",
    ids="locked",
)
_UPDATE_RUN = _UPDATE_RUNS_SQL.format(locked="", ids="v")

_INSERT_EVENTS = f"""
WITH ordered AS MATERIALIZED (SELECT pg_advisory_xact_lock({_EVENT_LOCK})),
     woken AS MATERIALIZED (SELECT pg_notify('{_CHANNEL}', ''))
INSERT INTO runlife_events (run_id, job, kind, at, status, body)
SELECT v.run_id, v.job, v.kind, v.at, v.status, v.body
  FROM ordered, woken,
       unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::json[])
         WITH ORDINALITY AS v(run_id, job, kind, at, status, body, n)
 ORDER BY v.n
"""

_NOTIFY = f"SELECT pg_notify('{_CHANNEL}', '')"


def _insert_event(
    run_id: str, job: str, kind: str, at: datetime, status: str, body: str
) -> _Program[None]:
    """Insert one event (with the event lock: the caller's last statement)."""
    yield (_INSERT_EVENTS, ([run_id], [job], [kind], [at], [status], [body]))


def _history_json(run: Run) -> str:
    """*run*'s history as JSON rows [n, from, to, at (µs), reason]."""
    return json.dumps(
        [[n, str(t.from_), str(t.to), _codec.to_us(t.at), t.reason]
         for n, t in enumerate(run.history)],
        separators=(",", ":"),
    )  # fmt: skip


def _normalised(run: Run, params: str, result: str, progress: Sequence[int]) -> Run:
    """*run* as the store reads it back: UTC times, state objects, JSON copies."""
    counts = ItemCounts(total=sum(progress), pending=progress[0], running=progress[1],
                        succeeded=progress[2], failed=progress[3], skipped=progress[4])  # fmt: skip
    if _is_normal(run):
        # The usual case (the run came from a store and moved in UTC): only the
        # JSON parts and the counts differ from what a read would give.
        return attrs.evolve(run, params=_codec.loads(params), result=_codec.loads(result),
                            labels=dict(run.labels), progress=counts)  # fmt: skip
    return attrs.evolve(
        run,
        state=_codec.state_from_text(str(run.state)),
        params=_codec.loads(params),
        result=_codec.loads(result),
        labels=dict(run.labels),
        created_at=_utc(aware(run.created_at)),
        scheduled_for=_utc_aware(run.scheduled_for),
        queued_at=_utc_aware(run.queued_at),
        started_at=_utc_aware(run.started_at),
        ended_at=_utc_aware(run.ended_at),
        due_at=_utc_aware(run.due_at),
        attempts=tuple(_norm_attempt(a) for a in run.attempts),
        history=tuple(_norm_transition(t) for t in run.history),
        warnings=tuple(run.warnings),
        progress=counts,
    )


def _is_normal(run: Run) -> bool:
    """Whether *run* already reads as stored: UTC times, state objects, tuples."""
    state = _codec.state_from_text
    if state(str(run.state)) is not run.state or type(run.warnings) is not tuple:
        return False
    for moment in (run.created_at, run.scheduled_for, run.queued_at, run.started_at,
                   run.ended_at, run.due_at):  # fmt: skip
        if moment is not None and moment.tzinfo is not UTC:
            return False
    for t in run.history:
        if t.at.tzinfo is not UTC or state(str(t.from_)) is not t.from_:
            return False
        if state(str(t.to)) is not t.to:
            return False
    for a in run.attempts:
        if a.started_at.tzinfo is not UTC or (a.ended_at and a.ended_at.tzinfo is not UTC):
            return False
    return True


def _utc_aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else _utc(aware(moment))


def _norm_transition(t: Transition) -> Transition:
    from_, to = _codec.state_from_text(str(t.from_)), _codec.state_from_text(str(t.to))
    at = _utc(aware(t.at))
    if from_ is t.from_ and to is t.to and at is t.at:
        return t
    return Transition(from_=from_, to=to, at=at, reason=t.reason)


def _norm_attempt(a: Attempt) -> Attempt:
    started, ended = _utc(aware(a.started_at)), _utc_aware(a.ended_at)
    if started is a.started_at and ended is a.ended_at:
        return a
    return attrs.evolve(a, started_at=started, ended_at=ended)


def _run_row(run: Run, **extra: Any) -> tuple[str, str, str]:
    """*run* as a JSON row of `_RUN_ROWS` (without ``ord``), with its params and
    result as JSON. Raises `NotSerializable` (naming the field) before anything is sent.
    """
    params = _codec.dumps(dict(run.params), "params")
    result = _codec.dumps(run.result, "result")
    error = _codec.dumps(_codec.error_to_json(run.error), "error")
    labels = _codec.dumps(frozen_labels(run.labels), "labels")
    attempts = _codec.dumps(_codec.attempts_to_json(run.attempts), "attempts")
    warnings = _codec.dumps(list(run.warnings), "warnings")
    us = _codec.to_us_or_none
    head = json.dumps(
        {
            "id": run.id, "job": run.job, "status": run.status.value, "state": str(run.state),
            "trigger": run.trigger.value, "created_at": _codec.to_us(run.created_at),
            "scheduled_for": us(run.scheduled_for), "queued_at": us(run.queued_at),
            "started_at": us(run.started_at), "ended_at": us(run.ended_at),
            "due_at": us(run.due_at), "parent_id": run.parent_id, "root_id": run.root_id,
            "workflow_run_id": run.workflow_run_id, "idempotency_key": run.idempotency_key,
            "priority": run.priority, "version": run.version, "n_history": len(run.history),
            **extra,
        },
        separators=(",", ":"),
    )  # fmt: skip
    row = (f'{head[:-1]},"params":{params},"result":{result},"error":{error},'
           f'"labels":{labels},"attempts":{attempts},"warnings":{warnings},'
           f'"h":{_history_json(run)}')  # fmt: skip
    return row, params, result


def _rows_json(rows: Sequence[str]) -> str:
    """The JSON array of `_run_row` rows, each given its ``ord`` (its index)."""
    return "[" + ",".join(f'{row},"ord":{i}}}' for i, row in enumerate(rows)) + "]"


# The claimed runs travel as one JSON array (see `_write_claims`); their new history
# rows and events are written by the same statement, the event lock taken last.
_CLAIM_WRITE = f"""
WITH v AS MATERIALIZED (
    SELECT * FROM json_to_recordset(%s::json) AS v(
        ord int, id text, status text, state text, queued_at bigint, started_at bigint,
        due_at bigint, attempts json, error json, version int, n_history int, h json)),
upd AS (
    UPDATE runlife_runs r SET status = v.status, state = v.state,
        queued_at = {_ts("v.queued_at")}, started_at = {_ts("v.started_at")},
        due_at = {_ts("v.due_at")}, attempts = v.attempts, error = v.error,
        version = v.version, n_history = v.n_history,
        owner = %s, fence = r.fence + 1, expires_at = %s
    FROM v WHERE r.id = ANY(ARRAY(SELECT id FROM v)) AND r.id = v.id
    RETURNING r.id, r.job, r.status, r.fence),
hist AS (
    INSERT INTO runlife_transitions (run_id, n, from_state, to_state, at, reason)
    SELECT upd.id, (e->>0)::int, e->>1, e->>2, {_ts("(e->>3)::bigint")}, e->>4
    FROM upd JOIN v ON v.id = upd.id, json_array_elements(v.h) AS e
    RETURNING run_id, n, from_state, to_state, at, reason),
ordered AS MATERIALIZED (
    SELECT pg_notify('{_CHANNEL}', ''),
           CASE WHEN c.n > 0 THEN pg_advisory_xact_lock({_EVENT_LOCK}) END
    FROM (SELECT count(*) AS n FROM hist) c),
events AS (
    INSERT INTO runlife_events (run_id, job, kind, at, status, body)
    SELECT h.run_id, u.job, 'transition', h.at, u.status,
           json_build_object('f', h.from_state, 't', h.to_state,
                              'at', (extract(epoch FROM h.at) * 1000000)::bigint,
                              'r', h.reason)
    FROM ordered, hist h JOIN upd u ON u.id = h.run_id JOIN v ON v.id = h.run_id
    ORDER BY v.ord, h.n)
SELECT id, fence FROM upd
UNION ALL SELECT NULL, -1 FROM ordered  -- so that ordered (the NOTIFY) always runs
"""


_BATCH_MAX = 200


class _Slot:
    """One write waiting in a `_Batch`, and what it came to."""

    __slots__ = ("item", "outcome")

    def __init__(self, item: Any) -> None:
        self.item = item
        self.outcome: _Outcome | None = None


class _Batch:
    """The writes of one kind waiting to share a statement, and whether one is in flight."""

    __slots__ = ("busy", "done", "pending")

    def __init__(self) -> None:
        self.pending: list[_Slot] = []
        self.busy = False
        self.done: anyio.Event | None = None


def _wrapped(exc: BaseException) -> StoreError:
    error = StoreError(f"batched write failed: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def _copy_error(exc: StoreError) -> StoreError:
    # Each waiter raises its own exception object (tracebacks are per raise).
    copy = type(exc)(*exc.args)
    copy.__cause__ = exc.__cause__
    return copy


class PostgresStore:
    """A `Store` on PostgreSQL (``postgresql://user@host/db``), shared by many processes.

    Args:
        url: a libpq connection URL (``postgresql://`` or ``postgres://``); query
            parameters go to libpq (``?options=-csearch_path%3Dmyschema`` picks a schema).
        min_size, max_size: the size of the connection pool.

    Constructing the store does not connect: it connects (and creates or migrates
    its tables, under an advisory lock) on ``async with`` or on first use. It needs
    the ``postgres`` extra (``pip install runlife[postgres]``).

    >>> store = PostgresStore("postgresql://app:secret@db.example/app")
    >>> store.url
    'postgresql://app@db.example/app'
    """

    url: str

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.url = _redact(url)
        self._dsn = url
        self._min_size = min_size
        self._max_size = max_size
        self._open_lock = threading.Lock()
        self._migrated = False
        self._closed = False
        # Threads (trio): a sync pool. asyncio: an async pool, opened in its loop.
        self._pool: psycopg_pool.ConnectionPool[_Conn] | None = None
        self._apool: psycopg_pool.AsyncConnectionPool[_AConn] | None = None
        self._apool_lock: anyio.Lock | None = None
        # Concurrent create_run and update_run calls share statements (`_batched`).
        self._creates = _Batch()
        self._updates = _Batch()
        # wait_changed: one listening connection, shared by turns.
        self._listen_lock = threading.Lock()
        self._listener: _Conn | None = None
        self._wakeups = 0

    def __repr__(self) -> str:
        return f"<PostgresStore {self.url}>"

    # -- opening and closing ------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if _on_asyncio():
            await self._async_pool()
        else:
            await anyio.to_thread.run_sync(self._sync_pool)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pools and the listening connection; closing twice is fine."""
        with anyio.CancelScope(shield=True):
            apool, self._apool = self._apool, None
            self._closed = True
            if apool is not None:
                await apool.close()
            await anyio.to_thread.run_sync(self._close)

    def _close(self) -> None:
        with self._open_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        with self._listen_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if pool is not None:
            pool.close()

    def _ensure_migrated(self) -> None:
        """Create or migrate the schema once per store (blocking; in a thread)."""
        if self._migrated:
            return
        with self._open_lock:
            if self._closed:
                raise StoreError(f"{self.url} store is closed")
            if not self._migrated:
                try:
                    self._migrate()
                except psycopg.Error as exc:
                    raise StoreError(f"cannot open {self.url}: {exc}") from exc
                self._migrated = True

    def _sync_pool(self) -> psycopg_pool.ConnectionPool[_Conn]:
        pool = self._pool
        if pool is not None:
            return pool
        self._ensure_migrated()
        with self._open_lock:
            if self._closed:
                raise StoreError(f"{self.url} store is closed")
            if self._pool is None:
                pool = psycopg_pool.ConnectionPool(
                    self._dsn,
                    min_size=self._min_size,
                    max_size=self._max_size,
                    open=False,
                    configure=_configure,
                    kwargs={"autocommit": True},
                    timeout=30,
                )
                try:
                    pool.open(wait=True, timeout=30)
                except psycopg_pool.PoolTimeout as exc:
                    pool.close()
                    raise StoreError(f"cannot open {self.url}: {exc}") from exc
                self._pool = pool
            return self._pool

    async def _async_pool(self) -> psycopg_pool.AsyncConnectionPool[_AConn]:
        pool = self._apool
        if pool is not None:
            return pool
        if self._apool_lock is None:
            self._apool_lock = anyio.Lock()
        async with self._apool_lock:
            if self._apool is None:
                await anyio.to_thread.run_sync(self._ensure_migrated)
                if self._closed:
                    raise StoreError(f"{self.url} store is closed")
                pool = psycopg_pool.AsyncConnectionPool(
                    self._dsn,
                    min_size=self._min_size,
                    max_size=self._max_size,
                    open=False,
                    configure=_aconfigure,
                    kwargs={"autocommit": True},
                    timeout=30,
                )
                try:
                    await pool.open(wait=True, timeout=30)
                except psycopg_pool.PoolTimeout as exc:
                    await pool.close()
                    raise StoreError(f"cannot open {self.url}: {exc}") from exc
                self._apool = pool
            return self._apool

    def _migrate(self) -> None:
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            # A session lock, so that many processes starting at once migrate once.
            conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
            try:
                self._migrate_locked(conn)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))

    def _migrate_locked(self, conn: _Conn) -> None:
        has_table = conn.execute(
            "SELECT to_regclass('runlife_schema') IS NOT NULL, "
            "to_regclass('runlife_runs') IS NOT NULL"
        ).fetchone()
        assert has_table is not None
        version = 0
        if has_table[0]:
            row = conn.execute("SELECT max(version) FROM runlife_schema").fetchone()
            version = (row[0] if row else None) or 0
        elif has_table[1]:
            raise SchemaMismatch(
                f"{self.url} has a runlife_runs table but no runlife_schema table; "
                "it was not made by runlife and was left untouched"
            )
        if version > SCHEMA_VERSION:
            raise SchemaMismatch(
                f"{self.url} has runlife schema version {version}, newer than the "
                f"{SCHEMA_VERSION} this runlife knows; upgrade runlife (nothing was changed)"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with conn.transaction():
                if target == 1:
                    conn.execute("CREATE TABLE runlife_schema (version integer NOT NULL, "
                                 "applied_at timestamptz NOT NULL DEFAULT now())")  # fmt: skip
                conn.execute(_MIGRATIONS[target])
                conn.execute("INSERT INTO runlife_schema (version) VALUES (%s)", (target,))
        self._ensure_trgm(conn)

    def _ensure_trgm(self, conn: _Conn) -> bool:
        """Index log messages by trigrams for `search_logs`, when pg_trgm can be had.

        Without it, search scans the run's own lines with ILIKE (still correct).
        """
        exists = conn.execute("SELECT to_regclass('runlife_logs_trgm') IS NOT NULL").fetchone()
        if exists and exists[0]:
            return True
        try:
            with conn.transaction():
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                schema = conn.execute(
                    "SELECT extnamespace::regnamespace::text FROM pg_extension "
                    "WHERE extname = 'pg_trgm'"
                ).fetchone()
                assert schema is not None
                conn.execute(
                    sql.SQL(
                        "CREATE INDEX IF NOT EXISTS runlife_logs_trgm ON runlife_logs "
                        "USING gin (message {}.gin_trgm_ops)"
                    ).format(sql.Identifier(schema[0]))
                )
        except psycopg.Error:
            return False
        return True

    async def _call(self, fn: Callable[..., _Program[_T]], *args: Any) -> _T:
        """Run the transaction ``fn(*args)`` on a pooled connection.

        A cancelled caller waits for the statement in flight (the scope is
        shielded), so that a write is never left half-known by its own process.
        """
        try:
            if _on_asyncio():
                pool = await self._async_pool()
                with anyio.CancelScope(shield=True):
                    async with pool.connection() as aconn:
                        return await _drive_async(aconn, fn(*args))
            return await anyio.to_thread.run_sync(self._in_thread, fn, args)
        except psycopg.Error as exc:
            raise StoreError(f"{self.url}: {type(exc).__name__}: {exc}") from exc

    def _in_thread(self, fn: Callable[..., _Program[_T]], args: tuple[Any, ...]) -> _T:
        with self._sync_pool().connection() as conn:
            return _drive_sync(conn, fn(*args))

    async def _batched(
        self, batch: _Batch, fn: Callable[[list[Any]], _Program[list[_Outcome]]], item: Any
    ) -> Run:
        """Write *item* together with the same kind of writes made concurrently in
        this process: one statement, one transaction, one round trip for all.

        The first caller to find no batch in flight writes every pending item
        (its own included); the others wait for that write and, if theirs was not
        in it, take the next turn. Each item gets its own outcome: one run's
        refused compare-and-set does not fail the others; a driver error (or an
        injected failure) fails the whole batch, as a failed commit would. As
        everywhere in this store, a cancelled caller waits for its write.
        """
        slot = _Slot(item)
        batch.pending.append(slot)
        with anyio.CancelScope(shield=True):
            while slot.outcome is None:
                if batch.busy:
                    if batch.done is None:
                        batch.done = anyio.Event()
                    await batch.done.wait()
                    continue
                batch.busy = True
                slots, batch.pending = batch.pending[:_BATCH_MAX], batch.pending[_BATCH_MAX:]
                try:
                    outcomes: list[_Outcome] = await self._call(fn, [s.item for s in slots])
                except StoreError as exc:
                    outcomes = [_copy_error(exc) for _ in slots]
                except Exception as exc:  # a bug: every waiter must still hear of it
                    outcomes = [_wrapped(exc) for _ in slots]
                except BaseException as exc:
                    for s in slots:
                        s.outcome = _wrapped(exc)
                    raise
                finally:
                    batch.busy = False
                    done, batch.done = batch.done, None
                    if done is not None:
                        done.set()
                for s, outcome in zip(slots, outcomes, strict=True):
                    s.outcome = outcome
        mine = slot.outcome
        assert mine is not None
        if isinstance(mine, Run):
            return mine
        raise mine

    # -- time ----------------------------------------------------------------------------

    async def now(self) -> datetime:
        """The database's clock (``clock_timestamp()``), in UTC."""
        return await self._call(_now)

    # -- jobs ----------------------------------------------------------------------------

    async def save_job(self, job: JobRecord) -> JobRecord:
        """Insert or replace a job's record, keeping its stored schedule state."""
        spec = _codec.dumps(dict(job.spec), f"job {job.name!r} spec")
        per_label = _codec.dumps(dict(job.per_label), f"job {job.name!r} per_label")
        return await self._call(_save_job, job, spec, per_label)

    async def get_job(self, name: str) -> JobRecord:
        """The job's record; raises `JobNotFound`."""
        return await self._call(_get_job, name)

    async def list_jobs(self) -> tuple[JobRecord, ...]:
        """All job records, by name."""
        return await self._call(_list_jobs)

    async def set_paused(self, name: str, paused: bool) -> JobRecord:
        """Pause or unpause a job's schedule; raises `JobNotFound`."""
        return await self._call(_set_paused, name, paused)

    # -- runs ----------------------------------------------------------------------------

    async def create_run(self, run: Run) -> Run:
        """Store a new run (see `runlife.abc.Store.create_run`).

        A run whose id, idempotency key or schedule slot is already stored is
        not stored again: the stored run is returned, so a create retried after
        an ambiguous failure is safe. Raises `InvalidPolicy` unless
        ``run.version`` is 0, `NotSerializable` for non-JSON params or result.
        """
        if run.version != 0:
            raise InvalidPolicy("version", run.version, "0 for a new run")
        row = _run_row(run)
        return await self._batched(self._creates, _create_runs, (run, row))

    async def get_run(self, run_id: str) -> Run:
        """The run, with its current progress; raises `RunNotFound`."""
        return await self._call(_get_run, run_id)

    async def update_run(
        self,
        run: Run,
        *,
        expected_version: int,
        claim: Claim | None = None,
        only_if_lapsed: bool = False,
    ) -> Run:
        """Write *run* by compare-and-set (see `runlife.abc.Store.update_run`)."""
        if claim is not None and claim.run_id != run.id:
            raise LeaseLost(claim.run_id, claim.owner, claim.fence)
        row = _run_row(
            run,
            live=run.status in _LIVE_SET,
            expected=expected_version,
            owner=None if claim is None else claim.owner,
            fence=None if claim is None else claim.fence,
            only_if_lapsed=only_if_lapsed,
        )
        item = (run, row, expected_version, claim)
        return await self._batched(self._updates, _update_runs, item)

    async def claim(
        self,
        worker: str,
        jobs: Mapping[str, Lifecycle],
        *,
        limit: int,
        lease: float,
    ) -> tuple[Claim, ...]:
        """Claim up to *limit* QUEUED runs of *jobs* (see `runlife.abc.Store.claim`).

        A QUEUED run whose state has no move into RUNNING in its job's lifecycle
        is left where it is.
        """
        if limit <= 0 or not jobs:
            return ()
        return await self._call(_claim, worker, dict(jobs), limit, lease)

    async def claim_run(
        self, run_id: str, worker: str, lifecycle: Lifecycle, *, lease: float
    ) -> Claim:
        """Claim one PENDING or QUEUED run, ignoring limits; `ConcurrentUpdate`
        if it is in another status, `RunNotFound` if absent."""
        return await self._call(_claim_run, run_id, worker, lifecycle, lease)

    async def heartbeat(self, claim: Claim, *, lease: float) -> datetime:
        """Extend *claim*'s lease to store time + *lease*; `LeaseLost` if it no longer holds."""
        return await self._call(_heartbeat, claim, lease)

    async def abandoned(self, *, limit: int = 100) -> tuple[Run, ...]:
        """Live runs whose lease lapsed by store time (or that have none), oldest lapse first."""
        return await self._call(_abandoned, limit)

    async def due(self, statuses: Collection[Status], *, limit: int = 100) -> tuple[Run, ...]:
        """Runs in *statuses* whose ``due_at`` has come by store time, earliest first."""
        names = sorted(Status(s).value for s in statuses)
        return await self._call(_due, names, limit)

    async def list_runs(self, query: RunQuery) -> Page:
        """Runs matching *query*, newest first (by creation time, then id)."""
        if query.limit < 1:
            raise InvalidPolicy("limit", query.limit, "a positive number of runs")
        after: tuple[datetime, str] | None = None
        if query.cursor is not None:
            us, rid = _codec.decode_cursor(query.cursor, 2)
            if not isinstance(us, int) or not isinstance(rid, str):
                raise InvalidPolicy("cursor", query.cursor, "a next_cursor returned by a page")
            after = (_codec.from_us(us), rid)
        where, params = _where(query)
        return await self._call(_list_runs, where, params, after, query.limit)

    async def count_runs(self, query: RunQuery) -> Mapping[Status, int]:
        """How many runs matching *query* are in each status (zeros left out)."""
        where, params = _where(query)
        return await self._call(_count_runs, where, params)

    # -- items ---------------------------------------------------------------------------

    async def save_item(self, item: Item, *, claim: Claim | None = None) -> Item:
        """Insert or replace an item, keep its run's progress, write an ``item`` event."""
        output = _codec.item_output_json(item)
        error = _codec.dumps(_codec.error_to_json(item.error), "item error")
        return await self._call(_save_item, item, output, error, claim)

    async def items(self, run_id: str, status: Status | None = None) -> tuple[Item, ...]:
        """The run's items in the order they were first saved (none for an unknown run)."""
        return await self._call(_items, run_id, None if status is None else Status(status).value)

    # -- logs ----------------------------------------------------------------------------

    async def append_logs(
        self, lines: Sequence[LogLine], *, claim: Claim | None = None
    ) -> tuple[LogLine, ...]:
        """Append *lines*, numbering each run's lines from 1 (see the protocol).

        Writes no event: a log line is not a change of a run (followers read the
        log from its cursor); `wait_changed` is still woken.
        """
        fields = [_codec.log_fields_json(line) for line in lines]
        if not lines:
            return ()
        return await self._call(_append_logs, list(lines), fields, claim)

    async def logs(self, query: LogQuery) -> LogPage:
        """A page of the run's log lines after ``query.cursor``, in order."""
        if query.limit < 1:
            raise InvalidPolicy("limit", query.limit, "a positive number of lines")
        after = 0 if query.cursor is None else _codec.decode_cursor(query.cursor, 1)[0]
        if not isinstance(after, int):
            raise InvalidPolicy("cursor", query.cursor, "a next_cursor returned by a page")
        return await self._call(_logs, query, after)

    async def search_logs(
        self, run_id: str, text: str, *, limit: int = 1000
    ) -> tuple[LogLine, ...]:
        """Lines whose message contains *text* (case-insensitive), in order.

        With pg_trgm, a trigram index serves the match; without, the run's lines
        are scanned.
        """
        return await self._call(_search_logs, run_id, _like(text), limit)

    # -- signals and events ---------------------------------------------------------------

    async def send_signal(self, run_id: str, name: str, payload: Any = None) -> None:
        """Store signal *name* for the run (replacing an earlier one); `RunNotFound`."""
        text = _codec.dumps(payload, f"signal {name!r} payload")
        await self._call(_send_signal, run_id, name, text)

    async def signals(self, run_id: str) -> Mapping[str, Any]:
        """The run's delivered signals, by name (none for an unknown run)."""
        return await self._call(_signals, run_id)

    async def events(
        self, *, after: int | None = None, run_id: str | None = None, limit: int = 1000
    ) -> tuple[Event, ...]:
        """Stored events with ``seq`` greater than *after*, in order.

        Events commit in ``seq`` order (see the module's notes), so a follower
        that continues after the last ``seq`` it saw never misses one.
        """
        return await self._call(_events, after or 0, run_id, limit)

    async def wait_changed(self, timeout: float) -> None:
        """Return soon after another write to the store (LISTEN/NOTIFY), or after *timeout*.

        Waits in slices of at most a quarter second, so that several waiters can
        share the one listening connection and a cancelled wait ends promptly.
        """
        deadline = time.monotonic() + max(timeout, 0)
        seen = self._wakeups
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self._wakeups != seen:
                return
            await anyio.to_thread.run_sync(
                self._listen, min(left, 0.25), seen, abandon_on_cancel=True
            )

    def _listen(self, timeout: float, seen: int) -> None:
        self._ensure_migrated()
        with self._listen_lock:
            if self._wakeups != seen or self._closed:
                return
            try:
                if self._listener is None:
                    conn: _Conn = psycopg.connect(self._dsn, autocommit=True)
                    conn.execute(f"LISTEN {_CHANNEL}")
                    self._listener = conn
                # Notifications that arrive between two slices wait in the socket.
                for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                    self._wakeups += 1
            except psycopg.Error as exc:
                broken, self._listener = self._listener, None
                if broken is not None:
                    broken.close()
                raise StoreError(f"{self.url}: listening for changes failed: {exc}") from exc

    # -- retention -----------------------------------------------------------------------

    async def purge(self, *, older_than: datetime, batch: int = 1000) -> int:
        """Delete terminal runs that ended before *older_than*, with all they own,
        one transaction per *batch* runs."""
        cutoff = aware(older_than)
        total = 0
        while True:
            n = await self._call(_purge_batch, cutoff, max(batch, 1))
            total += n
            if n < batch:
                return total


def _on_asyncio() -> bool:
    # On trio there is no running asyncio loop in this thread.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _configure(conn: _Conn) -> None:
    conn.execute("SET TIME ZONE 'UTC'")


async def _aconfigure(conn: _AConn) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")


# -- the drivers ------------------------------------------------------------------------
#
# Every transaction below is written once, as a generator (a `_Program`) that yields
# ``(sql, params)`` and receives the rows of that statement. The sync driver runs it
# on a psycopg Connection (in a worker thread: trio); the async driver on an
# AsyncConnection (asyncio, no thread hop). A program that raises, or a statement
# that fails, leaves no transaction open behind it.

_BEGIN: _Stmt = ("BEGIN", None)
_COMMIT: _Stmt = ("COMMIT", None)


def _drive_sync(conn: _Conn, program: _Program[_T]) -> _T:
    try:
        stmt = next(program)
        while True:
            cur = conn.execute(stmt[0], stmt[1])
            stmt = program.send(cur.fetchall() if _has_rows(cur) else [])
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    except BaseException:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")
        raise


async def _drive_async(conn: _AConn, program: _Program[_T]) -> _T:
    try:
        stmt = next(program)
        while True:
            cur = await conn.execute(stmt[0], stmt[1])
            rows = await cur.fetchall() if _has_rows(cur) else []
            stmt = program.send(rows)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    except BaseException:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                await conn.execute("ROLLBACK")
        raise


def _has_rows(cur: psycopg.Cursor[Any] | psycopg.AsyncCursor[Any]) -> bool:
    # Cheaper than cur.description, which builds a Column object per column.
    result = cur.pgresult
    return result is not None and result.status == psycopg.pq.ExecStatus.TUPLES_OK


# -- the transactions ---------------------------------------------------------------------


def _now() -> _Program[datetime]:
    rows = yield ("SELECT clock_timestamp()", None)
    return _utc(rows[0][0])


def _save_job(job: JobRecord, spec: str, per_label: str) -> _Program[JobRecord]:
    rows = yield (
        f"""WITH saved AS (
                INSERT INTO runlife_jobs AS j (name, spec, max_concurrency, per_label, paused,
                    last_scheduled_for, updated_at)
                VALUES (%s, %s::json, %s, %s::jsonb, %s, %s, statement_timestamp())
                ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec,
                    max_concurrency = EXCLUDED.max_concurrency, per_label = EXCLUDED.per_label,
                    updated_at = EXCLUDED.updated_at
                RETURNING {_JOB_COLUMNS}),
            woken AS (SELECT pg_notify('{_CHANNEL}', ''))
            SELECT saved.* FROM saved, woken""",
        (job.name, spec, job.max_concurrency, per_label, job.paused, job.last_scheduled_for),
    )
    return _job_from_row(rows[0])


def _get_job(name: str) -> _Program[JobRecord]:
    rows = yield (f"SELECT {_JOB_COLUMNS} FROM runlife_jobs WHERE name = %s", (name,))
    if not rows:
        raise JobNotFound(name, (yield from _job_names()))
    return _job_from_row(rows[0])


def _job_names() -> _Program[list[str]]:
    rows = yield ("SELECT name FROM runlife_jobs ORDER BY name LIMIT 100", None)
    return [r[0] for r in rows]


def _list_jobs() -> _Program[tuple[JobRecord, ...]]:
    rows = yield (f"SELECT {_JOB_COLUMNS} FROM runlife_jobs ORDER BY name", None)
    return tuple(_job_from_row(r) for r in rows)


def _set_paused(name: str, paused: bool) -> _Program[JobRecord]:
    rows = yield (
        f"""WITH changed AS (
                UPDATE runlife_jobs SET paused = %s, updated_at = statement_timestamp()
                WHERE name = %s RETURNING {_JOB_COLUMNS}),
            woken AS (SELECT pg_notify('{_CHANNEL}', '') FROM changed LIMIT 1)
            SELECT changed.* FROM changed LEFT JOIN woken ON true""",
        (paused, name),
    )
    if not rows:
        raise JobNotFound(name, (yield from _job_names()))
    return _job_from_row(rows[0])


def _select_run(run_id: str, *, lock: bool = False) -> _Program[Run | None]:
    rows = yield (
        f"SELECT {_RUN_COLUMNS} FROM runlife_runs r WHERE r.id = %s"
        + (" FOR UPDATE OF r" if lock else ""),
        (run_id,),
    )
    return _run_from_row(rows[0]) if rows else None


def _get_run(run_id: str) -> _Program[Run]:
    run = yield from _select_run(run_id)
    if run is None:
        raise RunNotFound(run_id)
    return run


def _begin(name: str) -> _Program[bool]:
    """BEGIN, but only while a failpoint is armed (see `_commit`)."""
    if not _failpoints.armed():
        return False
    yield _BEGIN
    return True


def _commit(name: str, explicit: bool) -> _Program[None]:
    """End a write: the ``<name>.before_commit`` failpoint, COMMIT, ``after_commit``.

    Connections are in autocommit mode: the common writes are single statements
    (one round trip, one transaction). While a test arms a failpoint they run
    inside BEGIN ... COMMIT, so that the failure strikes between them and COMMIT.
    """
    if explicit:
        hit(f"{name}.before_commit")
        yield _COMMIT
    hit(f"{name}.after_commit")


_Outcome = Run | RunlifeError
"""What one write of a batch came to: the stored run, or the error to raise."""


def _create_runs(items: list[tuple[Run, tuple[str, str, str]]]) -> _Program[list[_Outcome]]:
    """Create the runs of one batch in one statement (see `PostgresStore.create_run`)."""
    explicit = yield from _begin("create_run")
    rows = yield (_INSERT_RUNS, (_rows_json([row for _, (row, _, _) in items]),))
    created = {r[0] for r in rows if r[0] >= 0}
    out: list[_Outcome] = []
    for i, (run, (_, params, result)) in enumerate(items):
        if i in created:
            out.append(_normalised(run, params, result, (0, 0, 0, 0, 0)))
        else:
            try:
                out.append((yield from _find_existing(run)))
            except RunlifeError as exc:
                out.append(exc)
    yield from _commit("create_run", explicit)
    return out


def _find_existing(run: Run) -> _Program[Run]:
    # The run itself, or the one that holds its idempotency key or schedule slot.
    found = yield from _select_run(run.id)
    if found is None and run.idempotency_key is not None:
        rows = yield (
            "SELECT id FROM runlife_runs WHERE job = %s AND idempotency_key = %s",
            (run.job, run.idempotency_key),
        )
        found = (yield from _select_run(rows[0][0])) if rows else None
    if found is None and run.trigger is Trigger.SCHEDULED and run.scheduled_for is not None:
        rows = yield (
            "SELECT id FROM runlife_runs WHERE job = %s AND trigger = 'SCHEDULED' "
            "AND scheduled_for = %s",
            (run.job, run.scheduled_for),
        )
        found = (yield from _select_run(rows[0][0])) if rows else None
    if found is None:
        # The conflicting row was deleted between our insert and this read.
        raise ConcurrentUpdate(run.id, 0, None)
    return found


def _update_runs(
    items: list[tuple[Run, tuple[str, str, str], int, Claim | None]],
) -> _Program[list[_Outcome]]:
    """Write the runs of one batch by compare-and-set, in one statement."""
    explicit = yield from _begin("update_run")
    sql = _UPDATE_RUNS if len(items) > 1 else _UPDATE_RUN
    rows = yield (sql, (_rows_json([row for _, (row, _, _), _, _ in items]),))
    written = {r[0]: r[1:] for r in rows if r[0] >= 0}
    out: list[_Outcome] = []
    refused = [run.id for i, (run, *_) in enumerate(items) if i not in written]
    current: dict[str, tuple[Any, ...]] = {}
    if refused:
        # Why each was refused: a fresh read, after any writer the statement waited for.
        found = yield (
            "SELECT id, version, owner, fence FROM runlife_runs WHERE id = ANY(%s)",
            (refused,),
        )
        current = {r[0]: r[1:] for r in found}
    for i, (run, (_, params, result), expected, claim) in enumerate(items):
        if i in written:
            out.append(_normalised(run, params, result, written[i]))
        elif run.id not in current:
            out.append(RunNotFound(run.id))
        elif claim is not None and current[run.id][1:] != (claim.owner, claim.fence):
            out.append(LeaseLost(claim.run_id, claim.owner, claim.fence))
        else:
            out.append(ConcurrentUpdate(run.id, expected, current[run.id][0]))
    yield from _commit("update_run", explicit)
    return out


def _limited_jobs(names: list[str]) -> _Program[dict[str, tuple[int | None, dict[str, int]]]]:
    """Lock the rows of the jobs among *names* that have limits, in name order."""
    rows = yield (
        """SELECT name, max_concurrency, per_label FROM runlife_jobs
           WHERE name = ANY(%s) AND (max_concurrency IS NOT NULL OR per_label <> '{}')
           ORDER BY name FOR UPDATE""",
        (names,),
    )
    return {r[0]: (r[1], dict(r[2])) for r in rows}


class _Capacity:
    """What the limited jobs may still start in this claim."""

    def __init__(self, limits: dict[str, tuple[int | None, dict[str, int]]]) -> None:
        self.limits = limits
        self.running: dict[str, int] = dict.fromkeys(limits, 0)
        self.by_label: dict[tuple[str, str, str], int] = {}

    def count(self, job: str, labels: Mapping[str, str]) -> None:
        self.running[job] = self.running.get(job, 0) + 1
        for key in self.limits[job][1]:
            value = labels.get(key)
            if value is not None:
                slot = (job, key, value)
                self.by_label[slot] = self.by_label.get(slot, 0) + 1

    def full(self, job: str) -> bool:
        cap = self.limits[job][0]
        return cap is not None and self.running[job] >= cap

    def fits(self, job: str, labels: Mapping[str, str]) -> bool:
        limit = self.limits.get(job)
        if limit is None:
            return True
        if self.full(job):
            return False
        for key, cap in limit[1].items():
            value = labels.get(key)
            if value is not None and self.by_label.get((job, key, value), 0) >= cap:
                return False
        return True


_CANDIDATES = f"""
SELECT {_RUN_COLUMNS}, statement_timestamp()
FROM runlife_runs r
WHERE r.status = 'QUEUED' AND r.job = ANY(%s) {{after}}
ORDER BY r.priority DESC, r.created_at, r.id
LIMIT %s
FOR UPDATE OF r SKIP LOCKED
"""
_AFTER = "AND (r.priority < %s OR (r.priority = %s AND (r.created_at, r.id) > (%s, %s)))"


def _claim(
    worker: str, jobs: dict[str, Lifecycle], limit: int, lease: float
) -> _Program[tuple[Claim, ...]]:
    names = sorted(jobs)
    chosen: list[tuple[Run, Run]] = []
    yield _BEGIN
    limits = yield from _limited_jobs(names)
    capacity = _Capacity(limits)
    if limits:
        # A fresh snapshot, taken after the job locks: every claim of these
        # jobs that committed before we got the locks is counted.
        rows = yield (
            "SELECT job, labels FROM runlife_runs WHERE status IN ('RUNNING', 'WAITING') "
            "AND job = ANY(%s)",
            (list(limits),),
        )
        for job, labels in rows:
            capacity.count(job, labels)
    open_names = [n for n in names if n not in limits or not capacity.full(n)]
    now: datetime | None = None
    after: tuple[Any, ...] = ()
    # Without limits every candidate fits: one batch of *limit* is enough.
    batch = limit if not limits else max(4 * limit, 32)
    while open_names and len(chosen) < limit:
        query = _CANDIDATES.format(after=_AFTER if after else "")
        rows = yield (query, (open_names, *after, batch))
        for row in rows:
            if now is None:
                now = _utc(row[_N_RUN_COLUMNS])
            run = _run_from_row(row)
            if len(chosen) >= limit or not capacity.fits(run.job, run.labels):
                continue
            try:
                moved = jobs[run.job].transition(
                    run, Status.RUNNING, at=now, reason=f"claimed by {worker}"
                )
            except InvalidTransition:
                continue
            chosen.append((run, moved))
            if run.job in limits:
                capacity.count(run.job, run.labels)
        if len(rows) < batch:
            break
        last = rows[-1]
        after = (last[21], last[21], last[9], last[0])
        open_names = [n for n in open_names if n not in limits or not capacity.full(n)]
    if not chosen:
        yield _COMMIT
        return ()
    assert now is not None
    claims = yield from _write_claims(worker, chosen, now + timedelta(seconds=lease))
    hit("claim.before_commit")
    yield _COMMIT
    hit("claim.after_commit")
    return claims


def _write_claims(
    worker: str, chosen: list[tuple[Run, Run]], expires: datetime
) -> _Program[tuple[Claim, ...]]:
    us = _codec.to_us_or_none
    doc = [
        {
            "ord": i, "id": m.id, "status": m.status.value, "state": str(m.state),
            "queued_at": us(m.queued_at), "started_at": us(m.started_at),
            "due_at": us(m.due_at), "attempts": _codec.attempts_to_json(m.attempts),
            "error": _codec.error_to_json(m.error), "version": m.version,
            "n_history": len(m.history),
            "h": [[n, str(t.from_), str(t.to), _codec.to_us(t.at), t.reason]
                  for n, t in enumerate(m.history[len(old.history):], len(old.history))],
        }
        for i, (old, m) in enumerate(chosen)
    ]  # fmt: skip
    rows = yield (_CLAIM_WRITE, (json.dumps(doc, separators=(",", ":")), worker, expires))
    fences: dict[str, int] = {r[0]: r[1] for r in rows if r[0] is not None}
    return tuple(
        Claim(run=m, owner=worker, fence=fences[m.id], expires_at=expires) for _, m in chosen
    )


def _claim_run(run_id: str, worker: str, lifecycle: Lifecycle, lease: float) -> _Program[Claim]:
    yield _BEGIN
    run = yield from _select_run(run_id, lock=True)
    if run is None:
        raise RunNotFound(run_id)
    if run.status not in (Status.PENDING, Status.QUEUED):
        raise ConcurrentUpdate(run_id, run.version, run.version)
    rows = yield ("SELECT statement_timestamp()", None)
    now = _utc(rows[0][0])
    moved = lifecycle.transition(run, Status.RUNNING, at=now, reason=f"claimed by {worker}")
    claims = yield from _write_claims(worker, [(run, moved)], now + timedelta(seconds=lease))
    hit("claim.before_commit")
    yield _COMMIT
    hit("claim.after_commit")
    return claims[0]


def _heartbeat(claim: Claim, lease: float) -> _Program[datetime]:
    rows = yield (
        """UPDATE runlife_runs
           SET expires_at = statement_timestamp() + %s * interval '1 second'
           WHERE id = %s AND owner = %s AND fence = %s RETURNING expires_at""",
        (lease, claim.run_id, claim.owner, claim.fence),
    )
    if not rows:
        raise LeaseLost(claim.run_id, claim.owner, claim.fence)
    return _utc(rows[0][0])


def _abandoned(limit: int) -> _Program[tuple[Run, ...]]:
    rows = yield (
        f"""SELECT {_RUN_COLUMNS} FROM runlife_runs r
            WHERE r.status IN ('RUNNING', 'WAITING')
              AND (r.expires_at IS NULL OR r.expires_at <= statement_timestamp())
            ORDER BY r.expires_at NULLS FIRST, r.id LIMIT %s""",
        (limit,),
    )
    return tuple(_run_from_row(r) for r in rows)


def _due(statuses: list[str], limit: int) -> _Program[tuple[Run, ...]]:
    rows = yield (
        f"""SELECT {_RUN_COLUMNS} FROM runlife_runs r
            WHERE r.status = ANY(%s) AND r.due_at <= statement_timestamp()
            ORDER BY r.due_at, r.id LIMIT %s""",
        (statuses, limit),
    )
    return tuple(_run_from_row(r) for r in rows)


_TIME_COLUMN = {"created": "r.created_at", "started": "r.started_at", "ended": "r.ended_at"}


def _where(query: RunQuery) -> tuple[str, list[Any]]:
    """The WHERE clause (without the word) and parameters of a run query."""
    parts: list[str] = []
    params: list[Any] = []
    if query.job is not None:
        parts.append("r.job = %s")
        params.append(query.job)
    if query.status:
        parts.append("r.status = ANY(%s)")
        params.append(sorted(s.value for s in query.status))
    if query.trigger:
        parts.append("r.trigger = ANY(%s)")
        params.append(sorted(t.value for t in query.trigger))
    if query.labels:
        # "labels <> '{}'" lets the planner use the partial GIN index.
        parts.append("r.labels @> %s::jsonb AND r.labels <> '{}'")
        params.append(_codec.dumps(frozen_labels(query.labels), "labels"))
    if query.since is not None or query.until is not None:
        column = _TIME_COLUMN.get(query.field)
        if column is None:
            raise InvalidPolicy("field", query.field, "'created', 'started' or 'ended'")
        if query.since is not None:
            parts.append(f"{column} >= %s")
            params.append(aware(query.since))
        if query.until is not None:
            parts.append(f"{column} < %s")
            params.append(aware(query.until))
    if query.text:
        parts.append(
            "(r.job ILIKE %s OR r.error->>'message' ILIKE %s OR EXISTS "
            "(SELECT 1 FROM jsonb_each_text(r.labels) l WHERE l.value ILIKE %s))"
        )
        params.extend([_like(query.text)] * 3)
    if query.workflow_run_id is not None:
        parts.append("r.workflow_run_id = %s")
        params.append(query.workflow_run_id)
    if query.parent_id is not None:
        parts.append("r.parent_id = %s")
        params.append(query.parent_id)
    return (" AND ".join(parts) or "true"), params


def _list_runs(
    where: str, params: list[Any], after: tuple[datetime, str] | None, limit: int
) -> _Program[Page]:
    if after is not None:
        where += " AND (r.created_at, r.id) < (%s, %s)"
        params = [*params, *after]
    rows = yield (
        f"""SELECT {_RUN_COLUMNS} FROM runlife_runs r WHERE {where}
            ORDER BY r.created_at DESC, r.id DESC LIMIT %s""",
        (*params, limit + 1),
    )
    runs = tuple(_run_from_row(r) for r in rows[:limit])
    cursor = None
    if len(rows) > limit:
        last = runs[-1]
        cursor = _codec.encode_cursor(_codec.to_us(last.created_at), last.id)
    return Page(runs=runs, next_cursor=cursor)


def _count_runs(where: str, params: list[Any]) -> _Program[Mapping[Status, int]]:
    rows = yield (
        f"SELECT r.status, count(*) FROM runlife_runs r WHERE {where} GROUP BY r.status",
        params,
    )
    return {Status(s): n for s, n in rows}


def _check_claim(claim: Claim | None, run_id: str) -> _Program[tuple[str, str]]:
    """Lock the run's row; check *claim*; return the run's job and status."""
    rows = yield (
        "SELECT owner, fence, job, status FROM runlife_runs WHERE id = %s FOR UPDATE",
        (run_id,),
    )
    if not rows:
        raise RunNotFound(run_id)
    owner, fence, job, status = rows[0]
    if claim is not None and (
        claim.run_id != run_id or owner != claim.owner or fence != claim.fence
    ):
        raise LeaseLost(claim.run_id, claim.owner, claim.fence)
    return job, status


def _save_item(item: Item, output: str, error: str, claim: Claim | None) -> _Program[Item]:
    status = Status(item.status)
    yield _BEGIN
    job, run_status = yield from _check_claim(claim, item.run_id)
    rows = yield (
        "SELECT status FROM runlife_items WHERE run_id = %s AND key = %s",
        (item.run_id, item.key),
    )
    delta = [0] * 5
    if rows:
        delta[_PROGRESS.index(ItemCounts.bucket(Status(rows[0][0])))] -= 1
    delta[_PROGRESS.index(ItemCounts.bucket(status))] += 1
    rows = yield (
        f"""INSERT INTO runlife_items (run_id, key, phase, status, started_at, ended_at,
                attempts, error, output)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s::json, %s::json)
            ON CONFLICT (run_id, key) DO UPDATE SET phase = EXCLUDED.phase,
                status = EXCLUDED.status, started_at = EXCLUDED.started_at,
                ended_at = EXCLUDED.ended_at, attempts = EXCLUDED.attempts,
                error = EXCLUDED.error, output = EXCLUDED.output
            RETURNING {_ITEM_COLUMNS}, statement_timestamp()""",
        (item.run_id, item.key, item.phase, status.value, item.started_at,
         item.ended_at, item.attempts, error, output),
    )  # fmt: skip
    row = rows[0]
    yield (
        """UPDATE runlife_runs SET p_pending = p_pending + %s,
               p_running = p_running + %s, p_succeeded = p_succeeded + %s,
               p_failed = p_failed + %s, p_skipped = p_skipped + %s
           WHERE id = %s""",
        (*delta, item.run_id),
    )
    stored = _item_from_row(row)
    yield from _insert_event(
        item.run_id, job, "item", row[9], run_status, _item_json(stored, output)
    )
    yield _COMMIT
    return stored


def _items(run_id: str, status: str | None) -> _Program[tuple[Item, ...]]:
    rows = yield (
        f"""SELECT {_ITEM_COLUMNS} FROM runlife_items WHERE run_id = %s
            AND (%s::text IS NULL OR status = %s) ORDER BY ord""",
        (run_id, status, status),
    )
    return tuple(_item_from_row(r) for r in rows)


_INSERT_LOGS = f"""
INSERT INTO runlife_logs ({_LOG_COLUMNS})
SELECT e->>0, (e->>1)::bigint,
       'epoch'::timestamptz + (e->>2)::bigint * interval '1 microsecond',
       e->>3, e->>4, e->>5, e->>6, (e->>7)::int, e->8
FROM json_array_elements(%s::json) AS e
"""


def _append_logs(
    lines: list[LogLine], fields: list[str], claim: Claim | None
) -> _Program[tuple[LogLine, ...]]:
    per_run: dict[str, int] = {}
    for line in lines:
        per_run[line.run_id] = per_run.get(line.run_id, 0) + 1
    yield _BEGIN
    if claim is not None:
        yield from _check_claim(claim, claim.run_id)
    # Reserve each run's next numbers; runs in id order so appenders never deadlock.
    next_seq: dict[str, int] = {}
    for run_id in sorted(per_run):
        rows = yield (
            "UPDATE runlife_runs SET n_logs = n_logs + %s WHERE id = %s RETURNING n_logs",
            (per_run[run_id], run_id),
        )
        if not rows:
            raise RunNotFound(run_id)
        next_seq[run_id] = rows[0][0] - per_run[run_id] + 1
    stored: list[LogLine] = []
    encoded: list[str] = []
    for line, text in zip(lines, fields, strict=True):
        seq = next_seq[line.run_id]
        next_seq[line.run_id] = seq + 1
        at = _utc(aware(line.at))
        stored.append(
            LogLine(
                run_id=line.run_id,
                seq=seq,
                at=at,
                stream=line.stream,
                level=line.level,
                message=line.message,
                item=line.item,
                attempt=line.attempt,
                fields=_codec.loads(text),
            )
        )
        head = json.dumps([line.run_id, seq, _codec.to_us(at), line.stream, line.level,
                           line.message, line.item, line.attempt])  # fmt: skip
        encoded.append(head[:-1] + "," + text + "]")
    yield (_INSERT_LOGS, ("[" + ",".join(encoded) + "]",))
    yield (_NOTIFY, None)
    yield _COMMIT
    return tuple(stored)


def _logs(query: LogQuery, after: int) -> _Program[LogPage]:
    parts = ["run_id = %s", "seq > %s"]
    params: list[Any] = [query.run_id, after]
    for column, value in (("stream", query.stream), ("item", query.item), ("level", query.level)):
        if value is not None:
            parts.append(f"{column} = %s")
            params.append(value)
    rows = yield (
        f"SELECT {_LOG_COLUMNS} FROM runlife_logs WHERE {' AND '.join(parts)} "
        "ORDER BY seq LIMIT %s",
        (*params, query.limit + 1),
    )
    lines = tuple(_line_from_row(r) for r in rows[: query.limit])
    cursor = _codec.encode_cursor(lines[-1].seq) if len(rows) > query.limit else None
    return LogPage(lines=lines, next_cursor=cursor)


def _search_logs(run_id: str, pattern: str, limit: int) -> _Program[tuple[LogLine, ...]]:
    rows = yield (
        f"""SELECT {_LOG_COLUMNS} FROM runlife_logs WHERE run_id = %s AND message ILIKE %s
            ORDER BY seq LIMIT %s""",
        (run_id, pattern, limit),
    )
    return tuple(_line_from_row(r) for r in rows)


def _send_signal(run_id: str, name: str, payload: str) -> _Program[None]:
    rows = yield (
        f"""WITH sent AS (
                INSERT INTO runlife_signals (run_id, name, payload)
                SELECT id, %s, %s::json FROM runlife_runs WHERE id = %s
                ON CONFLICT (run_id, name) DO UPDATE SET payload = EXCLUDED.payload
                RETURNING run_id),
            woken AS (SELECT pg_notify('{_CHANNEL}', '') FROM sent LIMIT 1)
            SELECT sent.run_id FROM sent LEFT JOIN woken ON true""",
        (name, payload, run_id),
    )
    if not rows:
        raise RunNotFound(run_id)


def _signals(run_id: str) -> _Program[Mapping[str, Any]]:
    rows = yield (
        "SELECT name, payload FROM runlife_signals WHERE run_id = %s ORDER BY name",
        (run_id,),
    )
    return dict(rows)


def _events(after: int, run_id: str | None, limit: int) -> _Program[tuple[Event, ...]]:
    rows = yield (
        """SELECT seq, run_id, job, kind, at, status, body FROM runlife_events
           WHERE seq > %s AND (%s::text IS NULL OR run_id = %s) ORDER BY seq LIMIT %s""",
        (after, run_id, run_id, limit),
    )
    return tuple(_event_from_row(r) for r in rows)


def _purge_batch(cutoff: datetime, batch: int) -> _Program[int]:
    yield _BEGIN
    rows = yield (
        """DELETE FROM runlife_runs WHERE id IN (
               SELECT id FROM runlife_runs WHERE status = ANY(%s) AND ended_at < %s
               ORDER BY ended_at LIMIT %s FOR UPDATE SKIP LOCKED)
           RETURNING id""",
        (_TERMINAL_TEXT, cutoff, batch),
    )
    ids = [r[0] for r in rows]
    if ids:
        for table in ("transitions", "items", "logs", "signals", "events"):
            yield (f"DELETE FROM runlife_{table} WHERE run_id = ANY(%s)", (ids,))
        yield (_NOTIFY, None)
    yield _COMMIT
    return len(ids)
