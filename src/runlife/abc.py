"""The ports: the protocols that plugin authors implement.

A store (`Store`) keeps everything durable; a clock (`Clock`) tells the time and
waits; an executor (`Executor`) runs the function of an attempt, which the runtime
hands it as a `Call`; hooks (`Hooks`) hear of every change a runtime makes to a run.
Each is a `typing.Protocol`: implement the methods, no base class needed (a `Hooks`
subclass may implement only some).
``runlife.testing.StoreContract`` checks a store against this page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

import anyio

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

__all__ = ("Call", "Clock", "Executor", "Hooks", "Store")


@runtime_checkable
class Clock(Protocol):
    """Tells the time and waits: every wait of the runtime goes through its clock.

    `runlife.SystemClock` is the real one; ``runlife.testing.VirtualClock`` runs
    in virtual time for tests.
    """

    def now(self) -> datetime:
        """The current moment, as an aware datetime."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait *seconds* (0 or less: just yield to other tasks)."""
        ...

    async def sleep_until(self, deadline: datetime) -> None:
        """Wait until *deadline* (at once if it has passed)."""
        ...

    def move_on_at(self, deadline: datetime) -> AbstractContextManager[anyio.CancelScope]:
        """A cancel scope cancelled at *deadline* in this clock's time: how the
        runtime cuts an attempt at its timeout. ``scope.cancelled_caught`` tells
        whether it did."""
        ...

    def busy(self) -> AbstractContextManager[None]:
        """Mark work outside the event loop (a thread, a child process, a database
        call) as in flight, so that a virtual clock does not jump under it."""
        ...


class Call(Protocol):
    """One attempt's call, as the runtime hands it to `Executor.run`.

    Calling it runs the job's function with the attempt's context and params
    (``fn(ctx, **params)``; for an async function, the coroutine to await). An
    executor that runs the function elsewhere, where a Python object cannot go
    (a child process), reads its parts instead.
    """

    @property
    def fn(self) -> Callable[..., Any]:
        """The job's function, as given to ``@runlife.job``."""
        ...

    @property
    def ctx(self) -> Any:
        """The attempt's `runlife.RunContext`."""
        ...

    @property
    def params(self) -> Mapping[str, Any]:
        """The run's params (JSON values, checked at submit)."""
        ...

    def __call__(self) -> Any:
        """``fn(ctx, **params)``."""
        ...


@runtime_checkable
class Executor(Protocol):
    """Runs the function of one attempt: on the event loop, in a thread, in a child
    process.

    The runtime hands `run` the attempt's `Call` inside the attempt's cancel
    scope; when the attempt is cut (its timeout, a cancel, a shutdown), the scope
    is cancelled. An executor that can stop the work then (``can_interrupt``)
    does, and returns (by cancellation) once the work has stopped; one that cannot
    returns control at once and leaves the work running, and the runtime records
    that in the attempt's error.

    The function's exception is raised by `run` as it is. An executor that ran the
    function where its exception cannot be handed over raises
    `runlife.exceptions.AttemptFailed` with the exception's `ErrorInfo` instead:
    the runtime records that info as the attempt's error, and the retry policy
    matches its type by name. ``runlife.executors`` has the built-in executors.
    """

    can_interrupt: bool
    """Whether cancelling `run` stops the work (True for async functions on the
    loop and for child processes; False for threads, which can only be asked
    through ``ctx.cancelled``)."""

    def accepts(self, fn: Callable[..., Any]) -> bool:
        """Whether this executor can run *fn* (an async executor needs an async
        function, a thread executor a sync one, a process executor one it can
        import by name)."""
        ...

    async def run(self, call: Call, *, clock: Clock) -> Any:
        """Run *call* and return its result (an async call's is awaited). Work done
        outside the event loop is marked with ``clock.busy()``, so that a virtual
        clock does not jump under it."""
        ...


class Hooks(Protocol):
    """What a runtime tells the host about its runs, once each change is stored.

    Pass hooks to ``AsyncRuntime(hooks=[...])``. Subclass `Hooks` and override the
    methods you need (the others do nothing), or give any object with some of them.
    Each may be a plain method, called in a worker thread, or an async one, called
    on the event loop. A hook is told after the write is durable, for every write
    of its runtime that moves a run (a submit, a claim, an attempt's end, a retry,
    the mover's and the reaper's moves, a cancel, ``ctx.set_state``), and only
    then; what it does or raises never changes a run.

    >>> from runlife import Run, Transition
    >>> class Notify(Hooks):
    ...     async def on_failure(self, run: Run) -> None:
    ...         print(f"{run.job} failed: {run.error.message}")
    ...     def on_transition(self, run: Run, transition: Transition) -> None:
    ...         print(f"{run.id}: {transition.from_} -> {transition.to}")
    """

    def on_transition(self, run: Run, transition: Transition) -> Awaitable[None] | None:
        """One move of *run*: called for each move of a write, in order. *run* is
        the run as that write stored it (a walk through a custom lifecycle's
        states is one write of several moves)."""
        return None

    def on_success(self, run: Run) -> Awaitable[None] | None:
        """*run* SUCCEEDED (after its `on_transition` calls)."""
        return None

    def on_failure(self, run: Run) -> Awaitable[None] | None:
        """*run* FAILED: ``run.error`` says why (after its `on_transition` calls)."""
        return None

    def on_retry(self, run: Run) -> Awaitable[None] | None:
        """An attempt of *run* failed and it waits to be tried again: it is RETRYING
        until ``run.due_at`` (after its `on_transition` calls). An attempt
        interrupted by a shutdown is requeued at once, not retried: only
        `on_transition` hears of it."""
        return None

    def on_warning(self, run: Run) -> Awaitable[None] | None:
        """*run* SUCCEEDED with warnings: ``run.warnings`` says what (after its
        `on_success` call)."""
        return None


@runtime_checkable
class Store(Protocol):
    """Durable storage of jobs, runs, history, attempts, items, logs and events.

    Rules every store keeps (``StoreContract`` checks each):

    - **One change, one transaction.** A run is written by compare-and-set on its
      ``version``, together with its new history rows and its event.
    - **Store time.** Leases are judged by the store's ``now()``: the database's
      clock for SQL stores, the given clock for the memory store.
    - **Fences.** A claim bumps the run's fence; every worker write names its
      `Claim` and is refused with `LeaseLost` unless run, owner and fence match.
      A write that moves a run out of RUNNING and WAITING ends the hold: owner and
      lease are cleared (the fence number stays, and only ever grows).
    - **Idempotent creation.** A run whose ``(job, idempotency_key)`` is stored,
      or a SCHEDULED run whose ``(job, scheduled_for)`` is stored, is not created
      again: the stored run is returned.
    - **Cancel requests.** A RUNNING or WAITING run may carry one stored cancel
      request (`request_cancel`), for the process that holds it; it is kept with
      the run and purged with it.
    - **Progress is the store's.** ``save_item`` maintains ``run.progress``;
      ``update_run`` does not write it, and every read returns current counts.
    - **JSON only.** Params, results, item outputs and log fields must be JSON;
      stores refuse anything else with `NotSerializable` before writing.
    - **Errors.** Driver errors surface as `StoreError` (chained with ``from``);
      nothing else of the driver leaks.

    Stores open on ``async with store`` or on first use, and close with
    ``aclose()``.
    """

    url: str
    """The URL this store was opened from (without a password)."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def aclose(self) -> None:
        """Close connections; the store cannot be used afterwards."""
        ...

    async def now(self) -> datetime:
        """The store's notion of now (the database clock; the clock of a memory store)."""
        ...

    # -- jobs -----------------------------------------------------------------

    async def save_job(self, job: JobRecord) -> JobRecord:
        """Insert or replace a job's record (``paused`` and ``last_scheduled_for``
        are kept from the stored record when it exists); returns what is stored."""
        ...

    async def get_job(self, name: str) -> JobRecord:
        """The job's record; raises `JobNotFound`."""
        ...

    async def list_jobs(self) -> tuple[JobRecord, ...]:
        """All job records, by name."""
        ...

    async def set_paused(self, name: str, paused: bool) -> JobRecord:
        """Pause or unpause a job's schedule; raises `JobNotFound`."""
        ...

    # -- runs -----------------------------------------------------------------

    async def create_run(self, run: Run) -> Run:
        """Store a new run (version 0) with its history and a ``transition`` event
        per history row; returns the stored run, which is an existing one for a
        repeated idempotency key or schedule slot (see the class rules). A
        SCHEDULED run advances its job's ``last_scheduled_for`` (creating a bare
        job record if there is none)."""
        ...

    async def get_run(self, run_id: str) -> Run:
        """The run, with its current progress; raises `RunNotFound`."""
        ...

    async def update_run(
        self,
        run: Run,
        *,
        expected_version: int,
        claim: Claim | None = None,
        only_if_lapsed: bool = False,
        expected_progress: ItemCounts | None = None,
    ) -> Run:
        """Write *run* if the stored version is *expected_version*.

        *run* is a successor of the stored run (``run.version`` is higher); the
        transitions of ``run.history`` past the stored ones are appended, with an
        event each. With *claim*, the write is a worker's and is refused with
        `LeaseLost` unless the claim still holds. With *only_if_lapsed* (the
        reaper), it is refused with `ConcurrentUpdate` unless the run's lease has
        lapsed by store time. With *expected_progress*, it is refused with
        `ConcurrentUpdate` unless the run's stored item counts are these (an
        outcome decided from the run's items is written only if no item changed
        since). Raises `ConcurrentUpdate` on a version mismatch and
        `RunNotFound`. Returns the stored run.
        """
        ...

    async def claim(
        self,
        worker: str,
        jobs: Mapping[str, Lifecycle],
        *,
        limit: int,
        lease: float,
    ) -> tuple[Claim, ...]:
        """Claim up to *limit* QUEUED runs of *jobs* for *worker*, atomically.

        Picks by priority (higher first), then age (older first), skipping runs
        whose job's ``max_concurrency`` or ``per_label`` limit is reached (counting
        RUNNING and WAITING runs). Each claimed run moves to RUNNING through its
        job's lifecycle (a new attempt), gets owner *worker*, a lease of *lease*
        seconds from store time and a fence one higher than before. Jobs not in
        *jobs* are never claimed. The limits hold under any number of concurrent
        claimers.
        """
        ...

    async def claim_run(
        self, run_id: str, worker: str, lifecycle: Lifecycle, *, lease: float
    ) -> Claim:
        """Claim one given PENDING or QUEUED run, ignoring limits (for jobs that
        start without queueing). Raises `ConcurrentUpdate` if it is no longer
        PENDING or QUEUED, `RunNotFound` if absent."""
        ...

    async def heartbeat(self, claim: Claim, *, lease: float) -> datetime:
        """Extend *claim*'s lease to store time + *lease*; returns the new expiry.
        Raises `LeaseLost` if the claim no longer holds."""
        ...

    async def abandoned(self, *, limit: int = 100) -> tuple[Run, ...]:
        """RUNNING or WAITING runs whose lease has lapsed by store time (or that
        have none), oldest lapse first."""
        ...

    async def request_cancel(
        self, run_id: str, *, by: str, reason: str | None = None
    ) -> CancelRequest | None:
        """Store a request to cancel the RUNNING or WAITING run *run_id*, for the
        process that holds it (which reads it with `cancel_requests`).

        Returns the run's request: the first one stands, and a later call stores
        nothing and returns it. A run in any other status gets no request: the
        call stores nothing and returns None (nobody holds a PENDING, QUEUED or
        RETRYING run: cancel it by compare-and-set with `update_run`; a terminal
        run is never cancelled). A request is kept with its run, whatever the run
        does next, until the run is purged. Raises `RunNotFound`.
        """
        ...

    async def cancel_requests(self, run_ids: Collection[str]) -> Mapping[str, CancelRequest]:
        """The stored cancel requests of *run_ids*, by run id; runs without one
        (and unknown ids) are left out. One call answers for every run a process
        holds."""
        ...

    async def due(self, statuses: Collection[Status], *, limit: int = 100) -> tuple[Run, ...]:
        """Runs in *statuses* whose ``due_at`` has come by store time, earliest first."""
        ...

    async def list_runs(self, query: RunQuery) -> Page:
        """Runs matching *query*, newest first, one page at a time."""
        ...

    async def count_runs(self, query: RunQuery) -> Mapping[Status, int]:
        """How many runs matching *query* (its limit and cursor aside) are in each
        status; statuses with none are left out."""
        ...

    # -- items ----------------------------------------------------------------

    async def save_item(self, item: Item, *, claim: Claim | None = None) -> Item:
        """Insert or replace the item ``(run_id, key)``, update the run's progress
        and write an ``item`` event. Raises `LeaseLost` for a stale *claim*."""
        ...

    async def save_items(
        self, items: Sequence[Item], *, claim: Claim | None = None
    ) -> tuple[Item, ...]:
        """`save_item` for several items of one run, in order, in one transaction
        (all or none): a later item of the same key replaces an earlier one, and
        each gets its event. Returns the stored items. Raises `LeaseLost` for a
        stale *claim*, `RunNotFound`, `InvalidValue` for items of several runs."""
        ...

    async def items(
        self,
        run_id: str,
        status: Status | None = None,
        *,
        phase: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> tuple[Item, ...]:
        """The run's items in the order they were first saved, of *status* and
        *phase* if given; with *after* (a key), only those saved after that item
        (none if the run has no item of that key); at most *limit* of them."""
        ...

    # -- logs -----------------------------------------------------------------

    async def append_logs(
        self, lines: Sequence[LogLine], *, claim: Claim | None = None
    ) -> tuple[LogLine, ...]:
        """Append *lines* (of one or more runs) in one transaction; the store gives
        each line its run's next ``seq`` (the given ``seq`` is ignored) and
        returns the stored lines. Raises `LeaseLost` for a stale *claim*."""
        ...

    async def logs(self, query: LogQuery) -> LogPage:
        """A page of the run's log lines after ``query.cursor``, in order."""
        ...

    async def search_logs(
        self, run_id: str, text: str, *, limit: int = 1000
    ) -> tuple[LogLine, ...]:
        """Lines of the run's log whose message contains *text* (case-insensitive),
        in order; each line's ``seq`` is its position."""
        ...

    # -- signals and events ---------------------------------------------------

    async def send_signal(self, run_id: str, name: str, payload: Any = None) -> None:
        """Store signal *name* (JSON *payload*) for the run; a later one replaces it."""
        ...

    async def signals(self, run_id: str) -> Mapping[str, Any]:
        """The run's delivered signals, by name."""
        ...

    async def events(
        self, *, after: int | None = None, run_id: str | None = None, limit: int = 1000
    ) -> tuple[Event, ...]:
        """Stored events with ``seq`` greater than *after*, in order."""
        ...

    async def wait_changed(self, timeout: float) -> None:
        """Return when the store may have changed (a hint), or after *timeout*
        real seconds. Callers always re-read: a wake-up may be spurious."""
        ...

    # -- retention ------------------------------------------------------------

    async def purge(
        self,
        *,
        older_than: datetime,
        batch: int = 1000,
        statuses: Collection[Status] | None = None,
    ) -> int:
        """Delete terminal runs that ended before *older_than* (only those in
        *statuses*, a collection of terminal statuses, when given), with their
        history, attempts, items, logs, signals and events, in batches of *batch*
        runs; never an active run. Returns how many runs were deleted."""
        ...
