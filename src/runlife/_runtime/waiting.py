"""Waiting for a signal: ``payload = await ctx.wait_for("approved", timeout=3600)``.

* **Signals are stored.** ``rt.signal(run_id, name, payload)``, from any process,
  stores the signal with the run. A wait first reads the run's signals: one sent
  before the wait (or before a retried attempt's wait) is found at once, and the
  wait returns its payload without the run leaving RUNNING. A signal stays once
  sent: a second wait for the same name returns the same payload.
* **WAITING.** Otherwise the run moves RUNNING -> WAITING (the reason names the
  signal) and its attempt stays alive in its worker: still held, leased and
  heartbeated. The wait looks again when the store hints at a change, when a
  signal is sent in this process, and every ``poll`` seconds, all in clock time;
  once the signal is there the run moves back to the state it left, and the wait
  returns the payload.
* **Deadlines.** The wait's timeout is a clock deadline from the wait's start.
  When it passes the attempt is cut and the run ends FAILED with kind
  ``timeout`` (`decide_wait_timeout`: not retried). Time spent WAITING does not
  count against ``Timeout(attempt=...)`` or the heartbeat; ``Timeout(run=...)``
  keeps counting.
* **Threads.** A sync job waits with ``anyio.from_thread.run(ctx.wait_for, name)``.
  The wait then runs on the event loop while the thread blocks; the attempt's busy
  mark is lifted meanwhile (so virtual time moves on), and a cut of the attempt
  reaches the thread as `AttemptStopped`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio

from runlife._core.overview import waiting_reason
from runlife._core.policy import wait_limit
from runlife._core.status import Status
from runlife._core.values import check_text
from runlife._runtime.wake import Pulse, nap
from runlife.abc import Clock
from runlife.exceptions import LeaseLost

if TYPE_CHECKING:
    from runlife._runtime.worker import Held

__all__ = ("AttemptClock", "AttemptStopped", "Waits", "wait_for_signal")


class AttemptStopped(BaseException):
    """Raised in a sync job's thread by ``ctx.wait_for`` when the attempt was stopped
    (cancelled, timed out, shut down, its lease lost) during the wait, so that the
    job unwinds. A `BaseException`, as a cancellation is: let it pass."""


class AttemptClock:
    """The runtime's clock as one attempt's executor sees it: the same time and
    waits, but its ``busy`` marks are lifted while the attempt waits for a signal
    (a thread blocked in ``ctx.wait_for`` is not work in flight)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._depth = 0
        self._idle = False
        self._mark: ExitStack | None = None

    def now(self) -> datetime:
        """The runtime clock's time."""
        return self._clock.now()

    async def sleep(self, seconds: float) -> None:
        """Wait *seconds* on the runtime's clock."""
        await self._clock.sleep(seconds)

    async def sleep_until(self, deadline: datetime) -> None:
        """Wait until *deadline* on the runtime's clock."""
        await self._clock.sleep_until(deadline)

    def move_on_at(self, deadline: datetime) -> AbstractContextManager[anyio.CancelScope]:
        """The runtime clock's cancel scope for *deadline*."""
        return self._clock.move_on_at(deadline)

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Mark the attempt's work in flight on the runtime's clock (but not while
        the attempt waits for a signal)."""
        self._depth += 1
        self._hold()
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth:
                self._release()

    @contextmanager
    def idle(self) -> Iterator[None]:
        """Lift the attempt's busy marks while it waits for a signal."""
        self._idle = True
        self._release()
        try:
            yield
        finally:
            self._idle = False
            self._hold()

    def _hold(self) -> None:
        if self._depth and not self._idle and self._mark is None:
            mark = ExitStack()
            mark.enter_context(self._clock.busy())
            self._mark = mark

    def _release(self) -> None:
        if self._mark is not None:
            mark, self._mark = self._mark, None
            mark.close()


class Waits:
    """One attempt's waits for signals: how long it has waited, the wait under
    way, and how a cut of the attempt reaches a thread's wait.

    Args:
        clock: the runtime's clock.
        wake: pulses after which a wait looks for its signal again.
        poll: seconds of clock time after which a wait looks again anyway.
    """

    def __init__(self, clock: Clock, *, wake: Sequence[Pulse] = (), poll: float = 5) -> None:
        self.clock = clock
        self.attempt_clock = AttemptClock(clock)
        self.wake = tuple(wake)
        self.poll = poll
        self.moved = Pulse()
        """Pulsed when a wait begins or ends (the attempt's deadlines move)."""
        self.waited = timedelta(0)
        """How long the attempt has waited for signals, in waits that ended."""
        self.timed_out: tuple[str, timedelta] | None = None
        """The signal and limit of the wait that timed out, if one did."""
        self.stopped = False
        """Whether a cut of the attempt ended a thread's wait."""
        self._since: datetime | None = None
        self._scopes: set[anyio.CancelScope] = set()

    def stop(self) -> None:
        """The attempt is cut: end the waits of its thread (an async job's wait
        ends with the attempt's own scope)."""
        for scope in self._scopes:
            self.stopped = True
            scope.cancel()

    def _begin(self) -> None:
        self._since = self.clock.now()
        self.moved.pulse()

    def _end(self) -> None:
        if self._since is not None:
            self.waited += self.clock.now() - self._since
            self._since = None


async def wait_for_signal(held: Held, name: str, timeout: float | timedelta | None) -> Any:
    """Wait, in *held*'s attempt, for signal *name* of its run, and return its
    payload (see the module docstring).

    Raises:
        InvalidValue: *name* is not text or is empty; *timeout* is not None or
            positive seconds (its field is ``timeout``).
        InvalidTransition: the run's lifecycle has no move to WAITING from its state.
        LeaseLost: the attempt has ended.
    """
    check_text("signal", name, empty=False)
    limit = wait_limit(timeout)
    if held.job.is_async:
        return await _wait(held, name, limit)
    # A sync job's thread calls this through anyio.from_thread, in a task that is
    # not the attempt's: the attempt's cut reaches it through a scope of its own,
    # shielded from everything else, and the thread gets AttemptStopped.
    with anyio.CancelScope(shield=True) as scope:
        held.waits._scopes.add(scope)
        if held.cut_kind is not None:
            scope.cancel()
        try:
            return await _wait(held, name, limit)
        finally:
            held.waits._scopes.discard(scope)
    raise AttemptStopped(
        f"attempt {held.run.attempt} of run {held.run.id} was stopped while it waited "
        f"for signal {name!r}"
    )


async def _wait(held: Held, name: str, limit: timedelta | None) -> Any:
    if held.closed:
        raise LeaseLost(held.claim.run_id, held.claim.owner, held.claim.fence)
    waits, clock = held.waits, held.waits.clock
    found = await held.guard.signals(held.run.id)
    if name in found:
        return found[name]
    deadline = None if limit is None else clock.now() + limit
    left = held.state
    await _move(held, Status.WAITING, waiting_reason(name, limit))
    waits._begin()
    try:
        with waits.attempt_clock.idle():
            while True:
                seen = [(pulse, pulse.count) for pulse in waits.wake]
                found = await held.guard.signals(held.run.id)
                if name in found:
                    break
                now = clock.now()
                if deadline is not None and limit is not None and now >= deadline:
                    waits.timed_out = (name, limit)
                    held.cut("signal")
                    await anyio.sleep_forever()  # the cut cancels the wait here
                until = now + timedelta(seconds=waits.poll)
                if deadline is not None and deadline < until:
                    until = deadline
                await nap(clock, until, pulses=seen)
    finally:
        waits._end()
    lifecycle = held.lifecycle
    back = left if left in lifecycle.allowed(held.run.state) else Status.RUNNING
    await _move(held, back, f"signal {name!r} received")
    waits.moved.pulse()
    if held.ctx is not None:
        held.ctx.heartbeat()  # the wait's end is a sign of life
    return found[name]


async def _move(held: Held, to: Status | str, reason: str) -> None:
    try:
        await held.move(to, reason)
    except LeaseLost:
        # Reaped, cancelled or claimed elsewhere meanwhile: stop without writing.
        if not held.lose():
            raise
        await anyio.sleep_forever()  # the cut cancels the wait here
