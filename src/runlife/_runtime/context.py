"""`RunContext`: what a job function knows of the run it is an attempt of."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

import structlog

from runlife._core.values import check_text
from runlife.abc import Clock

__all__ = ("RunContext",)


class _Holder(Protocol):
    """What the context needs of the worker that holds its attempt."""

    @property
    def state(self) -> str: ...

    async def set_state(self, name: str) -> None: ...


class RunContext:
    """The first argument of a job function: the run, its attempt, and the means
    to speak to the runtime.

    Attributes:
        run_id: the run's id.
        job: the job's name.
        attempt: the attempt's number, from 1.
        params: the run's params (a copy: changing it changes nothing stored).
        log: a structlog logger bound to ``run_id``, ``job`` and ``attempt``
            (its lines go to the host's structlog configuration; they are not
            stored with the run yet).

    Sync job functions run in worker threads: `warn`, `heartbeat` and
    `cancelled` work there as they are; `set_state` is async, so a thread calls
    it through anyio: ``anyio.from_thread.run(ctx.set_state, "STARTED")``. A job
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
        "_last_beat",
        "_warnings",
        "attempt",
        "job",
        "log",
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
    ) -> None:
        self.run_id = run_id
        self.job = job
        self.attempt = attempt
        self.params = dict(params)
        self.log = structlog.get_logger("runlife.job").bind(run_id=run_id, job=job, attempt=attempt)
        self._clock = clock
        self._holder = holder
        self._warnings: list[str] = []
        self._cancelled = threading.Event()
        self._last_beat = clock.now()

    def __repr__(self) -> str:
        return f"<RunContext {self.job} run {self.run_id} attempt {self.attempt}>"

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
        return self._cancelled.is_set()

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

    def _cancel(self) -> None:
        self._cancelled.set()
