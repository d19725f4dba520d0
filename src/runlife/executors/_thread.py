"""`ThreadExecutor`: sync job functions, in worker threads."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import anyio.to_thread

from runlife.abc import Clock
from runlife.exceptions import InvalidPolicy
from runlife.executors._limits import LoopLimiter

__all__ = ("ThreadExecutor",)


class ThreadExecutor:
    """Runs sync job functions in worker threads, at most *max_threads* at once.

    A thread cannot be interrupted. When an attempt is cut (its timeout, a
    cancel, a shutdown), `run` returns control to the runtime at once and the
    thread goes on until its function returns: the runtime records the attempt
    as cut *and still running* in its error message, and sets ``ctx.cancelled``
    so that a function that looks at it can stop early. A thread left running
    no longer counts against *max_threads*.

    Each call is marked ``clock.busy()``: under a virtual clock, time stands
    still while a thread works (in virtual time a thread takes no time).

    Args:
        max_threads: how many job threads may run at once (further attempts wait
            for one to end); at least 1.

    Raises:
        InvalidPolicy: *max_threads* is not an int >= 1.

    >>> import anyio
    >>> from runlife import SystemClock
    >>> executor = ThreadExecutor(max_threads=4)
    >>> executor.accepts(sum), executor.can_interrupt
    (True, False)
    >>> anyio.run(lambda: executor.run(lambda: sum([1, 2, 3]), clock=SystemClock()))
    6
    """

    can_interrupt = False

    def __init__(self, max_threads: int = 16) -> None:
        if type(max_threads) is not int or max_threads < 1:
            raise InvalidPolicy("max_threads", max_threads, "an int >= 1")
        self.max_threads = max_threads
        self._limiter = LoopLimiter(max_threads)

    def __repr__(self) -> str:
        return f"ThreadExecutor(max_threads={self.max_threads})"

    def accepts(self, fn: Callable[..., Any]) -> bool:
        """Whether *fn* is a sync callable (not an async function)."""
        return callable(fn) and not (
            inspect.iscoroutinefunction(fn)
            or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004
        )

    async def run(self, call: Callable[[], Any], *, clock: Clock) -> Any:
        """Run *call* in a worker thread and return its result; if cancelled,
        return control at once and leave the thread running."""
        with clock.busy():
            return await anyio.to_thread.run_sync(
                call, limiter=self._limiter.here(), abandon_on_cancel=True
            )
