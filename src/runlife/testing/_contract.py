"""`StoreContract`: the conformance suite every `runlife.abc.Store` passes.

Subclass it in a class whose name starts with ``Test`` and give it a ``store``
fixture: an async generator that yields an open, empty store and closes it after
the test. Every test of the contract then runs against that store::

    import pytest
    from runlife.stores import MemoryStore
    from runlife.testing import StoreContract


    class TestMyStore(StoreContract):
        @pytest.fixture
        async def store(self):
            async with MemoryStore() as store:
                yield store

The tests are anyio tests (``@pytest.mark.anyio``): they run on the backends the
``anyio_backend`` fixture names (asyncio only, unless you override it). They use
the store's own time (``await store.now()``) and small real leases (a fraction of
a second), so they need nothing but the store. The hypothesis state machine
(`test_state_machine`) runs its rules in a worker thread that calls into the
event loop through ``anyio.from_thread``, so it works on asyncio and trio alike.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import anyio
import attrs
import pytest

from runlife._core.lifecycle import DEFAULT_LIFECYCLE, Lifecycle
from runlife._core.queries import Claim, JobRecord, LogQuery, RunQuery
from runlife._core.records import ErrorInfo, Item, ItemCounts, LogLine
from runlife._core.run import Run
from runlife._core.spec import JobSpec
from runlife._core.status import Status, Trigger
from runlife.abc import Store
from runlife.exceptions import (
    ConcurrentUpdate,
    InvalidValue,
    JobNotFound,
    LeaseLost,
    NotSerializable,
    RunNotFound,
    StoreError,
)
from runlife.testing._contract_hostile import HostileCallers

__all__ = ("StoreContract",)

T0 = datetime(2026, 3, 10, 2, 0, 0, 123456, tzinfo=UTC)
"""The creation time of the contract's runs: fixed, so orders are known."""
LEASE = 0.3
"""A lease short enough to lapse in a test (seconds of real, store time)."""
LONG = 3600.0
"""A lease that never lapses during a test."""
S = Status
LC = DEFAULT_LIFECYCLE


def at(seconds: float) -> datetime:
    """``T0`` plus *seconds*."""
    return T0 + timedelta(seconds=seconds)


def new_run(job: str = "backup", *, when: float = 0, **kwargs: Any) -> Run:
    """A new run of *job* created at ``at(when)``."""
    return Run.create(job=job, at=at(when), **kwargs)


def queued(job: str = "backup", *, when: float = 0, **kwargs: Any) -> Run:
    """A new run of *job* that starts out QUEUED, ready to be claimed."""
    return Run.create(job=job, at=at(when), initial=S.QUEUED, **kwargs)


def moved(run: Run, *steps: Status | str, when: float | None = None, **kwargs: Any) -> Run:
    """*run* moved through *steps* in the default lifecycle."""
    for step in steps:
        moment = at(when) if when is not None else run.created_at
        run = LC.transition(run, step, at=moment, **kwargs)
    return run


def ids(runs: Any) -> list[str]:
    """The ids of *runs*, in order."""
    return [run.id for run in runs]


def utc(moment: datetime | None) -> bool:
    """Whether *moment* is aware and in UTC (offset zero)."""
    return moment is not None and moment.utcoffset() == timedelta(0)


class StoreContract(HostileCallers):
    """The conformance suite of the Store protocol: subclass it and give it a ``store``.

    The subclass must be named ``Test...`` (pytest collects it); this base class
    is never collected on its own. Its ``store`` fixture yields an open, empty
    store per test. Override ``lease`` if your store needs longer leases than
    0.3 s to judge expiry reliably (a coarse database clock, say).
    """

    __test__: ClassVar[bool] = False
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.anyio]
    lease: ClassVar[float] = LEASE
    machine_examples: ClassVar[int] = 30
    """How many random operation sequences `test_state_machine` tries."""
    machine_steps: ClassVar[int] = 20
    """How many operations each of those sequences has at most."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Subclasses are the suites pytest should collect.
        cls.__test__ = True

    # -- helpers ---------------------------------------------------------------

    @staticmethod
    async def put(store: Store, run: Run) -> Run:
        """Create *run* and return the stored value (checking it was new)."""
        stored = await store.create_run(run)
        assert stored.id == run.id
        return stored

    @staticmethod
    async def advance(store: Store, run: Run, *steps: Status | str, **kwargs: Any) -> Run:
        """Move the stored *run* through *steps*, writing each by compare-and-set."""
        claim: Claim | None = kwargs.pop("claim", None)
        for step in steps:
            nxt = LC.transition(run, step, at=await store.now(), **kwargs)
            run = await store.update_run(nxt, expected_version=run.version, claim=claim)
        return run

    async def claimed(
        self, store: Store, job: str = "backup", worker: str = "w1", *, lease: float = LONG
    ) -> Claim:
        """Create a QUEUED run of *job* and claim it for *worker*."""
        run = await self.put(store, queued(job))
        claims = await store.claim(worker, {job: LC}, limit=1, lease=lease)
        assert ids(c.run for c in claims) == [run.id]
        return claims[0]

    # -- create and get --------------------------------------------------------

    async def test_run_round_trips_field_for_field(self, store: Store) -> None:
        """Every field of a run (attempts, history, error with traceback, labels,
        params, result, warnings, microsecond UTC times) reads back equal."""
        paris = timezone(timedelta(hours=2))
        run = Run.create(
            job="nightly_backup",
            at=datetime(2026, 3, 10, 4, 0, 0, 654321, tzinfo=paris),
            params={"devices": ["core-rtr-01", "core-rtr-02"], "n": 2, "x": 1.5, "ok": None},
            labels={"site": "dc1", "kind": "backup"},
            priority=7,
            idempotency_key="k-1",
            workflow_run_id="wf-1",
        )
        stored = await self.put(store, run)
        assert stored == run
        assert utc(stored.created_at)
        assert stored.progress == ItemCounts()
        try:
            raise TimeoutError("no route to host")
        except TimeoutError as exc:
            error = ErrorInfo.from_exception(exc, kind="timeout")
        assert error.traceback
        t = run.created_at
        final = LC.transition(run, S.QUEUED, at=t + timedelta(microseconds=1), reason="eligible")
        final = LC.transition(final, S.RUNNING, at=t + timedelta(seconds=1, microseconds=7))
        final = LC.transition(
            final,
            S.RETRYING,
            at=t + timedelta(seconds=2),
            error=error,
            due_at=t + timedelta(seconds=60),
        )
        final = LC.transition(final, S.QUEUED, at=t + timedelta(seconds=62))
        final = LC.transition(final, S.RUNNING, at=t + timedelta(seconds=63))
        final = LC.transition(final, S.SUCCEEDED, at=t + timedelta(seconds=64, microseconds=9))
        final = attrs.evolve(final, result={"devices": 2}, warnings=("slow link",))
        written = await store.update_run(final, expected_version=0)
        got = await store.get_run(run.id)
        assert got == written == final
        assert [a.outcome for a in got.attempts] == ["timeout", "succeeded"]
        assert got.attempts[0].error == error
        assert got.history == final.history
        for moment in (got.created_at, got.started_at, got.ended_at, got.queued_at):
            assert utc(moment)
        assert got.ended_at is not None
        assert got.ended_at.microsecond == 9 + t.microsecond

    async def test_custom_lifecycle_states_round_trip(self, store: Store) -> None:
        """A run of a custom lifecycle keeps its named states in state and history."""
        lc = _tasks_lifecycle()
        await store.save_job(JobRecord(name="promote", spec=JobSpec(lifecycle=lc).to_spec()))
        run = Run.create(job="promote", at=T0, lifecycle=lc)
        await self.put(store, run)
        nxt = lc.transition(run, "TRIGGER", at=at(1))
        nxt = lc.transition(nxt, "STARTED", at=at(2))
        nxt = lc.transition(nxt, "RUNNING", at=at(3))
        await store.update_run(nxt, expected_version=0)
        got = await store.get_run(run.id)
        assert got == nxt
        assert (got.state, got.status) == ("RUNNING", S.RUNNING)
        assert [str(t.to) for t in got.history] == ["TRIGGER", "STARTED", "RUNNING"]

    async def test_get_run_of_unknown_id_raises_run_not_found(self, store: Store) -> None:
        """get_run of an absent id raises RunNotFound naming it."""
        with pytest.raises(RunNotFound) as info:
            await store.get_run("no-such-run")
        assert info.value.run_id == "no-such-run"

    async def test_create_refuses_a_run_that_is_not_new(self, store: Store) -> None:
        """create_run takes version 0 only."""
        run = moved(new_run(), S.QUEUED)
        with pytest.raises(ValueError, match="version"):
            await store.create_run(run)
        with pytest.raises(RunNotFound):
            await store.get_run(run.id)

    async def test_create_twice_with_the_same_id_returns_the_stored_run(self, store: Store) -> None:
        """A create repeated with the same run id (after an ambiguous failure) is
        not stored twice."""
        run = await self.put(store, new_run(params={"a": 1}))
        again = await store.create_run(attrs.evolve(run, params={"a": 2}))
        assert again == run
        assert len((await store.list_runs(RunQuery())).runs) == 1

    async def test_create_writes_a_transition_event_per_history_row(self, store: Store) -> None:
        """A run created with history gets one transition event per row."""
        run = attrs.evolve(moved(new_run(), S.QUEUED), version=0)
        await self.put(store, run)
        events = await store.events(run_id=run.id)
        assert [(e.kind, e.transition) for e in events] == [("transition", run.history[0])]
        assert events[0].job == "backup"
        assert events[0].status is S.QUEUED

    async def test_returned_values_are_copies(self, store: Store) -> None:
        """Mutating params, labels or results read from the store changes nothing stored."""
        run = await self.put(store, new_run(params={"devices": ["a"]}, labels={"site": "x"}))
        run.params["devices"].append("b")
        run.labels["site"] = "y"  # type: ignore[index]
        got = await store.get_run(run.id)
        assert got.params == {"devices": ["a"]}
        assert got.labels == {"site": "x"}

    # -- idempotency -------------------------------------------------------------

    async def test_idempotency_key_returns_the_existing_run(self, store: Store) -> None:
        """A second create with a stored (job, idempotency_key) returns the first run."""
        first = await self.put(store, new_run(idempotency_key="nightly-2026-03-10"))
        second = await store.create_run(new_run(idempotency_key="nightly-2026-03-10", when=5))
        assert second == first
        other_job = await store.create_run(new_run("restore", idempotency_key="nightly-2026-03-10"))
        assert other_job.id != first.id
        other_key = await store.create_run(new_run(idempotency_key="nightly-2026-03-11"))
        assert other_key.id != first.id
        counts = await store.count_runs(RunQuery())
        assert counts == {S.PENDING: 3}

    async def test_schedule_slot_is_created_once(self, store: Store) -> None:
        """A SCHEDULED run is unique on (job, scheduled_for) and advances the job's
        last_scheduled_for (creating a bare job record), never moving it back."""
        slot = at(3600)
        first = await self.put(store, new_run(trigger=Trigger.SCHEDULED, scheduled_for=slot))
        again = await store.create_run(new_run(trigger=Trigger.SCHEDULED, scheduled_for=slot))
        assert again == first
        job = await store.get_job("backup")
        assert job.last_scheduled_for == slot
        adhoc = await store.create_run(new_run(trigger=Trigger.ADHOC, scheduled_for=slot))
        assert adhoc.id != first.id
        later = await self.put(store, new_run(trigger=Trigger.SCHEDULED, scheduled_for=at(7200)))
        assert later.id != first.id
        await self.put(store, new_run(trigger=Trigger.SCHEDULED, scheduled_for=at(1800)))
        assert (await store.get_job("backup")).last_scheduled_for == at(7200)

    # -- update_run --------------------------------------------------------------

    async def test_update_run_is_a_compare_and_set(self, store: Store) -> None:
        """update_run writes only over the expected version, else ConcurrentUpdate
        carries expected and actual versions."""
        run = await self.put(store, new_run())
        first = await store.update_run(moved(run, S.QUEUED), expected_version=0)
        assert first.version == 1
        with pytest.raises(ConcurrentUpdate) as info:
            await store.update_run(moved(run, S.CANCELLED), expected_version=0)
        assert (info.value.run_id, info.value.expected, info.value.actual) == (run.id, 0, 1)
        assert (await store.get_run(run.id)).status is S.QUEUED

    async def test_update_run_of_unknown_run_raises_run_not_found(self, store: Store) -> None:
        """update_run of a run that was never created raises RunNotFound."""
        with pytest.raises(RunNotFound):
            await store.update_run(moved(new_run(), S.QUEUED), expected_version=0)

    async def test_update_run_appends_history_with_an_event_per_row(self, store: Store) -> None:
        """New history rows are appended and each gets a transition event, in order."""
        run = await self.put(store, new_run())
        before = await store.events()
        nxt = moved(run, S.QUEUED, S.RUNNING, S.SUCCEEDED, when=10)
        got = await store.update_run(nxt, expected_version=0)
        assert got.history == nxt.history
        events = await store.events(after=before[-1].seq if before else None)
        assert [e.transition for e in events] == list(nxt.history)
        assert {(e.kind, e.run_id, e.job) for e in events} == {("transition", run.id, "backup")}
        assert events[-1].status is S.SUCCEEDED
        seqs = [e.seq for e in events if e.seq is not None]
        assert len(seqs) == len(events)
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)

    async def test_update_run_keeps_progress(self, store: Store) -> None:
        """update_run does not clobber the progress that save_item maintains."""
        run = await self.put(store, new_run())
        await store.save_item(Item(run_id=run.id, key="a", status=S.SUCCEEDED))
        await store.save_item(Item(run_id=run.id, key="b", status=S.FAILED))
        got = await store.update_run(moved(run, S.QUEUED), expected_version=0)
        want = ItemCounts(total=2, succeeded=1, failed=1)
        assert got.progress == want
        assert (await store.get_run(run.id)).progress == want

    async def test_update_run_may_expect_the_item_counts(self, store: Store) -> None:
        """With expected_progress, update_run writes only while the run's item
        counts are those: after an item saved since they were read, it raises
        ConcurrentUpdate and writes nothing; with the counts as stored, it writes."""
        await self.put(store, queued())
        (claim,) = await store.claim("w1", {"backup": LC}, limit=1, lease=LONG)
        run = claim.run
        await store.save_item(Item(run_id=run.id, key="a", status=S.FAILED))
        done = LC.transition(run, S.SUCCEEDED, at=await store.now())
        with pytest.raises(ConcurrentUpdate) as info:
            await store.update_run(
                done, expected_version=run.version, claim=claim, expected_progress=run.progress
            )
        assert info.value.run_id == run.id
        assert "items" in str(info.value)
        now = await store.get_run(run.id)
        assert (now.status, now.version) == (S.RUNNING, run.version)
        counts = ItemCounts(total=1, failed=1)
        assert now.progress == counts
        got = await store.update_run(
            done, expected_version=run.version, claim=claim, expected_progress=counts
        )
        assert (got.status, got.version, got.progress) == (S.SUCCEEDED, done.version, counts)

    # -- claims --------------------------------------------------------------------

    async def test_claim_takes_priority_then_age_then_id(self, store: Store) -> None:
        """claim picks by priority (higher first), then creation (older first),
        then id; only QUEUED runs of the given jobs, at most *limit*."""
        low_old = await self.put(store, queued(when=0, priority=0))
        high_new = await self.put(store, queued(when=30, priority=5))
        tie_b = queued(when=10)
        tie_a = queued(when=10)
        assert tie_b.id < tie_a.id
        await self.put(store, tie_a)
        await self.put(store, tie_b)
        await self.put(store, new_run(when=-5))  # PENDING: not claimable
        await self.put(store, queued("restore", when=-10, priority=9))  # not asked for
        claims = await store.claim("w1", {"backup": LC}, limit=3, lease=LONG)
        assert ids(c.run for c in claims) == [high_new.id, low_old.id, tie_b.id]
        rest = await store.claim("w1", {"backup": LC}, limit=10, lease=LONG)
        assert ids(c.run for c in rest) == [tie_a.id]
        assert await store.claim("w1", {"backup": LC}, limit=10, lease=LONG) == ()

    async def test_claim_moves_the_run_to_running_with_a_lease(self, store: Store) -> None:
        """A claimed run is RUNNING (a new attempt, a history row, an event), owned
        by the worker, with a lease from store time and fence 1."""
        run = await self.put(store, queued())
        before = await store.now()
        (claim,) = await store.claim("w1", {"backup": LC}, limit=5, lease=LONG)
        after = await store.now()
        assert (claim.owner, claim.fence) == ("w1", 1)
        assert claim.run.status is S.RUNNING
        assert claim.run.version == run.version + 1
        assert claim.run.attempt == 1
        assert claim.run.history[-1].reason == "claimed by w1"
        lease = timedelta(seconds=LONG)
        assert before + lease <= claim.expires_at <= after + lease
        assert await store.get_run(run.id) == claim.run
        events = await store.events(run_id=run.id)
        assert events[-1].transition == claim.run.history[-1]
        assert events[-1].status is S.RUNNING

    async def test_claim_enters_the_running_state_of_a_custom_lifecycle(self, store: Store) -> None:
        """claim moves a run through the given job's lifecycle into its RUNNING
        entry state."""
        lc = _tasks_lifecycle()
        await store.save_job(JobRecord(name="promote", spec=JobSpec(lifecycle=lc).to_spec()))
        run = Run.create(job="promote", at=T0, lifecycle=lc, initial="TRIGGER")
        await self.put(store, run)
        (claim,) = await store.claim("w1", {"promote": lc}, limit=1, lease=LONG)
        assert (claim.run.state, claim.run.status) == ("STARTED", S.RUNNING)
        assert (await store.get_run(run.id)).state == "STARTED"

    async def test_claim_respects_max_concurrency(self, store: Store) -> None:
        """A job's max_concurrency counts its RUNNING and WAITING runs."""
        await store.save_job(JobRecord(name="backup", max_concurrency=2))
        runs = [await self.put(store, queued(when=i)) for i in range(4)]
        first = await store.claim("w1", {"backup": LC}, limit=10, lease=LONG)
        assert ids(c.run for c in first) == ids(runs[:2])
        assert await store.claim("w2", {"backup": LC}, limit=10, lease=LONG) == ()
        # A WAITING run still counts; a finished one frees its slot.
        await self.advance(store, first[0].run, S.WAITING, claim=first[0])
        assert await store.claim("w2", {"backup": LC}, limit=10, lease=LONG) == ()
        await self.advance(store, first[1].run, S.SUCCEEDED, claim=first[1])
        again = await store.claim("w2", {"backup": LC}, limit=10, lease=LONG)
        assert ids(c.run for c in again) == [runs[2].id]

    async def test_claim_respects_per_label_limits(self, store: Store) -> None:
        """per_label={"device": 1}: one live run per device; runs without the
        label are not limited by it."""
        await store.save_job(JobRecord(name="backup", per_label={"device": 1}))
        a1 = await self.put(store, queued(when=0, labels={"device": "a"}))
        a2 = await self.put(store, queued(when=1, labels={"device": "a"}))
        b1 = await self.put(store, queued(when=2, labels={"device": "b"}))
        n1 = await self.put(store, queued(when=3))
        n2 = await self.put(store, queued(when=4))
        claims = await store.claim("w1", {"backup": LC}, limit=10, lease=LONG)
        assert ids(c.run for c in claims) == [a1.id, b1.id, n1.id, n2.id]
        await self.advance(store, claims[0].run, S.FAILED, claim=claims[0])
        again = await store.claim("w1", {"backup": LC}, limit=10, lease=LONG)
        assert ids(c.run for c in again) == [a2.id]

    async def test_job_without_a_record_has_no_limits(self, store: Store) -> None:
        """Runs of a job the store has no record of are claimed without limits."""
        for i in range(3):
            await self.put(store, queued(when=i, labels={"device": "a"}))
        claims = await store.claim("w1", {"backup": LC}, limit=10, lease=LONG)
        assert len(claims) == 3

    async def test_claim_bumps_the_fence_each_time(self, store: Store) -> None:
        """Every claim of a run has a fence one higher than the one before."""
        first = await self.claimed(store)
        run = await self.advance(store, first.run, S.RETRYING, claim=first)
        run = await self.advance(store, run, S.QUEUED)
        assert run.status is S.QUEUED
        (second,) = await store.claim("w2", {"backup": LC}, limit=1, lease=LONG)
        assert (second.owner, second.fence) == ("w2", first.fence + 1)
        assert second.run.attempt == 2

    async def test_claim_run_claims_one_run_ignoring_limits(self, store: Store) -> None:
        """claim_run takes a PENDING or QUEUED run whatever the limits; a second
        claim_run raises ConcurrentUpdate; an absent run RunNotFound."""
        await store.save_job(JobRecord(name="backup", max_concurrency=1))
        await self.claimed(store)
        run = await self.put(store, new_run(when=5))
        claim = await store.claim_run(run.id, "w9", LC, lease=LONG)
        assert (claim.owner, claim.fence, claim.run.status) == ("w9", 1, S.RUNNING)
        assert claim.run.history[-1].reason == "claimed by w9"
        assert (await store.get_run(run.id)).status is S.RUNNING
        with pytest.raises(ConcurrentUpdate):
            await store.claim_run(run.id, "w8", LC, lease=LONG)
        with pytest.raises(RunNotFound):
            await store.claim_run("no-such-run", "w8", LC, lease=LONG)

    async def test_heartbeat_extends_the_lease(self, store: Store) -> None:
        """heartbeat moves the expiry to store time + lease and returns it."""
        claim = await self.claimed(store, lease=self.lease)
        before = await store.now()
        expires = await store.heartbeat(claim, lease=LONG)
        assert before + timedelta(seconds=LONG) <= expires
        assert expires > claim.expires_at
        await anyio.sleep(self.lease + 0.1)
        assert await store.abandoned() == ()

    async def test_stale_claims_are_refused_after_a_takeover(self, store: Store) -> None:
        """Once a lapsed run is reaped and claimed again, every write of the old
        claim raises LeaseLost and changes nothing."""
        old = await self.claimed(store, lease=self.lease)
        await anyio.sleep(self.lease + 0.1)
        (lapsed,) = await store.abandoned()
        reaped = LC.transition(lapsed, S.RETRYING, at=await store.now())
        reaped = LC.transition(reaped, S.QUEUED, at=await store.now())
        await store.update_run(reaped, expected_version=lapsed.version, only_if_lapsed=True)
        (new,) = await store.claim("w2", {"backup": LC}, limit=1, lease=LONG)
        assert new.fence == old.fence + 1
        with pytest.raises(LeaseLost) as info:
            await store.heartbeat(old, lease=LONG)
        assert (info.value.run_id, info.value.owner, info.value.fence) == (
            old.run_id,
            "w1",
            old.fence,
        )
        with pytest.raises(LeaseLost):
            await store.update_run(
                moved(new.run, S.SUCCEEDED), expected_version=new.run.version, claim=old
            )
        with pytest.raises(LeaseLost):
            await store.save_item(Item(run_id=old.run_id, key="a"), claim=old)
        with pytest.raises(LeaseLost):
            await store.append_logs([LogLine(run_id=old.run_id, seq=0, at=T0)], claim=old)
        assert await store.items(old.run_id) == ()
        assert (await store.logs(LogQuery(run_id=old.run_id))).lines == ()
        current = await store.get_run(old.run_id)
        assert current == new.run
        # The new holder writes freely.
        await store.heartbeat(new, lease=LONG)
        await store.save_item(Item(run_id=new.run_id, key="a"), claim=new)
        done = await self.advance(store, new.run, S.SUCCEEDED, claim=new)
        assert done.status is S.SUCCEEDED

    async def test_lease_lost_is_checked_before_the_version(self, store: Store) -> None:
        """A stale claim with a stale version raises LeaseLost, not ConcurrentUpdate."""
        claim = await self.claimed(store)
        other = Claim(run=claim.run, owner="intruder", fence=claim.fence, expires_at=T0)
        with pytest.raises(LeaseLost):
            await store.update_run(moved(claim.run, S.SUCCEEDED), expected_version=99, claim=other)
        wrong_fence = attrs.evolve(claim, fence=claim.fence + 1)
        with pytest.raises(LeaseLost):
            await store.heartbeat(wrong_fence, lease=LONG)

    async def test_leaving_running_ends_the_hold(self, store: Store) -> None:
        """A write that moves a run out of RUNNING/WAITING clears owner and lease:
        the old claim is refused afterwards, and the run is not abandoned."""
        claim = await self.claimed(store)
        run = await self.advance(store, claim.run, S.SUCCEEDED, claim=claim)
        with pytest.raises(LeaseLost):
            await store.heartbeat(claim, lease=LONG)
        with pytest.raises(LeaseLost):
            await store.save_item(Item(run_id=run.id, key="late"), claim=claim)
        assert await store.abandoned() == ()

    async def test_a_waiting_run_keeps_its_hold(self, store: Store) -> None:
        """RUNNING -> WAITING with the claim keeps owner and lease (a run waiting for
        a signal is still its worker's): heartbeats renew it, the claim moves it
        back to RUNNING in the same attempt, and once its lease lapses it is
        abandoned and the reaper's write moves it WAITING -> RETRYING."""
        claim = await self.claimed(store, lease=self.lease)
        waiting = await self.advance(store, claim.run, S.WAITING, claim=claim)
        await store.heartbeat(claim, lease=LONG)
        await anyio.sleep(self.lease + 0.1)
        assert await store.abandoned() == ()
        back = await self.advance(store, waiting, S.RUNNING, claim=claim)
        assert (back.status, back.attempt) == (S.RUNNING, 1)
        again = await self.advance(store, back, S.WAITING, claim=claim)
        await store.heartbeat(claim, lease=self.lease)
        await anyio.sleep(self.lease + 0.1)
        (lapsed,) = await store.abandoned()
        assert (lapsed.id, lapsed.status, lapsed.version) == (again.id, S.WAITING, again.version)
        reaped = await store.update_run(
            moved(lapsed, S.RETRYING), expected_version=lapsed.version, only_if_lapsed=True
        )
        assert [t.to for t in reaped.history] == [
            S.RUNNING,
            S.WAITING,
            S.RUNNING,
            S.WAITING,
            S.RETRYING,
        ]
        with pytest.raises(LeaseLost):
            await store.heartbeat(claim, lease=LONG)

    async def test_only_if_lapsed_refuses_a_live_lease(self, store: Store) -> None:
        """only_if_lapsed (the reaper) is refused with ConcurrentUpdate while the
        lease holds, and goes through once it lapsed by store time."""
        live = await self.claimed(store, "live", lease=LONG)
        with pytest.raises(ConcurrentUpdate):
            await store.update_run(
                moved(live.run, S.RETRYING), expected_version=live.run.version, only_if_lapsed=True
            )
        assert (await store.get_run(live.run_id)).status is S.RUNNING
        # A short lease is only checked after it lapsed: a slow machine cannot flake it.
        claim = await self.claimed(store, lease=self.lease)
        reaped = moved(claim.run, S.RETRYING)
        await anyio.sleep(self.lease + 0.1)
        got = await store.update_run(
            reaped, expected_version=claim.run.version, only_if_lapsed=True
        )
        assert got.status is S.RETRYING

    async def test_abandoned_finds_lapsed_leases_only(self, store: Store) -> None:
        """abandoned() lists live runs whose lease lapsed (oldest lapse first) or
        that have none, never a run whose lease holds."""
        first = await self.claimed(store, "a", lease=self.lease)
        second = await self.claimed(store, "b", lease=self.lease + 0.05)
        live = await self.claimed(store, "c", lease=LONG)
        await anyio.sleep(self.lease + 0.15)
        lapsed = await store.abandoned()
        assert ids(lapsed) == [first.run_id, second.run_id]
        assert live.run_id not in ids(lapsed)
        assert ids(await store.abandoned(limit=1)) == [first.run_id]
        # A run moved into RUNNING without a claim has no lease at all.
        bare = await self.put(store, new_run("d"))
        await self.advance(store, bare, S.RUNNING)
        assert bare.id in ids(await store.abandoned())

    async def test_due_lists_runs_whose_time_has_come(self, store: Store) -> None:
        """due() returns runs in the given statuses whose due_at has passed, earliest
        first; not those due later, nor those in other statuses."""
        now = await store.now()
        late = await self.put(store, new_run(scheduled_for=now - timedelta(seconds=10)))
        early = await self.put(store, new_run(scheduled_for=now - timedelta(seconds=20)))
        await self.put(store, new_run(scheduled_for=now + timedelta(hours=1)))
        await self.put(store, new_run())  # not due at all
        retrying = moved(
            await self.put(store, new_run()),
            S.RUNNING,
            S.RETRYING,
        )
        retrying = attrs.evolve(retrying, due_at=now - timedelta(seconds=15))
        await store.update_run(retrying, expected_version=0)
        assert ids(await store.due([S.PENDING])) == [early.id, late.id]
        assert ids(await store.due([S.PENDING, S.RETRYING])) == [early.id, retrying.id, late.id]
        assert ids(await store.due([S.PENDING], limit=1)) == [early.id]
        assert await store.due([S.QUEUED]) == ()

    # -- queries -----------------------------------------------------------------

    async def _catalogue(self, store: Store) -> dict[str, Run]:
        """A small set of runs that differ in every field queries filter on."""
        parent = await self.put(store, new_run("backup", when=0, labels={"site": "dc1"}))
        runs: dict[str, Run] = {"parent": parent}
        runs["failed"] = await self.put(
            store, new_run("backup", when=10, labels={"site": "dc2", "device": "core-rtr-01"})
        )
        await store.update_run(
            moved(
                runs["failed"],
                S.RUNNING,
                S.FAILED,
                when=20,
                error=ErrorInfo(type="OSError", message="No Route to host"),
            ),
            expected_version=0,
        )
        runs["scheduled"] = await self.put(
            store,
            new_run(
                "restore",
                when=30,
                trigger=Trigger.SCHEDULED,
                scheduled_for=at(30),
                labels={"site": "dc1", "device": "edge-02"},
            ),
        )
        runs["child"] = await self.put(
            store,
            new_run("restore", when=40, trigger=Trigger.RETRY, parent=parent, workflow_run_id="wf"),
        )
        await store.update_run(moved(runs["child"], S.RUNNING, when=45), expected_version=0)
        return {name: await store.get_run(run.id) for name, run in runs.items()}

    async def test_list_runs_filters(self, store: Store) -> None:
        """Every RunQuery criterion filters, and all given criteria must hold."""
        r = await self._catalogue(store)

        async def names(**query: Any) -> list[str]:
            page = await store.list_runs(RunQuery(**query))
            by_id = {run.id: name for name, run in r.items()}
            return [by_id[run.id] for run in page.runs]

        assert await names() == ["child", "scheduled", "failed", "parent"]
        assert await names(job="restore") == ["child", "scheduled"]
        assert await names(status="FAILED") == ["failed"]
        assert await names(status=(S.PENDING, S.RUNNING)) == ["child", "scheduled", "parent"]
        assert await names(trigger=Trigger.SCHEDULED) == ["scheduled"]
        assert await names(trigger=(Trigger.RETRY, Trigger.SCHEDULED)) == ["child", "scheduled"]
        assert await names(labels={"site": "dc1"}) == ["scheduled", "parent"]
        assert await names(labels={"site": "dc1", "device": "edge-02"}) == ["scheduled"]
        assert await names(labels={"site": "dc1", "device": "nope"}) == []
        assert await names(since=at(10), until=at(40)) == ["scheduled", "failed"]
        assert await names(since=at(10), field="started") == ["child", "failed"]
        assert await names(until=at(21), field="ended") == ["failed"]
        assert await names(since=at(21), field="ended") == []
        assert await names(text="RESTORE") == ["child", "scheduled"]
        assert await names(text="route to") == ["failed"]
        assert await names(text="rtr-01") == ["failed"]
        assert await names(text="EDGE") == ["scheduled"]
        assert await names(workflow_run_id="wf") == ["child"]
        assert await names(parent_id=r["parent"].id) == ["child"]
        assert await names(job="backup", status="PENDING", labels={"site": "dc1"}) == ["parent"]

    async def test_count_runs_by_status(self, store: Store) -> None:
        """count_runs counts matches per status, leaving out empty statuses and
        ignoring limit and cursor."""
        await self._catalogue(store)
        assert await store.count_runs(RunQuery()) == {S.PENDING: 2, S.FAILED: 1, S.RUNNING: 1}
        assert await store.count_runs(RunQuery(job="restore", limit=1)) == {
            S.PENDING: 1,
            S.RUNNING: 1,
        }
        assert await store.count_runs(RunQuery(job="nope")) == {}

    async def test_list_runs_pages_newest_first(self, store: Store) -> None:
        """Pages of *limit* runs, newest first (ties by id, descending), continued
        by next_cursor, which is None on the last page."""
        made = [await self.put(store, new_run(when=i // 2)) for i in range(7)]
        want = sorted(made, key=lambda run: (run.created_at, run.id), reverse=True)
        seen: list[Run] = []
        cursor = None
        for size in (3, 3, 1):
            page = await store.list_runs(RunQuery(limit=3, cursor=cursor))
            assert len(page.runs) == size
            seen.extend(page.runs)
            cursor = page.next_cursor
            if size < 3:
                assert cursor is None
        assert ids(seen) == ids(want)
        exact = await store.list_runs(RunQuery(limit=7))
        assert len(exact.runs) == 7
        assert exact.next_cursor is None
        assert (await store.list_runs(RunQuery(job="none"))).runs == ()

    async def test_pagination_is_stable_while_runs_are_inserted(self, store: Store) -> None:
        """Runs created between pages (newer, or older than the page edge) cause
        no duplicate and no gap among the runs a reader pages through."""
        made = [await self.put(store, new_run(when=i)) for i in range(0, 50, 2)]
        seen: list[str] = []
        cursor = None
        for round_ in itertools.count():
            page = await store.list_runs(RunQuery(limit=4, cursor=cursor))
            seen.extend(ids(page.runs))
            # Newer runs (ahead of the reader) and runs between old ones.
            await self.put(store, new_run(when=100 + round_))
            await self.put(store, new_run(when=2 * round_ + 1))
            cursor = page.next_cursor
            if cursor is None:
                break
        assert len(seen) == len(set(seen))
        assert set(ids(made)) <= set(seen)
        original = [rid for rid in seen if rid in set(ids(made))]
        assert original == ids(sorted(made, key=lambda r: r.created_at, reverse=True))

    # -- items -------------------------------------------------------------------

    async def test_items_upsert_keep_order_and_progress(self, store: Store) -> None:
        """save_item inserts or replaces (run, key), keeps first-save order, filters
        by status and maintains the run's progress, with an item event each."""
        run = await self.put(store, new_run())
        t = await store.now()
        await store.save_item(Item(run_id=run.id, key="core-rtr-01", phase="backup"))
        await store.save_item(Item(run_id=run.id, key="core-rtr-02", status=S.RUNNING))
        saved = await store.save_item(
            Item(
                run_id=run.id,
                key="core-rtr-01",
                phase="backup",
                status=S.SUCCEEDED,
                started_at=t,
                ended_at=t + timedelta(microseconds=1500),
                attempts=1,
                output={"bytes": 1024, "files": ["a", "b"]},
            )
        )
        assert saved.output == {"bytes": 1024, "files": ["a", "b"]}
        await store.save_item(
            Item(
                run_id=run.id,
                key="core-rtr-03",
                status=S.FAILED,
                error=ErrorInfo(type="OSError", message="refused"),
            )
        )
        items = await store.items(run.id)
        assert [i.key for i in items] == ["core-rtr-01", "core-rtr-02", "core-rtr-03"]
        assert items[0] == saved
        assert items[0].duration == timedelta(microseconds=1500)
        assert utc(items[0].started_at)
        assert items[2].error == ErrorInfo(type="OSError", message="refused")
        assert [i.key for i in await store.items(run.id, S.RUNNING)] == ["core-rtr-02"]
        assert (await store.get_run(run.id)).progress == ItemCounts(
            total=3, running=1, succeeded=1, failed=1
        )
        events = [e for e in await store.events(run_id=run.id) if e.kind == "item"]
        assert [e.item.key for e in events if e.item] == [
            "core-rtr-01",
            "core-rtr-02",
            "core-rtr-01",
            "core-rtr-03",
        ]
        assert events[2].item == saved

    async def test_save_items_writes_many_at_once(self, store: Store) -> None:
        """save_items stores items of one run in order, in one write: a later item of
        a key replaces an earlier one (keeping its first-saved place), the progress
        moves by all of them, each gets its event, and the stored items come back."""
        run = await self.put(store, new_run())
        await store.save_item(Item(run_id=run.id, key="d1", status=S.SUCCEEDED))
        t = await store.now()
        batch = [
            Item(run_id=run.id, key="d2"),
            Item(run_id=run.id, key="d3"),
            Item(run_id=run.id, key="d2", status=S.RUNNING, started_at=t, attempts=1),
            Item(run_id=run.id, key="d1", status=S.FAILED, attempts=2,
                 error=ErrorInfo(kind="timeout", type="TimeoutError", message="30 s")),
            Item(run_id=run.id, key="d4", phase="check", status=S.SKIPPED,
                 output={"kept": [1, 2]}, reason="succeeded in run r0"),
        ]  # fmt: skip
        stored = await store.save_items(batch, claim=None)
        assert stored == tuple(batch)
        items = await store.items(run.id)
        assert [(i.key, i.status) for i in items] == [
            ("d1", S.FAILED), ("d2", S.RUNNING), ("d3", S.PENDING), ("d4", S.SKIPPED)
        ]  # fmt: skip
        assert items[0].error == ErrorInfo(kind="timeout", type="TimeoutError", message="30 s")
        assert items[0].attempts == 2
        assert items[1].started_at == t
        assert utc(items[1].started_at)
        assert items[3] == batch[4]
        assert (items[3].reason, items[3].output) == ("succeeded in run r0", {"kept": [1, 2]})
        assert (await store.get_run(run.id)).progress == ItemCounts(
            total=4, pending=1, running=1, failed=1, skipped=1
        )
        events = [e.item for e in await store.events(run_id=run.id) if e.kind == "item"]
        assert events == [Item(run_id=run.id, key="d1", status=S.SUCCEEDED), *batch]
        assert await store.save_items([]) == ()

    async def test_save_items_is_all_or_nothing(self, store: Store) -> None:
        """A batch with one bad item, items of two runs, or a stale claim stores
        none of its items."""
        claim = await self.claimed(store)
        rid = claim.run_id
        other = await self.put(store, new_run())
        with pytest.raises(NotSerializable):
            await store.save_items(
                [Item(run_id=rid, key="a"), Item(run_id=rid, key="b", output=object())]
            )
        with pytest.raises(InvalidValue, match=r"items\[1\]\.run_id"):
            await store.save_items([Item(run_id=rid, key="a"), Item(run_id=other.id, key="b")])
        with pytest.raises(InvalidValue, match=r"items\[0\]\.run_id"):
            await store.save_items([Item(run_id=other.id, key="a")], claim=claim)
        stale = attrs.evolve(claim, fence=claim.fence + 1)
        with pytest.raises(LeaseLost):
            await store.save_items([Item(run_id=rid, key="a")], claim=stale)
        with pytest.raises(RunNotFound):
            await store.save_items([Item(run_id="no-such-run", key="a")])
        assert await store.items(rid) == ()
        assert (await store.get_run(rid)).progress == ItemCounts()
        assert [e for e in await store.events(run_id=rid) if e.kind == "item"] == []
        await store.save_items([Item(run_id=rid, key="a")], claim=claim)
        assert [i.key for i in await store.items(rid)] == ["a"]

    async def test_items_filter_by_phase_and_page_after_a_key(self, store: Store) -> None:
        """items filters by status and phase, continues after the item of a key (none
        after an unknown key) and returns at most limit items, in first-saved order."""
        run = await self.put(store, new_run())
        await store.save_items(
            [
                Item(run_id=run.id, key=f"step-{n}", phase=("pre-check", "change")[n % 2],
                     status=(S.SUCCEEDED, S.FAILED, S.PENDING)[n % 3])
                for n in range(12)
            ]
        )  # fmt: skip
        keys = [i.key for i in await store.items(run.id)]
        assert keys == [f"step-{n}" for n in range(12)]
        change = await store.items(run.id, phase="change")
        assert [i.key for i in change] == [f"step-{n}" for n in (1, 3, 5, 7, 9, 11)]
        failed_changes = await store.items(run.id, S.FAILED, phase="change")
        assert [i.key for i in failed_changes] == ["step-1", "step-7"]
        pages, after = [], None
        while True:
            page = await store.items(run.id, phase="change", after=after, limit=4)
            if not page:
                break
            pages.append([i.key for i in page])
            after = page[-1].key
        assert pages == [["step-1", "step-3", "step-5", "step-7"], ["step-9", "step-11"]]
        assert await store.items(run.id, after="no-such-key") == ()
        assert [i.key for i in await store.items(run.id, after="step-10")] == ["step-11"]
        assert await store.items(run.id, phase="post-check") == ()
        for bad in ({"limit": 0}, {"after": ""}, {"phase": 3}, {"status": "BOGUS"}):
            with pytest.raises(InvalidValue):
                await store.items(run.id, **bad)

    async def test_save_item_of_unknown_run_raises_run_not_found(self, store: Store) -> None:
        """An item of a run that does not exist is refused."""
        with pytest.raises(RunNotFound):
            await store.save_item(Item(run_id="no-such-run", key="a"))

    async def test_unknown_runs_read_empty_and_refuse_writes(self, store: Store) -> None:
        """Reads of an unknown run's items, logs and signals are empty; writes to it
        raise RunNotFound (a heartbeat: LeaseLost) and store nothing."""
        assert await store.items("no-such-run") == ()
        assert (await store.logs(LogQuery(run_id="no-such-run"))).lines == ()
        assert await store.search_logs("no-such-run", "x") == ()
        assert await store.signals("no-such-run") == {}
        run = await self.put(store, new_run())
        with pytest.raises(RunNotFound):
            await store.append_logs(
                [
                    LogLine(run_id=run.id, seq=0, at=T0, message="kept out"),
                    LogLine(run_id="no-such-run", seq=0, at=T0, message="x"),
                ]
            )
        assert (await store.logs(LogQuery(run_id=run.id))).lines == ()
        claim = await self.claimed(store)
        ghost = attrs.evolve(claim, run=attrs.evolve(claim.run, id="no-such-run"))
        with pytest.raises(LeaseLost):
            await store.heartbeat(ghost, lease=LONG)

    # -- logs --------------------------------------------------------------------

    async def test_append_logs_numbers_each_runs_lines(self, store: Store) -> None:
        """append_logs gives each run's lines the next seq from 1, whatever seq
        they carry, across batches and runs; fields and times read back."""
        a = await self.put(store, new_run())
        b = await self.put(store, new_run())
        t = await store.now()
        out = await store.append_logs(
            [
                LogLine(run_id=a.id, seq=99, at=t, message="one", fields={"host": "r1"}),
                LogLine(run_id=b.id, seq=0, at=t, message="b-one"),
                LogLine(run_id=a.id, seq=0, at=t, message="two", level="error", attempt=1),
            ]
        )
        assert [(line.run_id, line.seq) for line in out] == [(a.id, 1), (b.id, 1), (a.id, 2)]
        more = await store.append_logs(
            [LogLine(run_id=a.id, seq=0, at=t, message="three", stream="stderr", item="r1")]
        )
        assert more[0].seq == 3
        page = await store.logs(LogQuery(run_id=a.id))
        assert [line.message for line in page.lines] == ["one", "two", "three"]
        assert page.lines[0] == out[0]
        assert page.lines[0].fields == {"host": "r1"}
        assert page.lines[1] == out[2]
        assert page.lines[2] == more[0]
        assert utc(page.lines[0].at)
        assert page.next_cursor is None

    async def test_an_append_writes_one_log_event_per_run(self, store: Store) -> None:
        """Each append_logs writes one ``log`` event for each run it appended to
        (not one per line): how many lines, and the last of them, as stored; a
        follower of events learns of log activity without reading the log."""
        a = await self.put(store, new_run())
        b = await self.put(store, new_run())
        t = await store.now()
        before = await store.events()
        out = await store.append_logs(
            [LogLine(run_id=a.id, seq=0, at=t, message=f"a{n}", fields={"n": n}) for n in range(3)]
            + [LogLine(run_id=b.id, seq=0, at=t, message="b0", item="r1", attempt=1)]
        )
        await store.append_logs([LogLine(run_id=a.id, seq=0, at=t, message="a3", level="error")])
        events = await store.events(after=before[-1].seq if before else None)
        assert [(e.kind, e.run_id, e.lines) for e in events] == [
            ("log", a.id, 3),
            ("log", b.id, 1),
            ("log", a.id, 1),
        ]
        assert events[0].log == out[2]
        assert events[0].log.fields == {"n": 2}
        assert events[1].log == out[3]
        assert events[2].log is not None
        assert (events[2].log.seq, events[2].log.message, events[2].log.level) == (4, "a3", "error")
        assert all(e.job == "backup" and e.status is S.PENDING for e in events)
        assert all(e.transition is None and e.item is None and e.progress is None for e in events)
        assert all(utc(e.at) for e in events)
        await store.append_logs([])
        assert len(await store.events(after=events[-1].seq)) == 0

    async def test_item_events_carry_the_runs_progress_after_each(self, store: Store) -> None:
        """Each item event carries the run's item counts right after that item was
        saved, through save_item and within one save_items batch alike."""
        run = await self.put(store, new_run())
        await store.save_item(Item(run_id=run.id, key="d1", status=S.RUNNING))
        await store.save_items(
            [
                Item(run_id=run.id, key="d2"),
                Item(run_id=run.id, key="d1", status=S.SUCCEEDED),
                Item(run_id=run.id, key="d2", status=S.FAILED),
                Item(run_id=run.id, key="d3", status=S.SKIPPED),
            ]
        )
        events = [e for e in await store.events(run_id=run.id) if e.kind == "item"]
        assert [e.progress for e in events] == [
            ItemCounts(total=1, running=1),
            ItemCounts(total=2, pending=1, running=1),
            ItemCounts(total=2, pending=1, succeeded=1),
            ItemCounts(total=2, succeeded=1, failed=1),
            ItemCounts(total=3, succeeded=1, failed=1, skipped=1),
        ]
        assert events[-1].progress == (await store.get_run(run.id)).progress
        assert all(e.lines is None and e.log is None for e in events)

    async def test_a_claim_appends_nothing_once_its_run_ended(self, store: Store) -> None:
        """A run's log is frozen once the run is terminal: its holder's claim ends
        with the terminal write, and lines appended with it are refused with
        LeaseLost; what was appended before stays as it was. A WAITING run's
        claim still appends (its attempt is alive)."""
        claim = await self.claimed(store)
        t = await store.now()
        await store.append_logs(
            [LogLine(run_id=claim.run_id, seq=0, at=t, message="one")], claim=claim
        )
        waiting = await self.advance(store, claim.run, S.WAITING, claim=claim)
        await store.append_logs(
            [LogLine(run_id=claim.run_id, seq=0, at=t, message="two")], claim=claim
        )
        running = await self.advance(store, waiting, S.RUNNING, claim=claim)
        done = await self.advance(store, running, S.SUCCEEDED, claim=claim)
        assert done.status is S.SUCCEEDED
        with pytest.raises(LeaseLost):
            await store.append_logs(
                [LogLine(run_id=claim.run_id, seq=0, at=t, message="late")], claim=claim
            )
        with pytest.raises(LeaseLost):
            await store.append_logs([], claim=claim)
        page = await store.logs(LogQuery(run_id=claim.run_id))
        assert [(line.seq, line.message) for line in page.lines] == [(1, "one"), (2, "two")]

    async def test_logs_page_by_cursor_and_filter(self, store: Store) -> None:
        """Log pages hold 500 lines by default, continue from next_cursor (None at
        the end) and filter by stream, item and level."""
        run = await self.put(store, new_run())
        t = await store.now()
        lines = [
            LogLine(
                run_id=run.id,
                seq=0,
                at=t,
                message=f"line {n}",
                stream="stdout" if n % 3 == 0 else "log",
                item=f"dev-{n % 2}",
                level="error" if n % 5 == 0 else "info",
            )
            for n in range(1, 1101)
        ]
        for start in range(0, len(lines), 400):
            await store.append_logs(lines[start : start + 400])
        seqs: list[int] = []
        cursor = None
        sizes = []
        while True:
            page = await store.logs(LogQuery(run_id=run.id, cursor=cursor))
            sizes.append(len(page.lines))
            seqs.extend(line.seq for line in page.lines)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sizes == [500, 500, 100]
        assert seqs == list(range(1, 1101))
        page = await store.logs(
            LogQuery(run_id=run.id, stream="stdout", item="dev-1", level="error", limit=10)
        )
        assert [line.seq for line in page.lines] == list(range(15, 1101, 30))[:10]
        rest = await store.logs(
            LogQuery(
                run_id=run.id,
                stream="stdout",
                item="dev-1",
                level="error",
                limit=100,
                cursor=page.next_cursor,
            )
        )
        assert [line.seq for line in rest.lines] == list(range(15, 1101, 30))[10:]
        assert rest.next_cursor is None

    async def test_search_logs(self, store: Store) -> None:
        """search_logs finds lines whose message contains the text, ignoring case,
        in order, with their seq, up to *limit*."""
        run = await self.put(store, new_run())
        other = await self.put(store, new_run())
        t = await store.now()
        await store.append_logs(
            [
                LogLine(run_id=run.id, seq=0, at=t, message="Backing up core-rtr-01"),
                LogLine(run_id=run.id, seq=0, at=t, message="connected"),
                LogLine(run_id=run.id, seq=0, at=t, message="backing UP core-rtr-02"),
                LogLine(run_id=other.id, seq=0, at=t, message="backing up elsewhere"),
            ]
        )
        found = await store.search_logs(run.id, "backing up")
        assert [(line.seq, line.message) for line in found] == [
            (1, "Backing up core-rtr-01"),
            (3, "backing UP core-rtr-02"),
        ]
        assert len(await store.search_logs(run.id, "BACKING", limit=1)) == 1
        assert await store.search_logs(run.id, "nothing like it") == ()

    # -- signals and events ------------------------------------------------------

    async def test_signals_are_stored_and_replaced(self, store: Store) -> None:
        """A signal is stored by name with its JSON payload; a later one replaces it."""
        run = await self.put(store, new_run())
        assert await store.signals(run.id) == {}
        await store.send_signal(run.id, "approve", {"by": "ana"})
        await store.send_signal(run.id, "note")
        await store.send_signal(run.id, "approve", {"by": "bob"})
        assert await store.signals(run.id) == {"approve": {"by": "bob"}, "note": None}
        with pytest.raises(RunNotFound):
            await store.send_signal("no-such-run", "approve")

    # -- cancel requests ---------------------------------------------------------

    async def test_a_cancel_request_is_stored_for_a_held_run_and_the_first_stands(
        self, store: Store
    ) -> None:
        """request_cancel of a RUNNING run stores who asked, why and when (store
        time) and returns it; a later request returns the first unchanged. The
        run itself is not changed, and its holder keeps its lease."""
        claim = await self.claimed(store)
        other = await self.claimed(store, "restore")
        before = await store.now()
        request = await store.request_cancel(claim.run_id, by="ops:ana", reason="wrong device")
        after = await store.now()
        assert request is not None
        assert (request.run_id, request.by, request.reason) == (
            claim.run_id,
            "ops:ana",
            "wrong device",
        )
        assert utc(request.at)
        assert before <= request.at <= after
        again = await store.request_cancel(claim.run_id, by="ops:bob")
        assert again == request
        assert await store.cancel_requests([claim.run_id, other.run_id, "no-such-run"]) == {
            claim.run_id: request
        }
        assert await store.cancel_requests([]) == {}
        assert await store.get_run(claim.run_id) == claim.run
        await store.heartbeat(claim, lease=LONG)
        done = await self.advance(store, claim.run, S.CANCELLED, claim=claim)
        assert done.status is S.CANCELLED

    async def test_a_cancel_request_of_a_run_nobody_holds_stores_nothing(
        self, store: Store
    ) -> None:
        """A PENDING, QUEUED, RETRYING or terminal run gets no request (None, nothing
        stored); a WAITING run gets one; an unknown run raises RunNotFound."""
        pending = await self.put(store, new_run())
        queued_run = await self.put(store, queued("restore"))
        retrying = await self.put(store, new_run("sync"))
        retrying = await self.advance(store, retrying, S.RUNNING, S.RETRYING)
        ended = await self.put(store, new_run("report"))
        ended = await self.advance(store, ended, S.CANCELLED)
        unheld = [pending, queued_run, retrying, ended]
        for run in unheld:
            assert await store.request_cancel(run.id, by="ops:ana") is None
        assert await store.cancel_requests([r.id for r in unheld]) == {}
        for run in unheld:
            assert await store.get_run(run.id) == run
        claim = await self.claimed(store, "wait")
        waiting = await self.advance(store, claim.run, S.WAITING, claim=claim)
        request = await store.request_cancel(waiting.id, by="ops:ana")
        assert request is not None
        assert (request.by, request.reason) == ("ops:ana", None)
        with pytest.raises(RunNotFound):
            await store.request_cancel("no-such-run", by="ops:ana")

    async def test_a_cancel_request_stays_with_its_run_until_purged(self, store: Store) -> None:
        """A request is kept whatever the run does next (so a run that went on to
        another attempt still carries it), and purge deletes it with its run."""
        claim = await self.claimed(store)
        request = await store.request_cancel(claim.run_id, by="ops:ana", reason="stop")
        assert request is not None
        run = await self.advance(store, claim.run, S.RETRYING, claim=claim)
        run = await self.advance(store, run, S.QUEUED)
        assert await store.request_cancel(run.id, by="ops:bob") is None
        assert await store.cancel_requests([run.id]) == {run.id: request}
        (again,) = await store.claim("w2", {"backup": LC}, limit=1, lease=LONG)
        assert await store.request_cancel(run.id, by="ops:bob") == request
        ended = await self.advance(store, again.run, S.CANCELLED, claim=again)
        assert await store.cancel_requests([run.id]) == {run.id: request}
        assert ended.ended_at is not None
        assert await store.purge(older_than=ended.ended_at + timedelta(seconds=1)) == 1
        assert await store.cancel_requests([run.id]) == {}

    async def test_racing_cancel_requests_store_one(self, store: Store) -> None:
        """Of many concurrent requests for one run, one is stored and every caller
        gets that one."""
        claim = await self.claimed(store)
        got: list[Any] = []

        async def ask(n: int) -> None:
            got.append(await store.request_cancel(claim.run_id, by=f"ops:{n}", reason=str(n)))

        async with anyio.create_task_group() as tg:
            for n in range(8):
                tg.start_soon(ask, n)
        stored = await store.cancel_requests([claim.run_id])
        assert len(got) == 8
        assert all(request == stored[claim.run_id] for request in got)

    async def test_events_after_and_by_run(self, store: Store) -> None:
        """events(after=seq) returns later events in order; run_id and limit filter."""
        a = await self.put(store, new_run())
        b = await self.put(store, new_run())
        await store.update_run(moved(a, S.QUEUED), expected_version=0)
        await store.update_run(moved(b, S.QUEUED), expected_version=0)
        await store.update_run(moved(a, S.QUEUED, S.CANCELLED), expected_version=1)
        every = [e for e in await store.events() if e.kind == "transition"]
        assert [(e.run_id, e.status) for e in every] == [
            (a.id, S.QUEUED),
            (b.id, S.QUEUED),
            (a.id, S.CANCELLED),
        ]
        assert [
            e.seq for e in await store.events(after=every[0].seq) if e.kind == "transition"
        ] == [
            every[1].seq,
            every[2].seq,
        ]
        of_a = await store.events(run_id=a.id)
        assert [e.status for e in of_a if e.kind == "transition"] == [S.QUEUED, S.CANCELLED]
        assert len(await store.events(limit=2)) == 2
        assert await store.events(after=every[-1].seq, run_id=a.id) == ()

    async def test_wait_changed_wakes_on_a_change_or_times_out(self, store: Store) -> None:
        """wait_changed returns soon after a change, and by its timeout without one
        (a wake-up may come early: it is a hint)."""
        run = await self.put(store, new_run())
        start = anyio.current_time()
        await store.wait_changed(0.2)
        assert anyio.current_time() - start < 2
        async with anyio.create_task_group() as tg:

            async def change() -> None:
                await anyio.sleep(0.1)
                await store.send_signal(run.id, "go")

            tg.start_soon(change)
            start = anyio.current_time()
            await store.wait_changed(10)
        assert anyio.current_time() - start < 5

    # -- jobs --------------------------------------------------------------------

    async def test_jobs_save_get_list_and_pause(self, store: Store) -> None:
        """save_job stores a job (keeping its stored paused and last_scheduled_for),
        list_jobs sorts by name, set_paused toggles, absent jobs raise JobNotFound."""
        saved = await store.save_job(
            JobRecord(
                name="restore",
                spec={"retry": {"max_attempts": 3}},
                max_concurrency=2,
                per_label={"device": 1},
            )
        )
        assert saved.spec == {"retry": {"max_attempts": 3}}
        assert (saved.max_concurrency, saved.per_label) == (2, {"device": 1})
        await store.save_job(JobRecord(name="backup"))
        assert [j.name for j in await store.list_jobs()] == ["backup", "restore"]
        paused = await store.set_paused("restore", True)
        assert paused.paused
        await self.put(store, new_run("restore", trigger=Trigger.SCHEDULED, scheduled_for=at(60)))
        again = await store.save_job(JobRecord(name="restore", max_concurrency=5))
        assert again.paused
        assert again.last_scheduled_for == at(60)
        assert again.max_concurrency == 5
        assert await store.get_job("restore") == again
        assert not (await store.set_paused("restore", False)).paused
        with pytest.raises(JobNotFound):
            await store.get_job("nope")
        with pytest.raises(JobNotFound):
            await store.set_paused("nope", True)

    # -- retention -----------------------------------------------------------------

    async def test_purge_removes_old_terminal_runs_with_everything(self, store: Store) -> None:
        """purge deletes terminal runs ended before the cut-off with their items,
        logs, signals and events; newer and active runs stay."""
        old = await self.put(store, new_run(idempotency_key="k"))
        old = await store.update_run(
            moved(old, S.RUNNING, S.SUCCEEDED, when=10), expected_version=0
        )
        await store.save_item(Item(run_id=old.id, key="a", status=S.SUCCEEDED))
        await store.append_logs([LogLine(run_id=old.id, seq=0, at=T0, message="bye")])
        await store.send_signal(old.id, "note", 1)
        newer = await self.put(store, new_run())
        newer = await store.update_run(moved(newer, S.CANCELLED, when=30), expected_version=0)
        active = await self.put(store, new_run(when=-100))
        running = await self.claimed(store)
        assert await store.purge(older_than=at(20), batch=1) == 1
        with pytest.raises(RunNotFound):
            await store.get_run(old.id)
        assert await store.items(old.id) == ()
        assert (await store.logs(LogQuery(run_id=old.id))).lines == ()
        assert await store.search_logs(old.id, "bye") == ()
        assert await store.signals(old.id) == {}
        assert await store.events(run_id=old.id) == ()
        for kept in (newer, active, running.run):
            assert (await store.get_run(kept.id)).id == kept.id
        # A purged idempotency key may be used again.
        fresh = await store.create_run(new_run(idempotency_key="k"))
        assert fresh.id != old.id
        assert await store.purge(older_than=datetime(9999, 1, 1, tzinfo=UTC)) == 1
        remaining = {run.id for run in (await store.list_runs(RunQuery(limit=100))).runs}
        assert remaining == {active.id, running.run_id, fresh.id}

    # -- JSON only -------------------------------------------------------------------

    async def test_non_json_values_are_refused_before_writing(self, store: Store) -> None:
        """Params, results, item outputs, log fields, signal payloads and job specs
        that are not JSON raise NotSerializable naming the field; nothing is written."""
        bad_params = attrs.evolve(new_run(), params={"when": datetime.now(UTC)})
        with pytest.raises(NotSerializable, match="params"):
            await store.create_run(bad_params)
        with pytest.raises(RunNotFound):
            await store.get_run(bad_params.id)
        run = await self.put(store, new_run())
        with pytest.raises(NotSerializable, match="result"):
            await store.update_run(
                attrs.evolve(moved(run, S.QUEUED), result={1, 2}), expected_version=0
            )
        assert (await store.get_run(run.id)).version == 0
        with pytest.raises(NotSerializable, match="output"):
            await store.save_item(Item(run_id=run.id, key="a", output=object()))
        assert await store.items(run.id) == ()
        with pytest.raises(NotSerializable, match="fields"):
            await store.append_logs(
                [
                    LogLine(run_id=run.id, seq=0, at=T0, message="fine"),
                    LogLine(run_id=run.id, seq=0, at=T0, fields={"x": float("nan")}),
                ]
            )
        assert (await store.logs(LogQuery(run_id=run.id))).lines == ()
        with pytest.raises(NotSerializable, match="payload"):
            await store.send_signal(run.id, "approve", b"bytes")
        assert await store.signals(run.id) == {}
        with pytest.raises(NotSerializable, match="spec"):
            await store.save_job(JobRecord(name="backup", spec={"f": print}))
        with pytest.raises(JobNotFound):
            await store.get_job("backup")

    async def test_purge_deletes_only_the_given_terminal_statuses(self, store: Store) -> None:
        """purge with statuses deletes only the old runs that ended in one of them;
        an active status, or none at all, is refused before anything is deleted."""
        paths = {
            S.SUCCEEDED: (S.RUNNING, S.SUCCEEDED),
            S.FAILED: (S.RUNNING, S.FAILED),
            S.CANCELLED: (S.CANCELLED,),
            S.SKIPPED: (S.SKIPPED,),
        }
        ended = {}
        for i, (status, path) in enumerate(paths.items()):
            run = await self.put(store, new_run(when=i))
            ended[status] = await store.update_run(moved(run, *path, when=i), expected_version=0)
        refusals: list[tuple[Any, object]] = [(["FAILED", "QUEUED"], S.QUEUED), ([], [])]
        for bad, value in refusals:
            with pytest.raises(InvalidValue) as refused:
                await store.purge(older_than=at(100), statuses=bad)
            assert (refused.value.field, refused.value.value) == ("statuses", value)
        either: list[Any] = [S.FAILED, "CANCELLED"]
        assert await store.purge(older_than=at(100), statuses=either) == 2
        left = {run.status for run in (await store.list_runs(RunQuery(limit=10))).runs}
        assert left == {S.SUCCEEDED, S.SKIPPED}
        assert await store.purge(older_than=at(1), statuses={S.SKIPPED}) == 0  # ended at 3
        assert await store.purge(older_than=at(100), batch=1, statuses={S.SKIPPED}) == 1
        assert (await store.get_run(ended[S.SUCCEEDED].id)).status is S.SUCCEEDED

    async def test_purge_deletes_every_match_in_batches(self, store: Store) -> None:
        """purge with a small batch still deletes every matching run."""
        for i in range(5):
            run = await self.put(store, new_run(when=i))
            await store.update_run(moved(run, S.SKIPPED, when=i), expected_version=0)
        assert await store.purge(older_than=at(100), batch=2) == 5
        assert await store.count_runs(RunQuery()) == {}
        assert await store.purge(older_than=at(100), batch=2) == 0

    # -- concurrency ---------------------------------------------------------------

    async def test_racing_claimers_claim_each_run_once_within_limits(self, store: Store) -> None:
        """Many concurrent claim calls take each run once, and the job's
        max_concurrency and per_label limits hold across them."""
        await store.save_job(JobRecord(name="backup", max_concurrency=6, per_label={"device": 2}))
        for i in range(20):
            await self.put(store, queued(when=i, labels={"device": f"d{i % 4}"}))
        won: list[Claim] = []

        async def claimer(worker: str) -> None:
            for _ in range(3):
                won.extend(await store.claim(worker, {"backup": LC}, limit=2, lease=LONG))

        async with anyio.create_task_group() as tg:
            for n in range(8):
                tg.start_soon(claimer, f"w{n}")
        assert len(won) == len({c.run_id for c in won}) == 6
        running = (await store.list_runs(RunQuery(status=S.RUNNING, limit=100))).runs
        assert len(running) == 6
        per_device: dict[str, int] = {}
        for run in running:
            per_device[run.labels["device"]] = per_device.get(run.labels["device"], 0) + 1
        assert max(per_device.values()) <= 2
        by_id = {run.id: run for run in running}
        for c in won:
            assert c.fence == 1
            assert by_id[c.run_id].history[-1].reason == f"claimed by {c.owner}"

    async def test_racing_writers_one_compare_and_set_wins(self, store: Store) -> None:
        """Of many concurrent update_run calls over one version, exactly one wins;
        the others raise ConcurrentUpdate and the stored run is the winner's."""
        run = await self.put(store, new_run())
        outcomes: list[str] = []

        async def writer(n: int) -> None:
            nxt = LC.transition(run, S.QUEUED, at=at(1), reason=f"writer {n}")
            try:
                await store.update_run(nxt, expected_version=0)
            except ConcurrentUpdate:
                outcomes.append("lost")
            else:
                outcomes.append(f"writer {n}")

        async with anyio.create_task_group() as tg:
            for n in range(10):
                tg.start_soon(writer, n)
        winners = [o for o in outcomes if o != "lost"]
        assert len(winners) == 1
        assert outcomes.count("lost") == 9
        stored = await store.get_run(run.id)
        assert (stored.version, stored.history[-1].reason) == (1, winners[0])
        assert len(await store.events(run_id=run.id)) == 1

    async def test_a_closed_store_refuses_use(self, store: Store) -> None:
        """After aclose() the store raises StoreError on use; closing again is fine."""
        await store.aclose()
        await store.aclose()
        with pytest.raises(StoreError):
            await store.get_run("any")

    # -- the state machine -------------------------------------------------------

    async def test_state_machine(self, store: Store) -> None:
        """Random sequences of operations agree with a reference model on every read."""
        from runlife.testing._machine import run_machine

        await run_machine(store, examples=self.machine_examples, steps=self.machine_steps)


def _tasks_lifecycle() -> Lifecycle:
    return Lifecycle(
        "tasks",
        {
            "IDLE": "PENDING",
            "TRIGGER": "QUEUED",
            "STARTED": "RUNNING",
            "RUNNING": "RUNNING",
            "SUCCESS": "SUCCEEDED",
            "FAILED": "FAILED",
            "TERMINATED": "CANCELLED",
        },
        {
            "IDLE": ["TRIGGER"],
            "TRIGGER": ["STARTED", "TERMINATED"],
            "STARTED": ["RUNNING", "FAILED", "TERMINATED"],
            "RUNNING": ["SUCCESS", "FAILED", "TERMINATED"],
        },
    )
