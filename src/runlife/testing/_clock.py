"""`VirtualClock`: a `Clock` in virtual time, with autojump, on asyncio and trio.

How autojump works (the model is trio's ``MockClock``):

* Every wait goes through the clock: `VirtualClock.sleep`, `VirtualClock.sleep_until`
  and `VirtualClock.move_on_at` register a *timer* (a deadline and what to do at
  it) in one heap. Nothing in virtual time waits on a real timer.
* While timers are pending, one *driver* task per event loop watches for idleness:
  every task of the loop blocked, and nothing marked busy (`VirtualClock.busy`).
  When that holds it jumps virtual time to the earliest deadline and fires the
  timers due then (in deadline order, ties in the order they were set), then
  watches again: the woken tasks run before time moves on.
* Idleness is detected without real sleeps. On trio, through
  ``trio.testing.wait_all_tasks_blocked``, which the scheduler wakes as soon as
  every other task is blocked. On asyncio (where anyio's ``wait_all_tasks_blocked``
  polls with 0.1 s real sleeps) the driver yields to the loop with ``sleep(0)``
  and looks at the loop's ready queue: when it was empty on three consecutive
  turns, with an I/O poll in between, no task can run. This reads asyncio's
  private ``_ready`` deque; a loop without one falls back to anyio's polling.
* Work outside the event loop (a thread, a child process, a store's database call)
  looks idle to both backends. The runtime wraps it in ``with clock.busy():`` so
  that time does not jump under it.

The driver is started on demand (``loop.create_task`` on asyncio, a trio *system
task* on trio: the two places this module steps outside anyio, because a clock has
no task group of its own) and ends when no timer is pending.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import anyio.lowlevel

from runlife._core.convert import aware

__all__ = ("VirtualClock",)

_DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
# Turns of the asyncio loop with an empty ready queue before it counts as idle:
# a wake-up through a future's callback takes two turns to reach its task.
_QUIET_TURNS = 3


class _Timer:
    __slots__ = ("action", "deadline", "done")

    def __init__(self, deadline: datetime, action: Callable[[], object]) -> None:
        self.deadline = deadline
        self.action = action
        self.done = False


def _current_loop() -> tuple[str, Any]:
    try:
        return "asyncio", asyncio.get_running_loop()
    except RuntimeError:
        import trio  # only reached under trio, which is then installed

        return "trio", trio.lowlevel.current_trio_token()


class VirtualClock:
    """A `Clock` in virtual time: waits end when time is moved, not when it passes.

    With *autojump* (the default) time jumps to the next deadline whenever every
    task is blocked and nothing is marked `busy`; `advance` moves it by hand.
    Use one clock from one event loop at a time.

    Args:
        start: the virtual moment to start at (naive is read as UTC).
        autojump: jump to the next deadline whenever the loop is idle.

    >>> import anyio
    >>> clock = VirtualClock(start=datetime(2026, 3, 10, 2, 0, tzinfo=UTC))
    >>> anyio.run(clock.sleep, 17 * 60)   # returns at once, in real time
    >>> clock.now().isoformat()
    '2026-03-10T02:17:00+00:00'
    """

    def __init__(self, start: datetime = _DEFAULT_START, *, autojump: bool = True) -> None:
        self._now = aware(start).astimezone(UTC)
        self.autojump = autojump
        self._heap: list[tuple[datetime, int, _Timer]] = []
        self._seq = itertools.count()
        self._live = 0
        self._busy = 0
        self._busy_free: anyio.Event | None = None
        self._driver: object | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.jumps = 0
        """How many times time jumped (autojump or `advance`), for tests."""

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now.isoformat()}, pending={self._live})"

    # -- the Clock protocol ---------------------------------------------------

    def now(self) -> datetime:
        """The current virtual moment (aware, UTC)."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait *seconds* of virtual time (0 or less: just yield to other tasks)."""
        if seconds == math.inf:
            await anyio.sleep_forever()
        await self.sleep_until(self._now + timedelta(seconds=max(seconds, 0)))

    async def sleep_until(self, deadline: datetime) -> None:
        """Wait until virtual time reaches *deadline* (at once if it has)."""
        deadline = aware(deadline)
        if deadline <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        timer = self._push(deadline, event.set)
        try:
            await event.wait()
        finally:
            self._drop(timer)

    @contextmanager
    def move_on_at(self, deadline: datetime) -> Iterator[anyio.CancelScope]:
        """A cancel scope cancelled when virtual time reaches *deadline*.

        How the runtime cuts an attempt at its timeout in virtual time;
        ``scope.cancelled_caught`` tells whether it did.
        """
        deadline = aware(deadline)
        with anyio.CancelScope() as scope:
            timer = None
            if deadline <= self._now:
                scope.cancel()
            else:
                timer = self._push(deadline, scope.cancel)
            try:
                yield scope
            finally:
                if timer is not None:
                    self._drop(timer)

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Mark work outside the event loop in flight: time does not jump meanwhile.

        Wrap thread calls, child processes and store I/O in it (from the event
        loop's thread)::

            with clock.busy():
                await anyio.to_thread.run_sync(work)
        """
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
            if not self._busy and self._busy_free is not None:
                self._busy_free.set()
                self._busy_free = None

    # -- moving time by hand --------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by *seconds* and fire the timers now due.

        Raises:
            ValueError: *seconds* is negative (time never goes back).
        """
        if seconds < 0:
            raise ValueError(f"seconds={seconds!r} is invalid: expected seconds >= 0")
        if seconds:
            self._now += timedelta(seconds=seconds)
            self.jumps += 1
        self._fire_due()

    async def settle(self) -> None:
        """Wait, without moving time, until every other task of this event loop is
        blocked and nothing is marked `busy`.

        How a test (or `runlife.testing.RuntimeMachine`) lets a runtime do all it can
        do at this moment before it looks: call it from a task of the loop.

        >>> import anyio
        >>> async def main():
        ...     clock, seen = VirtualClock(autojump=False), []
        ...     async def work():
        ...         await anyio.sleep(0)
        ...         seen.append("ran")
        ...     async with anyio.create_task_group() as tg:
        ...         tg.start_soon(work)
        ...         await clock.settle()
        ...         return seen
        >>> anyio.run(main)
        ['ran']
        """
        backend, loop = _current_loop()
        idle = self._idle_asyncio if backend == "asyncio" else self._idle_trio
        while True:
            if self._busy:
                if self._busy_free is None:
                    self._busy_free = anyio.Event()
                await self._busy_free.wait()
                continue
            await idle(loop)
            if not self._busy:
                return

    async def run_for(self, seconds: float) -> None:
        """Live *seconds* of virtual time step by step: jump to each pending deadline
        in turn, letting the woken tasks `settle` before the next one, then to the
        end. For a clock without autojump (``VirtualClock(autojump=False)``), where
        only this and `advance` move time.

        Raises:
            ValueError: *seconds* is negative.

        >>> import anyio
        >>> async def main():
        ...     clock, woke = VirtualClock(autojump=False), []
        ...     async def nap():
        ...         await clock.sleep(60)
        ...         woke.append(clock.now())
        ...         await clock.sleep(60)
        ...         woke.append(clock.now())
        ...     async with anyio.create_task_group() as tg:
        ...         tg.start_soon(nap)
        ...         await clock.settle()
        ...         await clock.run_for(90)
        ...         assert [f"{t:%H:%M}" for t in woke] == ["00:01"]
        ...         await clock.run_for(30)
        ...     return [f"{t:%H:%M}" for t in woke]
        >>> anyio.run(main)
        ['00:01', '00:02']
        """
        if seconds < 0:
            raise ValueError(f"seconds={seconds!r} is invalid: expected seconds >= 0")
        end = self._now + timedelta(seconds=seconds)
        await self.settle()
        while True:
            timer = self._peek()
            if timer is None or timer.deadline > end:
                break
            self._jump()
            await self.settle()
        if end > self._now:
            self._now = end
            self.jumps += 1
        await self.settle()

    @property
    def pending(self) -> int:
        """How many waits are pending."""
        return self._live

    @property
    def next_deadline(self) -> datetime | None:
        """The earliest pending deadline, if any."""
        timer = self._peek()
        return None if timer is None else timer.deadline

    # -- timers ---------------------------------------------------------------

    def _push(self, deadline: datetime, action: Callable[[], object]) -> _Timer:
        timer = _Timer(deadline, action)
        heapq.heappush(self._heap, (deadline, next(self._seq), timer))
        self._live += 1
        if self.autojump:
            self._ensure_driver()
        return timer

    def _drop(self, timer: _Timer) -> None:
        if not timer.done:
            timer.done = True
            self._live -= 1

    def _peek(self) -> _Timer | None:
        heap = self._heap
        while heap and heap[0][2].done:
            heapq.heappop(heap)
        return heap[0][2] if heap else None

    def _fire_due(self) -> None:
        heap, now = self._heap, self._now
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)[2]
            if not timer.done:
                timer.done = True
                self._live -= 1
                timer.action()

    def _jump(self) -> None:
        timer = self._peek()
        if timer is None:
            return
        if timer.deadline > self._now:
            self._now = timer.deadline
            self.jumps += 1
        self._fire_due()

    # -- the driver -----------------------------------------------------------

    def _ensure_driver(self) -> None:
        backend, loop = _current_loop()
        if self._driver is loop:
            return
        self._driver = loop
        if backend == "asyncio":
            task = loop.create_task(self._drive(loop, self._idle_asyncio))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            import trio

            trio.lowlevel.spawn_system_task(self._drive, loop, self._idle_trio)

    async def _drive(self, loop: object, idle: Callable[[object], Any]) -> None:
        try:
            while self._live and self.autojump:
                if self._busy:
                    if self._busy_free is None:
                        self._busy_free = anyio.Event()
                    await self._busy_free.wait()
                    continue
                await idle(loop)
                if not self._busy:
                    self._jump()
        finally:
            if self._driver is loop:
                self._driver = None

    @staticmethod
    async def _idle_trio(_loop: object) -> None:
        await anyio.wait_all_tasks_blocked()

    @staticmethod
    async def _idle_asyncio(loop: object) -> None:
        ready = getattr(loop, "_ready", None)
        if ready is None:  # pragma: no cover - a loop without asyncio's internals
            await anyio.wait_all_tasks_blocked()
            return
        quiet = 0
        while quiet < _QUIET_TURNS:
            await asyncio.sleep(0)
            quiet = 0 if ready else quiet + 1
