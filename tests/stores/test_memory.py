"""MemoryStore: the store contract, plus what is the memory store's own (its clock)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runlife import (
    DEFAULT_LIFECYCLE,
    Item,
    JobRecord,
    LogLine,
    LogQuery,
    Run,
    RunQuery,
    Status,
    Trigger,
)
from runlife.exceptions import InvalidValue, StoreError
from runlife.stores import MemoryStore
from runlife.testing import strategies
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


_NEXT = {
    Status.PENDING: Status.QUEUED,
    Status.QUEUED: Status.RUNNING,
    Status.RUNNING: Status.RETRYING,
    Status.RETRYING: Status.QUEUED,
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 7), st.booleans(), st.none() | st.sampled_from([0, 30, 60, 90])),
        max_size=40,
    ),
    at=st.integers(0, 100),
    limit=st.integers(1, 5),
)
def test_due_answers_as_a_scan_of_every_run_would(
    steps: list[tuple[int, bool, int | None]], at: int, limit: int
) -> None:
    """The due index (heaps per status, stale entries dropped as they come up)
    gives exactly the runs a scan of every run would: due by the clock, in due
    order, as runs move between statuses, come back to them and change due times."""
    lc = DEFAULT_LIFECYCLE
    statuses = [Status.PENDING, Status.QUEUED, Status.RETRYING]

    async def main() -> None:
        clock = ManualClock(T0)
        async with MemoryStore(clock=clock) as store:
            ids = []
            for i in range(8):
                due = T0 + timedelta(minutes=10 * i % 70)
                run = await store.create_run(Run.create(job="j", at=T0, scheduled_for=due))
                ids.append(run.id)
            for index, end, minutes in steps:
                run = await store.get_run(ids[index])
                if run.is_terminal:
                    continue
                to = Status.CANCELLED if end else _NEXT[run.status]
                moved = lc.transition(run, to, at=T0)
                due = None if minutes is None else T0 + timedelta(minutes=minutes)
                moved = attrs.evolve(moved, due_at=None if end else due)
                await store.update_run(moved, expected_version=run.version)
            clock.moment = T0 + timedelta(minutes=at)
            got = await store.due(statuses, limit=limit)
            every = [await store.get_run(i) for i in ids]
            expected = sorted(
                (r for r in every if r.status in statuses and r.due_at is not None
                 and r.due_at <= clock.moment),
                key=lambda r: (r.due_at, r.id),
            )[:limit]  # fmt: skip
            assert [r.id for r in got] == [r.id for r in expected]

    anyio.run(main)


async def test_a_run_back_in_a_status_with_its_old_due_time_is_due_once() -> None:
    """QUEUED (due at 02:30), claimed, retried, QUEUED again due at 02:30: `due`
    gives it once."""
    lc = DEFAULT_LIFECYCLE
    clock = ManualClock(T0)
    due = T0 + timedelta(minutes=30)
    async with MemoryStore(clock=clock) as store:
        run = await store.create_run(Run.create(job="j", at=T0))
        for to in (Status.QUEUED, Status.RUNNING, Status.RETRYING, Status.QUEUED):
            moved = attrs.evolve(lc.transition(run, to, at=T0), due_at=due)
            run = await store.update_run(moved, expected_version=run.version)
        clock.moment = due
        assert [r.id for r in await store.due([Status.QUEUED])] == [run.id]


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


# -- snapshots -----------------------------------------------------------------


class TestRestoredMemoryStore(StoreContract):
    """A store started from a snapshot keeps the whole Store contract; and at every
    change of every contract test, its snapshot, through JSON text and a new store,
    comes back the same."""

    machine_examples = 15

    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryStore]:
        held: list[MemoryStore] = []

        def round_trip() -> None:
            data = held[0].snapshot()
            again = MemoryStore(snapshot=json.loads(json.dumps(data)))
            assert again.snapshot() == data

        empty = json.loads(json.dumps(MemoryStore().snapshot()))
        async with MemoryStore(snapshot=empty, on_change=round_trip) as store:
            held.append(store)
            yield store


_JOBS = ("backup", "sync", "report")
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("job"), st.sampled_from(_JOBS), st.none() | st.integers(1, 3),
                  st.dictionaries(st.just("device"), st.integers(1, 2))),
        st.tuples(st.just("run"), st.sampled_from(_JOBS), st.integers(-2, 2),
                  st.dictionaries(st.sampled_from(("site", "device")),
                                  st.sampled_from(("dc1", "core-rtr-01"))),
                  strategies.json_values(max_leaves=4), st.booleans(),
                  st.none() | st.sampled_from(("k1", "k2")), st.booleans()),
        st.tuples(st.just("claim"), st.sets(st.sampled_from(_JOBS), min_size=1),
                  st.integers(1, 4)),
        st.tuples(st.just("item"), st.integers(0, 30), st.sampled_from(("r1", "r2", "sw3")),
                  st.sampled_from((Status.RUNNING, Status.SUCCEEDED, Status.FAILED)),
                  strategies.json_values(max_leaves=4)),
        st.tuples(st.just("log"), st.integers(0, 30), strategies.texts(max_size=12),
                  st.dictionaries(strategies.texts(max_size=5),
                                  strategies.json_values(max_leaves=3), max_size=2)),
        st.tuples(st.just("signal"), st.integers(0, 30), st.sampled_from(("go", "stop")),
                  strategies.json_values(max_leaves=4)),
        st.tuples(st.just("cancel"), st.integers(0, 30), st.sampled_from(("ops:ana", "cli")),
                  st.none() | strategies.texts(max_size=10)),
        st.tuples(st.just("end"), st.integers(0, 30), strategies.json_values(max_leaves=3)),
        st.tuples(st.just("tick"), st.integers(1, 120)),
        st.tuples(st.just("purge"), st.integers(0, 300)),
    ),
    max_size=40,
)  # fmt: skip


async def _fill(store: MemoryStore, clock: ManualClock, ops: list[tuple[Any, ...]]) -> None:
    """Do *ops* through the public Store API (skipping those that do not apply)."""
    runs: list[str] = []
    for op in ops:
        kind, *args = op
        if kind == "job":
            name, cap, per_label = args
            await store.save_job(JobRecord(name=name, max_concurrency=cap, per_label=per_label))
        elif kind == "run":
            job, priority, labels, params, queued, key, scheduled = args
            run = Run.create(
                job=job, at=clock.now(), labels=labels, params={"p": params},
                initial=Status.QUEUED if queued else Status.PENDING, idempotency_key=key,
                priority=priority, trigger=Trigger.SCHEDULED if scheduled else Trigger.ADHOC,
                scheduled_for=clock.now() if scheduled else None,
            )  # fmt: skip
            runs.append((await store.create_run(run)).id)
        elif kind == "claim":
            jobs, limit = args
            await store.claim("w1", dict.fromkeys(jobs, DEFAULT_LIFECYCLE), limit=limit, lease=60)
        elif kind == "tick":
            clock.moment += timedelta(seconds=args[0])
        elif kind == "purge":
            await store.purge(older_than=clock.now() - timedelta(seconds=args[0]))
        elif runs:
            run_id = runs[args[0] % len(runs)]
            if run_id not in {r.id for r in (await store.list_runs(RunQuery(limit=500))).runs}:
                continue  # purged
            if kind == "item":
                key, status, output = args[1:]
                await store.save_item(Item(run_id=run_id, key=key, status=status, output=output))
            elif kind == "log":
                message, fields = args[1:]
                line = LogLine(run_id=run_id, seq=0, at=clock.now(), message=message, fields=fields)
                await store.append_logs([line])
            elif kind == "signal":
                await store.send_signal(run_id, args[1], args[2])
            elif kind == "cancel":
                await store.request_cancel(run_id, by=args[1], reason=args[2])
            elif kind == "end":
                run = await store.get_run(run_id)
                if run.status is Status.RUNNING:
                    done = DEFAULT_LIFECYCLE.transition(run, Status.SUCCEEDED, at=clock.now())
                    done = attrs.evolve(done, result=args[1])
                    await store.update_run(done, expected_version=run.version)


async def _reads(store: MemoryStore) -> dict[str, Any]:
    """Every read of the store, and then the order in which claims take its queue."""
    page = await store.list_runs(RunQuery(limit=500))
    ids = [run.id for run in page.runs]
    reads: dict[str, Any] = {
        "runs": page,
        "each": [await store.get_run(rid) for rid in ids],
        "by job": [await store.list_runs(RunQuery(job=j, limit=500)) for j in _JOBS],
        "queued": await store.list_runs(RunQuery(status=Status.QUEUED, limit=500)),
        "labelled": await store.list_runs(RunQuery(labels={"site": "dc1"}, limit=500)),
        "counts": await store.count_runs(RunQuery()),
        "items": [await store.items(rid) for rid in ids],
        "logs": [await store.logs(LogQuery(run_id=rid)) for rid in ids],
        "events": await store.events(limit=10_000),
        "jobs": await store.list_jobs(),
        "signals": [await store.signals(rid) for rid in ids],
        "cancels": await store.cancel_requests(ids),
        "abandoned": await store.abandoned(),
        "due": await store.due(frozenset(Status)),
    }
    claimed = []
    lifecycles = dict.fromkeys(_JOBS, DEFAULT_LIFECYCLE)
    while claims := await store.claim("w2", lifecycles, limit=2, lease=30):
        claimed.append(claims)
    reads["claims"] = claimed
    reads["events after claims"] = await store.events(limit=10_000)
    return reads


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_ops)
def test_a_snapshot_restores_a_store_that_answers_every_read_the_same(
    ops: list[tuple[Any, ...]],
) -> None:
    async def check() -> None:
        clock = ManualClock(T0)
        async with MemoryStore(clock=clock) as store:
            await _fill(store, clock, ops)
            data = store.snapshot()
            text = json.dumps(data)
            restored = MemoryStore(clock=clock, snapshot=json.loads(text))
            assert restored.snapshot() == data
            async with restored:
                assert await _reads(restored) == await _reads(store)

    anyio.run(check)


async def test_a_snapshot_of_a_newer_format_is_refused() -> None:
    async with MemoryStore() as store:
        await store.create_run(Run.create(job="backup", at=T0))
        data = store.snapshot()
    with pytest.raises(InvalidValue) as newer:
        MemoryStore(snapshot={**data, "version": data["version"] + 1})
    assert newer.value.field == "snapshot.version"
    broken = {**data, "runs": [{**data["runs"][0], "fence": -1}]}
    with pytest.raises(InvalidValue) as wrong:
        MemoryStore(snapshot=broken)
    assert wrong.value.field == "snapshot.runs[0]"
    assert "fence" in str(wrong.value)
    run = data["runs"][0]
    moved = {**run, "run": {**run["run"], "state": "SUCCEEDED"}}  # a state of another status
    with pytest.raises(InvalidValue) as unsound:
        MemoryStore(snapshot={**data, "runs": [moved]})
    assert unsound.value.field == "snapshot.runs[0]"
    assert "status" in str(unsound.value)
    with pytest.raises(InvalidValue) as twice:
        MemoryStore(snapshot={**data, "runs": [run, run]})
    assert twice.value.field == "snapshot.runs[1]"


async def test_on_change_is_called_after_each_change() -> None:
    seen: list[int] = []
    store = MemoryStore(clock=ManualClock(T0), on_change=lambda: seen.append(len(seen)))
    async with store:
        run = await store.create_run(Run.create(job="backup", at=T0))
        await store.get_run(run.id)
        assert len(seen) == 1
        claim = await store.claim_run(run.id, "w1", DEFAULT_LIFECYCLE, lease=30)
        await store.heartbeat(claim, lease=30)
        assert len(seen) == 3
