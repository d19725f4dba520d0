"""Executors: async functions are interrupted; threads cannot be, and say so."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import anyio
import pytest

import runlife
from runlife import AsyncRuntime, InvalidPolicy, RunContext, Status, SystemClock, Timeout
from runlife.abc import Clock, Executor
from runlife.executors import AsyncExecutor, ThreadExecutor
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from .conftest import at

pytestmark = pytest.mark.anyio


def test_the_executors_are_executors() -> None:
    assert isinstance(AsyncExecutor(), Executor)
    assert isinstance(ThreadExecutor(), Executor)
    assert AsyncExecutor.can_interrupt is True
    assert ThreadExecutor.can_interrupt is False


def test_each_accepts_its_kind_of_function() -> None:
    async def coro() -> None: ...

    def plain() -> None: ...

    assert AsyncExecutor().accepts(coro)
    assert not AsyncExecutor().accepts(plain)
    assert ThreadExecutor().accepts(plain)
    assert not ThreadExecutor().accepts(coro)
    with pytest.raises(InvalidPolicy, match="max_threads"):
        ThreadExecutor(max_threads=0)


async def test_an_async_attempt_is_cut_at_its_timeout(
    clock: VirtualClock, store: MemoryStore
) -> None:
    stopped: list[datetime] = []

    @runlife.job(timeout=Timeout(attempt=60))
    async def slow(ctx: RunContext) -> None:
        try:
            await clock.sleep(3600)
        finally:
            stopped.append(clock.now())

    async with AsyncRuntime(jobs=[slow], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(slow)).id)
    assert stopped == [at(60)]
    assert run.error is not None
    assert run.error.message == "attempt 1 exceeded its timeout of 60 s"


async def test_a_thread_that_outlives_its_timeout_is_recorded_as_still_running() -> None:
    """In real time: a sync job cut at its 0.2 s timeout is recorded as timed out
    and still running; it sees ctx.cancelled and stops on its own, a while later
    (it is still running when the outcome is written, however slow the machine)."""
    seen_cancel, release = threading.Event(), threading.Event()

    @runlife.job(timeout=Timeout(attempt=0.2))
    def stubborn(ctx: RunContext) -> str:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if ctx.cancelled:
                seen_cancel.set()
                release.wait(5)
                return "stopped"
            time.sleep(0.01)
        return "finished"

    async with AsyncRuntime(jobs=[stubborn], store="memory://", grace=0) as rt:
        started = time.monotonic()
        run = await rt.wait((await rt.submit(stubborn)).id)
        took = time.monotonic() - started
        release.set()
    assert run.status is Status.FAILED
    assert run.error is not None
    assert run.error.kind == "timeout"
    assert run.error.message == (
        "attempt 1 exceeded its timeout of 0.2 s; "
        "its thread could not be interrupted and is still running"
    )
    assert took < 2
    assert seen_cancel.wait(2)


async def test_cancelling_a_thread_is_cooperative_and_said(
    clock: VirtualClock, store: MemoryStore
) -> None:
    started, release, step_done = threading.Event(), threading.Event(), threading.Event()

    @runlife.job
    def waits(ctx: RunContext) -> None:
        started.set()
        while not ctx.cancelled:
            time.sleep(0.005)
        # The step under way ends after the cancel returned: the thread is still
        # running when the run is recorded (a thread that returned first is not).
        step_done.wait(10)
        release.set()

    async with AsyncRuntime(jobs=[waits], store=store, clock=clock) as rt:
        run = await rt.submit(waits)
        while not started.is_set():
            await anyio.sleep(0.005)
        try:
            cancelled = await rt.cancel(run.id, reason="operator", by="ops:ana")
        finally:
            step_done.set()
    assert cancelled.status is Status.CANCELLED
    assert cancelled.error is not None
    assert cancelled.error.message == (
        "cancelled by ops:ana: operator; its thread could not be interrupted and is still running"
    )
    assert release.wait(2)


class Recording:
    """A custom executor: runs sync functions inline, and records what it ran."""

    can_interrupt = False

    def __init__(self) -> None:
        self.ran: list[str] = []

    def accepts(self, fn: Callable[..., Any]) -> bool:
        return not AsyncExecutor().accepts(fn)

    async def run(self, call: Callable[[], Any], *, clock: Clock) -> Any:
        self.ran.append("call")
        return call()


async def test_a_job_can_name_its_own_executor(clock: VirtualClock, store: MemoryStore) -> None:
    inline = Recording()

    @runlife.job(executor=inline)
    def double(ctx: RunContext, n: int) -> int:
        return n * 2

    async with AsyncRuntime(jobs=[double], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(double, params={"n": 21})).id)
    assert run.result == 42
    assert inline.ran == ["call"]


async def test_the_runtime_executor_runs_sync_jobs(clock: VirtualClock, store: MemoryStore) -> None:
    inline = Recording()

    @runlife.job
    def triple(ctx: RunContext) -> int:
        return 3

    async with AsyncRuntime(jobs=[triple], store=store, clock=clock, executor=inline) as rt:
        run = await rt.wait((await rt.submit(triple)).id)
    assert run.result == 3
    assert inline.ran == ["call"]


def test_a_thread_executor_runs_on_either_backend() -> None:
    executor = ThreadExecutor(max_threads=1)
    for backend in ("asyncio", "trio"):
        result = anyio.run(
            lambda: executor.run(lambda: threading.current_thread().name, clock=SystemClock()),
            backend=backend,
        )
        assert result != threading.current_thread().name


async def test_max_threads_bounds_the_threads_at_once() -> None:
    executor = ThreadExecutor(max_threads=1)
    lock = threading.Lock()
    inside: list[int] = []
    most = 0

    def work() -> None:
        nonlocal most
        with lock:
            inside.append(1)
            most = max(most, len(inside))
        time.sleep(0.05)
        with lock:
            inside.pop()

    async def one() -> None:
        await executor.run(work, clock=SystemClock())

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
    assert most == 1
