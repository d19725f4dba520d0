"""`MemoryStore`: the whole Store protocol in dicts, for tests and scripts.

It is meant to be obviously correct rather than clever: each method is one step
of the event loop (it never awaits once begun, so no other task sees it half
done, and a cancelled caller's call happens entirely: the caller meets its
cancellation at its next await), plain dicts, and a few
indexes (by status, by job and status, by idempotency key and schedule slot;
the QUEUED runs in heaps) so that unit tests with thousands of runs stay fast.
Values go through the shared JSON codec on the way in and out, so a run reads
back exactly as it would from SQLite or PostgreSQL (UTC datetimes, fresh copies
of params and results, `Status` members for canonical state names).
"""

from __future__ import annotations

import asyncio
import heapq
import operator
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final, Protocol

import anyio
import anyio.lowlevel
import attrs

from runlife._clock import SystemClock
from runlife._core import admission as admit
from runlife._core import codec
from runlife._core.claiming import LIVE, ClaimPlan, JobLimits, claim_order, claim_reason
from runlife._core.fast import compile_copier, compile_maker
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
from runlife._core.records import Event, Item, ItemCounts, LogLine, Transition
from runlife._core.run import Run
from runlife._core.status import Status, Trigger
from runlife._core.values import check_int, check_lease, check_moment, check_page, check_text
from runlife.exceptions import (
    ConcurrentUpdate,
    InvalidValue,
    JobNotFound,
    LeaseLost,
    RunNotFound,
)
from runlife.stores._base import StoreBase

__all__ = ("SNAPSHOT_VERSION", "MemoryStore")

SNAPSHOT_VERSION: Final = 1
"""The format version of `MemoryStore.snapshot` (its ``"version"`` key)."""

_CLAIMABLE_ONE = frozenset({Status.PENDING, Status.QUEUED})


class _Now(Protocol):
    def now(self) -> datetime: ...


def _time_of(run: Run, field: str) -> datetime | None:
    if field == "created":
        return run.created_at
    if field == "started":
        return run.started_at
    return run.ended_at


_Key = tuple[int, datetime, str]
"""A QUEUED run's place in the queue: its `claim_order`."""

_MERGED: Final = 64
"""Up to this many jobs, a claim merges their own queues."""

# Copies of the store's own values with a few fields changed, on the hot path of every
# read and write: attrs.evolve would check and convert every field again.
_json_parts: Callable[..., Run] = compile_copier(Run, ("params", "result"))
_as_read: Callable[..., Run] = compile_copier(Run, ("params", "result", "labels", "progress"))
_numbered: Callable[..., Event] = compile_copier(Event, ("seq",))

# A kept line, one tuple: at, stream, level, message, item, attempt, and its
# fields: flat ones (scalar values) as the tuple of their names and then their
# values, others as None and their JSON text. Its seq is its place in its run's
# list. A tuple of plain values is let go by the garbage collector at its first
# collection, a dict only at a full one, and each object a line keeps brings the
# next collection nearer: one tuple a line, and a log of millions of lines costs
# the collector little.
_Kept = tuple[Any, ...]
_NAMES_KEPT: Final = 4096
"""The field names a store keeps one tuple of, at most (names repeat from line to line)."""


class _Queue:
    """The QUEUED runs in claim order (`claim_order`): a heap of each job's runs
    and one of all, so that a claim pops the fronts however long the queue is.

    A run that leaves the queue stays in the heaps until it comes to a front
    (each entry is checked against ``_live``, the key each queued run has now);
    a heap of more stale entries than live ones is rebuilt.
    """

    __slots__ = ("_all", "_count", "_live", "_of")

    def __init__(self) -> None:
        self._all: list[_Key] = []
        self._of: dict[str, list[_Key]] = {}
        self._live: dict[str, _Key] = {}
        self._count: dict[str, int] = {}

    def __bool__(self) -> bool:
        return bool(self._live)

    @property
    def jobs(self) -> Mapping[str, int]:
        """How many runs of each job are queued (the jobs with any)."""
        return self._count

    def add(self, job: str, key: _Key) -> None:
        self._live[key[2]] = key
        self._count[job] = self._count.get(job, 0) + 1
        heapq.heappush(self._all, key)
        heapq.heappush(self._of.setdefault(job, []), key)

    def remove(self, job: str, run_id: str) -> None:
        del self._live[run_id]
        left = self._count[job] - 1
        if left:
            self._count[job] = left
            mine = self._of[job]
            if len(mine) > 2 * left + 64:
                self._of[job] = self._compact(mine)
        else:
            del self._count[job]
            del self._of[job]
        if len(self._all) > 2 * len(self._live) + 64:
            self._all = self._compact(self._all)

    def _compact(self, heap: list[_Key]) -> list[_Key]:
        live = self._live
        kept = [key for key in heap if live.get(key[2]) is key]
        heapq.heapify(kept)
        return kept

    def pop_merged(self, jobs: Iterable[str], n: int) -> list[_Key]:
        """Take up to *n* queued runs of *jobs* off their jobs' heaps, in claim order
        (put back those not claimed with `put_back`)."""
        live, of = self._live, self._of
        heads = [(heap[0], name) for name in jobs if (heap := of.get(name))]
        heapq.heapify(heads)
        out: list[_Key] = []
        while heads and len(out) < n:
            key, name = heads[0]
            heap = of[name]
            heapq.heappop(heap)
            if live.get(key[2]) is key:
                out.append(key)
            if heap:
                heapq.heapreplace(heads, (heap[0], name))
            else:
                heapq.heappop(heads)
        return out

    def put_back(self, jobs: Mapping[str, str], keys: Iterable[_Key]) -> None:
        """Put back on their jobs' heaps the keys of `pop_merged` still queued
        (*jobs*: each run's job, by id)."""
        live, of = self._live, self._of
        for key in keys:
            if live.get(key[2]) is key:
                heapq.heappush(of[jobs[key[2]]], key)

    def pop_all(self, n: int, wanted: Callable[[_Key], bool]) -> tuple[list[_Key], list[_Key]]:
        """Take up to *n* queued runs that are *wanted* off the heap of all, in
        claim order; and the others taken off it on the way (put both back with
        `put_back_all`)."""
        live, heap = self._live, self._all
        out: list[_Key] = []
        passed: list[_Key] = []
        while heap and len(out) < n:
            key = heapq.heappop(heap)
            if live.get(key[2]) is key:
                (out if wanted(key) else passed).append(key)
        return out, passed

    def put_back_all(self, keys: Iterable[_Key]) -> None:
        """Put back on the heap of all the keys of `pop_all` still queued."""
        live, heap = self._live, self._all
        for key in keys:
            if live.get(key[2]) is key:
                heapq.heappush(heap, key)


class _Step:
    """What a method's body runs in (``async with await self._use():``): one step of
    the event loop, nothing to hold."""

    __slots__ = ()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_STEP: Final = _Step()


_NO_ITEMS: Final = ItemCounts()
"""The counts of a run without items (shared: counts are values)."""


@attrs.define
class _Row:
    """One stored run: the run (without its JSON parts) and its hold."""

    run: Run
    params: str
    result: str
    owner: str | None = None
    fence: int = 0
    expires_at: datetime | None = None
    counts: ItemCounts = _NO_ITEMS
    items: dict[str, tuple[Item, str]] = attrs.Factory(dict)
    # Its log's lines; () until the first (a list is an object the garbage
    # collector traces at each full collection, empty or not, and most runs of a
    # large store have no lines).
    logs: Sequence[_Kept] = ()
    signals: dict[str, str] = attrs.Factory(dict)
    cancel: CancelRequest | None = None

    def log_list(self) -> list[_Kept]:
        """Its log's lines, to append to."""
        logs = self.logs
        if logs.__class__ is not list:
            logs = self.logs = []
        return logs


class MemoryStore(StoreBase):
    """A `Store` that keeps everything in memory (``memory://``): for tests and scripts.

    Args:
        clock: whose ``now()`` is the store's time (leases, claims, events); any
            object with a ``now()`` method returning an aware datetime will do, such
            as ``runlife.testing.VirtualClock``. `SystemClock` by default.
        snapshot: what `snapshot` gave, to start the store with (checked as a write
            would be; `InvalidValue` naming the field that is wrong, a newer format
            ``version`` included). A keyword of the constructor, not a second
            constructor, so that a store built on this one passes it on from its
            own ``__init__``.
        on_change: called with no arguments after each write that changed what
            the store holds (a lease's heartbeat included), before the write
            returns: the moment to save a `snapshot`. What it raises comes out of
            the write, whose change stays made.

    Everything is lost when the process ends, unless its `snapshot` is kept.
    Params, results, item outputs, log fields and signal payloads are stored as
    JSON text and parsed again on every read, so a memory store refuses what the
    SQL stores refuse and hands out copies.

    >>> import anyio
    >>> from datetime import datetime, UTC
    >>> from runlife import Run
    >>> async def main():
    ...     async with MemoryStore() as store:
    ...         run = await store.create_run(Run.create(job="backup", at=datetime.now(UTC)))
    ...         return (await store.get_run(run.id)).status
    >>> anyio.run(main)
    <Status.PENDING: 'PENDING'>
    """

    def __init__(
        self,
        *,
        clock: _Now | None = None,
        snapshot: Mapping[str, Any] | None = None,
        on_change: Callable[[], object] | None = None,
    ) -> None:
        super().__init__()
        self.url = "memory://"
        self._clock: _Now = clock if clock is not None else SystemClock()
        self._changed: anyio.Event | None = None
        self._change_futures: set[asyncio.Future[None]] = set()
        self._jobs: dict[str, JobRecord] = {}
        self._spec_texts: dict[str, tuple[Mapping[str, Any], str]] = {}
        # Each job's lifecycle, with the spec it was read from (every write needs it).
        self._lifecycle_of: dict[str, tuple[Mapping[str, Any] | None, Lifecycle]] = {}
        self._runs: dict[str, _Row] = {}
        self._names: dict[tuple[str, ...], tuple[str, ...]] = {}
        # Indexes; dicts used as insertion-ordered sets.
        self._by_status: dict[Status, dict[str, None]] = {s: {} for s in Status}
        # The runs with a due time, by status: heaps of (due_at, run id), whose
        # entries go stale as runs move and are dropped when they come up.
        self._due: dict[Status, list[tuple[datetime, str]]] = {s: [] for s in Status}
        self._by_job_status: dict[tuple[str, Status], dict[str, None]] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._by_slot: dict[tuple[str, datetime], str] = {}
        self._queue = _Queue()
        self._events: list[Event | _Moved] = []
        self._event_seqs: list[int] = []
        self._event_outputs: dict[int, str] = {}
        self._event_lines: dict[int, tuple[str, int]] = {}
        self._next_event = 1
        self._on_change = on_change
        if snapshot is not None:
            self._restore(snapshot)

    def __repr__(self) -> str:
        return f"<MemoryStore {len(self._runs)} runs>"

    # -- opening and closing ---------------------------------------------------

    async def _open(self) -> None:
        return None

    async def _close(self) -> None:
        self._notify_waiters()

    async def _use(self) -> _Step:
        """Open the store if need be: the method's body that follows runs without
        awaiting, in one step."""
        if not self._opened:
            await self._ensure_open()
        return _STEP

    def _notify(self) -> None:
        self._notify_waiters()
        if self._on_change is not None:
            self._on_change()

    def _notify_waiters(self) -> None:
        # What a wait waits on exists only while somebody waits for a change.
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        if self._change_futures:
            futures, self._change_futures = self._change_futures, set()
            for future in futures:
                _settle(future)

    async def now(self) -> datetime:
        """The clock's now, in UTC."""
        async with await self._use():
            return self._now()

    def _now(self) -> datetime:
        now = check_moment("clock.now()", self._clock.now())
        assert now is not None
        return now

    def _lifecycle(self, job: str) -> Lifecycle:
        record = self._jobs.get(job)
        spec = None if record is None else record.spec
        known = self._lifecycle_of.get(job)
        if known is not None and known[0] is spec:  # a record's spec is never changed
            return known[1]
        lifecycle = self._learn_spec(job, spec)
        self._lifecycle_of[job] = (spec, lifecycle)
        return lifecycle

    # -- jobs --------------------------------------------------------------------

    async def save_job(self, job: JobRecord) -> JobRecord:
        """Insert or replace a job's record, keeping its stored schedule state."""
        job = admit.admit_job(job)
        spec = codec.raw_dumps(dict(job.spec))
        async with await self._use():
            old = self._jobs.get(job.name)
            stored = attrs.evolve(
                job,
                spec=codec.loads(spec),
                paused=old.paused if old is not None else job.paused,
                last_scheduled_for=(
                    old.last_scheduled_for if old is not None else job.last_scheduled_for
                ),
                updated_at=self._now(),
            )
            self._jobs[job.name] = stored
            self._notify()
            return self._copy_job(stored)

    async def get_job(self, name: str) -> JobRecord:
        """The job's record; raises `JobNotFound`."""
        check_text("name", name)
        async with await self._use():
            return self._copy_job(self._job(name))

    def _copy_job(self, job: JobRecord) -> JobRecord:
        """A copy of the stored *job* to hand out (its spec parsed from its JSON,
        which is kept while the stored spec is the same)."""
        kept = self._spec_texts.get(job.name)
        if kept is None or kept[0] is not job.spec:
            kept = self._spec_texts[job.name] = (job.spec, codec.raw_dumps(dict(job.spec)))
        return _job_copy(job, spec=codec.loads(kept[1]), per_label=dict(job.per_label))

    def _job(self, name: str) -> JobRecord:
        try:
            return self._jobs[name]
        except KeyError:
            raise JobNotFound(name, self._jobs) from None

    async def list_jobs(self) -> tuple[JobRecord, ...]:
        """All job records, by name."""
        async with await self._use():
            return tuple(self._copy_job(self._jobs[name]) for name in sorted(self._jobs))

    async def set_paused(self, name: str, paused: bool) -> JobRecord:
        """Pause or unpause a job's schedule; raises `JobNotFound`."""
        check_text("name", name)
        async with await self._use():
            job = attrs.evolve(self._job(name), paused=bool(paused), updated_at=self._now())
            self._jobs[name] = job
            self._notify()
            return self._copy_job(job)

    # -- runs --------------------------------------------------------------------

    async def create_run(self, run: Run) -> Run:
        """Store a new run (see `runlife.abc.Store.create_run`).

        A run whose id is already stored is not stored again either: the stored
        run is returned, so that a create retried after an ambiguous failure is
        safe.
        """
        async with await self._use():
            norm = admit.admit_new(run, self._lifecycle(run.job))
            params = codec.raw_dumps(dict(norm.params))
            result = codec.raw_dumps(norm.result)
            existing = self._runs.get(norm.id)
            if existing is None and norm.idempotency_key is not None:
                rid = self._by_key.get((norm.job, norm.idempotency_key))
                existing = None if rid is None else self._runs[rid]
            slot = None
            if norm.trigger is Trigger.SCHEDULED and norm.scheduled_for is not None:
                slot = (norm.job, norm.scheduled_for)
                if existing is None and slot in self._by_slot:
                    existing = self._runs[self._by_slot[slot]]
            if existing is not None:
                return self._read(existing)
            norm = _json_parts(norm, params={}, result=None)
            row = _Row(run=norm, params=params, result=result)
            self._runs[norm.id] = row
            self._index(norm.id, None, norm)
            if norm.idempotency_key is not None:
                self._by_key[(norm.job, norm.idempotency_key)] = norm.id
            if slot is not None:
                self._by_slot[slot] = norm.id
                self._advance_schedule(norm.job, slot[1])
            self._transition_events(norm, norm.history)
            self._notify()
            return self._read(row)

    def _advance_schedule(self, name: str, scheduled_for: datetime) -> None:
        job = self._jobs.get(name)
        if job is None:
            job = JobRecord(name=name, updated_at=self._now())
        if job.last_scheduled_for is None or job.last_scheduled_for < scheduled_for:
            job = attrs.evolve(job, last_scheduled_for=scheduled_for, updated_at=self._now())
        self._jobs[name] = job

    async def get_run(self, run_id: str) -> Run:
        """The run, with its current progress; raises `RunNotFound`."""
        check_text("run_id", run_id)
        async with await self._use():
            return self._read(self._row(run_id))

    def _row(self, run_id: str) -> _Row:
        try:
            return self._runs[run_id]
        except KeyError:
            raise RunNotFound(run_id) from None

    def _read(self, row: _Row) -> Run:
        run = row.run
        return _as_read(
            run,
            params=codec.loads(row.params),
            result=codec.loads(row.result),
            labels=dict(run.labels),
            progress=row.counts,
        )

    def _index(self, run_id: str, old: Run | None, new: Run | None) -> None:
        if old is not None:
            del self._by_status[old.status][run_id]
            del self._by_job_status[(old.job, old.status)][run_id]
            if old.status is Status.QUEUED:
                self._queue.remove(old.job, run_id)
        if new is not None:
            self._by_status[new.status][run_id] = None
            self._by_job_status.setdefault((new.job, new.status), {})[run_id] = None
            due = new.due_at
            if due is not None and (
                old is None or old.status is not new.status or old.due_at != due
            ):
                heap = self._due[new.status]
                heapq.heappush(heap, (due, run_id))
                if len(heap) > 2 * len(self._by_status[new.status]) + 64:
                    self._compact_due(new.status)
            if new.status is Status.QUEUED:
                self._queue.add(new.job, claim_order(new))

    def _event(
        self, event: Event, output: str | None = None, line: tuple[str, int] | None = None
    ) -> None:
        """Keep *event*, with its item's *output* (JSON) or the run and seq of its
        log *line*, which it gets back when read."""
        seq = self._next_event
        self._next_event += 1
        self._events.append(_numbered(event, seq=seq))
        self._event_seqs.append(seq)
        if output is not None:
            self._event_outputs[seq] = output
        if line is not None:
            self._event_lines[seq] = line

    def _transition_events(self, run: Run, rows: Iterable[Transition]) -> None:
        # Kept as plain values (`_Moved`), made into events when read: the garbage
        # collector need not trace the three or more events of every run.
        status, events, seqs = run.status.value, self._events, self._event_seqs
        for t in rows:
            seq = self._next_event
            self._next_event += 1
            events.append((seq, run.id, run.job, status, _plain(t.from_), _plain(t.to), t.at,
                           t.reason))  # fmt: skip
            seqs.append(seq)

    def _check_claim(self, claim: Claim | None, run_id: str) -> None:
        if claim is None:
            return
        if not isinstance(claim, Claim):
            raise InvalidValue("claim", claim, "a Claim or None")
        row = self._runs.get(claim.run_id)
        if (
            row is None
            or claim.run_id != run_id
            or row.owner != claim.owner
            or row.fence != claim.fence
        ):
            raise LeaseLost(claim.run_id, claim.owner, claim.fence)

    async def update_run(
        self,
        run: Run,
        *,
        expected_version: int,
        claim: Claim | None = None,
        only_if_lapsed: bool = False,
        expected_progress: ItemCounts | None = None,
    ) -> Run:
        """Write *run* by compare-and-set (see `runlife.abc.Store.update_run`)."""
        check_int("expected_version", expected_version)
        admit.check_expected_progress(expected_progress)
        async with await self._use():
            check_text("run.id", run.id)
            row = self._row(run.id)
            self._check_claim(claim, run.id)
            stored = row.run
            if stored.version != expected_version:
                raise ConcurrentUpdate(run.id, expected_version, stored.version)
            if only_if_lapsed and not self._lapsed(row):
                raise ConcurrentUpdate(run.id, expected_version, stored.version)
            admit.check_progress(run.id, stored.version, row.counts, expected_progress)
            full = _json_parts(stored, params=codec.loads(row.params), result=stored.result)
            norm, known = admit.admit_successor(
                full, run, expected_version=expected_version, lifecycle=self._lifecycle(run.job)
            )
            result = codec.raw_dumps(norm.result)
            norm = _json_parts(norm, params={}, result=None)
            self._index(run.id, stored, norm)
            row.run = norm
            row.result = result
            if norm.status not in LIVE:
                row.owner = None
                row.expires_at = None
            self._transition_events(norm, norm.history[known:])
            self._notify()
            return self._read(row)

    def _lapsed(self, row: _Row) -> bool:
        return row.expires_at is None or row.expires_at <= self._now()

    async def claim(
        self,
        worker: str,
        jobs: Mapping[str, Lifecycle],
        *,
        limit: int,
        lease: float,
    ) -> tuple[Claim, ...]:
        """Claim up to *limit* QUEUED runs of *jobs* (see `runlife.abc.Store.claim`)."""
        span = admit.check_claim_args(worker, jobs, limit, lease)
        async with await self._use():
            if not self._queue or limit == 0:
                return ()
            now = self._now()
            # Take the front of the queue: a few more candidates than the claim may
            # take, then (when the jobs' limits turned too many away) as many again,
            # and so on; put back what was not claimed. Usually one look, whatever
            # the length of the queue. Few jobs (or few jobs queued): their own
            # queues, merged; many: the queue of all, passing over other jobs' runs.
            queue, runs = self._queue, self._runs
            queued = queue.jobs
            merged = len(jobs) <= _MERGED or len(queued) <= _MERGED
            names = [n for n in (jobs if len(jobs) <= len(queued) else queued) if n in jobs]
            popped: list[_Key] = []
            passed: list[_Key] = []
            # A few more than the claim may take when limits may turn some away.
            want = limit + 16 if not merged or self._limited(names) else limit
            while True:
                if merged:
                    more = queue.pop_merged(names, want - len(popped))
                else:
                    more, over = queue.pop_all(
                        want - len(popped), lambda k: runs[k[2]].run.job in jobs
                    )
                    passed += over
                popped += more
                candidates = [runs[rid].run for _, _, rid in popped]
                plan = self._plan(worker, jobs, candidates, now, limit)
                if plan.done or len(popped) < want:
                    break
                want *= 2
            expires = now + span
            claims = tuple(self._hold(old, moved, worker, expires) for old, moved in plan.taken)
            if merged:
                queue.put_back({run.id: run.job for run in candidates}, popped)
            else:
                queue.put_back_all(popped)
                queue.put_back_all(passed)
            if claims:
                self._notify()
            return claims

    def _limited(self, names: Iterable[str]) -> bool:
        """Whether any of the jobs *names* has concurrency limits."""
        jobs = self._jobs
        return any(
            (job := jobs.get(name)) is not None
            and (job.max_concurrency is not None or bool(job.per_label))
            for name in names
        )

    def _plan(
        self,
        worker: str,
        jobs: Mapping[str, Lifecycle],
        candidates: list[Run],
        now: datetime,
        limit: int,
    ) -> ClaimPlan:
        """The claim of up to *limit* of *candidates* (in claim order), within the
        limits of their jobs."""
        limits = {
            name: lim
            for name in {run.job for run in candidates}
            if (job := self._jobs.get(name)) is not None and (lim := JobLimits.of(job))
        }
        live = [
            (name, self._runs[rid].run.labels)
            for name in limits
            for status in LIVE
            for rid in self._by_job_status.get((name, status), {})
        ]
        plan = ClaimPlan(worker, jobs, limits, now=now, limit=limit, live=live)
        for run in candidates:
            if plan.done:
                break
            if plan.open(run.job):
                plan.offer(run)
        return plan

    def _hold(self, old: Run, moved: Run, worker: str, expires: datetime) -> Claim:
        row = self._runs[old.id]
        self._index(old.id, old, moved)
        row.run = moved
        row.owner = worker
        row.fence += 1
        row.expires_at = expires
        self._transition_events(moved, moved.history[len(old.history) :])
        return Claim(run=self._read(row), owner=worker, fence=row.fence, expires_at=expires)

    async def claim_run(
        self, run_id: str, worker: str, lifecycle: Lifecycle, *, lease: float
    ) -> Claim:
        """Claim one PENDING or QUEUED run, ignoring limits.

        Raises `ConcurrentUpdate` if it is in another status, `RunNotFound`.
        """
        check_text("run_id", run_id)
        span = admit.check_claim_args(worker, {"run": lifecycle}, 1, lease)
        async with await self._use():
            row = self._row(run_id)
            run = row.run
            if run.status not in _CLAIMABLE_ONE:
                raise ConcurrentUpdate(run_id, run.version, run.version)
            now = self._now()
            moved = lifecycle.transition(run, Status.RUNNING, at=now, reason=claim_reason(worker))
            claim = self._hold(run, moved, worker, now + span)
            self._notify()
            return claim

    async def heartbeat(self, claim: Claim, *, lease: float) -> datetime:
        """Extend *claim*'s lease; raises `LeaseLost` if it no longer holds
        (a purged run included)."""
        span = check_lease("lease", lease)
        async with await self._use():
            self._check_claim(claim, claim.run_id)
            row = self._runs[claim.run_id]
            if row.run.status not in LIVE:
                raise LeaseLost(claim.run_id, claim.owner, claim.fence)
            row.expires_at = self._now() + span
            if self._on_change is not None:
                self._on_change()
            return row.expires_at

    async def abandoned(self, *, limit: int = 100) -> tuple[Run, ...]:
        """Live runs whose lease lapsed (or that have none), oldest lapse first."""
        check_page("limit", limit)
        async with await self._use():
            now = self._now()
            rows = [
                self._runs[rid]
                for status in LIVE
                for rid in self._by_status[status]
                if (exp := self._runs[rid].expires_at) is None or exp <= now
            ]
            rows.sort(key=lambda r: (r.expires_at or codec.EPOCH, r.run.id))
            return tuple(self._read(r) for r in rows[:limit])

    async def request_cancel(
        self, run_id: str, *, by: str, reason: str | None = None
    ) -> CancelRequest | None:
        """Store a cancel request for a RUNNING or WAITING run (see the protocol);
        the run's first request stands; None, storing nothing, for a run in another
        status; `RunNotFound`."""
        admit.check_cancel_request(run_id, by, reason)
        async with await self._use():
            row = self._row(run_id)
            if row.run.status not in LIVE:
                return None
            if row.cancel is None:
                row.cancel = CancelRequest(run_id=run_id, by=by, reason=reason, at=self._now())
                self._notify()
            return row.cancel

    async def cancel_requests(self, run_ids: Collection[str]) -> Mapping[str, CancelRequest]:
        """The stored cancel requests of *run_ids* that have one, by run id."""
        wanted = admit.check_run_ids("run_ids", run_ids)
        async with await self._use():
            return {
                rid: row.cancel
                for rid in wanted
                if (row := self._runs.get(rid)) is not None and row.cancel is not None
            }

    async def due(self, statuses: Collection[Status], *, limit: int = 100) -> tuple[Run, ...]:
        """Runs in *statuses* whose ``due_at`` has come, earliest first."""
        check_page("limit", limit)
        wanted = admit.check_statuses("statuses", statuses)
        async with await self._use():
            now = self._now()
            runs = [run for status in wanted for run in self._due_now(status, now, limit)]
            runs.sort(key=lambda r: (r.due_at, r.id))
            return tuple(self._read(self._runs[r.id]) for r in runs[:limit])

    def _compact_due(self, status: Status) -> None:
        """Build the due heap of *status* again from its runs: stale entries went
        over half of it."""
        runs = self._runs
        heap = [
            (at, rid) for rid in self._by_status[status] if (at := runs[rid].run.due_at) is not None
        ]
        heapq.heapify(heap)
        self._due[status] = heap

    def _due_now(self, status: Status, now: datetime, limit: int) -> list[Run]:
        """Up to *limit* runs in *status* due at *now*, earliest first: taken from
        the top of its heap and put back, the stale entries dropped on the way."""
        heap, runs = self._due[status], list[Run]()
        kept: list[tuple[datetime, str]] = []
        while heap and len(runs) < limit and heap[0][0] <= now:
            at, rid = entry = heapq.heappop(heap)
            row = self._runs.get(rid)
            if row is None or row.run.status is not status or row.run.due_at != at:
                continue  # the run moved on (or was purged) since
            if kept and kept[-1] == entry:
                continue  # pushed twice (it left the status and came back)
            kept.append(entry)
            runs.append(row.run)
        for entry in kept:
            heapq.heappush(heap, entry)
        return runs

    def _matching(self, query: RunQuery) -> list[Run]:
        if query.job is not None and query.status:
            ids: Iterable[str] = (
                rid
                for status in query.status
                for rid in self._by_job_status.get((query.job, status), {})
            )
        elif query.status:
            ids = (rid for status in query.status for rid in self._by_status[status])
        else:
            ids = self._runs
        text = query.text.lower() if query.text else None
        out: list[Run] = []
        for rid in ids:
            run = self._runs[rid].run
            if query.job is not None and run.job != query.job:
                continue
            if query.trigger and run.trigger not in query.trigger:
                continue
            if query.workflow_run_id is not None and run.workflow_run_id != query.workflow_run_id:
                continue
            if query.parent_id is not None and run.parent_id != query.parent_id:
                continue
            if query.labels and any(run.labels.get(k) != v for k, v in query.labels.items()):
                continue
            if query.since is not None or query.until is not None:
                moment = _time_of(run, query.field)
                if moment is None:
                    continue
                if query.since is not None and moment < query.since:
                    continue
                if query.until is not None and moment >= query.until:
                    continue
            if text is not None and not _has_text(run, text):
                continue
            out.append(run)
        return out

    async def list_runs(self, query: RunQuery) -> Page:
        """Runs matching *query*, newest first (by creation time, then id)."""
        query, after = admit.admit_run_query(query)
        async with await self._use():
            runs = self._matching(query)
            if after is not None:
                runs = [r for r in runs if (r.created_at, r.id) < after]
            runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
            page = runs[: query.limit]
            cursor = None
            if len(runs) > query.limit:
                last = page[-1]
                cursor = codec.encode_cursor(codec.to_us(last.created_at), last.id)
            return Page(runs=tuple(self._read(self._runs[r.id]) for r in page), next_cursor=cursor)

    async def count_runs(self, query: RunQuery) -> Mapping[Status, int]:
        """How many runs matching *query* are in each status (zeros left out)."""
        query, _ = admit.admit_run_query(attrs.evolve(query, cursor=None))
        async with await self._use():
            counts: dict[Status, int] = {}
            for run in self._matching(query):
                counts[run.status] = counts.get(run.status, 0) + 1
            return counts

    # -- items -------------------------------------------------------------------

    async def save_item(self, item: Item, *, claim: Claim | None = None) -> Item:
        """Insert or replace an item, keep its run's progress, write an ``item`` event."""
        item = admit.admit_item(item)
        output = codec.raw_dumps(item.output)
        async with await self._use():
            row = self._row(item.run_id)
            self._check_claim(claim, item.run_id)
            stored = self._put_item(row, item, output)
            self._notify()
            return _with_output(stored, output)

    async def save_items(
        self, items: Sequence[Item], *, claim: Claim | None = None
    ) -> tuple[Item, ...]:
        """Insert or replace items of one run in order, all at once (see the protocol)."""
        if claim is not None and not isinstance(claim, Claim):
            raise InvalidValue("claim", claim, "a Claim or None")
        checked = admit.admit_items(items, None if claim is None else claim.run_id)
        if not checked:
            return ()
        outputs = [codec.raw_dumps(item.output) for item in checked]
        run_id = checked[0].run_id
        async with await self._use():
            row = self._row(run_id)
            self._check_claim(claim, run_id)
            stored = [
                _with_output(self._put_item(row, item, output), output)
                for item, output in zip(checked, outputs, strict=True)
            ]
            self._notify()
            return tuple(stored)

    def _put_item(self, row: _Row, item: Item, output: str) -> Item:
        """Store the admitted *item* (its output the JSON *output*) in *row*, with its event."""
        stored = attrs.evolve(item, output=None)
        old = row.items.get(item.key)
        row.counts = row.counts.moved(None if old is None else old[0].status, stored.status)
        row.items[item.key] = (stored, output)
        run = row.run
        self._event(
            Event(kind="item", run_id=run.id, job=run.job, at=self._now(), status=run.status,
                  item=stored, progress=row.counts),
            output,
        )  # fmt: skip
        return stored

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
        async with await self._use():
            row = self._runs.get(run_id)
            if row is None:
                return ()
            found: Iterable[tuple[Item, str]] = row.items.values()
            if after is not None:
                if after not in row.items:
                    return ()
                keys = iter(row.items)
                for key in keys:
                    if key == after:
                        break
                found = (row.items[key] for key in keys)
            out: list[Item] = []
            for item, output in found:
                if (wanted is None or item.status is wanted) and (
                    phase is None or item.phase == phase
                ):
                    out.append(_with_output(item, output))
                    if limit is not None and len(out) >= limit:
                        break
            return tuple(out)

    # -- logs --------------------------------------------------------------------

    async def append_logs(
        self, lines: Sequence[LogLine], *, claim: Claim | None = None
    ) -> tuple[LogLine, ...]:
        """Append *lines*, numbering each run's lines from 1 (see the protocol)."""
        flat: list[bool] = []
        checked = admit.admit_lines(lines, None if claim is None else claim.run_id, flat=flat)
        async with await self._use():
            run_ids = dict.fromkeys(line.run_id for line in checked)
            for run_id in run_ids:
                self._row(run_id)
            if claim is not None:
                self._check_claim(claim, claim.run_id)
            if not checked:
                return ()
            if len(run_ids) == 1 and all(flat):
                # The runtime's batches: one run's lines, each with flat fields.
                out = self._append_flat(self._runs[checked[0].run_id], checked)
                last = {out[-1].run_id: out[-1]}
                counted = {out[-1].run_id: len(out)}
            else:
                out = self._append_any(checked, flat)
                counted = Counter(line.run_id for line in out)
                last = {line.run_id: line for line in out}
            # One event per run of the batch, naming its last line (kept, read back
            # as the log's lines are).
            runs, now = self._runs, self._now()
            for run_id, line in last.items():
                run = runs[run_id].run
                self._event(
                    Event(kind="log", run_id=run_id, job=run.job, at=now, status=run.status,
                          lines=counted[run_id]),
                    line=(run_id, line.seq),
                )  # fmt: skip
            self._notify()
            return out

    def _append_flat(self, row: _Row, checked: tuple[LogLine, ...]) -> tuple[LogLine, ...]:
        """Keep *checked*, lines of *row*'s run whose fields are flat (the admission
        saw each value): as their names and values, one tuple of names for each set
        of them. The lines are handed back as they came when the writer numbered
        them as the store does (the runtime does), else renumbered."""
        logs = row.log_list()
        first = len(logs) + 1
        names = self._names
        keep, head = logs.append, _LINE_HEAD
        for line in checked:
            # `_kept` for flat fields, its call saved: this runs once per line of a log.
            fields = line.fields
            keys = tuple(fields)
            known = names.get(keys)
            keep((*head(line), _named(names, keys) if known is None else known, *fields.values()))
        if [line.seq for line in checked] == list(range(first, first + len(checked))):
            return checked
        return tuple(
            line if line.seq == seq else _line_numbered(line, seq=seq, fields=line.fields)
            for seq, line in enumerate(checked, first)
        )

    def _append_any(self, checked: tuple[LogLine, ...], flat: list[bool]) -> tuple[LogLine, ...]:
        """Keep *checked*, lines of any runs, flat or not (see `_append_flat`): a
        flat line is handed back as it came, or renumbered; the others with their
        fields read back from how they are kept (nothing outside shares them)."""
        out: list[LogLine] = []
        runs, names = self._runs, self._names
        for line, plain in zip(checked, flat, strict=True):
            logs = runs[line.run_id].log_list()
            seq = len(logs) + 1
            kept = _kept(line, names)
            logs.append(kept)
            if plain:
                out.append(line if line.seq == seq else _line_numbered(
                    line, seq=seq, fields=line.fields))  # fmt: skip
            else:
                out.append(_line_numbered(line, seq=seq, fields=_fields_of(kept)))
        return tuple(out)

    async def logs(self, query: LogQuery) -> LogPage:
        """A page of the run's log lines after ``query.cursor``, in order."""
        query, after = admit.admit_log_query(query)
        async with await self._use():
            row = self._runs.get(query.run_id)
            if row is None:
                return LogPage(lines=())
            found: list[int] = []
            logs = row.logs
            stream, item, level = query.stream, query.item, query.level
            # seq n sits at index n - 1: start right after the cursor.
            for index in range(after, len(logs)):
                kept = logs[index]
                if stream is not None and kept[1] != stream:
                    continue
                if level is not None and kept[2] != level:
                    continue
                if item is not None and kept[4] != item:
                    continue
                found.append(index)
                if len(found) > query.limit:
                    break
            page = found[: query.limit]
            cursor = codec.encode_cursor(page[-1] + 1) if len(found) > query.limit else None
            return LogPage(
                lines=tuple(_line(query.run_id, i + 1, logs[i]) for i in page),
                next_cursor=cursor,
            )

    async def search_logs(
        self, run_id: str, text: str, *, limit: int = 1000
    ) -> tuple[LogLine, ...]:
        """Lines whose message contains *text* (case-insensitive), in order."""
        admit.check_search(run_id, text, limit)
        needle = text.lower()
        async with await self._use():
            row = self._runs.get(run_id)
            if row is None:
                return ()
            out: list[LogLine] = []
            for index, kept in enumerate(row.logs):
                if needle in kept[3].lower():
                    out.append(_line(run_id, index + 1, kept))
                    if len(out) >= limit:
                        break
            return tuple(out)

    # -- signals and events ------------------------------------------------------

    async def send_signal(self, run_id: str, name: str, payload: Any = None) -> None:
        """Store signal *name* for the run (replacing an earlier one); `RunNotFound`."""
        check_text("run_id", run_id)
        check_text("name", name, empty=False)
        text = codec.dumps(payload, f"signal {name!r} payload")
        async with await self._use():
            self._row(run_id).signals[name] = text
            self._notify()

    async def signals(self, run_id: str) -> Mapping[str, Any]:
        """The run's delivered signals, by name (none for an unknown run)."""
        check_text("run_id", run_id)
        async with await self._use():
            row = self._runs.get(run_id)
            if row is None:
                return {}
            return {name: codec.loads(text) for name, text in row.signals.items()}

    async def events(
        self, *, after: int | None = None, run_id: str | None = None, limit: int = 1000
    ) -> tuple[Event, ...]:
        """Stored events with ``seq`` greater than *after*, in order."""
        start_after = admit.check_events_args(after, run_id, limit)
        async with await self._use():
            start = bisect_right(self._event_seqs, start_after)
            out: list[Event] = []
            for kept in self._events[start:]:
                if len(out) >= limit:
                    break
                if run_id is not None and _run_of(kept) != run_id:
                    continue
                out.append(self._as_event(kept))
            return tuple(out)

    def _as_event(self, kept: Event | _Moved) -> Event:
        """The kept event as read: its item's output, its log line."""
        if isinstance(kept, tuple):
            return _moved_event(kept)
        event = kept
        if event.item is not None:
            output = self._event_outputs[event.seq]  # type: ignore[index]
            event = attrs.evolve(event, item=_with_output(event.item, output))
        elif event.lines is not None:
            of, seq = self._event_lines[event.seq]  # type: ignore[index]
            row = self._runs[of]
            line = _line(of, seq, row.logs[seq - 1])
            event = attrs.evolve(event, log=line)
        return event

    async def wait_changed(self, timeout: float) -> None:
        """Return after the next change, or after *timeout* seconds."""
        seconds = admit.check_timeout("timeout", timeout)
        await self._use()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another backend (trio): an anyio event and scope
            changed = self._changed
            if changed is None:
                changed = self._changed = anyio.Event()
            with anyio.move_on_after(seconds):
                await changed.wait()
            return
        # On asyncio, the cheapest wait there is: a bare future, and a timer of the
        # loop (anyio's cancel scopes cancel it as they cancel any await).
        future: asyncio.Future[None] = loop.create_future()
        self._change_futures.add(future)
        timer = loop.call_later(seconds, _settle, future)
        try:
            await future
        finally:
            timer.cancel()
            self._change_futures.discard(future)

    # -- snapshots ---------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything the store holds, as plain JSON data in runlife's JSON form
        (`runlife._core.codec`): give it to ``MemoryStore(snapshot=...)`` to start
        a store that answers every read the same.

        Runs (with their hold: owner, fence, lease), items, log lines, signals,
        cancel requests, job records and events are kept, with a ``"version"``
        (`SNAPSHOT_VERSION`); the indexes (by status, by job, idempotency keys,
        schedule slots, the claim queue) and item counts are not: a store started
        from a snapshot builds them again. A plain method, not a coroutine:
        the store never stands half changed between its writes.

        >>> import anyio, json
        >>> from datetime import datetime, UTC
        >>> from runlife import Run
        >>> async def main():
        ...     async with MemoryStore() as store:
        ...         run = await store.create_run(Run.create(job="backup", at=datetime.now(UTC)))
        ...         text = json.dumps(store.snapshot())
        ...     async with MemoryStore(snapshot=json.loads(text)) as again:
        ...         return await again.get_run(run.id) == run
        >>> anyio.run(main)
        True
        """
        runs = []
        for run_id, row in self._runs.items():
            runs.append(
                {
                    "run": codec.run_to_json(self._read(row)),
                    "owner": row.owner,
                    "fence": row.fence,
                    "lease_expires_at": codec.to_us_or_none(row.expires_at),
                    "items": [
                        codec.item_to_json(_with_output(item, output))
                        for item, output in row.items.values()
                    ],
                    "logs": [
                        codec.line_to_json(_line(run_id, i + 1, kept))
                        for i, kept in enumerate(row.logs)
                    ],
                    "signals": {name: codec.loads(text) for name, text in row.signals.items()},
                    "cancel": None if row.cancel is None else codec.cancel_to_json(row.cancel),
                }
            )
        return {
            "version": SNAPSHOT_VERSION,
            "jobs": [codec.job_to_json(self._copy_job(job)) for job in self._jobs.values()],
            "runs": runs,
            "events": [codec.event_to_json(self._as_event(kept)) for kept in self._events],
            "next_event": self._next_event,
        }

    def _restore(self, data: Mapping[str, Any]) -> None:
        """Fill the new store with the *data* of a `snapshot`, checking it."""
        if not isinstance(data, Mapping):
            raise InvalidValue("snapshot", data, "a dict made by MemoryStore.snapshot()")
        version = data.get("version")
        if version.__class__ is not int or not 1 <= version <= SNAPSHOT_VERSION:
            raise InvalidValue(
                "snapshot.version",
                version,
                f"a snapshot format version from 1 to {SNAPSHOT_VERSION}",
            )
        with _part("snapshot", data, "its keys jobs, runs, events and next_event"):
            jobs, runs, events, next_event = (
                list(data["jobs"]), list(data["runs"]), list(data["events"]), data["next_event"]
            )  # fmt: skip
        for i, job_data in enumerate(jobs):
            with _part(f"snapshot.jobs[{i}]", job_data, "a job record in runlife's JSON form"):
                job = admit.admit_job(codec.job_from_json(job_data))
                job = attrs.evolve(job, updated_at=codec.from_us_or_none(job_data["updated_at"]))
                if job.name in self._jobs:
                    raise InvalidValue("name", job.name, "a job name not seen before")
                self._jobs[job.name] = job
        for i, run_data in enumerate(runs):
            with _part(f"snapshot.runs[{i}]", run_data, "a stored run in runlife's JSON form"):
                self._restore_run(run_data)
        last = 0
        for i, event_data in enumerate(events):
            with _part(f"snapshot.events[{i}]", event_data, "an event in runlife's JSON form"):
                last = self._restore_event(codec.event_from_json(event_data), last)
        if next_event.__class__ is not int or next_event <= last:
            raise InvalidValue("snapshot.next_event", next_event, f"an int above {last}")
        self._next_event = next_event

    def _restore_run(self, data: Mapping[str, Any]) -> None:
        given = codec.run_from_json(data["run"])
        run = admit.admit_kept(given, self._lifecycle(given.job))
        if run.id in self._runs:
            raise InvalidValue("run.id", run.id, "a run id not seen before")
        params = codec.raw_dumps(dict(run.params))
        result = codec.raw_dumps(run.result)
        check_text("owner", data["owner"], optional=True)
        fence = check_int("fence", data["fence"], (0, 2**63))
        row = _Row(
            run=_json_parts(run, params={}, result=None),
            params=params,
            result=result,
            owner=data["owner"],
            fence=fence,
            expires_at=codec.from_us_or_none(data["lease_expires_at"]),
        )
        for item in map(codec.item_from_json, data["items"]):
            item = admit.admit_item(item)
            if item.run_id != run.id or item.key in row.items:
                raise InvalidValue("item", item.key, f"an item of run {run.id!r}, once")
            row.counts = row.counts.moved(None, item.status)
            row.items[item.key] = (attrs.evolve(item, output=None), codec.raw_dumps(item.output))
        lines = [codec.line_from_json(line) for line in data["logs"]]
        for seq, line in enumerate(lines, 1):
            if line.run_id != run.id or line.seq != seq:
                raise InvalidValue("log seq", line.seq, f"line {seq} of run {run.id!r}")
        for line in admit.admit_lines(lines):
            row.log_list().append(_kept(line, self._names))
        for name, payload in dict(data["signals"]).items():
            check_text("signal name", name, empty=False)
            row.signals[name] = codec.dumps(payload, f"signal {name!r} payload")
        if data["cancel"] is not None:
            cancel = codec.cancel_from_json(data["cancel"])
            admit.check_cancel_request(cancel.run_id, cancel.by, cancel.reason)
            if cancel.run_id != run.id:
                raise InvalidValue("cancel.run_id", cancel.run_id, repr(run.id))
            row.cancel = cancel
        self._runs[run.id] = row
        self._index(run.id, None, row.run)
        if run.idempotency_key is not None:
            self._by_key[(run.job, run.idempotency_key)] = run.id
        if run.trigger is Trigger.SCHEDULED and run.scheduled_for is not None:
            self._by_slot[(run.job, run.scheduled_for)] = run.id

    def _restore_event(self, event: Event, last: int) -> int:
        """Keep the restored *event*, whose seq must follow *last*; its seq."""
        seq = event.seq
        if seq.__class__ is not int or seq <= last:
            raise InvalidValue("seq", seq, f"an int above {last} (events in order)")
        assert seq is not None
        row = self._runs.get(event.run_id)
        if row is None:
            raise InvalidValue("run_id", event.run_id, "a run of the snapshot")
        if event.kind == "transition" and event.transition is not None:
            t = event.transition
            self._events.append((seq, event.run_id, event.job, event.status.value,
                                 _plain(t.from_), _plain(t.to), t.at, t.reason))  # fmt: skip
        elif event.kind == "item" and event.item is not None:
            item = admit.admit_item(event.item)
            self._events.append(attrs.evolve(event, item=attrs.evolve(item, output=None)))
            self._event_outputs[seq] = codec.raw_dumps(item.output)
        elif event.kind == "log" and event.log is not None and event.lines is not None:
            line = event.log.seq
            if line.__class__ is not int or not 1 <= line <= len(row.logs):
                raise InvalidValue("log.seq", line, f"a line of run {event.run_id!r}")
            self._events.append(attrs.evolve(event, log=None))
            self._event_lines[seq] = (event.run_id, line)
        else:
            raise InvalidValue("kind", event.kind, "transition, item or log, with its part")
        self._event_seqs.append(seq)
        return seq

    # -- retention ---------------------------------------------------------------

    async def purge(
        self,
        *,
        older_than: datetime,
        batch: int = 1000,
        statuses: Collection[Status] | None = None,
    ) -> int:
        """Delete terminal runs (in *statuses*, if given) that ended before
        *older_than*, with all they own.

        The memory store deletes all of them at once (*batch* is checked, for the
        protocol's sake, and otherwise unused).
        """
        cutoff, chosen = admit.check_purge_args(older_than, batch, statuses)
        async with await self._use():
            doomed = [
                rid
                for status in chosen
                for rid in self._by_status[status]
                if (end := self._runs[rid].run.ended_at) is not None and end < cutoff
            ]
            if not doomed:
                return 0
            gone = set(doomed)
            for rid in doomed:
                run = self._runs.pop(rid).run
                self._index(rid, run, None)
                if run.idempotency_key is not None:
                    self._by_key.pop((run.job, run.idempotency_key), None)
                if run.trigger is Trigger.SCHEDULED and run.scheduled_for is not None:
                    self._by_slot.pop((run.job, run.scheduled_for), None)
            kept = [e for e in self._events if _run_of(e) not in gone]
            for event in self._events:
                if _run_of(event) in gone:
                    self._event_outputs.pop(_seq_of(event), None)
                    self._event_lines.pop(_seq_of(event), None)
            self._events = kept
            self._event_seqs = [_seq_of(e) for e in kept]
            self._notify()
            return len(doomed)


@contextmanager
def _part(field: str, value: object, expected: str) -> Iterator[None]:
    """Refuse, as `InvalidValue` naming *field*, a part of a snapshot that is not
    what it should be (the error found inside it as its cause)."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = exc if isinstance(exc, InvalidValue) else f"{type(exc).__name__}: {exc}"
        raise InvalidValue(field, value, f"{expected} ({detail})") from exc


_Moved = tuple[int, str, str, str, str, str, datetime, str | None]
"""A kept transition event: seq, run id, job, status, from, to, at, reason (the
states as plain text)."""

_make_event: Callable[..., Event] = compile_maker(Event)
_make_transition: Callable[..., Transition] = compile_maker(Transition)


def _plain(state: str) -> str:
    return state.value if isinstance(state, Status) else state


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _run_of(kept: Event | _Moved) -> str:
    return kept[1] if isinstance(kept, tuple) else kept.run_id


def _seq_of(kept: Event | _Moved) -> int:
    if isinstance(kept, tuple):
        return kept[0]
    assert kept.seq is not None
    return kept.seq


def _moved_event(kept: _Moved) -> Event:
    seq, run_id, job, status, from_, to, at, reason = kept
    state = codec.state_from_text
    move = _make_transition(state(from_), state(to), at, reason)
    return _make_event(
        "transition", run_id, job, at, Status(status), move, None, None, seq, None, None
    )


def _has_text(run: Run, needle: str) -> bool:
    if needle in run.job.lower():
        return True
    if run.error is not None and needle in run.error.message.lower():
        return True
    return any(needle in value.lower() for value in run.labels.values())


_job_copy: Callable[..., JobRecord] = compile_copier(JobRecord, ("spec", "per_label"))


def _with_output(item: Item, output: str) -> Item:
    return attrs.evolve(item, output=codec.loads(output))


# Lines are copied by their slots, past attrs' keyword plumbing: the hot path of logs.
_line_numbered = compile_copier(LogLine, ("seq", "fields"))
# A kept line's columns before its fields, read in one call.
_LINE_HEAD: Final = operator.attrgetter("at", "stream", "level", "message", "item", "attempt")
_make_line = compile_maker(LogLine)
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _kept(line: LogLine, names: dict[tuple[str, ...], tuple[str, ...]]) -> _Kept:
    """The admitted *line* as kept: flat fields (scalar values, the common case) as
    their names (one tuple for each set of them, kept in *names* while it has
    room) and values, others as JSON text, so that nothing outside shares them."""
    fields = line.fields
    head = _LINE_HEAD(line)
    for value in fields.values():
        if value.__class__ not in _SCALARS:
            return (*head, None, codec.raw_dumps(dict(fields)))
    keys = tuple(fields)
    known = names.get(keys)
    return (*head, _named(names, keys) if known is None else known, *fields.values())


def _named(names: dict[tuple[str, ...], tuple[str, ...]], keys: tuple[str, ...]) -> tuple[str, ...]:
    """*keys*, a set of field names not yet in *names*: kept there while it has room,
    so that the lines with these names share one tuple of them."""
    if len(names) < _NAMES_KEPT:
        names[keys] = keys
    return keys


def _fields_of(kept: _Kept) -> dict[str, Any]:
    """A new dict of the fields of a kept line."""
    keys = kept[6]
    if keys is None:
        return codec.loads(kept[7])  # type: ignore[no-any-return]
    if not keys:
        return {}
    return dict(zip(keys, kept[7:], strict=True))


def _line(run_id: str, seq: int, kept: _Kept) -> LogLine:
    return _make_line(  # type: ignore[no-any-return]
        run_id, seq, *kept[:6], _fields_of(kept)
    )
