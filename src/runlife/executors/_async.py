"""`AsyncExecutor`: async job functions, on the event loop."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from runlife.abc import Clock

__all__ = ("AsyncExecutor",)


class AsyncExecutor:
    """Runs async job functions on the runtime's event loop.

    It can interrupt them: when an attempt is cut, the function is cancelled at
    its next ``await`` (anyio's cancellation), so a timeout really stops it. A
    function that blocks the loop without awaiting cannot be cut by anyone, and
    stops everything else of the runtime meanwhile: run such work on threads.

    >>> import anyio
    >>> from runlife import SystemClock
    >>> async def work():
    ...     return 42
    >>> executor = AsyncExecutor()
    >>> executor.accepts(work), executor.can_interrupt
    (True, True)
    >>> anyio.run(lambda: executor.run(work, clock=SystemClock()))
    42
    """

    can_interrupt = True

    def __repr__(self) -> str:
        return "AsyncExecutor()"

    def accepts(self, fn: Callable[..., Any]) -> bool:
        """Whether *fn* is an async function (or an object with an async ``__call__``)."""
        return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004
        )

    async def run(self, call: Callable[[], Any], *, clock: Clock) -> Any:
        """Await *call*'s coroutine on this loop and return its result."""
        return await call()
