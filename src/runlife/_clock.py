"""The real clock."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime

import anyio

__all__ = ("SystemClock", "now_of")

_IDLE: AbstractContextManager[None] = nullcontext()


class SystemClock:
    """The `Clock` of the real world: UTC wall time, and anyio's sleeps.

    >>> SystemClock().now().tzinfo
    datetime.timezone.utc
    """

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Wait *seconds* (0 or less: just yield to other tasks)."""
        await anyio.sleep(max(seconds, 0))

    async def sleep_until(self, deadline: datetime) -> None:
        """Wait until *deadline*."""
        await anyio.sleep(max((deadline - self.now()).total_seconds(), 0))

    @contextmanager
    def move_on_at(self, deadline: datetime) -> Iterator[anyio.CancelScope]:
        """A cancel scope cancelled at *deadline* (wall time); the runtime cuts
        attempts at their timeout with it. ``scope.cancelled_caught`` tells whether
        it did."""
        delay = max((deadline - self.now()).total_seconds(), 0)
        with anyio.CancelScope(deadline=anyio.current_time() + delay) as scope:
            yield scope

    def busy(self) -> AbstractContextManager[None]:
        """Mark work outside the event loop in flight. Real time passes anyway, so
        this does nothing here; `VirtualClock` does not jump meanwhile."""
        return _IDLE


def now_of(clock: object) -> Callable[[], datetime]:
    """*clock*'s ``now``, for a caller that reads it once a line or an item: the
    real clock's time is read directly, without its method's frame."""
    if clock.__class__ is SystemClock:
        return functools.partial(datetime.now, UTC)
    return clock.now  # type: ignore[attr-defined, no-any-return]
