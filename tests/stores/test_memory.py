"""MemoryStore: the store contract, plus what is the memory store's own (its clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from runlife import DEFAULT_LIFECYCLE, Run, RunQuery, Status
from runlife.exceptions import StoreError
from runlife.stores import MemoryStore
from runlife.testing._contract import StoreContract


class TestMemoryStore(StoreContract):
    """MemoryStore keeps the whole Store contract."""

    machine_examples = 75  # the memory store is cheap: explore more sequences

    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryStore]:
        async with MemoryStore() as store:
            yield store


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment


T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
pytestmark = pytest.mark.anyio


async def test_leases_are_judged_by_the_given_clock() -> None:
    """The memory store's now is its clock's: a lease lapses when that clock says so,
    however little real time passed."""
    clock = ManualClock(T0)
    async with MemoryStore(clock=clock) as store:
        assert await store.now() == T0
        run = await store.create_run(Run.create(job="backup", at=T0, initial=Status.QUEUED))
        (claim,) = await store.claim("w1", {"backup": DEFAULT_LIFECYCLE}, limit=1, lease=30)
        assert claim.expires_at == T0 + timedelta(seconds=30)
        assert claim.run.started_at == T0
        clock.moment = T0 + timedelta(seconds=29)
        assert await store.abandoned() == ()
        clock.moment = T0 + timedelta(seconds=30)
        assert [r.id for r in await store.abandoned()] == [run.id]
        expires = await store.heartbeat(claim, lease=30)
        assert expires == T0 + timedelta(seconds=60)
        assert await store.abandoned() == ()


async def test_due_is_judged_by_the_given_clock() -> None:
    """A run is due when the store's clock reaches its due_at."""
    clock = ManualClock(T0)
    async with MemoryStore(clock=clock) as store:
        later = T0 + timedelta(hours=1)
        run = await store.create_run(Run.create(job="backup", at=T0, scheduled_for=later))
        assert await store.due([Status.PENDING]) == ()
        clock.moment = later
        assert [r.id for r in await store.due([Status.PENDING])] == [run.id]


async def test_a_closed_store_refuses_use() -> None:
    """After aclose() every call raises StoreError; closing again is harmless."""
    store = MemoryStore()
    assert store.url == "memory://"
    await store.now()  # opens on first use, without async with
    await store.aclose()
    await store.aclose()
    with pytest.raises(StoreError, match="closed"):
        await store.now()


async def test_many_runs_stay_fast() -> None:
    """Thousands of runs: create, claim in batches and query without quadratic work."""
    async with MemoryStore() as store:
        for i in range(3000):
            await store.create_run(
                Run.create(job="bulk", at=T0 + timedelta(seconds=i), initial=Status.QUEUED)
            )
        claimed = 0
        while claims := await store.claim("w1", {"bulk": DEFAULT_LIFECYCLE}, limit=500, lease=60):
            claimed += len(claims)
        assert claimed == 3000
        counts = await store.count_runs(RunQuery(job="bulk"))
        assert counts == {Status.RUNNING: 3000}


@pytest.mark.parametrize("jobs", [3, 200], ids=["few jobs", "many jobs"])
async def test_claims_take_runs_in_claim_order_from_long_queues(jobs: int) -> None:
    """Claims read the fronts of the queues (merged per job for a claimer of few jobs,
    the whole queue for one of many): runs are still taken in claim order, runs of
    jobs not claimed for are passed over, and a job at its limit is looked past."""
    import random

    from runlife import JobRecord
    from runlife._core.claiming import claim_order

    rng = random.Random(7)
    names = [f"j{i:03d}" for i in range(jobs)]
    async with MemoryStore(clock=ManualClock(T0)) as store:
        await store.save_job(JobRecord(name=names[0], max_concurrency=2))
        runs = [
            await store.create_run(
                Run.create(
                    job=rng.choice(names),
                    at=T0 + timedelta(seconds=rng.randrange(100)),
                    initial=Status.QUEUED,
                    priority=rng.choice([0, 0, 1, 5]),
                )
            )
            for _ in range(400)
        ]
        # Runs of a job nobody claims for, at the front of the queue.
        for i in range(50):
            await store.create_run(
                Run.create(job="other", at=T0, initial=Status.QUEUED, priority=9 + i)
            )
        claimed_for = dict.fromkeys(names, DEFAULT_LIFECYCLE)
        taken: list[Run] = []
        while True:
            claims = await store.claim("w1", claimed_for, limit=16, lease=30)
            if not claims:
                break
            taken.extend(c.run for c in claims)
        limited = [r for r in runs if r.job == names[0]]
        expected = sorted((r for r in runs if r.job != names[0]), key=claim_order)
        expected = sorted([*expected, *sorted(limited, key=claim_order)[:2]], key=claim_order)
        assert [r.id for r in taken] == [r.id for r in expected]
        queued = await store.list_runs(RunQuery(status=Status.QUEUED, limit=1000))
        left = sorted(r.job for r in queued.runs)
        assert left == sorted(["other"] * 50 + [names[0]] * (len(limited) - 2))


async def test_runs_that_leave_the_queue_otherwise_are_not_claimed() -> None:
    """Runs cancelled while QUEUED leave the claim queue without a claim: the claims
    take every other run, in claim order, and nothing more."""
    from runlife._core.claiming import claim_order

    async with MemoryStore(clock=ManualClock(T0)) as store:
        runs = [
            await store.create_run(
                Run.create(
                    job="sync",
                    at=T0 + timedelta(seconds=i % 40),
                    initial=Status.QUEUED,
                    priority=i % 3,
                )
            )
            for i in range(300)
        ]
        for run in runs[::3]:
            cancelled = DEFAULT_LIFECYCLE.transition(run, Status.CANCELLED, at=T0)
            await store.update_run(cancelled, expected_version=run.version)
        taken: list[Run] = []
        while claims := await store.claim("w1", {"sync": DEFAULT_LIFECYCLE}, limit=7, lease=30):
            taken.extend(c.run for c in claims)
        left = sorted((r for i, r in enumerate(runs) if i % 3), key=claim_order)
        assert [r.id for r in taken] == [r.id for r in left]
        counts = await store.count_runs(RunQuery(job="sync"))
        assert counts == {Status.CANCELLED: 100, Status.RUNNING: 200}
