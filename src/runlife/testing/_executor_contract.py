"""`ExecutorContract`: the conformance suite every `runlife.abc.Executor` passes.

Subclass it in a class whose name starts with ``Test`` and give it an ``executor``
fixture that returns the executor::

    import pytest
    from runlife.executors import ThreadExecutor
    from runlife.testing import ExecutorContract


    class TestMyExecutor(ExecutorContract):
        @pytest.fixture
        def executor(self):
            return ThreadExecutor(max_threads=2)

Each test runs the executor the way runlife does, under an `AsyncRuntime` (memory
store, real time, each job ``executor=`` the one under test), and reads the run
it stored: the executor runs the sync and async functions it accepts (one kind at
least), returns their JSON results, hands over their errors with type and
message, and honours a cancel and a timeout as its ``can_interrupt`` claims: an
executor that can interrupt stops the work (it never finishes), one that cannot
returns control at once and the run's error says the work is still running. The
job functions are defined at the top level of this module, so an executor that
runs functions by name in another process can import them. About 3 s of real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest

from runlife._core.policy import Timeout
from runlife._core.run import Run
from runlife._core.status import Status
from runlife._runtime.context import RunContext
from runlife._runtime.job import job
from runlife._runtime.runtime import AsyncRuntime
from runlife.abc import Executor

__all__ = ("ExecutorContract",)

# Real seconds the slow functions take, and how long after the cut the test looks.
_SLOW = 0.4
_LOOK = 0.4


def contract_add(ctx: RunContext, a: int, b: int) -> int:
    """A sync function: the sum of its params."""
    return a + b


async def contract_add_async(ctx: RunContext, a: int, b: int) -> int:
    """An async function: the sum of its params."""
    await anyio.sleep(0)
    return a + b


def contract_json(ctx: RunContext) -> Any:
    """A sync function returning nested JSON."""
    return {"devices": ["r1", "r2"], "ratio": 0.5, "ok": True, "none": None, "n": 2**40}


async def contract_json_async(ctx: RunContext) -> Any:
    """An async function returning nested JSON."""
    return contract_json(ctx)


def contract_fail(ctx: RunContext, message: str) -> None:
    """A sync function raising ValueError(message)."""
    raise ValueError(message)


async def contract_fail_async(ctx: RunContext, message: str) -> None:
    """An async function raising ValueError(message)."""
    raise ValueError(message)


def contract_slow(ctx: RunContext, marker: str) -> str:
    """A sync function that says it started, sleeps (never looking at
    ``ctx.cancelled``), then says it finished."""
    Path(marker + ".started").touch()
    time.sleep(_SLOW)
    Path(marker + ".finished").touch()
    return "finished"


async def contract_slow_async(ctx: RunContext, marker: str) -> str:
    """An async function that says it started, sleeps, then says it finished."""
    Path(marker + ".started").touch()
    await anyio.sleep(_SLOW)
    Path(marker + ".finished").touch()
    return "finished"


_KINDS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "add": (contract_add, contract_add_async),
    "json": (contract_json, contract_json_async),
    "fail": (contract_fail, contract_fail_async),
    "slow": (contract_slow, contract_slow_async),
}


class ExecutorContract:
    """The conformance suite of the Executor protocol: subclass it and give it an
    ``executor`` fixture. The subclass must be named ``Test...``; this base class
    is never collected on its own."""

    __test__: ClassVar[bool] = False
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.anyio]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__test__ = True

    # -- helpers ---------------------------------------------------------------

    @staticmethod
    def accepted(executor: Executor, kind: str) -> list[Any]:
        """The functions of *kind* (sync, async) that *executor* accepts."""
        return [fn for fn in _KINDS[kind] if executor.accepts(fn)]

    @staticmethod
    async def run_one(
        executor: Executor,
        fn: Any,
        params: dict[str, Any],
        *,
        timeout: Timeout | None = None,
        cancel_when: Path | None = None,
    ) -> Run:
        """Run *fn* as a job on *executor* in a runtime and return its ended run;
        with *cancel_when*, cancel it once that file exists."""
        kind = "async" if fn.__name__.endswith("_async") else "sync"
        the_job = job(name=f"{fn.__name__}_{kind}", executor=executor, timeout=timeout)(fn)
        async with AsyncRuntime(jobs=[the_job], store="memory://", grace=0, poll=0.05) as rt:
            run = await rt.submit(the_job, params)
            if cancel_when is not None:
                with anyio.fail_after(10):
                    while not cancel_when.exists():
                        await anyio.sleep(0.01)
                await rt.cancel(run.id, "contract", wait=False)
            with anyio.fail_after(10):
                return await rt.wait(run.id)

    # -- the contract ------------------------------------------------------------

    def test_it_is_an_executor(self, executor: Executor) -> None:
        assert isinstance(executor, Executor)
        assert isinstance(executor.can_interrupt, bool)

    async def test_it_runs_the_functions_it_accepts(self, executor: Executor) -> None:
        functions = self.accepted(executor, "add")
        assert functions, f"{executor!r} accepts neither a sync nor an async function"
        for fn in functions:
            run = await self.run_one(executor, fn, {"a": 2, "b": 3})
            assert run.status is Status.SUCCEEDED, run.error
            assert run.result == 5

    async def test_it_returns_json_results(self, executor: Executor) -> None:
        for fn in self.accepted(executor, "json"):
            run = await self.run_one(executor, fn, {})
            assert run.status is Status.SUCCEEDED, run.error
            assert run.result == contract_json(None)  # type: ignore[arg-type]

    async def test_an_error_keeps_its_type_and_message(self, executor: Executor) -> None:
        for fn in self.accepted(executor, "fail"):
            run = await self.run_one(executor, fn, {"message": "bad device r1 ü"})
            assert run.status is Status.FAILED
            assert run.error is not None
            assert (run.error.kind, run.error.message) == ("error", "bad device r1 ü")
            assert run.error.type.rpartition(".")[2] == "ValueError"

    async def test_a_cancel_is_honoured_as_claimed(
        self, executor: Executor, tmp_path: Path
    ) -> None:
        for i, fn in enumerate(self.accepted(executor, "slow")):
            marker = tmp_path / f"cancel{i}"
            started = Path(f"{marker}.started")
            cut = time.monotonic()
            run = await self.run_one(executor, fn, {"marker": str(marker)}, cancel_when=started)
            self._check_cut(executor, run, marker, cut, Status.CANCELLED)

    async def test_a_timeout_is_honoured_as_claimed(
        self, executor: Executor, tmp_path: Path
    ) -> None:
        for i, fn in enumerate(self.accepted(executor, "slow")):
            marker = tmp_path / f"timeout{i}"
            cut = time.monotonic()
            run = await self.run_one(
                executor, fn, {"marker": str(marker)}, timeout=Timeout(attempt=0.2)
            )
            self._check_cut(executor, run, marker, cut, Status.FAILED)
            assert run.error is not None
            assert run.error.kind == "timeout"

    @staticmethod
    def _check_cut(
        executor: Executor, run: Run, marker: Path, since: float, status: Status
    ) -> None:
        assert run.status is status, run.error
        assert run.result is None
        assert run.error is not None
        finished = Path(f"{marker}.finished")
        if executor.can_interrupt:
            # Stopped: it does not finish, not even later.
            remaining = since + _LOOK + _SLOW - time.monotonic()
            time.sleep(max(remaining, 0))
            assert not finished.exists(), f"{executor!r} claims to interrupt, and did not"
            assert "still running" not in run.error.message
        else:
            assert "still running" in run.error.message, run.error.message
