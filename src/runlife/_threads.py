"""Blocking calls in worker threads that no cancellation can cut in half.

``anyio.to_thread.run_sync`` shields its caller from anyio and trio cancellation
until the thread is done, but not from plain asyncio cancellation
(``task.cancel()``, ``asyncio.wait_for``): the caller is released while the
thread still runs, and whatever it was doing (a SQLite statement on a shared
connection, a transaction) goes on under the feet of the next caller.
`run_sync` closes that gap: a call that was cancelled before its thread started
never runs; one that had started is waited for, and only then does the
cancellation go on. Either way the call happened entirely or not at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

import anyio
import anyio.to_thread
from anyio import CapacityLimiter

__all__ = ("run_sync",)

T = TypeVar("T")

_PENDING: Final = 0
_RUNNING: Final = 1
_DROPPED: Final = 2


class _Dropped(Exception):
    """The call was cancelled before its thread took it up."""


class _Call(Generic[T]):
    __slots__ = ("args", "done", "fn", "lock", "state")

    def __init__(self, fn: Callable[..., T], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        self.lock = threading.Lock()
        self.state = _PENDING
        self.done = threading.Event()

    def __call__(self) -> T:
        with self.lock:
            if self.state == _DROPPED:
                raise _Dropped
            self.state = _RUNNING
        try:
            return self.fn(*self.args)
        finally:
            self.done.set()

    def drop(self) -> bool:
        """Make sure the call never starts; False if it already has."""
        with self.lock:
            if self.state == _PENDING:
                self.state = _DROPPED
                return True
            return False


async def run_sync(fn: Callable[..., T], *args: Any, limiter: CapacityLimiter | None = None) -> T:
    """Run ``fn(*args)`` in a worker thread and return its result.

    If the caller is cancelled (by anyio, trio or plain asyncio), the call either
    never started or is waited for until it ends; then the cancellation is
    raised. The wait polls briefly, since the thread cannot wake the event loop
    once its caller has left.
    """
    call = _Call(fn, args)
    try:
        return await anyio.to_thread.run_sync(call, limiter=limiter)
    except _Dropped:  # pragma: no cover - only raised after the caller left
        raise
    except BaseException:
        if not call.drop() and not call.done.is_set():
            await _wait_done(call.done)
        raise


async def _wait_done(done: threading.Event) -> None:
    delay = 0.0005
    with anyio.CancelScope(shield=True):
        while not done.is_set():
            try:
                await anyio.sleep(delay)
            except BaseException:  # asyncio's cancellation passes anyio's shields
                if done.is_set():
                    break
            delay = min(delay * 2, 0.01)
