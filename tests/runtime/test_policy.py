"""set_policy: a job's policy changed in its stored spec applies in every process, from
the next attempt (or claim) on, survives runtimes started later, and can be reset."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

import runlife
from runlife import (
    AsyncRuntime,
    InvalidPolicy,
    InvalidValue,
    JobNotFound,
    JobSpec,
    Limits,
    Quota,
    QuotaExceeded,
    Retry,
    RunContext,
    Status,
    Timeout,
)
from runlife._runtime.guard import StoreGuard
from runlife._runtime.jobs import JobBook
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from .conftest import at

pytestmark = pytest.mark.anyio


@runlife.job(name="sync")
async def fails(ctx: RunContext) -> None:
    raise ConnectionRefusedError("no route to host")


@runlife.job(name="sync")
async def hangs(ctx: RunContext) -> None:
    await anyio.sleep_forever()


async def test_a_policy_set_by_another_process_applies_to_the_next_run(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """An operator's runtime that does not have the job sets its retry; the runtime
    that runs the job runs the next run under it, without restarting."""
    async with (
        AsyncRuntime(jobs=[fails], store=store, clock=clock) as worker,
        AsyncRuntime(store=store, clock=clock) as operator,
    ):
        before = await worker.wait((await worker.submit(fails)).id)
        spec = await operator.set_policy("sync", retry=Retry(max_attempts=3, delay=10))
        after = await worker.wait((await worker.submit(fails)).id)
    assert [a.outcome for a in before.attempts] == ["error"]
    assert spec.retry == Retry(max_attempts=3, delay=10)
    assert spec.declared == {"retry": fails.spec.retry}
    assert [a.outcome for a in after.attempts] == ["error", "error", "error"]
    assert [a.started_at for a in after.attempts] == [at(0), at(10), at(20)]
    assert after.status is Status.FAILED


async def test_a_timeout_set_applies_to_the_next_attempt(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(jobs=[hangs], store=store, clock=clock) as rt:
        await rt.set_policy(hangs, timeout=Timeout(attempt=5))
        run = await rt.wait((await rt.submit(hangs)).id)
    assert run.status is Status.FAILED
    assert run.error is not None
    assert run.error.kind == "timeout"
    assert run.ended_at == at(5)


async def test_an_attempt_already_running_keeps_the_policy_it_started_with(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """Raising the retry budget while attempt 1 runs does not retry that attempt;
    the decision on its failure is the policy it started with."""
    started = anyio.Event()
    go = anyio.Event()

    @runlife.job(name="sync")
    async def waits_then_fails(ctx: RunContext) -> None:
        started.set()
        await go.wait()
        raise ConnectionRefusedError("no route to host")

    async with AsyncRuntime(jobs=[waits_then_fails], store=store, clock=clock) as rt:
        first = await rt.submit(waits_then_fails)
        await started.wait()
        await rt.set_policy("sync", retry=Retry(max_attempts=2, delay=0))
        go.set()
        first = await rt.wait(first.id)
        second = await rt.wait((await rt.submit(waits_then_fails)).id)
    assert [a.outcome for a in first.attempts] == ["error"]
    assert [a.outcome for a in second.attempts] == ["error", "error"]


async def test_lowered_concurrency_limits_hold_at_the_next_claim(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job(name="sync")
    async def takes_ten(ctx: RunContext) -> None:
        await clock.sleep(10)

    async with AsyncRuntime(jobs=[takes_ten], store=store, clock=clock) as rt:
        await rt.set_policy(takes_ten, limits=Limits(max_concurrency=1))
        record = await store.get_job("sync")
        runs = await rt.submit_many(takes_ten, [{}, {}, {}])
        done = [await rt.wait(run.id) for run in runs]
    assert record.max_concurrency == 1
    assert [run.started_at for run in done] == [at(0), at(10), at(20)]


async def test_a_quota_set_applies_at_once_in_the_same_runtime(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(jobs=[fails], store=store, clock=clock) as rt:
        await rt.submit(fails)
        await rt.set_policy(fails, limits=Limits(quota=Quota(max_runs=1, per="day")))
        with pytest.raises(QuotaExceeded):
            await rt.submit(fails)


async def test_what_is_set_survives_a_runtime_started_later_until_reset(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A runtime that starts with the job's code keeps the fields set (and takes
    the rest from its code, which may have changed); reset goes back to the code."""
    async with AsyncRuntime(jobs=[fails], store=store, clock=clock) as rt:
        await rt.set_policy(fails, retry=Retry(max_attempts=4, delay=0))

    redeployed = runlife.job(name="sync", timeout=Timeout(run=600))(fails.fn)
    async with AsyncRuntime(jobs=[redeployed], store=store, clock=clock) as rt:
        stored = JobSpec.from_spec((await store.get_job("sync")).spec)
        run = await rt.wait((await rt.submit(redeployed)).id)
        reset = await rt.set_policy(redeployed, reset=["retry"])
        again = await rt.wait((await rt.submit(redeployed)).id)
    assert stored.retry == Retry(max_attempts=4, delay=0)
    assert stored.timeout == Timeout(run=600)  # not set: the new code's
    assert stored.declared == {"retry": redeployed.spec.retry}
    assert len(run.attempts) == 4
    assert reset == redeployed.spec
    assert JobSpec.from_spec((await store.get_job("sync")).spec) == redeployed.spec
    assert len(again.attempts) == 1


async def test_set_policy_keeps_the_schedule_state(clock: VirtualClock, store: MemoryStore) -> None:
    async with AsyncRuntime(jobs=[fails], store=store, clock=clock) as rt:
        await rt.pause(fails)
        await rt.set_policy(fails, items_fail_run=0.5)
        record = await store.get_job("sync")
    assert record.paused is True
    assert JobSpec.from_spec(record.spec).items_fail_run == 0.5


async def test_bad_policy_changes_are_refused_naming_the_field(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(jobs=[fails], store=store, clock=clock) as rt:
        with pytest.raises(InvalidPolicy) as wrong:
            await rt.set_policy(fails, retry=3)  # type: ignore[arg-type]
        assert (wrong.value.field, wrong.value.value) == ("retry", 3)
        with pytest.raises(InvalidPolicy) as unknown:
            await rt.set_policy(fails, reset=["schedule"])
        assert (unknown.value.field, unknown.value.value) == ("reset", "schedule")
        with pytest.raises(JobNotFound):
            await rt.set_policy("restore", retry=Retry())
        with pytest.raises(InvalidValue):
            await rt.set_policy(42, retry=Retry())  # type: ignore[arg-type]
        assert JobSpec.from_spec((await store.get_job("sync")).spec) == fails.spec


async def test_an_unreadable_stored_spec_leaves_the_jobs_own_policy(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A stored spec this runlife cannot read (a retry part it does not understand):
    the runtime that has the job runs it under the job's own policy."""
    async with AsyncRuntime(jobs=[fails], store=store, clock=clock) as rt:
        record = await store.get_job("sync")
        odd = {**record.spec, "retry": {"max_attempts": "many"}}
        await store.save_job(runlife.JobRecord(name="sync", spec=odd))
        run = await rt.wait((await rt.submit(fails)).id)
    assert [a.outcome for a in run.attempts] == ["error"]


async def test_a_policy_set_through_another_sqlite_connection_applies(tmp_path: Path) -> None:
    """Two runtimes over one SQLite file, each with its own store (as two processes
    have): the policy one sets is the policy the other runs the next run under."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    async with (
        AsyncRuntime(jobs=[fails], store=url, poll=0.05),
        AsyncRuntime(store=url, poll=0.05) as operator,
    ):
        await operator.set_policy("sync", retry=Retry(max_attempts=2, delay=0))
        run = await operator.wait((await operator.submit("sync")).id, timeout=30)
    assert [a.outcome for a in run.attempts] == ["error", "error"]


class CountingStore(MemoryStore):
    """A memory store that counts its job reads, each of which takes a turn of the
    event loop (as a database read does)."""

    job_reads = 0

    async def get_job(self, name: str) -> runlife.JobRecord:
        self.job_reads += 1
        await anyio.sleep(0)
        return await super().get_job(name)


async def test_attempts_that_start_together_share_one_read_of_the_policy(
    clock: VirtualClock,
) -> None:
    store = CountingStore(clock=clock)
    await store.save_job(fails.to_record())
    book = JobBook({"sync": fails}, StoreGuard(store, clock))
    specs: list[JobSpec] = []

    async def attempt_starts() -> None:
        specs.append(await book.fresh("sync"))

    async with anyio.create_task_group() as tg:
        for _ in range(16):
            tg.start_soon(attempt_starts)
    assert specs == [fails.spec] * 16
    assert store.job_reads == 1
    await book.fresh("sync")  # a read after those is a read of its own
    assert store.job_reads == 2
