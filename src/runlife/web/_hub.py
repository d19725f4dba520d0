"""One reader of the store for every live page: run events and log tails, fanned out.

`Hub` follows the runtime's event stream once and hands each event to every
subscriber through a small buffer of its own; a subscriber that cannot keep up is
dropped (its browser reconnects with the last ``seq`` it handled and is replayed
from the hub's recent events), so a slow client never holds back the others.
A run's log is likewise followed once (`LogTail`) however many pages watch it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import anyio
import anyio.abc
import attrs
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from runlife import AsyncRuntime, Event, LogLine

__all__ = ("Hub", "Message")

_log = structlog.get_logger("runlife.web")

# Events kept for subscribers that reconnect; per-subscriber buffer.
_KEPT: Final = 5000
_BUFFER: Final = 500
# Seconds between two reads of one run's row for its item updates.
_ROW_EVERY: Final = 0.5
# Lines of a followed log kept for pages that join later.
_TAIL_KEPT: Final = 50_000


@attrs.frozen
class Message:
    """One event as the pages receive it: its ``seq`` and what to show (JSON-able)."""

    seq: int
    data: dict[str, Any]


RESET: Final = Message(seq=-1, data={"reset": True})
"""Sent to a subscriber whose cursor is older than the hub remembers: reload."""


class Hub:
    """The monitor's single follower of the store (see the module docstring).

    *describe* turns an event into what pages need (it may read the store: once
    per event, whatever the number of subscribers).
    """

    def __init__(
        self, runtime: AsyncRuntime, describe: Callable[[Event], Awaitable[dict[str, Any]]]
    ) -> None:
        self.runtime = runtime
        self.describe = describe
        self.cursor: int | None = None
        self.reads = 0
        self._kept: deque[Message] = deque(maxlen=_KEPT)
        self._subs: dict[int, MemoryObjectSendStream[Message]] = {}
        self._tails: dict[str, LogTail] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self.started = anyio.Event()

    async def run(self, task_group: anyio.abc.TaskGroup) -> None:
        """Follow the store's events until cancelled (started in *task_group*)."""
        self._tg = task_group
        # Where the store's events stand now, known before any page is served: a page
        # carries the cursor it was read at, so its live stream misses nothing after.
        cursor = 0
        while page := await self.runtime.store.events(after=cursor, limit=1000):
            cursor = page[-1].seq or cursor
            if len(page) < 1000:
                break
        self.cursor = cursor
        self.started.set()
        described: dict[str, float] = {}
        async for event in self.runtime.events(after=cursor):
            assert event.seq is not None
            if event.kind == "log":
                # Pages follow a log through its own tail (`follow`), not the runs feed.
                self.cursor = event.seq
                continue
            data = {"run": event.run_id, "status": event.status.value, "kind": event.kind}
            # A run's row is read again for each transition, and for item updates at
            # most every _ROW_EVERY seconds: a run of 10,000 items costs a few reads.
            now = time.monotonic()
            if event.kind == "transition" or now - described.get(event.run_id, 0) >= _ROW_EVERY:
                described[event.run_id] = now
                if len(described) > _KEPT:
                    described.clear()
                try:
                    data = await self.describe(event)
                except Exception as exc:  # a run purged meanwhile: the event alone counts
                    _log.debug("the monitor could not read an event's run", error=str(exc))
            self.publish(Message(event.seq, data))

    def publish(self, message: Message) -> None:
        """Hand *message* to every subscriber; drop those whose buffer is full."""
        self.cursor = message.seq
        self._kept.append(message)
        for key, sub in list(self._subs.items()):
            try:
                sub.send_nowait(message)
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                del self._subs[key]
                sub.close()

    def subscribe(self, after: int | None) -> MemoryObjectReceiveStream[Message]:
        """A stream of the messages after *after* (a ``seq``; None: from now on).

        The kept messages after *after* come first; `RESET` if the hub no longer
        keeps them all. The stream ends if the subscriber falls behind.
        """
        send, receive = anyio.create_memory_object_stream[Message](_BUFFER + _KEPT)
        if after is not None and self.cursor is not None and after < self.cursor:
            oldest = self._kept[0].seq if self._kept else None
            if oldest is None or after < oldest - 1:
                send.send_nowait(RESET)
            else:
                for message in self._kept:
                    if message.seq > after:
                        send.send_nowait(message)
        self._subs[id(receive)] = send
        return receive

    def unsubscribe(self, stream: MemoryObjectReceiveStream[Message]) -> None:
        """Forget *stream* (its page went away)."""
        stream.close()
        sub = self._subs.pop(id(stream), None)
        if sub is not None:
            sub.close()

    def close(self) -> None:
        """End every subscriber's stream (the monitor stops)."""
        for sub in self._subs.values():
            sub.close()
        self._subs.clear()

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    async def log_lines(self, run_id: str, after: int) -> AsyncIterator[LogLine]:
        """The run's log lines after seq *after*, live, from one shared follower of
        that run's log; ends when the run ended and its log is drained."""
        if self._tg is None:
            raise RuntimeError("the monitor's hub is not running")
        tail = self._tails.get(run_id)
        if tail is None or tail.done:
            tail = LogTail(self.runtime, run_id, start=after)
            self._tails[run_id] = tail
            self._tg.start_soon(tail.run, lambda: self._tails.pop(run_id, None))
        if after < tail.start:
            # Lines before the tail's start are read once, for this page alone.
            last = after
            while last < tail.start:
                page = await self.runtime.logs(run_id, after=last, limit=1000)
                for line in page.lines:
                    if line.seq > tail.start:
                        break
                    last = line.seq
                    yield line
                if page.next_cursor is None or not page.lines or page.lines[-1].seq > tail.start:
                    break
            after = tail.start
        receive = tail.join(after)
        try:
            async with receive:
                async for line in receive:
                    yield line
        finally:
            tail.leave(receive)


class LogTail:
    """One run's log, followed once for every page that watches it."""

    def __init__(self, runtime: AsyncRuntime, run_id: str, *, start: int) -> None:
        self.runtime = runtime
        self.run_id = run_id
        self.start = start
        self.done = False
        self._lines: deque[LogLine] = deque(maxlen=_TAIL_KEPT)
        self._subs: dict[int, MemoryObjectSendStream[LogLine]] = {}
        self._scope = anyio.CancelScope()

    async def run(self, forget: Callable[[], object]) -> None:
        with self._scope:
            try:
                async for line in self.runtime.follow_logs(self.run_id, after=self.start):
                    if len(self._lines) == self._lines.maxlen:
                        self.start = self._lines[0].seq
                    self._lines.append(line)
                    for key, sub in list(self._subs.items()):
                        try:
                            sub.send_nowait(line)
                        except (anyio.WouldBlock, anyio.BrokenResourceError):
                            del self._subs[key]
                            sub.close()
            except Exception as exc:  # the run was purged, the store is away: pages reconnect
                _log.warning(
                    "the monitor stopped following a run's log", run_id=self.run_id, error=str(exc)
                )
        self.done = True
        forget()
        for sub in self._subs.values():
            sub.close()

    def join(self, after: int) -> MemoryObjectReceiveStream[LogLine]:
        send, receive = anyio.create_memory_object_stream[LogLine](_TAIL_KEPT + _BUFFER)
        for line in self._lines:
            if line.seq > after:
                send.send_nowait(line)
        if self.done:
            send.close()
        else:
            self._subs[id(receive)] = send
        return receive

    def leave(self, receive: MemoryObjectReceiveStream[LogLine]) -> None:
        receive.close()
        sub = self._subs.pop(id(receive), None)
        if sub is not None:
            sub.close()
        if not self._subs and not self.done:
            self._scope.cancel()
