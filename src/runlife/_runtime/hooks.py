"""Telling the host's hooks what the runtime did, without ever waiting for them.

The runtime's `StoreGuard` tells `HookRunner.tell` of each write that moved a
run, once it is stored (the run as stored and the moves the write made). `tell`
never blocks and never fails: it puts a notice on a bounded queue and returns.
One task of the runtime takes the notices in order and calls the hooks, one call
at a time: `Hooks.on_transition` for each move, then `on_success`, `on_failure`
or `on_retry` when the write left the run SUCCEEDED, FAILED or RETRYING, and
`on_warning` after `on_success` when the run succeeded with warnings.

* **Failures.** A hook that raises is logged (``runlife.hooks``, with the hook's
  name, the call and the run) and the next call goes on. A hook never changes a
  run: it is called after the write, with a value.
* **Timeouts.** Each call is cut after ``timeout`` seconds of the runtime's clock,
  and logged. An async hook is cancelled; a plain one runs in a worker thread,
  which cannot be interrupted: the runner stops waiting for it and goes on while
  the thread finishes on its own (under a virtual clock, time stands still while
  a thread works, as for the thread executor).
* **A full queue.** When the hooks fall ``capacity`` notices behind, a new notice
  is dropped rather than making a worker wait: it is counted in ``dropped`` and
  logged (once when dropping starts, once when the queue accepts notices again).
* **Shutdown.** Leaving the runtime gives the queued notices ``timeout`` seconds in
  all to be delivered, after the attempts' last writes; the rest are dropped.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, Final

import anyio
import anyio.abc
import anyio.to_thread
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from runlife._core.records import Transition
from runlife._core.run import Run
from runlife._core.status import Status
from runlife.abc import Clock, Hooks
from runlife.exceptions import InvalidPolicy

__all__ = ("HookRunner",)

_CALLS: Final = ("on_transition", "on_success", "on_failure", "on_retry", "on_warning")
_ON_STATUS: Final = {
    Status.SUCCEEDED: "on_success",
    Status.FAILED: "on_failure",
    Status.RETRYING: "on_retry",
}
_Notice = tuple[Run, tuple[Transition, ...]]


class _Hook:
    """One hook: its name for the log and the calls it has, each sync or async."""

    __slots__ = ("calls", "name")

    def __init__(self, name: str, calls: dict[str, tuple[Callable[..., Any], bool]]) -> None:
        self.name = name
        self.calls = calls


def _hook(index: int, hook: object) -> _Hook:
    calls: dict[str, tuple[Callable[..., Any], bool]] = {}
    for name in _CALLS:
        method = getattr(hook, name, None)
        if method is None or getattr(type(hook), name, None) is getattr(Hooks, name):
            continue  # not there, or the do-nothing one of the Hooks base class
        if not callable(method):
            raise InvalidPolicy(f"hooks[{index}].{name}", method, "a method")
        calls[name] = (method, inspect.iscoroutinefunction(method))
    if not calls:
        raise InvalidPolicy(
            f"hooks[{index}]",
            hook,
            f"an object with at least one of {', '.join(_CALLS)} (see runlife.abc.Hooks)",
        )
    return _Hook(type(hook).__qualname__, calls)


class HookRunner:
    """Calls the host's hooks for the runtime's stored moves (see the module docstring).

    Args:
        hooks: the hooks, called in this order.
        clock: the runtime's clock (each call's timeout).
        timeout: seconds each call may take; also what the queue gets at shutdown.
        capacity: how many notices may wait before new ones are dropped.

    Raises:
        InvalidPolicy: a hook without any of the `Hooks` methods, a bad timeout or
            capacity.

    >>> import anyio
    >>> from datetime import datetime, UTC
    >>> from runlife import DEFAULT_LIFECYCLE as lc, Run, Status
    >>> from runlife.testing import VirtualClock
    >>> class Print:
    ...     def on_transition(self, run, transition):
    ...         print(transition.from_, "->", transition.to)
    >>> clock = VirtualClock(start=datetime(2026, 3, 10, 2, tzinfo=UTC))
    >>> runner = HookRunner([Print()], clock)
    >>> run = lc.transition(Run.create(job="backup", at=clock.now()), Status.QUEUED, at=clock.now())
    >>> async def main():
    ...     async with anyio.create_task_group() as tg:
    ...         await tg.start(runner.serve)
    ...         runner.tell(run, run.history)
    ...         await runner.drain()
    >>> anyio.run(main)
    PENDING -> QUEUED
    """

    def __init__(
        self,
        hooks: Iterable[Hooks],
        clock: Clock,
        *,
        timeout: float = 10,
        capacity: int = 1000,
    ) -> None:
        if not isinstance(hooks, Iterable) or any(callable(getattr(hooks, c, 0)) for c in _CALLS):
            raise InvalidPolicy("hooks", hooks, "an iterable of hooks: hooks=[hook]")
        self.hooks = tuple(_hook(i, hook) for i, hook in enumerate(hooks))
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise InvalidPolicy("hook_timeout", timeout, "seconds > 0")
        if type(capacity) is not int or capacity < 1:
            raise InvalidPolicy("capacity", capacity, "an int >= 1")
        self.clock = clock
        self.timeout = float(timeout)
        self.capacity = capacity
        self.dropped = 0
        """How many notices were dropped because the queue was full."""
        self._dropping = 0
        self._send: MemoryObjectSendStream[_Notice] | None = None
        self._scope: anyio.CancelScope | None = None
        self._done: anyio.Event | None = None
        self._log = structlog.get_logger("runlife.hooks")

    def __repr__(self) -> str:
        return f"<HookRunner {', '.join(h.name for h in self.hooks) or 'no hooks'}>"

    def tell(self, run: Run, moves: Sequence[Transition]) -> None:
        """Queue the news of a stored write: *run* as stored, *moves* the moves it
        made. Never blocks; a notice that finds the queue full is dropped."""
        if not self.hooks or not moves or self._send is None:
            return
        try:
            self._send.send_nowait((run, tuple(moves)))
        except anyio.WouldBlock:
            self.dropped += 1
            self._dropping += 1
            if self._dropping == 1:
                self._log.warning(
                    "hooks are behind: notices are dropped until they catch up",
                    run_id=run.id,
                    job=run.job,
                    capacity=self.capacity,
                )
            return
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return  # stopping: nothing more is delivered
        if self._dropping:
            self._log.info("hooks caught up", dropped=self._dropping)
            self._dropping = 0

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Deliver notices until `drain` (or a cancellation) ends it."""
        if not self.hooks:
            task_status.started()
            return
        # anyio's streams and events belong to an event loop: made here.
        send, receive = anyio.create_memory_object_stream[_Notice](self.capacity)
        self._send, self._done, self._scope = send, anyio.Event(), anyio.CancelScope()
        try:
            with self._scope, receive:
                task_status.started()
                await self._deliver(receive)
        finally:
            self._send = None
            send.close()
            self._done.set()

    async def _deliver(self, receive: MemoryObjectReceiveStream[_Notice]) -> None:
        async for run, moves in receive:
            for move in moves:
                await self._call("on_transition", run, move)
            status_call = _ON_STATUS.get(run.status)
            if status_call is not None:
                await self._call(status_call, run)
            if run.status is Status.SUCCEEDED and run.has_warnings:
                await self._call("on_warning", run)

    async def _call(self, name: str, run: Run, *args: Any) -> None:
        for hook in self.hooks:
            found = hook.calls.get(name)
            if found is None:
                continue
            method, is_async = found
            deadline = self.clock.now() + timedelta(seconds=self.timeout)
            try:
                with self.clock.move_on_at(deadline) as scope:
                    if is_async:
                        await method(run, *args)
                    else:
                        await self._in_thread(method, run, *args)
            except Exception:
                self._log.exception(
                    "hook failed", hook=hook.name, call=name, run_id=run.id, job=run.job
                )
                continue
            if scope.cancelled_caught:
                self._log.warning(
                    "hook timed out" + ("" if is_async else "; its thread is still running"),
                    hook=hook.name,
                    call=name,
                    run_id=run.id,
                    job=run.job,
                    timeout=self.timeout,
                )

    async def _in_thread(self, method: Callable[..., Any], *args: Any) -> None:
        with self.clock.busy():
            result = await anyio.to_thread.run_sync(lambda: method(*args), abandon_on_cancel=True)
        if isinstance(result, Awaitable):
            await result  # a plain method that returned an awaitable

    async def drain(self) -> None:
        """Stop taking notices; deliver those queued for at most ``timeout``
        seconds in all, then stop."""
        send, done = self._send, self._done
        if send is None or done is None:
            return
        self._send = None
        send.close()
        with self.clock.move_on_at(self.clock.now() + timedelta(seconds=self.timeout)):
            await done.wait()
        if not done.is_set():
            self._log.warning("hooks stopped with notices undelivered", timeout=self.timeout)
        self.abort()

    def abort(self) -> None:
        """End delivery now."""
        if self._scope is not None:
            self._scope.cancel()
