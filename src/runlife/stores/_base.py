"""What the built-in stores share beyond the core: opening once, closing once,
and knowing the lifecycle of each job.

A store subclasses `StoreBase` and writes ``_open`` and ``_close``; callers
open it with ``async with store`` (or by using it) and close it with
``aclose()``. Opening happens once however many tasks use the store at once;
closing is idempotent, survives cancellation, and a closed store refuses use
with `StoreError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import anyio

from runlife._core.lifecycle import DEFAULT_LIFECYCLE, Lifecycle
from runlife._core.spec import lifecycle_of
from runlife.exceptions import StoreError

__all__ = ("StoreBase",)


class StoreBase:
    """The opening and closing of a store, written once."""

    url: str

    def __init__(self) -> None:
        self._opened = False
        self._closed = False
        self._open_lock: anyio.Lock | None = None
        # job name -> its lifecycle, from its stored spec: the successor check
        # needs it on every write.
        self._lifecycles: dict[str, Lifecycle] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    async def __aenter__(self) -> Self:
        await self._ensure_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _ensure_open(self) -> None:
        if self._opened:
            return
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        if self._open_lock is None:
            # anyio primitives bind to the running backend: make them on first use.
            self._open_lock = anyio.Lock()
        async with self._open_lock:
            if self._closed:
                raise StoreError(f"{self!r} is closed")
            if not self._opened:
                await self._open()
                if self._closing():  # closed while it opened: close what was opened
                    with anyio.CancelScope(shield=True):
                        await self._close()
                    raise StoreError(f"{self!r} is closed")
                self._opened = True

    def _closing(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self!r} is closed")

    async def aclose(self) -> None:
        """Finish what is in flight, then close; the store cannot be used afterwards.
        Closing twice is fine."""
        if self._closed:
            return
        self._closed = True
        if self._opened:
            self._opened = False
            with anyio.CancelScope(shield=True):
                await self._close()

    async def _open(self) -> None:
        """Connect (called once, under a lock)."""

    async def _close(self) -> None:
        """Disconnect, after the calls in flight are done."""

    # -- lifecycles ------------------------------------------------------------

    def _learn_spec(self, job: str, spec: Mapping[str, Any] | None) -> Lifecycle:
        """Remember the lifecycle of *job* from its stored *spec*."""
        lifecycle = lifecycle_of(spec)
        self._lifecycles[job] = lifecycle
        return lifecycle

    def _known_lifecycle(self, job: str) -> Lifecycle | None:
        """The lifecycle of *job* as last read from its record, if it was read."""
        return self._lifecycles.get(job)

    @staticmethod
    def _default_lifecycle() -> Lifecycle:
        return DEFAULT_LIFECYCLE
