"""The worker: attempts run, are cut at their deadlines, retried by policy, and recorded."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import anyio
import pytest
from structlog.testing import capture_logs

import runlife
from runlife import (
    DEFAULT_LIFECYCLE,
    AsyncRuntime,
    Cron,
    Retry,
    RunContext,
    Status,
    Timeout,
    Trigger,
)
from runlife._runtime.jobs import to_cancelled
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from .conftest import T0, at

pytestmark = pytest.mark.anyio


async def hang(ctx: RunContext) -> None:
    await anyio.sleep_forever()


async def test_the_retry_timeline(clock: VirtualClock, store: MemoryStore) -> None:
    """Retry(3, delay=60) with Timeout(attempt=300) on a job that always hangs:
    attempts at 02:00, 02:06, 02:12, each cut at +300 s, FAILED at 02:17 with kind
    timeout, in well under a second of real time."""
    nightly = runlife.job(
        name="nightly_backup",
        retry=Retry(max_attempts=3, delay=60),
        timeout=Timeout(attempt=300),
    )(hang)
    started = time.perf_counter()
    async with AsyncRuntime(jobs=[nightly], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(nightly)).id)
    wall = time.perf_counter() - started

    assert run.status is Status.FAILED
    assert run.error is not None
    assert run.error.kind == "timeout"
    assert run.ended_at == at(17 * 60)
    assert [a.started_at for a in run.attempts] == [at(0), at(6 * 60), at(12 * 60)]
    assert [a.ended_at for a in run.attempts] == [at(5 * 60), at(11 * 60), at(17 * 60)]
    assert [a.outcome for a in run.attempts] == ["timeout"] * 3
    assert run.error.message == "attempt 3 exceeded its timeout of 300 s"
    assert [t.to for t in run.history] == [
        Status.QUEUED,
        *[Status.RUNNING, Status.RETRYING, Status.QUEUED] * 2,
        Status.RUNNING,
        Status.FAILED,
    ]
    assert wall < 1.0, f"17 virtual minutes took {wall:.2f} s of real time"


async def test_the_retry_timeline_keeps_its_schedule(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """With schedule=Cron("0 2 * * *"), the failed run leaves the schedule enabled
    and its next fire where it was: the next day at 02:00, when it fires."""
    schedule = Cron("0 2 * * *")
    nightly = runlife.job(
        name="nightly_backup",
        retry=Retry(max_attempts=3, delay=60),
        timeout=Timeout(attempt=300),
        schedule=schedule,
    )(hang)
    tomorrow = datetime(2026, 3, 11, 2, 0, tzinfo=UTC)
    # A long poll and lease: a virtual day passes in few steps.
    async with AsyncRuntime(jobs=[nightly], store=store, clock=clock, poll=900, lease=3600) as rt:
        assert await rt.next_fire(nightly) == tomorrow
        run = await rt.wait((await rt.submit(nightly)).id)
        assert run.status is Status.FAILED
        assert run.error is not None
        assert run.error.kind == "timeout"
        assert run.ended_at == at(17 * 60)
        assert [a.started_at for a in run.attempts] == [at(0), at(6 * 60), at(12 * 60)]
        assert not (await store.get_job("nightly_backup")).paused
        assert await rt.next_fire(nightly) == tomorrow
        await clock.sleep_until(tomorrow)
        await clock.sleep(1)
        page = await rt.list_runs(job=nightly, trigger=Trigger.SCHEDULED)
    assert [r.scheduled_for for r in page.runs] == [tomorrow]
    assert page.runs[0].attempts[0].started_at == tomorrow


async def test_success_records_the_result(clock: VirtualClock, store: MemoryStore) -> None:
    @runlife.job
    async def add(ctx: RunContext, a: int, b: int) -> dict[str, int]:
        await clock.sleep(30)
        return {"sum": a + b}

    async with AsyncRuntime(jobs=[add], store=store, clock=clock) as rt:
        submitted = await rt.submit(add, params={"a": 2, "b": 3})
        assert submitted.status is Status.QUEUED
        run = await rt.wait(submitted.id)
    assert run.status is Status.SUCCEEDED
    assert run.result == {"sum": 5}
    assert run.error is None
    assert run.started_at == T0
    assert run.ended_at == at(30)
    assert [(a.number, a.outcome) for a in run.attempts] == [(1, "succeeded")]


async def test_a_failing_function_is_retried_then_fails_with_its_traceback(
    clock: VirtualClock, store: MemoryStore
) -> None:
    calls: list[int] = []

    @runlife.job(retry=Retry(max_attempts=2, delay=10))
    async def flaky(ctx: RunContext) -> None:
        calls.append(ctx.attempt)
        raise ConnectionRefusedError(f"no route to host (attempt {ctx.attempt})")

    async with AsyncRuntime(jobs=[flaky], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(flaky)).id)
    assert calls == [1, 2]
    assert run.status is Status.FAILED
    assert run.error is not None
    assert run.error.kind == "error"
    assert run.error.type == "ConnectionRefusedError"
    assert run.error.message == "no route to host (attempt 2)"
    assert run.error.traceback is not None
    assert "in flaky" in run.error.traceback
    assert "ConnectionRefusedError: no route to host (attempt 2)" in run.error.traceback
    assert [a.started_at for a in run.attempts] == [at(0), at(10)]
    assert [a.outcome for a in run.attempts] == ["error", "error"]


async def test_give_up_on_fails_at_once(clock: VirtualClock, store: MemoryStore) -> None:
    @runlife.job(retry=Retry(max_attempts=5, delay=10, give_up_on=(PermissionError,)))
    async def denied(ctx: RunContext) -> None:
        raise PermissionError("read-only device")

    async with AsyncRuntime(jobs=[denied], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(denied)).id)
    assert run.status is Status.FAILED
    assert run.attempt == 1
    assert "matches give_up_on" in (run.history[-1].reason or "")


async def test_a_result_that_is_not_json_fails_the_attempt(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job
    async def odd(ctx: RunContext) -> object:
        return {"when": object()}

    async with AsyncRuntime(jobs=[odd], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(odd)).id)
    assert run.status is Status.FAILED
    assert run.error is not None
    assert run.error.type == "NotSerializable"
    assert "result['when']" in run.error.message


async def test_sync_jobs_run_on_threads(clock: VirtualClock, store: MemoryStore) -> None:
    import threading

    loop_thread = threading.get_ident()

    @runlife.job
    def where(ctx: RunContext, n: int) -> dict[str, object]:
        time.sleep(0.01)
        return {"n": n, "on_loop": threading.get_ident() == loop_thread}

    async with AsyncRuntime(jobs=[where], store=store, clock=clock) as rt:
        runs = await rt.submit_many(where, [{"n": n} for n in range(4)])
        done = [await rt.wait(r.id) for r in runs]
    assert [r.result for r in done] == [{"n": n, "on_loop": False} for n in range(4)]
    # In virtual time a thread takes no time: the clock did not move under it.
    assert all(r.duration is not None and r.duration.total_seconds() == 0 for r in done)


async def test_concurrency_bounds_the_runs_held_at_once(
    clock: VirtualClock, store: MemoryStore
) -> None:
    running: list[int] = []
    peak = 0

    @runlife.job
    async def slow(ctx: RunContext, n: int) -> int:
        nonlocal peak
        running.append(n)
        peak = max(peak, len(running))
        await clock.sleep(60)
        running.remove(n)
        return n

    async with AsyncRuntime(jobs=[slow], store=store, clock=clock, concurrency=2) as rt:
        runs = await rt.submit_many(slow, [{"n": n} for n in range(5)])
        done = [await rt.wait(r.id) for r in runs]
    assert peak == 2
    assert [r.status for r in done] == [Status.SUCCEEDED] * 5
    assert sorted(r.started_at for r in done if r.started_at) == [
        at(0),
        at(0),
        at(60),
        at(60),
        at(120),
    ]


async def test_limits_max_concurrency_holds(clock: VirtualClock, store: MemoryStore) -> None:
    @runlife.job(limits=runlife.Limits(per_label={"device": 1}))
    async def change(ctx: RunContext) -> None:
        await clock.sleep(60)

    async with AsyncRuntime(jobs=[change], store=store, clock=clock) as rt:
        a = await rt.submit(change, labels={"device": "core-rtr-01"})
        b = await rt.submit(change, labels={"device": "core-rtr-01"})
        c = await rt.submit(change, labels={"device": "core-rtr-02"})
        done = {r.id: await rt.wait(r.id) for r in (a, b, c)}
    assert done[a.id].started_at == at(0)
    assert done[c.id].started_at == at(0)
    assert done[b.id].started_at == at(60)


async def test_an_attempt_at_its_run_deadline_fails_without_retry(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """Timeout(run=...) cuts the attempt at the run's deadline; no retry starts past it."""

    @runlife.job(retry=Retry(max_attempts=5, delay=30), timeout=Timeout(attempt=100, run=150))
    async def stuck(ctx: RunContext) -> None:
        await anyio.sleep_forever()

    async with AsyncRuntime(jobs=[stuck], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(stuck)).id)
    assert run.status is Status.FAILED
    assert run.error is not None
    assert run.error.kind == "timeout"
    assert run.error.message == "the run exceeded its timeout of 150 s"
    assert [a.started_at for a in run.attempts] == [at(0), at(130)]
    assert run.ended_at == at(150)


async def test_heartbeat_silence_cuts_the_attempt_as_abandoned(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """With Timeout(heartbeat=60), a job must call ctx.heartbeat() at least every 60 s."""
    beats: list[datetime] = []

    @runlife.job(timeout=Timeout(heartbeat=60))
    async def chatty(ctx: RunContext) -> None:
        for _ in range(3):
            await clock.sleep(50)
            ctx.heartbeat()
            beats.append(clock.now())
        await anyio.sleep_forever()  # then silent

    async with AsyncRuntime(jobs=[chatty], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(chatty)).id)
    assert beats == [at(50), at(100), at(150)]
    assert run.status is Status.FAILED
    assert run.error is not None
    assert run.error.kind == "abandoned"
    assert run.error.type == "HeartbeatTimeout"
    assert run.ended_at == at(210)


async def test_cancelling_a_running_async_attempt(clock: VirtualClock, store: MemoryStore) -> None:
    cleaned: list[datetime] = []

    @runlife.job(retry=Retry(max_attempts=3, delay=0))
    async def long(ctx: RunContext) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cleaned.append(clock.now())

    async with AsyncRuntime(jobs=[long], store=store, clock=clock) as rt:
        run = await rt.submit(long)
        await clock.sleep(90)
        assert (await rt.get_run(run.id)).status is Status.RUNNING
        cancelled = await rt.cancel(run.id, reason="change window closed", by="ops:ana")
    assert cleaned == [at(90)]
    assert cancelled.status is Status.CANCELLED
    assert cancelled.ended_at == at(90)
    assert cancelled.error is not None
    assert cancelled.error.kind == "cancelled"
    assert cancelled.error.message == "cancelled by ops:ana: change window closed"
    assert [a.outcome for a in cancelled.attempts] == ["cancelled"]


async def test_warnings_are_kept_with_the_run(clock: VirtualClock, store: MemoryStore) -> None:
    @runlife.job
    async def careful(ctx: RunContext) -> str:
        ctx.warn("core-rtr-02 answered slowly")
        return "ok"

    async with AsyncRuntime(jobs=[careful], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(careful)).id)
    assert run.status is Status.SUCCEEDED
    assert run.has_warnings
    assert run.warnings == ("core-rtr-02 answered slowly",)


async def test_items_fail_run_applies_to_the_items_a_run_saved(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """The outcome of a run whose items partly failed follows ``items_fail_run``,
    naming the failed items."""
    from runlife import Item

    async def with_items(ctx: RunContext) -> None:
        for key, status in (("a", Status.SUCCEEDED), ("b", Status.FAILED)):
            await store.save_item(Item(run_id=ctx.run_id, key=key, status=status))

    lenient = runlife.job(name="lenient")(with_items)
    strict = runlife.job(name="strict", items_fail_run=0)(with_items)
    async with AsyncRuntime(jobs=[lenient, strict], store=store, clock=clock) as rt:
        ok = await rt.wait((await rt.submit(lenient)).id)
        bad = await rt.wait((await rt.submit(strict)).id)
    assert ok.status is Status.SUCCEEDED
    assert ok.warnings == ("1 of 2 items failed: b",)
    assert bad.status is Status.FAILED
    assert bad.error is not None
    assert (bad.error.kind, bad.error.message) == ("items", "1 of 2 items failed: b")


async def test_a_queued_false_job_starts_running_at_submit(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job(queued=False)
    async def promote(ctx: RunContext) -> str:
        await clock.sleep(5)
        return "promoted"

    async with AsyncRuntime(jobs=[promote], store=store, clock=clock) as rt:
        run = await rt.submit(promote)
        assert run.status is Status.RUNNING
        done = await rt.wait(run.id)
    assert done.status is Status.SUCCEEDED
    assert [t.to for t in done.history] == [Status.RUNNING, Status.SUCCEEDED]


async def test_a_stale_worker_is_refused(clock: VirtualClock, store: MemoryStore) -> None:
    """A worker whose run was taken from it (another writer ended it without its
    claim: the hold is gone) writes nothing: its next heartbeat finds the lease
    gone, stops the attempt and says the run was cancelled elsewhere."""
    stopped: list[datetime] = []

    @runlife.job
    async def held(ctx: RunContext) -> str:
        try:
            await anyio.sleep_forever()
        finally:
            stopped.append(clock.now())
        return "never"

    with capture_logs() as logs:
        async with AsyncRuntime(jobs=[held], store=store, clock=clock, lease=30) as rt:
            run = await rt.submit(held)
            await clock.sleep(1)
            running = await store.get_run(run.id)
            cancelled = await store.update_run(
                to_cancelled(running, DEFAULT_LIFECYCLE, at=clock.now(), message="cancelled by x"),
                expected_version=running.version,
            )
            await clock.sleep(20)
            final = await rt.get_run(run.id)
    assert stopped == [at(10)]  # the first heartbeat after the cancel
    assert final == cancelled
    assert final.error is not None
    assert final.error.message == "cancelled by x"
    said = [e for e in logs if e["event"].startswith("the run was cancelled elsewhere")]
    assert [(e["log_level"], e["run_id"]) for e in said] == [("info", run.id)]
