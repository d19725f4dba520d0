"""`AsyncRuntime`: the services assembled over one store and one clock, and the verbs."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack, aclosing
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.abc
import attrs

from runlife._clock import SystemClock
from runlife._core.admission import check_statuses
from runlife._core.graph import RunGraph, Workflow
from runlife._core.overview import JobOverview, RunExplanation, Summary, next_fire
from runlife._core.policy import Limits, QuotaUsage, Retry, Timeout
from runlife._core.queries import JobRecord, LogPage, Page, RunQuery, TimeField, cancel_message
from runlife._core.records import Event, Item, LogLine, Transition
from runlife._core.run import Run
from runlife._core.spec import UNCHANGED, JobSpec, _Unchanged
from runlife._core.status import Status, Trigger
from runlife._core.values import MAX_PAGE, check_lease, check_moment, check_text
from runlife._runtime import events as _events
from runlife._runtime import logs as _logs
from runlife._runtime import overview as _overview
from runlife._runtime.driver import Driver, children_reason, workflow_spec, workflows_by_name
from runlife._runtime.ends import Ends
from runlife._runtime.guard import StoreGuard
from runlife._runtime.hooks import HookRunner
from runlife._runtime.job import Job
from runlife._runtime.jobs import JobBook, to_cancelled, to_queue
from runlife._runtime.mover import Mover
from runlife._runtime.reaper import Reaper
from runlife._runtime.scheduler import Scheduler
from runlife._runtime.wake import Pulse, nap
from runlife._runtime.worker import Worker
from runlife.abc import Clock, Executor, Hooks, Store
from runlife.exceptions import ConcurrentUpdate, Conflict, InvalidPolicy, InvalidValue, StoreError
from runlife.executors import AsyncExecutor, ProcessExecutor, ThreadExecutor
from runlife.executors._process import check_importable
from runlife.stores import MemoryStore, open_store

__all__ = ("AsyncRuntime",)

_RETRYABLE = frozenset({Status.FAILED, Status.CANCELLED})
# Real seconds of one wait for the store's change hint (it returns early on a change).
_STORE_WAIT = 60.0

_CREATING = 200
"""The most runs `AsyncRuntime.submit_many` has the store create at once."""


def _default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class AsyncRuntime:
    """Runs a host's jobs over a store: claims, attempts, retries, timeouts,
    schedules, recovery of lost workers, and the verbs to drive runs.

    Entering it (``async with``) saves each job's record (its spec and limits)
    and each workflow's (its graph) in the store and starts the services in one
    task group: the worker, the mover, the reaper, the scheduler and the
    workflow driver. Leaving it stops claiming, gives the
    attempts still running *grace* seconds to end, then interrupts them: each
    ends with error kind ``interrupted`` and goes RETRYING -> QUEUED, for this
    or another runtime to run again, without spending its retry budget.

    Args:
        jobs: the `Job` values this runtime runs (made with ``@runlife.job``).
        workflows: the `Workflow` values it drives; the nodes they give as `Job`
            values are jobs it runs, as if listed in *jobs*.
        store: a store, or its URL (``"memory://"``, ``"postgresql://..."``); a
            store given by URL is opened and closed by the runtime, a store given
            as a value is the host's to close. A ``memory://`` store tells the
            runtime's clock's time.
        serve: False opens the runtime only to read the store and act on its
            runs, as operators' tools do (the ``runlife`` command, a monitor
            page): entering it saves no job record and starts no worker,
            scheduler, mover, reaper or driver; every verb works, and a run held
            by a runtime elsewhere is cancelled through its stored request (see
            `cancel`). *jobs* and *workflows* may then be left out.
        clock: `SystemClock` unless given (``runlife.testing.VirtualClock`` in tests).
        executor: the executor of sync job functions that name none: a
            `runlife.executors.ThreadExecutor` of *concurrency* threads unless
            given, ``"process"`` for a `runlife.executors.ProcessExecutor` of
            *concurrency* children, or an Executor; async functions run on the
            event loop. A job that names ``"thread"`` or ``"process"`` runs on
            this executor if it is of that kind, else on one of *concurrency*.
        worker_id: the owner name of this runtime's claims (host, pid and a
            random part unless given).
        lease: seconds a claim holds without a heartbeat (renewed every third of it).
        concurrency: how many runs this runtime runs at once.
        grace: seconds running attempts get to end when the runtime stops.
        poll: seconds of clock time between two looks at the store for what
            other processes did (changes in this process wake the services at once).
        hooks: `runlife.abc.Hooks` told of every move this runtime stores, after
            it is stored, by a task of their own (see docs/runtime.md, "Hooks").
        hook_timeout: seconds of clock time each hook call may take before it is
            cut (and logged).
        max_log_lines: lines each attempt of a run stores in its log at most;
            past it a warning line says so and the rest is dropped (and counted
            in a warning of the run).
        max_log_bytes: characters of messages and fields each attempt stores at
            most, likewise.

    Raises:
        InvalidPolicy: a bad argument, two jobs (or workflows) with one name, a
            workflow named as a job, or a workflow given as a job (or a job as a
            workflow).

    >>> import anyio, runlife
    >>> @runlife.job(retry=runlife.Retry(max_attempts=2, delay=0))
    ... async def add(ctx, a, b):
    ...     return a + b
    >>> async def main():
    ...     async with runlife.AsyncRuntime(jobs=[add], store="memory://") as rt:
    ...         run = await rt.submit(add, params={"a": 1, "b": 2})
    ...         return await rt.wait(run.id)
    >>> run = anyio.run(main)
    >>> run.status, run.result, run.attempt
    (<Status.SUCCEEDED: 'SUCCEEDED'>, 3, 1)
    """

    def __init__(
        self,
        *,
        jobs: Iterable[Job] = (),
        workflows: Iterable[Workflow] = (),
        store: str | Store,
        serve: bool = True,
        clock: Clock | None = None,
        executor: str | Executor | None = None,
        worker_id: str | None = None,
        lease: float = 30,
        concurrency: int = 16,
        grace: float = 10,
        poll: float = 5,
        hooks: Iterable[Hooks] = (),
        hook_timeout: float = 10,
        max_log_lines: int = 100_000,
        max_log_bytes: int = 20_000_000,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.hooks = HookRunner(hooks, self.clock, timeout=hook_timeout)
        own = _by_name(jobs)
        self.workflows: Mapping[str, Workflow]
        self.workflows, nodes = workflows_by_name(workflows, own)
        self.jobs: Mapping[str, Job] = {**own, **nodes}
        check_lease("lease", lease)
        if type(concurrency) is not int or concurrency < 1:
            raise InvalidPolicy("concurrency", concurrency, "an int >= 1")
        for field, value in (("grace", grace), ("poll", poll)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise InvalidPolicy(field, value, "seconds >= 0")
        if not poll:
            raise InvalidPolicy("poll", poll, "seconds > 0")
        if not isinstance(serve, bool):
            raise InvalidPolicy("serve", serve, "True or False")
        self.serve = serve
        self.lease = float(lease)
        self.concurrency = concurrency
        self.grace = float(grace)
        self.poll = float(poll)
        for field, value in (("max_log_lines", max_log_lines), ("max_log_bytes", max_log_bytes)):
            if type(value) is not int or value < 1:
                raise InvalidPolicy(field, value, "an int >= 1")
        self.log_settings = _logs.LogSettings(max_lines=max_log_lines, max_bytes=max_log_bytes)
        self.worker_id = worker_id if worker_id is not None else _default_worker_id()
        self._owns_store = isinstance(store, str)
        if isinstance(store, str):
            opened = open_store(store)
            # A memory store keeps the runtime's time, so that leases and
            # schedules agree with the clock (a virtual one in tests).
            self.store: Store = (
                MemoryStore(clock=self.clock) if type(opened) is MemoryStore else opened
            )
        else:
            self.store = store
        self._sync = _sync_executor(executor, concurrency)
        sync = self._sync
        self._named: dict[str, Executor] = {
            "async": AsyncExecutor(),
            "thread": sync
            if isinstance(sync, ThreadExecutor)
            else ThreadExecutor(max_threads=concurrency),
            "process": sync if isinstance(sync, ProcessExecutor) else ProcessExecutor(concurrency),
        }
        for job in self.jobs.values():
            if isinstance(self._executor_for(job), ProcessExecutor):
                check_importable(job.name, job.fn, executor)
        self.guard = StoreGuard(self.store, self.clock, on_moves=self._moved)
        self.book = JobBook(self.jobs, self.guard, max_age=self.poll)
        for wf in self.workflows.values():
            self.book.add_spec(wf.name, workflow_spec(wf))
        self.changed = Pulse()
        self.store_changed = Pulse()
        self._ends = Ends(hints=self.store_changed)
        self.worker = Worker(
            guard=self.guard,
            clock=self.clock,
            jobs=self.jobs,
            executor_for=self._executor_for,
            worker_id=self.worker_id,
            lease=self.lease,
            concurrency=concurrency,
            poll=self.poll,
            changed=self.changed,
            store_changed=self.store_changed,
            on_retry=self._retrying,
            spec_for=self.book.fresh,
            logs=self.log_settings,
        )
        self.mover = Mover(
            guard=self.guard,
            clock=self.clock,
            book=self.book,
            worker=self.worker,
            lease=self.lease,
            poll=self.poll,
            changed=self.changed,
        )
        self.reaper = Reaper(
            guard=self.guard,
            clock=self.clock,
            book=self.book,
            mover=self.mover,
            interval=self.lease / 3,
            changed=self.changed,
        )
        self.driver = Driver(
            guard=self.guard,
            clock=self.clock,
            book=self.book,
            workflows=self.workflows,
            worker_id=self.worker_id,
            new_run=self._new_run,
            create=self._create,
            cancel=self._cancel,
            lease=self.lease,
            poll=self.poll,
            grace=self.grace,
            changed=self.changed,
            claimable=self.worker.claimable,
            store_changed=self.store_changed,
        )
        self.scheduler: Scheduler | None = None
        self._stack: AsyncExitStack | None = None
        self._services: anyio.CancelScope | None = None
        self._worker_tasks: anyio.abc.TaskGroup | None = None
        self._state = "new"

    def __repr__(self) -> str:
        return (
            f"<AsyncRuntime {self.worker_id} {self._state}, {len(self.jobs)} jobs, {self.store!r}>"
        )

    def _executor_for(self, job: Job) -> Executor:
        chosen = job.executor
        if isinstance(chosen, str):
            return self._named[chosen]
        if chosen is not None:
            return chosen
        return self._named["async"] if job.is_async else self._sync

    def _retrying(self, run: Run) -> None:
        if run.due_at is not None:
            self.mover.hint(run.due_at)

    # -- entering and leaving ------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError(f"{self!r} was entered already; make a new runtime")
        self._state = "starting"
        stack = AsyncExitStack()
        tg: anyio.abc.TaskGroup | None = None
        try:
            if self._owns_store:
                await stack.enter_async_context(self.store)
            if not self.serve:
                tg = await stack.enter_async_context(anyio.create_task_group())
                await tg.start(self.hooks.serve)
                services = anyio.CancelScope()
                tg.start_soon(self._watch_only, services)
                self._stack, self._services = stack, services
                self._state = "running"
                return self
            now = self.clock.now()
            for job in self.jobs.values():
                record = await self.book.declare(job)
                if job.spec.schedule is not None:
                    # Kept only if the store has no record yet: a schedule's start.
                    record = attrs.evolve(record, last_scheduled_for=now)
                self.book.saved(await self.guard.save_job(record))
            for wf in self.workflows.values():
                spec = workflow_spec(wf).to_spec()
                await self.guard.save_job(JobRecord(name=wf.name, spec=spec))
            self.scheduler = Scheduler(
                guard=self.guard,
                clock=self.clock,
                jobs=self.jobs,
                worker=self.worker,
                lease=self.lease,
                poll=self.poll,
                since=now,
                changed=self.changed,
            )
            tg = await stack.enter_async_context(anyio.create_task_group())
            await tg.start(self.hooks.serve)
            await tg.start(self.worker.serve)
            services = anyio.CancelScope()
            tg.start_soon(self._serve, services)
        except BaseException:
            if tg is not None:
                tg.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                await stack.aclose()
            self._state = "closed"
            raise
        self._stack, self._services = stack, services
        self._state = "running"
        return self

    def _moved(self, run: Run, moves: tuple[Transition, ...]) -> None:
        # Every stored write of this runtime: its hooks hear of it, and waits on
        # the run wake when it ended.
        self._ends.moved(run)
        self.hooks.tell(run, moves)

    async def _serve(self, scope: anyio.CancelScope) -> None:
        assert self.scheduler is not None
        with scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.mover.serve)
                tg.start_soon(self.reaper.serve)
                tg.start_soon(self.scheduler.serve)
                tg.start_soon(self.driver.serve)
                tg.start_soon(self._watch_store)
                tg.start_soon(self._ends.serve, self.clock, self.guard.get_run, self.worker.held)

    async def _watch_only(self, scope: anyio.CancelScope) -> None:
        # An operators' runtime: no services, but the store's change hints still
        # wake its waits (a cancel waiting for a run held elsewhere, say).
        with scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch_store)
                tg.start_soon(self._ends.serve, self.clock, self.guard.get_run)

    async def _watch_store(self) -> None:
        # One task turns the store's change hints into a pulse for every service.
        while True:
            try:
                await self.guard.wait_changed(_STORE_WAIT)
            except StoreError:
                await self.clock.sleep(self.poll)
                continue
            self.store_changed.pulse()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._stack is not None
        assert self._services is not None
        self._state = "stopping"
        try:
            with anyio.CancelScope(shield=True):
                self._services.cancel()
                # After an error (or a cancellation) of the host, no grace: the
                # attempts are interrupted at once, and still requeued.
                await self.worker.drain(self.grace if exc_type is None else 0)
                await self.hooks.drain()
        finally:
            self._state = "closed"
            self._services.cancel()
            self.worker.abort()
            self.hooks.abort()
            # The host's own exception is not the task group's: it propagates from
            # the host's block as it is. The cancelled tasks end without waiting on
            # the clock, but a store call of theirs may still be finishing in its
            # thread: under a virtual clock, no time passes meanwhile (another
            # runtime on the clock would run ahead, firing what is not due yet).
            with self.clock.busy():
                await self._stack.__aexit__(None, None, None)

    def _check_running(self) -> None:
        if self._state != "running":
            raise RuntimeError(
                f"{self!r} is not running: use its verbs inside 'async with AsyncRuntime(...)'"
            )

    # -- submitting ----------------------------------------------------------------

    async def _resolve(self, job_or_name: Job | Workflow | str) -> tuple[str, JobSpec, Job | None]:
        """The job's (or workflow's) name, its spec (its own, or the stored one for
        one this runtime does not have) and the `Job` whose signature checks params."""
        if isinstance(job_or_name, Job):
            name, given = job_or_name.name, job_or_name
        elif isinstance(job_or_name, Workflow):
            name, given = job_or_name.name, None
        elif isinstance(job_or_name, str):
            name, given = job_or_name, None
        else:
            raise InvalidValue("job", job_or_name, "a Job, a Workflow, or a name of either")
        spec = await self.book.spec(name)  # JobNotFound for a job nobody knows
        if isinstance(job_or_name, Workflow) and spec.workflow != job_or_name:
            if spec.workflow is None:
                raise InvalidValue("job", name, f"a workflow; {name!r} is the name of a job")
            raise InvalidValue(
                "job", name, f"workflow {name!r} as this runtime knows it (not another graph)"
            )
        return name, spec, self.book.get(name) or given

    async def _check_quota(self, name: str, spec: JobSpec, now: datetime, adding: int) -> None:
        quota = spec.limits.quota
        if quota is None:
            return
        since = quota.window_start(now)
        query = RunQuery(job=name, since=since)
        count = sum((await self.guard.count_runs(query)).values())
        if count + adding <= quota.max_runs:
            return
        oldest = None
        if quota.window is not None and count:
            page = await self.guard.list_runs(attrs.evolve(query, limit=min(count, MAX_PAGE)))
            oldest = page.runs[-1].created_at if page.runs else None
        spec.limits.check_quota(name, QuotaUsage(count=count + adding - 1, oldest=oldest), now)

    def _new_run(
        self,
        name: str,
        spec: JobSpec,
        job: Job | None,
        *,
        now: datetime,
        params: Mapping[str, Any] | None,
        labels: Mapping[str, str] | None,
        idempotency_key: str | None = None,
        at: datetime | None = None,
        priority: int = 0,
        trigger: Trigger = Trigger.ADHOC,
        parent: Run | None = None,
        workflow_run_id: str | None = None,
        id: str | None = None,
    ) -> Run:
        checked = job.check_params(params) if job is not None else dict(params or {})
        merged = {**(job.labels if job is not None else {}), **(labels or {})}
        later = at is not None and at > now
        run = Run.create(
            id=id,
            job=name,
            at=now,
            trigger=trigger,
            params=checked,
            labels=merged,
            lifecycle=spec.lifecycle,
            scheduled_for=at if later else None,
            parent=parent,
            workflow_run_id=workflow_run_id,
            idempotency_key=idempotency_key,
            priority=priority,
        )
        if later:
            return run  # PENDING, due at its start time: the mover queues it
        if spec.queued:
            return to_queue(
                run, spec, at=now, reason=f"submitted ({trigger.value.lower()})", new=True
            )
        # Claimed by this runtime at once; due now, so that if it is not (this
        # runtime is lost, or does not have the job), a runtime's mover starts it.
        return attrs.evolve(run, due_at=now)

    async def _create(self, run: Run, spec: JobSpec) -> Run:
        stored = await self.guard.create_run(run)
        if stored.id != run.id:
            return stored  # an idempotent repeat: the run that exists
        due = stored.due_at
        if stored.status is Status.PENDING and due is not None:
            if (
                self.serve
                and not spec.queued
                and self.book.get(run.job) is not None
                and due <= self.clock.now()
            ):
                try:
                    claim = await self.guard.claim_run(
                        stored.id, self.worker_id, spec.lifecycle, lease=self.lease
                    )
                except Conflict:
                    pass  # the mover claimed it first
                else:
                    self.worker.adopt(claim)
                    stored = claim.run
            else:
                self.mover.hint(due)
        if spec.workflow is not None:
            self.driver.pulse.pulse()
        self.worker.claimable.pulse()
        self.changed.pulse()
        return stored

    async def submit(
        self,
        job: Job | Workflow | str,
        params: Mapping[str, Any] | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        at: datetime | None = None,
        priority: int = 0,
    ) -> Run:
        """Create a run of *job* (a `Job`, a `Workflow`, or the name of either that
        this runtime or its store knows) and return it: QUEUED, or PENDING until
        *at*, or RUNNING for a job declared ``queued=False``.

        A workflow's run is driven by a driver (this runtime's, or another's), which
        creates a run of each node as the workflow's trigger rules allow.

        Args:
            params: the function's parameters; checked against its signature (when
                the job is this runtime's) and as JSON. For a workflow, each node's
                params by node (``{"load": {"day": "2026-03-10"}}``), each checked
                so against its job.
            labels: added to the job's labels (these win).
            idempotency_key: a second submit with the same key returns the first run.
            at: a start time; the run waits in PENDING until then.
            priority: higher is claimed first.

        Raises:
            JobNotFound: neither this runtime nor its store knows the job (or a
                workflow's node).
            InvalidValue: a missing or unknown parameter, named.
            NotSerializable: a parameter is not JSON, its path named.
            QuotaExceeded: the job's quota is used up; says when it frees up.
        """
        self._check_running()
        name, spec, known = await self._resolve(job)
        if spec.workflow is not None:
            params = await self.driver.check_params(spec.workflow, params)
        now = self.clock.now()
        if at is not None:
            at = check_moment("at", at)
        run = self._new_run(
            name,
            spec,
            known,
            now=now,
            params=params,
            labels=labels,
            idempotency_key=idempotency_key,
            at=at,
            priority=priority,
        )
        await self._check_quota(name, spec, now, 1)
        return await self._create(run, spec)

    async def submit_many(
        self,
        job: Job | str,
        params: Iterable[Mapping[str, Any]],
        *,
        labels: Mapping[str, str] | None = None,
        priority: int = 0,
    ) -> tuple[Run, ...]:
        """Create one run of *job* per mapping of *params*, in order.

        Every run is checked (params, quota for all of them) before any is created,
        so a bad one creates none. The store then creates them together, a few
        hundred at a time, so that a store that groups writes (SQLite,
        PostgreSQL) commits many in one transaction; should it refuse one, the
        others are created all the same and its first refusal is raised.

        Raises:
            The errors of `submit`; `InvalidValue` names the index of the bad params
            (``"params[2].devices"``).
        """
        self._check_running()
        name, spec, known = await self._resolve(job)
        if spec.workflow is not None:
            raise InvalidValue(
                "job", name, f"a job; {name!r} is a workflow: submit each of its runs with submit"
            )
        now = self.clock.now()
        runs: list[Run] = []
        for index, one in enumerate(params):
            try:
                runs.append(
                    self._new_run(
                        name, spec, known, now=now, params=one, labels=labels, priority=priority
                    )
                )
            except InvalidValue as exc:
                raise InvalidValue(
                    f"params[{index}]{exc.field.removeprefix('params')}", exc.value, exc.expected
                ) from None
        await self._check_quota(name, spec, now, len(runs))
        return await self._create_all(runs, spec)

    async def _create_all(self, runs: list[Run], spec: JobSpec) -> tuple[Run, ...]:
        """Create *runs*, up to `_CREATING` at once: a store that groups concurrent
        writes (SQLite's group commit, PostgreSQL's batches) commits many of them in
        one transaction, where one after the other each would wait for its own.
        Every run is tried; the first refusal (in the order of *runs*) is raised
        once the others are created."""
        out: list[Run | None] = [None] * len(runs)
        refused: list[tuple[int, Exception]] = []
        todo = iter(range(len(runs)))  # shared: each creator takes the next run

        async def creator() -> None:
            for index in todo:
                try:
                    out[index] = await self._create(runs[index], spec)
                except Exception as exc:  # raised below, outside the task group
                    refused.append((index, exc))

        async with anyio.create_task_group() as tg:
            for _ in range(min(_CREATING, len(runs))):
                tg.start_soon(creator)
        if refused:
            raise min(refused, key=lambda pair: pair[0])[1]
        return tuple(out)  # type: ignore[arg-type]

    # -- reading -------------------------------------------------------------------

    async def get_run(self, run_id: str) -> Run:
        """The run; raises `RunNotFound`."""
        self._check_running()
        return await self.guard.get_run(run_id)

    async def wait(self, run_id: str, timeout: float | None = None) -> Run:
        """Wait until the run is terminal and return it.

        Args:
            timeout: seconds of the runtime's clock; None waits as long as it takes.

        Raises:
            RunNotFound: no such run.
            TimeoutError: the run is still active after *timeout* seconds.
        """
        self._check_running()
        clock = self.clock
        deadline = None if timeout is None else clock.now() + timedelta(seconds=timeout)
        ends = self._ends
        with ends.watching(run_id) as ended:
            while True:
                seen, hint, now = ended.count, ends.hints, clock.now()
                run = ended.run or await self.guard.get_run(run_id)
                if run.is_terminal:
                    return run
                ends.read(ended, now, hint)
                now = clock.now()
                if deadline is not None and now >= deadline:
                    raise TimeoutError(f"run {run_id} is still {run.status} after {timeout:g} s")
                until = now + timedelta(seconds=self.poll)
                if deadline is not None and deadline < until:
                    until = deadline
                # Its end here wakes it at once; an end elsewhere, once the store
                # hints at a change and the waits' watcher reads it (see `ends`).
                await nap(clock, until, pulses=[(ended, seen)])

    async def list_runs(
        self,
        *,
        job: Job | str | None = None,
        status: Status | str | Iterable[Status] | None = None,
        trigger: Trigger | str | Iterable[Trigger] | None = None,
        labels: Mapping[str, str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        field: TimeField = "created",
        text: str | None = None,
        workflow_run_id: str | None = None,
        parent_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """A page of runs, newest first, filtered as `RunQuery` filters."""
        self._check_running()
        query = _run_query(
            job, status, trigger, labels, since, until, field, text, workflow_run_id, parent_id
        )
        return await self.guard.list_runs(attrs.evolve(query, limit=limit, cursor=cursor))

    async def count_runs(
        self,
        *,
        job: Job | str | None = None,
        status: Status | str | Iterable[Status] | None = None,
        trigger: Trigger | str | Iterable[Trigger] | None = None,
        labels: Mapping[str, str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        field: TimeField = "created",
        text: str | None = None,
        workflow_run_id: str | None = None,
        parent_id: str | None = None,
    ) -> Mapping[Status, int]:
        """How many runs match, by status (statuses with none left out), filtered
        as `list_runs` filters.

        >>> import anyio, runlife
        >>> @runlife.job
        ... async def backup(ctx):
        ...     return "ok"
        >>> async def main():
        ...     async with runlife.AsyncRuntime(jobs=[backup], store="memory://") as rt:
        ...         await rt.wait((await rt.submit(backup)).id)
        ...         return await rt.count_runs(job=backup)
        >>> anyio.run(main)
        {<Status.SUCCEEDED: 'SUCCEEDED'>: 1}
        """
        self._check_running()
        query = _run_query(
            job, status, trigger, labels, since, until, field, text, workflow_run_id, parent_id
        )
        return dict(await self.guard.count_runs(query))

    async def signals(self, run_id: str) -> Mapping[str, Any]:
        """The signals delivered to a run, by name, with their payloads.

        Raises:
            RunNotFound: no such run.
        """
        self._check_running()
        await self.guard.get_run(run_id)
        return dict(await self.guard.signals(run_id))

    async def job_spec(self, job: Job | Workflow | str) -> JobSpec:
        """The policy in force for a job (or workflow): its lifecycle, retry,
        timeouts, schedule, limits and graph, as the store's record (and, for a
        job of this runtime, its own declaration) says.

        Raises:
            JobNotFound: neither this runtime nor its store knows the job.
            InvalidPolicy: its stored spec cannot be read by this runlife.
        """
        self._check_running()
        return (await self._resolve(job))[1]

    # -- logs ----------------------------------------------------------------------

    async def logs(
        self,
        run_id: str,
        *,
        stream: str | None = None,
        item: str | None = None,
        level: str | None = None,
        after: str | int | None = None,
        limit: int = 500,
    ) -> LogPage:
        """A page of the run's log, oldest first: ``page.lines``, and
        ``page.next_cursor`` to pass as *after* for the next page (None once
        nothing is left).

        Args:
            stream: only ``"log"`` (``ctx.log`` and `logging`), ``"stdout"`` or
                ``"stderr"`` lines.
            item: only the lines of this item.
            level: only lines of this level (``"error"``; any case).
            after: a page's ``next_cursor``, or a line's ``seq`` (as
                `search_logs` gives it): the lines after it.
            limit: lines per page (1 to 100,000).

        Raises:
            RunNotFound: no such run.
            InvalidValue: a bad filter, cursor or limit, named.

        >>> import anyio, runlife
        >>> @runlife.job
        ... async def backup(ctx):
        ...     ctx.log.bind(item="core-rtr-01").info("backing up", host="10.1.0.1")
        ...     print("config saved")
        >>> async def main():
        ...     async with runlife.AsyncRuntime(jobs=[backup], store="memory://") as rt:
        ...         run = await rt.wait((await rt.submit(backup)).id)
        ...         page = await rt.logs(run.id)
        ...     return [(line.seq, line.stream, line.item, line.message) for line in page.lines]
        >>> anyio.run(main)
        [(1, 'log', 'core-rtr-01', 'backing up'), (2, 'stdout', None, 'config saved')]
        """
        self._check_running()
        query = _logs.log_query(
            run_id, stream=stream, item=item, level=level, after=after, limit=limit
        )
        return await _logs.read_page(self.guard, query)

    async def search_logs(
        self, run_id: str, text: str, *, limit: int = 1000
    ) -> tuple[LogLine, ...]:
        """The run's lines whose message contains *text* (ignoring case), oldest
        first, at most *limit*; each line's ``seq`` is its place in the log
        (``logs(run_id, after=line.seq - 1)`` reads on from it).

        Raises:
            RunNotFound: no such run.

        >>> import anyio, runlife
        >>> @runlife.job
        ... def check(ctx):
        ...     print("edge-sw-01: ok")
        ...     print("edge-sw-03: Connection timed out after 30s")
        >>> async def main():
        ...     async with runlife.AsyncRuntime(jobs=[check], store="memory://") as rt:
        ...         run = await rt.wait((await rt.submit(check)).id)
        ...         found = await rt.search_logs(run.id, "TIMED OUT")
        ...     return [(line.seq, line.message) for line in found]
        >>> anyio.run(main)
        [(2, 'edge-sw-03: Connection timed out after 30s')]
        """
        self._check_running()
        return await _logs.search(self.guard, run_id, text, limit)

    async def follow_logs(
        self,
        run_id: str,
        *,
        stream: str | None = None,
        item: str | None = None,
        level: str | None = None,
        after: str | int | None = None,
    ) -> AsyncIterator[LogLine]:
        """The run's log lines as they are stored, from the start (or from
        *after*, as in `logs`), live: ``async for line in rt.follow_logs(id)``.

        It ends once the run is terminal and every line of its log was given
        (its last lines are stored before its end). Lines stored in this process
        are seen at once; lines of runs in other processes when the store says it
        changed, or within ``poll`` seconds. A line reaches it once its run's
        buffer is stored: within about half a second while the run runs.

        Raises:
            RunNotFound: no such run (when iteration starts).

        >>> import anyio, runlife
        >>> @runlife.job
        ... async def sync(ctx):
        ...     for step in ("connect", "push", "verify"):
        ...         ctx.log.info(step)
        ...         await anyio.sleep(0.01)
        >>> async def main():
        ...     async with runlife.AsyncRuntime(jobs=[sync], store="memory://") as rt:
        ...         run = await rt.submit(sync)
        ...         return [line.message async for line in rt.follow_logs(run.id)]
        >>> anyio.run(main)
        ['connect', 'push', 'verify']
        """
        self._check_running()
        query = _logs.log_query(run_id, stream=stream, item=item, level=level, after=after)
        async for line in _logs.follow(
            self.guard,
            self.clock,
            query,
            pulses=(self.changed, self.store_changed),
            poll=self.poll,
        ):
            yield line

    async def export_logs(self, run_id: str, fmt: str = "text") -> str:
        """The run's whole log as one string: ``"text"`` (a header naming the run,
        its status, times and error, then one line per log line with its time,
        attempt, stream, level and item: ready to attach to an escalation) or
        ``"jsonl"`` (one JSON object per line).

        Raises:
            RunNotFound: no such run.
            InvalidValue: *fmt* is not ``"text"`` or ``"jsonl"``.

        >>> import anyio, json, runlife
        >>> @runlife.job
        ... async def report(ctx):
        ...     ctx.log.warning("dashboard stale", dashboard="capacity")
        >>> async def main():
        ...     async with runlife.AsyncRuntime(jobs=[report], store="memory://") as rt:
        ...         run = await rt.wait((await rt.submit(report)).id)
        ...         return await rt.export_logs(run.id), await rt.export_logs(run.id, "jsonl")
        >>> text, jsonl = anyio.run(main)
        >>> print(text.splitlines()[-1][25:])
        a1 log    warning  dashboard stale dashboard=capacity
        >>> json.loads(jsonl)["fields"]
        {'dashboard': 'capacity'}
        """
        self._check_running()
        return await _logs.export(self.guard, run_id, fmt)

    async def events(
        self,
        *,
        job: Job | str | None = None,
        status: Status | str | Iterable[Status | str] | None = None,
        run_id: str | None = None,
        after: int | str | None = None,
        kind: str | Iterable[str] | None = None,
    ) -> AsyncIterator[Event]:
        """The store's events as they are stored, live, from every process: each
        run's transitions, in order, its item updates (``event.item``, with the
        run's counts after it in ``event.progress``) and its log activity (one
        ``"log"`` event per batch of lines stored: ``event.lines`` lines, the
        last of them ``event.log``).

        It never ends by itself: break out of the loop (or cancel it) when done.
        Events written in this process are seen at once; those of other processes
        when the store says it changed (SQLite and PostgreSQL tell within
        moments), or within ``poll`` seconds.

        Args:
            job: only the events of this job's runs.
            status: only events whose ``status`` (the run's status after a
                transition; its status when an item was updated or lines were
                logged) is this one, or one of these.
            run_id: only the events of this run.
            after: the ``seq`` of the last event already handled: the stream gives
                the events stored after it, so a monitor that reconnects with the
                ``seq`` it kept misses none and sees none twice. None: every event
                the store keeps, from the first; ``"now"``: only those stored
                after the iteration's first step (the stream reads nothing
                before it is first iterated).
            kind: only events of this kind (``"transition"``, ``"item"``,
                ``"log"``), or of these.

        Raises:
            InvalidValue: a bad filter or cursor, named (when iteration starts).

        >>> import anyio, runlife
        >>> @runlife.job
        ... async def backup(ctx):
        ...     return "ok"
        >>> async def main():
        ...     async with runlife.AsyncRuntime(jobs=[backup], store="memory://") as rt:
        ...         run = await rt.submit(backup)
        ...         moves = []
        ...         async for event in rt.events(run_id=run.id, kind="transition"):
        ...             moves.append(f"{event.transition.from_}->{event.status}")
        ...             if event.status is runlife.Status.SUCCEEDED:
        ...                 return moves
        >>> anyio.run(main)
        ['PENDING->QUEUED', 'QUEUED->RUNNING', 'RUNNING->SUCCEEDED']
        """
        self._check_running()
        name = job.name if isinstance(job, Job) else job
        wanted = _events.event_filter(name, status, run_id, kind)
        cursor = _events.check_after(after)
        stream = _events.follow(
            self.guard,
            self.clock,
            wanted,
            after=cursor,
            pulses=(self.changed, self.store_changed),
            poll=self.poll,
        )
        async with aclosing(stream):
            async for event in stream:
                yield event

    async def items(
        self,
        run_id: str,
        status: Status | str | None = None,
        *,
        phase: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> tuple[Item, ...]:
        """The run's items in the order they were first recorded: of *status* and
        *phase* if given; a page of at most *limit* of them, continuing after the
        item whose key is *after* (the last key of the page before).

        Raises:
            RunNotFound: no such run.
            InvalidValue: a bad status, phase, key or limit.

        >>> import anyio, runlife
        >>> @runlife.job
        ... async def check(ctx, hosts):
        ...     await ctx.map(lambda host: {"ok": host != "b"}, hosts, phase="check")
        >>> async def main():
        ...     async with runlife.AsyncRuntime(jobs=[check], store="memory://") as rt:
        ...         run = await rt.wait((await rt.submit(check, {"hosts": ["a", "b", "c"]})).id)
        ...         first = await rt.items(run.id, phase="check", limit=2)
        ...         rest = await rt.items(run.id, phase="check", after=first[-1].key)
        ...         return [i.key for i in first], [(i.key, i.output) for i in rest]
        >>> anyio.run(main)
        (['a', 'b'], [('c', {'ok': True})])
        """
        self._check_running()
        wanted = None if status is None else next(iter(check_statuses("status", (status,))))
        found = await self.guard.items(run_id, wanted, phase=phase, after=after, limit=limit)
        if not found:
            await self.guard.get_run(run_id)  # RunNotFound for a run that does not exist
        return found

    async def graph(self, run_id: str) -> RunGraph:
        """The graph of a workflow run: its workflow with each node's run's status,
        to draw (``to_mermaid()``, ``to_dot()``, ``to_text()``) and to question
        (``explain(node)``).

        Raises:
            RunNotFound: no such run.
            InvalidValue: the run is not a workflow run.
        """
        self._check_running()
        return await self.driver.graph(await self.guard.get_run(run_id))

    async def summary(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Summary:
        """How the work in the store is doing: how many runs created between
        *since* and *until* are in each status, and, now, the oldest running run,
        the runs past a time limit of their job and the runs whose lease lapsed
        by store time (their worker is presumed lost).

        Raises:
            InvalidValue: *since* or *until* is not an aware moment, or *until*
                is before *since*.

        >>> import anyio, runlife
        >>> @runlife.job
        ... async def backup(ctx):
        ...     return "ok"
        >>> async def main():
        ...     async with runlife.AsyncRuntime(jobs=[backup], store="memory://") as rt:
        ...         await rt.wait((await rt.submit(backup)).id)
        ...         return await rt.summary()
        >>> summary = anyio.run(main)
        >>> dict(summary.counts), summary.oldest_running, summary.healthy
        ({<Status.SUCCEEDED: 'SUCCEEDED'>: 1}, None, True)
        """
        self._check_running()
        return await _overview.summary(
            self.guard, self.book, now=self.clock.now(), since=since, until=until
        )

    async def list_jobs(self) -> tuple[JobOverview, ...]:
        """One row per job (and workflow) the store has a record of, by name: its
        schedule, when it fires next, whether it is paused, its newest success
        and failure, and how many of its runs run (and wait in QUEUED) now.

        >>> import anyio, runlife
        >>> @runlife.job(schedule=runlife.Cron("0 2 * * *"))
        ... async def backup(ctx):
        ...     return "ok"
        >>> async def main():
        ...     async with runlife.AsyncRuntime(jobs=[backup], store="memory://") as rt:
        ...         await rt.pause(backup)
        ...         return await rt.list_jobs()
        >>> [(row.name, row.schedule.expr, row.paused, row.next_fire) for row in anyio.run(main)]
        [('backup', '0 2 * * *', True, None)]
        """
        self._check_running()
        return await _overview.jobs(self.guard, self.book, now=self.clock.now())

    async def explain(self, run_id: str) -> RunExplanation:
        """Why a run is not running (or that it is): which upstream node holds a
        workflow node back and in which status, which limit of its job is full,
        the signal it waits for, when it is scheduled to start or retried, that
        its lease lapsed, that it ended. ``str()`` of the answer (its
        ``message``) says it in one sentence.

        Raises:
            RunNotFound: no such run.

        >>> import anyio, runlife
        >>> from datetime import datetime, UTC
        >>> @runlife.job
        ... async def sync(ctx):
        ...     return None
        >>> async def main():
        ...     async with runlife.AsyncRuntime(jobs=[sync], store="memory://") as rt:
        ...         run = await rt.submit(sync, at=datetime(2099, 3, 10, 2, tzinfo=UTC))
        ...         return await rt.explain(run.id)
        >>> why = anyio.run(main)
        >>> why.why, why.message.split(": ", 1)[1]
        ('scheduled', 'it starts at 2099-03-10 02:00:00 UTC')
        """
        self._check_running()
        return await _overview.explain(
            self.guard, self.book, self.driver, run_id, now=self.clock.now()
        )

    # -- acting on runs --------------------------------------------------------------

    async def cancel(
        self,
        run_id: str,
        reason: str | None = None,
        *,
        by: str | None = None,
        wait: bool = True,
    ) -> Run:
        """Cancel a run and return it CANCELLED (a run that ended first is returned
        as it ended), whichever process holds it.

        Who asked (*by*: this runtime's ``worker_id`` unless given) and why
        (*reason*) are recorded: the CANCELLED move and the run's error say
        ``"cancelled by <by>: <reason>"``.

        - A PENDING, QUEUED, RETRYING or WAITING run is cancelled at once, by
          compare-and-set. (A WAITING run held by another process: that process
          finds its hold gone at its next heartbeat and stops the attempt.)
        - A run RUNNING here has its attempt cancelled at once: an async function
          at its next ``await``; a thread is told through ``ctx.cancelled`` and
          the error says it is still running.
        - A run RUNNING in another process gets a stored cancel request. That
          process reads it within one heartbeat round (a third of its lease),
          cancels the attempt the same way and records CANCELLED; if that process
          is gone, the reaper of any runtime ends the run once its lease has
          lapsed: CANCELLED, where it would have retried it. With ``wait=False``
          the run is returned as soon as the request is stored (still RUNNING);
          otherwise this waits for the end. A request stays with its run:
          stopping the wait does not withdraw it.

        A cancelled workflow run has its live children cancelled too.

        Raises:
            RunNotFound: no such run.
            InvalidValue: *reason* or *by* is not text.

        >>> import anyio, runlife
        >>> @runlife.job
        ... async def sync_devices(ctx):
        ...     await anyio.sleep_forever()
        >>> async def main():
        ...     async with runlife.AsyncRuntime(jobs=[sync_devices], store="memory://") as rt:
        ...         run = await rt.submit(sync_devices)
        ...         return await rt.cancel(run.id, "wrong site", by="ops:ana")
        >>> run = anyio.run(main)
        >>> run.status, run.error.message
        (<Status.CANCELLED: 'CANCELLED'>, 'cancelled by ops:ana: wrong site')
        """
        self._check_running()
        return await self._cancel(run_id, reason, by=by, wait=wait)

    async def _cancel(
        self, run_id: str, reason: str | None, *, by: str | None = None, wait: bool = True
    ) -> Run:
        check_text("reason", reason, optional=True)
        check_text("by", by, empty=False, optional=True)
        asker = self.worker_id if by is None else by
        message = cancel_message(asker, reason)
        requested = False
        while True:
            # Held here: cut at once; once its outcome is written, it is read below
            # (a hold lost meanwhile leaves the run to the other cases).
            await self.worker.cancel(run_id, message)
            stored = await self.driver.cancel(run_id, message, by=asker, reason=reason)
            if stored is not None:
                return stored  # a workflow run this runtime's driver held
            seen, hinted = self.changed.count, self.store_changed.count
            run = await self.guard.get_run(run_id)
            if run.is_terminal:
                return run
            if run.id in self.worker.held:
                continue  # claimed here meanwhile
            if run.status is Status.RUNNING:
                # Held elsewhere (or by a lost process, until it is reaped).
                if not requested:
                    if await self.guard.request_cancel(run_id, by=asker, reason=reason) is None:
                        continue  # it left RUNNING meanwhile
                    requested = True
                    if not wait:
                        return run
                until = self.clock.now() + timedelta(seconds=self.poll)
                pulses = [(self.changed, seen), (self.store_changed, hinted)]
                await nap(self.clock, until, pulses=pulses)
                continue
            spec = await self.book.spec(run.job)
            moved = to_cancelled(run, spec.lifecycle, at=self.clock.now(), message=message)
            try:
                stored = await self.guard.update_run(moved, expected_version=run.version)
            except ConcurrentUpdate:
                continue
            self.changed.pulse()
            if spec.workflow is not None:
                await self.driver.cancel_children(run.id, children_reason(run.id, reason), by=asker)
            return stored

    async def retry(self, run_id: str) -> Run:
        """Try a FAILED or CANCELLED run again, now, as a new run (trigger RETRY,
        ``parent_id`` the old run, ``root_id`` the first run of the chain).

        Raises:
            RunNotFound: no such run.
            InvalidValue: the run is not FAILED or CANCELLED.
            QuotaExceeded: the job's quota is used up.
        """
        self._check_running()
        return await self._again(await self._ended_badly(run_id), Trigger.RETRY)

    async def _ended_badly(self, run_id: str) -> Run:
        old = await self.guard.get_run(run_id)
        if old.status not in _RETRYABLE:
            raise InvalidValue(
                "run_id",
                run_id,
                f"the id of a FAILED or CANCELLED run; run {run_id} is {old.status}",
            )
        return old

    async def rerun(self, run_id: str) -> Run:
        """Run a finished run again from scratch, as a new run (trigger RERUN).

        Raises:
            RunNotFound: no such run.
            InvalidValue: the run is not terminal.
            QuotaExceeded: the job's quota is used up.
        """
        self._check_running()
        old = await self.guard.get_run(run_id)
        if not old.is_terminal:
            raise InvalidValue(
                "run_id", run_id, f"the id of a finished run; run {run_id} is {old.status}"
            )
        return await self._again(old, Trigger.RERUN)

    async def _again(self, old: Run, trigger: Trigger) -> Run:
        name, spec, _ = await self._resolve(old.job)
        now = self.clock.now()
        run = self._new_run(
            name,
            spec,
            None,  # the old run's params were checked when it was submitted
            now=now,
            params=old.params,
            labels=old.labels,
            priority=old.priority,
            trigger=trigger,
            parent=old,
        )
        await self._check_quota(name, spec, now, 1)
        return await self._create(run, spec)

    async def signal(self, run_id: str, name: str, payload: Any = None) -> None:
        """Deliver signal *name* (with a JSON *payload*) to a run: a run WAITING for
        it (``ctx.wait_for(name)``) in any process resumes with the payload. The
        signal is stored, so a later ``wait_for`` of the run finds it at once; a
        later signal of the same name replaces it.

        Raises:
            RunNotFound: no such run.
            InvalidValue: *name* is empty or not text.
            NotSerializable: *payload* is not JSON.
        """
        self._check_running()
        await self.guard.get_run(run_id)
        await self.guard.send_signal(run_id, name, payload)
        self.store_changed.pulse()  # a run of this process waiting for it looks now

    async def pause(self, job: Job | str) -> JobRecord:
        """Pause a job's schedule (it fires nothing until unpaused); its record.

        Raises:
            JobNotFound: the store has no such job.
        """
        return await self._set_paused(job, True)

    async def unpause(self, job: Job | str) -> JobRecord:
        """Unpause a job's schedule; its ``catch_up`` decides about the slots it
        missed. Returns its record.

        Raises:
            JobNotFound: the store has no such job.
        """
        return await self._set_paused(job, False)

    async def next_fire(self, job: Job | str) -> datetime | None:
        """When this runtime's scheduled job *job* fires next: None if it is paused.

        A run's outcome never moves it: after a failed run, the next fire is the
        schedule's next time, as it was.

        Raises:
            InvalidValue: *job* is not a scheduled job of this runtime.
        """
        self._check_running()
        name = job.name if isinstance(job, Job) else job
        found = self.book.get(name)
        schedule = None if found is None else found.spec.schedule
        if schedule is None or self.scheduler is None:
            raise InvalidValue("job", name, "a job of this runtime that has a schedule")
        record = await self.guard.get_job(name)
        last = record.last_scheduled_for or self.scheduler.since
        return next_fire(schedule, last=last, paused=record.paused, now=self.clock.now())

    async def _set_paused(self, job: Job | str, paused: bool) -> JobRecord:
        self._check_running()
        record = await self.guard.set_paused(job.name if isinstance(job, Job) else job, paused)
        if self.scheduler is not None:
            self.scheduler.pulse.pulse()
        return record

    # -- policy, resuming and retention -----------------------------------------------

    async def set_policy(
        self,
        job: Job | str,
        *,
        retry: Retry | _Unchanged = UNCHANGED,
        timeout: Timeout | _Unchanged = UNCHANGED,
        limits: Limits | _Unchanged = UNCHANGED,
        items_fail_run: float | _Unchanged | None = UNCHANGED,
        reset: Iterable[str] = (),
    ) -> JobSpec:
        """Change a job's policy in the store, for every process, and return the
        policy now in force (for a job of this runtime: its own declaration with
        every field set so far).

        Only the fields given change; *reset* names fields that go back to what
        the job's code declares. What is set stays set, in every runtime, also
        one started later with the job's code, until it is reset.

        When it applies: the concurrency limits (``max_concurrency``,
        ``per_label``) to every claim made after this returns (the store enforces
        them); retry, timeout and ``items_fail_run`` to every run claimed after
        this returns, in any process (a worker reads the policy once per job for
        each batch of claims, as their attempts start; an attempt already running
        keeps the policy it started with).
        The quota at submit, the queue timeout and the decision on a lost
        worker's run use the policy read at most ``poll`` seconds before (at
        once in this runtime).

        Raises:
            JobNotFound: the store has no such job.
            InvalidPolicy: a value of the wrong kind, naming the field; a *reset*
                name that is not a policy field; or a stored spec that cannot be
                read here.

        >>> import anyio, runlife
        >>> @runlife.job(retry=runlife.Retry(max_attempts=2))
        ... async def sync(ctx):
        ...     return None
        >>> async def main():
        ...     async with runlife.AsyncRuntime(jobs=[sync], store="memory://") as rt:
        ...         spec = await rt.set_policy(sync, retry=runlife.Retry(max_attempts=5))
        ...         return spec.retry.max_attempts, spec.declared["retry"].max_attempts
        >>> anyio.run(main)
        (5, 2)
        """
        self._check_running()
        if not isinstance(job, Job | str):
            raise InvalidValue("job", job, "a Job or a job's name")
        spec = await self.book.set_policy(
            job.name if isinstance(job, Job) else job,
            retry=retry,
            timeout=timeout,
            limits=limits,
            items_fail_run=items_fail_run,
            reset=reset,
        )
        # Raised limits may make runs claimable.
        self.worker.claimable.pulse()
        self.changed.pulse()
        return spec

    async def resume(self, run_id: str) -> Run:
        """Resume a FAILED or CANCELLED run as a new run (trigger RESUME,
        ``parent_id`` the old run, ``root_id`` the first run of the chain).

        The resumed run does not do again the items that succeeded in the old
        one: ``ctx.item`` and ``ctx.map`` record them SKIPPED, naming the run where
        they succeeded (see the items page). A resumed workflow run runs its
        graph again from the start.

        Raises:
            RunNotFound: no such run.
            InvalidValue: the run is not FAILED or CANCELLED.
            QuotaExceeded: the job's quota is used up.
        """
        self._check_running()
        return await self._again(await self._ended_badly(run_id), Trigger.RESUME)

    async def purge(
        self,
        *,
        older_than: datetime | timedelta,
        statuses: Iterable[Status | str] | None = None,
    ) -> int:
        """Delete the finished runs that ended before *older_than*, with their
        history, items, logs, signals and events; returns how many went.

        Args:
            older_than: a moment, or a `timedelta` (that long before now, by the
                runtime's clock).
            statuses: only runs that ended in these (terminal) statuses; every
                terminal status when None. An active run is never purged.

        Raises:
            InvalidValue: *older_than* is not a moment or a timedelta >= 0, or a
                status is not terminal.
        """
        self._check_running()
        if isinstance(older_than, timedelta):
            if older_than < timedelta(0):
                raise InvalidValue(
                    "older_than", older_than, "a moment, or a timedelta >= 0 (before now)"
                )
            older_than = self.clock.now() - older_than
        chosen = None if statuses is None else _statuses(statuses)
        deleted = await self.guard.purge(older_than=older_than, statuses=chosen)
        self.changed.pulse()
        return deleted


def _by_name(jobs: Iterable[Job]) -> dict[str, Job]:
    if isinstance(jobs, Job):
        raise InvalidPolicy("jobs", jobs, "an iterable of Job values: jobs=[job]")
    out: dict[str, Job] = {}
    for job in jobs:
        if isinstance(job, Workflow):
            raise InvalidPolicy(
                "jobs", job.name, "Job values; a workflow goes in workflows=[...], not jobs"
            )
        if not isinstance(job, Job):
            raise InvalidPolicy("jobs", job, "Job values, made with @runlife.job")
        if job.name in out and out[job.name] is not job:
            raise InvalidPolicy("jobs", job.name, "jobs with distinct names")
        out[job.name] = job
    return out


def _sync_executor(executor: str | Executor | None, concurrency: int) -> Executor:
    if executor is None or executor == "thread":
        return ThreadExecutor(max_threads=concurrency)
    if executor == "process":
        return ProcessExecutor(concurrency)
    if isinstance(executor, str) or not isinstance(executor, Executor):
        raise InvalidPolicy("executor", executor, "'thread', 'process', an Executor, or None")
    return executor


def _statuses(statuses: Iterable[Status | str]) -> Any:
    # The store checks them; a str is passed as it is, to be refused naming it.
    return statuses if isinstance(statuses, str) else frozenset(statuses)


def _run_query(
    job: Job | str | None,
    status: Status | str | Iterable[Status] | None,
    trigger: Trigger | str | Iterable[Trigger] | None,
    labels: Mapping[str, str] | None,
    since: datetime | None,
    until: datetime | None,
    field: TimeField,
    text: str | None,
    workflow_run_id: str | None,
    parent_id: str | None,
) -> RunQuery:
    """The `RunQuery` of `list_runs` and `count_runs` arguments."""
    return RunQuery(
        job=job.name if isinstance(job, Job) else job,
        status=_set(status),
        trigger=_set(trigger),
        labels=dict(labels or {}),
        since=since,
        until=until,
        field=field,
        text=text,
        workflow_run_id=workflow_run_id,
        parent_id=parent_id,
    )


def _set(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return frozenset(value)
