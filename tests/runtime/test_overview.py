"""The operators' reads (summary, list_jobs, explain) and a runtime opened only to
read and act (``serve=False``), in virtual time over one MemoryStore."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import anyio
import pytest

import runlife
from runlife import (
    DEFAULT_LIFECYCLE,
    AsyncRuntime,
    Cron,
    Limits,
    Retry,
    RunContext,
    Runtime,
    Status,
    Timeout,
    Trigger,
    Workflow,
)
from runlife.exceptions import InvalidValue, RunNotFound
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from .conftest import T0, at

pytestmark = pytest.mark.anyio


@runlife.job(limits=Limits(max_concurrency=1, per_label={"device": 1}))
async def sync_devices(ctx: RunContext) -> None:
    await anyio.sleep_forever()


@runlife.job(retry=Retry(max_attempts=2, delay=60))
async def flaky(ctx: RunContext) -> None:
    raise ConnectionError("no route to host")


@runlife.job
async def approve(ctx: RunContext) -> str:
    payload = await ctx.wait_for("approved")
    return str(payload)


@runlife.job(schedule=Cron("0 2 * * *"))
async def nightly_backup(ctx: RunContext) -> str:
    return "ok"


# -- serve=False ---------------------------------------------------------------------


async def test_an_operators_runtime_starts_nothing_and_writes_no_job(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """serve=False saves no job record and claims nothing: a QUEUED run stays QUEUED
    while time passes; its verbs still act (cancel of a QUEUED run, pause)."""
    async with AsyncRuntime(jobs=[nightly_backup], store=store, clock=clock) as host:
        queued = await host.submit(nightly_backup)
        await host.wait(queued.id)
    assert [j.name for j in await store.list_jobs()] == ["nightly_backup"]
    async with AsyncRuntime(jobs=[sync_devices], store=store, clock=clock, serve=False) as ops:
        assert [j.name for j in await store.list_jobs()] == ["nightly_backup"]
        run = await ops.submit("nightly_backup")
        await clock.sleep(600)
        assert (await ops.get_run(run.id)).status is Status.QUEUED
        cancelled = await ops.cancel(run.id, "not tonight", by="ops:ana")
        assert cancelled.status is Status.CANCELLED
        assert (await ops.pause("nightly_backup")).paused
        again = await ops.retry(cancelled.id)
        assert (again.trigger, again.parent_id, again.status) == (
            Trigger.RETRY,
            cancelled.id,
            Status.QUEUED,
        )
        assert (await ops.rerun(queued.id)).trigger is Trigger.RERUN
        assert (await ops.resume(cancelled.id)).trigger is Trigger.RESUME
    with pytest.raises(runlife.InvalidPolicy):
        AsyncRuntime(store=store, serve="no")  # type: ignore[arg-type]


async def test_an_operators_runtime_cancels_a_run_held_by_a_serving_one(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A cancel from serve=False reaches the RUNNING run held by another runtime
    through the stored request, within one heartbeat round (lease 30: 10 s)."""
    async with AsyncRuntime(jobs=[sync_devices], store=store, clock=clock, lease=30) as host:
        run = await host.submit(sync_devices)
        await clock.sleep(1)
        async with AsyncRuntime(store=store, clock=clock, serve=False) as ops:
            done = await ops.cancel(run.id, by="ops:ana")
            assert clock.now() == at(10)
    assert done.status is Status.CANCELLED
    assert done.error is not None
    assert done.error.message == "cancelled by ops:ana"


async def test_an_operators_runtime_signals_and_purges(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(jobs=[approve], store=store, clock=clock) as host:
        run = await host.submit(approve)
        await clock.sleep(1)
        async with AsyncRuntime(store=store, clock=clock, serve=False) as ops:
            await ops.signal(run.id, "approved", {"by": "ana"})
        assert (await host.wait(run.id)).result == "{'by': 'ana'}"
    clock.advance(timedelta(days=91).total_seconds())
    async with AsyncRuntime(store=store, clock=clock, serve=False) as ops:
        assert await ops.purge(older_than=timedelta(days=90)) == 1
        with pytest.raises(RunNotFound):
            await ops.get_run(run.id)


def test_the_blocking_twin_opens_an_operators_runtime(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ops.db"
    with Runtime(jobs=[nightly_backup], store=url) as host:
        run = host.wait(host.submit(nightly_backup).id)
    with Runtime(store=url, serve=False) as ops:
        rows = ops.list_jobs()
        assert [(r.name, r.last_success and r.last_success.id) for r in rows] == [
            ("nightly_backup", run.id)
        ]
        assert ops.summary().counts == {Status.SUCCEEDED: 1}
        assert ops.explain(run.id).why == "finished"


# -- summary -------------------------------------------------------------------------


async def test_summary_counts_the_window_and_names_what_needs_a_look(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """Counts are of runs created in the window; the oldest running run, the runs
    past a time limit and the runs whose lease lapsed are of the store now."""
    hangs_job = runlife.job(name="hangs", timeout=Timeout(run=300))(sync_devices.fn)
    async with AsyncRuntime(jobs=[flaky, hangs_job], store=store, clock=clock) as host:
        failed = await host.submit(flaky)
        await clock.sleep(30)
        assert (await host.get_run(failed.id)).status is Status.RETRYING
    # A run held by a worker that was lost: its lease lapses, nobody cuts it.
    async with AsyncRuntime(store=store, clock=clock, serve=False) as ops:
        lost = await ops.submit("hangs")
        (claim,) = await store.claim("lost-worker", {"hangs": DEFAULT_LIFECYCLE}, limit=1, lease=30)
        assert claim.run_id == lost.id
        clock.advance(400)  # 02:07:10: lease lapsed, past its 300 s run limit
        summary = await ops.summary()
        assert dict(summary.counts) == {Status.RUNNING: 1, Status.RETRYING: 1}
        assert summary.oldest_running is not None
        assert summary.oldest_running.id == lost.id
        assert [(o.run.id, o.deadline.kind) for o in summary.overdue] == [(lost.id, "run")]
        assert [r.id for r in summary.stalled] == [lost.id]
        assert not summary.healthy
        later = await ops.summary(since=at(31))
        assert later.total == 0
        assert later.since == at(31)
        with pytest.raises(InvalidValue) as bad:
            await ops.summary(since=at(60), until=at(30))
        assert bad.value.field == "until"


# -- jobs ----------------------------------------------------------------------------


async def test_list_jobs_gives_schedule_next_fire_last_outcomes_and_running(
    clock: VirtualClock, store: MemoryStore
) -> None:
    jobs = [nightly_backup, flaky, sync_devices]
    async with AsyncRuntime(jobs=jobs, store=store, clock=clock) as host:
        ok = await host.wait((await host.submit(nightly_backup)).id)
        bad = await host.wait((await host.submit(flaky)).id)
        await host.submit(sync_devices, labels={"device": "a"})
        await host.submit(sync_devices, labels={"device": "b"})
        await clock.sleep(1)
        rows = {row.name: row for row in await host.list_jobs()}
        assert list(rows) == ["flaky", "nightly_backup", "sync_devices"]
        backup = rows["nightly_backup"]
        assert backup.schedule == Cron("0 2 * * *")
        assert backup.next_fire == T0 + timedelta(days=1)
        assert backup.next_fire == await host.next_fire(nightly_backup)
        assert backup.last_success is not None
        assert backup.last_success.id == ok.id
        assert rows["flaky"].last_failure is not None
        assert rows["flaky"].last_failure.id == bad.id
        assert rows["flaky"].schedule is None
        assert rows["flaky"].next_fire is None
        assert (rows["sync_devices"].running, rows["sync_devices"].queued) == (1, 1)
        await host.pause(nightly_backup)
        paused = {row.name: row for row in await host.list_jobs()}["nightly_backup"]
        assert (paused.paused, paused.next_fire) == (True, None)


# -- explain -------------------------------------------------------------------------


async def test_explain_names_the_full_limit(clock: VirtualClock, store: MemoryStore) -> None:
    async with AsyncRuntime(jobs=[sync_devices], store=store, clock=clock) as host:
        first = await host.submit(sync_devices, labels={"device": "core-rtr-01"})
        await clock.sleep(1)
        second = await host.submit(sync_devices, labels={"device": "core-rtr-02"})
        why = await host.explain(second.id)
        assert (why.why, why.limit, why.status) == ("limit", "max_concurrency", Status.QUEUED)
        assert "max_concurrency of 1 (1 run running)" in why.message
        running = await host.explain(first.id)
        assert running.why == "running"
        assert "attempt 1 started at 2026-03-10 02:00:00 UTC" in str(running)
        await host.set_policy(sync_devices, limits=Limits(per_label={"device": 1}))
        third = await host.submit(sync_devices, labels={"device": "core-rtr-01"})
        await clock.sleep(1)
        assert (await host.get_run(third.id)).status is Status.QUEUED
        per_label = await host.explain(third.id)
        assert (per_label.why, per_label.limit) == ("limit", "per_label[device]")
        assert "device=core-rtr-01 has 1 running" in per_label.message


async def test_explain_retrying_scheduled_waiting_and_finished(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(jobs=[flaky, approve], store=store, clock=clock) as host:
        retrying = await host.submit(flaky)
        later = await host.submit(approve, at=at(3600))
        waiting = await host.submit(approve)
        await clock.sleep(1)
        why = await host.explain(retrying.id)
        assert (why.why, why.until) == ("retrying", at(60))
        assert "attempt 1 failed (error: no route to host); attempt 2 is due at" in why.message
        scheduled = await host.explain(later.id)
        assert (scheduled.why, scheduled.until) == ("scheduled", at(3600))
        wait = await host.explain(waiting.id)
        assert (wait.why, wait.signal) == ("waiting", "approved")
        assert f"runlife signal {waiting.id} approved" in wait.message
        done = await host.wait(retrying.id)
        finished = await host.explain(done.id)
        assert finished.why == "finished"
        assert finished.message.endswith(
            "it ended FAILED at 2026-03-10 02:01:00 UTC: no route to host"
        )
        await host.cancel(waiting.id)
        await host.cancel(later.id)


async def test_explain_a_stalled_run_and_a_queued_one_nobody_claims(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(store=store, clock=clock, serve=False) as ops:
        await store.save_job(sync_devices.to_record())
        queued = await ops.submit("sync_devices")
        assert (await ops.explain(queued.id)).why == "queued"
        await store.claim("lost-worker", {"sync_devices": DEFAULT_LIFECYCLE}, limit=1, lease=30)
        clock.advance(31)
        stalled = await ops.explain(queued.id)
        assert stalled.why == "stalled"
        assert "lease lapsed by store time" in stalled.message
        with pytest.raises(RunNotFound):
            await ops.explain("no-such-run")


async def test_explain_a_workflow_run_names_the_upstream_and_its_status(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job(name="Generate_Invoice")
    async def generate(ctx: RunContext) -> None:
        await anyio.sleep_forever()

    @runlife.job(name="Send_Email_Invoice")
    async def send(ctx: RunContext) -> None:
        return None

    billing = Workflow("billing", {generate: [], send: [generate]})
    async with AsyncRuntime(workflows=[billing], store=store, clock=clock) as host:
        run = await host.submit(billing)
        await clock.sleep(1)
        why = await host.explain(run.id)
        assert why.why == "running"
        assert [(n.node, n.verdict, n.waiting_on) for n in why.nodes] == [
            ("Send_Email_Invoice", "waiting", ("Generate_Invoice",))
        ]
        assert "running: Generate_Invoice (RUNNING)" in why.message
        assert why.message.endswith("Send_Email_Invoice is waiting on Generate_Invoice (RUNNING)")
        await host.cancel(run.id)
