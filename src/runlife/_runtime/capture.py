"""Capture: the one place of runlife that touches process-wide state.

While a runtime runs (from its worker's start to its end), `installed` keeps a
proxy in front of ``sys.stdout`` and one in front of ``sys.stderr``, and wraps
``logging.Logger.callHandlers`` (where a record that passed its logger's level
and filters is handed to the handlers). Each looks up the *route* of the code
that writes: a context variable that the worker sets around an attempt
(`routed`). Code without a route (the host, runlife's own services, another
library's thread) is passed through untouched: to the stream that was there
before, to the handlers the host configured. Code with a route has its writes
handed to that route's sink (the attempt's `runlife._runtime.logs.RunLog`) as
lines of the run, and not passed on; its log records are handed to the sink
*and* to the host's handlers as before, so that the host's own logging (a file,
a collector) still sees everything it saw.

No handler is added to the root logger: ``logging.basicConfig()`` called while a
runtime runs still configures logging, and Python's last-resort handler still
prints the warnings of a host that configured nothing.

Context variables follow the attempt wherever Python copies them: into the
tasks an async job starts (asyncio and trio copy the context into new tasks),
and into threads started through anyio (``anyio.to_thread.run_sync``, which the
thread executor uses) or ``asyncio.to_thread``. They do not follow:

* a thread the job starts itself (``threading.Thread``, a
  ``concurrent.futures`` pool, ``loop.run_in_executor``) unless it runs its
  work in a copy of the context (``contextvars.copy_context().run``);
* writes to a file descriptor (``os.write(1, ...)``, a C extension, a
  subprocess inheriting the process's stdout), or to ``sys.stdout.buffer``,
  or to a stream object kept from before the runtime started (``sys.__stdout__``
  and the like): these go where they always went;
* records that their logger's level filters out (the root logger's level is
  WARNING unless the host sets it: runlife never changes the host's levels), or
  of a `logging.Logger` subclass that overrides ``callHandlers``.

A `logging.StreamHandler` that writes to a proxied stream from inside a run
(Python's last-resort handler, or a handler the host made while a runtime ran)
writes through to the stream: its record is stored already, so it is not
stored twice.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import CodeType
from typing import IO, Any, Literal, Protocol

__all__ = (
    "Sink",
    "StreamProxy",
    "current",
    "installed",
    "route_item",
    "routed",
    "routed_item",
    "unroute",
)

Stream = Literal["stdout", "stderr"]


class Sink(Protocol):
    """Where the captured output of one attempt goes."""

    def take_text(self, stream: Stream, text: str, item: str | None) -> None:
        """A piece of text written to *stream* (not necessarily a whole line)."""
        ...

    def take_record(self, record: logging.LogRecord, item: str | None) -> None:
        """A record of the `logging` module."""
        ...


class _Route:
    __slots__ = ("item", "sink")

    def __init__(self, sink: Sink, item: str | None) -> None:
        self.sink = sink
        self.item = item


_route: ContextVar[_Route | None] = ContextVar("runlife_log_route", default=None)


def current() -> tuple[Sink, str | None] | None:
    """The sink and item of the calling code's route, or None outside a run."""
    route = _route.get()
    return None if route is None else (route.sink, route.item)


@contextmanager
def routed(sink: Sink, item: str | None = None) -> Iterator[None]:
    """Route the output of the code run inside (and of what it starts in a copy
    of its context) to *sink*."""
    token = _route.set(_Route(sink, item))
    try:
        yield
    finally:
        _route.reset(token)


@contextmanager
def routed_item(item: str | None) -> Iterator[None]:
    """Inside a run, mark what the code inside writes and logs as item *item*'s
    (``ctx.item(key)`` wraps its body in it); outside a run, nothing."""
    token = route_item(item)
    try:
        yield
    finally:
        unroute(token)


def route_item(item: str | None) -> Token[_Route | None] | None:
    """`routed_item` as two calls, for a block that is not a ``with`` (an item's
    context, on the hot path of a loop of items): mark what the calling code
    writes and logs from now on as item *item*'s; the token for `unroute`."""
    route = _route.get()
    if route is None:
        return None
    return _route.set(_Route(route.sink, item))


def unroute(token: Token[_Route | None] | None) -> None:
    """End what `route_item` began."""
    if token is not None:
        _route.reset(token)


# -- the streams -------------------------------------------------------------------

# Writes made by a logging handler's emit pass through: the record is captured
# already by the root handler.
_PASSED = frozenset({logging.StreamHandler.emit.__code__})


def _caller() -> CodeType | None:
    """The code that called the proxy's method (None from a thread of C code)."""
    try:
        return sys._getframe(2).f_code
    except ValueError:
        return None


class StreamProxy:
    """What ``sys.stdout`` (or ``sys.stderr``) is while a runtime runs: writes of
    code with a route go to its sink, every other write and call to *target*."""

    __slots__ = ("stream", "target")

    def __init__(self, stream: Stream, target: IO[str]) -> None:
        self.stream: Stream = stream
        self.target = target

    def __repr__(self) -> str:
        return f"<runlife capture of {self.stream} over {self.target!r}>"

    def write(self, text: str) -> int:
        route = _route.get()
        if route is None or text.__class__ is not str or _caller() in _PASSED:
            return self.target.write(text)
        route.sink.take_text(self.stream, text, route.item)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        route = _route.get()
        if route is None:
            self.target.writelines(lines)
            return
        for text in lines:
            if text.__class__ is not str:
                self.target.write(text)  # raises as the stream would
                continue
            route.sink.take_text(self.stream, text, route.item)

    def flush(self) -> None:
        # A run's lines are flushed by its log; partial lines wait for their end.
        if _route.get() is None:
            self.target.flush()

    def isatty(self) -> bool:
        # Inside a run the output is stored, not shown: no colours, no spinners.
        return False if _route.get() is not None else self.target.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)


# -- logging -----------------------------------------------------------------------

_CallHandlers = Callable[[logging.Logger, logging.LogRecord], None]
_BASE: _CallHandlers = logging.Logger.callHandlers
_original: _CallHandlers | None = None


def _call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
    route = _route.get()
    if route is not None:
        try:
            route.sink.take_record(record, route.item)
        except Exception:  # a log call never fails for runlife's sake
            traceback.print_exc(file=sys.__stderr__)
    (_original or _BASE)(self, record)


_lock = threading.Lock()
_users = 0
_proxies: list[StreamProxy] = []


@contextmanager
def installed() -> Iterator[None]:
    """Capture while inside: the proxies and the handler are in place from the
    first runtime that enters to the last one that leaves (in any thread)."""
    _install()
    try:
        yield
    finally:
        _uninstall()


def _install() -> None:
    global _users, _original
    with _lock:
        _users += 1
        if _users > 1:
            return
        names: tuple[Stream, ...] = ("stdout", "stderr")
        for name in names:
            target = getattr(sys, name)
            if target is None or isinstance(target, StreamProxy):
                continue  # no stream (pythonw), or one left in place earlier
            proxy = StreamProxy(name, target)
            setattr(sys, name, proxy)
            _proxies.append(proxy)
        if _original is None:
            _original = logging.Logger.callHandlers
            logging.Logger.callHandlers = _call_handlers  # type: ignore[method-assign]


def _uninstall() -> None:
    global _users, _original
    with _lock:
        _users -= 1
        if _users:
            return
        for proxy in _proxies:
            # Restored only if still in place: a stream set since is someone
            # else's (a proxy left behind passes everything through).
            if getattr(sys, proxy.stream) is proxy:
                setattr(sys, proxy.stream, proxy.target)
        _proxies.clear()
        # Left in place if someone wrapped it since (it passes through outside runs).
        if logging.Logger.callHandlers is _call_handlers and _original is not None:
            logging.Logger.callHandlers = _original  # type: ignore[method-assign,assignment]
            _original = None
