"""The real clock."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio

__all__ = ("SystemClock",)


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
