"""Runtime: the blocking twin of AsyncRuntime, verb for verb, driven from plain threads,
and stopped gracefully when its ``with`` block ends."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

import runlife
from runlife import (
    AsyncRuntime,
    InvalidPolicy,
    InvalidValue,
    Retry,
    RunContext,
    RunNotFound,
    Runtime,
    Status,
    Trigger,
)
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from .conftest import T0

# -- the twins ----------------------------------------------------------------------


def verbs_of(cls: type) -> dict[str, Callable[..., Any]]:
    """The public methods of *cls*: its verbs."""
    return {
        name: member
        for name, member in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(member)
    }


def blocking_form(signature: inspect.Signature) -> inspect.Signature:
    """An async verb's signature as its blocking twin has it: an async iterator is a
    plain iterator there."""
    returns = signature.return_annotation
    if isinstance(returns, str) and returns.startswith("AsyncIterator["):
        returns = returns.removeprefix("Async")
    return signature.replace(return_annotation=returns)


def test_every_verb_of_async_runtime_has_a_blocking_twin_with_its_signature() -> None:
    """Each public verb of AsyncRuntime exists on Runtime with the same parameters
    (names, kinds, defaults, annotations) and result, is not a coroutine function,
    and says whose twin it is; Runtime has no verb AsyncRuntime lacks."""
    async_verbs, twins = verbs_of(AsyncRuntime), verbs_of(Runtime)
    assert {"submit", "wait", "cancel", "set_policy", "resume", "purge"} <= set(async_verbs)
    missing = sorted(set(async_verbs) - set(twins))
    assert not missing, f"Runtime lacks the blocking twins of {missing}"
    for name, verb in async_verbs.items():
        twin = twins[name]
        assert not inspect.iscoroutinefunction(twin), name
        assert not inspect.isasyncgenfunction(twin), name
        expected = blocking_form(inspect.signature(verb))
        assert inspect.signature(twin) == expected, (
            f"Runtime.{name}{inspect.signature(twin)} differs from "
            f"AsyncRuntime.{name}{inspect.signature(verb)}"
        )
        assert f"`AsyncRuntime.{name}`" in (twin.__doc__ or ""), name
        summary = inspect.cleandoc(verb.__doc__ or "").split("\n\n")[0]
        assert (twin.__doc__ or "").startswith(summary), name
    assert set(twins) == set(async_verbs)


def test_the_constructor_takes_async_runtimes_arguments_and_a_backend() -> None:
    ours = inspect.signature(Runtime).parameters
    theirs = inspect.signature(AsyncRuntime).parameters
    assert list(ours)[: len(theirs)] == list(theirs)
    for name, param in theirs.items():
        assert ours[name] == param, name
    assert list(ours)[len(theirs) :] == ["backend", "backend_options"]


def test_bad_backends_are_refused() -> None:
    with pytest.raises(InvalidPolicy) as caught:
        Runtime(store="memory://", backend="curio")
    assert (caught.value.field, caught.value.value) == ("backend", "curio")
    with pytest.raises(InvalidPolicy) as options:
        Runtime(store="memory://", backend_options=[("debug", True)])  # type: ignore[arg-type]
    assert options.value.field == "backend_options"


# -- running ------------------------------------------------------------------------


@runlife.job(retry=Retry(max_attempts=2, delay=30))
async def flaky(ctx: RunContext, n: int) -> int:
    if ctx.attempt == 1:
        raise ConnectionRefusedError("no route to host")
    return n * 2


@runlife.job
def double(ctx: RunContext, n: int) -> int:
    return n * 2


@runlife.job(name="sync")
async def hangs(ctx: RunContext) -> None:
    await anyio.sleep_forever()


def signals_then_hangs(started: threading.Event) -> runlife.Job:
    """A job that tells the host thread it started, then never ends."""

    @runlife.job(name="sync")
    async def sync(ctx: RunContext) -> None:
        started.set()
        await anyio.sleep_forever()

    return sync


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_sync_host_runs_jobs_and_uses_the_verbs(backend: str) -> None:
    clock = VirtualClock(start=T0)
    store = MemoryStore(clock=clock)
    with Runtime(jobs=[flaky, double, hangs], store=store, clock=clock, backend=backend) as rt:
        run = rt.wait(rt.submit(flaky, params={"n": 21}).id)
        threaded = rt.wait(rt.submit(double, params={"n": 4}).id)
        many = rt.submit_many(double, ({"n": n} for n in range(3)))
        assert [rt.wait(r.id).result for r in many] == [0, 2, 4]
        assert rt.get_run(run.id) == run
        assert [r.id for r in rt.list_runs(job=flaky).runs] == [run.id]
        again = rt.rerun(run.id)
        assert again.trigger is Trigger.RERUN
        cancelled = rt.cancel(rt.submit(hangs).id, reason="not needed")
        resumed = rt.resume(cancelled.id)
        assert rt.cancel(resumed.id).status is Status.CANCELLED
        assert rt.retry(cancelled.id).trigger is Trigger.RETRY
        rt.signal(run.id, "seen", {"by": "ops"})
        assert rt.pause(double).paused is True
        assert rt.unpause("double").paused is False
        spec = rt.set_policy(double, retry=Retry(max_attempts=3))
        assert spec.retry.max_attempts == 3
        with pytest.raises(InvalidValue):
            rt.next_fire(double)  # not scheduled
        with pytest.raises(RunNotFound):
            rt.get_run("no-such-run")
        assert rt.wait(again.id).status is Status.SUCCEEDED
        later = clock.now() + timedelta(seconds=1)
        purged = rt.purge(older_than=later, statuses=["SUCCEEDED"])
        left = {r.status for r in rt.list_runs().runs}
    assert purged == 6  # flaky, its rerun, and the four runs of double
    assert left == {Status.CANCELLED, Status.RUNNING}  # the retried run of hangs runs on
    assert (run.status, run.result) == (Status.SUCCEEDED, 42)
    first, second = run.attempts
    assert first.ended_at is not None
    assert second.started_at - first.ended_at == timedelta(seconds=30)
    assert threaded.result == 8
    assert cancelled.status is Status.CANCELLED
    assert resumed.trigger is Trigger.RESUME
    assert rt.async_runtime.store is store


def test_several_threads_drive_one_runtime_at_once() -> None:
    """Eight plain threads submit, wait and cancel at the same time: each gets its
    own results, and nothing is lost or done twice."""
    clock = VirtualClock(start=T0)
    store = MemoryStore(clock=clock)
    threads = 8
    start = threading.Barrier(threads)
    results: dict[int, tuple[Any, ...]] = {}
    errors: list[BaseException] = []

    def host_thread(rt: Runtime, i: int) -> None:
        try:
            start.wait()
            stuck = rt.submit(hangs, labels={"thread": str(i)})
            first = rt.submit(flaky, params={"n": i}, labels={"thread": str(i)})
            second = rt.submit(double, params={"n": i}, labels={"thread": str(i)})
            cancelled = rt.cancel(stuck.id, reason=f"thread {i} is done with it", by="ops")
            results[i] = (
                rt.wait(first.id).result,
                rt.wait(second.id).result,
                cancelled.status,
                cancelled.error.message if cancelled.error else None,
            )
        except BaseException as exc:  # the test reports it
            errors.append(exc)

    with Runtime(jobs=[flaky, double, hangs], store=store, clock=clock) as rt:
        workers = [threading.Thread(target=host_thread, args=(rt, i)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        runs = rt.list_runs(limit=100).runs
    assert errors == []
    assert results == {
        i: (2 * i, 2 * i, Status.CANCELLED, f"cancelled by ops: thread {i} is done with it")
        for i in range(threads)
    }
    assert len(runs) == 3 * threads
    assert all(run.is_terminal for run in runs)
    by_job = {name: [r for r in runs if r.job == name] for name in ("flaky", "double", "sync")}
    assert [len(by_job[name]) for name in by_job] == [threads] * 3
    assert all(len(r.attempts) == 2 for r in by_job["flaky"])


def test_leaving_the_block_stops_gracefully_and_requeues() -> None:
    """Leaving gives running attempts the grace period, then interrupts them: the run
    goes back to QUEUED without spending its budget; a later runtime runs it."""

    @runlife.job(name="sync")
    async def works(ctx: RunContext) -> str:
        return "synced"

    clock = VirtualClock(start=T0)
    store = MemoryStore(clock=clock)
    started = threading.Event()
    with Runtime(jobs=[signals_then_hangs(started)], store=store, clock=clock, grace=10) as rt:
        run = rt.submit("sync")
        assert started.wait(timeout=10)
    requeued = anyio.run(store.get_run, run.id)
    (attempt,) = requeued.attempts
    assert attempt.ended_at is not None
    assert attempt.ended_at - attempt.started_at >= timedelta(seconds=10)  # the grace
    assert requeued.status is Status.QUEUED
    assert [a.outcome for a in requeued.attempts] == ["interrupted"]
    assert [t.to for t in requeued.history][-2:] == [Status.RETRYING, Status.QUEUED]
    with pytest.raises(RuntimeError, match="not running"):
        rt.get_run(run.id)
    with pytest.raises(RuntimeError, match="entered already"):
        rt.__enter__()

    with Runtime(jobs=[works], store=store, clock=clock) as rt:
        done = rt.wait(run.id)
    assert [a.outcome for a in done.attempts] == ["interrupted", "succeeded"]


def test_leaving_on_an_error_interrupts_at_once_and_raises_it() -> None:
    clock = VirtualClock(start=T0)
    store = MemoryStore(clock=clock)
    started = threading.Event()
    job = signals_then_hangs(started)

    def host() -> None:
        with Runtime(jobs=[job], store=store, clock=clock, grace=3600) as rt:
            rt.submit(job)
            assert started.wait(timeout=10)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        host()
    (run,) = anyio.run(store.list_runs, runlife.RunQuery()).runs
    requeued = anyio.run(store.get_run, run.id)
    (attempt,) = requeued.attempts
    assert attempt.ended_at is not None
    assert attempt.ended_at - attempt.started_at < timedelta(seconds=3600)  # no grace
    assert (requeued.status, attempt.outcome) == (Status.QUEUED, "interrupted")


def test_a_verb_blocked_in_another_thread_ends_when_the_block_is_left() -> None:
    """A thread waiting on a run that will not end raises RuntimeError when the host
    leaves the block; the shutdown does not wait for it."""
    outcome: list[BaseException] = []

    def waiter(rt: Runtime, run_id: str) -> None:
        try:
            rt.wait(run_id)
        except BaseException as exc:  # the test reports it
            outcome.append(exc)

    with Runtime(jobs=[hangs], store="memory://", grace=0) as rt:
        run = rt.submit(hangs)
        thread = threading.Thread(target=waiter, args=(rt, run.id))
        thread.start()
        while not rt._calls:  # until its wait is in progress on the loop
            time.sleep(0.001)
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], RuntimeError)
    assert "stopped while the call was in progress" in str(outcome[0])


def test_a_runtime_whose_store_cannot_open_raises_and_is_closed(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    rt = Runtime(store=f"sqlite:///{blocker / 'runs.db'}")
    with pytest.raises(runlife.RunlifeError):
        rt.__enter__()
    with pytest.raises(RuntimeError, match="not running"):
        rt.get_run("x")


# -- async iterators as plain iterators ----------------------------------------------


def test_an_async_iterator_of_the_runtime_is_a_plain_iterator() -> None:
    """`_iterate` (for verbs that are async iterators) yields every item in the
    calling thread, passes on the iterator's error, and closing it early closes the
    async iterator on the loop before it returns."""
    closed: list[str] = []

    def count(upto: int, fail: bool = False) -> Callable[[], AsyncIterator[int]]:
        async def numbers() -> AsyncIterator[int]:
            try:
                for n in range(upto):
                    await anyio.sleep(0)
                    yield n
                if fail:
                    raise LookupError("no more numbers")
                await anyio.sleep_forever()
            finally:
                closed.append(f"closed after {upto}")

        return numbers

    with Runtime(store="memory://") as rt:
        taken = []
        for n in rt._iterate(count(5)):
            taken.append(n)
            if n == 3:
                break
        assert closed == ["closed after 5"]
        with pytest.raises(LookupError, match="no more numbers"):
            list(rt._iterate(count(2, fail=True)))
        assert closed == ["closed after 5", "closed after 2"]
        pending = rt._iterate(count(1))
        assert next(pending) == 0
    assert taken == [0, 1, 2, 3]
    with pytest.raises(RuntimeError):
        next(pending)  # the runtime stopped under it
    assert closed[-1] == "closed after 1"


def test_job_functions_call_the_verbs_of_their_runtime() -> None:
    """A sync job (in a worker thread) calls the blocking verbs; an async job (on the
    runtime's loop) is told to await the async runtime's verbs instead, and does."""
    holder: dict[str, Runtime] = {}

    @runlife.job
    def child(ctx: RunContext, n: int) -> int:
        return n + 1

    @runlife.job
    def parent(ctx: RunContext) -> int:
        rt = holder["rt"]
        return int(rt.wait(rt.submit(child, params={"n": 1}).id).result)

    @runlife.job
    async def on_the_loop(ctx: RunContext) -> str:
        rt = holder["rt"]
        try:
            rt.get_run(ctx.run_id)
        except RuntimeError as exc:
            message = str(exc)
        run = await rt.async_runtime.get_run(ctx.run_id)
        return f"{run.status}: {message}"

    with Runtime(jobs=[parent, child, on_the_loop], store="memory://") as rt:
        holder["rt"] = rt
        by_thread = rt.wait(rt.submit(parent).id, timeout=30)
        on_loop = rt.wait(rt.submit(on_the_loop).id, timeout=30)
    assert by_thread.result == 2
    assert on_loop.result.startswith("RUNNING: <Runtime ")
    assert "await the verb of rt.async_runtime there instead" in on_loop.result
