"""`SQLiteStore`: the embedded default store, one durable file in WAL mode.

Every method first admits its arguments through the core (`runlife._core.admission`),
then reads through the pool of read connections or writes through the group
commit of the one writer connection (see ``commit.py``). Store time is the
database's clock, read inside the transaction that judges leases.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

import anyio
import attrs

from runlife._core import admission as admit
from runlife._core import codec
from runlife._core.claiming import LIVE, ClaimPlan, JobLimits, claim_reason
from runlife._core.lifecycle import DEFAULT_LIFECYCLE, Lifecycle
from runlife._core.queries import (
    CancelRequest,
    Claim,
    JobRecord,
    LogPage,
    LogQuery,
    Page,
    RunQuery,
)
from runlife._core.records import Event, Item, ItemCounts, LogLine
from runlife._core.run import Run
from runlife._core.spec import lifecycle_of
from runlife._core.status import TERMINAL, Status, Trigger
from runlife._core.values import INT64, check_int, check_lease, check_page, check_text, is_text
from runlife._threads import run_sync
from runlife.abc import Clock
from runlife.exceptions import (
    ConcurrentUpdate,
    InvalidValue,
    JobNotFound,
    LeaseLost,
    NotASuccessor,
    RunlifeError,
    RunNotFound,
)
from runlife.stores._base import StoreBase
from runlife.stores._batching import Batched
from runlife.stores._sqlite import rows, schema, sql
from runlife.stores._sqlite.commit import GroupCommit, Later, OpFn
from runlife.stores._sqlite.connections import Conn, Readers, connect, with_busy_retry
from runlife.stores._sqlite.errors import translate
from runlife.stores._sqlite.messages import MessageIds

__all__ = ("SQLiteStore",)

T = TypeVar("T")

_CACHE_SIZE: Final = 8192
_UNKNOWN: Final[Any] = object()  # not written by the batch so far
_URL_ESCAPES: Final = str.maketrans({"%": "%25", "?": "%3F", "#": "%23"})
_CLAIMABLE_ONE: Final = frozenset({Status.PENDING, Status.QUEUED})
_US: Final = timedelta(microseconds=1)
_loads = json.loads
_raw = codec.raw_dumps
_to_us = codec.to_us
_from_us = codec.from_us


class _Kept:
    """A run as this store last wrote it or read it in a write transaction.

    Its successor is checked against it instead of reading it back, while it is
    the stored run: same version and creation (versions only grow, so they name
    one content of a run; the creation tells it from a run that had its id before
    a purge). The caller may change the dicts of the run it was handed: copies of
    its params and labels tell whether it still is as stored.
    """

    __slots__ = ("created", "labels", "params", "run", "version")

    def __init__(self, run: Run, created: int, params: Any, labels: Mapping[str, str]) -> None:
        self.run = run
        self.version = run.version
        self.created = created
        self.params = params
        self.labels = labels

    def stored(self, version: int, created: int) -> Run | None:
        """The run, if it is the stored one at *version* of *created*."""
        run = self.run
        if (
            self.version != version
            or self.created != created
            or run.params != self.params
            or run.labels != self.labels
        ):
            return None
        return run


class SQLiteStore(StoreBase):
    """The embedded default store: one SQLite file in WAL mode, group-committed.

    Args:
        path: the database file (created with its schema when absent or empty).
        readers: how many read connections may work at once (1 to 64).
        busy_timeout: seconds SQLite itself waits for a lock held by another
            process before the store's own backoff takes over.
        lock_timeout: seconds a write may wait, in all, for the write lock before
            it fails with `StoreError`.
        clock: whose ``now()`` is the store's time (leases, claims, due times),
            for a runtime in virtual time (``runlife.testing.VirtualClock``) on a
            file; None: the database's clock. Every process sharing the file must
            then use the same clock.

    Raises:
        ~runlife.exceptions.InvalidValue: *path* is empty, holds a NUL character,
            or is ``:memory:`` (SQLite's in-memory database lives inside one
            connection and this store has several: use `MemoryStore`); or another
            argument is out of range.
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

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        readers: int = 4,
        busy_timeout: float = 1.0,
        lock_timeout: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        self.path = _check_path(path)
        self._now = None if clock is None else clock.now
        # Escaped only where a URL must be, so that open_store(store.url) opens it.
        self.url = "sqlite:///" + self.path.translate(_URL_ESCAPES)
        self._readers_n = check_int("readers", readers, (1, 64))
        self._busy_ms = round(admit.check_timeout("busy_timeout", busy_timeout) * 1000)
        self._lock_timeout = admit.check_timeout("lock_timeout", lock_timeout)
        self._writer: Conn | None = None
        self._commits: GroupCommit | None = None
        self._gets: Batched[str, Run] = Batched(self._read_runs)
        self._readers = Readers(
            self.path, self._busy_ms, self._lock_timeout, self._readers_n, self._now
        )
        self._changed: anyio.Event | None = None
        self._watch: Conn | None = None
        self._watch_lock = threading.Lock()
        self._data_version: int | None = None
        # run id -> the run as this store last wrote or read it in a write
        # transaction: a successor is checked against it instead of reading the run
        # back, when the stored version (and creation) says it is the same run.
        # Writer thread only.
        self._runs: dict[str, _Kept] = {}
        self._messages = MessageIds()  # writer thread only

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r}>"

    # -- opening and closing -------------------------------------------------------

    async def _open(self) -> None:
        if self._writer is None:
            await run_sync(self._open_writer)
        assert self._writer is not None
        self._changed = anyio.Event()
        # Changes count from the opening: a commit of another process between the
        # store's first read and its first wait_changed is one.
        await run_sync(self._poll_data_version)
        self._commits = GroupCommit(
            self._writer, self.path, self._lock_timeout, self._on_commit, self._on_flush
        )

    def _open_writer(self) -> None:
        try:
            raw = connect(self.path, self._busy_ms, now=self._now)
        except Exception as exc:
            error = translate(exc, self.path, "opening")
            if error is exc:
                raise
            raise error from exc
        try:
            version = with_busy_retry(
                lambda: schema.check(raw, self.path), self.path, self._lock_timeout
            )
            with_busy_retry(
                lambda: raw.execute("PRAGMA journal_mode = WAL").fetchone(),
                self.path,
                self._lock_timeout,
            )
            # NORMAL in WAL mode: a commit survives a crash of the process; only a
            # power loss may lose the last commits (never corrupting the file).
            raw.execute("PRAGMA synchronous = NORMAL")
            if version < schema.SCHEMA_VERSION:
                with_busy_retry(
                    lambda: schema.migrate(raw, self.path), self.path, self._lock_timeout
                )
        except BaseException as exc:
            raw.close()
            error = translate(exc, self.path, "opening")
            if error is exc:
                raise
            raise error from exc
        self._writer = Conn(raw)

    async def _close(self) -> None:
        # Wait (bounded) for the writes and reads in flight; whatever still runs
        # after that closes its connection itself when its statement is done.
        try:
            with anyio.move_on_after(self._lock_timeout + 5):
                if self._commits is not None:
                    await self._commits.idle()
                await self._readers.drain()
        finally:
            self._readers.close()
            if self._writer is not None:
                self._writer.close()
            with self._watch_lock:
                if self._watch is not None:
                    self._watch.close()
            if self._changed is not None:
                self._changed.set()

    # -- the two paths: group-committed writes and pooled reads --------------------

    def _write(self, name: str | None, fn: OpFn[T]) -> Awaitable[T]:
        # The group commit's own coroutine once the store is open: no frame between.
        if self._opened:
            assert self._commits is not None
            return self._commits.write(name, fn)
        return self._write_opening(name, fn)

    async def _write_opening(self, name: str | None, fn: OpFn[T]) -> T:
        await self._ensure_open()
        assert self._commits is not None
        return await self._commits.write(name, fn)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        await self._ensure_open()
        return await self._readers.read(fn)

    def _on_commit(self, later: Later) -> None:
        """What a committed batch taught the store (in the writer thread)."""
        cache = self._runs
        for run_id, entry in later.runs:
            cache.pop(run_id, None)
            if entry is not None:
                cache[run_id] = entry
        if len(cache) > _CACHE_SIZE:  # forget the older half at once (cheap, amortised)
            for run_id in list(itertools.islice(cache, len(cache) - _CACHE_SIZE // 2)):
                del cache[run_id]
        for job, spec in later.specs:
            self._learn(job, spec)

    def _on_flush(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = anyio.Event()

    # -- lifecycles --------------------------------------------------------------

    def _learn(self, job: str, spec: Mapping[str, Any] | None) -> Lifecycle | None:
        """Remember *job*'s lifecycle from its stored *spec* (forget it if the spec
        has none that works: the next write of the job reads it again and fails)."""
        try:
            return self._learn_spec(job, spec)
        except Exception:
            self._lifecycles.pop(job, None)
            return None

    async def _lifecycle(self, job: str, *, fresh: bool = False) -> Lifecycle:
        """*job*'s lifecycle: as last learnt, or (*fresh*, or never learnt) read now."""
        if not fresh:
            known = self._known_lifecycle(job)
            if known is not None:
                return known

        def read(conn: sqlite3.Connection) -> Any:
            row = conn.execute(sql.JOB_SPEC, (job,)).fetchone()
            return None if row is None else _loads(row[0])

        spec = await self._read(read)
        lifecycle = lifecycle_of(spec)
        self._learn(job, spec)
        return lifecycle

    @staticmethod
    def _lifecycle_in(conn: sqlite3.Connection, job: str, later: Later) -> Lifecycle:
        """*job*'s lifecycle as stored, read in the write transaction."""
        row = conn.execute(sql.JOB_SPEC, (job,)).fetchone()
        spec = None if row is None else _loads(row[0])
        lifecycle = lifecycle_of(spec)
        later.specs.append((job, spec))
        return lifecycle

    # -- time --------------------------------------------------------------------

    async def now(self) -> datetime:
        """The database's clock (SQLite's ``julianday('now')``, millisecond resolution)."""

        def read(conn: sqlite3.Connection) -> int:
            (us,) = conn.execute(f"SELECT {sql.NOW}").fetchone()
            return int(us)

        return _from_us(await self._read(read))

    # -- jobs --------------------------------------------------------------------

    async def save_job(self, job: JobRecord) -> JobRecord:
        """Insert or replace *job*, keeping the stored ``paused`` and ``last_scheduled_for``."""
        job = admit.admit_job(job)

        def op(conn: sqlite3.Connection, now: int, later: Later) -> JobRecord:
            conn.execute(sql.SAVE_JOB, rows.job_values(job, now))
            stored = _get_job(conn, job.name)
            later.specs.append((stored.name, stored.spec))
            return stored

        return await self._write(None, op)

    async def get_job(self, name: str) -> JobRecord:
        """The job's record; raises `JobNotFound`."""
        check_text("name", name)
        job = await self._read(lambda conn: _get_job(conn, name))
        self._learn(job.name, job.spec)
        return job

    async def list_jobs(self) -> tuple[JobRecord, ...]:
        """All job records, by name."""

        def read(conn: sqlite3.Connection) -> tuple[JobRecord, ...]:
            return tuple(rows.job_from_row(row) for row in conn.execute(sql.LIST_JOBS))

        jobs = await self._read(read)
        for job in jobs:
            self._learn(job.name, job.spec)
        return jobs

    async def set_paused(self, name: str, paused: bool) -> JobRecord:
        """Pause or unpause a job's schedule; raises `JobNotFound`."""
        check_text("name", name)
        flag = int(bool(paused))

        def op(conn: sqlite3.Connection, now: int, later: Later) -> JobRecord:
            conn.execute(sql.SET_PAUSED, (flag, now, name))
            stored = _get_job(conn, name)
            later.specs.append((stored.name, stored.spec))
            return stored

        return await self._write(None, op)

    # -- runs --------------------------------------------------------------------

    async def create_run(self, run: Run) -> Run:
        """Store a new run with its history and a ``transition`` event per history row.

        Returns the stored run: the existing one for a repeated id, idempotency key
        or schedule slot (a create retried after an ambiguous failure is safe).

        Raises:
            ~runlife.exceptions.InvalidValue: a field is not storable; ``run.version``
                is not 0.
            ~runlife.exceptions.NotASuccessor: its history is not a walk of its job's
                lifecycle.
            NotSerializable: params or result are not JSON (naming the field).
        """
        norm = await self._admit_new(run)
        params = _raw(norm.params)
        values = rows.run_insert_values(norm, params)
        labels = rows.label_rows(norm)
        events = rows.transition_event_values(norm, norm.history)
        slot = None
        if norm.trigger is Trigger.SCHEDULED and norm.scheduled_for is not None:
            slot = _to_us(norm.scheduled_for)
        created = _to_us(norm.created_at)
        out = rows.as_returned(norm)
        key = norm.idempotency_key

        def op(conn: sqlite3.Connection, now: int, later: Later) -> Run:
            existing = None
            if key is not None:
                existing = conn.execute(sql.RUN_BY_KEY, (norm.job, key)).fetchone()
            if existing is None and slot is not None:
                existing = conn.execute(sql.RUN_BY_SLOT, (norm.job, slot)).fetchone()
            if existing is None and conn.execute(sql.INSERT_RUN, values).rowcount == 0:
                existing = conn.execute(sql.GET_RUN, (norm.id,)).fetchone()  # the id is stored
            if existing is not None:
                return rows.run_from_row(existing)
            if labels:
                conn.executemany(sql.INSERT_LABEL, labels)
            later.events.extend(events)
            if slot is not None:
                conn.execute(sql.ADVANCE_SCHEDULE, (norm.job, slot, now))
            kept = _Kept(out, created, rows.json_copy(out.params), dict(out.labels))
            later.keep(norm.id, kept)
            return out

        return await self._write("create_run", op)

    async def _admit_new(self, run: Run) -> Run:
        job = run.job if isinstance(run, Run) else None
        if not is_text(job) or not job:
            return admit.admit_new(run, DEFAULT_LIFECYCLE)  # refuses it, naming the field
        assert isinstance(job, str)
        lifecycle = self._known_lifecycle(job)
        if lifecycle is None:
            return admit.admit_new(run, await self._lifecycle(job))
        try:
            return admit.admit_new(run, lifecycle)
        except (NotASuccessor, InvalidValue):
            # Learnt earlier: another process may have changed the job since.
            fresh = await self._lifecycle(job, fresh=True)
            if fresh is lifecycle:
                raise
            return admit.admit_new(run, fresh)

    async def get_run(self, run_id: str) -> Run:
        """The run, with its current progress; raises `RunNotFound`.

        Concurrent reads share one statement, and one trip to a reader thread
        (see `runlife.stores._batching`)."""
        check_text("run_id", run_id)
        return await self._gets.submit(run_id)

    async def _read_runs(self, run_ids: list[str]) -> list[Run | RunlifeError]:
        def read(conn: sqlite3.Connection) -> list[Run | RunlifeError]:
            unique = list(dict.fromkeys(run_ids))
            found = conn.execute(sql.get_runs(len(unique)), unique).fetchall()
            by_id = {row[0]: row for row in found}
            return [
                RunNotFound(rid) if (row := by_id.get(rid)) is None else rows.run_from_row(row)
                for rid in run_ids
            ]

        return await self._read(read)

    async def update_run(
        self,
        run: Run,
        *,
        expected_version: int,
        claim: Claim | None = None,
        only_if_lapsed: bool = False,
        expected_progress: ItemCounts | None = None,
    ) -> Run:
        """Write *run* if the stored version is *expected_version* (see `runlife.abc.Store`).

        The refusals come in this order, and nothing is written when one is raised.

        Raises:
            RunNotFound: no such run.
            LeaseLost: *claim* no longer matches the stored owner and fence.
            ConcurrentUpdate: the version differs, (*only_if_lapsed*) the lease
                still holds, or the item counts are not *expected_progress*.
            ~runlife.exceptions.NotASuccessor: *run* does not continue the stored run.
            ~runlife.exceptions.InvalidValue: a field is not storable.
            NotSerializable: its result is not JSON.
        """
        expected = check_int("expected_version", expected_version)
        if not isinstance(run, Run):
            raise InvalidValue("run", run, "a Run")
        run_id = run.id
        check_text("run.id", run_id)
        _check_claim_type(claim)
        counts = admit.check_expected_progress(expected_progress)

        guarded = claim is None or (claim.run_id == run_id and _bindable_claim(claim))
        # The checks against the stored run (hold, version, lease) as the guard of
        # the write, when the store keeps that run: see _move_kept.
        guard: tuple[Any, ...] = (run_id, expected)
        if claim is not None:
            guard += (claim.owner, claim.fence)

        def op(conn: sqlite3.Connection, now: int, later: Later) -> Run:
            moved = None
            if guarded:
                moved = self._move_kept(conn, later, run, guard, only_if_lapsed, counts, now)
            if moved is None:
                moved = self._move_read(
                    conn, later, run, expected, claim, only_if_lapsed, counts, now
                )
            norm, stored, created, params, progress = moved
            status = str(norm.status)
            same_labels = norm.labels == stored.labels
            if not same_labels or norm.priority != stored.priority:
                conn.execute(sql.SET_LABELS, (_raw(norm.labels), norm.priority, run_id))
            if not same_labels:
                conn.execute(sql.DELETE_LABELS, (run_id,))
                conn.executemany(sql.INSERT_LABEL, rows.label_rows(norm))
                # At the end too: an earlier write of this batch may have set a status.
                later.labels.append((status, run_id))
            elif norm.status is not stored.status and norm.labels:
                later.labels.append((status, run_id))
            out = rows.as_returned(norm, progress)
            # A terminal run never changes again: nothing to keep it for.
            kept = None if out.status in TERMINAL else _Kept(out, created, params, dict(out.labels))
            later.keep(run_id, kept)
            return out

        return await self._write("update_run", op)

    def _move_kept(
        self,
        conn: sqlite3.Connection,
        later: Later,
        run: Run,
        guard: tuple[Any, ...],
        only_if_lapsed: bool,
        counts: ItemCounts | None,
        now: int,
    ) -> tuple[Run, Run, int, Any, str | None] | None:
        """Write the successor *run* of the run this store keeps, without reading
        the run first: checked against the kept run, then written only if the
        stored run is that one, held under the claim and lapsed as asked (*guard*:
        the id, the expected version, and the claim's owner and fence if any).
        What was written (see `_move_read`), or None, having written nothing, if
        the store keeps no such run, the successor fails its checks, or the
        stored run is not as the guard wants: the caller then reads it and
        refuses the write with the error that comes first. Item counts other
        than *counts* (if given) refuse it once written: the batch takes the
        write back (see `GroupCommit`)."""
        run_id, expected = guard[0], guard[1]
        kept = self._kept_in(later, run_id)
        if kept is None:
            return None
        stored = kept.stored(expected, kept.created)
        if stored is None:
            return None
        try:
            norm, known = self._admit_successor(conn, stored, run, expected, later)
        except sqlite3.Error:
            raise  # reading the job's lifecycle failed: the transaction is in doubt
        except Exception:
            return None  # refused: the stored run tells which refusal comes first
        tail, events = rows.appended(norm, norm.history[known:])
        held = norm.status in LIVE
        values = rows.move_values(norm, None, None)
        if held:
            values = values[:-2]  # the hold stays as it is stored
        text = sql.move_guarded(held=held, claim=len(guard) > 2, lapsed=only_if_lapsed)
        args = (tail, *values, run_id, expected, kept.created, *guard[2:])
        found = conn.execute(text, (*args, now) if only_if_lapsed else args).fetchall()
        if not found:
            return None
        progress = found[0][0]
        if counts is not None:
            # Refused after the write: the batch takes it back (see GroupCommit).
            admit.check_progress(run_id, expected, rows.progress_from_text(progress), counts)
        later.events.extend(events)
        return norm, stored, kept.created, kept.params, progress

    def _move_read(
        self,
        conn: sqlite3.Connection,
        later: Later,
        run: Run,
        expected: int,
        claim: Claim | None,
        only_if_lapsed: bool,
        counts: ItemCounts | None,
        now: int,
    ) -> tuple[Run, Run, int, Any, str | None]:
        """Check the successor *run* against the stored run, read now, in the order
        of the refusals, and write it. The run as stored, the stored run before,
        its creation (µs), a copy of its params no caller holds and its
        ``progress`` column."""
        run_id = run.id
        head = conn.execute(sql.GET_HEAD, (run_id,)).fetchone()
        if head is None:
            raise RunNotFound(run_id)
        version, owner, fence, lease, created, progress = head
        if claim is not None and (
            claim.run_id != run_id or owner != claim.owner or fence != claim.fence
        ):
            raise LeaseLost(run_id, claim.owner, claim.fence)
        if version != expected:
            raise ConcurrentUpdate(run_id, expected, version)
        if only_if_lapsed and lease is not None and lease > now:
            raise ConcurrentUpdate(run_id, expected, version)
        if counts is not None:
            admit.check_progress(run_id, version, rows.progress_from_text(progress), counts)
        stored, params = self._stored(conn, later, run_id, version, created)
        norm, known = self._admit_successor(conn, stored, run, expected, later)
        tail, events = rows.appended(norm, norm.history[known:])
        hold = (owner, lease) if norm.status in LIVE else (None, None)
        conn.execute(sql.MOVE_RUN, (tail, *rows.move_values(norm, *hold), run_id))
        later.events.extend(events)
        return norm, stored, created, params, progress

    def _kept_in(self, later: Later, run_id: str) -> _Kept | None:
        """What the store keeps of *run_id* (writer thread), as the batch's earlier
        writes left it: None if it keeps nothing of it."""
        kept = later.kept(run_id, _UNKNOWN)
        if kept is _UNKNOWN:
            kept = self._runs.get(run_id)
        return kept  # type: ignore[no-any-return]

    def _stored(
        self, conn: sqlite3.Connection, later: Later, run_id: str, version: int, created: int
    ) -> tuple[Run, Any]:
        """The stored run *run_id* at *version* (writer thread), and a copy of its
        params no caller holds: as kept, if it is that one, else read in the
        transaction."""
        kept = self._kept_in(later, run_id)
        if kept is not None:
            run = kept.stored(version, created)
            if run is not None:
                return run, kept.params
        run = rows.run_from_row(conn.execute(sql.GET_RUN, (run_id,)).fetchone())
        return run, rows.json_copy(run.params)  # the run itself goes back to the caller

    def _admit_successor(
        self, conn: sqlite3.Connection, stored: Run, run: Run, expected: int, later: Later
    ) -> tuple[Run, int]:
        lifecycle = self._known_lifecycle(stored.job)
        if lifecycle is None:
            lifecycle = self._lifecycle_in(conn, stored.job, later)
            return admit.admit_successor(
                stored, run, expected_version=expected, lifecycle=lifecycle
            )
        try:
            return admit.admit_successor(
                stored, run, expected_version=expected, lifecycle=lifecycle
            )
        except (NotASuccessor, InvalidValue):
            # Learnt earlier: another process may have changed the job since.
            fresh = self._lifecycle_in(conn, stored.job, later)
            if fresh is lifecycle:
                raise
            return admit.admit_successor(stored, run, expected_version=expected, lifecycle=fresh)

    # -- claims --------------------------------------------------------------------

    async def claim(
        self,
        worker: str,
        jobs: Mapping[str, Lifecycle],
        *,
        limit: int,
        lease: float,
    ) -> tuple[Claim, ...]:
        """Claim up to *limit* QUEUED runs of *jobs* for *worker* (see `runlife.abc.Store`).

        Candidates are read in claim order (priority, then age, then id) with the
        live runs of the limited jobs counted in the same write transaction, so
        the limits hold across processes; `ClaimPlan` decides which to take.
        """
        span = admit.check_claim_args(worker, jobs, limit, lease)
        if limit == 0 or not jobs:
            return ()
        lease_us = span // _US
        lifecycles = dict(jobs)
        names = sorted(lifecycles)

        def op(conn: sqlite3.Connection, now: int, later: Later) -> tuple[Claim, ...]:
            limits: dict[str, JobLimits] = {}
            for row in conn.execute(sql.jobs_named(len(names)), names):
                record = rows.job_from_row(row)
                later.specs.append((record.name, record.spec))
                job_limits = JobLimits.of(record)
                if job_limits is not None:
                    limits[record.name] = job_limits
            live: list[tuple[str, Mapping[str, str]]] = []
            if limits:
                limited = sorted(limits)
                for job, labels in conn.execute(sql.live_runs(len(limited)), limited):
                    live.append((job, _loads(labels) if limits[job].per_label else {}))
            plan = ClaimPlan(worker, lifecycles, limits, now=_from_us(now), limit=limit, live=live)
            # A k-way merge of the jobs' queues in claim order, each queue with one row
            # in the heap; a queue is read on only while the plan may take from it, so
            # neither a full claim nor a job the plan closes (at its max_concurrency)
            # reads a row (or a chunk of rows) beyond what it takes.
            held: dict[str, tuple[int, int, Any]] = {}
            streams = [_queued(conn, name, limit) for name in names]
            heap = [(*first, index) for index, s in enumerate(streams) if (first := next(s, None))]
            heapq.heapify(heap)
            while heap and not plan.done:
                _, row, index = heapq.heappop(heap)
                name = names[index]
                if not plan.open(name):
                    continue
                candidate, created, fence, params = self._claimable(later, row)
                if plan.offer(candidate) is not None:
                    held[candidate.id] = (created, fence, params)
                if plan.open(name):
                    nxt = next(streams[index], None)
                    if nxt is not None:
                        heapq.heappush(heap, (*nxt, index))
            expires = now + lease_us
            until = _from_us(expires)
            writes: list[tuple[Any, ...]] = []
            claims = tuple(
                self._hold(later, writes, old, moved, *held[old.id], worker, expires, until)
                for old, moved in plan.taken
            )
            conn.executemany(sql.CLAIM_RUN, writes)
            return claims

        return await self._write("claim", op)

    def _claimable(self, later: Later, row: Sequence[Any]) -> tuple[Run, int, int, Any]:
        """The run of a `rows.CLAIMABLE_COLUMNS` row (writer thread), its creation
        (µs), its fence and a copy of its params no caller holds. A run this store
        keeps as it is stored is not decoded again: only its item counts are read
        from the row."""
        run_id, version, created, progress, fence = rows.claimable_state(row)
        kept = self._kept_in(later, run_id)
        run = None if kept is None else kept.stored(version, created)
        if kept is None or run is None:
            run = rows.claimable_from_row(row)
            return run, created, fence, rows.json_copy(run.params)
        fresh = rows.fresh_copy(run, rows.json_copy(kept.params), dict(kept.labels), progress)
        return fresh, created, fence, kept.params

    @staticmethod
    def _hold(
        later: Later,
        writes: list[tuple[Any, ...]],
        old: Run,
        moved: Run,
        created: int,
        fence: int,
        params: Any,
        worker: str,
        expires: int,
        until: datetime,
    ) -> Claim:
        """Record the claim of *old* (created at *created* µs, moved into RUNNING as
        *moved*) by *worker* until *expires* (µs; *until* as a moment): its
        `sql.CLAIM_RUN` values go to *writes*, its label and event rows to *later*;
        *params* is a copy of its params no caller holds (a claim changes neither
        params nor labels: the run is kept with that copy)."""
        tail, events = rows.appended(moved, moved.history[len(old.history) :])
        fence += 1
        writes.append((tail, *rows.move_values(moved, worker, expires), fence, old.id))
        if moved.labels and moved.status is not old.status:
            later.labels.append((str(moved.status), old.id))
        later.events.extend(events)
        later.keep(old.id, _Kept(moved, created, params, dict(moved.labels)))
        return Claim(run=moved, owner=worker, fence=fence, expires_at=until)

    async def claim_run(
        self, run_id: str, worker: str, lifecycle: Lifecycle, *, lease: float
    ) -> Claim:
        """Claim the PENDING or QUEUED run *run_id*, ignoring limits.

        Raises `ConcurrentUpdate` if it is no longer PENDING or QUEUED, `RunNotFound`
        if absent.
        """
        check_text("run_id", run_id)
        span = admit.check_claim_args(worker, {"run": lifecycle}, 1, lease)
        lease_us = span // _US

        def op(conn: sqlite3.Connection, now: int, later: Later) -> Claim:
            row = conn.execute(sql.CLAIMABLE_ONE, (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            run, created, fence, params = self._claimable(later, row)
            if run.status not in _CLAIMABLE_ONE:
                raise ConcurrentUpdate(run_id, run.version, run.version)
            moved = lifecycle.transition(
                run, Status.RUNNING, at=_from_us(now), reason=claim_reason(worker)
            )
            writes: list[tuple[Any, ...]] = []
            expires = now + lease_us
            claim = self._hold(
                later, writes, run, moved, created, fence, params, worker, expires,
                _from_us(expires),
            )  # fmt: skip
            conn.executemany(sql.CLAIM_RUN, writes)
            return claim

        return await self._write("claim", op)

    async def heartbeat(self, claim: Claim, *, lease: float) -> datetime:
        """Extend *claim*'s lease to store time + *lease*; raises `LeaseLost` if the
        claim no longer holds (a purged run included)."""
        lease_us = check_lease("lease", lease) // _US
        _check_claim_type(claim)
        assert claim is not None
        if not _bindable_claim(claim):
            raise LeaseLost(claim.run_id, claim.owner, claim.fence)
        args = (claim.run_id, claim.owner, claim.fence)

        def op(conn: sqlite3.Connection, now: int, later: Later) -> datetime:
            if conn.execute(sql.HEARTBEAT, (now + lease_us, *args)).rowcount == 0:
                # Taken over, ended, or purged: the hold is gone.
                raise LeaseLost(claim.run_id, claim.owner, claim.fence)
            return _from_us(now + lease_us)

        return await self._write(None, op)

    async def abandoned(self, *, limit: int = 100) -> tuple[Run, ...]:
        """RUNNING or WAITING runs whose lease has lapsed by store time (or that have
        none), oldest lapse first."""
        check_page("limit", limit)

        def read(conn: sqlite3.Connection) -> tuple[Run, ...]:
            return tuple(map(rows.run_from_row, conn.execute(sql.ABANDONED, (limit,))))

        return await self._read(read)

    async def request_cancel(
        self, run_id: str, *, by: str, reason: str | None = None
    ) -> CancelRequest | None:
        """Store a cancel request for a RUNNING or WAITING run, at store time (see
        `runlife.abc.Store`); the run's first request stands; None, storing
        nothing, for a run in another status; `RunNotFound`."""
        admit.check_cancel_request(run_id, by, reason)

        def op(conn: sqlite3.Connection, now: int, later: Later) -> CancelRequest | None:
            found = conn.execute(sql.RUN_STATUS, (run_id,)).fetchone()
            if found is None:
                raise RunNotFound(run_id)
            if Status(found[0]) not in LIVE:
                return None
            conn.execute(sql.SAVE_CANCEL, (run_id, by, reason, now))
            return rows.cancel_from_row(conn.execute(sql.CANCEL_OF, (run_id,)).fetchone())

        return await self._write(None, op)

    async def cancel_requests(self, run_ids: Collection[str]) -> Mapping[str, CancelRequest]:
        """The stored cancel requests of *run_ids* that have one, by run id (one read)."""
        wanted = admit.check_run_ids("run_ids", run_ids)
        if not wanted:
            return {}
        doc = json.dumps(wanted)

        def read(conn: sqlite3.Connection) -> Mapping[str, CancelRequest]:
            found = map(rows.cancel_from_row, conn.execute(sql.CANCELS_IN, (doc,)))
            return {request.run_id: request for request in found}

        return await self._read(read)

    async def due(self, statuses: Collection[Status], *, limit: int = 100) -> tuple[Run, ...]:
        """Runs in *statuses* whose ``due_at`` has come by store time, earliest first."""
        check_page("limit", limit)
        wanted = sorted(s.value for s in admit.check_statuses("statuses", statuses))
        if not wanted:
            return ()
        text = sql.due(len(wanted))

        def read(conn: sqlite3.Connection) -> tuple[Run, ...]:
            return tuple(map(rows.run_from_row, conn.execute(text, (*wanted, limit))))

        return await self._read(read)

    # -- queries -------------------------------------------------------------------

    async def list_runs(self, query: RunQuery) -> Page:
        """Runs matching *query*, newest first (by creation, then id), one page at a time.

        Several statuses are read as one index range each, merged here (the planner
        would otherwise sort every matching row to find the newest).
        """
        query, position = admit.admit_run_query(query)
        after = None if position is None else (_to_us(position[0]), position[1])
        limit = query.limit
        statuses: list[str | None] = [None]
        if query.status:
            statuses = [*sorted(s.value for s in query.status)]
        statements = [sql.select_runs(query, status, after, limit + 1) for status in statuses]

        def read(conn: sqlite3.Connection) -> Page:
            found = [conn.execute(text, args).fetchall() for text, args in statements]
            if len(found) == 1:
                page = found[0]
            else:
                merged = heapq.merge(*found, key=rows.newest_first, reverse=True)
                page = list(itertools.islice(merged, limit + 1))
            runs = tuple(map(rows.run_from_row, page[:limit]))
            cursor = None
            if len(page) > limit and runs:
                last = runs[-1]
                cursor = codec.encode_cursor(_to_us(last.created_at), last.id)
            return Page(runs=runs, next_cursor=cursor)

        return await self._read(read)

    async def count_runs(self, query: RunQuery) -> Mapping[Status, int]:
        """How many runs matching *query* (limit and cursor aside) are in each status."""
        if isinstance(query, RunQuery):
            query = _without_cursor(query)
        query, _ = admit.admit_run_query(query)
        text, args = sql.count_runs(query)

        def read(conn: sqlite3.Connection) -> Mapping[Status, int]:
            return {Status(s): n for s, n in conn.execute(text, args) if n}

        return await self._read(read)

    # -- items -----------------------------------------------------------------------

    async def save_item(self, item: Item, *, claim: Claim | None = None) -> Item:
        """Insert or replace the item ``(run_id, key)``, update the run's progress and
        write an ``item`` event. Raises `LeaseLost` for a stale *claim*, `RunNotFound`."""
        item = admit.admit_item(item)
        _check_claim_type(claim)
        output = _raw(item.output)
        values = rows.item_values(item, output)
        event = _raw(codec.item_to_json(item))
        run_id = item.run_id

        def op(conn: sqlite3.Connection, now: int, later: Later) -> Item:
            job, status, progress = _item_run(conn, run_id, claim)
            old = conn.execute(sql.ITEM_STATUS, (run_id, item.key)).fetchone()
            conn.execute(sql.SAVE_ITEM, values)
            (step,), counts = codec.counts_after_each(
                rows.progress_from_text(progress),
                [(None if old is None else Status(old[0]), item.status)],
            )
            conn.execute(sql.SET_PROGRESS, (rows.progress_text(counts), run_id))
            event_text = codec.with_counts(event, step)
            conn.execute(sql.INSERT_ITEM_EVENT, (run_id, job, now, status, event_text))
            return rows.item_as_returned(item, output)

        return await self._write(None, op)

    async def save_items(
        self, items: Sequence[Item], *, claim: Claim | None = None
    ) -> tuple[Item, ...]:
        """Insert or replace items of one run in order, in one transaction: one
        statement each for the items and their events, one lookup of the stored
        statuses per 500 keys, one progress update. Raises `LeaseLost` for a stale
        *claim*, `RunNotFound`."""
        _check_claim_type(claim)
        checked = admit.admit_items(items, None if claim is None else claim.run_id)
        if not checked:
            return ()
        outputs = ["null" if i.output is None else _raw(i.output) for i in checked]
        values = [rows.item_values(i, o) for i, o in zip(checked, outputs, strict=True)]
        events = list(map(rows.item_event_text, checked, values))
        run_id = checked[0].run_id
        keys = list(dict.fromkeys(item.key for item in checked))
        step = sql.ITEM_KEYS_AT_ONCE

        def op(conn: sqlite3.Connection, now: int, later: Later) -> tuple[Item, ...]:
            job, status, progress = _item_run(conn, run_id, claim)
            stored: dict[str, Status] = {}
            for first in range(0, len(keys), step):
                chunk = keys[first : first + step]
                for key, old in conn.execute(sql.item_statuses(len(chunk)), (run_id, *chunk)):
                    stored[key] = Status(old)
            moves = []
            for item in checked:
                moves.append((stored.get(item.key), item.status))
                stored[item.key] = item.status
            conn.executemany(sql.SAVE_ITEM, values)
            steps, counts = codec.counts_after_each(rows.progress_from_text(progress), moves)
            conn.execute(sql.SET_PROGRESS, (rows.progress_text(counts), run_id))
            conn.executemany(
                sql.INSERT_ITEM_EVENT,
                [
                    (run_id, job, now, status, codec.with_counts(event, step))
                    for event, step in zip(events, steps, strict=True)
                ],
            )
            return tuple(map(rows.item_as_returned, checked, outputs))

        return await self._write(None, op)

    async def items(
        self,
        run_id: str,
        status: Status | None = None,
        *,
        phase: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> tuple[Item, ...]:
        """The run's items in the order they were first saved, filtered and paged
        (see the protocol); none for an unknown run."""
        wanted = admit.check_item_query(run_id, status, phase, after, limit)
        text = sql.select_items(
            status=wanted is not None,
            phase=phase is not None,
            after=after is not None,
            limit=limit is not None,
        )
        args: list[Any] = [run_id]
        if wanted is not None:
            args.append(wanted.value)
        if phase is not None:
            args.append(phase)
        if after is not None:
            args += (run_id, after)
        if limit is not None:
            args.append(limit)

        def read(conn: sqlite3.Connection) -> tuple[Item, ...]:
            return tuple(map(rows.item_from_row, conn.execute(text, args)))

        return await self._read(read)

    # -- logs ------------------------------------------------------------------------

    async def append_logs(
        self, lines: Sequence[LogLine], *, claim: Claim | None = None
    ) -> tuple[LogLine, ...]:
        """Append *lines* in one transaction, numbering each run's lines on from its last.

        Raises `~runlife.exceptions.InvalidValue` for a line of another run than the
        claim's, `RunNotFound`, `LeaseLost` for a stale *claim*, `NotSerializable` for
        non-JSON fields.
        """
        _check_claim_type(claim)
        flat: list[bool] = []
        checked = admit.admit_lines(lines, None if claim is None else claim.run_id, flat=flat)
        if not checked and claim is None:
            return ()
        run_ids = list(dict.fromkeys(line.run_id for line in checked))
        messages = self._messages

        def op(conn: sqlite3.Connection, now: int, later: Later) -> tuple[LogLine, ...]:
            held: dict[str, tuple[Any, ...]] = {}
            for rid in run_ids:
                found = conn.execute(sql.ITEM_RUN, (rid,)).fetchone()
                if found is None:
                    raise RunNotFound(rid)
                held[rid] = found
            if claim is not None:
                hold = held.get(claim.run_id)
                if hold is None:
                    hold = conn.execute(sql.RUN_HOLD, (claim.run_id,)).fetchone()
                if hold is None or tuple(hold[:2]) != (claim.owner, claim.fence):
                    raise LeaseLost(claim.run_id, claim.owner, claim.fence)
            if not checked:
                return ()
            seqs = {rid: conn.execute(sql.LAST_SEQ, (rid,)).fetchone()[0] for rid in run_ids}
            before = dict(seqs)
            mids = messages.ids(conn, dict.fromkeys((li.run_id, li.message) for li in checked))
            stored, values = rows.log_rows(checked, flat, seqs, mids)
            conn.executemany(sql.INSERT_LOG, values)
            # One event per run of the batch, not per line (followers page the log).
            last = {line.run_id: line for line in stored}
            conn.executemany(
                sql.INSERT_LOG_EVENT,
                [
                    (rid, held[rid][3], now, held[rid][2],
                     rows.log_event_text(line, line.seq - before[rid]))
                    for rid, line in last.items()
                ],
            )  # fmt: skip
            return tuple(stored)

        return await self._write(None, op)

    async def logs(self, query: LogQuery) -> LogPage:
        """A page of the run's log lines after ``query.cursor``, in order."""
        query, after = admit.admit_log_query(query)
        limit = query.limit
        text, filters = sql.log_page(query)
        args = (query.run_id, after, *filters, limit + 1)

        def read(conn: sqlite3.Connection) -> LogPage:
            found = conn.execute(text, args).fetchall()
            lines = rows.page_from_rows(query.run_id, found[:limit])
            cursor = None
            if len(found) > limit and lines:
                cursor = codec.encode_cursor(lines[-1].seq)
            return LogPage(lines=lines, next_cursor=cursor)

        return await self._read(read)

    async def search_logs(
        self, run_id: str, text: str, *, limit: int = 1000
    ) -> tuple[LogLine, ...]:
        """Lines of the run's log whose message contains *text* (case-insensitive), in order.

        The run's messages (each distinct one stored once) are searched, through
        the FTS5 trigram index for needles of 3 characters or more, all of them for
        shorter ones; then its lines of the messages found.
        """
        admit.check_search(run_id, text, limit)
        needle = text.lower()

        def read(conn: sqlite3.Connection) -> tuple[LogLine, ...]:
            if not needle:
                return tuple(map(rows.log_from_row, conn.execute(sql.LOGS_OF, (run_id, limit))))
            first, last = conn.execute(sql.MID_RANGE, (run_id, run_id)).fetchone()
            if first is None:
                return ()
            found: Iterator[Sequence[Any]]
            if len(text) >= 3:
                phrase = '"' + text.replace('"', '""') + '"'
                found = conn.execute(sql.SEARCH_FTS, (phrase, first, last, run_id))
            else:
                found = conn.execute(sql.MESSAGES_OF, (run_id,))
            # The trigram match may be looser than Python's lower(): each message
            # found is checked again.
            mids = [mid for mid, message in found if needle in message.lower()]
            if not mids:
                return ()
            args = (run_id, json.dumps(mids), limit)
            return tuple(map(rows.log_from_row, conn.execute(sql.LOGS_WITH, args)))

        return await self._read(read)

    # -- signals and events ----------------------------------------------------------

    async def send_signal(self, run_id: str, name: str, payload: Any = None) -> None:
        """Store signal *name* with JSON *payload* for the run (replacing an earlier
        one); raises `RunNotFound`."""
        check_text("run_id", run_id)
        check_text("name", name, empty=False)
        data = codec.dumps(payload, f"signal {name!r} payload")

        def op(conn: sqlite3.Connection, now: int, later: Later) -> None:
            if conn.execute(sql.RUN_EXISTS, (run_id,)).fetchone() is None:
                raise RunNotFound(run_id)
            conn.execute(sql.SAVE_SIGNAL, (run_id, name, data, now))

        await self._write(None, op)

    async def signals(self, run_id: str) -> Mapping[str, Any]:
        """The run's delivered signals, by name (none for an unknown run)."""
        check_text("run_id", run_id)

        def read(conn: sqlite3.Connection) -> Mapping[str, Any]:
            return {name: _loads(p) for name, p in conn.execute(sql.SIGNALS_OF, (run_id,))}

        return await self._read(read)

    async def events(
        self, *, after: int | None = None, run_id: str | None = None, limit: int = 1000
    ) -> tuple[Event, ...]:
        """Stored events with ``seq`` greater than *after*, in order."""
        start = admit.check_events_args(after, run_id, limit)

        def read(conn: sqlite3.Connection) -> tuple[Event, ...]:
            if run_id is None:
                found = conn.execute(sql.EVENTS_AFTER, (start, limit))
            else:
                found = conn.execute(sql.EVENTS_OF_RUN, (run_id, start, limit))
            return tuple(map(rows.event_from_row, found))

        return await self._read(read)

    async def wait_changed(self, timeout: float) -> None:
        """Return when this process wrote, another process committed, or *timeout* passed.

        Writes of this store wake waiters at once; commits of other processes are
        seen by polling SQLite's ``data_version`` every 50 ms, counted from the
        store's opening: a commit made before the first wait is a change too.
        """
        seconds = admit.check_timeout("timeout", timeout)
        await self._ensure_open()
        with anyio.move_on_after(seconds):
            while not self._closed:
                changed = self._changed
                assert changed is not None
                with anyio.move_on_after(0.05):
                    await changed.wait()
                    return
                if await run_sync(self._poll_data_version):
                    return

    def _poll_data_version(self) -> bool:
        with self._watch_lock:
            if self._closed:
                return True
            try:
                if self._watch is None:
                    self._watch = Conn(connect(self.path, self._busy_ms, now=self._now))
                with self._watch.use() as raw:
                    (version,) = raw.execute("PRAGMA data_version").fetchone()
            except Exception as exc:
                error = translate(exc, self.path)
                if error is exc:
                    raise
                raise error from exc
            # The first look (at opening) only sets where changes count from.
            changed = self._data_version is not None and version != self._data_version
            self._data_version = version
            return changed

    # -- retention -------------------------------------------------------------------

    async def purge(
        self,
        *,
        older_than: datetime,
        batch: int = 1000,
        statuses: Collection[Status] | None = None,
    ) -> int:
        """Delete terminal runs (in *statuses*, if given) that ended before
        *older_than* with everything of theirs, *batch* runs per transaction; never
        an active run. Returns how many went.

        Each batch is a write of its own: a purge cancelled midway has deleted the
        batches before the cancellation, entirely, and nothing of the others.
        """
        moment, chosen = admit.check_purge_args(older_than, batch, statuses)
        cutoff = _to_us(moment)
        wanted = sorted(s.value for s in chosen)
        text = sql.purgeable(len(wanted))

        def op(conn: sqlite3.Connection, now: int, later: Later) -> int:
            found = conn.execute(text, (cutoff, *wanted, batch))
            ids = [(run_id,) for (run_id,) in found]
            for statement in sql.PURGE_OWNED:
                conn.executemany(statement, ids)
            conn.executemany(sql.PURGE_RUN, ids)
            for (run_id,) in ids:
                later.keep(run_id, None)
            return len(ids)

        total = 0
        while True:
            deleted = await self._write(None, op)
            total += deleted
            if deleted < batch:
                return total


def _check_path(path: object) -> str:
    expected = "a file path (for a store in memory, use MemoryStore: memory://)"
    try:
        text = os.fspath(path)  # type: ignore[call-overload]
    except TypeError:
        raise InvalidValue("path", path, expected) from None
    if not isinstance(text, str) or not text or text == ":memory:" or not is_text(text):
        raise InvalidValue("path", path, expected)
    if text.startswith("file:"):
        raise InvalidValue("path", path, "a file path, not a SQLite URI")
    return text


def _item_run(conn: sqlite3.Connection, run_id: str, claim: Claim | None) -> tuple[str, str, Any]:
    """The job, status and progress column of the run items are saved to (writer
    thread), its hold checked against *claim*."""
    row = conn.execute(sql.ITEM_RUN, (run_id,)).fetchone()
    if row is None:
        raise RunNotFound(run_id)
    owner, fence, status, job, progress = row
    if claim is not None and (
        claim.run_id != run_id or owner != claim.owner or fence != claim.fence
    ):
        raise LeaseLost(run_id, claim.owner, claim.fence)
    return job, status, progress


def _check_claim_type(claim: object) -> None:
    if claim is not None and not isinstance(claim, Claim):
        raise InvalidValue("claim", claim, "a Claim or None")


def _bindable_claim(claim: Claim) -> bool:
    """Whether *claim*'s values can be compared in SQL (a claim with others cannot
    be the store's: it holds nothing)."""
    fence = claim.fence
    return (
        is_text(claim.run_id)
        and is_text(claim.owner)
        and type(fence) is int
        and INT64[0] <= fence <= INT64[1]
    )


def _without_cursor(query: RunQuery) -> RunQuery:
    return attrs.evolve(query, cursor=None) if query.cursor is not None else query


def _get_job(conn: sqlite3.Connection, name: str) -> JobRecord:
    row = conn.execute(sql.GET_JOB, (name,)).fetchone()
    if row is None:
        known = [n for (n,) in conn.execute(sql.JOB_NAMES)]
        raise JobNotFound(name, known)
    return rows.job_from_row(row)


def _queued(
    conn: sqlite3.Connection, job: str, chunk: int
) -> Iterator[tuple[tuple[int, int, str], Sequence[Any]]]:
    """QUEUED runs of *job* in claim order with their positions, fetched *chunk*
    rows at a time so that writes never interleave with an open cursor."""
    chunk = max(chunk, 16)
    found = conn.execute(sql.QUEUED_FIRST, (job, chunk)).fetchall()
    while True:
        for row in found:
            yield rows.queue_position(row), row
        if len(found) < chunk:
            return
        neg_priority, created, run_id = rows.queue_position(found[-1])
        found = conn.execute(
            sql.QUEUED_AFTER, (job, neg_priority, created, run_id, chunk)
        ).fetchall()
