"""Runtime tests live in virtual time: a VirtualClock at 2026-03-10 02:00 UTC and a
MemoryStore that tells its time, under asyncio and trio."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 plus *seconds*."""
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=T0)


@pytest.fixture
async def store(clock: VirtualClock) -> AsyncIterator[MemoryStore]:
    async with MemoryStore(clock=clock) as store:
        yield store


# -- real stores, for tests of several processes or runtime objects over one store ----
