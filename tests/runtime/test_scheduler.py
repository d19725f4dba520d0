"""The scheduler: each slot fires once across runtimes; catch-up and pause hold."""

from __future__ import annotations

from datetime import timedelta

import pytest

import runlife
from runlife import AsyncRuntime, Cron, Every, InvalidPolicy, RunContext, Status, Trigger
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from .conftest import T0, at

pytestmark = pytest.mark.anyio


@runlife.job(schedule=Cron("*/5 * * * *"))
async def sample(ctx: RunContext, depth: int = 1) -> int:
    return depth


async def scheduled(store: MemoryStore, job: str = "sample") -> list[runlife.Run]:
    page = await store.list_runs(runlife.RunQuery(job=job, trigger=Trigger.SCHEDULED, limit=1000))
    return sorted(page.runs, key=lambda r: r.scheduled_for or T0)


async def test_two_runtimes_fire_each_slot_once(clock: VirtualClock, store: MemoryStore) -> None:
    async with (
        AsyncRuntime(jobs=[sample], store=store, clock=clock, worker_id="one"),
        AsyncRuntime(jobs=[sample], store=store, clock=clock, worker_id="two"),
    ):
        await clock.sleep(30 * 60 + 1)
    runs = await scheduled(store)
    assert [r.scheduled_for for r in runs] == [at(m * 60) for m in range(5, 31, 5)]
    assert all(r.status is Status.SUCCEEDED for r in runs)
    assert all(r.created_at == r.scheduled_for for r in runs)  # on time
    assert (await store.get_job("sample")).last_scheduled_for == at(30 * 60)


async def test_a_schedule_fires_from_when_it_was_first_enabled(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A new schedule has nothing due for the past; its first fire is the next slot."""
    await clock.sleep(7 * 60)  # 02:07: the 02:05 slot passed before any runtime
    async with AsyncRuntime(jobs=[sample], store=store, clock=clock) as rt:
        assert await rt.next_fire(sample) == at(10 * 60)
        await clock.sleep(4 * 60)
    assert [r.scheduled_for for r in await scheduled(store)] == [at(10 * 60)]


async def test_catch_up_latest_fires_the_latest_missed_slot_once(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(jobs=[sample], store=store, clock=clock):
        await clock.sleep(6 * 60)  # fires 02:05
    await clock.sleep(20 * 60)  # 02:26: 02:10 .. 02:25 missed while no runtime ran
    async with AsyncRuntime(jobs=[sample], store=store, clock=clock):
        await clock.sleep(1)
    runs = await scheduled(store)
    assert [r.scheduled_for for r in runs] == [at(5 * 60), at(25 * 60)]
    assert runs[1].created_at == at(26 * 60)


async def test_catch_up_all_fires_every_missed_slot(
    clock: VirtualClock, store: MemoryStore
) -> None:
    every = runlife.job(name="every", schedule=Cron("*/5 * * * *", catch_up="all"))(sample.fn)
    async with AsyncRuntime(jobs=[every], store=store, clock=clock):
        await clock.sleep(6 * 60)
    await clock.sleep(15 * 60)  # 02:21
    async with AsyncRuntime(jobs=[every], store=store, clock=clock):
        await clock.sleep(1)
    fired = [r.scheduled_for for r in await scheduled(store, "every")]
    assert fired == [at(m * 60) for m in (5, 10, 15, 20)]


async def test_a_paused_job_fires_nothing(clock: VirtualClock, store: MemoryStore) -> None:
    none = runlife.job(name="none", schedule=Cron("*/5 * * * *", catch_up="none"))(sample.fn)
    async with AsyncRuntime(jobs=[none], store=store, clock=clock) as rt:
        await clock.sleep(6 * 60)  # 02:05 fires
        await rt.pause(none)
        await clock.sleep(21.5 * 60)  # 02:27:30: 02:25 is later than the 60 s grace
        await rt.unpause(none)
        await clock.sleep(3 * 60)  # 02:30:30: 02:30 fires; the paused slots do not
    assert [r.scheduled_for for r in await scheduled(store, "none")] == [at(300), at(1800)]


async def test_every_fires_on_its_interval(clock: VirtualClock, store: MemoryStore) -> None:
    ticker = runlife.job(name="ticker", schedule=Every(timedelta(seconds=90)))(sample.fn)
    async with AsyncRuntime(jobs=[ticker], store=store, clock=clock):
        await clock.sleep(5 * 60)
    fired = [r.scheduled_for for r in await scheduled(store, "ticker")]
    assert fired == [at(90), at(180), at(270)]


def test_a_schedule_needs_params_with_defaults() -> None:
    with pytest.raises(InvalidPolicy) as caught:

        @runlife.job(schedule=Cron("0 2 * * *"))
        async def backup(ctx: RunContext, devices: list[str]) -> None: ...

    assert caught.value.field == "schedule"
    assert "devices" in str(caught.value)
