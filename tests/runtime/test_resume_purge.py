"""resume (a failed or cancelled run again, as a linked new run) and purge (finished
runs older than a moment, by status, never an active one)."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

import runlife
from runlife import (
    AsyncRuntime,
    InvalidValue,
    RunContext,
    RunNotFound,
    RunQuery,
    Status,
    Trigger,
)
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from .conftest import at

pytestmark = pytest.mark.anyio


async def test_resume_makes_a_linked_new_run_that_runs_everything_again(
    clock: VirtualClock, store: MemoryStore
) -> None:
    calls: list[str] = []

    @runlife.job
    async def deploy(ctx: RunContext, version: str) -> str:
        calls.append(version)
        if len(calls) < 3:
            raise ValueError("bad config")
        return version

    async with AsyncRuntime(jobs=[deploy], store=store, clock=clock) as rt:
        failed = await rt.wait((await rt.submit(deploy, params={"version": "1.2"})).id)
        resumed = await rt.resume(failed.id)
        assert (resumed.trigger, resumed.parent_id, resumed.root_id) == (
            Trigger.RESUME,
            failed.id,
            failed.id,
        )
        failed_again = await rt.wait(resumed.id)
        last = await rt.wait((await rt.resume(failed_again.id)).id)
        with pytest.raises(InvalidValue) as refused:
            await rt.resume(last.id)
        with pytest.raises(RunNotFound):
            await rt.resume("no-such-run")
    assert calls == ["1.2", "1.2", "1.2"]  # each resumed run ran the job from the start
    assert (last.status, last.result, last.trigger) == (Status.SUCCEEDED, "1.2", Trigger.RESUME)
    assert (last.parent_id, last.root_id) == (failed_again.id, failed.id)
    assert refused.value.field == "run_id"
    assert f"run {last.id} is SUCCEEDED" in str(refused.value)


async def test_a_cancelled_run_can_be_resumed(clock: VirtualClock, store: MemoryStore) -> None:
    @runlife.job
    async def sync(ctx: RunContext) -> str:
        return "synced"

    async with AsyncRuntime(store=store, clock=clock) as ops:
        await store.save_job(sync.to_record())
        cancelled = await ops.cancel((await ops.submit("sync")).id)
        async with AsyncRuntime(jobs=[sync], store=store, clock=clock) as rt:
            done = await rt.wait((await ops.resume(cancelled.id)).id)
    assert cancelled.status is Status.CANCELLED
    assert (done.status, done.parent_id) == (Status.SUCCEEDED, cancelled.id)


@runlife.job
async def report(ctx: RunContext, month: str) -> str:
    if month.endswith("-02"):
        raise ValueError(f"no data for {month}")
    return month


@runlife.job(name="forever")
async def forever(ctx: RunContext) -> None:
    await anyio.sleep_forever()


async def test_purge_deletes_finished_runs_older_than_a_moment_or_an_age(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(jobs=[report, forever], store=store, clock=clock) as rt:
        old_ok = await rt.wait((await rt.submit(report, params={"month": "2026-01"})).id)
        old_bad = await rt.wait((await rt.submit(report, params={"month": "2026-02"})).id)
        running = await rt.submit(forever)
        await clock.sleep(120)
        new_ok = await rt.wait((await rt.submit(report, params={"month": "2026-03"})).id)
        assert await rt.purge(older_than=at(60)) == 2
        left = {run.id for run in (await rt.list_runs()).runs}
        assert await rt.purge(older_than=timedelta(seconds=30)) == 0  # ended at 120
        await clock.sleep(60)
        assert await rt.purge(older_than=timedelta(seconds=30)) == 1
        assert [run.id for run in (await rt.list_runs()).runs] == [running.id]
        await rt.cancel(running.id)
    assert (old_ok.ended_at, old_bad.ended_at, new_ok.ended_at) == (at(0), at(0), at(120))
    assert left == {running.id, new_ok.id}  # the running run was never a candidate


async def test_purge_by_status_keeps_the_others(clock: VirtualClock, store: MemoryStore) -> None:
    async with AsyncRuntime(jobs=[report], store=store, clock=clock) as rt:
        ok = await rt.wait((await rt.submit(report, params={"month": "2026-01"})).id)
        bad = await rt.wait((await rt.submit(report, params={"month": "2026-02"})).id)
        await clock.sleep(120)
        assert await rt.purge(older_than=timedelta(seconds=60), statuses=["FAILED"]) == 1
        assert await rt.get_run(ok.id) == ok
        with pytest.raises(RunNotFound):
            await rt.get_run(bad.id)
        assert await store.count_runs(RunQuery()) == {Status.SUCCEEDED: 1}


@pytest.mark.parametrize(
    ("kwargs", "value"),
    [
        ({"older_than": timedelta(days=-1)}, timedelta(days=-1)),
        ({"older_than": "yesterday"}, "yesterday"),
        ({"older_than": timedelta(0), "statuses": [Status.RUNNING]}, Status.RUNNING),
        ({"older_than": timedelta(0), "statuses": "FAILED"}, "FAILED"),
        ({"older_than": timedelta(0), "statuses": ["LOST"]}, "LOST"),
    ],
)
async def test_purge_refuses_bad_arguments_naming_them(
    clock: VirtualClock, store: MemoryStore, kwargs: dict[str, object], value: object
) -> None:
    async with AsyncRuntime(jobs=[report], store=store, clock=clock) as rt:
        done = await rt.wait((await rt.submit(report, params={"month": "2026-01"})).id)
        await clock.sleep(60)
        with pytest.raises(InvalidValue) as refused:
            await rt.purge(**kwargs)  # type: ignore[arg-type]
        assert refused.value.value == value
        assert refused.value.field in ("older_than", "statuses")
        assert await rt.get_run(done.id) == done  # nothing was deleted
