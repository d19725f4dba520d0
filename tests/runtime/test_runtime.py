"""AsyncRuntime: its verbs, submit by name across runtimes, quotas, graceful shutdown."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

import runlife
from runlife import (
    AsyncRuntime,
    InvalidPolicy,
    InvalidValue,
    JobNotFound,
    Limits,
    NotSerializable,
    Quota,
    QuotaExceeded,
    Retry,
    RunContext,
    RunNotFound,
    Status,
    Trigger,
)
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from .conftest import T0, at

pytestmark = pytest.mark.anyio


@runlife.job(retry=Retry(max_attempts=2, delay=0), labels={"kind": "backup"})
async def backup(ctx: RunContext, devices: list[str], dry_run: bool = False) -> dict[str, int]:
    return {"devices": len(devices)}


async def test_submit_wait_get_and_list(clock: VirtualClock, store: MemoryStore) -> None:
    async with AsyncRuntime(jobs=[backup], store=store, clock=clock) as rt:
        run = await rt.submit(
            backup, params={"devices": ["core-rtr-01", "core-rtr-02"]}, labels={"site": "dc1"}
        )
        assert run.job == "backup"
        assert run.trigger is Trigger.ADHOC
        assert run.labels == {"kind": "backup", "site": "dc1"}
        done = await rt.wait(run.id)
        assert done == await rt.get_run(run.id)
        page = await rt.list_runs(job=backup, status=Status.SUCCEEDED, labels={"site": "dc1"})
        assert [r.id for r in page.runs] == [run.id]
        assert (await rt.list_runs(status=[Status.FAILED])).runs == ()
    assert done.status is Status.SUCCEEDED
    assert done.result == {"devices": 2}


async def test_entering_saves_each_jobs_record(clock: VirtualClock, store: MemoryStore) -> None:
    limited = runlife.job(
        name="limited", limits=Limits(max_concurrency=2, per_label={"device": 1})
    )(backup.fn)
    async with AsyncRuntime(jobs=[backup, limited], store=store, clock=clock):
        record = await store.get_job("limited")
    assert record.max_concurrency == 2
    assert record.per_label == {"device": 1}
    assert runlife.JobSpec.from_spec(record.spec) == limited.spec


async def test_submit_by_name_from_a_runtime_without_the_job(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A second runtime on the same store, which does not import the job, submits it
    by name; the runtime that has it runs it."""
    async with (
        AsyncRuntime(jobs=[backup], store=store, clock=clock) as runner,
        AsyncRuntime(store=store, clock=clock) as other,
    ):
        run = await other.submit("backup", params={"devices": ["a"]})
        done = await other.wait(run.id)
        assert runner.worker.held == {}
    assert done.status is Status.SUCCEEDED
    assert done.result == {"devices": 1}
    assert done.labels == {}  # the job's labels live with its code


async def test_an_unknown_job_is_refused(clock: VirtualClock, store: MemoryStore) -> None:
    async with AsyncRuntime(jobs=[backup], store=store, clock=clock) as rt:
        with pytest.raises(JobNotFound) as caught:
            await rt.submit("restore")
        assert caught.value.job == "restore"
        assert "backup" in str(caught.value)
        assert (await rt.list_runs()).runs == ()


async def test_bad_params_are_refused_naming_the_param(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(jobs=[backup], store=store, clock=clock) as rt:
        with pytest.raises(InvalidValue) as missing:
            await rt.submit(backup, params={})
        assert missing.value.field == "params.devices"
        assert "requires parameter 'devices'" in str(missing.value)
        with pytest.raises(InvalidValue) as unknown:
            await rt.submit(backup, params={"devices": [], "colour": "red"})
        assert unknown.value.field == "params.colour"
        assert "devices, dry_run" in str(unknown.value)
        with pytest.raises(NotSerializable) as odd:
            await rt.submit(backup, params={"devices": [object()]})
        assert "params['devices'][0]" in str(odd.value)
        with pytest.raises(InvalidValue) as many:
            await rt.submit_many(backup, [{"devices": []}, {"device": "x"}])
        assert many.value.field == "params[1].device"
        assert (await rt.list_runs()).runs == ()  # nothing was created


async def test_quotas_are_refused_at_submit(clock: VirtualClock, store: MemoryStore) -> None:
    @runlife.job(limits=Limits(quota=Quota(max_runs=2, per="day")))
    async def report(ctx: RunContext) -> None:
        return None

    async with AsyncRuntime(jobs=[report], store=store, clock=clock) as rt:
        await rt.submit(report)
        await rt.submit(report)
        with pytest.raises(QuotaExceeded) as caught:
            await rt.submit(report)
        with pytest.raises(QuotaExceeded):
            await rt.submit_many(report, [{}])
        assert caught.value.job == "report"
        assert caught.value.frees_at == T0.replace(day=11, hour=0)
        assert len((await rt.list_runs(job="report")).runs) == 2


@runlife.job
async def numbered(ctx: RunContext, n: int) -> int:
    return n


class Overlapping(MemoryStore):
    """Counts the creates in flight at once, and refuses the runs of *refused*."""

    def __init__(self, refused: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.refused = refused
        self.inflight = self.most = 0

    async def create_run(self, run: runlife.Run) -> runlife.Run:
        self.inflight += 1
        self.most = max(self.most, self.inflight)
        try:
            await anyio.lowlevel.checkpoint()
            if run.params["n"] in self.refused:
                raise InvalidValue("params.n", run.params["n"], "a number the store takes")
            return await super().create_run(run)
        finally:
            self.inflight -= 1


async def test_submit_many_has_the_store_create_its_runs_together(clock: VirtualClock) -> None:
    # Together, so that a store that groups writes commits many in one
    # transaction; a few hundred at a time, in order, each returned in its place.
    store = Overlapping()
    async with AsyncRuntime(jobs=[numbered], store=store, clock=clock, serve=False) as rt:
        runs = await rt.submit_many(numbered, [{"n": n} for n in range(500)])
        assert [run.params["n"] for run in runs] == list(range(500))
        assert [run.id for run in runs] == sorted(run.id for run in runs)  # claimed in order
        assert 100 <= store.most <= 200
        assert await rt.count_runs(job=numbered) == {Status.QUEUED: 500}


async def test_submit_many_raises_the_first_refusal_after_creating_the_rest(
    clock: VirtualClock,
) -> None:
    store = Overlapping(refused=(9, 7, 250))
    async with AsyncRuntime(jobs=[numbered], store=store, clock=clock, serve=False) as rt:
        with pytest.raises(InvalidValue) as refused:
            await rt.submit_many(numbered, [{"n": n} for n in range(300)])
        assert refused.value.value == 7
        assert await rt.count_runs(job=numbered) == {Status.QUEUED: 297}


async def test_a_rolling_quota_says_when_it_frees_up(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job(limits=Limits(quota=Quota(max_runs=2, window=3600)))
    async def poll(ctx: RunContext) -> None:
        return None

    async with AsyncRuntime(jobs=[poll], store=store, clock=clock) as rt:
        await rt.submit(poll)
        await clock.sleep(600)
        await rt.submit(poll)
        with pytest.raises(QuotaExceeded) as caught:
            await rt.submit(poll)
        assert caught.value.frees_at == at(3600)
        await clock.sleep(3001)  # the window counts a run created at its very start
        assert (await rt.submit(poll)).status is Status.QUEUED


async def test_an_idempotent_submit_returns_the_first_run(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(jobs=[backup], store=store, clock=clock) as rt:
        first = await rt.submit(backup, params={"devices": []}, idempotency_key="nightly-0310")
        again = await rt.submit(backup, params={"devices": []}, idempotency_key="nightly-0310")
        assert again.id == first.id
        assert len((await rt.list_runs()).runs) == 1


async def test_a_run_submitted_for_later_waits_in_pending(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(jobs=[backup], store=store, clock=clock) as rt:
        run = await rt.submit(backup, params={"devices": []}, at=at(3600))
        assert run.status is Status.PENDING
        done = await rt.wait(run.id)
    assert done.status is Status.SUCCEEDED
    assert done.started_at == at(3600)


async def test_cancel_a_queued_run(clock: VirtualClock, store: MemoryStore) -> None:
    async with AsyncRuntime(store=store, clock=clock) as rt:
        await store.save_job(backup.to_record())
        run = await rt.submit("backup", params={"devices": []})  # nobody runs it
        assert run.status is Status.QUEUED
        cancelled = await rt.cancel(run.id, reason="not needed", by="ops:ana")
        assert await rt.cancel(run.id) == cancelled  # a terminal run stays as it is
    assert cancelled.status is Status.CANCELLED
    assert cancelled.attempts == ()
    assert cancelled.error is not None
    assert (cancelled.error.kind, cancelled.error.message) == (
        "cancelled",
        "cancelled by ops:ana: not needed",
    )
    assert cancelled.history[-1].reason == "cancelled by ops:ana: not needed"


async def test_retry_makes_a_linked_new_run(clock: VirtualClock, store: MemoryStore) -> None:
    outcomes = iter([ValueError("bad config"), None])

    @runlife.job
    async def deploy(ctx: RunContext, version: str) -> str:
        error = next(outcomes)
        if error is not None:
            raise error
        return version

    async with AsyncRuntime(jobs=[deploy], store=store, clock=clock) as rt:
        failed = await rt.wait((await rt.submit(deploy, params={"version": "1.2"})).id)
        assert failed.status is Status.FAILED
        again = await rt.retry(failed.id)
        assert again.id != failed.id
        assert (again.trigger, again.parent_id, again.root_id) == (
            Trigger.RETRY,
            failed.id,
            failed.id,
        )
        assert again.params == {"version": "1.2"}
        done = await rt.wait(again.id)
        assert done.result == "1.2"
        with pytest.raises(InvalidValue) as caught:
            await rt.retry(done.id)  # it succeeded
        assert "FAILED or CANCELLED" in str(caught.value)
        rerun = await rt.rerun(done.id)
        assert (rerun.trigger, rerun.parent_id, rerun.root_id) == (
            Trigger.RERUN,
            done.id,
            failed.id,
        )
        assert (await rt.get_run(failed.id)).status is Status.FAILED  # untouched
        children = await rt.list_runs(parent_id=failed.id)
    assert [r.id for r in children.runs] == [again.id]


async def test_signal_is_stored_for_the_run(clock: VirtualClock, store: MemoryStore) -> None:
    async with AsyncRuntime(store=store, clock=clock) as rt:
        await store.save_job(backup.to_record())
        run = await rt.submit("backup", params={"devices": []})
        await rt.signal(run.id, "approved", {"by": "ops"})
        assert await store.signals(run.id) == {"approved": {"by": "ops"}}
        with pytest.raises(RunNotFound):
            await rt.signal("no-such-run", "approved")


async def test_graceful_shutdown_requeues_without_spending_budget(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """An attempt still running when its runtime leaves ends ``interrupted`` after the
    grace period and goes back to QUEUED; with a budget of one attempt, a later
    runtime still runs it."""

    @runlife.job(name="sync")
    async def hangs(ctx: RunContext) -> None:
        await anyio.sleep_forever()

    @runlife.job(name="sync")
    async def works(ctx: RunContext) -> str:
        return "synced"

    async with AsyncRuntime(jobs=[hangs], store=store, clock=clock, grace=10) as rt:
        run = await rt.submit(hangs)
        await clock.sleep(60)
    requeued = await store.get_run(run.id)
    assert clock.now() == at(70)  # the grace period, in virtual time
    assert requeued.status is Status.QUEUED
    assert requeued.error is not None
    assert requeued.error.kind == "interrupted"
    assert [a.outcome for a in requeued.attempts] == ["interrupted"]
    assert [t.to for t in requeued.history][-3:] == [
        Status.RUNNING,
        Status.RETRYING,
        Status.QUEUED,
    ]

    async with AsyncRuntime(jobs=[works], store=store, clock=clock) as rt:
        done = await rt.wait(run.id)
    assert done.status is Status.SUCCEEDED
    assert [a.outcome for a in done.attempts] == ["interrupted", "succeeded"]


async def test_an_attempt_that_ends_within_the_grace_period_completes(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job
    async def finishing(ctx: RunContext) -> str:
        await clock.sleep(30)
        return "done"

    async with AsyncRuntime(jobs=[finishing], store=store, clock=clock, grace=60) as rt:
        run = await rt.submit(finishing)
        await clock.sleep(5)
    assert clock.now() == at(30)
    done = await store.get_run(run.id)
    assert done.status is Status.SUCCEEDED
    assert done.result == "done"


async def test_leaving_on_an_error_interrupts_at_once(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job
    async def slow(ctx: RunContext) -> None:
        await clock.sleep(3600)

    async def host() -> str:
        async with AsyncRuntime(jobs=[slow], store=store, clock=clock, grace=60) as rt:
            run = await rt.submit(slow)
            await clock.sleep(5)
            raise ZeroDivisionError(run.id)

    with pytest.raises(ZeroDivisionError) as caught:
        await host()
    run_id = str(caught.value)
    assert clock.now() == at(5)
    assert (await store.get_run(run_id)).status is Status.QUEUED


async def test_the_verbs_need_a_running_runtime(clock: VirtualClock, store: MemoryStore) -> None:
    rt = AsyncRuntime(jobs=[backup], store=store, clock=clock)
    with pytest.raises(RuntimeError, match="not running"):
        await rt.submit(backup, params={"devices": []})
    async with rt:
        pass
    with pytest.raises(RuntimeError, match="entered already"):
        async with rt:
            pass


async def test_wait_with_a_timeout(clock: VirtualClock, store: MemoryStore) -> None:
    @runlife.job
    async def slow(ctx: RunContext) -> None:
        await clock.sleep(3600)

    async with AsyncRuntime(jobs=[slow], store=store, clock=clock) as rt:
        run = await rt.submit(slow)
        with pytest.raises(TimeoutError, match="still RUNNING after 60 s"):
            await rt.wait(run.id, timeout=60)
        assert clock.now() == at(60)
        await rt.cancel(run.id)


async def test_pause_and_unpause(clock: VirtualClock, store: MemoryStore) -> None:
    @runlife.job(schedule=runlife.Every(timedelta(minutes=10)))
    async def tick(ctx: RunContext) -> None:
        return None

    async with AsyncRuntime(jobs=[tick], store=store, clock=clock) as rt:
        record = await rt.pause(tick)
        assert record.paused
        assert await rt.next_fire(tick) is None
        assert not (await rt.unpause("tick")).paused
        assert await rt.next_fire(tick) == at(600)
        with pytest.raises(JobNotFound):
            await rt.pause("nope")


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InvalidPolicy, match="distinct names"):
        AsyncRuntime(jobs=[backup, runlife.job(name="backup")(backup.fn)], store="memory://")
    with pytest.raises(InvalidPolicy, match="concurrency"):
        AsyncRuntime(store="memory://", concurrency=0)
    with pytest.raises(InvalidValue, match="lease"):
        AsyncRuntime(store="memory://", lease=0)
    with pytest.raises(InvalidPolicy, match="jobs"):
        AsyncRuntime(jobs=backup, store="memory://")  # type: ignore[arg-type]
    with pytest.raises(runlife.UnknownStore):
        AsyncRuntime(store="nosuch://")


async def test_a_memory_url_tells_the_runtimes_clock(clock: VirtualClock) -> None:
    async with AsyncRuntime(jobs=[backup], store="memory://", clock=clock) as rt:
        run = await rt.wait((await rt.submit(backup, params={"devices": []})).id)
        assert await rt.store.now() == clock.now()
    assert run.created_at == T0


async def test_a_claim_that_lands_while_the_runtime_stops_is_handed_back() -> None:
    """Leaving the runtime while its worker's claim is in the store: the claim is
    not cut (it would land unseen, the run held until its lease lapses); its run
    is handed back QUEUED, interrupted, no budget spent."""
    claiming = anyio.Event()

    class SlowClaims(MemoryStore):
        async def claim(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            claiming.set()
            await anyio.sleep(0.2)  # the claim is in the store while the runtime stops
            return await super().claim(*args, **kwargs)

    @runlife.job
    async def sync(ctx: runlife.RunContext) -> None:
        await anyio.sleep(3600)

    store = SlowClaims()
    async with store:
        async with runlife.AsyncRuntime(jobs=[sync], store=store, grace=5) as rt:
            run = await rt.submit(sync)
            await claiming.wait()
        after = await store.get_run(run.id)
    assert after.status is Status.QUEUED
    assert [a.outcome for a in after.attempts] == ["interrupted"]
