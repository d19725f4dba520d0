"""Every built-in executor passes `ExecutorContract`."""

from __future__ import annotations

import pytest

from runlife.executors import AsyncExecutor, ProcessExecutor, ThreadExecutor
from runlife.testing import ExecutorContract


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # real time: once is enough (the runtime's tests cover trio)


class TestAsyncExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self) -> AsyncExecutor:
        return AsyncExecutor()


class TestThreadExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self) -> ThreadExecutor:
        return ThreadExecutor(max_threads=2)


class TestProcessExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self) -> ProcessExecutor:
        return ProcessExecutor(max_processes=2, grace=1)
