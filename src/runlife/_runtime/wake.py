"""Waiting without missing a wake-up, in the runtime's clock time.

Services wait for a moment of their clock or for a `Pulse`: from another service
of the same process (a run became claimable, a job was paused) or from the
runtime's store watcher (the store changed: a hint of what other processes do).
`nap` waits for the first of them without starting a task: one event and one
clock deadline. Every service re-reads what it needs after a nap, so a spurious
wake-up costs a read and nothing else.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Generic, TypeVar

import anyio
import anyio.lowlevel

from runlife._clock import SystemClock
from runlife.abc import Clock

__all__ = ("Latch", "Pulse", "Queue", "nap")

T = TypeVar("T")


class Pulse:
    """A wake-up broadcast that is never lost between looking and waiting.

    Read `count` before looking at what you wait for; then `wait` (or `nap`)
    returns as soon as `pulse` was called after that reading, even if it was
    called before the wait began.

    >>> import anyio
    >>> pulse = Pulse()
    >>> seen = pulse.count
    >>> pulse.pulse()          # before anyone waits: not lost
    >>> anyio.run(pulse.wait, seen)
    >>> pulse.count
    1
    """

    __slots__ = ("_waiters", "count")

    def __init__(self) -> None:
        self.count = 0
        self._waiters: set[_Waiter] = set()

    def pulse(self) -> None:
        """Wake every waiter (call it from the event loop's thread)."""
        self.count += 1
        waiters, self._waiters = self._waiters, set()
        for event in waiters:
            event.set()

    async def wait(self, seen: int) -> None:
        """Return once `pulse` has been called since `count` read *seen*."""
        if self.count != seen:
            await anyio.lowlevel.checkpoint()
            return
        waiter = _waiter()
        self._waiters.add(waiter)
        try:
            await waiter.wait()
        finally:
            self._waiters.discard(waiter)


class Latch:
    """A one-shot flag: `wait` returns once `set` was called, at once if it was.

    Most latches are set with nobody waiting (an attempt's end, a read that no
    other caller shares), so the event is made only by the first waiter.

    >>> import anyio
    >>> latch = Latch()
    >>> latch.set()
    >>> anyio.run(latch.wait)
    >>> latch.is_set
    True
    """

    __slots__ = ("_event", "is_set")

    def __init__(self) -> None:
        self.is_set = False
        self._event: anyio.Event | None = None

    async def wait(self) -> None:
        """Return once the latch is set."""
        if self.is_set:
            return
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()

    def set(self) -> None:
        """Set it for good, waking its waiters (call it from the event loop's thread)."""
        self.is_set = True
        if self._event is not None:
            self._event.set()


class _Waiter:
    """One wait for a pulse: set by `Pulse.pulse`."""

    __slots__ = ()

    def set(self) -> None:
        raise NotImplementedError

    async def wait(self) -> None:
        raise NotImplementedError


class _EventWaiter(_Waiter):
    """Waits on an anyio event: any backend, any clock."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = anyio.Event()

    def set(self) -> None:
        self.event.set()

    async def wait(self) -> None:
        await self.event.wait()


class _FutureWaiter(_Waiter):
    """Waits on a bare asyncio future: on asyncio, the cheapest wait there is
    (anyio's cancel scopes cancel it as they cancel any await)."""

    __slots__ = ("future",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.future: asyncio.Future[None] = loop.create_future()

    def set(self) -> None:
        if not self.future.done():
            self.future.set_result(None)

    async def wait(self) -> None:
        await self.future


class Queue(Generic[T]):
    """An unbounded first-in, first-out queue of one event loop, whose `put` wakes
    one waiting `get` (not all of them, as a `Pulse` would).

    >>> import anyio
    >>> queue = Queue[str]()
    >>> queue.put("a")
    >>> anyio.run(queue.get)
    'a'
    """

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._getters: deque[_Waiter] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        """Add *item* and wake the longest waiting `get` (from the loop's thread)."""
        self._items.append(item)
        if self._getters:
            self._getters.popleft().set()

    async def get(self) -> T:
        """The first item, once there is one; a checkpoint either way."""
        if self._items:
            await anyio.lowlevel.checkpoint()
        while not self._items:
            waiter = _waiter()
            self._getters.append(waiter)
            try:
                await waiter.wait()
            except BaseException:
                if waiter in self._getters:
                    self._getters.remove(waiter)
                elif self._items and self._getters:
                    self._getters.popleft().set()  # woken, but gone: the next one takes it
                raise
        return self._items.popleft()


def _loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio loop, or None under another backend (trio)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _waiter() -> _Waiter:
    loop = _loop()
    return _EventWaiter() if loop is None else _FutureWaiter(loop)


async def nap(clock: Clock, until: datetime, *, pulses: Sequence[tuple[Pulse, int]] = ()) -> None:
    """Wait until *until* (clock time) or a pulse of *pulses* after its seen
    count, whichever comes first.

    >>> import anyio
    >>> from datetime import datetime, timedelta, UTC
    >>> from runlife.testing import VirtualClock
    >>> clock = VirtualClock(start=datetime(2026, 3, 10, 2, tzinfo=UTC))
    >>> anyio.run(lambda: nap(clock, clock.now() + timedelta(minutes=5)))
    >>> clock.now().time()
    datetime.time(2, 5)
    """
    now = clock.now()
    if until <= now or any(pulse.count != seen for pulse, seen in pulses):
        await anyio.lowlevel.checkpoint()
        return
    loop = _loop() if clock.__class__ is SystemClock else None
    waiter = _EventWaiter() if loop is None else _FutureWaiter(loop)
    for pulse, _ in pulses:
        pulse._waiters.add(waiter)
    try:
        if loop is None:
            with clock.move_on_at(until):
                await waiter.wait()
        else:
            # Real time on asyncio: a timer of the loop ends the wait, not a cancel scope.
            timer = loop.call_later((until - now).total_seconds(), waiter.set)
            try:
                await waiter.wait()
            finally:
                timer.cancel()
    finally:
        for pulse, _ in pulses:
            pulse._waiters.discard(waiter)
