"""The text of the store's statements, built from the column lists of ``rows.py``.

Only statement text lives here; values are always bound as parameters. The hot
writes take their runs as one JSON parameter (a row per run, `RUN_ROWS` and
`MOVE_ROWS`): one statement for any number of runs, one round trip, and the
driver binds one text value instead of thirty.

Moments travel as integer microseconds since the epoch; `ts` turns one into a
``timestamptz`` exactly (``n * interval '1 microsecond'`` is not exact: interval
multiplication goes through a double, which rounds microseconds far from 1970).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from runlife._core.codec import raw_dumps
from runlife._core.queries import RunQuery
from runlife.stores._postgres.rows import (
    CANCEL_COLUMNS,
    EVENT_COLUMNS,
    ITEM_COLUMNS,
    JOB_COLUMNS,
    LOG_COLUMNS,
    RUN_COLUMNS,
)
from runlife.stores._postgres.schema import EVENT_LOCK

CHANNEL: Final = "runlife"
"""The NOTIFY channel every write wakes."""


def ts(us: str) -> str:
    """SQL for the ``timestamptz`` *us* microseconds after the epoch, exact (NULL stays
    NULL): whole seconds and the microseconds left, each a product a double holds
    exactly."""
    return (
        f"(timestamptz 'epoch' + (({us}) / 1000000) * interval '1 second'"
        f" + mod({us}, 1000000) * interval '1 microsecond')"
    )


def us(moment: str) -> str:
    """SQL for the microseconds since the epoch of the ``timestamptz`` *moment*
    (exact: ``extract`` gives a numeric)."""
    return f"(extract(epoch FROM {moment}) * 1000000)::bigint"


def _names(columns: Sequence[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + c for c in columns)


NOTIFY: Final = f"SELECT pg_notify('{CHANNEL}', '')"
NOW: Final = "SELECT clock_timestamp()"
STATEMENT_TIME: Final = "SELECT statement_timestamp()"

# -- reading runs ----------------------------------------------------------------------

HISTORY: Final = f"""(SELECT coalesce(json_agg(json_build_object(
        'f', t.from_state, 't', t.to_state, 'at', {us("t.at")}, 'r', t.reason)
        ORDER BY t.n), '[]')
    FROM runlife_transitions t WHERE t.run_id = r.id)"""
"""A run's history as the codec's JSON array of transitions."""

RUN: Final = f"{_names(RUN_COLUMNS[:-1], 'r')}, {HISTORY}"
"""The select list of `rows.RUN_COLUMNS`, on ``runlife_runs r``."""

GET_RUN: Final = f"SELECT {RUN} FROM runlife_runs r WHERE r.id = %s"
GET_RUN_LOCKED: Final = f"{GET_RUN} FOR UPDATE OF r"
GET_RUNS: Final = f"SELECT {RUN} FROM runlife_runs r WHERE r.id = ANY(%s)"
GET_STORED: Final = f"""SELECT {RUN}, r.owner, r.fence,
        (r.expires_at IS NULL OR r.expires_at <= statement_timestamp())
    FROM runlife_runs r WHERE r.id = %s"""
"""A run, its hold (owner, fence) and whether its lease has lapsed."""
RUN_BY_KEY: Final = "SELECT id FROM runlife_runs WHERE job = %s AND idempotency_key = %s"
RUN_BY_SLOT: Final = (
    "SELECT id FROM runlife_runs WHERE job = %s AND trigger = 'SCHEDULED' AND scheduled_for = %s"
)
HOLDS: Final = """SELECT id, version, owner, fence,
        (expires_at IS NULL OR expires_at <= statement_timestamp())
    FROM runlife_runs WHERE id = ANY(%s)"""
"""Why a compare-and-set was refused: version, hold and lapse of each run."""

ABANDONED: Final = f"""SELECT {RUN} FROM runlife_runs r
    WHERE r.status IN ('RUNNING', 'WAITING')
      AND (r.expires_at IS NULL OR r.expires_at <= statement_timestamp())
    ORDER BY r.expires_at NULLS FIRST, r.id LIMIT %s"""
DUE: Final = f"""SELECT {RUN} FROM runlife_runs r
    WHERE r.status = ANY(%s) AND r.due_at <= statement_timestamp()
    ORDER BY r.due_at, r.id LIMIT %s"""


def list_runs(where: str) -> str:
    """A page of runs matching *where*, newest first."""
    return (
        f"SELECT {RUN} FROM runlife_runs r WHERE {where} "
        "ORDER BY r.created_at DESC, r.id DESC LIMIT %s"
    )


def count_runs(where: str) -> str:
    """How many runs matching *where* are in each status."""
    return f"SELECT r.status, count(*) FROM runlife_runs r WHERE {where} GROUP BY r.status"


TEXT_MATCH: Final = "EXISTS (SELECT 1 FROM unnest(r.search) s WHERE s LIKE %s)"
"""`RunQuery.text`: a lowered pattern against the run's lowered search terms."""
AFTER_CURSOR: Final = "(r.created_at, r.id) < (%s, %s)"
TIME_COLUMN: Final = {"created": "r.created_at", "started": "r.started_at", "ended": "r.ended_at"}

# -- writing runs ----------------------------------------------------------------------

RUN_ROWS: Final = """
    SELECT * FROM json_to_recordset(%s::json) AS v(
        ord int, id text, job text, status text, state text, trigger text,
        params json, result json, error json, labels jsonb, search text[], created_at bigint,
        scheduled_for bigint, queued_at bigint, started_at bigint, ended_at bigint,
        due_at bigint, attempts json, warnings json, parent_id text, root_id text,
        workflow_run_id text, idempotency_key text, priority int, n0 int, h json)"""
"""New runs as a table (`rows.new_run_row`); ``h`` holds their history."""

MOVE_ROWS: Final = """
    SELECT * FROM json_to_recordset(%s::json) AS v(
        ord int, id text, job text, status text, state text, result json, error json,
        labels jsonb, search text[], queued_at bigint, started_at bigint, ended_at bigint,
        due_at bigint, attempts json, warnings json, priority int, version bigint,
        n0 int, h json, expected bigint, owner text, fence bigint, only_if_lapsed boolean,
        counts bigint[])"""
"""Successors as a table (`rows.move_row`): their changed fields, their new history
rows ``h`` (numbered from ``n0``), and the conditions of their write (``counts``:
the item counts, pending to skipped, it expects, if any)."""


def _history_rows(written: str) -> str:
    # The new history rows of the runs *written* (a CTE with columns id and ord).
    return f"""
    SELECT w.id, v.n0 + (e.i - 1)::int, e.o->>'f', e.o->>'t', {ts("(e.o->>'at')::bigint")},
           e.o->>'r'
    FROM {written} w JOIN v ON v.ord = w.ord,
         json_array_elements(v.h) WITH ORDINALITY AS e(o, i)"""


def _events(written: str, status: str, also: str = "") -> str:
    # The events of the history rows of CTE hist, written after the event lock
    # (CTE ordered, taken only when there are events). The lock waits for every
    # other write of the statement: taken last, it is held for microseconds and
    # never while waiting for a row lock, so it cannot deadlock.
    return f"""
ordered AS MATERIALIZED (
    SELECT pg_notify('{CHANNEL}', ''),
           CASE WHEN c.n > 0 THEN pg_advisory_xact_lock({EVENT_LOCK}) END
    FROM (SELECT count(*) AS n FROM hist) c{also}),
events AS (
    INSERT INTO runlife_events (run_id, job, kind, at, status, body)
    SELECT h.run_id, v.job, 'transition', h.at, {status},
           json_build_object('f', h.from_state, 't', h.to_state, 'at', {us("h.at")},
                             'r', h.reason)
    FROM ordered, hist h JOIN {written} w ON w.id = h.run_id JOIN v ON v.ord = w.ord
    ORDER BY v.ord, h.n)"""


_NEW_COLUMNS: Final = """id, job, status, state, trigger, params, result, error, labels,
        search, created_at, scheduled_for, queued_at, started_at, ended_at, due_at,
        attempts, warnings, parent_id, root_id, workflow_run_id, idempotency_key,
        priority, version"""

INSERT_RUNS: Final = f"""
WITH v AS MATERIALIZED ({RUN_ROWS}),
w AS (
    INSERT INTO runlife_runs ({_NEW_COLUMNS})
    SELECT v.id, v.job, v.status, v.state, v.trigger, v.params, v.result, v.error, v.labels,
        v.search, {ts("v.created_at")}, {ts("v.scheduled_for")}, {ts("v.queued_at")},
        {ts("v.started_at")}, {ts("v.ended_at")}, {ts("v.due_at")}, v.attempts,
        v.warnings, v.parent_id, v.root_id, v.workflow_run_id, v.idempotency_key,
        v.priority, 0
    FROM v ORDER BY v.ord
    ON CONFLICT DO NOTHING
    RETURNING id, job, scheduled_for, trigger),
-- The input row of a written run: the first with its id (later ones conflicted).
w2 AS (SELECT DISTINCT ON (w.id) w.*, v.ord FROM w JOIN v ON v.id = w.id ORDER BY w.id, v.ord),
hist AS (
    INSERT INTO runlife_transitions (run_id, n, from_state, to_state, at, reason)
    {_history_rows("w2")}
    RETURNING run_id, n, from_state, to_state, at, reason),
slot AS (
    INSERT INTO runlife_jobs AS j (name, last_scheduled_for, updated_at)
    SELECT w.job, max(w.scheduled_for), statement_timestamp() FROM w
    WHERE w.trigger = 'SCHEDULED' AND w.scheduled_for IS NOT NULL GROUP BY w.job
    ON CONFLICT (name) DO UPDATE SET
        last_scheduled_for = GREATEST(j.last_scheduled_for, EXCLUDED.last_scheduled_for),
        updated_at = EXCLUDED.updated_at
    RETURNING 1),
{_events("w2", "v.status", also=", (SELECT count(*) FROM slot) s")}
SELECT ord FROM w2
UNION ALL SELECT -1 FROM ordered  -- so that ordered (the NOTIFY) always runs
"""
"""Create runs (`RUN_ROWS`): each run, its history and its events, and the schedule
slot of its job; a run whose id, idempotency key or slot is taken is skipped.
Returns the ``ord`` of each run written."""

_UPDATE_RUNS: Final = f"""
WITH v AS MATERIALIZED ({MOVE_ROWS}),
{{locked}}
w AS (
    UPDATE runlife_runs r SET status = v.status, state = v.state, result = v.result,
        error = v.error, labels = v.labels, search = v.search,
        queued_at = {ts("v.queued_at")}, started_at = {ts("v.started_at")},
        ended_at = {ts("v.ended_at")}, due_at = {ts("v.due_at")},
        attempts = v.attempts, warnings = v.warnings, priority = v.priority,
        version = v.version,
        owner = CASE WHEN v.status IN ('RUNNING', 'WAITING') THEN r.owner END,
        expires_at = CASE WHEN v.status IN ('RUNNING', 'WAITING') THEN r.expires_at END
    FROM v
    WHERE r.id = ANY(ARRAY(SELECT id FROM {{ids}})) AND r.id = v.id AND r.version = v.expected
      AND (v.owner IS NULL OR (r.owner = v.owner AND r.fence = v.fence))
      AND (NOT v.only_if_lapsed OR r.expires_at IS NULL
           OR r.expires_at <= statement_timestamp())
      AND (v.counts IS NULL
           OR ARRAY[r.p_pending, r.p_running, r.p_succeeded, r.p_failed, r.p_skipped]::bigint[]
              = v.counts)
    RETURNING r.id, v.ord, r.p_pending, r.p_running, r.p_succeeded, r.p_failed, r.p_skipped),
hist AS (
    INSERT INTO runlife_transitions (run_id, n, from_state, to_state, at, reason)
    {_history_rows("w")}
    RETURNING run_id, n, from_state, to_state, at, reason),
{_events("w", "v.status")}
SELECT ord, p_pending, p_running, p_succeeded, p_failed, p_skipped FROM w
UNION ALL SELECT -1, 0, 0, 0, 0, 0 FROM ordered  -- so that ordered (the NOTIFY) always runs
"""
# Several runs: lock their rows in id order before any write, so that concurrent
# batches never deadlock (ids = ANY(ARRAY(...)) makes it an index scan, whatever the
# planner guesses of v's size). One run: no lock to order, and none taken twice.
UPDATE_RUNS: Final = _UPDATE_RUNS.format(
    locked="""locked AS MATERIALIZED (
    SELECT r.id FROM runlife_runs r WHERE r.id = ANY(ARRAY(SELECT id FROM v))
    ORDER BY r.id FOR UPDATE),""",
    ids="locked",
)
"""Write successors (`MOVE_ROWS`) by compare-and-set on their version, checking
their claim and lapse; append their history rows and events. Returns the ``ord``
and item counts of each run written."""
UPDATE_RUN: Final = _UPDATE_RUNS.format(locked="", ids="v")
"""`UPDATE_RUNS` for one run."""

CLAIM_WRITE: Final = f"""
WITH v AS MATERIALIZED ({MOVE_ROWS}),
w AS (
    UPDATE runlife_runs r SET status = v.status, state = v.state, result = v.result,
        error = v.error, labels = v.labels, search = v.search,
        queued_at = {ts("v.queued_at")}, started_at = {ts("v.started_at")},
        ended_at = {ts("v.ended_at")}, due_at = {ts("v.due_at")},
        attempts = v.attempts, warnings = v.warnings, priority = v.priority,
        version = v.version, owner = %s, fence = r.fence + 1, expires_at = %s
    FROM v WHERE r.id = ANY(ARRAY(SELECT id FROM v)) AND r.id = v.id
    RETURNING r.id, v.ord, r.fence),
hist AS (
    INSERT INTO runlife_transitions (run_id, n, from_state, to_state, at, reason)
    {_history_rows("w")}
    RETURNING run_id, n, from_state, to_state, at, reason),
{_events("w", "v.status")}
SELECT ord, fence FROM w
UNION ALL SELECT -1, -1 FROM ordered  -- so that ordered (the NOTIFY) always runs
"""
"""Write claimed runs (`MOVE_ROWS`, their rows locked by the claim) with their new
owner, lease and fence; append their history rows and events. Returns the ``ord``
and new fence of each."""

# -- claims ----------------------------------------------------------------------------

LIMITED_JOBS: Final = """SELECT name, max_concurrency, per_label FROM runlife_jobs
    WHERE name = ANY(%s) AND (max_concurrency IS NOT NULL OR per_label <> '{}')
    ORDER BY name FOR UPDATE"""
"""Lock the rows of the limited jobs among those asked for, in name order (so that
claimers never deadlock)."""
LIVE_RUNS: Final = """SELECT job, labels FROM runlife_runs
    WHERE status IN ('RUNNING', 'WAITING') AND job = ANY(%s)"""


def candidates(after: bool) -> str:
    """QUEUED runs of the jobs ``%s`` in claim order, locked, skipping locked ones;
    with *after*, those past a keyset position (priority, created_at, id)."""
    keyset = (
        "AND (r.priority < %s OR (r.priority = %s AND (r.created_at, r.id) > (%s, %s)))"
        if after
        else ""
    )
    return f"""SELECT {RUN}, statement_timestamp() FROM runlife_runs r
    WHERE r.status = 'QUEUED' AND r.job = ANY(%s) {keyset}
    ORDER BY r.priority DESC, r.created_at, r.id
    LIMIT %s FOR UPDATE OF r SKIP LOCKED"""


HEARTBEAT: Final = """UPDATE runlife_runs SET expires_at = statement_timestamp() + %s
    WHERE id = %s AND owner = %s AND fence = %s AND status IN ('RUNNING', 'WAITING')
    RETURNING expires_at"""

# -- cancel requests ---------------------------------------------------------------------

RUN_STATUS_SHARED: Final = "SELECT status FROM runlife_runs WHERE id = %s FOR SHARE"
"""A run's status, its row locked against writers until the transaction ends."""
_CANCEL: Final = _names(CANCEL_COLUMNS)
SAVE_CANCEL: Final = f"""INSERT INTO runlife_cancel_requests ({_CANCEL})
    VALUES (%s, %s, %s, statement_timestamp()) ON CONFLICT (run_id) DO NOTHING
    RETURNING run_id"""
"""A run's cancel request; its first one stands (no row returned: one stood)."""
CANCEL_OF: Final = f"SELECT {_CANCEL} FROM runlife_cancel_requests WHERE run_id = %s"
CANCELS_OF: Final = f"SELECT {_CANCEL} FROM runlife_cancel_requests WHERE run_id = ANY(%s)"

# -- jobs ------------------------------------------------------------------------------

JOB: Final = _names(JOB_COLUMNS)
SAVE_JOB: Final = f"""WITH saved AS (
        INSERT INTO runlife_jobs AS j ({JOB})
        VALUES (%s, %s::json, %s, %s::jsonb, %s, %s, statement_timestamp())
        ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec,
            max_concurrency = EXCLUDED.max_concurrency, per_label = EXCLUDED.per_label,
            updated_at = EXCLUDED.updated_at
        RETURNING {JOB}),
    woken AS (SELECT pg_notify('{CHANNEL}', ''))
    SELECT saved.* FROM saved, woken"""
GET_JOB: Final = f"SELECT {JOB} FROM runlife_jobs WHERE name = %s"
JOB_SPEC: Final = "SELECT spec FROM runlife_jobs WHERE name = %s"
JOB_NAMES: Final = "SELECT name FROM runlife_jobs ORDER BY name LIMIT 100"
LIST_JOBS: Final = f"SELECT {JOB} FROM runlife_jobs ORDER BY name"
SET_PAUSED: Final = f"""WITH changed AS (
        UPDATE runlife_jobs SET paused = %s, updated_at = statement_timestamp()
        WHERE name = %s RETURNING {JOB}),
    woken AS (SELECT pg_notify('{CHANNEL}', '') FROM changed LIMIT 1)
    SELECT changed.* FROM changed LEFT JOIN woken ON true"""

# -- items -----------------------------------------------------------------------------

RUN_HOLD_LOCKED: Final = (
    "SELECT owner, fence, job, status FROM runlife_runs WHERE id = %s FOR UPDATE"
)
"""Lock a run's row; its hold, job and status."""
ITEM_STATUS: Final = "SELECT status FROM runlife_items WHERE run_id = %s AND key = %s"
SAVE_ITEM: Final = """INSERT INTO runlife_items (run_id, key, phase, status, started_at,
        ended_at, attempts, error, output)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s::json, %s::json)
    ON CONFLICT (run_id, key) DO UPDATE SET phase = EXCLUDED.phase,
        status = EXCLUDED.status, started_at = EXCLUDED.started_at,
        ended_at = EXCLUDED.ended_at, attempts = EXCLUDED.attempts,
        error = EXCLUDED.error, output = EXCLUDED.output"""
ADD_PROGRESS: Final = """UPDATE runlife_runs SET p_pending = p_pending + %s,
        p_running = p_running + %s, p_succeeded = p_succeeded + %s,
        p_failed = p_failed + %s, p_skipped = p_skipped + %s
    WHERE id = %s
    RETURNING p_pending, p_running, p_succeeded, p_failed, p_skipped"""
"""Move a run's item counts; the counts after."""
ITEM_STATUSES: Final = (
    "SELECT key, status FROM runlife_items WHERE run_id = %s AND key = ANY(%s::text[])"
)
SAVE_ITEMS: Final = f"""INSERT INTO runlife_items (run_id, key, phase, status, started_at,
        ended_at, attempts, error, output)
    SELECT %s, e.v->>0, e.v->>1, e.v->>2, {ts("(e.v->>3)::bigint")},
        {ts("(e.v->>4)::bigint")}, (e.v->>5)::integer, NULLIF((e.v->6)::text, 'null')::json,
        e.v->7
    FROM json_array_elements(%s::json) WITH ORDINALITY AS e(v, n) ORDER BY e.n
    ON CONFLICT (run_id, key) DO UPDATE SET phase = EXCLUDED.phase,
        status = EXCLUDED.status, started_at = EXCLUDED.started_at,
        ended_at = EXCLUDED.ended_at, attempts = EXCLUDED.attempts,
        error = EXCLUDED.error, output = EXCLUDED.output"""
"""Items of one run (distinct keys) as one JSON array of arrays (`rows.item_row`)."""
ITEMS: Final = f"""SELECT {_names(ITEM_COLUMNS)} FROM runlife_items WHERE run_id = %s
    AND (%s::text IS NULL OR status = %s) AND (%s::text IS NULL OR phase = %s)
    AND (%s::text IS NULL OR ord > (SELECT ord FROM runlife_items WHERE run_id = %s
                                    AND key = %s))
    ORDER BY ord LIMIT %s"""
"""A run's items of a status and phase (each NULL for any), after the item of a key
(NULL: from the first; no such item: none), at most a number of them (NULL: all)."""

# -- logs ------------------------------------------------------------------------------

RESERVE_LOGS: Final = (
    "UPDATE runlife_runs SET n_logs = n_logs + %s WHERE id = %s RETURNING n_logs, job, status"
)
INSERT_LOGS: Final = f"""
INSERT INTO runlife_logs (run_id, seq, at, stream, level, message, lowered, item, attempt,
    fields)
SELECT e->>0, (e->>1)::bigint, {ts("(e->>2)::bigint")}, e->>3, e->>4, e->>5, e->>6, e->>7,
       (e->>8)::int, e->9
FROM json_array_elements(%s::json) AS e"""
"""Log lines as one JSON array of arrays (`rows.log_row`)."""
LOG: Final = _names(LOG_COLUMNS)


def log_page(filters: Sequence[str]) -> str:
    """A page of one run's lines after a ``seq``, with *filters* (``column = %s``)."""
    where = " AND ".join(("run_id = %s", "seq > %s", *filters))
    return f"SELECT {LOG} FROM runlife_logs WHERE {where} ORDER BY seq LIMIT %s"


SEARCH_LOGS: Final = f"""SELECT {LOG} FROM runlife_logs
    WHERE run_id = %s AND coalesce(lowered, message) LIKE %s ORDER BY seq LIMIT %s"""

# -- signals and events ----------------------------------------------------------------

SEND_SIGNAL: Final = f"""WITH sent AS (
        INSERT INTO runlife_signals (run_id, name, payload)
        SELECT id, %s, %s::json FROM runlife_runs WHERE id = %s
        ON CONFLICT (run_id, name) DO UPDATE SET payload = EXCLUDED.payload
        RETURNING run_id),
    woken AS (SELECT pg_notify('{CHANNEL}', '') FROM sent LIMIT 1)
    SELECT sent.run_id FROM sent LEFT JOIN woken ON true"""
SIGNALS: Final = "SELECT name, payload FROM runlife_signals WHERE run_id = %s ORDER BY name"
INSERT_EVENT: Final = f"""
WITH ordered AS MATERIALIZED (SELECT pg_advisory_xact_lock({EVENT_LOCK})),
     woken AS MATERIALIZED (SELECT pg_notify('{CHANNEL}', ''))
INSERT INTO runlife_events (run_id, job, kind, at, status, body)
SELECT %s, %s, %s, statement_timestamp(), %s, %s::json FROM ordered, woken"""
"""One event at store time, after the event lock (the last statement of its
transaction: see `PostgresStore.events`)."""
INSERT_ITEM_EVENTS: Final = f"""
WITH ordered AS MATERIALIZED (SELECT pg_advisory_xact_lock({EVENT_LOCK})),
     woken AS MATERIALIZED (SELECT pg_notify('{CHANNEL}', ''))
INSERT INTO runlife_events (run_id, job, kind, at, status, body)
SELECT %s, %s, 'item', statement_timestamp(), %s, e.v
FROM ordered, woken, json_array_elements(%s::json) WITH ORDINALITY AS e(v, n) ORDER BY e.n"""
"""The events of items of one run (a JSON array of their bodies), after the event
lock, as `INSERT_EVENT`."""
INSERT_LOG_EVENTS: Final = f"""
WITH ordered AS MATERIALIZED (SELECT pg_advisory_xact_lock({EVENT_LOCK}))
INSERT INTO runlife_events (run_id, job, kind, at, status, body)
SELECT e->>0, e->>1, 'log', statement_timestamp(), e->>2, e->3
FROM ordered, json_array_elements(%s::json) WITH ORDINALITY AS r(e, n) ORDER BY r.n"""
"""The ``log`` events of one append (a JSON array of [run id, job, status, body]),
after the event lock, as `INSERT_EVENT` (the NOTIFY is the append's own)."""
EVENTS: Final = f"""SELECT {_names(EVENT_COLUMNS)} FROM runlife_events
    WHERE seq > %s AND (%s::text IS NULL OR run_id = %s) ORDER BY seq LIMIT %s"""

# -- retention -------------------------------------------------------------------------

PURGE_RUNS: Final = """DELETE FROM runlife_runs WHERE id IN (
        SELECT id FROM runlife_runs
        WHERE status = ANY(%s) AND ended_at < %s
        ORDER BY ended_at LIMIT %s FOR UPDATE SKIP LOCKED)
    RETURNING id"""
PURGE_OWNED: Final = tuple(
    f"DELETE FROM runlife_{table} WHERE run_id = ANY(%s)"
    for table in ("transitions", "items", "logs", "signals", "events", "cancel_requests")
)


# -- run queries -----------------------------------------------------------------------


def like(text: str) -> str:
    """A LIKE pattern matching *text* anywhere, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def run_filters(query: RunQuery, after: tuple[datetime, str] | None) -> tuple[str, list[Any]]:
    """The WHERE clause (without the word) and parameters of an admitted run query,
    continued after the keyset position *after*."""
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
        params.append(raw_dumps(dict(query.labels)))
    column = TIME_COLUMN[query.field]
    if query.since is not None:
        parts.append(f"{column} >= %s")
        params.append(query.since)
    if query.until is not None:
        parts.append(f"{column} < %s")
        params.append(query.until)
    if query.text:
        parts.append(TEXT_MATCH)
        params.append(like(query.text.lower()))
    if query.workflow_run_id is not None:
        parts.append("r.workflow_run_id = %s")
        params.append(query.workflow_run_id)
    if query.parent_id is not None:
        parts.append("r.parent_id = %s")
        params.append(query.parent_id)
    if after is not None:
        parts.append(AFTER_CURSOR)
        params.extend(after)
    return (" AND ".join(parts) or "true"), params
