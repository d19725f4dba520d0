"""Run logs: each attempt's lines, gathered, capped, stored in batches; and read back.

**Writing.** Each attempt has a `RunLog`. Its lines come from ``ctx.log`` (a
`RunLogger`, the structlog logger of the run), and, through `capture`, from what
the job writes to stdout and stderr and logs through the `logging` module. The
RunLog stamps each line with the runtime's clock, its stream, level, item and
attempt, and keeps it in a buffer; a flusher task stores the buffer with the
attempt's claim when it holds ``batch`` lines or when its oldest line is
``interval`` seconds old (clock time), never a transaction per line. The worker
closes the RunLog before it writes the attempt's outcome: the last lines are
stored first, so a reader that sees the run terminal sees its whole log. A
store refuses lines written with a claim that no longer holds the run, so
nothing lands in the log of a run after its end (a thread that goes on running
after its attempt was cut has its later lines dropped).

**Limits.** An attempt stores at most ``max_lines`` lines and ``max_bytes`` of
text (messages and fields); past either, one warning line says so, later lines
are dropped and counted, and the run gets a warning with the count. Each attempt
of a run has its own allowance, so a retry's lines are never lost to a runaway
attempt before it.

**Warnings.** An attempt whose job logged at warning level or above (through
``ctx.log`` or `logging`) adds a warning to its run (``"attempt 1 logged 2
warnings and 1 error"``): the run still succeeds, with ``run.has_warnings``.

**Reading.** `read_page`, `search`, `follow` and `export` serve the runtime's
``logs``, ``search_logs``, ``follow_logs`` and ``export_logs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio
import attrs
import structlog

from runlife._clock import now_of
from runlife._core.codec import encode_cursor
from runlife._core.fast import compile_maker
from runlife._core.logtext import clean_fields, clean_text, render_jsonl, render_text
from runlife._core.queries import Claim, LogPage, LogQuery
from runlife._core.records import LogLine
from runlife._core.run import Run
from runlife._core.values import INT64, MAX_PAGE, check_int
from runlife._runtime.capture import Stream
from runlife._runtime.guard import StoreGuard
from runlife._runtime.wake import Pulse, nap
from runlife.abc import Clock
from runlife.exceptions import InvalidPolicy, InvalidValue, LeaseLost, RunlifeError

if TYPE_CHECKING:
    from runlife._runtime.items import Spawn  # the items import the executors, which import this

__all__ = (
    "LogSettings",
    "LoopHandle",
    "RunLog",
    "RunLogger",
    "export",
    "follow",
    "read_page",
    "search",
)

_make_line = compile_maker(LogLine)
# A buffered line but its fields: at, stream, level, message, item.
_Part = tuple[datetime, str, str, str, str | None]
_log = structlog.get_logger("runlife.logs")

# The keys of ctx.log's bound context that are columns of a line, not fields.
_OWN: Final = frozenset({"run_id", "job", "attempt", "item"})
_WARNED: Final = frozenset({"warning"})
_ERRORS: Final = frozenset({"error", "critical"})
_COUNTED: Final = _WARNED | _ERRORS
_LEVEL_OF_STREAM: Final[Mapping[str, str]] = {"stdout": "info", "stderr": "warning"}
# A line written without a newline is cut at this length (a progress bar).
_LONGEST_PARTIAL: Final = 64 * 1024
# Lines per store call when a buffer is flushed: few enough that a call's lines
# are seldom still alive when the collector promotes the young objects, so a long
# log does not set off full collections.
_CHUNK: Final = 500
# The attributes every LogRecord has; the others came from ``extra=``.
_RECORD_KEYS: Final = frozenset(
    {*logging.LogRecord("", 0, "", 0, "", (), None).__dict__, "message", "asctime", "taskName"}
)
_FORMATS: Final = ("text", "jsonl")


@attrs.frozen(kw_only=True)
class LogSettings:
    """How a runtime keeps its runs' logs.

    Args:
        max_lines: lines an attempt stores at most.
        max_bytes: characters of messages and fields an attempt stores at most.
        batch: a buffer of this many lines is stored at once.
        interval: seconds (clock time) a line waits in the buffer at most.

    Raises:
        InvalidPolicy: a value out of range, named.

    >>> LogSettings(max_lines=1000).max_lines
    1000
    """

    max_lines: int = 100_000
    max_bytes: int = 20_000_000
    batch: int = 1000
    interval: float = 0.5

    def __attrs_post_init__(self) -> None:
        for field in ("max_lines", "max_bytes", "batch"):
            value = getattr(self, field)
            if type(value) is not int or not 1 <= value <= INT64[1]:
                raise InvalidPolicy(field, value, "an int >= 1")
        interval = self.interval
        if isinstance(interval, bool) or not isinstance(interval, int | float):
            raise InvalidPolicy("interval", interval, "seconds > 0")
        if not 0 < interval <= 3600:
            raise InvalidPolicy("interval", interval, "seconds > 0 and at most 3600")


class RunLog:
    """One attempt's log: takes its lines from any thread, stores them in
    batches with the attempt's claim (see the module docstring).

    Made and closed on the event loop; `serve` is its flusher task.
    """

    def __init__(
        self,
        *,
        run: Run,
        claim: Claim | None,
        guard: StoreGuard,
        clock: Clock,
        settings: LogSettings | None = None,
        spawn: Spawn | None = None,
        loop: LoopHandle | None = None,
    ) -> None:
        settings = settings or LogSettings()
        loop = loop if loop is not None else LoopHandle.current()
        self.run_id = run.id
        self.attempt = run.attempt or None
        self._claim = claim
        self._guard = guard
        self._clock = clock
        self._now = now_of(clock)
        self._max_lines = settings.max_lines
        self._max_bytes = settings.max_bytes
        self._batch = settings.batch
        self._interval = timedelta(seconds=settings.interval)
        self._lock = threading.Lock()
        self._text_lock = threading.Lock()
        # Lines wait as tuples of their parts (`_Part`), made into LogLines when
        # stored, their fields in a list beside them: a tuple that holds a dict is
        # tracked by the garbage collector for good, one of plain values is let go
        # at its first collection, so a long buffer costs the collector little.
        self._pending: list[_Part] = []
        self._fields: list[dict[str, Any]] = []
        self._partial: dict[tuple[Stream, str | None], str] = {}
        self._closed = False
        # The flusher's lock and scope, made when it starts.
        self._flush_lock: anyio.Lock | None = None
        self._scope: anyio.CancelScope | None = None
        self._pulse = Pulse()
        self._loop_thread = loop.thread
        # With *spawn*, the flusher starts with the first line (most attempts log
        # nothing); without, the caller starts `serve`.
        self._spawn = spawn
        self._serving = False
        if spawn is None:
            self._start_serving()
        self._wake_from_thread = functools.partial(loop.call, self._kick)
        self._known: int | None = None
        self.lines = 0
        """Lines taken (within the limits)."""
        self.bytes = 0
        """Characters of those lines' messages and fields."""
        self.stored = 0
        """Lines the store has."""
        self.dropped = 0
        """Lines dropped over the limits."""
        self.late = 0
        """Lines that came after the log was closed (a thread left running)."""
        self.warnings = 0
        self.errors = 0
        self.logger = RunLogger(
            self, (), {"run_id": run.id, "job": run.job, "attempt": run.attempt}
        )
        """The attempt's ``ctx.log``."""

    def __repr__(self) -> str:
        return f"<RunLog run {self.run_id} attempt {self.attempt}: {self.lines} lines>"

    # -- taking lines (any thread) -----------------------------------------------------

    def add(
        self,
        stream: Stream | Literal["log"],
        level: str,
        message: str,
        item: str | None,
        fields: dict[str, Any],
        size: int,
    ) -> None:
        """Take one line, whose message and fields are storable and *size* long."""
        with self._lock:
            if level in _COUNTED and stream == "log":
                if level in _WARNED:
                    self.warnings += 1
                else:
                    self.errors += 1
            if self._closed:
                self.late += 1
                return
            lines, size = self.lines, self.bytes + size
            if lines >= self._max_lines or size > self._max_bytes:
                self._over_limit()
                return
            self.lines, self.bytes = lines + 1, size
            pending = self._pending
            pending.append((self._now(), stream, level, message, item))
            self._fields.append(fields)
            n = len(pending)
        if n == 1 or n == self._batch:
            self._wake()

    def _over_limit(self) -> None:
        self.dropped += 1
        if self.dropped > 1:
            return
        message = (
            f"log limit reached: attempt {self.attempt} stored {self.lines:,} lines "
            f"({self.bytes:,} characters); its limit is {self._max_lines:,} lines or "
            f"{self._max_bytes:,} characters, and its later lines are dropped"
        )
        fields = {"max_lines": self._max_lines, "max_bytes": self._max_bytes}
        self._pending.append((self._now(), "log", "warning", message, None))
        self._fields.append(fields)
        if len(self._pending) == 1:
            self._wake()

    def _wake(self) -> None:
        if threading.get_ident() == self._loop_thread:
            self._kick()
        else:
            self._wake_from_thread()

    def _kick(self) -> None:
        """Wake the flusher (on the event loop), starting it if it is not yet."""
        if self._serving:
            self._pulse.pulse()
        elif not self._closed:
            assert self._spawn is not None
            self._start_serving()
            self._spawn(self.serve)

    def _start_serving(self) -> None:
        self._serving = True
        self._flush_lock = anyio.Lock()
        self._scope = anyio.CancelScope()

    def take_text(self, stream: Stream, text: str, item: str | None) -> None:
        """A piece of what the job wrote to *stream*: whole lines are taken, the
        rest waits for its newline (or for the end of the attempt)."""
        key = (stream, item)
        with self._text_lock:
            held = self._partial.pop(key, None)
            if held is not None:
                text = held + text
            if "\n" not in text:
                if len(text) <= _LONGEST_PARTIAL:
                    self._partial[key] = text
                    return
                done, rest = [text], ""
            else:
                *done, rest = text.split("\n")
            if rest:
                self._partial[key] = rest
        level = _LEVEL_OF_STREAM[stream]
        for line in done:
            self._add_text(stream, level, line, item)

    def _add_text(self, stream: Stream, level: str, line: str, item: str | None) -> None:
        if line.endswith("\r"):
            line = line[:-1]
        line = clean_text(line)
        size = len(line) if line.isascii() else len(line.encode("utf-8"))
        self.add(stream, level, line, item, {}, size)

    def take_record(self, record: logging.LogRecord, item: str | None) -> None:
        """A record of the `logging` module: its message, its logger's name and
        whatever it got through ``extra=`` as fields (``extra={"item": key}``
        names its item), its traceback as the field ``exception``."""
        try:
            message = record.getMessage()
        except Exception as exc:
            message = f"{record.msg!r} % {record.args!r} (not formatted: {exc})"
        raw: dict[str, Any] = {"logger": record.name}
        for key, value in record.__dict__.items():
            if key not in _RECORD_KEYS:
                raw[key] = value
        if "item" in raw:
            given = raw.pop("item")
            item = None if given is None else str(given)
        if record.exc_info and record.exc_info[0] is not None:
            raw["exception"] = record.exc_text or "".join(
                traceback.format_exception(*record.exc_info)
            )
        if record.stack_info:
            raw["stack"] = record.stack_info
        self.take_event(record.levelname.lower() or "info", message, (), {}, item, raw)

    def take_event(
        self,
        level: str,
        event: Any,
        args: tuple[Any, ...],
        extra: Mapping[str, Any],
        item: str | None,
        kw: dict[str, Any],
    ) -> None:
        """A call of ``ctx.log`` (see `RunLogger`)."""
        if args:
            event = _interpolate(event, args)
        message = event if event.__class__ is str else str(event)
        if message.isascii() and "\x00" not in message:
            size = len(message)
        else:
            message = clean_text(message)
            size = len(message.encode("utf-8"))
        if kw:
            if "item" in kw or "exc_info" in kw or "stack_info" in kw:
                item = _special_keys(kw, item)
            fields, more = clean_fields({**extra, **kw} if extra else kw)
            size += more
        elif extra:
            fields, more = clean_fields(dict(extra))
            size += more
        else:
            fields = kw
        self.add("log", level, message, item, fields, size)

    # -- storing (the event loop) ----------------------------------------------------

    async def serve(self) -> None:
        """Store the buffer whenever it holds ``batch`` lines or its oldest line
        has waited ``interval``; wait without a timer while it is empty (virtual
        time is not held up by an idle log). Ends when the log is closed."""
        clock = self._clock
        assert self._scope is not None
        with self._scope:
            while True:
                seen = self._pulse.count
                if not self._pending:
                    await self._pulse.wait(seen)
                    continue
                due = clock.now() + self._interval
                while len(self._pending) < self._batch and clock.now() < due:
                    seen = self._pulse.count
                    await nap(clock, due, pulses=[(self._pulse, seen)])
                await self._flush()

    async def _flush(self) -> None:
        if self._flush_lock is None:  # no flusher: nobody else stores
            await self._store_pending()
            return
        async with self._flush_lock:
            await self._store_pending()

    async def _store_pending(self) -> None:
        with self._lock:
            lines, self._pending = self._pending, []
            fields, self._fields = self._fields, []
        run_id, attempt, make = self.run_id, self.attempt, _make_line
        for start in range(0, len(lines), _CHUNK):
            part = lines[start : start + _CHUNK]
            # Numbered as the store will number them, once it is known where this
            # attempt's lines go on: the store hands them back as they are.
            first = 0 if self._known is None else self._known + 1
            seqs = range(first, first + len(part)) if first else itertools.repeat(0, len(part))
            chunk = [
                make(run_id, seq, at, stream, level, message, item, attempt, more)
                for seq, (at, stream, level, message, item), more in zip(
                    seqs, part, fields[start : start + _CHUNK], strict=True
                )
            ]
            if not await self._store(chunk):
                return

    async def _store(self, lines: Sequence[LogLine]) -> bool:
        try:
            stored = await self._guard.append_logs(lines, claim=self._claim, known=self._known)
        except LeaseLost:
            # The run is no longer this attempt's (ended, reaped, cancelled
            # elsewhere): its log takes nothing more from it.
            self.discard()
            return False
        except RunlifeError as exc:
            _log.error("log lines not stored", run_id=self.run_id, lines=len(lines), error=str(exc))
            return True
        if stored:
            self._known = stored[-1].seq
        self.stored += len(stored)
        return True

    async def close(self) -> tuple[str, ...]:
        """Take the partial lines, store everything (shielded: a cancelled caller
        still gets the lines stored), stop the flusher, and return the warnings
        the attempt's run gets from its log."""
        with self._text_lock:
            partial, self._partial = self._partial, {}
        for (stream, item), text in partial.items():
            self._add_text(stream, _LEVEL_OF_STREAM[stream], text, item)
        with self._lock:
            self._closed = True
        if self._serving or self._pending:
            with anyio.CancelScope(shield=True):
                await self._flush()
        if self._scope is not None:
            self._scope.cancel()
        return self.summary()

    def discard(self) -> None:
        """Drop what is buffered and take nothing more (the lease is lost)."""
        with self._lock:
            self._closed = True
            self._pending, self._fields = [], []
        if self._scope is not None:
            self._scope.cancel()

    def summary(self) -> tuple[str, ...]:
        """The warnings of this attempt's log, for ``run.warnings``."""
        out = []
        counts = [
            _plural(n, word)
            for n, word in ((self.warnings, "warning"), (self.errors, "error"))
            if n
        ]
        if counts:
            out.append(f"attempt {self.attempt} logged {' and '.join(counts)}")
        if self.dropped:
            out.append(
                f"attempt {self.attempt}: {_plural(self.dropped, 'log line')} dropped over "
                f"its limit of {self._max_lines:,} lines or {self._max_bytes:,} characters"
            )
        return tuple(out)


def _special_keys(kw: dict[str, Any], item: str | None) -> str | None:
    """Take ``item``, ``exc_info`` and ``stack_info`` out of a call's keywords
    (the traceback and the stack become the fields ``exception`` and ``stack``);
    the line's item."""
    if "item" in kw:
        given = kw.pop("item")
        item = None if given is None else str(given)
    exc_info = kw.pop("exc_info", None)
    if kw.pop("stack_info", None):
        # The caller's stack: the frames above the logger's method.
        kw["stack"] = "".join(traceback.format_stack(sys._getframe(3)))
    if exc_info:
        text = _traceback(exc_info)
        if text is not None:
            kw["exception"] = text
    return item


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _interpolate(event: Any, args: tuple[Any, ...]) -> str:
    try:
        if len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
            return str(event) % args[0]
        return str(event) % args
    except Exception:
        return " ".join(map(str, (event, *args)))


def _traceback(exc_info: Any) -> str | None:
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or len(exc_info) != 3 or exc_info[0] is None:
        return None
    return "".join(traceback.format_exception(*exc_info))


class LoopHandle:
    """The event loop a log belongs to, seen from any thread: its thread, and a
    way to call a function on it from another thread without blocking.

    Made on the loop (`current`); a log made from another thread with it wakes
    its flusher on that loop.
    """

    __slots__ = ("call", "thread")

    def __init__(self, thread: int, call: Callable[[Callable[[], None]], None]) -> None:
        self.thread = thread
        self.call = call
        """``call(kick)`` runs *kick* on the loop soon (from any thread)."""

    @classmethod
    def current(cls) -> LoopHandle:
        """The running loop's handle (asyncio's or trio's)."""
        thread = threading.get_ident()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return cls(thread, _trio_caller())

        def call(kick: Callable[[], None]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_in_task, loop, kick)

        return cls(thread, call)


_kicks: set[asyncio.Task[None]] = set()


def _in_task(loop: asyncio.AbstractEventLoop, kick: Callable[[], None]) -> None:
    """Call *kick* in a task of *loop* (it may start one, which takes a task's
    context), keeping the task referenced until it is done."""
    task = loop.create_task(_call(kick))
    _kicks.add(task)
    task.add_done_callback(_kicks.discard)


async def _call(kick: Callable[[], None]) -> None:
    kick()


def _trio_caller() -> Callable[[Callable[[], None]], None]:
    import trio

    token = trio.lowlevel.current_trio_token()

    def call(kick: Callable[[], None]) -> None:
        with contextlib.suppress(trio.RunFinishedError):  # the run ended: nobody waits
            token.run_sync_soon(kick)

    return call


# -- ctx.log ---------------------------------------------------------------------------


class RunLogger(structlog.BoundLoggerBase):
    """``ctx.log``: a structlog logger bound to ``run_id``, ``job`` and
    ``attempt`` whose lines are stored with the run.

    It is runlife's own logger, with its own fixed processing: whatever the host
    configured for structlog neither sees its lines nor changes them, and it
    does not forward them (read them with ``rt.logs``, ``rt.follow_logs``). It
    has structlog's interface: ``debug`` … ``critical``, ``warn``, ``fatal``,
    ``msg``, ``exception`` (``exc_info``), ``log(level, event)``, their async
    forms (``ainfo``), and ``bind``, ``unbind``, ``try_unbind``, ``new``. The
    event is the line's message (``%`` positional arguments are applied), its
    level the method's name; the keyword arguments and the bound context are its
    fields (a value that is not JSON is kept as its text), except ``item``
    (``ctx.log.bind(item=key)`` or ``item=key``: the line's item) and
    ``run_id``, ``job``, ``attempt`` (columns of every line). ``exc_info=True``
    (and ``exception()``) stores the traceback as the field ``exception``.
    """

    _logger: RunLog

    def __init__(self, logger: RunLog, processors: Any, context: Mapping[str, Any]) -> None:
        context = dict(context)
        super().__init__(logger, processors, context)
        self._extra = {k: v for k, v in context.items() if k not in _OWN}
        item = context.get("item")
        self._item = None if item is None else str(item)

    def unbind(self, *keys: str) -> RunLogger:
        context = dict(self._context)
        for key in keys:
            del context[key]
        return RunLogger(self._logger, self._processors, context)

    def try_unbind(self, *keys: str) -> RunLogger:
        context = dict(self._context)
        for key in keys:
            context.pop(key, None)
        return RunLogger(self._logger, self._processors, context)

    def new(self, **new_values: Any) -> RunLogger:
        return RunLogger(self._logger, self._processors, new_values)

    def is_enabled_for(self, level: int) -> bool:
        """Every level is stored."""
        return True

    def get_effective_level(self) -> int:
        """``logging.NOTSET``: every level is stored."""
        return logging.NOTSET

    def debug(self, event: Any = None, *args: Any, **kw: Any) -> None:
        self._logger.take_event("debug", event, args, self._extra, self._item, kw)

    def info(self, event: Any = None, *args: Any, **kw: Any) -> None:
        self._logger.take_event("info", event, args, self._extra, self._item, kw)

    def warning(self, event: Any = None, *args: Any, **kw: Any) -> None:
        self._logger.take_event("warning", event, args, self._extra, self._item, kw)

    def error(self, event: Any = None, *args: Any, **kw: Any) -> None:
        self._logger.take_event("error", event, args, self._extra, self._item, kw)

    def critical(self, event: Any = None, *args: Any, **kw: Any) -> None:
        self._logger.take_event("critical", event, args, self._extra, self._item, kw)

    def exception(self, event: Any = None, *args: Any, **kw: Any) -> None:
        kw.setdefault("exc_info", True)
        self._logger.take_event("error", event, args, self._extra, self._item, kw)

    def log(self, level: int, event: Any = None, *args: Any, **kw: Any) -> None:
        name = logging.getLevelName(level)
        text = name.lower() if isinstance(name, str) else "info"
        self._logger.take_event(text, event, args, self._extra, self._item, kw)

    warn = warning
    fatal = critical
    msg = info

    async def adebug(self, event: Any = None, *args: Any, **kw: Any) -> None:
        self.debug(event, *args, **kw)

    async def ainfo(self, event: Any = None, *args: Any, **kw: Any) -> None:
        self.info(event, *args, **kw)

    async def awarning(self, event: Any = None, *args: Any, **kw: Any) -> None:
        self.warning(event, *args, **kw)

    async def aerror(self, event: Any = None, *args: Any, **kw: Any) -> None:
        self.error(event, *args, **kw)

    async def acritical(self, event: Any = None, *args: Any, **kw: Any) -> None:
        self.critical(event, *args, **kw)

    async def aexception(self, event: Any = None, *args: Any, **kw: Any) -> None:
        self.exception(event, *args, **kw)

    async def alog(self, level: int, event: Any = None, *args: Any, **kw: Any) -> None:
        self.log(level, event, *args, **kw)

    awarn = awarning
    afatal = acritical
    amsg = ainfo


# -- reading ---------------------------------------------------------------------------


def log_query(
    run_id: str,
    *,
    stream: str | None = None,
    item: str | None = None,
    level: str | None = None,
    after: str | int | None = None,
    limit: int = 500,
) -> LogQuery:
    """The store's query for a runtime's ``logs(...)`` arguments: *level* in
    any case, *after* a cursor or the ``seq`` of a line (the lines after it).

    Raises:
        InvalidValue: *after* is neither, or a bad *level*.
    """
    if isinstance(level, str):
        level = level.lower()
    cursor: str | None
    if after is None or isinstance(after, str):
        cursor = after
    else:
        check_int("after", after, (0, INT64[1]))
        cursor = encode_cursor(after)
    return LogQuery(
        run_id=run_id, stream=stream, item=item, level=level, cursor=cursor, limit=limit
    )


async def read_page(guard: StoreGuard, query: LogQuery) -> LogPage:
    """A page of the run's log (`RunNotFound` for an unknown run)."""
    await guard.get_run(query.run_id)
    return await guard.logs(query)


async def search(guard: StoreGuard, run_id: str, text: str, limit: int) -> tuple[LogLine, ...]:
    """The run's lines whose message contains *text* (`RunNotFound`)."""
    await guard.get_run(run_id)
    return await guard.search_logs(run_id, text, limit=limit)


async def follow(
    guard: StoreGuard,
    clock: Clock,
    query: LogQuery,
    *,
    pulses: Sequence[Pulse],
    poll: float,
) -> AsyncIterator[LogLine]:
    """The run's lines as they are stored, from after ``query.cursor``; ends once
    the run is terminal and every line of it was given.

    The run is read before its lines each time round: its last lines are stored
    before its terminal write, so lines read after seeing it terminal are all.
    Between rounds it waits for one of *pulses* (this process wrote; the store
    says it changed) or *poll* seconds of clock time.
    """
    cursor = query.cursor
    while True:
        seen = [(pulse, pulse.count) for pulse in pulses]
        run = await guard.get_run(query.run_id)
        while True:
            page = await guard.logs(attrs.evolve(query, cursor=cursor))
            for line in page.lines:
                yield line
            if page.lines:
                cursor = encode_cursor(page.lines[-1].seq)
            if page.next_cursor is None:
                break
        if run.is_terminal:
            return
        await nap(clock, clock.now() + timedelta(seconds=poll), pulses=seen)


async def export(guard: StoreGuard, run_id: str, fmt: str) -> str:
    """The run's whole log as text (with a header naming the run) or JSON lines.

    Raises:
        InvalidValue: *fmt* is not ``"text"`` or ``"jsonl"``.
        RunNotFound: no such run.
    """
    if fmt not in _FORMATS:
        raise InvalidValue("fmt", fmt, "'text' or 'jsonl'")
    run = await guard.get_run(run_id)
    lines: list[LogLine] = []
    cursor = None
    while True:
        page = await guard.logs(LogQuery(run_id=run_id, cursor=cursor, limit=min(MAX_PAGE, 10_000)))
        lines.extend(page.lines)
        cursor = page.next_cursor
        if cursor is None:
            break
    return render_text(run, lines) if fmt == "text" else render_jsonl(lines)
