"""Hooks: told of every move the runtime stores, in order, after it is stored; a
failing or hanging hook is logged and cut, and never holds up a run."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import attrs
import pytest
from structlog.testing import capture_logs

import runlife
from runlife import (
    DEFAULT_LIFECYCLE,
    AsyncRuntime,
    ConcurrentUpdate,
    InvalidPolicy,
    Retry,
    Run,
    RunContext,
    Status,
    Transition,
)
from runlife._core.spec import JobSpec
from runlife._runtime.guard import StoreGuard
from runlife._runtime.hooks import HookRunner
from runlife._runtime.jobs import to_queue
from runlife.abc import Hooks
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from .conftest import T0, at
from .test_lifecycle_walks import TASKS

pytestmark = pytest.mark.anyio


class Record(Hooks):
    """Writes down each call, with the clock's time and what the store has then."""

    def __init__(self, clock: VirtualClock, store: MemoryStore | None = None) -> None:
        self.clock = clock
        self.store = store
        self.calls: list[tuple[Any, ...]] = []
        self.stored_first = True

    async def _seen(self, run: Run) -> None:
        if self.store is not None:
            stored = await self.store.get_run(run.id)
            self.stored_first &= stored.version >= run.version

    async def on_transition(self, run: Run, transition: Transition) -> None:
        await self._seen(run)
        self.calls.append((str(transition.from_), str(transition.to), transition.reason))

    async def on_success(self, run: Run) -> None:
        self.calls.append(("success", run.result))

    async def on_failure(self, run: Run) -> None:
        assert run.error is not None
        self.calls.append(("failure", run.error.kind))

    async def on_retry(self, run: Run) -> None:
        self.calls.append(("retry", run.attempt, run.due_at))


class Plain:
    """A hook that is no `Hooks` subclass, with plain methods (called in a thread)."""

    def __init__(self) -> None:
        self.moves: list[tuple[str, str]] = []
        self.threads: set[int] = set()

    def on_transition(self, run: Run, transition: Transition) -> None:
        self.threads.add(threading.get_ident())
        self.moves.append((str(transition.from_), str(transition.to)))


@runlife.job(retry=Retry(max_attempts=2, delay=30))
async def flaky(ctx: RunContext) -> int:
    if ctx.attempt == 1:
        raise ConnectionRefusedError("no route to host")
    return ctx.attempt


async def test_every_move_of_a_retried_run_reaches_the_hooks_in_order(
    clock: VirtualClock, store: MemoryStore
) -> None:
    record, plain = Record(clock, store), Plain()
    async with AsyncRuntime(
        jobs=[flaky], store=store, clock=clock, hooks=[record, plain], worker_id="w1"
    ) as rt:
        run = await rt.wait((await rt.submit(flaky)).id)
    failed = "attempt 1 of 2 failed (error ConnectionRefusedError); retrying in 30 s"
    assert record.calls == [
        ("PENDING", "QUEUED", "submitted (adhoc)"),
        ("QUEUED", "RUNNING", "claimed by w1"),
        ("RUNNING", "RETRYING", failed),
        ("retry", 1, at(30)),
        ("RETRYING", "QUEUED", "retry delay over"),
        ("QUEUED", "RUNNING", "claimed by w1"),
        ("RUNNING", "SUCCEEDED", "attempt 2 succeeded"),
        ("success", 2),
    ]
    assert [(t.from_, t.to, t.reason) for t in run.history] == [
        c for c in record.calls if len(c) == 3 and c[0] not in ("retry", "success")
    ]
    assert record.stored_first, "a hook heard of a move before the store had it"
    assert plain.moves == [(str(t.from_), str(t.to)) for t in run.history]
    assert threading.get_ident() not in plain.threads, "a plain hook ran on the event loop"
    assert rt.hooks.dropped == 0


async def test_each_step_of_a_walk_is_told_with_the_run_its_write_stored(
    clock: VirtualClock, store: MemoryStore
) -> None:
    runs: list[tuple[str, int]] = []

    class Walks(Hooks):
        def on_transition(self, run: Run, transition: Transition) -> None:
            runs.append((transition.to, run.version))

    @runlife.job(lifecycle=TASKS)
    async def promote(ctx: RunContext) -> None:
        await ctx.set_state("RUNNING")

    async with AsyncRuntime(jobs=[promote], store=store, clock=clock, hooks=[Walks()]) as rt:
        run = await rt.wait((await rt.submit(promote)).id)
    assert [t.to for t in run.history] == ["ACTIVE", "TRIGGER", "STARTED", "RUNNING", "SUCCESS"]
    # Created at version 0 with its first move; the claim is one write of two moves.
    assert runs == [("ACTIVE", 0), ("TRIGGER", 2), ("STARTED", 2), ("RUNNING", 3), ("SUCCESS", 4)]


async def test_hooks_hear_of_the_mover_the_reaper_and_cancel_but_not_of_others(
    clock: VirtualClock, store: MemoryStore
) -> None:
    record = Record(clock)
    by_run: dict[str, list[tuple[Any, ...]]] = {}

    class ByRun(Hooks):
        def on_transition(self, run: Run, transition: Transition) -> None:
            by_run.setdefault(run.id, []).append((str(transition.from_), str(transition.to)))

        def on_failure(self, run: Run) -> None:
            assert run.error is not None
            by_run.setdefault(run.id, []).append(("failure", run.error.kind))

    @runlife.job
    async def report(ctx: RunContext) -> str:
        return "done"

    async with AsyncRuntime(
        jobs=[report], store=store, clock=clock, hooks=[ByRun(), record], worker_id="w1"
    ) as rt:
        later = await rt.submit(report, at=at(600))
        await store.save_job(runlife.JobRecord(name="elsewhere"))
        waiting = await store.create_run(Run.create(job="elsewhere", at=T0, initial="QUEUED"))
        cancelled = await rt.cancel(waiting.id, reason="not needed")
        lost = await store.create_run(Run.create(job="elsewhere", at=T0, initial="QUEUED"))
        await store.claim("lost-worker", {"elsewhere": DEFAULT_LIFECYCLE}, limit=1, lease=30)
        reaped = await rt.wait(lost.id)
        done = await rt.wait(later.id)
    assert cancelled.status is Status.CANCELLED
    assert (reaped.status, done.result) == (Status.FAILED, "done")
    assert by_run == {
        later.id: [("PENDING", "QUEUED"), ("QUEUED", "RUNNING"), ("RUNNING", "SUCCEEDED")],
        waiting.id: [("QUEUED", "CANCELLED")],
        lost.id: [("RUNNING", "FAILED"), ("failure", "abandoned")],  # not the lost claim
    }


async def test_a_failing_hook_is_logged_and_the_next_hook_still_hears(
    clock: VirtualClock, store: MemoryStore
) -> None:
    class Broken(Hooks):
        def on_transition(self, run: Run, transition: Transition) -> None:
            raise RuntimeError("pager service down")

        async def on_success(self, run: Run) -> None:
            raise KeyError(run.id)

    @runlife.job
    async def report(ctx: RunContext) -> str:
        return "done"

    record = Record(clock)
    with capture_logs() as logs:
        async with AsyncRuntime(
            jobs=[report], store=store, clock=clock, hooks=[Broken(), record]
        ) as rt:
            run = await rt.wait((await rt.submit(report)).id)
    assert (run.status, run.result) == (Status.SUCCEEDED, "done")
    assert await store.get_run(run.id) == run
    assert [c[:2] for c in record.calls] == [
        ("PENDING", "QUEUED"),
        ("QUEUED", "RUNNING"),
        ("RUNNING", "SUCCEEDED"),
        ("success", "done"),
    ]
    failures = [e for e in logs if e["event"] == "hook failed"]
    assert [(e["hook"], e["call"], e["run_id"], e["log_level"]) for e in failures] == [
        (f"{Broken.__qualname__}", "on_transition", run.id, "error"),
        (f"{Broken.__qualname__}", "on_transition", run.id, "error"),
        (f"{Broken.__qualname__}", "on_transition", run.id, "error"),
        (f"{Broken.__qualname__}", "on_success", run.id, "error"),
    ]
    assert all(e["exc_info"] is True and e["job"] == "report" for e in failures)


async def test_a_hanging_hook_is_cut_at_its_timeout_and_holds_up_no_run(
    clock: VirtualClock, store: MemoryStore
) -> None:
    class Hangs(Hooks):
        async def on_transition(self, run: Run, transition: Transition) -> None:
            await anyio.sleep_forever()

    heard: list[tuple[str, object]] = []

    class When(Hooks):
        def on_transition(self, run: Run, transition: Transition) -> None:
            heard.append((str(transition.to), clock.now()))

    @runlife.job
    async def report(ctx: RunContext) -> str:
        return "done"

    with capture_logs() as logs:
        async with AsyncRuntime(
            jobs=[report], store=store, clock=clock, hooks=[Hangs(), When()], hook_timeout=5
        ) as rt:
            run = await rt.wait((await rt.submit(report)).id)
            assert clock.now() == T0, "the run waited for its hooks"
            await clock.sleep(60)
    assert run.ended_at == T0
    assert heard == [("QUEUED", at(5)), ("RUNNING", at(10)), ("SUCCEEDED", at(15))]
    cut = [e for e in logs if e["event"] == "hook timed out"]
    assert [(e["hook"], e["call"], e["timeout"], e["log_level"]) for e in cut] == [
        (Hangs.__qualname__, "on_transition", 5.0, "warning")
    ] * 3


async def test_a_hook_still_busy_at_shutdown_is_given_its_timeout_then_dropped(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """Leaving the runtime gives the queued notices hook_timeout seconds in all."""

    class Hangs(Hooks):
        async def on_transition(self, run: Run, transition: Transition) -> None:
            await anyio.sleep_forever()

    @runlife.job
    async def report(ctx: RunContext) -> str:
        return "done"

    with capture_logs() as logs:
        async with AsyncRuntime(
            jobs=[report], store=store, clock=clock, hooks=[Hangs()], hook_timeout=5
        ) as rt:
            await rt.wait((await rt.submit(report)).id)
            await clock.sleep(2)  # leaving at 02:00:02; the first call was cut at :05
    assert clock.now() == at(7)
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "hook timed out",
        "hooks stopped with notices undelivered",
    ]


async def test_an_interrupted_attempt_is_told_as_moves_and_not_as_a_retry(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job(retry=Retry(max_attempts=3, delay=60))
    async def hangs(ctx: RunContext) -> None:
        await anyio.sleep_forever()

    record = Record(clock)
    async with AsyncRuntime(
        jobs=[hangs], store=store, clock=clock, hooks=[record], grace=0, worker_id="w1"
    ) as rt:
        await rt.submit(hangs)
        await clock.sleep(1)
    assert [c[:2] for c in record.calls] == [
        ("PENDING", "QUEUED"),
        ("QUEUED", "RUNNING"),
        ("RUNNING", "RETRYING"),
        ("RETRYING", "QUEUED"),
    ]


async def test_a_plain_hook_that_blocks_is_cut_in_real_time() -> None:
    """A thread cannot be interrupted: the runner stops waiting at the timeout, logs
    that the thread is still running, and goes on to the next call."""
    release = threading.Event()
    told: list[str] = []

    class Blocks:
        def on_transition(self, run: Run, transition: Transition) -> None:
            told.append(str(transition.to))
            release.wait(5)

    @runlife.job
    async def report(ctx: RunContext) -> str:
        return "done"

    try:
        with capture_logs() as logs:
            async with AsyncRuntime(
                jobs=[report], store="memory://", hooks=[Blocks()], hook_timeout=0.05
            ) as rt:
                run = await rt.wait((await rt.submit(report)).id)
                with anyio.fail_after(5):
                    while len(told) < 3:
                        await anyio.sleep(0.01)
    finally:
        release.set()
    assert run.status is Status.SUCCEEDED
    assert told == ["QUEUED", "RUNNING", "SUCCEEDED"]
    cut = [e for e in logs if e["event"].startswith("hook timed out")]
    assert cut[0]["event"] == "hook timed out; its thread is still running"
    assert cut[0]["timeout"] == 0.05


async def test_a_full_queue_drops_new_notices_and_says_so() -> None:
    """The deliverer is busy with the first notice: two more wait, the rest are
    dropped, counted and logged once; the log says when notices flow again."""
    clock = VirtualClock(start=T0, autojump=False)
    gate = anyio.Event()
    reached = {f"job{i}": anyio.Event() for i in range(6)}

    class Slow(Hooks):
        async def on_transition(self, run: Run, transition: Transition) -> None:
            reached[run.job].set()
            await gate.wait()

    runner = HookRunner([Slow()], clock, timeout=60, capacity=2)
    runs = [
        DEFAULT_LIFECYCLE.transition(Run.create(job=f"job{i}", at=T0), Status.QUEUED, at=T0)
        for i in range(6)
    ]
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(runner.serve)
            runner.tell(runs[0], runs[0].history)
            await reached["job0"].wait()
            for run in runs[1:5]:
                runner.tell(run, run.history)  # job1 and job2 wait; job3 and job4 find it full
            gate.set()
            await reached["job2"].wait()
            runner.tell(runs[5], runs[5].history)
            await runner.drain()
    assert [job for job, event in reached.items() if event.is_set()] == [
        "job0",
        "job1",
        "job2",
        "job5",
    ]
    assert runner.dropped == 2
    assert [(e["event"], e.get("run_id"), e.get("dropped")) for e in logs] == [
        ("hooks are behind: notices are dropped until they catch up", runs[3].id, None),
        ("hooks caught up", None, 2),
    ]


class Nothing(Hooks):
    """A `Hooks` subclass that overrides nothing: there is nothing to call."""


@pytest.mark.parametrize(
    ("hooks", "timeout", "field", "expected"),
    [
        ([object()], 10, "hooks[0]", "an object with at least one of on_transition, on_success"),
        ("on_failure", 10, "hooks[0]", "an object with at least one of"),
        (Record, 10, "hooks", "an iterable of hooks: hooks=[hook]"),
        ([Plain(), Nothing()], 10, "hooks[1]", "an object with at least one of"),
        ([Plain()], 0, "hook_timeout", "seconds > 0"),
        ([Plain()], True, "hook_timeout", "seconds > 0"),
    ],
)
async def test_bad_hooks_are_refused_naming_them(
    hooks: Any, timeout: Any, field: str, expected: str
) -> None:
    if hooks is Record:
        hooks = Record(VirtualClock(start=T0))
    with pytest.raises(InvalidPolicy) as caught:
        AsyncRuntime(store="memory://", hooks=hooks, hook_timeout=timeout)
    assert caught.value.field == field
    assert expected in str(caught.value)


async def test_the_guard_tells_of_stored_writes_only(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """The one place that tells: each stored write with its own moves; a refused
    write, or a create that found its run already there, tells nothing."""
    told: list[tuple[str, ...]] = []

    def on_moves(run: Run, moves: tuple[Transition, ...]) -> None:
        told.append((run.id[-4:], *(f"{t.from_}>{t.to}" for t in moves)))

    guard = StoreGuard(store, clock, on_moves=on_moves)
    new = to_queue(Run.create(job="backup", at=T0), JobSpec(), at=T0, reason="new", new=True)
    run = await guard.create_run(new)
    key = Run.create(job="backup", at=T0, initial="QUEUED", idempotency_key="k")
    await guard.create_run(key)
    assert (await guard.create_run(attrs.evolve(key, id="other"))).id == key.id
    (claim,) = await guard.claim("w1", {"backup": DEFAULT_LIFECYCLE}, limit=1, lease=30)
    assert claim.run_id == run.id
    stale = DEFAULT_LIFECYCLE.transition(run, Status.CANCELLED, at=T0)
    with pytest.raises(ConcurrentUpdate):
        await guard.update_run(stale, expected_version=run.version)
    done = DEFAULT_LIFECYCLE.transition(claim.run, Status.SUCCEEDED, at=T0)
    await guard.update_run(done, expected_version=claim.run.version, claim=claim)
    rid = run.id[-4:]
    assert told == [
        (rid, "PENDING>QUEUED"),
        (rid, "QUEUED>RUNNING"),
        (rid, "RUNNING>SUCCEEDED"),
    ]


class Warned(Hooks):
    """Writes down the status calls, with the run's warnings for on_warning."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def on_success(self, run: Run) -> None:
        self.calls.append(("success", run.id))

    async def on_failure(self, run: Run) -> None:
        self.calls.append(("failure", run.id))

    def on_warning(self, run: Run) -> None:  # a plain one, in a thread
        self.calls.append(("warning", run.id, run.status, run.warnings))


async def test_on_warning_follows_on_success_of_a_run_that_succeeded_with_warnings(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job
    async def report(ctx: RunContext, stale: bool) -> None:
        if stale:
            ctx.log.warning("dashboard stale", dashboard="capacity")

    @runlife.job
    async def boom(ctx: RunContext) -> None:
        ctx.log.warning("about to fail")
        raise ValueError("bad config")

    hook = Warned()
    async with AsyncRuntime(jobs=[report, boom], store=store, clock=clock, hooks=[hook]) as rt:
        warned = await rt.wait((await rt.submit(report, {"stale": True})).id)
        clean = await rt.wait((await rt.submit(report, {"stale": False})).id)
        failed = await rt.wait((await rt.submit(boom)).id)
    assert warned.warnings == ("attempt 1 logged 1 warning",)
    assert hook.calls == [
        ("success", warned.id),
        ("warning", warned.id, Status.SUCCEEDED, ("attempt 1 logged 1 warning",)),
        ("success", clean.id),
        ("failure", failed.id),
    ]


async def test_a_hook_with_only_on_warning_is_accepted() -> None:
    class OnlyWarning:
        def on_warning(self, run: Run) -> None:
            pass

    runner = HookRunner([OnlyWarning()], VirtualClock(start=T0))
    assert set(runner.hooks[0].calls) == {"on_warning"}
