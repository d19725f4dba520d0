"""`Runtime`: the `AsyncRuntime` of hosts that are not async, through a blocking portal.

Entering ``with Runtime(...)`` starts an event loop in a thread of its own (an
anyio `BlockingPortal`) and enters an `AsyncRuntime` on it; leaving the block
stops the runtime as leaving ``async with AsyncRuntime(...)`` does, then the loop.
Each verb is the blocking twin of the `AsyncRuntime` verb of the same name and
signature: it runs that verb on the loop and returns its result (or raises its
error) in the calling thread, so any number of the host's threads may call verbs
at once. A verb that is an async iterator on `AsyncRuntime` is a plain iterator
here (`Runtime._iterate`).
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import ExitStack
from datetime import datetime, timedelta
from functools import partial
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import anyio
import anyio.from_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from runlife._core.graph import RunGraph, Workflow
from runlife._core.overview import JobOverview, RunExplanation, Summary
from runlife._core.policy import Limits, Retry, Timeout
from runlife._core.queries import JobRecord, LogPage, Page, TimeField
from runlife._core.records import Event, Item, LogLine
from runlife._core.run import Run
from runlife._core.spec import UNCHANGED, JobSpec, _Unchanged
from runlife._core.status import Status, Trigger
from runlife._runtime.job import Job
from runlife._runtime.runtime import AsyncRuntime
from runlife.abc import Clock, Executor, Hooks, Store
from runlife.exceptions import InvalidPolicy

__all__ = ("Runtime",)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

BACKENDS: Final = ("asyncio", "trio")


def _twin(verb: Callable[..., Any]) -> Callable[[F], F]:
    """Give a blocking verb the summary of its async twin, and say whose twin it is."""
    summary = inspect.cleandoc(verb.__doc__ or "").split("\n\n", 1)[0]

    def attach(fn: F) -> F:
        fn.__doc__ = (
            f"{summary}\n\nThe blocking twin of `AsyncRuntime.{verb.__name__}`: the same "
            "arguments, result and errors."
        )
        return fn

    return attach


class Runtime:
    """`AsyncRuntime` for hosts that are not async: the same runtime and verbs, blocking.

    ``with Runtime(...)`` starts an event loop in a thread of its own and the
    runtime's services on it; every verb blocks the calling thread until the
    runtime's async verb of the same name returns, and may be called from any
    number of threads at once. Leaving the block stops the runtime gracefully
    (the attempts still running get *grace* seconds, then end ``interrupted``
    and go RETRYING -> QUEUED without spending their retry budget); verbs still
    blocked in other threads then raise `RuntimeError`. When the block raised,
    there is no grace, as with `AsyncRuntime`.

    Sync job functions run in worker threads, async ones on the runtime's loop.
    It takes every argument of `AsyncRuntime`, with the same meaning, and two more.

    Args:
        backend: the event loop to run on: ``"asyncio"`` or ``"trio"``.
        backend_options: options of that loop, as ``anyio.run`` takes them
            (``{"use_uvloop": True}``).

    Raises:
        InvalidPolicy: a bad argument (an unknown backend, or what
            `AsyncRuntime` refuses).

    >>> import runlife
    >>> @runlife.job
    ... def add(ctx, a, b):
    ...     return a + b
    >>> with runlife.Runtime(jobs=[add], store="memory://") as rt:
    ...     run = rt.wait(rt.submit(add, params={"a": 1, "b": 2}).id)
    >>> run.status, run.result
    (<Status.SUCCEEDED: 'SUCCEEDED'>, 3)
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
        backend: str = "asyncio",
        backend_options: Mapping[str, Any] | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise InvalidPolicy("backend", backend, "'asyncio' or 'trio'")
        if backend_options is not None and not isinstance(backend_options, Mapping):
            raise InvalidPolicy("backend_options", backend_options, "None or a mapping")
        self.backend = backend
        self.backend_options = dict(backend_options or {})
        self._runtime = AsyncRuntime(
            jobs=jobs,
            workflows=workflows,
            store=store,
            serve=serve,
            clock=clock,
            executor=executor,
            worker_id=worker_id,
            lease=lease,
            concurrency=concurrency,
            grace=grace,
            poll=poll,
            hooks=hooks,
            hook_timeout=hook_timeout,
            max_log_lines=max_log_lines,
            max_log_bytes=max_log_bytes,
        )
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._stack: ExitStack | None = None
        self._calls: set[anyio.CancelScope] = set()
        self._lock = threading.Lock()
        self._loop_thread: int | None = None
        self._state = "new"

    def __repr__(self) -> str:
        rt = self._runtime
        return f"<Runtime {rt.worker_id} {self._state}, {len(rt.jobs)} jobs, {rt.store!r}>"

    @property
    def async_runtime(self) -> AsyncRuntime:
        """The `AsyncRuntime` this runtime drives (its verbs are awaited on the
        runtime's own loop, never from the host's threads)."""
        return self._runtime

    # -- entering and leaving ------------------------------------------------------

    def __enter__(self) -> Self:
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"{self!r} was entered already; make a new runtime")
            self._state = "starting"
        stack = ExitStack()
        try:
            portal = stack.enter_context(
                anyio.from_thread.start_blocking_portal(
                    self.backend,
                    self.backend_options or None,
                    name=f"runlife-runtime-{self._runtime.worker_id}",
                )
            )
            stack.enter_context(portal.wrap_async_context_manager(self._runtime))
        except BaseException:
            self._state = "closed"
            stack.close()
            raise
        self._loop_thread = portal.call(threading.get_ident)
        self._stack, self._portal = stack, portal
        self._state = "running"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._stack is not None
        assert self._portal is not None
        self._state = "stopping"
        try:
            # Verbs blocked in other threads (a wait, say) would wait on a runtime
            # that stops: they end first.
            self._portal.call(self._end_calls)
        finally:
            try:
                self._stack.__exit__(exc_type, exc, tb)
            finally:
                self._state = "closed"

    def _end_calls(self) -> None:
        for scope in list(self._calls):
            scope.cancel()

    # -- calling the async runtime -----------------------------------------------------

    def _call(self, verb: Callable[[], Awaitable[T]]) -> T:
        portal = self._portal
        if portal is None or self._state != "running":
            raise RuntimeError(f"{self!r} is not running: use its verbs inside 'with Runtime(...)'")
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError(
                f"{self!r}: a blocking verb was called on the runtime's own event loop "
                "(by an async job function, say), which it would block; await the verb "
                "of rt.async_runtime there instead"
            )
        return portal.call(self._guarded, verb)

    async def _guarded(self, verb: Callable[[], Awaitable[T]]) -> T:
        if self._state != "running":
            raise RuntimeError(f"{self!r} is stopping: the call was not made")
        with anyio.CancelScope() as scope:
            self._calls.add(scope)
            try:
                return await verb()
            finally:
                self._calls.discard(scope)
        raise RuntimeError(f"{self!r} stopped while the call was in progress")

    def _iterate(self, iterate: Callable[[], AsyncIterator[T]]) -> Iterator[T]:
        """The items of an async iterator of the runtime, in the calling thread.

        One task on the loop runs the whole iteration (so an iterator that holds
        a cancel scope across its items is resumed by the task that made it) and
        hands each item over when the caller asks for the next one. Closing the
        iterator (or leaving a ``for`` loop early) stops that task and closes the
        async iterator before it returns.
        """
        pipe: tuple[MemoryObjectSendStream[T], MemoryObjectReceiveStream[T]]
        pipe = self._call(partial(_pipe, 0))
        send, receive = pipe
        stops: list[anyio.CancelScope] = []

        async def pump() -> None:
            with anyio.CancelScope() as stop:
                stops.append(stop)
                items = iterate()
                try:
                    async with send:
                        async for item in items:
                            await send.send(item)
                except anyio.BrokenResourceError:
                    pass  # the caller stopped iterating
                finally:
                    aclose = getattr(items, "aclose", None)
                    if aclose is not None:
                        with anyio.CancelScope(shield=True):
                            await aclose()

        portal = self._portal
        assert portal is not None
        pumping: Future[None] = portal.start_task_soon(self._guarded, pump)
        try:
            while True:
                try:
                    item = self._call(receive.receive)
                except anyio.EndOfStream:
                    break
                yield item
            pumping.result()  # the iterator's own error, if it raised one
        finally:
            try:
                portal.call(_stop, stops, pipe)
            except RuntimeError:
                # The portal stopped meanwhile (and its tasks with it): nothing
                # uses the pipe any more.
                send.close()
                receive.close()
            with contextlib.suppress(Exception):
                pumping.result()  # its error, if any, is not the caller's now

    # -- the verbs -------------------------------------------------------------------

    @_twin(AsyncRuntime.submit)
    def submit(
        self,
        job: Job | Workflow | str,
        params: Mapping[str, Any] | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        at: datetime | None = None,
        priority: int = 0,
    ) -> Run:
        return self._call(
            partial(
                self._runtime.submit,
                job,
                params,
                labels=labels,
                idempotency_key=idempotency_key,
                at=at,
                priority=priority,
            )
        )

    @_twin(AsyncRuntime.submit_many)
    def submit_many(
        self,
        job: Job | str,
        params: Iterable[Mapping[str, Any]],
        *,
        labels: Mapping[str, str] | None = None,
        priority: int = 0,
    ) -> tuple[Run, ...]:
        # Read in the caller's thread: a generator of params is the caller's.
        given = list(params)
        return self._call(
            partial(self._runtime.submit_many, job, given, labels=labels, priority=priority)
        )

    @_twin(AsyncRuntime.get_run)
    def get_run(self, run_id: str) -> Run:
        return self._call(partial(self._runtime.get_run, run_id))

    @_twin(AsyncRuntime.wait)
    def wait(self, run_id: str, timeout: float | None = None) -> Run:
        return self._call(partial(self._runtime.wait, run_id, timeout))

    @_twin(AsyncRuntime.list_runs)
    def list_runs(
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
        return self._call(
            partial(
                self._runtime.list_runs,
                job=job,
                status=status,
                trigger=trigger,
                labels=labels,
                since=since,
                until=until,
                field=field,
                text=text,
                workflow_run_id=workflow_run_id,
                parent_id=parent_id,
                limit=limit,
                cursor=cursor,
            )
        )

    @_twin(AsyncRuntime.count_runs)
    def count_runs(
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
        return self._call(
            partial(
                self._runtime.count_runs,
                job=job,
                status=status,
                trigger=trigger,
                labels=labels,
                since=since,
                until=until,
                field=field,
                text=text,
                workflow_run_id=workflow_run_id,
                parent_id=parent_id,
            )
        )

    @_twin(AsyncRuntime.signals)
    def signals(self, run_id: str) -> Mapping[str, Any]:
        return self._call(partial(self._runtime.signals, run_id))

    @_twin(AsyncRuntime.job_spec)
    def job_spec(self, job: Job | Workflow | str) -> JobSpec:
        return self._call(partial(self._runtime.job_spec, job))

    @_twin(AsyncRuntime.cancel)
    def cancel(
        self,
        run_id: str,
        reason: str | None = None,
        *,
        by: str | None = None,
        wait: bool = True,
    ) -> Run:
        return self._call(partial(self._runtime.cancel, run_id, reason, by=by, wait=wait))

    @_twin(AsyncRuntime.retry)
    def retry(self, run_id: str) -> Run:
        return self._call(partial(self._runtime.retry, run_id))

    @_twin(AsyncRuntime.rerun)
    def rerun(self, run_id: str) -> Run:
        return self._call(partial(self._runtime.rerun, run_id))

    @_twin(AsyncRuntime.resume)
    def resume(self, run_id: str) -> Run:
        return self._call(partial(self._runtime.resume, run_id))

    @_twin(AsyncRuntime.items)
    def items(
        self,
        run_id: str,
        status: Status | str | None = None,
        *,
        phase: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> tuple[Item, ...]:
        return self._call(
            partial(self._runtime.items, run_id, status, phase=phase, after=after, limit=limit)
        )

    @_twin(AsyncRuntime.logs)
    def logs(
        self,
        run_id: str,
        *,
        stream: str | None = None,
        item: str | None = None,
        level: str | None = None,
        after: str | int | None = None,
        limit: int = 500,
    ) -> LogPage:
        return self._call(
            partial(
                self._runtime.logs,
                run_id,
                stream=stream,
                item=item,
                level=level,
                after=after,
                limit=limit,
            )
        )

    @_twin(AsyncRuntime.search_logs)
    def search_logs(self, run_id: str, text: str, *, limit: int = 1000) -> tuple[LogLine, ...]:
        return self._call(partial(self._runtime.search_logs, run_id, text, limit=limit))

    @_twin(AsyncRuntime.follow_logs)
    def follow_logs(
        self,
        run_id: str,
        *,
        stream: str | None = None,
        item: str | None = None,
        level: str | None = None,
        after: str | int | None = None,
    ) -> Iterator[LogLine]:
        return self._iterate(
            partial(
                self._runtime.follow_logs,
                run_id,
                stream=stream,
                item=item,
                level=level,
                after=after,
            )
        )

    @_twin(AsyncRuntime.events)
    def events(
        self,
        *,
        job: Job | str | None = None,
        status: Status | str | Iterable[Status | str] | None = None,
        run_id: str | None = None,
        after: int | str | None = None,
        kind: str | Iterable[str] | None = None,
    ) -> Iterator[Event]:
        return self._iterate(
            partial(
                self._runtime.events, job=job, status=status, run_id=run_id, after=after, kind=kind
            )
        )

    @_twin(AsyncRuntime.export_logs)
    def export_logs(self, run_id: str, fmt: str = "text") -> str:
        return self._call(partial(self._runtime.export_logs, run_id, fmt))

    @_twin(AsyncRuntime.graph)
    def graph(self, run_id: str) -> RunGraph:
        return self._call(partial(self._runtime.graph, run_id))

    @_twin(AsyncRuntime.summary)
    def summary(self, *, since: datetime | None = None, until: datetime | None = None) -> Summary:
        return self._call(partial(self._runtime.summary, since=since, until=until))

    @_twin(AsyncRuntime.list_jobs)
    def list_jobs(self) -> tuple[JobOverview, ...]:
        return self._call(self._runtime.list_jobs)

    @_twin(AsyncRuntime.explain)
    def explain(self, run_id: str) -> RunExplanation:
        return self._call(partial(self._runtime.explain, run_id))

    @_twin(AsyncRuntime.signal)
    def signal(self, run_id: str, name: str, payload: Any = None) -> None:
        return self._call(partial(self._runtime.signal, run_id, name, payload))

    @_twin(AsyncRuntime.pause)
    def pause(self, job: Job | str) -> JobRecord:
        return self._call(partial(self._runtime.pause, job))

    @_twin(AsyncRuntime.unpause)
    def unpause(self, job: Job | str) -> JobRecord:
        return self._call(partial(self._runtime.unpause, job))

    @_twin(AsyncRuntime.next_fire)
    def next_fire(self, job: Job | str) -> datetime | None:
        return self._call(partial(self._runtime.next_fire, job))

    @_twin(AsyncRuntime.set_policy)
    def set_policy(
        self,
        job: Job | str,
        *,
        retry: Retry | _Unchanged = UNCHANGED,
        timeout: Timeout | _Unchanged = UNCHANGED,
        limits: Limits | _Unchanged = UNCHANGED,
        items_fail_run: float | _Unchanged | None = UNCHANGED,
        reset: Iterable[str] = (),
    ) -> JobSpec:
        return self._call(
            partial(
                self._runtime.set_policy,
                job,
                retry=retry,
                timeout=timeout,
                limits=limits,
                items_fail_run=items_fail_run,
                reset=list(reset) if not isinstance(reset, str) else reset,
            )
        )

    @_twin(AsyncRuntime.purge)
    def purge(
        self,
        *,
        older_than: datetime | timedelta,
        statuses: Iterable[Status | str] | None = None,
    ) -> int:
        chosen = statuses if statuses is None or isinstance(statuses, str) else list(statuses)
        return self._call(partial(self._runtime.purge, older_than=older_than, statuses=chosen))


async def _pipe(size: float) -> tuple[MemoryObjectSendStream[Any], MemoryObjectReceiveStream[Any]]:
    return anyio.create_memory_object_stream[Any](size)


async def _stop(
    scopes: list[anyio.CancelScope],
    pipe: tuple[MemoryObjectSendStream[Any], MemoryObjectReceiveStream[Any]],
) -> None:
    """Stop the pump of `Runtime._iterate` (if it started) and close its pipe."""
    send, receive = pipe
    for scope in scopes:
        scope.cancel()
    if not scopes:
        await send.aclose()  # the pump never started, to close its end
    await receive.aclose()
