"""`PostgresStore`: the Store protocol on PostgreSQL, for many processes on many machines.

Every method checks its arguments with the core's admission rules
(``runlife._core.admission``) before any I/O, then runs one transaction
(``transactions.py``) on a pooled connection (``connection.py``). The store adds
what only a shared database needs: group commit of concurrent creates and
updates (``batching.py``), a cache of the runs it wrote or read so that the
successor check of ``update_run`` needs no extra read on the hot path
(``cache.py``), the lifecycle of each job read from its stored spec, and wake-ups
through LISTEN/NOTIFY.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, NamedTuple, TypeVar

import attrs

from runlife._core import admission as admit
from runlife._core import codec
from runlife._core.fast import compile_copier
from runlife._core.lifecycle import Lifecycle
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
from runlife._core.status import Status
from runlife._core.values import check_int, check_lease, check_page, check_text
from runlife._threads import run_sync
from runlife.exceptions import (
    ConcurrentUpdate,
    InvalidValue,
    LeaseLost,
    NotASuccessor,
    RunlifeError,
    RunNotFound,
    StoreError,
)
from runlife.stores._base import StoreBase
from runlife.stores._batching import Batched
from runlife.stores._postgres import rows, schema, sql
from runlife.stores._postgres import transactions as tx
from runlife.stores._postgres.cache import RunCache
from runlife.stores._postgres.connection import Connections, Listener, Program, parse_url
from runlife.stores._postgres.errors import DRIVER_ERRORS, store_error

__all__ = ("PostgresStore",)

T = TypeVar("T")

_NO_PROGRESS: Final = ItemCounts()
_LISTEN_SLICE: Final = 0.1
"""The longest one wait on the listening connection lasts (a cancelled
`wait_changed` ends within it)."""
_with_params = compile_copier(Run, ("params",))


class _New(NamedTuple):
    """A run to create: admitted, with its JSON parts as text, encoded."""

    run: Run
    params: str
    result: str
    row: str


class _Move(NamedTuple):
    """A successor to write: admitted against *stored_params*' run, encoded with
    the conditions of its write."""

    run: Run
    params: str
    stored_params: Mapping[str, Any]
    result: str
    row: str
    expected: int
    claim: Claim | None
    progress: ItemCounts | None


def _private(run: Run) -> tuple[Run, str]:
    """*run* (just read) with params nobody else holds, and its params' text."""
    text = codec.raw_dumps(run.params)
    return _with_params(run, params=codec.loads(text)), text


class PostgresStore(StoreBase):
    """A `Store` on PostgreSQL (``postgresql://user@host/db``), shared by many processes.

    Args:
        url: a libpq connection URL (``postgresql://`` or ``postgres://``); its
            query options go to libpq: ``?options=-csearch_path%3Dmyschema`` picks a
            schema, ``?connect_timeout=N`` how long a new connection may take to be
            answered (10 seconds unless given).
        min_size, max_size: the size of the connection pool.

    Raises:
        InvalidValue: *url* is not a PostgreSQL URL (shown without its password)
            or a pool size is out of range.

    Constructing the store does not connect: it connects (and creates or migrates
    its tables, under an advisory lock) on ``async with`` or on first use. It needs
    the ``postgres`` extra (``pip install runlife[postgres]``).

    >>> store = PostgresStore("postgresql://app:secret@db.example/app")
    >>> store.url
    'postgresql://app@db.example/app'
    """

    url: str

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        super().__init__()
        target = parse_url(url)
        check_int("min_size", min_size, (0, 10_000))
        check_int("max_size", max_size, (max(min_size, 1), 10_000))
        self.url = target.url
        self._target = target
        self._db = Connections(target, min_size=min_size, max_size=max_size)
        self._listener = Listener(self._db, sql.CHANNEL)
        self._runs = RunCache()
        self._creates: Batched[_New, Run] = Batched(self._write_creates)
        self._updates: Batched[_Move, Run] = Batched(self._write_updates)
        self._gets: Batched[str, Run] = Batched(self._read_runs)

    # -- opening and closing ------------------------------------------------------------

    async def _open(self) -> None:
        await run_sync(self._migrate)
        await self._db.open()
        # Changes count from the opening (see `Listener`).
        await run_sync(self._listener.start)

    def _migrate(self) -> None:
        conn = self._db.connect()
        try:
            schema.migrate(conn, self.url)
        except RunlifeError:
            raise
        except DRIVER_ERRORS as exc:
            raise store_error(exc, self._target) from exc
        finally:
            conn.close()

    async def _close(self) -> None:
        await run_sync(self._listener.close)
        await self._db.close()

    async def _call(self, fn: Callable[..., Program[T]], *args: Any) -> T:
        """Run the transaction ``fn(*args)`` (see `Connections.run`), opening the
        store first if need be."""
        if not self._opened:
            await self._ensure_open()
        return await self._db.run(fn, *args)

    # -- time ------------------------------------------------------------------------------

    async def now(self) -> datetime:
        """The database's clock (``clock_timestamp()``), in UTC."""
        moment: datetime = await self._call(tx.now)
        return moment

    # -- jobs and their lifecycles -----------------------------------------------------------

    async def save_job(self, job: JobRecord) -> JobRecord:
        """Insert or replace a job's record, keeping its stored schedule state."""
        job = admit.admit_job(job)
        spec = codec.raw_dumps(dict(job.spec))
        per_label = codec.raw_dumps(dict(job.per_label))
        return self._knows(await self._call(tx.save_job, job, spec, per_label))

    async def get_job(self, name: str) -> JobRecord:
        """The job's record; raises `JobNotFound`."""
        check_text("name", name)
        return self._knows(await self._call(tx.get_job, name))

    async def list_jobs(self) -> tuple[JobRecord, ...]:
        """All job records, by name."""
        jobs: tuple[JobRecord, ...] = await self._call(tx.list_jobs)
        return tuple(self._knows(job) for job in jobs)

    async def set_paused(self, name: str, paused: bool) -> JobRecord:
        """Pause or unpause a job's schedule; raises `JobNotFound`."""
        check_text("name", name)
        return self._knows(await self._call(tx.set_paused, name, bool(paused)))

    def _knows(self, job: JobRecord) -> JobRecord:
        """Remember the lifecycle of *job*, just read or written."""
        try:
            self._learn_spec(job.name, job.spec)
        except RunlifeError:  # a spec this runlife cannot read: ask again when needed
            self._lifecycles.pop(job.name, None)
        return job

    async def _lifecycle(self, job: str) -> tuple[Lifecycle, bool]:
        """The lifecycle of *job*, and whether it was read from the database just now."""
        known = self._known_lifecycle(job)
        if known is not None:
            return known, False
        return await self._read_lifecycle(job), True

    async def _read_lifecycle(self, job: str) -> Lifecycle:
        return self._learn_spec(job, await self._call(tx.job_spec, job))

    # -- runs ------------------------------------------------------------------------------

    async def create_run(self, run: Run) -> Run:
        """Store a new run (see `runlife.abc.Store.create_run`).

        A run whose id, idempotency key or schedule slot is already stored is
        not stored again: the stored run is returned, so a create retried after
        an ambiguous failure is safe.
        """
        _check_run(run)
        lifecycle, fresh = await self._lifecycle(run.job)
        try:
            norm = admit.admit_new(run, lifecycle)
        except (NotASuccessor, InvalidValue):
            if fresh:
                raise
            # The job's spec may have changed in another process: read it once more.
            norm = admit.admit_new(run, await self._read_lifecycle(run.job))
        params, result = codec.raw_dumps(norm.params), codec.raw_dumps(norm.result)
        new = _New(norm, params, result, rows.new_run_row(norm, params, result))
        return await self._creates.submit(new)

    async def _write_creates(self, batch: list[_New]) -> list[Run | RunlifeError]:
        written: set[int] = await self._call(tx.create_runs, rows.rows_json([n.row for n in batch]))
        out: list[Run | RunlifeError] = []
        for i, new in enumerate(batch):
            if i in written:
                self._runs.put(_with_params(new.run, params=codec.loads(new.params)), new.params)
                out.append(rows.with_json(new.run, new.params, new.result, _NO_PROGRESS))
            else:
                # Taken: the stored run is the answer. Only this call is concerned
                # (it wrote nothing), so only it hears of a failure to read it.
                try:
                    out.append(self._read(await self._call(tx.find_existing, new.run)))
                except RunlifeError as exc:
                    out.append(exc)
        return out

    def _read(self, run: Run) -> Run:
        """*run*, just read, cached as stored; the caller gets it as read."""
        self._runs.put(*_private(run))
        return run

    async def get_run(self, run_id: str) -> Run:
        """The run, with its current progress; raises `RunNotFound`.

        Concurrent reads share one statement (see `runlife.stores._batching`)."""
        check_text("run_id", run_id)
        return await self._gets.submit(run_id)

    async def _read_runs(self, run_ids: list[str]) -> list[Run | RunlifeError]:
        found = await self._call(tx.get_runs, run_ids)
        return [
            RunNotFound(rid) if run is None else self._read(run)
            for rid, run in zip(run_ids, found, strict=True)
        ]

    async def update_run(
        self,
        run: Run,
        *,
        expected_version: int,
        claim: Claim | None = None,
        only_if_lapsed: bool = False,
        expected_progress: ItemCounts | None = None,
    ) -> Run:
        """Write *run* by compare-and-set (see `runlife.abc.Store.update_run`).

        Refusals, in this order: `RunNotFound`; `LeaseLost` (*claim* is not the
        stored hold); `ConcurrentUpdate` (another version is stored, with
        *only_if_lapsed* the lease still holds, or the item counts are not
        *expected_progress*); then `NotASuccessor`, `InvalidValue` or
        `NotSerializable` from the successor check. Nothing is written when
        anything is refused.
        """
        check_int("expected_version", expected_version)
        if claim is not None and not isinstance(claim, Claim):
            raise InvalidValue("claim", claim, "a Claim or None")
        progress = admit.check_expected_progress(expected_progress)
        _check_run(run)
        lifecycle, fresh = await self._lifecycle(run.job)
        checked: tuple[Run, int] | None = None
        cached = self._runs.get(run.id)
        if cached is not None and (claim is None or claim.run_id == run.id):
            stored, stored_text = cached
            if stored.version == expected_version:
                try:
                    checked = admit.admit_successor(
                        stored, run, expected_version=expected_version, lifecycle=lifecycle
                    )
                except RunlifeError:
                    # Refused on what this store last saw: judge it on what is
                    # stored, in the order of refusals.
                    checked = None
        if checked is None:
            stored, stored_text, checked = await self._admit_stored(
                run, expected_version, claim, only_if_lapsed, progress, lifecycle, fresh
            )
        norm, known = checked
        result = codec.raw_dumps(norm.result)
        row = rows.move_row(
            norm, known, result, expected=expected_version,
            owner=None if claim is None else claim.owner,
            fence=None if claim is None else claim.fence, only_if_lapsed=bool(only_if_lapsed),
            counts=None if progress is None else rows.counts_row(progress),
        )  # fmt: skip
        move = _Move(
            norm, stored_text, stored.params, result, row, expected_version, claim, progress
        )
        return await self._updates.submit(move)

    async def _admit_stored(
        self,
        run: Run,
        expected: int,
        claim: Claim | None,
        only_if_lapsed: bool,
        progress: ItemCounts | None,
        lifecycle: Lifecycle,
        fresh: bool,
    ) -> tuple[Run, str, tuple[Run, int]]:
        """Read the stored run and check *run* against it, refusing in order."""
        found: tx.Stored | None = await self._call(tx.get_stored, run.id)
        if found is None:
            raise RunNotFound(run.id)
        stored, text = _private(found.run)
        self._runs.put(stored, text)
        if claim is not None and (
            claim.run_id != run.id or (found.owner, found.fence) != (claim.owner, claim.fence)
        ):
            raise LeaseLost(claim.run_id, claim.owner, claim.fence)
        if stored.version != expected or (only_if_lapsed and not found.lapsed):
            raise ConcurrentUpdate(run.id, expected, stored.version)
        admit.check_progress(run.id, stored.version, stored.progress, progress)
        try:
            checked = admit.admit_successor(
                stored, run, expected_version=expected, lifecycle=lifecycle
            )
        except (NotASuccessor, InvalidValue):
            if fresh:
                raise
            # The job's spec may have changed in another process: read it once more.
            checked = admit.admit_successor(
                stored, run, expected_version=expected,
                lifecycle=await self._read_lifecycle(run.job),
            )  # fmt: skip
        return stored, text, checked

    async def _write_updates(self, batch: list[_Move]) -> list[Run | RunlifeError]:
        doc = rows.rows_json([m.row for m in batch])
        written: dict[int, ItemCounts] = await self._call(tx.update_runs, doc, len(batch) > 1)
        refused = [m.run.id for i, m in enumerate(batch) if i not in written]
        holds: dict[str, tx.Hold] = {}
        failed: StoreError | None = None
        if refused:
            # Why: a fresh read, after any writer the statement waited for. Only
            # the refused calls are concerned (they wrote nothing).
            try:
                holds = await self._call(tx.holds, refused)
            except StoreError as exc:
                failed = exc
        out: list[Run | RunlifeError] = []
        for i, move in enumerate(batch):
            counts = written.get(i)
            if counts is not None:
                run = move.run
                self._runs.put(_with_params(run, params=move.stored_params), move.params)
                out.append(rows.with_json(run, move.params, move.result, counts))
            elif failed is not None:
                out.append(StoreError(*failed.args))
            else:
                out.append(_refusal(move, holds.get(move.run.id)))
        return out

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
        is passed over.
        """
        span = admit.check_claim_args(worker, jobs, limit, lease)
        if limit == 0 or not jobs:
            return ()
        taken, expires = await self._call(tx.claim, worker, dict(jobs), limit, span)
        if expires is None:
            return ()
        return tuple(self._hold(c, worker, expires) for c in taken)

    def _hold(self, claimed: tx.Claimed, worker: str, expires: datetime) -> Claim:
        run = claimed.run
        self._runs.put(run, claimed.params)
        handed = rows.with_json(run, claimed.params, claimed.result, run.progress)
        return Claim(run=handed, owner=worker, fence=claimed.fence, expires_at=expires)

    async def claim_run(
        self, run_id: str, worker: str, lifecycle: Lifecycle, *, lease: float
    ) -> Claim:
        """Claim one PENDING or QUEUED run, ignoring limits; `ConcurrentUpdate`
        if it is in another status, `RunNotFound` if absent."""
        check_text("run_id", run_id)
        span = admit.check_claim_args(worker, {"run": lifecycle}, 1, lease)
        claimed, expires = await self._call(tx.claim_run, run_id, worker, lifecycle, span)
        return self._hold(claimed, worker, expires)

    async def heartbeat(self, claim: Claim, *, lease: float) -> datetime:
        """Extend *claim*'s lease to store time + *lease*; `LeaseLost` if it no longer
        holds (or the run is no longer RUNNING or WAITING)."""
        span = check_lease("lease", lease)
        if not isinstance(claim, Claim):
            raise InvalidValue("claim", claim, "a Claim")
        expires: datetime = await self._call(tx.heartbeat, claim, span)
        return expires

    async def abandoned(self, *, limit: int = 100) -> tuple[Run, ...]:
        """Live runs whose lease lapsed by store time (or that have none), oldest lapse first."""
        check_page("limit", limit)
        runs: tuple[Run, ...] = await self._call(tx.abandoned, limit)
        return tuple(self._read(run) for run in runs)

    async def request_cancel(
        self, run_id: str, *, by: str, reason: str | None = None
    ) -> CancelRequest | None:
        """Store a cancel request for a RUNNING or WAITING run, at store time (see
        `runlife.abc.Store`); the run's first request stands; None, storing
        nothing, for a run in another status; `RunNotFound`."""
        admit.check_cancel_request(run_id, by, reason)
        request: CancelRequest | None = await self._call(tx.request_cancel, run_id, by, reason)
        return request

    async def cancel_requests(self, run_ids: Collection[str]) -> Mapping[str, CancelRequest]:
        """The stored cancel requests of *run_ids* that have one, by run id (one query)."""
        wanted = admit.check_run_ids("run_ids", run_ids)
        if not wanted:
            return {}
        found: Mapping[str, CancelRequest] = await self._call(tx.cancel_requests, list(wanted))
        return found

    async def due(self, statuses: Collection[Status], *, limit: int = 100) -> tuple[Run, ...]:
        """Runs in *statuses* whose ``due_at`` has come by store time, earliest first."""
        check_page("limit", limit)
        names = sorted(s.value for s in admit.check_statuses("statuses", statuses))
        runs: tuple[Run, ...] = await self._call(tx.due, names, limit)
        return tuple(self._read(run) for run in runs)

    async def list_runs(self, query: RunQuery) -> Page:
        """Runs matching *query*, newest first (by creation time, then id)."""
        query, after = admit.admit_run_query(query)
        where, params = sql.run_filters(query, after)
        page: Page = await self._call(tx.list_runs, where, params, query.limit)
        return page

    async def count_runs(self, query: RunQuery) -> Mapping[Status, int]:
        """How many runs matching *query* are in each status (zeros left out)."""
        if isinstance(query, RunQuery) and query.cursor is not None:
            query = attrs.evolve(query, cursor=None)
        query, _ = admit.admit_run_query(query)
        where, params = sql.run_filters(query, None)
        counts: Mapping[Status, int] = await self._call(tx.count_runs, where, params)
        return counts

    # -- items -----------------------------------------------------------------------------

    async def save_item(self, item: Item, *, claim: Claim | None = None) -> Item:
        """Insert or replace an item, keep its run's progress, write an ``item`` event."""
        item = admit.admit_item(item)
        if claim is not None and not isinstance(claim, Claim):
            raise InvalidValue("claim", claim, "a Claim or None")
        output = codec.raw_dumps(item.output)
        await self._call(tx.save_item, item, output, rows.item_note(item), claim)
        return attrs.evolve(item, output=codec.loads(output))

    async def save_items(
        self, items: Sequence[Item], *, claim: Claim | None = None
    ) -> tuple[Item, ...]:
        """Insert or replace items of one run in order, in one transaction of three
        statements (items, progress, events). Raises `LeaseLost` for a stale
        *claim*, `RunNotFound`."""
        if claim is not None and not isinstance(claim, Claim):
            raise InvalidValue("claim", claim, "a Claim or None")
        checked = admit.admit_items(items, None if claim is None else claim.run_id)
        if not checked:
            return ()
        outputs = [codec.raw_dumps(item.output) for item in checked]
        await self._call(tx.save_items, checked[0].run_id, checked, outputs, claim)
        return tuple(
            attrs.evolve(item, output=codec.loads(output))
            for item, output in zip(checked, outputs, strict=True)
        )

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
        found: tuple[Item, ...] = await self._call(
            tx.items, run_id, None if wanted is None else wanted.value, phase, after, limit
        )
        return found

    # -- logs ------------------------------------------------------------------------------

    async def append_logs(
        self, lines: Sequence[LogLine], *, claim: Claim | None = None
    ) -> tuple[LogLine, ...]:
        """Append *lines*, numbering each run's lines from 1 (see the protocol).

        Writes no event: a log line is not a change of a run (followers read the
        log from its cursor); `wait_changed` is still woken.
        """
        if claim is not None and not isinstance(claim, Claim):
            raise InvalidValue("claim", claim, "a Claim or None")
        checked = admit.admit_lines(lines, None if claim is None else claim.run_id)
        if not checked and claim is None:
            return ()
        fields = [codec.raw_dumps(dict(line.fields)) for line in checked]
        stored: tuple[LogLine, ...] = await self._call(tx.append_logs, checked, fields, claim)
        return stored

    async def logs(self, query: LogQuery) -> LogPage:
        """A page of the run's log lines after ``query.cursor``, in order."""
        query, after = admit.admit_log_query(query)
        page: LogPage = await self._call(tx.logs, query, after)
        return page

    async def search_logs(
        self, run_id: str, text: str, *, limit: int = 1000
    ) -> tuple[LogLine, ...]:
        """Lines whose message contains *text*, case-insensitively, in order.

        Case is folded by Python's ``str.lower()`` on both sides (the lowered
        message is stored when the line is written), as in every store. With
        pg_trgm a trigram index serves the match; without, the run's lines are
        scanned.
        """
        admit.check_search(run_id, text, limit)
        lines: tuple[LogLine, ...] = await self._call(
            tx.search_logs, run_id, sql.like(text.lower()), limit
        )
        return lines

    # -- signals and events ----------------------------------------------------------------

    async def send_signal(self, run_id: str, name: str, payload: Any = None) -> None:
        """Store signal *name* for the run (replacing an earlier one); `RunNotFound`."""
        check_text("run_id", run_id)
        check_text("name", name, empty=False)
        text = codec.dumps(payload, f"signal {name!r} payload")
        await self._call(tx.send_signal, run_id, name, text)

    async def signals(self, run_id: str) -> Mapping[str, Any]:
        """The run's delivered signals, by name (none for an unknown run)."""
        check_text("run_id", run_id)
        found: Mapping[str, Any] = await self._call(tx.signals, run_id)
        return found

    async def events(
        self, *, after: int | None = None, run_id: str | None = None, limit: int = 1000
    ) -> tuple[Event, ...]:
        """Stored events with ``seq`` greater than *after*, in order.

        Events commit in ``seq`` order (every write takes one advisory lock just
        before it inserts its events, as the last step of its statement), so a
        follower that continues after the last ``seq`` it saw never misses one.
        """
        start = admit.check_events_args(after, run_id, limit)
        found: tuple[Event, ...] = await self._call(tx.events, start, run_id, limit)
        return found

    async def wait_changed(self, timeout: float) -> None:
        """Return soon after another write to the store (LISTEN/NOTIFY, listening
        from the store's opening on), or after *timeout*.

        Waits in slices of at most a tenth of a second, so that several waiters
        share the one listening connection and a cancelled wait ends promptly.
        """
        seconds = admit.check_timeout("timeout", timeout)
        if not self._opened:
            await self._ensure_open()
        listener = self._listener
        deadline = time.monotonic() + seconds
        seen = listener.wakeups
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or listener.wakeups != seen or listener.closed:
                return
            await run_sync(listener.listen, min(left, _LISTEN_SLICE), seen)

    # -- retention -------------------------------------------------------------------------

    async def purge(
        self,
        *,
        older_than: datetime,
        batch: int = 1000,
        statuses: Collection[Status] | None = None,
    ) -> int:
        """Delete terminal runs (in *statuses*, if given) that ended before
        *older_than*, with all they own, one transaction per *batch* runs."""
        cutoff, chosen = admit.check_purge_args(older_than, batch, statuses)
        wanted = sorted(s.value for s in chosen)
        total = 0
        while True:
            n: int = await self._call(tx.purge_batch, cutoff, wanted, batch)
            total += n
            if n < batch:
                return total


def _check_run(run: object) -> None:
    """What a store must know of *run* before it can look anything up for it."""
    if not isinstance(run, Run):
        raise InvalidValue("run", run, "a Run")
    check_text("id", run.id, empty=False)
    check_text("job", run.job, empty=False)


def _refusal(move: _Move, hold: tx.Hold | None) -> RunlifeError:
    """Why the compare-and-set of *move* wrote nothing, judged on *hold* (read after it)."""
    run_id = move.run.id
    if hold is None:
        return RunNotFound(run_id)
    claim = move.claim
    if claim is not None and (hold.owner, hold.fence) != (claim.owner, claim.fence):
        return LeaseLost(claim.run_id, claim.owner, claim.fence)
    # Another version is stored, (only_if_lapsed) the lease still holds, or the
    # item counts are not those expected.
    why = None
    if hold.version == move.expected and move.progress is not None:
        why = "its items changed since the write was decided, or its lease still holds"
    return ConcurrentUpdate(run_id, move.expected, hold.version, why=why)
