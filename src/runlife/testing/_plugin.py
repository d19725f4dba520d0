"""runlife's pytest plugin (registered through the ``pytest11`` entry point).

pytest loads it in every project whose environment has runlife, including projects
that never use it and environments without the ``testing`` extra. So it imports
nothing but pytest when it loads: each fixture imports what it needs in its body,
when a test first asks for it.

Fixtures:

* ``runlife_clock``: a fresh `runlife.testing.VirtualClock` (autojump on), for
  tests that live in virtual time.
* ``runlife_store``: an open, empty `runlife.stores.MemoryStore` whose time is
  ``runlife_clock``'s, closed after the test. It is async: ask for it from an
  anyio test (``@pytest.mark.anyio``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from runlife.stores import MemoryStore
    from runlife.testing import VirtualClock


@pytest.fixture
def runlife_clock() -> VirtualClock:
    """A fresh `VirtualClock` at its default start, with autojump."""
    from runlife.testing._clock import VirtualClock

    return VirtualClock()


@pytest.fixture
async def runlife_store(runlife_clock: VirtualClock) -> AsyncIterator[MemoryStore]:
    """An open, empty `MemoryStore` on ``runlife_clock``'s time."""
    from runlife.stores import MemoryStore

    async with MemoryStore(clock=runlife_clock) as store:
        yield store
