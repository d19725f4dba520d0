"""The plugin's fixtures: a runtime in virtual time, its jobs from the marker or a
fixture, its store from the marker or ``--runlife-store``; and `immediate`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

import runlife
from runlife import AsyncRuntime, Cron, Retry, RunContext, Status, Timeout
from runlife.testing import VirtualClock, immediate

pytestmark = pytest.mark.anyio

clocks: list[VirtualClock] = []


@runlife.job(retry=Retry(max_attempts=3, delay=60))
async def flaky(ctx: RunContext) -> int:
    if ctx.attempt < 3:
        raise ConnectionError(f"attempt {ctx.attempt}: device unreachable")
    return ctx.attempt


@runlife.job(retry=Retry(max_attempts=3, delay=60), timeout=Timeout(attempt=300, heartbeat=90))
async def hang_after_beats(ctx: RunContext) -> None:
    while True:  # beats every minute: alive for its heartbeat timeout, not its attempt's
        ctx.heartbeat()
        await clocks[-1].sleep(60)  # the test's clock


@pytest.fixture
def runlife_clock() -> VirtualClock:
    """The plugin's clock, remembered for the jobs that wait on it."""
    clocks.append(VirtualClock(start=datetime(2026, 3, 10, 2, 0, tzinfo=UTC)))
    return clocks[-1]


@runlife.job
async def add(ctx: RunContext, a: int, b: int) -> int:
    return a + b


@pytest.mark.runlife(jobs=[flaky])
async def test_the_runtime_fixture_lives_in_virtual_time(
    runlife_runtime: AsyncRuntime, runlife_clock: VirtualClock
) -> None:
    start = runlife_clock.now()
    started = time.perf_counter()
    run = await runlife_runtime.wait((await runlife_runtime.submit(flaky)).id)
    assert run.status is Status.SUCCEEDED
    assert run.result == 3
    assert [(a.started_at - start).total_seconds() for a in run.attempts] == [0, 60, 120]
    assert time.perf_counter() - started < 1


@pytest.mark.runlife(jobs=[hang_after_beats])
async def test_the_17_minute_retry_timeline_with_heartbeats_runs_in_well_under_a_second(
    runlife_runtime: AsyncRuntime, runlife_clock: VirtualClock
) -> None:
    """Three attempts that beat for three minutes, then fall silent: each is cut by
    its heartbeat timeout two minutes after its last beat (at 5 min), retried a
    minute later; FAILED at 17 minutes."""
    start = runlife_clock.now()
    started = time.perf_counter()
    run = await runlife_runtime.wait((await runlife_runtime.submit(hang_after_beats)).id)
    wall = time.perf_counter() - started
    minutes = [(a.started_at - start).total_seconds() / 60 for a in run.attempts]
    assert run.status is Status.FAILED
    assert minutes == [0, 6, 12]
    assert run.ended_at is not None
    assert (run.ended_at - start).total_seconds() == 17 * 60
    assert {a.outcome for a in run.attempts} == {"timeout"}
    assert wall < 1, f"{wall:.2f} s of wall time"


class TestJobsFromAFixture:
    """A ``runlife_jobs`` fixture (here a class's; often a conftest's) gives the jobs."""

    @pytest.fixture
    def runlife_jobs(self) -> Sequence[runlife.Job]:
        return [add]

    async def test_the_runtime_has_them(self, runlife_runtime: AsyncRuntime) -> None:
        run = await runlife_runtime.submit(add, {"a": 2, "b": 3})
        assert (await runlife_runtime.wait(run.id)).result == 5


@pytest.mark.runlife(jobs=[flaky], store="sqlite:///{tmp}/runs.db")
async def test_the_marker_names_the_store(runlife_runtime: AsyncRuntime) -> None:
    assert type(runlife_runtime.store).__name__ == "SQLiteStore"
    run = await runlife_runtime.wait((await runlife_runtime.submit(flaky)).id)
    assert (run.status, run.attempt) == (Status.SUCCEEDED, 3)


async def test_immediate_retries_at_once_in_real_time() -> None:
    started = time.perf_counter()
    with immediate():
        async with AsyncRuntime(jobs=[flaky], store="memory://") as rt:
            run = await rt.wait((await rt.submit(flaky)).id, timeout=5)
    assert (run.status, run.attempt) == (Status.SUCCEEDED, 3)
    assert time.perf_counter() - started < 2
    assert Retry(delay=60).next_delay(1) == 60


nightly: list[str] = []


@runlife.job(schedule=Cron("0 2 * * *"))
async def nightly_report(ctx: RunContext) -> None:
    nightly.append(ctx.run_id)


async def test_immediate_fires_a_schedule_s_next_slot_at_once(runlife_immediate: None) -> None:
    async with AsyncRuntime(jobs=[nightly_report], store="memory://", poll=0.05) as rt:
        for _ in range(100):
            page = await rt.list_runs(job="nightly_report")
            if page.runs and page.runs[0].is_terminal:
                break
            await anyio_sleep(0.02)
    assert len(page.runs) == 1
    run = page.runs[0]
    assert run.status is Status.SUCCEEDED
    assert run.scheduled_for is not None
    assert run.scheduled_for.hour == 2


async def anyio_sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)
