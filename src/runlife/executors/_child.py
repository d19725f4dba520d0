"""The child side of `ProcessExecutor`: one attempt of a job function, in a fresh
interpreter.

The parent starts ``sys.executable -c BOOT`` and writes one JSON line to its
stdin: the parent's ``sys.path``, where the function is (module and qualified
name, or the parent's main script), the run's facts and its params. The child
answers on its original stdout, one JSON object a line:

============================  ===========================================
``{"log": {...}}``            a line of ``ctx.log`` or a `logging` record
                              (level, event, fields)
``{"out": "..."}``            text the function wrote to ``sys.stdout``
``{"warn": "..."}``           ``ctx.warn(message)``
``{"beat": true}``            ``ctx.heartbeat()``
``{"items": {...}}``          ``ctx.items(keys, phase=)``: keys, phase
``{"enter": {...}}``          an item's block started: key, phase
``{"leave": {...}}``          it ended: key, output, skip reason, error
                              (type, message, traceback) if it raised
``{"result": value}``         the function returned *value* (the last line)
``{"error": {...}}``          it raised: type, message, traceback (the last line)
============================  ===========================================

The ``out`` messages and the `logging` records of code inside an item's block
carry its key (``item``). Which items of a resumed run succeeded before comes
with the attempt (``done``: key -> output and reason), so a block knows at once
whether it is skipped; the parent decides the same from the same facts.

Nothing the function writes can be taken for a message: file descriptor 1 is
moved to 2 before it is imported, and ``sys.stdout`` relays its text as ``out``
messages. Its stderr (file descriptor 2: ``sys.stderr``, and what is written to
file descriptor 1 directly, by C code or a subprocess) is a pipe of its own to
the parent. Records of the `logging` module that pass their logger's level are
relayed as ``log`` messages (Python's last-resort handler is silenced: the
records are in the run's log already).

SIGTERM (how the parent cuts an attempt) sets ``ctx.cancelled`` and raises
`SystemExit` in the main thread, so that ``finally`` blocks run and a function in
``time.sleep`` stops at once; what does not stop is killed by the parent.
SIGINT is ignored: the parent decides when its children end (a Ctrl-C in a
terminal reaches the whole process group). When the parent goes away (stdin
closes), the child ends at once.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import io
import json
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Generator, Iterable, Mapping
from contextvars import ContextVar
from types import FrameType, ModuleType, TracebackType
from typing import IO, Any, Self

import structlog

from runlife._core.values import check_json, check_names, check_text
from runlife.exceptions import InvalidValue, RunlifeError

__all__ = ("BOOT", "ProcessContext", "ProcessItem", "main")

BOOT = (
    "import json, sys\n"
    "init = json.loads(sys.stdin.readline())\n"
    "sys.path[:] = init['path']\n"
    "from runlife.executors._child import main\n"
    "main(init)\n"
)
"""The ``-c`` program of a child: it takes the parent's ``sys.path`` before it
imports runlife, so that the child imports what the parent would."""

# The exit code of a child that ended on SIGTERM (the shell's convention).
_TERMINATED = 128 + signal.SIGTERM
_MAIN = "__mp_main__"
# The key of the item whose block the code runs in (None: none).
_item: ContextVar[str | None] = ContextVar("runlife_child_item", default=None)


class _Channel:
    """The child's half of the pipe: one JSON object a line, from any thread."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._lock = threading.Lock()

    def send(self, message: Mapping[str, Any]) -> None:
        line = json.dumps(message, allow_nan=False, separators=(",", ":"), default=repr)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()


class _Out(io.TextIOBase):
    """The child's ``sys.stdout``: text relayed to the parent, a line at a time."""

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._lock = threading.Lock()
        self._held = ""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            whole = self._held + text
            end = whole.rfind("\n") + 1
            self._held = whole[end:]
            if end:
                self._send(whole[:end])
        return len(text)

    def flush(self) -> None:
        with self._lock:
            held, self._held = self._held, ""
        if held:
            self._send(held)

    def _send(self, text: str) -> None:
        item = _item.get()
        self._channel.send({"out": text} if item is None else {"out": text, "item": item})


def _relay_records(channel: _Channel) -> None:
    """Relay every `logging` record that reaches the handlers to the parent."""
    original = logging.Logger.callHandlers
    plain = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "taskName"}

    def call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
        try:
            event: dict[str, Any] = {
                "level": record.levelname.lower(),
                "event": record.getMessage(),
                "logger": record.name,
            }
            for key, value in record.__dict__.items():
                if key not in plain:
                    event[key] = value
            item = _item.get()
            if item is not None:
                event.setdefault("item", item)
            if record.exc_info and record.exc_info[0] is not None:
                event["exception"] = "".join(traceback.format_exception(*record.exc_info))
            channel.send({"log": event})
        except Exception:
            traceback.print_exc()
        original(self, record)

    logging.Logger.callHandlers = call_handlers  # type: ignore[method-assign]
    logging.lastResort = logging.NullHandler()


class ProcessContext:
    """What a job function running in a child process gets as its ``ctx``.

    It offers what works across the pipe: ``run_id``, ``job``, ``attempt``,
    ``params``, ``log`` (a structlog logger whose lines are handed to the
    parent's ``ctx.log``), `warn`, `heartbeat`, `cancelled`, `item` and
    `items`. ``set_state``, ``state``, ``wait_for`` and ``map`` are not offered
    in a child process.
    """

    __slots__ = (
        "_cancelled",
        "_channel",
        "_done",
        "_open",
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
        channel: _Channel,
        done: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.run_id = run_id
        self.job = job
        self.attempt = attempt
        self.params = dict(params)
        self._channel = channel
        self._cancelled = False
        self._done = dict(done or {})
        self._open: set[str] = set()
        self.log = structlog.wrap_logger(
            _Nowhere(),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.format_exc_info,
                self._relay_log,
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        )

    def __repr__(self) -> str:
        return f"<ProcessContext {self.job} run {self.run_id} attempt {self.attempt}>"

    @property
    def cancelled(self) -> bool:
        """Whether the attempt was told to stop (true from the SIGTERM on)."""
        return self._cancelled

    def warn(self, message: str) -> None:
        """Record a warning in ``run.warnings`` (sent to the parent at once).

        Raises:
            InvalidValue: *message* is not text.
        """
        check_text("message", message)
        self._channel.send({"warn": message})

    def heartbeat(self) -> None:
        """Say the job is alive (for ``Timeout(heartbeat=...)``; sent to the parent)."""
        self._channel.send({"beat": True})

    def item(self, key: str, phase: str | None = None) -> ProcessItem:
        """Item *key* of the run, as a block (``with``, or ``async with`` in an
        async function): recorded in the parent as ``ctx.item`` records it (see
        `ProcessItem`).

        Raises:
            InvalidValue: *key* is empty or not text, *phase* is not text, or
                (on entering) another block of the same key is open.
        """
        check_text("key", key, empty=False)
        check_text("phase", phase, optional=True)
        return ProcessItem(self, key, phase)

    def items(self, keys: Iterable[str], *, phase: str | None = None) -> _Keys:
        """Declare the run's items up front (recorded PENDING in the parent, in
        one write) and return the keys to do: all but those that succeeded in
        the run this one resumes. The keys come back at once: ``ctx.items(keys)``
        in a sync function, ``await ctx.items(keys)`` in an async one.

        Raises:
            InvalidValue: a key is empty, not text or given twice (naming it).
        """
        check_text("phase", phase, optional=True)
        checked = check_names("keys", keys, each="keys")
        self._channel.send({"items": {"keys": checked, "phase": phase}})
        return _Keys(key for key in checked if key not in self._done)

    def _relay_log(self, _logger: object, _method: str, event: Any) -> Any:
        self._channel.send({"log": event})
        raise structlog.DropEvent


class _Keys(tuple[str, ...]):
    """The keys `ProcessContext.items` returns: a tuple, and its own awaitable."""

    def __await__(self) -> Generator[Any, None, tuple[str, ...]]:
        yield from ()  # a generator that returns at once
        return tuple(self)


class ProcessItem:
    """One item of a run in a child process: what ``ctx.item(key)`` gives there.

    Entering the block records the item RUNNING in the parent; leaving it
    records SUCCEEDED with `output` (which must be JSON), SKIPPED after `skip`,
    or FAILED with the error of an `Exception` raised inside (its type's name,
    message and traceback), which is suppressed so the function goes on. What
    the block prints and logs through `logging` is the item's. A
    `BaseException` (the attempt is being stopped) passes through: the parent
    records the item CANCELLED when the attempt ends.

    Attributes:
        key: the item's key.
        phase: its phase, if any.
        output: what to record as its output (JSON); set it in the block.
        skipped: whether it succeeded in the run this one resumes (the block
            should do nothing).
        reason: why it is skipped (None if it is not).
        log: ``ctx.log`` bound to the item.
    """

    __slots__ = ("_ctx", "_skip", "_token", "key", "log", "output", "phase", "reason", "skipped")

    def __init__(self, ctx: ProcessContext, key: str, phase: str | None) -> None:
        self._ctx = ctx
        self._skip: str | None = None
        self._token: Any = None
        self.key = key
        self.phase = phase
        done = ctx._done.get(key)
        self.skipped = done is not None
        self.output: Any = None if done is None else done.get("output")
        self.reason: str | None = None if done is None else done.get("reason")
        self.log = ctx.log.bind(item=key)

    def __repr__(self) -> str:
        return f"<ProcessItem {self.key!r} of run {self._ctx.run_id}>"

    def skip(self, reason: str) -> None:
        """Record the item SKIPPED, for *reason*, when the block ends (unless it raises).

        Raises:
            InvalidValue: *reason* is not text.
        """
        check_text("reason", reason)
        self._skip = reason

    def __enter__(self) -> Self:
        ctx = self._ctx
        if self.key in ctx._open:
            raise InvalidValue("key", self.key, "a key that no other open item of this run has")
        _flush_output()  # what was printed before is not the item's
        ctx._open.add(self.key)
        ctx._channel.send({"enter": {"key": self.key, "phase": self.phase}})
        self._token = _item.set(self.key)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        _flush_output()
        _item.reset(self._token)
        if exc is not None and not isinstance(exc, Exception):
            return False  # stopping: the parent ends the item with the attempt
        self._ctx._open.discard(self.key)
        output, error = self.output, exc
        if error is None and not self.skipped:
            try:
                check_json(output, f"item {self.key!r} output")
            except RunlifeError as bad:
                output, error = None, bad
        if self.skipped and error is None:
            output = None  # the parent keeps the output of the run that did it
        self._ctx._channel.send(
            {
                "leave": {
                    "key": self.key,
                    "output": output,
                    "skip": self._skip,
                    "error": None if error is None else _describe(error),
                }
            }
        )
        return True

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return self.__exit__(exc_type, exc, tb)


class _Nowhere:
    """The logger under the relay: never reached (the relay drops every event)."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def main(init: Mapping[str, Any]) -> None:
    """Run the attempt *init* describes and report its outcome on the pipe."""
    channel = _Channel(os.fdopen(os.dup(1), "w", encoding="utf-8"))
    os.dup2(2, 1)
    sys.stdout = _Out(channel)
    _relay_records(channel)
    ctx = ProcessContext(
        run_id=init["run_id"],
        job=init["job"],
        attempt=init["attempt"],
        params=init["params"],
        channel=channel,
        done=init.get("done"),
    )

    def terminate(_signum: int, _frame: FrameType | None) -> None:
        ctx._cancelled = True
        raise SystemExit(_TERMINATED)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with_parent, name="runlife-parent-watch", daemon=True).start()
    try:
        try:
            fn = _function(init["module"], init["qualname"], init.get("main"))
            result = fn(ctx, **init["params"])
            if inspect.isawaitable(result):
                result = _await(result, init.get("backend") or "asyncio")
            check_json(result, "result")
        finally:
            _flush_output()
    except Exception as exc:
        channel.send({"error": _describe(exc)})
        return
    channel.send({"result": result})


def _flush_output() -> None:
    # What the function wrote reaches the parent before its outcome.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _end_with_parent() -> None:
    # The parent holds stdin open while the attempt runs: its end is the parent's.
    sys.stdin.read()
    os._exit(_TERMINATED)


def _function(module_name: str, qualname: str, main_file: str | None) -> Callable[..., Any]:
    try:
        module = _main_module(main_file) if main_file else importlib.import_module(module_name)
        found: Any = module
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception as exc:
        where = main_file or module_name
        raise ImportError(
            f"job function {qualname} of {where} cannot be imported in a child process: "
            f"{type(exc).__qualname__}: {exc}"
        ) from exc
    from runlife._runtime.job import Job

    # A module binds a decorated function's name to its Job: run the function.
    return found.fn if isinstance(found, Job) else found


def _main_module(path: str) -> ModuleType:
    # The parent's main script, imported under another name (as multiprocessing
    # does) so that its ``if __name__ == "__main__":`` block does not run again.
    spec = importlib.util.spec_from_file_location(_MAIN, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MAIN] = sys.modules["__main__"] = module
    spec.loader.exec_module(module)
    return module


def _await(awaitable: Any, backend: str) -> Any:
    import anyio

    async def wait() -> Any:
        return await awaitable

    return anyio.run(wait, backend=backend)


def _describe(exc: BaseException) -> dict[str, Any]:
    try:
        message = str(exc)
    except Exception:
        message = repr(exc)
    return {
        "type": type(exc).__qualname__,
        "message": message,
        "traceback": "".join(traceback.format_exception(exc)),
    }
