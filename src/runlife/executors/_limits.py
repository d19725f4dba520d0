"""A capacity limit per event loop, for executors that bound their work."""

from __future__ import annotations

import anyio
import anyio.lowlevel

__all__ = ("LoopLimiter",)


class LoopLimiter:
    """*total* places at once, counted per event loop: an anyio limiter belongs
    to the loop it was made in, so one is made on first use in each."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._made: tuple[object, anyio.CapacityLimiter] | None = None

    def here(self) -> anyio.CapacityLimiter:
        """The limiter of the running event loop."""
        # A new token object each call; the loop it stands for is the same.
        token = anyio.lowlevel.current_token().native_token
        if self._made is None or self._made[0] is not token:
            self._made = (token, anyio.CapacityLimiter(self.total))
        return self._made[1]
