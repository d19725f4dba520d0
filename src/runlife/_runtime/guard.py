"""`StoreGuard`: the one way the runtime's services reach their store.

Two duties, for every call:

* **Busy.** Each call runs inside ``clock.busy()``, so that a virtual clock never
  jumps while a store call is in flight (a database call in a thread looks idle
  to the event loop). ``wait_changed`` is the exception: it is a wait, not work.
* **Outages.** A call that fails with `StoreError` (the store is unreachable,
  its driver failed) is tried again after a delay that doubles up to a cap,
  waited on the clock, and the outage is logged: once when it starts, again
  every so often while it lasts, and once when the store answers again. Nothing
  is dropped: a write is retried until it is stored. A write whose reply was lost
  (it was stored, then the connection failed) is recognised on the retry and
  not written twice. `SchemaMismatch` is not an outage and is raised at once, as
  is every other error (a refused value, a lost lease, a version conflict).

It is also where the runtime learns what it wrote: after each write that moved a
run (a created run's history, an update, a claim) is stored, the guard tells
``on_moves`` the run as stored and the moves that write made (the runtime's hooks
hear of them from there).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import structlog

from runlife._core.claiming import claim_moves
from runlife._core.codec import encode_cursor
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
from runlife._core.status import Status
from runlife.abc import Clock, Store
from runlife.exceptions import Conflict, RunlifeError, SchemaMismatch, StoreError

__all__ = ("StoreGuard",)

P = ParamSpec("P")
T = TypeVar("T")

# How many failed tries of one call between two "still failing" log lines.
_LOG_EVERY = 10


class StoreGuard:
    """A store behind busy marking and outage retries (see the module docstring).

    Args:
        store: the store to guard.
        clock: the runtime's clock: busy marking and the waits between tries.
        first_delay: seconds before the first retry; each next one doubles.
        max_delay: the cap on the delay between tries.
        on_moves: told ``(run, moves)`` after each stored write that moved a run:
            the run as stored and the moves of that write, in order. It must
            not block or raise.

    >>> import anyio
    >>> from datetime import datetime, UTC
    >>> from runlife import Run
    >>> from runlife.stores import MemoryStore
    >>> from runlife.testing import VirtualClock
    >>> clock = VirtualClock(start=datetime(2026, 3, 10, 2, tzinfo=UTC))
    >>> guard = StoreGuard(MemoryStore(clock=clock), clock)
    >>> async def main():
    ...     run = await guard.create_run(Run.create(job="backup", at=clock.now()))
    ...     return (await guard.get_run(run.id)).status
    >>> anyio.run(main)
    <Status.PENDING: 'PENDING'>
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        first_delay: float = 0.1,
        max_delay: float = 30.0,
        on_moves: Callable[[Run, tuple[Transition, ...]], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.on_moves = on_moves
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.outages = 0
        """How many outages the guard rode out (a call that failed, then succeeded)."""
        self._log = structlog.get_logger("runlife.store").bind(store=store.url)

    def __repr__(self) -> str:
        return f"<StoreGuard {self.store!r}>"

    async def _call(
        self, what: str, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        # The first try, as most calls need only one: the loop of retries is for
        # the calls that meet an outage.
        try:
            with self.clock.busy():
                return await fn(*args, **kwargs)
        except SchemaMismatch:
            raise
        except StoreError as exc:
            first = exc
        return await self._retried(what, first, fn, *args, **kwargs)

    async def _retried(
        self,
        what: str,
        first: StoreError,
        fn: Callable[P, Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Ride out the outage that *first* began: try *fn* again until it answers."""
        failures = 0
        error: StoreError | None = first
        while True:
            if error is not None:
                exc, error = error, None
                failures += 1
                delay = min(self.first_delay * 2 ** min(failures - 1, 30), self.max_delay)
                if failures == 1 or failures % _LOG_EVERY == 0:
                    self._log.warning(
                        "store unavailable; retrying",
                        call=what,
                        failures=failures,
                        retry_in=delay,
                        error=str(exc),
                    )
                await self.clock.sleep(delay)
            try:
                with self.clock.busy():
                    result = await fn(*args, **kwargs)
            except SchemaMismatch:
                raise
            except StoreError as exc:
                error = exc
                continue
            except RunlifeError:
                # A refusal (a lost lease, a conflict, a missing run) is an answer
                # too: the store is back.
                self._back(what, failures)
                raise
            self._back(what, failures)
            return result

    def _back(self, what: str, failures: int) -> None:
        if failures:
            self.outages += 1
            self._log.info("store available again", call=what, failures=failures)

    async def _write_once(
        self, what: str, fn: Callable[[], Awaitable[T]], landed: Callable[[], Awaitable[T | None]]
    ) -> T:
        """Write with *fn*; after an outage, a `Conflict` may mean that an earlier
        try was stored and only its reply was lost: *landed* then returns what is
        stored if it is this write, or None if it is not (the conflict is real)."""
        # The first try, as in `_call`: a conflict then is real.
        try:
            with self.clock.busy():
                return await fn()
        except SchemaMismatch:
            raise
        except StoreError as exc:
            first = exc
        try:
            return await self._retried(what, first, fn)
        except Conflict:
            stored = await landed()
            if stored is not None:
                return stored
            raise

    # -- the store's methods, guarded ----------------------------------------------

    async def now(self) -> datetime:
        """The store's time."""
        return await self._call("now", self.store.now)

    async def save_job(self, job: JobRecord) -> JobRecord:
        """Save a job's record."""
        return await self._call("save_job", self.store.save_job, job)

    async def get_job(self, name: str) -> JobRecord:
        """A job's record; `JobNotFound`."""
        return await self._call("get_job", self.store.get_job, name)

    async def list_jobs(self) -> tuple[JobRecord, ...]:
        """Every job record."""
        return await self._call("list_jobs", self.store.list_jobs)

    async def set_paused(self, name: str, paused: bool) -> JobRecord:
        """Pause or unpause a job's schedule."""
        return await self._call("set_paused", self.store.set_paused, name, paused)

    def _moved(self, run: Run, moves: tuple[Transition, ...]) -> None:
        if moves and self.on_moves is not None:
            self.on_moves(run, moves)

    async def create_run(self, run: Run) -> Run:
        """Create a run (idempotent by id, so a retry after a lost reply is safe)."""
        stored = await self._call("create_run", self.store.create_run, run)
        if stored.id == run.id:  # not a run that existed (an idempotent repeat)
            self._moved(stored, stored.history)
        return stored

    async def get_run(self, run_id: str) -> Run:
        """A run; `RunNotFound`."""
        return await self._call("get_run", self.store.get_run, run_id)

    async def update_run(
        self,
        run: Run,
        *,
        expected_version: int,
        claim: Claim | None = None,
        only_if_lapsed: bool = False,
        expected_progress: ItemCounts | None = None,
    ) -> Run:
        """Write *run* by compare-and-set, exactly once (see `_write_once`)."""

        async def write() -> Run:
            return await self.store.update_run(
                run,
                expected_version=expected_version,
                claim=claim,
                only_if_lapsed=only_if_lapsed,
                expected_progress=expected_progress,
            )

        async def landed() -> Run | None:
            stored = await self.get_run(run.id)
            if stored.version == run.version and stored.history == run.history:
                return stored
            return None

        stored = await self._write_once("update_run", write, landed)
        # One version per move (the store's successor rule); the runtime makes no
        # write without a move.
        added = min(stored.version - expected_version, len(stored.history))
        self._moved(stored, stored.history[len(stored.history) - added :])
        return stored

    async def claim(
        self, worker: str, jobs: Mapping[str, Lifecycle], *, limit: int, lease: float
    ) -> tuple[Claim, ...]:
        """Claim QUEUED runs for *worker*.

        A claim whose reply was lost leaves its runs RUNNING under *worker* without
        anyone running them; their lease lapses and the reaper retries them.
        """
        claims = await self._call("claim", self.store.claim, worker, jobs, limit=limit, lease=lease)
        for claim in claims:
            self._moved(claim.run, claim_moves(claim.run, worker))
        return claims

    async def claim_run(
        self, run_id: str, worker: str, lifecycle: Lifecycle, *, lease: float
    ) -> Claim:
        """Claim one PENDING or QUEUED run, ignoring limits."""
        claim = await self._call(
            "claim_run", self.store.claim_run, run_id, worker, lifecycle, lease=lease
        )
        self._moved(claim.run, claim_moves(claim.run, worker))
        return claim

    async def heartbeat(self, claim: Claim, *, lease: float) -> datetime:
        """Extend a claim's lease; `LeaseLost`."""
        return await self._call("heartbeat", self.store.heartbeat, claim, lease=lease)

    async def request_cancel(
        self, run_id: str, *, by: str, reason: str | None = None
    ) -> CancelRequest | None:
        """Ask the holder of a RUNNING or WAITING run to cancel it (None: nobody
        holds it). A retry after a lost reply finds the request stored, and
        returns it."""
        return await self._call(
            "request_cancel", self.store.request_cancel, run_id, by=by, reason=reason
        )

    async def cancel_requests(self, run_ids: Collection[str]) -> Mapping[str, CancelRequest]:
        """The cancel requests of *run_ids*, by run id."""
        return await self._call("cancel_requests", self.store.cancel_requests, run_ids)

    async def abandoned(self, *, limit: int = 100) -> tuple[Run, ...]:
        """Live runs whose lease lapsed."""
        return await self._call("abandoned", self.store.abandoned, limit=limit)

    async def due(self, statuses: Collection[Status], *, limit: int = 100) -> tuple[Run, ...]:
        """Runs in *statuses* whose ``due_at`` has come."""
        return await self._call("due", self.store.due, statuses, limit=limit)

    async def list_runs(self, query: RunQuery) -> Page:
        """A page of runs."""
        return await self._call("list_runs", self.store.list_runs, query)

    async def count_runs(self, query: RunQuery) -> Mapping[Status, int]:
        """How many runs match *query*, by status."""
        return await self._call("count_runs", self.store.count_runs, query)

    async def events(
        self, *, after: int | None = None, run_id: str | None = None, limit: int = 1000
    ) -> tuple[Event, ...]:
        """Stored events after *after* (of one run, with *run_id*), in order."""
        return await self._call(
            "events", self.store.events, after=after, run_id=run_id, limit=limit
        )

    async def save_items(
        self, items: Sequence[Item], *, claim: Claim | None = None
    ) -> tuple[Item, ...]:
        """Save items of one run in one write. Writing them again after a lost reply
        stores the same items and counts (each item's event may be written twice)."""
        return await self._call("save_items", self.store.save_items, items, claim=claim)

    async def items(
        self,
        run_id: str,
        status: Status | None = None,
        *,
        phase: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> tuple[Item, ...]:
        """A run's items, filtered and paged."""
        return await self._call(
            "items", self.store.items, run_id, status, phase=phase, after=after, limit=limit
        )

    async def send_signal(self, run_id: str, name: str, payload: Any = None) -> None:
        """Store a signal for a run."""
        await self._call("send_signal", self.store.send_signal, run_id, name, payload)

    async def signals(self, run_id: str) -> Mapping[str, Any]:
        """A run's delivered signals, by name."""
        return await self._call("signals", self.store.signals, run_id)

    async def purge(
        self, *, older_than: datetime, statuses: Collection[Status] | None = None
    ) -> int:
        """Delete finished runs that ended before *older_than* (in *statuses*)."""
        return await self._call("purge", self.store.purge, older_than=older_than, statuses=statuses)

    async def append_logs(
        self, lines: Sequence[LogLine], *, claim: Claim | None = None, known: int | None = None
    ) -> tuple[LogLine, ...]:
        """Append log lines of one run (with its writer's *claim*), exactly once:
        after a failed try, the lines after *known* (the ``seq`` of the last line
        this writer stored, when it knows it) are read first, and a batch stored
        whose reply was lost is recognised instead of being stored twice."""
        failed = False

        async def append() -> tuple[LogLine, ...]:
            nonlocal failed
            if failed and known is not None and lines:
                landed = await self._landed(lines, known)
                if landed is not None:
                    return landed
            try:
                return await self.store.append_logs(lines, claim=claim)
            except StoreError:
                failed = True
                raise

        return await self._call("append_logs", append)

    async def _landed(self, lines: Sequence[LogLine], known: int) -> tuple[LogLine, ...] | None:
        query = LogQuery(run_id=lines[0].run_id, cursor=encode_cursor(known), limit=len(lines))
        stored = (await self.store.logs(query)).lines
        if len(stored) == len(lines) and all(
            (a.stream, a.level, a.message, a.item, a.attempt)
            == (b.stream, b.level, b.message, b.item, b.attempt)
            for a, b in zip(stored, lines, strict=True)
        ):
            return stored
        return None

    async def logs(self, query: LogQuery) -> LogPage:
        """A page of a run's log."""
        return await self._call("logs", self.store.logs, query)

    async def search_logs(
        self, run_id: str, text: str, *, limit: int = 1000
    ) -> tuple[LogLine, ...]:
        """A run's lines whose message contains *text*."""
        return await self._call("search_logs", self.store.search_logs, run_id, text, limit=limit)

    async def wait_changed(self, timeout: float) -> None:
        """The store's change hint, not marked busy (it is a wait) and not retried:
        a failing store raises `StoreError` to the caller, who waits on its clock."""
        await self.store.wait_changed(timeout)
