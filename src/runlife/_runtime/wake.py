"""Waiting without missing a wake-up, in the runtime's clock time.

Services wait for a moment of their clock or for a `Pulse`: from another service
of the same process (a run became claimable, a job was paused) or from the
runtime's store watcher (the store changed: a hint of what other processes do).
`nap` waits for the first of them without starting a task: one event and one
clock deadline. Every service re-reads what it needs after a nap, so a spurious
wake-up costs a read and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import anyio
import anyio.lowlevel

from runlife.abc import Clock

__all__ = ("Pulse", "nap")


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
        self._waiters: set[anyio.Event] = set()

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
        event = anyio.Event()
        self._waiters.add(event)
        try:
            await event.wait()
        finally:
            self._waiters.discard(event)


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
    if any(pulse.count != seen for pulse, seen in pulses) or until <= clock.now():
        await anyio.lowlevel.checkpoint()
        return
    event = anyio.Event()
    for pulse, _ in pulses:
        pulse._waiters.add(event)
    try:
        with clock.move_on_at(until):
            await event.wait()
    finally:
        for pulse, _ in pulses:
            pulse._waiters.discard(event)
