"""An idle runtime over a real store looks at it every poll, and no more often.

Its claim loop wakes on the store's change hint; its own claims must not count
as changes (an empty claim changes nothing), or the loop would claim again at
once, for ever: a core's worth of CPU and a stream of write transactions from a
runtime with nothing to do.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest

import runlife
from runlife import AsyncRuntime
from runlife.abc import Store
from runlife.stores import open_store

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

POLL = 0.5
IDLE = 2.0


class Counting:
    """A store that counts the calls made to it, by method."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if not callable(target) or name in ("wait_changed", "now"):
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return await target(*args, **kwargs)

        return call


@runlife.job
async def nothing(ctx: runlife.RunContext) -> None:
    return None


async def test_an_idle_runtime_claims_once_a_poll(store_url: str) -> None:
    async with open_store(store_url) as store:
        counting = Counting(store)
        async with AsyncRuntime(
            jobs=[nothing],
            store=counting,  # type: ignore[arg-type]
            poll=POLL,
            lease=30,
        ):
            await anyio.sleep(0.2)  # started
            counting.calls.clear()
            await anyio.sleep(IDLE)
            calls = dict(counting.calls)
    # One claim a poll (4 in 2 s), give or take a wake-up.
    assert calls.get("claim", 0) <= IDLE / POLL + 2, calls
    assert sum(calls.values()) <= 4 * (IDLE / POLL + 2), calls
    print(f"\nidle runtime: store calls in {IDLE} s (poll {POLL} s): {calls}")
