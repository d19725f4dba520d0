"""The worker: claims runs, runs their attempts, keeps their leases, records outcomes.

* **Claiming.** One loop claims QUEUED runs of the runtime's jobs in batches,
  never holding more than ``concurrency`` runs; it wakes when a run may have
  become claimable in this process (a `Pulse`), when the store changed, or
  after ``poll`` seconds of clock time.
* **Running.** A fixed pool of ``concurrency`` tasks takes the claimed runs
  and runs each attempt on its executor, inside a cancel scope that a watch
  cancels at the attempt's deadlines: its ``Timeout(attempt=...)`` (which stands
  still while the run waits for a signal, see `waiting`), ``run=`` and
  ``heartbeat=``.
* **Policy.** Each attempt runs under the policy in force for its job when it
  starts (read from the store: ``set_policy`` may have changed it), from its
  time limits to the decision on its failure.
* **Leases.** One loop renews the lease of every held run, every ``lease / 3``
  seconds. A renewal refused with `LeaseLost` (the run was reaped, cancelled in
  another process, or claimed elsewhere) stops the attempt without writing.
* **Cancel requests.** After each round of renewals, one store call reads the
  cancel requests of the held runs (another process asked: `AsyncRuntime.cancel`);
  each such attempt is cancelled and its run ends CANCELLED as the request says.
  An attempt that ends in a retry or a requeue while a request stands ends its
  run CANCELLED instead.
* **Outcomes.** A returned value ends the run SUCCEEDED (or as its items
  decide); a failure goes to `decide_failure`, which retries it (RETRYING,
  due after the delay: the mover queues it again) or fails it. Every write
  names the worker's claim, so a worker that lost its run is refused.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, Literal

import anyio
import attrs
import structlog

from runlife._core.claiming import LIVE
from runlife._core.fast import compile_copier
from runlife._core.lifecycle import Lifecycle
from runlife._core.policy import Deadline, decide_failure, decide_wait_timeout
from runlife._core.queries import Claim
from runlife._core.records import ErrorInfo
from runlife._core.run import Run
from runlife._core.spec import JobSpec
from runlife._core.status import Status
from runlife._core.values import check_json
from runlife._runtime import capture
from runlife._runtime.context import RunContext
from runlife._runtime.guard import StoreGuard
from runlife._runtime.items import RunItems, items_verdict
from runlife._runtime.job import Job
from runlife._runtime.jobs import GOES_ON, apply_decision, honour_cancel, to_cancelled, to_queue
from runlife._runtime.logs import LogSettings, LoopHandle, RunLog
from runlife._runtime.waiting import Waits, wait_for_signal
from runlife._runtime.wake import Latch, Pulse, Queue, nap
from runlife.abc import Clock, Executor
from runlife.exceptions import (
    AttemptFailed,
    ConcurrentUpdate,
    InvalidTransition,
    LeaseLost,
    NotSerializable,
    RunlifeError,
)
from runlife.executors import AsyncExecutor, ThreadExecutor

__all__ = ("Worker",)

CutKind = Literal["cancel", "interrupt", "lost", "heartbeat", "timeout", "signal"]

_STILL_RUNNING = "; its thread could not be interrupted and is still running"
# A returned value and the warnings set on the run (see `runlife._core.fast`: the
# result is checked as JSON just before).
_succeeded_copy: Callable[..., Run] = compile_copier(Run, ("result", "warnings"))
_FINISH_TRIES = 3


class _Tracked:
    """The attempt's call (a `runlife.abc.Call`), remembering whether it has returned."""

    __slots__ = ("ctx", "done", "fn", "params")

    def __init__(self, fn: Callable[..., Any], ctx: RunContext, params: Mapping[str, Any]) -> None:
        self.fn, self.ctx, self.params = fn, ctx, params
        self.done = False

    def __call__(self) -> Any:
        try:
            return self.fn(self.ctx, **self.params)
        finally:
            self.done = True


class _TrackedAsync(_Tracked):
    __slots__ = ()

    async def __call__(self) -> Any:
        try:
            return await self.fn(self.ctx, **self.params)
        finally:
            self.done = True


class Held:
    """One claimed run, from its claim to its last write (the worker's record).

    What most attempts never use is made when first needed: the attempt's log
    (its first line, from any thread), its cancel scope (when it starts), the
    event that `Worker.cancel` waits on.
    """

    def __init__(
        self,
        claim: Claim,
        job: Job,
        clock: Clock,
        guard: StoreGuard,
        waits: Waits | None = None,
        *,
        make_log: Callable[[Held], RunLog] | None = None,
        specs: dict[str, JobSpec] | None = None,
    ) -> None:
        self.claim = claim
        self.run = claim.run
        self.job = job
        self.spec: JobSpec = job.spec
        """The policy the attempt runs under: read from the store when it starts."""
        self.specs = specs if specs is not None else {}
        """The policies read for the batch of claims it came in, by job."""
        self.lifecycle: Lifecycle = job.spec.lifecycle
        self.scope: anyio.CancelScope | None = None
        self.watch: anyio.CancelScope | None = None
        self.started = False
        self.finishing = False
        self.done = Latch()
        """Set once the worker is done with the run (its outcome written)."""
        self.ctx: RunContext | None = None
        self.items: RunItems | None = None
        self.log: RunLog | None = None
        self._make_log = make_log
        self._log_lock = threading.Lock()
        self._log_closed = False
        self.cut_kind: CutKind | None = None
        self.cut_reason: str | None = None
        self.cut_deadline: Deadline | None = None
        self.waits = waits if waits is not None else Waits(clock)
        self.guard = guard
        self._clock = clock

    # -- the attempt's log, made with its first line -------------------------------------

    def run_log(self) -> RunLog:
        """The attempt's log, made now if need be (from any thread)."""
        log = self.log
        if log is None:
            with self._log_lock:
                log = self.log
                if log is None:
                    if self._make_log is None:
                        raise RuntimeError("this attempt keeps no log")
                    log = self.log = self._make_log(self)
                    if self._log_closed:  # a thread left running logs after the end
                        log.discard()
        return log

    def close_log(self) -> RunLog | None:
        """End the making of the log: the log if it was made (to close or discard),
        else None; a log made later takes nothing."""
        with self._log_lock:
            self._log_closed = True
            return self.log

    def logger(self) -> Any:
        """``ctx.log``: the attempt log's logger."""
        return self.run_log().logger

    def take_text(self, stream: capture.Stream, text: str, item: str | None) -> None:
        """Captured output (`capture.Sink`): into the attempt's log."""
        self.run_log().take_text(stream, text, item)

    def take_record(self, record: logging.LogRecord, item: str | None) -> None:
        """A captured `logging` record (`capture.Sink`): into the attempt's log."""
        self.run_log().take_record(record, item)

    # -- ending -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the worker is done with the run."""
        return self.done.is_set

    @property
    def state(self) -> str:
        """The run's current state."""
        return self.run.state

    def cut(
        self, kind: CutKind, reason: str | None = None, deadline: Deadline | None = None
    ) -> None:
        """Stop the attempt (the first reason given wins)."""
        if self.cut_kind is not None or self.closed:
            return
        self.cut_kind, self.cut_reason, self.cut_deadline = kind, reason, deadline
        if self.scope is not None:
            self.scope.cancel()
        self.waits.stop()
        if self.ctx is not None:
            self.ctx._cancel()

    def lose(self) -> bool:
        """The lease is lost: stop the attempt, write nothing. False if the
        attempt's outcome is being written already (that write ended the lease)."""
        if self.finishing or self.closed:
            return False
        self.cut("lost")
        return True

    async def set_state(self, name: str) -> None:
        """Move the run to *name*, a state of its current status, and store it."""
        if self.closed:
            raise LeaseLost(self.claim.run_id, self.claim.owner, self.claim.fence)
        run, lifecycle = self.run, self.lifecycle
        if name not in lifecycle.states or lifecycle.status_of(name) is not run.status:
            same = {s for s in lifecycle.allowed(run.state) if lifecycle.status_of(s) is run.status}
            raise InvalidTransition(run.id, run.state, name, same)
        await self.move(name, "set by the job")

    async def move(self, to: Status | str, reason: str) -> None:
        """Move the run to *to* (a state, or a status's entry state) and store it."""
        if self.closed:
            raise LeaseLost(self.claim.run_id, self.claim.owner, self.claim.fence)
        run = self.run
        moved = self.lifecycle.transition(run, to, at=self._clock.now(), reason=reason)
        # Shielded: a write that happened is known, so the outcome is written after it.
        with anyio.CancelScope(shield=True):
            self.run = await self.guard.update_run(
                moved, expected_version=run.version, claim=self.claim
            )

    async def wait_for(self, name: str, timeout: float | timedelta | None) -> Any:
        """Wait for signal *name* of the run and return its payload (`waiting`)."""
        return await wait_for_signal(self, name, timeout)


@attrs.frozen(kw_only=True)
class _Outcome:
    result: Any = None
    error: BaseException | ErrorInfo | None = None
    still_running: bool = False


class Worker:
    """Claims and runs the runtime's jobs (see the module docstring).

    Args:
        guard: the store.
        clock: the runtime's clock.
        jobs: the runtime's jobs by name.
        worker_id: the owner name of this worker's claims.
        executor_for: the executor of each job (by default async functions on the
            loop, sync ones on a thread executor of *concurrency* threads).
        lease: the lease of each claim, in seconds.
        concurrency: how many runs it holds at most (and its pool's size).
        poll: how long (clock seconds) it waits for a hint before claiming again.
        changed: pulsed after each write of a run's outcome.
        store_changed: pulsed when the store may have changed (a hint).
        on_retry: told each run it moved to RETRYING (due again at its ``due_at``).
        spec_for: the policy in force for a job, by name, read as each attempt
            starts (the runtime's `JobBook.fresh`); each job's own spec unless given.
        logs: how the attempts' logs are kept (`LogSettings`).

    >>> import anyio, runlife
    >>> from datetime import datetime, UTC
    >>> from runlife import Run, Status
    >>> from runlife.stores import MemoryStore
    >>> from runlife.testing import VirtualClock
    >>> @runlife.job
    ... async def hello(ctx):
    ...     return "hi"
    >>> clock = VirtualClock(start=datetime(2026, 3, 10, 2, tzinfo=UTC))
    >>> store = MemoryStore(clock=clock)
    >>> worker = Worker(guard=StoreGuard(store, clock), clock=clock, jobs={"hello": hello},
    ...                 worker_id="w1")
    >>> async def main():
    ...     run = await store.create_run(Run.create(job="hello", at=clock.now(),
    ...                                             initial=Status.QUEUED))
    ...     async with anyio.create_task_group() as tg:
    ...         await tg.start(worker.serve)
    ...         await clock.sleep(1)
    ...         await worker.drain(grace=0)
    ...     return (await store.get_run(run.id)).result
    >>> anyio.run(main)
    'hi'
    """

    def __init__(
        self,
        *,
        guard: StoreGuard,
        clock: Clock,
        jobs: Mapping[str, Job],
        worker_id: str,
        executor_for: Callable[[Job], Executor] | None = None,
        lease: float = 30,
        concurrency: int = 16,
        poll: float = 5,
        changed: Pulse | None = None,
        store_changed: Pulse | None = None,
        on_retry: Callable[[Run], None] | None = None,
        spec_for: Callable[[str], Awaitable[JobSpec]] | None = None,
        logs: LogSettings | None = None,
    ) -> None:
        self.guard = guard
        self.clock = clock
        self.jobs = dict(jobs)
        self.executor_for = executor_for or _by_function(concurrency)
        self.worker_id = worker_id
        self.lease = lease
        self.concurrency = concurrency
        self.poll = poll
        self.changed = changed or Pulse()
        self.store_changed = store_changed or Pulse()
        self.on_retry = on_retry or _ignore
        self.spec_for = spec_for or self._own_spec
        self.logs = logs or LogSettings()
        self.claimable = Pulse()
        """Pulse it when a run of its jobs may have become claimable."""
        self.held: dict[str, Held] = {}
        self._freed = Pulse()
        # The pool's queue and anyio's scopes belong to an event loop: made in `serve`.
        self._pool: Queue[Held] | None = None
        self._claiming: anyio.CancelScope | None = None
        # The store call of a claim in flight: it is never cut by a stop (a claim
        # that lands is adopted, then handed back), only once a drain's grace is over.
        self._claim_call: anyio.CancelScope | None = None
        self._claim_ended: anyio.Event | None = None
        self._stopped = False
        self._tg: anyio.abc.TaskGroup | None = None
        self._loop: LoopHandle | None = None
        self._wake = (self.store_changed,)
        self._log = structlog.get_logger("runlife.worker").bind(worker=worker_id)

    # -- serving -------------------------------------------------------------------

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Claim, run and heartbeat until cancelled (after `drain`)."""
        self._pool = pool = Queue[Held]()
        self._loop = LoopHandle.current()
        try:
            with capture.installed():
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    for _ in range(self.concurrency):
                        tg.start_soon(self._pool_task, pool)
                    tg.start_soon(self._heartbeat_loop)
                    tg.start_soon(self._claim_loop)
                    task_status.started()
        finally:
            self._pool = None

    async def _claim_loop(self) -> None:
        ended = self._claim_ended = anyio.Event()
        try:
            await self._claim_until_stopped()
        finally:
            ended.set()

    async def _claim_until_stopped(self) -> None:
        lifecycles = {name: job.spec.lifecycle for name, job in self.jobs.items()}
        if not lifecycles or self._stopped:
            return
        self._claiming = anyio.CancelScope()
        with self._claiming:
            while not self._stopped:
                seen, freed = self.claimable.count, self._freed.count
                hinted = self.store_changed.count
                free = self.concurrency - len(self.held)
                if free > 0:
                    claims: tuple[Claim, ...] = ()
                    # Shielded from a stop; cut by a drain's end (its own cancel).
                    self._claim_call = call = anyio.CancelScope(shield=True)
                    with call:
                        try:
                            claims = await self.guard.claim(
                                self.worker_id, lifecycles, limit=free, lease=self.lease
                            )
                        except RunlifeError as exc:
                            self._log.error("claim failed", error=str(exc))
                    specs: dict[str, JobSpec] = {}
                    for claim in claims:
                        self.adopt(claim, specs)
                    if len(claims) == free:
                        continue
                until = self.clock.now() + timedelta(seconds=self.poll)
                if free > 0:
                    # Not on a freed slot: its end makes no run claimable, but
                    # for a job with limits (pulsed as `claimable` then).
                    pulses = [(self.claimable, seen), (self.store_changed, hinted)]
                    await nap(self.clock, until, pulses=pulses)
                    if self.claimable.count == seen:
                        # Woken by a store hint: those this process's writes woke
                        # first (a workflow driver queuing the next run) go first,
                        # so that the claim finds what they queued.
                        await anyio.lowlevel.checkpoint()
                else:
                    await nap(self.clock, until, pulses=[(self._freed, freed)])

    def adopt(self, claim: Claim, specs: dict[str, JobSpec] | None = None) -> None:
        """Run the attempt of *claim* (a run this worker holds) on the pool.

        The claims of one batch share *specs*: the policy of each of their jobs
        is read from the store once, as the first of their attempts starts.
        """
        job = self.jobs[claim.run.job]
        waits = Waits(self.clock, wake=self._wake, poll=self.poll)
        held = Held(claim, job, self.clock, self.guard, waits, make_log=self._log_of, specs=specs)
        if self._pool is None:
            raise RuntimeError("the worker is not serving: start Worker.serve first")
        self.held[claim.run_id] = held
        if self._stopped:  # claimed while the worker stopped: handed back at once
            held.cut("interrupt", "its runtime shut down before the attempt started")
        self._pool.put(held)

    async def _pool_task(self, pool: Queue[Held]) -> None:
        while True:
            held = await pool.get()
            try:
                await self._attempt(held)
            except Exception:
                self._log.exception("attempt failed in the runtime", run_id=held.run.id)
            finally:
                self.held.pop(held.run.id, None)
                held.done.set()
                # Those who wait on an outcome first (a workflow driver may queue
                # the next run), then the claim loop: its claim then finds that run.
                self.changed.pulse()
                self._freed.pulse()
                limits = held.spec.limits
                if limits.max_concurrency is not None or limits.per_label:
                    self.claimable.pulse()  # a run its limits held back may go now

    async def _heartbeat_loop(self) -> None:
        while True:
            await self.clock.sleep(self.lease / 3)
            for held in list(self.held.values()):
                # A run whose outcome is being written keeps its lease too: the
                # write may be riding out a store outage.
                if held.closed:
                    continue
                try:
                    await self.guard.heartbeat(held.claim, lease=self.lease)
                except LeaseLost:
                    if held.lose():
                        await self._lost(held.run.id, "its attempt is stopped here without writing")
                except RunlifeError as exc:
                    self._log.error("heartbeat failed", run_id=held.run.id, error=str(exc))
            await self._take_cancel_requests()

    async def _take_cancel_requests(self) -> None:
        """Cancel the attempts of the held runs another process asked to cancel."""
        asked = [
            run_id
            for run_id, held in self.held.items()
            if not (held.closed or held.finishing or held.cut_kind is not None)
        ]
        if not asked:
            return
        try:
            requests = await self.guard.cancel_requests(asked)
        except RunlifeError as exc:
            self._log.error("reading cancel requests failed", error=str(exc))
            return
        for run_id, request in requests.items():
            held = self.held.get(run_id)
            if held is not None and held.cut_kind is None:
                self._log.info(
                    "cancel requested; cancelling the attempt",
                    run_id=run_id,
                    by=request.by,
                    reason=request.reason,
                )
                held.cut("cancel", request.message)

    async def _lost(self, run_id: str, outcome: str) -> None:
        """Say why a held run was lost: cancelled elsewhere (said plainly), or
        reaped or claimed elsewhere (a warning)."""
        try:
            run = await self.guard.get_run(run_id)
        except RunlifeError:
            run = None
        if run is not None and run.status is Status.CANCELLED:
            self._log.info(f"the run was cancelled elsewhere; {outcome}", run_id=run_id)
            return
        self._log.warning(
            f"lease lost: the run was reaped or claimed elsewhere; {outcome}", run_id=run_id
        )

    # -- stopping ------------------------------------------------------------------

    def stop_claiming(self) -> None:
        """Claim nothing more."""
        self._stopped = True
        if self._claiming is not None:
            self._claiming.cancel()

    async def cancel(self, run_id: str, reason: str | None) -> bool:
        """Cancel the attempt of *run_id* if this worker holds it, and return once
        its outcome is written; False if it does not hold the run."""
        held = self.held.get(run_id)
        if held is None:
            return False
        held.cut("cancel", reason)
        await held.done.wait()
        return True

    async def drain(self, grace: float) -> None:
        """Stop: let running attempts end for *grace* seconds, interrupt the rest
        (RETRYING -> QUEUED, no budget spent), wait for their writes, then end the
        worker's tasks."""
        self.stop_claiming()
        until = self.clock.now() + timedelta(seconds=grace)
        if self._claim_ended is not None:
            # A claim in flight lands (its runs are handed back) within the grace.
            with self.clock.move_on_at(until):
                await self._claim_ended.wait()
            if self._claim_call is not None:
                self._claim_call.cancel()
            await self._claim_ended.wait()
        for held in list(self.held.values()):
            if not held.started:
                held.cut("interrupt", "its runtime shut down before the attempt started")
        while self.held and self.clock.now() < until:
            seen = self.changed.count
            if self.held:
                await nap(self.clock, until, pulses=[(self.changed, seen)])
        for held in list(self.held.values()):
            held.cut("interrupt", "its runtime shut down")
        while self.held:
            seen = self.changed.count
            if self.held:
                await self.changed.wait(seen)
        self.abort()

    def abort(self) -> None:
        """End the worker's tasks now, whatever they hold (after `drain`)."""
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    # -- one attempt ---------------------------------------------------------------

    async def _own_spec(self, name: str) -> JobSpec:
        return self.jobs[name].spec

    async def _attempt(self, held: Held) -> None:
        if held.cut_kind is None:
            name = held.job.name
            spec = held.specs.get(name)
            if spec is None:
                spec = held.specs[name] = await self.spec_for(name)
            held.spec = spec
        outcome = _Outcome() if held.cut_kind is not None else await self._execute(held)
        with anyio.CancelScope(shield=True):
            await self._finish(held, outcome)

    def _log_of(self, held: Held) -> RunLog:
        assert self._tg is not None
        assert self._loop is not None
        return RunLog(
            run=held.run,
            claim=held.claim,
            guard=self.guard,
            clock=self.clock,
            settings=self.logs,
            spawn=self._tg.start_soon,
            loop=self._loop,
        )

    async def _execute(self, held: Held) -> _Outcome:
        job, run = held.job, held.run
        timeout = held.spec.timeout
        assert self._tg is not None
        held.scope = anyio.CancelScope()  # before any await: a cut from now on cancels it
        items = RunItems(
            run=run, claim=held.claim, guard=self.guard, clock=self.clock, spawn=self._tg.start_soon
        )
        held.items = items
        ctx = RunContext(
            run_id=run.id,
            job=run.job,
            attempt=run.attempt,
            params=run.params,
            clock=self.clock,
            holder=held,
            items=items,
        )
        held.ctx = ctx
        held.started = True
        executor = self.executor_for(job)
        call = (_TrackedAsync if job.is_async else _Tracked)(job.fn, ctx, run.params)
        limited = (timeout.attempt, timeout.run, timeout.heartbeat) != (None, None, None)
        if limited:
            held.watch = anyio.CancelScope()
            await self._tg.start(self._watch, held)  # a deadline passed already cuts now
        result: Any = None
        error: BaseException | ErrorInfo | None = None
        with held.scope:
            try:
                with capture.routed(held):  # its prints and logging records: its log
                    result = await executor.run(call, clock=held.waits.attempt_clock)
            except AttemptFailed as failed:
                error = failed.error  # raised out of the executor's reach
            except Exception as exc:
                error = exc
        if held.watch is not None:
            held.watch.cancel()
        # A thread stopped in ctx.wait_for was told so there, and unwinds.
        still = not executor.can_interrupt and not call.done and not held.waits.stopped
        return _Outcome(result=result, error=error, still_running=still)

    async def _watch(
        self, held: Held, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Cut the attempt at its first deadline; the deadlines move as the run
        waits for signals (`Timeout.deadlines`). Started once it has looked."""
        timeout = held.spec.timeout
        assert held.watch is not None
        with held.watch:
            while held.ctx is not None and not held.closed:
                seen = held.waits.moved.count
                deadline = timeout.next_deadline(
                    held.run, last_beat=held.ctx.last_beat, waited=held.waits.waited
                )
                if deadline is not None and self.clock.now() >= deadline.at:
                    kind: CutKind = "heartbeat" if deadline.kind == "heartbeat" else "timeout"
                    held.cut(kind, deadline=deadline)
                    break
                task_status.started()
                task_status = anyio.TASK_STATUS_IGNORED
                if deadline is None:
                    await held.waits.moved.wait(seen)
                else:
                    await nap(self.clock, deadline.at, pulses=[(held.waits.moved, seen)])
        task_status.started()

    async def _finish(self, held: Held, outcome: _Outcome) -> None:
        held.finishing = True
        if held.items is not None:
            # Every item write is stored before the outcome (none once the run is lost).
            await held.items.close(write=held.cut_kind != "lost")
        log = held.close_log()
        if held.cut_kind == "lost":
            if log is not None:
                log.discard()
            return
        spec = held.spec
        note = _STILL_RUNNING if outcome.still_running else ""
        warnings = held.ctx.warnings if held.ctx is not None else ()
        if log is not None:
            # Before the outcome: a reader that sees the run terminal sees its whole log.
            warnings = (*warnings, *await log.close())

        def failed(run: Run, error: BaseException | ErrorInfo) -> Run:
            decision = decide_failure(
                run, error, at=self.clock.now(), retry=spec.retry, timeout=spec.timeout
            )
            return apply_decision(decision, _warned(run, warnings), held.lifecycle)

        build: Callable[[Run], Awaitable[Run]]
        by_items = False  # an outcome judged on the run's items
        kind = held.cut_kind
        if kind == "cancel":
            message = held.cut_reason or "cancelled"

            async def build(run: Run) -> Run:
                return to_cancelled(
                    _warned(run, warnings),
                    held.lifecycle,
                    at=self.clock.now(),
                    message=message,
                    note=note,
                )

        elif kind == "interrupt":
            why = held.cut_reason or "its runtime shut down"
            error = ErrorInfo(kind="interrupted", type="Interrupted", message=why + note)

            async def build(run: Run) -> Run:
                now = self.clock.now()
                decision = decide_failure(
                    run, error, at=now, retry=spec.retry, timeout=spec.timeout
                )
                moved = apply_decision(decision, _warned(run, warnings), held.lifecycle)
                if moved.status is not Status.RETRYING:
                    return moved
                return to_queue(moved, spec, at=now, reason="requeued: " + why)

        elif kind == "signal":
            assert held.waits.timed_out is not None
            signal, limit = held.waits.timed_out

            async def build(run: Run) -> Run:
                decision = decide_wait_timeout(run, signal, limit, at=self.clock.now())
                return apply_decision(decision, _warned(run, warnings), held.lifecycle)

        elif kind == "heartbeat" or kind == "timeout":
            deadline = held.cut_deadline
            assert deadline is not None
            info = deadline.error(held.run.attempt)
            info = attrs.evolve(info, message=info.message + note)

            async def build(run: Run) -> Run:
                return failed(run, info)

        elif outcome.error is not None:
            exc = outcome.error

            async def build(run: Run) -> Run:
                return failed(run, exc)

        else:
            by_items = True

            async def build(run: Run) -> Run:
                try:
                    check_json(outcome.result, "result")
                except NotSerializable as bad:
                    return failed(run, bad)
                # Judged on *run*'s item counts: the write expects them (`_write`).
                items = await items_verdict(self.guard, run, spec.items_fail_run)
                if items.error is not None:
                    return failed(run, items.error)
                done = _succeeded_copy(
                    run, result=outcome.result, warnings=(*run.warnings, *warnings, *items.warnings)
                )
                return held.lifecycle.transition(
                    done,
                    Status.SUCCEEDED,
                    at=self.clock.now(),
                    reason=f"attempt {run.attempt} succeeded",
                )

        async def honoured(run: Run) -> Run:
            # A run that would go on to another attempt while a cancel request
            # stands (one came in since the last heartbeat round) ends CANCELLED.
            moved = await build(run)
            if moved.status not in GOES_ON:
                return moved
            requests = await self.guard.cancel_requests([run.id])
            return honour_cancel(
                _warned(run, warnings),
                moved,
                requests.get(run.id),
                held.lifecycle,
                at=self.clock.now(),
                note=note,
            )

        stored = await self._write(held, honoured, by_items=by_items)
        if stored is not None and stored.status is Status.RETRYING:
            self.on_retry(stored)
        if stored is not None and stored.status is Status.QUEUED:
            self.claimable.pulse()

    async def _write(
        self, held: Held, build: Callable[[Run], Awaitable[Run]], *, by_items: bool = False
    ) -> Run | None:
        """Write the attempt's outcome with the claim; after a concurrent change
        (the run was changed by another writer while still held), build it again
        from what is stored.

        With *by_items* (an outcome judged on the run's item counts), the write
        also expects the counts it was built from: an item saved meanwhile (by
        anyone, with the store's ``save_item``) makes it build again. The
        attempt's own item writes are stored by then, but the held copy of the
        run counts from its claim: after them, the first build is of the run as
        stored.
        """
        run = held.run
        if by_items and held.items is not None and held.items.wrote:
            run = await self.guard.get_run(run.id)
            if run.status not in LIVE:
                return None
        for _ in range(_FINISH_TRIES):
            moved = await build(run)
            try:
                stored = await self.guard.update_run(
                    moved,
                    expected_version=run.version,
                    claim=held.claim,
                    expected_progress=run.progress if by_items else None,
                )
            except LeaseLost:
                await self._lost(run.id, "the attempt's outcome was not written")
                return None
            except ConcurrentUpdate:
                run = await self.guard.get_run(run.id)
                if run.status not in LIVE:
                    return None
                continue
            held.run = stored
            return stored
        self._log.error("outcome not written: the run kept changing", run_id=run.id)
        return None


def _by_function(concurrency: int) -> Callable[[Job], Executor]:
    on_loop, on_threads = AsyncExecutor(), ThreadExecutor(max_threads=concurrency)
    return lambda job: on_loop if job.is_async else on_threads


def _ignore(run: Run) -> None:
    return None


def _warned(run: Run, warnings: tuple[str, ...]) -> Run:
    return attrs.evolve(run, warnings=(*run.warnings, *warnings)) if warnings else run
