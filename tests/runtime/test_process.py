"""The process executor: attempts in real child processes, which a cut really stops.

The jobs live in `process_jobs`, a module a child imports by name. A test that
needs a child to be running waits for the pid file the job writes first; a test
that a child is gone checks that its pid no longer exists.
"""

from __future__ import annotations

import functools
import os
import sys
import time
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

import runlife
from runlife import AsyncRuntime, InvalidPolicy, NotSerializable, RunContext, Status, SystemClock
from runlife.abc import Executor
from runlife.exceptions import AttemptFailed
from runlife.executors import ProcessExecutor
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from . import process_jobs as jobs
from .conftest import at

pytestmark = pytest.mark.anyio


def gone(pid: int) -> bool:
    """Whether no process has *pid* (a child that was waited for is gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def pid_in(path: Path) -> int:
    """The pid a job wrote to *path*, once it has (the child is running its job)."""
    with anyio.fail_after(30):
        while not path.exists():
            await anyio.sleep(0.01)
    return int(path.read_text())


def files(tmp_path: Path) -> dict[str, str]:
    return {"pidfile": str(tmp_path / "pid"), "cleaned": str(tmp_path / "cleaned")}


# -- the executor and what it accepts ------------------------------------------------


def test_the_process_executor_is_an_executor_that_can_interrupt() -> None:
    executor = ProcessExecutor(max_processes=3, grace=0.5)
    assert isinstance(executor, Executor)
    assert executor.can_interrupt is True
    assert repr(executor) == "ProcessExecutor(max_processes=3, grace=0.5)"
    assert ProcessExecutor().max_processes == (os.cpu_count() or 1)
    with pytest.raises(InvalidPolicy, match=r"max_processes=0 is invalid: expected an int >= 1"):
        ProcessExecutor(max_processes=0)
    with pytest.raises(InvalidPolicy, match=r"grace=-1 is invalid: expected seconds >= 0"):
        ProcessExecutor(grace=-1)


def make_nested() -> Callable[..., Any]:
    def inner(ctx: RunContext) -> None: ...

    return inner


def test_a_function_a_child_cannot_import_is_refused_with_the_job_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = "define it at the top level of a module (or of the main script)"
    with pytest.raises(InvalidPolicy) as lambda_error:
        runlife.job(lambda ctx: 1, name="anon", executor="process")
    assert str(lambda_error.value) == (
        "executor='process' is invalid: expected a function a child process can import "
        "by name, for job 'anon': its function test_a_function_a_child_cannot_import_is_"
        f"refused_with_the_job_named.<locals>.<lambda> is a lambda; {expected}"
    )
    with pytest.raises(InvalidPolicy) as nested_error:
        runlife.job(make_nested(), executor=ProcessExecutor(max_processes=1))
    assert str(nested_error.value) == (
        "executor=ProcessExecutor(max_processes=1, grace=5) is invalid: expected a function "
        "a child process can import by name, for job 'inner': its function "
        f"make_nested.<locals>.inner is defined inside make_nested() (a nested function); "
        f"{expected}"
    )

    namespace: dict[str, Any] = {"__name__": "typed_in"}
    exec("def typed(ctx): ...", namespace)
    with pytest.raises(InvalidPolicy, match="'typed_in', which is not a module imported by name"):
        runlife.job(namespace["typed"], executor="process")

    with pytest.raises(InvalidPolicy, match=r"has no module and qualified name \(a functools"):
        runlife.job(functools.partial(jobs.square.fn, n=1), name="part", executor="process")

    # A function of __main__ with no file: an interactive session or python -c.
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    exec("def typed(ctx): ...", main := {"__name__": "__main__"})
    with pytest.raises(InvalidPolicy, match=r"'typed': its function typed comes from __main__, "):
        runlife.job(main["typed"], executor="process")
    assert not ProcessExecutor().accepts(main["typed"])
    assert ProcessExecutor().accepts(jobs.square.fn)
    assert ProcessExecutor().accepts(jobs.square_async.fn)


def test_a_runtime_running_sync_jobs_in_processes_refuses_one_a_child_cannot_import() -> None:
    nested = runlife.job(make_nested())
    with pytest.raises(InvalidPolicy, match=r"for job 'inner': its function make_nested"):
        AsyncRuntime(jobs=[nested], store="memory://", executor="process")
    AsyncRuntime(jobs=[nested], store="memory://")  # threads need no import


# -- attempts in children ----------------------------------------------------------


async def test_a_child_returns_its_result_in_no_virtual_time(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A child's attempt takes no virtual time (it is busy on the clock); its warning
    and its log line reach the parent, and the child is gone when the run ends."""
    async with AsyncRuntime(jobs=[jobs.square], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(jobs.square, params={"n": 7})).id)
        logs = (await rt.logs(run.id)).lines
    assert run.status is Status.SUCCEEDED
    assert run.result["square"] == 49
    assert (run.result["run_id"], run.result["params"]) == (run.id, {"n": 7})
    pid = run.result["pid"]
    assert pid != os.getpid()
    assert gone(pid)
    assert run.warnings == ("squaring 7 at attempt 1",)
    assert (run.attempts[0].started_at, run.attempts[0].ended_at) == (at(0), at(0))
    assert [(line.stream, line.level, line.message, line.fields) for line in logs] == [
        ("log", "info", "squared", {"n": 7, "run": run.id}),
    ]
    assert (logs[0].run_id, logs[0].attempt, logs[0].at) == (run.id, 1, at(0))


async def test_an_async_function_runs_in_the_child(clock: VirtualClock, store: MemoryStore) -> None:
    async with AsyncRuntime(jobs=[jobs.square_async], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(jobs.square_async, params={"n": 12})).id)
    assert (run.status, run.result) == (Status.SUCCEEDED, 144)


class Recorder:
    """A context that records what the child relays to it."""

    def __init__(self) -> None:
        self.run_id, self.job, self.attempt = "r1", "square", 4
        self.said: list[Any] = []
        outer = self

        class Log:
            def __getattr__(self, level: str) -> Callable[..., None]:
                return lambda event, **fields: outer.said.append((level, event, fields))

        self.log = Log()

    def warn(self, message: str) -> None:
        self.said.append(("warn", message))

    def heartbeat(self) -> None:
        self.said.append("beat")


class Call:
    def __init__(self, fn: Callable[..., Any], ctx: Any, params: Mapping[str, Any]) -> None:
        self.fn, self.ctx, self.params = fn, ctx, params

    def __call__(self) -> Any:
        return self.fn(self.ctx, **self.params)


async def test_the_child_relays_warn_heartbeat_and_log_to_the_parent_context() -> None:
    ctx = Recorder()
    result = await ProcessExecutor().run(Call(jobs.square.fn, ctx, {"n": 3}), clock=SystemClock())
    assert result["square"] == 9
    assert ctx.said == [
        ("warn", "squaring 3 at attempt 4"),
        "beat",
        ("info", "squared", {"n": 3, "run": "r1"}),
    ]


async def test_a_raising_child_is_retried_by_its_exceptions_qualified_name(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """Unreachable (the tests' own class) and ConnectionRefusedError (a builtin
    OSError) are retried; PermissionError, an OSError too, is in give_up_on."""
    async with AsyncRuntime(jobs=[jobs.flaky], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(jobs.flaky)).id)
    assert run.status is Status.FAILED
    errors = [attempt.error for attempt in run.attempts]
    assert [(e.kind, e.type, e.message) for e in errors if e is not None] == [
        ("error", "Unreachable", "no route to core-rtr-01"),
        ("error", "ConnectionRefusedError", "core-rtr-01 refused"),
        ("error", "PermissionError", "denied on core-rtr-01"),
    ]
    first = errors[0]
    assert first is not None
    assert first.traceback is not None
    assert 'raise Unreachable("no route to core-rtr-01")' in first.traceback
    assert "process_jobs.py" in first.traceback
    assert first.traceback.endswith("Unreachable: no route to core-rtr-01\n")
    assert [a.started_at for a in run.attempts] == [at(0), at(30), at(60)]
    assert run.history[-1].reason == (
        "attempt 3 of 5 failed (error PermissionError); PermissionError matches give_up_on"
    )


async def test_a_timeout_kills_a_child_stuck_in_sleep(tmp_path: Path) -> None:
    """In real time: the child gets SIGTERM at the 3 s deadline (a deadline the
    child's start-up fits in on a busy machine), its finally block runs (it sees
    ctx.cancelled), and the run ends once the child is gone."""
    paths = files(tmp_path)
    async with AsyncRuntime(jobs=[jobs.sleeps], store="memory://", grace=0) as rt:
        started = time.monotonic()
        run = await rt.wait((await rt.submit(jobs.sleeps, params=paths)).id)
        took = time.monotonic() - started
    assert run.status is Status.FAILED
    assert run.error is not None
    assert (run.error.kind, run.error.message) == (
        "timeout",
        "attempt 1 exceeded its timeout of 3 s",
    )
    assert gone(int(Path(paths["pidfile"]).read_text()))
    assert Path(paths["cleaned"]).read_text() == "cancelled=True"
    assert 3 <= took < 6


async def test_cancel_kills_a_running_child(
    clock: VirtualClock, store: MemoryStore, tmp_path: Path
) -> None:
    """The cancel verb returns once the child is gone (its timeout, virtual, never
    comes: time stands still while the child works)."""
    paths = files(tmp_path)
    async with AsyncRuntime(jobs=[jobs.sleeps], store=store, clock=clock) as rt:
        run = await rt.submit(jobs.sleeps, params=paths)
        pid = await pid_in(Path(paths["pidfile"]))
        cancelled = await rt.cancel(run.id, reason="operator")
        assert gone(pid)
    assert cancelled.status is Status.CANCELLED
    assert cancelled.error is not None
    assert (cancelled.error.kind, cancelled.error.message) == (
        "cancelled",
        f"cancelled by {rt.worker_id}: operator",
    )
    assert Path(paths["cleaned"]).read_text() == "cancelled=True"


async def test_a_child_that_ignores_sigterm_is_killed_after_its_grace(
    clock: VirtualClock, store: MemoryStore, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    async with AsyncRuntime(jobs=[jobs.stubborn], store=store, clock=clock) as rt:
        run = await rt.submit(jobs.stubborn, params={"pidfile": str(pidfile)})
        pid = await pid_in(pidfile)
        started = time.monotonic()
        cancelled = await rt.cancel(run.id)
        took = time.monotonic() - started
        assert gone(pid)
    assert cancelled.status is Status.CANCELLED
    assert 0.2 <= took < 5


async def test_a_shutdown_interrupts_a_child_and_requeues_its_run(
    clock: VirtualClock, store: MemoryStore, tmp_path: Path
) -> None:
    paths = files(tmp_path)
    async with AsyncRuntime(jobs=[jobs.sleeps], store=store, clock=clock, grace=0) as rt:
        run = await rt.submit(jobs.sleeps, params=paths)
        pid = await pid_in(Path(paths["pidfile"]))
    assert gone(pid)
    requeued = await store.get_run(run.id)
    assert requeued.status is Status.QUEUED
    assert [a.outcome for a in requeued.attempts] == ["interrupted"]


PARENT = """
import importlib, sys, anyio, runlife
jobs = importlib.import_module(sys.argv[1])

async def main():
    async with runlife.AsyncRuntime(jobs=[jobs.stubborn], store="memory://") as rt:
        await rt.submit(jobs.stubborn, params={"pidfile": sys.argv[2]})
        await anyio.sleep_forever()

anyio.run(main)
"""


def ended(pid: int) -> bool:
    """Whether *pid* has ended: gone, or a zombie that its new parent has not reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


async def test_a_child_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL of the host leaves no child behind, even one that ignores SIGTERM:
    the child ends when its pipe from the parent closes."""
    pidfile = tmp_path / "pid"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-c", PARENT, jobs.__name__, str(pidfile)]
    async with await anyio.open_process(command, env=env, stdout=None, stderr=None) as parent:
        pid = await pid_in(pidfile)
        parent.kill()
        await parent.wait()
    with anyio.fail_after(10):
        while not ended(pid):
            await anyio.sleep(0.01)


async def test_a_child_that_exits_without_a_result_fails_its_attempt(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(jobs=[jobs.dies], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(jobs.dies)).id)
    assert run.error is not None
    assert (run.status, run.error.type) == (Status.FAILED, "ChildProcessError")
    assert run.error.message.startswith("the child process (pid ")
    assert run.error.message.endswith(
        ") of attempt 1 exited with code 3 before it returned a result"
    )


async def test_a_result_that_is_not_json_fails_the_attempt(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(jobs=[jobs.not_json], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(jobs.not_json)).id)
    assert run.error is not None
    assert (run.status, run.error.type) == (Status.FAILED, "NotSerializable")
    assert run.error.message.startswith("result['at'] is not JSON-serialisable: datetime ")


async def test_params_that_are_not_json_are_refused_at_submit(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(jobs=[jobs.square], store=store, clock=clock) as rt:
        with pytest.raises(NotSerializable, match=r"^params\['n'\] is not JSON-serialisable: set"):
            await rt.submit(jobs.square, params={"n": {1, 2}})
        assert (await rt.list_runs()).runs == ()


async def test_a_function_the_child_cannot_find_by_name_fails_its_attempt(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(jobs=[jobs.lost], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(jobs.lost)).id)
    assert run.error is not None
    module = jobs.__name__
    assert (run.error.type, run.error.message) == (
        "ImportError",
        f"job function moved_away of {module} cannot be imported in a child process: "
        f"AttributeError: module '{module}' has no attribute 'moved_away'",
    )


async def test_max_processes_bounds_the_children_at_once() -> None:
    one = ProcessExecutor(max_processes=1)
    spans: list[tuple[float, float]] = []

    async def attempt(n: int) -> None:
        started, ended = await one.run(
            Call(jobs.naps.fn, Recorder(), {"n": n}), clock=SystemClock()
        )
        spans.append((started, ended))

    async with anyio.create_task_group() as tg:
        for n in range(2):
            tg.start_soon(attempt, n)
    first, second = sorted(spans)
    assert first[1] <= second[0]


async def test_an_executor_error_carries_the_childs_error_info() -> None:
    with pytest.raises(AttemptFailed) as raised:
        await ProcessExecutor().run(Call(jobs.flaky.fn, Recorder(), {}), clock=SystemClock())
    error = raised.value.error
    assert (error.kind, error.type, error.message) == (
        "error",
        "PermissionError",
        "denied on core-rtr-01",
    )
    assert str(raised.value) == "PermissionError: denied on core-rtr-01"


# -- items in children ---------------------------------------------------------------


async def test_a_childs_items_are_the_runs_items(clock: VirtualClock, store: MemoryStore) -> None:
    """Four items in a child, one raising: the run SUCCEEDED with a warning, 3 of
    4 succeeded, the failure recorded with the child's error; each item's log
    lines and prints carry its key."""
    devices = ["rtr-1", "rtr-2", "rtr-3", "rtr-4"]
    async with AsyncRuntime(jobs=[jobs.backs_up], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(jobs.backs_up, params={"devices": devices})).id)
        items = await rt.items(run.id)
        logs = (await rt.logs(run.id)).lines
    assert (run.status, run.result) == (Status.SUCCEEDED, 4)
    assert run.has_warnings
    assert run.warnings == ("1 of 4 items failed: rtr-3",)
    assert (run.progress.total, run.progress.succeeded, run.progress.failed) == (4, 3, 1)
    assert [(i.key, i.phase, i.status, i.output) for i in items] == [
        ("rtr-1", "backup", Status.SUCCEEDED, {"bytes": 1005}),
        ("rtr-2", "backup", Status.SUCCEEDED, {"bytes": 1005}),
        ("rtr-3", "backup", Status.FAILED, None),
        ("rtr-4", "backup", Status.SUCCEEDED, {"bytes": 1005}),
    ]
    failed = items[2]
    assert failed.error is not None
    assert (failed.error.type, failed.error.message) == ("Unreachable", "no route to rtr-3")
    assert failed.error.traceback is not None
    assert "backs_up" in failed.error.traceback
    assert all(i.started_at == i.ended_at == at(0) and i.attempts == 1 for i in items)
    assert [(line.item, line.stream, line.message) for line in logs] == [
        (d, stream, text)
        for d in devices
        for stream, text in (("log", "backing up"), ("stdout", f"config of {d}"))
    ]
    assert all(line.fields == {"host": line.item} for line in logs if line.stream == "log")


async def test_an_async_childs_items_skip_and_refuse_output_that_is_not_json(
    clock: VirtualClock, store: MemoryStore
) -> None:
    devices = ["rtr-1", "rtr-2", "rtr-4"]
    async with AsyncRuntime(jobs=[jobs.backs_up_async], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(jobs.backs_up_async, params={"devices": devices})).id)
        items = await rt.items(run.id)
    assert run.status is Status.SUCCEEDED
    assert [(i.key, i.status, i.output) for i in items] == [
        ("rtr-1", Status.SUCCEEDED, "RTR-1"),
        ("rtr-2", Status.FAILED, None),
        ("rtr-4", Status.SKIPPED, None),
    ]
    assert items[1].error is not None
    assert items[1].error.type == "NotSerializable"
    assert items[2].reason == "decommissioned"


async def test_a_resumed_childs_items_that_succeeded_before_are_skipped(
    clock: VirtualClock, store: MemoryStore
) -> None:
    devices = ["rtr-1", "rtr-3", "rtr-5"]
    async with AsyncRuntime(jobs=[jobs.backs_up_strict], store=store, clock=clock) as rt:
        submitted = await rt.submit(jobs.backs_up_strict, params={"devices": devices})
        first = await rt.wait(submitted.id)
        again = await rt.wait((await rt.resume(first.id)).id)
        items = await rt.items(again.id)
    assert first.status is Status.FAILED
    assert again.status is Status.FAILED  # rtr-3 is still unreachable
    assert [(i.key, i.status, i.output) for i in items] == [
        ("rtr-1", Status.SKIPPED, {"bytes": 1005}),
        ("rtr-3", Status.FAILED, None),
        ("rtr-5", Status.SKIPPED, {"bytes": 1005}),
    ]
    assert items[0].reason == f"succeeded in run {first.id}, which this run resumes"
