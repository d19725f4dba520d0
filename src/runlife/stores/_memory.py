"""`MemoryStore`: the whole Store protocol in dicts, for tests and scripts.

It is meant to be obviously correct rather than clever: one lock around each
method, plain dicts, and a few indexes (by status, by job and status, by
idempotency key and schedule slot) so that unit tests with thousands of runs stay
fast. Values go through the shared JSON codec on the way in and out, so a run
reads back exactly as it would from SQLite or PostgreSQL (UTC datetimes, fresh
copies of params and results, `Status` members for canonical state names).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self

import anyio
import attrs

from runlife._clock import SystemClock
from runlife._core.convert import aware, frozen_labels
from runlife._core.lifecycle import Lifecycle
from runlife._core.queries import Claim, JobRecord, LogPage, LogQuery, Page, RunQuery
from runlife._core.records import Attempt, Event, Item, ItemCounts, LogLine, Transition
from runlife._core.run import Run
from runlife._core.status import TERMINAL, Status, Trigger
from runlife.exceptions import (
    ConcurrentUpdate,
    InvalidPolicy,
    JobNotFound,
    LeaseLost,
    RunNotFound,
    StoreError,
)
from runlife.stores import _codec

__all__ = ("MemoryStore",)

_LIVE = frozenset({Status.RUNNING, Status.WAITING})
_CLAIMABLE_ONE = frozenset({Status.PENDING, Status.QUEUED})


class _Now(Protocol):
    def now(self) -> datetime: ...


def _utc(moment: datetime) -> datetime:
    # SQL stores keep microseconds since the epoch and read back UTC; do the same.
    if moment.tzinfo is UTC:
        return moment
    return aware(moment).astimezone(UTC)


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else _utc(moment)


def _state(name: str) -> str:
    return _codec.state_from_text(name)


def _norm_transition(t: Transition) -> Transition:
    from_, to, at = _state(t.from_), _state(t.to), _utc(t.at)
    if from_ is t.from_ and to is t.to and at is t.at:
        return t
    return Transition(from_=from_, to=to, at=at, reason=t.reason)


def _norm_attempt(a: Attempt) -> Attempt:
    started, ended = _utc(a.started_at), _utc_or_none(a.ended_at)
    if started is a.started_at and ended is a.ended_at:
        return a
    return attrs.evolve(a, started_at=started, ended_at=ended)


def _normalise(run: Run) -> Run:
    """*run* with UTC datetimes and canonical state objects, as a SQL store reads it."""
    return attrs.evolve(
        run,
        state=_state(run.state),
        created_at=_utc(run.created_at),
        scheduled_for=_utc_or_none(run.scheduled_for),
        queued_at=_utc_or_none(run.queued_at),
        started_at=_utc_or_none(run.started_at),
        ended_at=_utc_or_none(run.ended_at),
        due_at=_utc_or_none(run.due_at),
        attempts=tuple(_norm_attempt(a) for a in run.attempts),
        history=tuple(_norm_transition(t) for t in run.history),
        warnings=tuple(run.warnings),
        labels=frozen_labels(run.labels),
        params={},
        result=None,
        progress=ItemCounts(),
    )


def _time_of(run: Run, field: str) -> datetime | None:
    if field == "created":
        return run.created_at
    if field == "started":
        return run.started_at
    if field == "ended":
        return run.ended_at
    raise InvalidPolicy("field", field, "'created', 'started' or 'ended'")


@attrs.define
class _Row:
    """One stored run: the run (without its JSON parts) and its hold."""

    run: Run
    params: str
    result: str
    owner: str | None = None
    fence: int = 0
    expires_at: datetime | None = None
    counts: ItemCounts = attrs.Factory(ItemCounts)
    items: dict[str, tuple[Item, str]] = attrs.Factory(dict)
    logs: list[tuple[LogLine, str]] = attrs.Factory(list)
    signals: dict[str, str] = attrs.Factory(dict)


class MemoryStore:
    """A `Store` that keeps everything in memory (``memory://``): for tests and scripts.

    Args:
        clock: whose ``now()`` is the store's time (leases, claims, events); any
            object with a ``now()`` method returning an aware datetime will do, such
            as ``runlife.testing.VirtualClock``. `SystemClock` by default.

    Everything is lost when the process ends. Params, results, item outputs, log
    fields and signal payloads are stored as JSON text and parsed again on every
    read, so a memory store refuses what the SQL stores refuse and hands out copies.

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

    url: str

    def __init__(self, *, clock: _Now | None = None) -> None:
        self.url = "memory://"
        self._clock: _Now = clock if clock is not None else SystemClock()
        self._closed = False
        self._lock: anyio.Lock | None = None
        self._changed: anyio.Event | None = None
        self._jobs: dict[str, JobRecord] = {}
        self._runs: dict[str, _Row] = {}
        # Indexes; dicts used as insertion-ordered sets.
        self._by_status: dict[Status, dict[str, None]] = {s: {} for s in Status}
        self._by_job_status: dict[tuple[str, Status], dict[str, None]] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._by_slot: dict[tuple[str, datetime], str] = {}
        self._events: list[Event] = []
        self._event_seqs: list[int] = []
        self._event_outputs: dict[int, str] = {}
        self._next_event = 1

    def __repr__(self) -> str:
        return f"<MemoryStore {len(self._runs)} runs>"

    # -- opening and closing ---------------------------------------------------

    async def __aenter__(self) -> Self:
        self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the store; later calls raise `StoreError`. Closing twice is fine."""
        self._closed = True
        if self._changed is not None:
            self._changed.set()

    def _open(self) -> anyio.Lock:
        if self._closed:
            raise StoreError(f"{self.url} store is closed")
        if self._lock is None:
            # anyio primitives bind to the running backend: make them on first use.
            self._lock = anyio.Lock()
            self._changed = anyio.Event()
        return self._lock

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = anyio.Event()

    async def now(self) -> datetime:
        """The clock's now, in UTC."""
        async with self._open():
            return self._now()

    def _now(self) -> datetime:
        return _utc(self._clock.now())

    # -- jobs --------------------------------------------------------------------

    async def save_job(self, job: JobRecord) -> JobRecord:
        """Insert or replace a job's record, keeping its stored schedule state."""
        spec = _codec.dumps(dict(job.spec), f"job {job.name!r} spec")
        async with self._open():
            old = self._jobs.get(job.name)
            stored = attrs.evolve(
                job,
                spec=_codec.loads(spec),
                per_label=dict(job.per_label),
                paused=old.paused if old is not None else job.paused,
                last_scheduled_for=(
                    old.last_scheduled_for
                    if old is not None
                    else _utc_or_none(job.last_scheduled_for)
                ),
                updated_at=self._now(),
            )
            self._jobs[job.name] = stored
            self._notify()
            return _copy_job(stored)

    async def get_job(self, name: str) -> JobRecord:
        """The job's record; raises `JobNotFound`."""
        async with self._open():
            return _copy_job(self._job(name))

    def _job(self, name: str) -> JobRecord:
        try:
            return self._jobs[name]
        except KeyError:
            raise JobNotFound(name, self._jobs) from None

    async def list_jobs(self) -> tuple[JobRecord, ...]:
        """All job records, by name."""
        async with self._open():
            return tuple(_copy_job(self._jobs[name]) for name in sorted(self._jobs))

    async def set_paused(self, name: str, paused: bool) -> JobRecord:
        """Pause or unpause a job's schedule; raises `JobNotFound`."""
        async with self._open():
            job = attrs.evolve(self._job(name), paused=paused, updated_at=self._now())
            self._jobs[name] = job
            self._notify()
            return _copy_job(job)

    # -- runs --------------------------------------------------------------------

    async def create_run(self, run: Run) -> Run:
        """Store a new run (see `runlife.abc.Store.create_run`).

        A run whose id is already stored is not stored again either: the stored
        run is returned, so that a create retried after an ambiguous failure is
        safe. Raises `InvalidPolicy` unless ``run.version`` is 0.
        """
        if run.version != 0:
            raise InvalidPolicy("version", run.version, "0 for a new run")
        params = _codec.dumps(dict(run.params), "params")
        result = _codec.dumps(run.result, "result")
        norm = _normalise(run)
        async with self._open():
            existing = self._runs.get(run.id)
            if existing is None and run.idempotency_key is not None:
                rid = self._by_key.get((run.job, run.idempotency_key))
                existing = None if rid is None else self._runs[rid]
            slot = None
            if run.trigger is Trigger.SCHEDULED and norm.scheduled_for is not None:
                slot = (run.job, norm.scheduled_for)
                if existing is None and slot in self._by_slot:
                    existing = self._runs[self._by_slot[slot]]
            if existing is not None:
                return self._read(existing)
            row = _Row(run=norm, params=params, result=result)
            self._runs[run.id] = row
            self._index(run.id, None, norm)
            if run.idempotency_key is not None:
                self._by_key[(run.job, run.idempotency_key)] = run.id
            if slot is not None:
                self._by_slot[slot] = run.id
                self._advance_schedule(run.job, slot[1])
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
        async with self._open():
            return self._read(self._row(run_id))

    def _row(self, run_id: str) -> _Row:
        try:
            return self._runs[run_id]
        except KeyError:
            raise RunNotFound(run_id) from None

    def _read(self, row: _Row) -> Run:
        return attrs.evolve(
            row.run,
            params=_codec.loads(row.params),
            result=_codec.loads(row.result),
            labels=dict(row.run.labels),
            progress=row.counts,
        )

    def _index(self, run_id: str, old: Run | None, new: Run | None) -> None:
        if old is not None:
            del self._by_status[old.status][run_id]
            del self._by_job_status[(old.job, old.status)][run_id]
        if new is not None:
            self._by_status[new.status][run_id] = None
            self._by_job_status.setdefault((new.job, new.status), {})[run_id] = None

    def _event(self, event: Event, output: str | None = None) -> None:
        seq = self._next_event
        self._next_event += 1
        self._events.append(attrs.evolve(event, seq=seq))
        self._event_seqs.append(seq)
        if output is not None:
            self._event_outputs[seq] = output

    def _transition_events(self, run: Run, rows: Iterable[Transition]) -> None:
        for t in rows:
            self._event(
                Event(
                    kind="transition",
                    run_id=run.id,
                    job=run.job,
                    at=t.at,
                    status=run.status,
                    transition=t,
                )
            )

    def _check_claim(self, claim: Claim | None, run_id: str) -> None:
        if claim is None:
            return
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
    ) -> Run:
        """Write *run* by compare-and-set (see `runlife.abc.Store.update_run`)."""
        params = _codec.dumps(dict(run.params), "params")
        result = _codec.dumps(run.result, "result")
        norm = _normalise(run)
        async with self._open():
            row = self._row(run.id)
            self._check_claim(claim, run.id)
            stored = row.run
            if stored.version != expected_version:
                raise ConcurrentUpdate(run.id, expected_version, stored.version)
            if only_if_lapsed and not self._lapsed(row):
                raise ConcurrentUpdate(run.id, expected_version, stored.version)
            self._index(run.id, stored, norm)
            row.run = norm
            row.params, row.result = params, result
            if norm.status not in _LIVE:
                row.owner = None
                row.expires_at = None
            self._transition_events(norm, norm.history[len(stored.history) :])
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
        async with self._open():
            candidates: list[Run] = []
            for name in jobs:
                ids = self._by_job_status.get((name, Status.QUEUED), {})
                candidates.extend(self._runs[rid].run for rid in ids)
            if not candidates or limit <= 0:
                return ()
            candidates.sort(key=lambda r: (-r.priority, r.created_at, r.id))
            now = self._now()
            expires = now + timedelta(seconds=lease)
            live: dict[str, list[Run]] = {}
            chosen: list[tuple[Run, Run]] = []
            for run in candidates:
                if len(chosen) >= limit:
                    break
                if run.job not in live:
                    live[run.job] = [
                        self._runs[rid].run
                        for status in _LIVE
                        for rid in self._by_job_status.get((run.job, status), {})
                    ]
                if not _fits(self._jobs.get(run.job), run, live[run.job]):
                    continue
                moved = jobs[run.job].transition(
                    run, Status.RUNNING, at=now, reason=f"claimed by {worker}"
                )
                chosen.append((run, moved))
                live[run.job].append(moved)
            # Write only once every move is known to be valid: all or nothing.
            claims = tuple(self._hold(run, moved, worker, expires) for run, moved in chosen)
            if claims:
                self._notify()
            return claims

    def _hold(self, old: Run, moved: Run, worker: str, expires: datetime) -> Claim:
        norm = _normalise(moved)
        row = self._runs[old.id]
        self._index(old.id, old, norm)
        row.run = norm
        row.owner = worker
        row.fence += 1
        row.expires_at = expires
        self._transition_events(norm, norm.history[len(old.history) :])
        return Claim(run=self._read(row), owner=worker, fence=row.fence, expires_at=expires)

    async def claim_run(
        self, run_id: str, worker: str, lifecycle: Lifecycle, *, lease: float
    ) -> Claim:
        """Claim one PENDING or QUEUED run, ignoring limits.

        Raises `ConcurrentUpdate` if it is in another status, `RunNotFound`.
        """
        async with self._open():
            row = self._row(run_id)
            run = row.run
            if run.status not in _CLAIMABLE_ONE:
                raise ConcurrentUpdate(run_id, run.version, run.version)
            now = self._now()
            moved = lifecycle.transition(run, Status.RUNNING, at=now, reason=f"claimed by {worker}")
            claim = self._hold(run, moved, worker, now + timedelta(seconds=lease))
            self._notify()
            return claim

    async def heartbeat(self, claim: Claim, *, lease: float) -> datetime:
        """Extend *claim*'s lease; raises `LeaseLost` if it no longer holds
        (a purged run included)."""
        async with self._open():
            self._check_claim(claim, claim.run_id)
            row = self._runs[claim.run_id]
            row.expires_at = self._now() + timedelta(seconds=lease)
            return row.expires_at

    async def abandoned(self, *, limit: int = 100) -> tuple[Run, ...]:
        """Live runs whose lease lapsed (or that have none), oldest lapse first."""
        async with self._open():
            now = self._now()
            rows = [
                self._runs[rid]
                for status in _LIVE
                for rid in self._by_status[status]
                if (exp := self._runs[rid].expires_at) is None or exp <= now
            ]
            rows.sort(key=lambda r: (r.expires_at or _codec.EPOCH, r.run.id))
            return tuple(self._read(r) for r in rows[:limit])

    async def due(self, statuses: Collection[Status], *, limit: int = 100) -> tuple[Run, ...]:
        """Runs in *statuses* whose ``due_at`` has come, earliest first."""
        async with self._open():
            now = self._now()
            runs = [
                self._runs[rid].run
                for status in {Status(s) for s in statuses}
                for rid in self._by_status[status]
                if (at := self._runs[rid].run.due_at) is not None and at <= now
            ]
            runs.sort(key=lambda r: (r.due_at, r.id))
            return tuple(self._read(self._runs[r.id]) for r in runs[:limit])

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
        after: tuple[datetime, str] | None = None
        if query.cursor is not None:
            us, rid = _codec.decode_cursor(query.cursor, 2)
            after = (_codec.from_us(us), rid)
        if query.limit < 1:
            raise InvalidPolicy("limit", query.limit, "a positive number of runs")
        async with self._open():
            runs = self._matching(query)
            if after is not None:
                runs = [r for r in runs if (r.created_at, r.id) < after]
            runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
            page = runs[: query.limit]
            cursor = None
            if len(runs) > query.limit:
                last = page[-1]
                cursor = _codec.encode_cursor(_codec.to_us(last.created_at), last.id)
            return Page(runs=tuple(self._read(self._runs[r.id]) for r in page), next_cursor=cursor)

    async def count_runs(self, query: RunQuery) -> Mapping[Status, int]:
        """How many runs matching *query* are in each status (zeros left out)."""
        async with self._open():
            counts: dict[Status, int] = {}
            for run in self._matching(query):
                counts[run.status] = counts.get(run.status, 0) + 1
            return counts

    # -- items -------------------------------------------------------------------

    async def save_item(self, item: Item, *, claim: Claim | None = None) -> Item:
        """Insert or replace an item, keep its run's progress, write an ``item`` event."""
        output = _codec.item_output_json(item)
        stored = attrs.evolve(
            item,
            status=Status(item.status),
            started_at=_utc_or_none(item.started_at),
            ended_at=_utc_or_none(item.ended_at),
            output=None,
        )
        async with self._open():
            row = self._row(item.run_id)
            self._check_claim(claim, item.run_id)
            old = row.items.get(item.key)
            row.counts = row.counts.moved(None if old is None else old[0].status, stored.status)
            row.items[item.key] = (stored, output)
            run = row.run
            self._event(
                Event(
                    kind="item",
                    run_id=run.id,
                    job=run.job,
                    at=self._now(),
                    status=run.status,
                    item=stored,
                ),
                output,
            )
            self._notify()
            return _with_output(stored, output)

    async def items(self, run_id: str, status: Status | None = None) -> tuple[Item, ...]:
        """The run's items in the order they were first saved (none for an unknown run)."""
        async with self._open():
            row = self._runs.get(run_id)
            if row is None:
                return ()
            return tuple(
                _with_output(item, output)
                for item, output in row.items.values()
                if status is None or item.status == status
            )

    # -- logs --------------------------------------------------------------------

    async def append_logs(
        self, lines: Sequence[LogLine], *, claim: Claim | None = None
    ) -> tuple[LogLine, ...]:
        """Append *lines*, numbering each run's lines from 1 (see the protocol)."""
        encoded = [(line, _codec.log_fields_json(line)) for line in lines]
        async with self._open():
            for line in lines:
                self._row(line.run_id)
            if claim is not None:
                self._check_claim(claim, claim.run_id)
            out: list[LogLine] = []
            for line, fields in encoded:
                row = self._runs[line.run_id]
                stored = attrs.evolve(
                    line, seq=len(row.logs) + 1, at=_utc(line.at), level=line.level, fields={}
                )
                row.logs.append((stored, fields))
                out.append(_with_fields(stored, fields))
            if out:
                self._notify()
            return tuple(out)

    async def logs(self, query: LogQuery) -> LogPage:
        """A page of the run's log lines after ``query.cursor``, in order."""
        after = 0 if query.cursor is None else int(_codec.decode_cursor(query.cursor, 1)[0])
        if query.limit < 1:
            raise InvalidPolicy("limit", query.limit, "a positive number of lines")
        async with self._open():
            row = self._runs.get(query.run_id)
            if row is None:
                return LogPage(lines=())
            found: list[tuple[LogLine, str]] = []
            logs = row.logs
            # seq n sits at index n - 1: start right after the cursor.
            for index in range(max(after, 0), len(logs)):
                line, fields = logs[index]
                if query.stream is not None and line.stream != query.stream:
                    continue
                if query.item is not None and line.item != query.item:
                    continue
                if query.level is not None and line.level != query.level:
                    continue
                found.append((line, fields))
                if len(found) > query.limit:
                    break
            page = found[: query.limit]
            cursor = _codec.encode_cursor(page[-1][0].seq) if len(found) > query.limit else None
            return LogPage(lines=tuple(_with_fields(*lf) for lf in page), next_cursor=cursor)

    async def search_logs(
        self, run_id: str, text: str, *, limit: int = 1000
    ) -> tuple[LogLine, ...]:
        """Lines whose message contains *text* (case-insensitive), in order."""
        needle = text.lower()
        async with self._open():
            row = self._runs.get(run_id)
            if row is None:
                return ()
            out: list[LogLine] = []
            for line, fields in row.logs:
                if needle in line.message.lower():
                    out.append(_with_fields(line, fields))
                    if len(out) >= limit:
                        break
            return tuple(out)

    # -- signals and events ------------------------------------------------------

    async def send_signal(self, run_id: str, name: str, payload: Any = None) -> None:
        """Store signal *name* for the run (replacing an earlier one); `RunNotFound`."""
        text = _codec.dumps(payload, f"signal {name!r} payload")
        async with self._open():
            self._row(run_id).signals[name] = text
            self._notify()

    async def signals(self, run_id: str) -> Mapping[str, Any]:
        """The run's delivered signals, by name (none for an unknown run)."""
        async with self._open():
            row = self._runs.get(run_id)
            if row is None:
                return {}
            return {name: _codec.loads(text) for name, text in row.signals.items()}

    async def events(
        self, *, after: int | None = None, run_id: str | None = None, limit: int = 1000
    ) -> tuple[Event, ...]:
        """Stored events with ``seq`` greater than *after*, in order."""
        async with self._open():
            start = 0 if after is None else bisect_right(self._event_seqs, after)
            out: list[Event] = []
            for event in self._events[start:]:
                if len(out) >= limit:
                    break
                if run_id is not None and event.run_id != run_id:
                    continue
                if event.item is not None:
                    output = self._event_outputs[event.seq]  # type: ignore[index]
                    event = attrs.evolve(event, item=_with_output(event.item, output))
                out.append(event)
            return tuple(out)

    async def wait_changed(self, timeout: float) -> None:
        """Return after the next change, or after *timeout* seconds."""
        self._open()
        changed = self._changed
        assert changed is not None
        with anyio.move_on_after(timeout):
            await changed.wait()

    # -- retention ---------------------------------------------------------------

    async def purge(self, *, older_than: datetime, batch: int = 1000) -> int:
        """Delete terminal runs that ended before *older_than*, with all they own.

        The memory store deletes all of them at once (*batch* is accepted for the
        protocol's sake).
        """
        cutoff = _utc(older_than)
        async with self._open():
            doomed = [
                rid
                for status in TERMINAL
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
            kept = [e for e in self._events if e.run_id not in gone]
            for event in self._events:
                if event.run_id in gone:
                    self._event_outputs.pop(event.seq, None)  # type: ignore[arg-type]
            self._events = kept
            self._event_seqs = [e.seq for e in kept]  # type: ignore[misc]
            self._notify()
            return len(doomed)


def _fits(job: JobRecord | None, run: Run, live: list[Run]) -> bool:
    """Whether one more live run of *run*'s job stays within the job's limits."""
    if job is None:
        return True
    if job.max_concurrency is not None and len(live) >= job.max_concurrency:
        return False
    for label, cap in job.per_label.items():
        value = run.labels.get(label)
        if value is None:
            continue
        if sum(1 for other in live if other.labels.get(label) == value) >= cap:
            return False
    return True


def _has_text(run: Run, needle: str) -> bool:
    if needle in run.job.lower():
        return True
    if run.error is not None and needle in run.error.message.lower():
        return True
    return any(needle in value.lower() for value in run.labels.values())


def _copy_job(job: JobRecord) -> JobRecord:
    return attrs.evolve(
        job, spec=_codec.loads(_codec.dumps(dict(job.spec), "spec")), per_label=dict(job.per_label)
    )


def _with_output(item: Item, output: str) -> Item:
    return attrs.evolve(item, output=_codec.loads(output))


def _with_fields(line: LogLine, fields: str) -> LogLine:
    return attrs.evolve(line, fields=_codec.loads(fields))
