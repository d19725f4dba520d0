"""The store's transactions, each written once for both drivers.

Each function returns a `Program`: a generator that yields statements and gets
their rows (``connection.py`` runs it). Arguments arrive admitted by the core
(``runlife._core.admission``) and encoded (``rows.py``); the programs persist
them and read what the store needs back.

No write is ever half done: every write is BEGIN ... COMMIT, with COMMIT as its
last statement. Rows are decoded, and the Python decisions made, inside the
transaction, so that any failure on the way (a statement, a row that cannot be
decoded, a cancellation) rolls it back; the only failure that leaves a caller in
doubt is one of the COMMIT itself. The group-committed writes (`create_runs`,
`update_runs`) are one statement between the two: the runs, their history rows,
their events. What a caller needs beyond their answer (the run that holds an
idempotency key, why a compare-and-set lost) is read by a separate transaction,
and concerns only calls that wrote nothing.

Failpoints (``runlife.stores._failpoints``) strike at ``<write>.before_commit``
(nothing is written) and ``<write>.after_commit`` (the write stands, the caller
hears of a failure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple

from runlife._core import codec
from runlife._core.claiming import ClaimPlan, JobLimits, claim_reason
from runlife._core.lifecycle import Lifecycle
from runlife._core.queries import CancelRequest, Claim, JobRecord, LogPage, LogQuery, Page
from runlife._core.records import Event, Item, ItemCounts, LogLine
from runlife._core.run import Run
from runlife._core.status import Status, Trigger
from runlife.exceptions import ConcurrentUpdate, JobNotFound, LeaseLost, RunNotFound
from runlife.stores._failpoints import hit
from runlife.stores._postgres import rows, sql
from runlife.stores._postgres.connection import BEGIN, COMMIT, Program

__all__ = (
    "Claimed",
    "Hold",
    "Stored",
    "abandoned",
    "append_logs",
    "cancel_requests",
    "claim",
    "claim_run",
    "count_runs",
    "create_runs",
    "due",
    "events",
    "find_existing",
    "get_job",
    "get_run",
    "get_stored",
    "heartbeat",
    "holds",
    "items",
    "job_spec",
    "list_jobs",
    "list_runs",
    "logs",
    "now",
    "purge_batch",
    "request_cancel",
    "save_item",
    "save_items",
    "save_job",
    "search_logs",
    "send_signal",
    "set_paused",
    "signals",
    "update_runs",
)


def _value(found: list[tuple[Any, ...]]) -> Any:
    """The one column of the one row a statement returned."""
    [(value,)] = found
    return value


def now() -> Program[datetime]:
    """The database's clock."""
    found = yield (sql.NOW, None)
    return rows.moment(_value(found))


# -- jobs ------------------------------------------------------------------------------


def save_job(job: JobRecord, spec: str, per_label: str) -> Program[JobRecord]:
    """Insert or replace a job's record, keeping its stored schedule state."""
    yield BEGIN
    found = yield (
        sql.SAVE_JOB,
        (job.name, spec, job.max_concurrency, per_label, job.paused, job.last_scheduled_for),
    )
    saved = rows.job_from_row(found[0])
    yield COMMIT
    return saved


def get_job(name: str) -> Program[JobRecord]:
    """A job's record; `JobNotFound` (naming some of the known jobs)."""
    found = yield (sql.GET_JOB, (name,))
    if not found:
        names = yield (sql.JOB_NAMES, None)
        raise JobNotFound(name, [n for (n,) in names])
    return rows.job_from_row(found[0])


def job_spec(name: str) -> Program[Mapping[str, Any] | None]:
    """A job's stored spec (None without a record)."""
    found = yield (sql.JOB_SPEC, (name,))
    return codec.loads(_value(found)) if found else None


def list_jobs() -> Program[tuple[JobRecord, ...]]:
    """Every job record, by name."""
    found = yield (sql.LIST_JOBS, None)
    return tuple(rows.job_from_row(r) for r in found)


def set_paused(name: str, paused: bool) -> Program[JobRecord]:
    """Pause or unpause a job's schedule; `JobNotFound`."""
    yield BEGIN
    found = yield (sql.SET_PAUSED, (paused, name))
    if not found:
        names = yield (sql.JOB_NAMES, None)
        raise JobNotFound(name, [n for (n,) in names])
    changed = rows.job_from_row(found[0])
    yield COMMIT
    return changed


# -- reading runs ----------------------------------------------------------------------


def get_run(run_id: str) -> Program[Run]:
    """A run; `RunNotFound`."""
    found = yield (sql.GET_RUN, (run_id,))
    if not found:
        raise RunNotFound(run_id)
    return rows.run_from_row(found[0])


def get_runs(run_ids: list[str]) -> Program[list[Run | None]]:
    """The runs of *run_ids*, in order (None where there is none; a repeated id is
    read into a run of its own)."""
    found = yield (sql.GET_RUNS, (list(dict.fromkeys(run_ids)),))
    by_id = {row[0]: row for row in found}
    return [None if (row := by_id.get(rid)) is None else rows.run_from_row(row) for rid in run_ids]


class Stored(NamedTuple):
    """A stored run and its hold, as a write is judged against them."""

    run: Run
    owner: str | None
    fence: int
    lapsed: bool


def get_stored(run_id: str) -> Program[Stored | None]:
    """A stored run with its hold and whether its lease has lapsed (None if absent)."""
    found = yield (sql.GET_STORED, (run_id,))
    if not found:
        return None
    return Stored(*rows.stored_from_row(found[0]))


def abandoned(limit: int) -> Program[tuple[Run, ...]]:
    """Live runs whose lease lapsed by store time, oldest lapse first."""
    found = yield (sql.ABANDONED, (limit,))
    return tuple(rows.run_from_row(r) for r in found)


def due(statuses: list[str], limit: int) -> Program[tuple[Run, ...]]:
    """Runs in *statuses* whose ``due_at`` has come, earliest first."""
    found = yield (sql.DUE, (statuses, limit))
    return tuple(rows.run_from_row(r) for r in found)


def list_runs(where: str, params: Sequence[Any], limit: int) -> Program[Page]:
    """A page of runs matching *where*, newest first."""
    found = yield (sql.list_runs(where), (*params, limit + 1))
    runs = tuple(rows.run_from_row(r) for r in found[:limit])
    cursor = None
    if len(found) > limit:
        last = runs[-1]
        cursor = codec.encode_cursor(codec.to_us(last.created_at), last.id)
    return Page(runs=runs, next_cursor=cursor)


def count_runs(where: str, params: Sequence[Any]) -> Program[Mapping[Status, int]]:
    """How many runs matching *where* are in each status."""
    found = yield (sql.count_runs(where), params)
    return {Status(status): n for status, n in found}


# -- writing runs ----------------------------------------------------------------------


def create_runs(doc: str) -> Program[set[int]]:
    """Create the runs of *doc* (`rows.rows_json` of `rows.new_run_row`) in one
    statement; the ``ord`` of each run written (the others are taken)."""
    yield BEGIN
    found = yield (sql.INSERT_RUNS, (doc,))
    out = {ord_ for (ord_,) in found if ord_ >= 0}
    hit("create_run.before_commit")
    yield COMMIT
    hit("create_run.after_commit")
    return out


def find_existing(run: Run) -> Program[Run]:
    """The stored run that kept *run* from being created: the run itself, or the one
    that holds its idempotency key or its schedule slot."""
    found = yield (sql.GET_RUN, (run.id,))
    if not found and run.idempotency_key is not None:
        ids = yield (sql.RUN_BY_KEY, (run.job, run.idempotency_key))
        found = (yield (sql.GET_RUN, (_value(ids),))) if ids else []
    if not found and run.trigger is Trigger.SCHEDULED and run.scheduled_for is not None:
        ids = yield (sql.RUN_BY_SLOT, (run.job, run.scheduled_for))
        found = (yield (sql.GET_RUN, (_value(ids),))) if ids else []
    if not found:
        # The conflicting run was purged between the insert and this read.
        raise ConcurrentUpdate(run.id, 0, None)
    return rows.run_from_row(found[0])


def update_runs(doc: str, several: bool) -> Program[dict[int, ItemCounts]]:
    """Write the successors of *doc* (`rows.rows_json` of `rows.move_row`) by
    compare-and-set, in one statement; the item counts of each run written, by ``ord``."""
    yield BEGIN
    found = yield (sql.UPDATE_RUNS if several else sql.UPDATE_RUN, (doc,))
    out = {ord_: rows.progress(*counts) for ord_, *counts in found if ord_ >= 0}
    hit("update_run.before_commit")
    yield COMMIT
    hit("update_run.after_commit")
    return out


class Hold(NamedTuple):
    """What decides whether a write of a run may go ahead."""

    version: int
    owner: str | None
    fence: int
    lapsed: bool


def holds(run_ids: list[str]) -> Program[dict[str, Hold]]:
    """The version and hold of each of *run_ids* that is stored."""
    found = yield (sql.HOLDS, (run_ids,))
    return {run_id: Hold(version, owner, fence, lapsed)
            for run_id, version, owner, fence, lapsed in found}  # fmt: skip


# -- claims ----------------------------------------------------------------------------


class Claimed(NamedTuple):
    """A run a claim took: as stored after the claim, with its JSON parts as text."""

    run: Run
    params: str
    result: str
    fence: int


def claim(
    worker: str, jobs: Mapping[str, Lifecycle], limit: int, lease: timedelta
) -> Program[tuple[tuple[Claimed, ...], datetime | None]]:
    """Claim up to *limit* QUEUED runs of *jobs* for *worker*; the runs taken and
    their lease's end.

    The rows of the limited jobs are locked first (in name order), then their live
    runs counted in a fresh snapshot (a new statement under READ COMMITTED, taken
    after the locks: every claim that committed before is counted), then QUEUED
    runs offered to a `ClaimPlan` in claim order, in batches, locked with SKIP
    LOCKED. Claimers of unlimited jobs never wait for one another.
    """
    names = sorted(jobs)
    yield BEGIN
    found = yield (sql.LIMITED_JOBS, (names,))
    limits = {name: JobLimits(cap, codec.loads(per_label)) for name, cap, per_label in found}
    live: list[tuple[str, Mapping[str, str]]] = []
    if limits:
        found = yield (sql.LIVE_RUNS, (list(limits),))
        live = [(job, codec.loads(labels)) for job, labels in found]
    plan: ClaimPlan | None = None
    open_names = names
    after: tuple[Any, ...] = ()
    # Without limits a batch of *limit* is usually enough (runs whose state has no
    # move into RUNNING are passed over, and the next batch read).
    batch = limit if not limits else max(4 * limit, 32)
    while open_names:
        found = yield (sql.candidates(bool(after)), (open_names, *after, batch))
        run: Run | None = None
        for row in found:
            run, at = rows.candidate_from_row(row)
            if plan is None:
                plan = ClaimPlan(worker, jobs, limits, now=at, limit=limit, live=live)
            if plan.open(run.job):
                plan.offer(run)
        if plan is None or run is None or plan.done or len(found) < batch:
            break
        after = (run.priority, run.priority, run.created_at, run.id)  # the keyset position
        open_names = [name for name in open_names if plan.open(name)]
    if plan is None or not plan.taken:
        yield COMMIT
        return (), None
    expires = plan.now + lease
    taken = yield from _write_claims(worker, plan.taken, expires)
    hit("claim.before_commit")
    yield COMMIT
    hit("claim.after_commit")
    return taken, expires


def _write_claims(
    worker: str, taken: Sequence[tuple[Run, Run]], expires: datetime
) -> Program[tuple[Claimed, ...]]:
    encoded: list[tuple[Run, str, str]] = []
    doc: list[str] = []
    for old, moved in taken:
        params, result = codec.raw_dumps(moved.params), codec.raw_dumps(moved.result)
        encoded.append((moved, params, result))
        doc.append(rows.move_row(moved, len(old.history), result))
    found = yield (sql.CLAIM_WRITE, (rows.rows_json(doc), worker, expires))
    fences = {ord_: fence for ord_, fence in found if ord_ >= 0}
    return tuple(
        Claimed(moved, params, result, fences[i])
        for i, (moved, params, result) in enumerate(encoded)
    )


def claim_run(
    run_id: str, worker: str, lifecycle: Lifecycle, lease: timedelta
) -> Program[tuple[Claimed, datetime]]:
    """Claim one PENDING or QUEUED run, ignoring limits; `ConcurrentUpdate` if it is
    in another status, `RunNotFound`."""
    yield BEGIN
    found = yield (sql.GET_RUN_LOCKED, (run_id,))
    if not found:
        raise RunNotFound(run_id)
    run = rows.run_from_row(found[0])
    if run.status is not Status.PENDING and run.status is not Status.QUEUED:
        raise ConcurrentUpdate(run_id, run.version, run.version)
    at = yield (sql.STATEMENT_TIME, None)
    start = rows.moment(_value(at))
    moved = lifecycle.transition(run, Status.RUNNING, at=start, reason=claim_reason(worker))
    expires = start + lease
    (taken,) = yield from _write_claims(worker, [(run, moved)], expires)
    hit("claim.before_commit")
    yield COMMIT
    hit("claim.after_commit")
    return taken, expires


def heartbeat(claim: Claim, lease: timedelta) -> Program[datetime]:
    """Extend *claim*'s lease to store time + *lease*; `LeaseLost` unless it holds."""
    yield BEGIN
    found = yield (sql.HEARTBEAT, (lease, claim.run_id, claim.owner, claim.fence))
    if not found:
        raise LeaseLost(claim.run_id, claim.owner, claim.fence)
    expires = rows.moment(_value(found))
    yield COMMIT
    return expires


# -- cancel requests ---------------------------------------------------------------------

_HELD: Final = ("RUNNING", "WAITING")


def request_cancel(run_id: str, by: str, reason: str | None) -> Program[CancelRequest | None]:
    """Store a cancel request for a RUNNING or WAITING run (its first one stands);
    None for a run in another status; `RunNotFound`.

    The run's row is locked (shared) first: no write moves it out of RUNNING or
    WAITING between the look at its status and the request.
    """
    yield BEGIN
    found = yield (sql.RUN_STATUS_SHARED, (run_id,))
    if not found:
        raise RunNotFound(run_id)
    if _value(found) not in _HELD:
        yield COMMIT
        return None
    saved = yield (sql.SAVE_CANCEL, (run_id, by, reason))
    if saved:
        yield (sql.NOTIFY, None)
    # A statement of its own: it sees a request another caller committed meanwhile.
    found = yield (sql.CANCEL_OF, (run_id,))
    request = rows.cancel_from_row(found[0])
    yield COMMIT
    return request


def cancel_requests(run_ids: list[str]) -> Program[dict[str, CancelRequest]]:
    """The cancel requests of *run_ids* that have one, by run id."""
    found = yield (sql.CANCELS_OF, (run_ids,))
    return {r.run_id: r for r in map(rows.cancel_from_row, found)}


# -- items -----------------------------------------------------------------------------


def _check_claim(claim: Claim | None, run_id: str) -> Program[tuple[str, str]]:
    """Lock the run's row; check *claim*; the run's job and status."""
    found = yield (sql.RUN_HOLD_LOCKED, (run_id,))
    if not found:
        raise RunNotFound(run_id)
    [(owner, fence, job, status)] = found
    if claim is not None and (
        claim.run_id != run_id or owner != claim.owner or fence != claim.fence
    ):
        raise LeaseLost(claim.run_id, claim.owner, claim.fence)
    return job, status


_BUCKETS = ("pending", "running", "succeeded", "failed", "skipped")


def save_item(item: Item, output: str, error: str | None, claim: Claim | None) -> Program[None]:
    """Insert or replace *item*, move its run's item counts, write its event."""
    yield BEGIN
    job, run_status = yield from _check_claim(claim, item.run_id)
    found = yield (sql.ITEM_STATUS, (item.run_id, item.key))
    delta = [0] * 5
    if found:
        delta[_BUCKETS.index(ItemCounts.bucket(Status(_value(found))))] -= 1
    delta[_BUCKETS.index(ItemCounts.bucket(item.status))] += 1
    yield (
        sql.SAVE_ITEM,
        (item.run_id, item.key, item.phase, item.status.value, item.started_at,
         item.ended_at, item.attempts, error, output),
    )  # fmt: skip
    after = yield (sql.ADD_PROGRESS, (*delta, item.run_id))
    (step,), _ = codec.counts_after_each(
        _counts_before(after, delta), [(None if not found else Status(_value(found)), item.status)]
    )
    body = codec.with_counts(rows.item_event_body(item, output), step)
    yield (sql.INSERT_EVENT, (item.run_id, job, "item", run_status, body))
    yield COMMIT


def _counts_before(after: list[tuple[Any, ...]], delta: Sequence[int]) -> ItemCounts:
    """A run's item counts before it moved by *delta*, from those *after* it
    (the row `sql.ADD_PROGRESS` returns)."""
    [moved] = after
    buckets = [int(n) - d for n, d in zip(moved, delta, strict=True)]
    return ItemCounts(total=sum(buckets), **dict(zip(_BUCKETS, buckets, strict=True)))


def save_items(
    run_id: str, items: Sequence[Item], outputs: Sequence[str], claim: Claim | None
) -> Program[None]:
    """Insert or replace *items* (admitted, of run *run_id*; *outputs* their outputs
    as JSON text) in order, move the run's item counts by all of them, write an
    event each."""
    yield BEGIN
    job, run_status = yield from _check_claim(claim, run_id)
    keys = list(dict.fromkeys(item.key for item in items))
    found = yield (sql.ITEM_STATUSES, (run_id, keys))
    stored = {key: Status(status) for key, status in found}
    delta = [0] * 5
    # One row per key (a statement may not update a row twice): its last state,
    # at the place of its first, which gives it its first-saved order.
    last: dict[str, str] = {}
    bodies: list[str] = []
    moves: list[tuple[Status | None, Status]] = []
    for item, output in zip(items, outputs, strict=True):
        old = stored.get(item.key)
        if old is not None:
            delta[_BUCKETS.index(ItemCounts.bucket(old))] -= 1
        delta[_BUCKETS.index(ItemCounts.bucket(item.status))] += 1
        moves.append((old, item.status))
        stored[item.key] = item.status
        last[item.key] = rows.item_row(item, output)
        bodies.append(rows.item_event_body(item, output))
    yield (sql.SAVE_ITEMS, (run_id, "[" + ",".join(last.values()) + "]"))
    after = yield (sql.ADD_PROGRESS, (*delta, run_id))
    steps, _ = codec.counts_after_each(_counts_before(after, delta), moves)
    bodies = list(map(codec.with_counts, bodies, steps))
    yield (sql.INSERT_ITEM_EVENTS, (run_id, job, run_status, "[" + ",".join(bodies) + "]"))
    yield COMMIT


def items(
    run_id: str, status: str | None, phase: str | None, after: str | None, limit: int | None
) -> Program[tuple[Item, ...]]:
    """A run's items in the order they were first saved, filtered and paged."""
    found = yield (
        sql.ITEMS, (run_id, status, status, phase, phase, after, run_id, after, limit)
    )  # fmt: skip
    return tuple(rows.item_from_row(r) for r in found)


# -- logs ------------------------------------------------------------------------------


def append_logs(
    lines: Sequence[LogLine], fields: Sequence[str], claim: Claim | None
) -> Program[tuple[LogLine, ...]]:
    """Append *lines* (admitted; *fields* their fields as JSON text), numbering each
    run's lines on from its last."""
    per_run: dict[str, int] = {}
    for line in lines:
        per_run[line.run_id] = per_run.get(line.run_id, 0) + 1
    yield BEGIN
    if claim is not None:
        yield from _check_claim(claim, claim.run_id)
    # Reserve each run's next numbers; runs in id order so appenders never deadlock.
    next_seq: dict[str, int] = {}
    runs: dict[str, tuple[str, str]] = {}
    for run_id in sorted(per_run):
        found = yield (sql.RESERVE_LOGS, (per_run[run_id], run_id))
        if not found:
            raise RunNotFound(run_id)
        [(n_logs, job, status)] = found
        next_seq[run_id] = n_logs - per_run[run_id] + 1
        runs[run_id] = (job, status)
    stored: list[LogLine] = []
    encoded: list[str] = []
    for line, text in zip(lines, fields, strict=True):
        seq = next_seq[line.run_id]
        next_seq[line.run_id] = seq + 1
        stored.append(
            LogLine(
                run_id=line.run_id,
                seq=seq,
                at=line.at,
                stream=line.stream,
                level=line.level,
                message=line.message,
                item=line.item,
                attempt=line.attempt,
                fields=codec.loads(text),
            )
        )
        encoded.append(rows.log_row(line, seq, text))
    if encoded:
        yield (sql.INSERT_LOGS, ("[" + ",".join(encoded) + "]",))
        yield (sql.NOTIFY, None)
        # One event per run of the append, naming its last line: the last statement.
        final: dict[str, LogLine] = {}
        for line in stored:
            final[line.run_id] = line
        told = [
            [run_id, *runs[run_id], {"lines": per_run[run_id], "line": codec.line_to_json(line)}]
            for run_id, line in final.items()
        ]
        yield (sql.INSERT_LOG_EVENTS, (codec.raw_dumps(told),))
    yield COMMIT
    return tuple(stored)


def logs(query: LogQuery, after: int) -> Program[LogPage]:
    """A page of one run's lines after *after*, filtered as *query* says."""
    filters: list[str] = []
    params: list[Any] = [query.run_id, after]
    for column, value in (("stream", query.stream), ("item", query.item), ("level", query.level)):
        if value is not None:
            filters.append(f"{column} = %s")
            params.append(value)
    found = yield (sql.log_page(filters), (*params, query.limit + 1))
    lines = tuple(rows.line_from_row(r) for r in found[: query.limit])
    cursor = codec.encode_cursor(lines[-1].seq) if len(found) > query.limit else None
    return LogPage(lines=lines, next_cursor=cursor)


def search_logs(run_id: str, pattern: str, limit: int) -> Program[tuple[LogLine, ...]]:
    """Lines whose lowered message is LIKE *pattern*, in order."""
    found = yield (sql.SEARCH_LOGS, (run_id, pattern, limit))
    return tuple(rows.line_from_row(r) for r in found)


# -- signals and events ----------------------------------------------------------------


def send_signal(run_id: str, name: str, payload: str) -> Program[None]:
    """Store (or replace) a run's signal; `RunNotFound`."""
    yield BEGIN
    found = yield (sql.SEND_SIGNAL, (name, payload, run_id))
    if not found:
        raise RunNotFound(run_id)
    yield COMMIT


def signals(run_id: str) -> Program[Mapping[str, Any]]:
    """A run's signals, by name."""
    found = yield (sql.SIGNALS, (run_id,))
    return {name: codec.loads(payload) for name, payload in found}


def events(after: int, run_id: str | None, limit: int) -> Program[tuple[Event, ...]]:
    """Events after *after* (of *run_id*, if given), in order."""
    found = yield (sql.EVENTS, (after, run_id, run_id, limit))
    return tuple(rows.event_from_row(r) for r in found)


# -- retention -------------------------------------------------------------------------


def purge_batch(cutoff: datetime, statuses: list[str], batch: int) -> Program[int]:
    """Delete up to *batch* runs in *statuses* (terminal ones) that ended before
    *cutoff*, with all they own."""
    yield BEGIN
    found = yield (sql.PURGE_RUNS, (statuses, cutoff, batch))
    ids = [run_id for (run_id,) in found]
    if ids:
        for statement in sql.PURGE_OWNED:
            yield (statement, (ids,))
        yield (sql.NOTIFY, None)
    yield COMMIT
    return len(ids)
