"""A custom executor: sync job functions on a ``concurrent.futures`` thread pool,
certified by `runlife.testing.ExecutorContract`.

A pool's thread cannot be interrupted, so the executor says so (``can_interrupt =
False``): when an attempt is cut, `run` returns at once and the run's error says the
work is still running; the contract checks both. Its work is marked
``clock.busy()``, so that a virtual clock does not jump while it runs.

This file is a test module: ``pytest examples/pool_executor.py``, or
``python examples/pool_executor.py``, which runs pytest on it.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio.to_thread
import pytest

from runlife.abc import Call, Clock
from runlife.testing import ExecutorContract


class PoolExecutor:
    """Runs sync job functions on a `concurrent.futures.ThreadPoolExecutor`."""

    can_interrupt = False

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool

    def accepts(self, fn: Callable[..., Any]) -> bool:
        return callable(fn) and not inspect.iscoroutinefunction(fn)

    async def run(self, call: Call, *, clock: Clock) -> Any:
        future = self.pool.submit(call)
        with clock.busy():
            # Wait for the pool's future in a worker thread; a cut returns at once.
            return await anyio.to_thread.run_sync(future.result, abandon_on_cancel=True)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class TestPoolExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self) -> Iterator[PoolExecutor]:
        with ThreadPoolExecutor(max_workers=2) as pool:
            yield PoolExecutor(pool)
            pool.shutdown(wait=False, cancel_futures=True)


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    args = ["-q", "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", here, __file__]
    sys.exit(subprocess.call([sys.executable, "-m", "pytest", *args]))  # noqa: S603
