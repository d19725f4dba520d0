"""`RunContext`: what a job function knows of the run it is an attempt of."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from runlife._core.values import check_text
from runlife.abc import Clock

if TYPE_CHECKING:
    from runlife._core.policy import Retry
    from runlife._runtime.items import ItemContext, RunItems

__all__ = ("RunContext",)


class _Holder(Protocol):
    """What the context needs of the worker that holds its attempt."""

    @property
    def state(self) -> str: ...

    async def set_state(self, name: str) -> None: ...

    async def wait_for(self, name: str, timeout: float | timedelta | None) -> Any: ...

    def logger(self) -> Any:
        """The attempt's ``ctx.log`` (made when first asked for)."""
        ...


class RunContext:
    """The first argument of a job function: the run, its attempt, and the means
    to speak to the runtime.

    Attributes:
        run_id: the run's id.
        job: the job's name.
        attempt: the attempt's number, from 1.
        params: the run's params (a copy: changing it changes nothing stored).

    Sync job functions run in worker threads: `warn`, `heartbeat` and
    `cancelled` work there as they are; `set_state` and `wait_for` are async, so
    a thread calls them through anyio:
    ``anyio.from_thread.run(ctx.set_state, "STARTED")``,
    ``anyio.from_thread.run(ctx.wait_for, "approved", 3600)``. A job
    run in a child process (``executor="process"``) gets a context with
    ``run_id``, ``job``, ``attempt``, ``params``, ``log``, `warn`, `heartbeat` and
    `cancelled`, relayed to this one (see `runlife.executors.ProcessExecutor`).

    >>> import anyio, runlife
    >>> from runlife.stores import MemoryStore
    >>> @runlife.job
    ... async def greet(ctx, name):
    ...     ctx.warn(f"{name} was greeted at attempt {ctx.attempt}")
    ...     return f"hello {name}"
    >>> async def main():
    ...     async with runlife.AsyncRuntime(jobs=[greet], store=MemoryStore()) as rt:
    ...         run = await rt.wait((await rt.submit(greet, params={"name": "ada"})).id)
    ...     return run.status, run.result, run.warnings
    >>> anyio.run(main)
    (<Status.SUCCEEDED: 'SUCCEEDED'>, 'hello ada', ('ada was greeted at attempt 1',))
    """

    __slots__ = (
        "_cancelled",
        "_clock",
        "_holder",
        "_items",
        "_last_beat",
        "_log",
        "_warnings",
        "attempt",
        "job",
        "params",
        "run_id",
    )

    def __init__(
        self,
        *,
        run_id: str,
        job: str,
        attempt: int,
        params: Mapping[str, Any],
        clock: Clock,
        holder: _Holder,
        items: RunItems | None = None,
        log: Any = None,
    ) -> None:
        self.run_id = run_id
        self.job = job
        self.attempt = attempt
        self.params = dict(params)
        self._log = log
        self._clock = clock
        self._holder = holder
        self._items = items
        self._warnings: list[str] = []
        self._cancelled = False  # set once, read from any thread
        self._last_beat = clock.now()

    def __repr__(self) -> str:
        return f"<RunContext {self.job} run {self.run_id} attempt {self.attempt}>"

    @property
    def log(self) -> Any:
        """A structlog logger bound to ``run_id``, ``job`` and ``attempt``, whose
        lines are stored with the run (``ctx.log.bind(item=key)``: as the
        item's); what the job prints and logs through `logging` is stored too
        (see the logs page). Made when first asked for."""
        log = self._log
        if log is None:
            log = self._log = self._holder.logger()
        return log

    @property
    def state(self) -> str:
        """The run's current state (a state of its job's lifecycle)."""
        return self._holder.state

    @property
    def cancelled(self) -> bool:
        """Whether the attempt was told to stop (cancelled, cut at its timeout, its
        runtime shutting down, its lease lost).

        Async functions are cancelled at their next ``await`` anyway; a sync
        function in a thread cannot be, and should look at this between steps.
        """
        return self._cancelled

    @property
    def warnings(self) -> tuple[str, ...]:
        """The warnings this attempt recorded so far."""
        return tuple(self._warnings)

    @property
    def last_beat(self) -> datetime:
        """When the job last gave a sign of life (`heartbeat`, or its start)."""
        return self._last_beat

    def warn(self, message: str) -> None:
        """Record a warning: kept in ``run.warnings`` when the attempt ends (a run
        can succeed with warnings).

        Raises:
            InvalidValue: *message* is not text.
        """
        check_text("message", message)
        self._warnings.append(message)

    def heartbeat(self) -> None:
        """Say the job is alive. Leases are renewed by the runtime on its own; a job
        whose ``Timeout(heartbeat=...)`` is set must call this at least that often,
        or its attempt is cut as abandoned. Safe from a thread."""
        self._last_beat = self._clock.now()

    async def set_state(self, name: str) -> None:
        """Move the run to state *name* of its lifecycle, of the status it is in now
        (``STARTED`` -> ``RUNNING`` of a custom lifecycle, both RUNNING), and store
        the move. Moves between statuses are the runtime's.

        Raises:
            InvalidTransition: *name* is not a state the run may move to, or it is
                of another status.
        """
        await self._holder.set_state(name)

    async def wait_for(self, signal: str, timeout: float | timedelta | None = None) -> Any:
        """Wait for signal *signal* of this run (``rt.signal(run_id, signal,
        payload)``, from any process) and return its payload.

        A signal sent already (signals are stored with the run, and stay) is
        returned at once, and the run stays RUNNING. Otherwise the run moves to
        WAITING until the signal comes, then back to RUNNING; its attempt stays
        alive meanwhile (held, leased, heartbeated), and the time it waits does not
        count against ``Timeout(attempt=...)`` or ``heartbeat=`` (``run=`` keeps
        counting). After *timeout* seconds without the signal (of the runtime's
        clock; None waits as long as it takes) the attempt is cut and the run ends
        FAILED with error kind ``timeout``, not retried. A cancel while waiting
        ends the run CANCELLED at once.

        A sync job waits through anyio, blocking its thread:
        ``anyio.from_thread.run(ctx.wait_for, "approved", 3600)``; if the attempt
        is stopped meanwhile, that call raises (a `BaseException`): let it pass.

        Raises:
            InvalidValue: *signal* is empty or not text, or *timeout* is not None
                or positive seconds.
            InvalidTransition: the job's lifecycle has no move to WAITING from the
                run's state.

        >>> import anyio, runlife
        >>> from datetime import datetime, UTC
        >>> from runlife.stores import MemoryStore
        >>> from runlife.testing import VirtualClock
        >>> @runlife.job
        ... async def deploy(ctx, version):
        ...     approval = await ctx.wait_for("approved", timeout=24 * 3600)
        ...     return f"{version} deployed, approved by {approval['by']}"
        >>> clock = VirtualClock(start=datetime(2026, 3, 10, 9, tzinfo=UTC))
        >>> async def main():
        ...     async with runlife.AsyncRuntime(jobs=[deploy], store=MemoryStore(clock=clock),
        ...                                     clock=clock) as rt:
        ...         run = await rt.submit(deploy, params={"version": "v2"})
        ...         await clock.sleep(3 * 3600)  # an operator takes three hours
        ...         await rt.signal(run.id, "approved", {"by": "ana"})
        ...         return await rt.wait(run.id)
        >>> run = anyio.run(main)
        >>> run.result, [f"{t.to} {t.at:%H:%M}" for t in run.history]
        ('v2 deployed, approved by ana', ['QUEUED 09:00', 'RUNNING 09:00', 'WAITING 09:00', 'RUNNING 12:00', 'SUCCEEDED 12:00'])
        """  # noqa: E501
        return await self._holder.wait_for(signal, timeout)

    # -- items -----------------------------------------------------------------------

    def _book(self) -> RunItems:
        if self._items is None:
            raise RuntimeError(f"{self!r} has no items: it was not made by a runtime's worker")
        return self._items

    def item(self, key: str, phase: str | None = None) -> ItemContext:
        """Item *key* of the run (a device, a record, a step), as a block:
        ``async with ctx.item(key) as item:`` (plain ``with`` in a sync job).

        The item is recorded RUNNING when the block starts and SUCCEEDED when it
        ends, with its duration and ``item.output``; an `Exception` raised inside
        records it FAILED with its error and is suppressed, so the run goes on
        with its next item. ``item.log`` is ``ctx.log`` bound to the item. In a
        resumed run, an item that succeeded in the run it resumes comes back
        with ``item.skipped`` True: do nothing in the block. See `ItemContext`.

        Raises:
            InvalidValue: *key* is empty or not text, *phase* is not text, or
                (on entering) another block of the same key is open.
        """
        return self._book().item(key, phase, self.log)

    async def items(self, keys: Iterable[str], *, phase: str | None = None) -> tuple[str, ...]:
        """Declare the run's items up front: each of *keys* is recorded PENDING, in
        one write, so that ``run.progress`` reads "0 of 40" from the start. Returns
        the keys to do: all of them, except in a resumed run, where those that
        succeeded in the run it resumes are recorded SKIPPED and left out.

        A sync job calls it through anyio: ``anyio.from_thread.run(ctx.items, keys)``.

        Raises:
            InvalidValue: a key is empty, not text or given twice (naming it).

        >>> import anyio, runlife
        >>> from runlife.stores import MemoryStore
        >>> @runlife.job
        ... async def sync(ctx, devices):
        ...     for device in await ctx.items(devices):
        ...         async with ctx.item(device):
        ...             pass
        >>> async def main():
        ...     async with runlife.AsyncRuntime(jobs=[sync], store=MemoryStore()) as rt:
        ...         return await rt.wait((await rt.submit(sync, {"devices": ["a", "b"]})).id)
        >>> anyio.run(main).progress
        ItemCounts(total=2, pending=0, running=0, succeeded=2, failed=0, skipped=0)
        """
        return await self._book().declare(keys, phase)

    async def map(
        self,
        fn: Callable[[str], Any],
        keys: Iterable[str],
        *,
        concurrency: int = 4,
        retry: Retry | None = None,
        timeout: float | timedelta | None = None,
        phase: str | None = None,
    ) -> dict[str, Any]:
        """Run ``fn(key)`` (sync or async) for each of *keys*, each as an item, at
        most *concurrency* at once, and return the outputs by key, in key order.

        The keys are declared first (as `items` does). Each key gets its own
        attempts: with *retry* (a `Retry`: ``max_attempts``, ``delay``, backoff,
        ``retry_on``...) a key whose call raised or ran past *timeout* seconds is
        tried again after the retry delay, waiting on the runtime's clock, and
        is RETRYING meanwhile; its ``attempts`` counts its tries, its error is
        the last one's, and each retried one is logged. A key that failed is
        recorded FAILED and left out of the result (the run goes on); a key's
        return value is its output (JSON). A sync *fn* runs in threads, which a
        timeout cannot stop (the error says so). In a resumed run, keys that
        succeeded in the run it resumes are SKIPPED and their outputs from
        there are in the result.

        A sync job calls it through anyio: ``anyio.from_thread.run(ctx.map, fn, keys)``.

        Raises:
            InvalidValue: a bad key (named), *concurrency*, *retry* or *timeout*.

        >>> import anyio, runlife
        >>> from runlife.stores import MemoryStore
        >>> @runlife.job
        ... async def ping(ctx, hosts):
        ...     async def one(host):
        ...         if host == "edge-3":
        ...             raise TimeoutError("no route to host")
        ...         return {"up": True}
        ...     return await ctx.map(one, hosts, concurrency=2)
        >>> async def main():
        ...     async with runlife.AsyncRuntime(jobs=[ping], store=MemoryStore()) as rt:
        ...         run = await rt.submit(ping, {"hosts": ["edge-1", "edge-2", "edge-3"]})
        ...         return await rt.wait(run.id)
        >>> run = anyio.run(main)
        >>> run.result, run.warnings
        ({'edge-1': {'up': True}, 'edge-2': {'up': True}}, ('1 of 3 items failed: edge-3',))
        """
        return await self._book().map(
            fn,
            keys,
            concurrency=concurrency,
            retry=retry,
            timeout=timeout,
            phase=phase,
            log=self.log,
        )

    def _cancel(self) -> None:
        self._cancelled = True
