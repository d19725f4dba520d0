"""`ProcessExecutor`: job functions in child processes, which can be stopped."""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import attrs

from runlife._core.records import ErrorInfo
from runlife._runtime.capture import routed_item
from runlife._runtime.context import RunContext
from runlife.abc import Call, Clock
from runlife.exceptions import AttemptFailed, InvalidPolicy
from runlife.executors._child import BOOT
from runlife.executors._limits import LoopLimiter

if TYPE_CHECKING:
    from runlife._runtime.items import ItemContext, RunItems

__all__ = ("ProcessExecutor", "check_importable")

_LEVELS = frozenset({"debug", "info", "warning", "error", "critical"})
# Real seconds to read the rest of a child's stderr once it has ended.
_DRAIN = 1.0


class ProcessExecutor:
    """Runs job functions in child processes, at most *max_processes* at once.

    Each attempt starts a fresh interpreter (``sys.executable``, with this
    process's ``sys.path``), which imports the function by its module and
    qualified name, calls it with a context and the run's params, and sends its
    result back as JSON. So the function must be importable by name (defined at
    the top level of a module, or of the main script); its params and its result
    must be JSON. An exception it raises comes back as the attempt's error, with
    its type's qualified name, its message and its traceback text, and the retry
    policy matches it by name.

    It can interrupt: when an attempt is cut (its timeout, a cancel, a shutdown),
    the child gets SIGTERM, which raises `SystemExit` in it (its ``finally``
    blocks run; a function in ``time.sleep`` stops at once), then SIGKILL if it
    has not ended *grace* seconds later. `run` returns only once the child has
    ended.

    In the child, ``ctx`` offers ``run_id``, ``job``, ``attempt``, ``params``,
    ``log`` (its lines go to the parent's ``ctx.log``), ``warn()``,
    ``heartbeat()``, ``cancelled``, ``item(key, phase=)`` and ``items(keys)``,
    each relayed to the parent over a pipe, where the items are recorded as
    ``ctx.item`` records them (a block, ``with`` or ``async with``; an
    `Exception` inside fails the item and is suppressed); ``set_state``,
    ``wait_for`` and ``map`` are not offered. What the function writes to its
    stdout and stderr is written to this process's ``sys.stdout`` and ``sys.stderr`` (in a
    runtime: the run's log, as ``stdout`` and ``stderr`` lines), and its
    `logging` records that pass their levels go to ``ctx.log``; a write to file
    descriptor 1 in the child (C code, a subprocess) lands in its stderr.

    Each child is marked ``clock.busy()``: under a virtual clock, time stands
    still while a child works. Its *grace* is real time.

    Args:
        max_processes: how many children may run at once (further attempts wait
            for one to end); the number of CPUs unless given.
        grace: real seconds a child gets to end after SIGTERM before SIGKILL.

    Raises:
        InvalidPolicy: *max_processes* is not an int >= 1, or *grace* is not a
            number of seconds >= 0.

    >>> executor = ProcessExecutor(max_processes=2, grace=1)
    >>> executor, executor.can_interrupt
    (ProcessExecutor(max_processes=2, grace=1), True)
    >>> executor.accepts(lambda ctx: 1)
    False
    """

    can_interrupt = True

    def __init__(self, max_processes: int | None = None, *, grace: float = 5) -> None:
        if max_processes is None:
            max_processes = os.cpu_count() or 1
        if type(max_processes) is not int or max_processes < 1:
            raise InvalidPolicy("max_processes", max_processes, "an int >= 1")
        if isinstance(grace, bool) or not isinstance(grace, int | float) or not grace >= 0:
            raise InvalidPolicy("grace", grace, "seconds >= 0")
        self.max_processes = max_processes
        self.grace = float(grace)
        self._limiter = LoopLimiter(max_processes)

    def __repr__(self) -> str:
        return f"ProcessExecutor(max_processes={self.max_processes}, grace={self.grace:g})"

    def accepts(self, fn: Callable[..., Any]) -> bool:
        """Whether a child process can import *fn* by name (sync or async)."""
        return callable(fn) and isinstance(_locate(fn), _Place)

    async def run(self, call: Call, *, clock: Clock) -> Any:
        """Run *call*'s function in a child process and return its result.

        Raises:
            AttemptFailed: the function raised (its `runlife.ErrorInfo`), its
                result is not JSON, or the child ended without a result.
            InvalidPolicy: the function cannot be imported by name.
        """
        ctx: RunContext = call.ctx
        place = _locate(call.fn)
        if not isinstance(place, _Place):
            raise _refusal(ctx.job, call.fn, self, place)
        init = {
            "path": [entry for entry in sys.path if isinstance(entry, str)],
            "module": place.module,
            "qualname": place.qualname,
            "main": place.main,
            "run_id": ctx.run_id,
            "job": ctx.job,
            "attempt": ctx.attempt,
            "params": dict(call.params),
            "backend": _backend(),
        }
        book = _book_of(ctx)
        if book is not None:
            init["done"] = await book.resumed()
        line = (json.dumps(init, allow_nan=False) + "\n").encode()
        async with self._limiter.here():
            with clock.busy():
                return await self._in_child(line, ctx)

    async def _in_child(self, init: bytes, ctx: RunContext) -> Any:
        # Shielded: a child started is a child this call ends.
        with anyio.CancelScope(shield=True):
            process = await anyio.open_process(
                [sys.executable, "-c", BOOT],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        done = False
        drained = anyio.Event()
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            # Started here, so that it writes in this task's context (the run's).
            tg.start_soon(_copy_stderr, process, drained)
            try:
                outcome = await _talk(process, init, ctx)
                done = True
            except Exception as exc:
                failure = exc  # raised below as it is, not in a group
            finally:
                with anyio.CancelScope(shield=True):
                    await self._end(process, done=done, drained=drained)
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        if outcome.error is not None:
            raise AttemptFailed(outcome.error)
        if not outcome.returned:
            code = process.returncode
            assert code is not None
            raise AttemptFailed(
                ErrorInfo(
                    type="ChildProcessError",
                    message=f"the child process (pid {process.pid}) of attempt {ctx.attempt} "
                    f"{_exit_text(code)} before it returned a result",
                )
            )
        return outcome.result

    async def _end(self, process: anyio.abc.Process, *, done: bool, drained: anyio.Event) -> None:
        """End *process* and wait until it is gone: after its outcome, let it exit
        for *grace* seconds; when cut, SIGTERM first. SIGKILL what is left. Then
        read the rest of its stderr (for a moment: a process it started may hold
        the pipe open)."""
        try:
            if process.returncode is None and not done:
                _send(process.terminate)
            if process.returncode is None:
                with anyio.move_on_after(self.grace):
                    await process.wait()
            if process.returncode is None:
                _send(process.kill)
                await process.wait()
            with anyio.move_on_after(_DRAIN):
                await drained.wait()
        finally:
            await process.aclose()


@attrs.frozen
class _Outcome:
    returned: bool = False
    result: Any = None
    error: ErrorInfo | None = None


async def _talk(process: anyio.abc.Process, init: bytes, ctx: RunContext) -> _Outcome:
    """Hand the child its attempt, relay what it says, and return its outcome (an
    empty one if it ended without one)."""
    assert process.stdin is not None
    assert process.stdout is not None
    # A child that ended at once refuses its attempt: its exit code says how.
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
        await process.stdin.send(init)
    lines = _Lines(process.stdout)
    items = _Items(ctx)
    while (message := await lines.next()) is not None:
        if "result" in message:
            return _Outcome(returned=True, result=message["result"])
        if "error" in message:
            return _Outcome(error=_error_info(message["error"]))
        if not await items.take(message):
            _relay(message, ctx)
    await process.wait()
    return _Outcome()


async def _copy_stderr(process: anyio.abc.Process, drained: anyio.Event) -> None:
    """Write what the child writes to its stderr to ``sys.stderr``, until it ends."""
    assert process.stderr is not None
    decode = codecs.getincrementaldecoder("utf-8")("replace").decode
    try:
        while True:
            try:
                chunk = await process.stderr.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                break
            _write(sys.stderr, decode(chunk))
        _write(sys.stderr, decode(b"", True))
    finally:
        drained.set()


def _write(stream: Any, text: str) -> None:
    # In a runtime, sys.stdout and sys.stderr are its capture: the run's log.
    if text and stream is not None:
        stream.write(text)


def _relay(message: dict[str, Any], ctx: RunContext) -> None:
    if "out" in message:
        item = message.get("item")
        if item is None:
            _write(sys.stdout, message["out"])
        else:
            with routed_item(str(item)):
                _write(sys.stdout, message["out"])
    elif "log" in message:
        fields = dict(message["log"])
        level, event = fields.pop("level", "info"), fields.pop("event", "")
        getattr(ctx.log, level if level in _LEVELS else "info")(event, **fields)
    elif "warn" in message:
        ctx.warn(message["warn"])
    elif "beat" in message:
        ctx.heartbeat()


def _book_of(ctx: Any) -> RunItems | None:
    """The items of *ctx*'s attempt (None for a context a worker did not make)."""
    # Here, not at the top: the runtime's items import the executors.
    from runlife._runtime.items import RunItems

    book = getattr(ctx, "_items", None)
    return book if isinstance(book, RunItems) else None


class _Items:
    """The child's items, recorded in the parent's `RunItems` as ``ctx.item``
    records them (the child's messages ``items``, ``enter`` and ``leave``)."""

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx
        self._book = _book_of(ctx)
        self._open: dict[str, ItemContext] = {}

    async def take(self, message: dict[str, Any]) -> bool:
        """Record *message* if it is about items; whether it was."""
        if "enter" in message:
            said = message["enter"]
            if self._book is not None:
                scope = self._book.item(said["key"], said["phase"], self._ctx.log)
                await self._book.enter(scope)
                self._open[scope.key] = scope
        elif "leave" in message:
            said = message["leave"]
            left = self._open.pop(said["key"], None)
            if left is not None and self._book is not None:
                left.output = said["output"]
                if said["skip"] is not None:
                    left.skip(said["skip"])
                raised = said["error"]
                error = None if raised is None else AttemptFailed(_error_info(raised))
                self._book.leave(left, error)
        elif "items" in message:
            said = message["items"]
            if self._book is not None:
                await self._book.declare(said["keys"], said["phase"])
        else:
            return False
        return True


def _error_info(raised: dict[str, Any]) -> ErrorInfo:
    return ErrorInfo(type=raised["type"], message=raised["message"], traceback=raised["traceback"])


class _Lines:
    """The child's messages: one JSON object a line."""

    def __init__(self, stream: anyio.abc.ByteReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def next(self) -> dict[str, Any] | None:
        """The next message, or None at the end of the stream."""
        buffer = self._buffer
        end = buffer.find(b"\n")
        while end < 0:
            try:
                chunk = await self._stream.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                return None
            start = len(buffer)
            buffer += chunk
            end = buffer.find(b"\n", start)
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            unread = f"the child process sent {line[:200]!r}, which is not a message of runlife's"
            raise AttemptFailed(ErrorInfo(type="ChildProcessError", message=unread))
        return message


@attrs.frozen
class _Place:
    """Where a child finds a function: its module and qualified name, and the file
    of the main script for a function of ``__main__``."""

    module: str
    qualname: str
    main: str | None = None


def _locate(fn: Callable[..., Any]) -> _Place | str:
    """Where a child process finds *fn*, or why it cannot."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return "has no module and qualified name (a functools.partial or a callable object)"
    if "<lambda>" in qualname:
        return "is a lambda"
    if "<locals>" in qualname:
        return f"is defined inside {qualname.split('.<locals>')[0]}() (a nested function)"
    loaded = sys.modules.get(module)
    if loaded is None:
        return f"comes from {module!r}, which is not a module imported by name"
    if module != "__main__":
        return _Place(module, qualname)
    spec = getattr(loaded, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return _Place(spec.name, qualname)  # python -m package.module
    main = getattr(loaded, "__file__", None)
    if not main:
        return "comes from __main__, which has no file (an interactive session, python -c)"
    return _Place(module, qualname, os.path.abspath(main))


def check_importable(job: str, fn: Callable[..., Any], executor: object = "process") -> None:
    """Raise `InvalidPolicy` naming *job* if a child process cannot import *fn*."""
    place = _locate(fn)
    if not isinstance(place, _Place):
        raise _refusal(job, fn, executor, place)


def _refusal(job: str, fn: Callable[..., Any], executor: object, why: str) -> InvalidPolicy:
    name = getattr(fn, "__qualname__", None) or repr(fn)
    return InvalidPolicy(
        "executor",
        executor,
        f"a function a child process can import by name, for job {job!r}: its function "
        f"{name} {why}; define it at the top level of a module (or of the main script)",
    )


def _send(signal_it: Callable[[], None]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has ended meanwhile
        signal_it()


def _exit_text(code: int) -> str:
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


def _backend() -> str:
    # An async function runs in the child on the event loop this process runs.
    trio = sys.modules.get("trio")
    return "trio" if trio is not None and trio.lowlevel.in_trio_run() else "asyncio"
