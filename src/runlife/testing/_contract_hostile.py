"""The part of `StoreContract` that tries a store as a hostile caller would.

A store is the last line of defence of the lifecycle and of its own data: it
refuses a write that does not continue the stored run, refuses every value it
cannot keep exactly (with the same error as every other store), and survives
cancellation at any await, however the host cancels.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any, ClassVar

import anyio
import attrs
import pytest

from runlife._core.lifecycle import DEFAULT_LIFECYCLE, Lifecycle
from runlife._core.queries import JobRecord, LogQuery, RunQuery
from runlife._core.records import ErrorInfo, Item, ItemCounts, LogLine
from runlife._core.run import Run
from runlife._core.spec import JobSpec
from runlife._core.status import Status, Trigger
from runlife.abc import Store
from runlife.exceptions import (
    ConcurrentUpdate,
    InvalidTransition,
    InvalidValue,
    NotASuccessor,
    NotSerializable,
    RunNotFound,
)

__all__ = ("HostileCallers", "check_integrity")

S = Status
LC = DEFAULT_LIFECYCLE
T0 = datetime(2026, 3, 10, 2, 0, 0, 123456, tzinfo=UTC)
LONG = 3600.0


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _queued(job: str = "backup", **kwargs: Any) -> Run:
    return Run.create(job=job, at=T0, initial=S.QUEUED, **kwargs)


def two_queues() -> Lifecycle:
    """A lifecycle with two QUEUED states (a run waits for a slot, then for a worker)."""
    return Lifecycle(
        "two-queues",
        {
            "NEW": "PENDING",
            "WAITING_SLOT": "QUEUED",
            "READY": "QUEUED",
            "WORKING": "RUNNING",
            "DONE": "SUCCEEDED",
            "BROKEN": "FAILED",
            "DROPPED": "CANCELLED",
        },
        {
            "NEW": ["WAITING_SLOT", "READY", "DROPPED"],
            "WAITING_SLOT": ["READY", "WORKING", "DROPPED"],
            "READY": ["WORKING", "DROPPED"],
            "WORKING": ["DONE", "BROKEN", "DROPPED"],
        },
        entries={"QUEUED": "READY"},
    )


async def check_integrity(store: Store, run_ids: list[str] | None = None) -> None:
    """Assert what must hold of every stored run, however it was written.

    Its history replays to its state (through its job's lifecycle), its status is
    its state's, its progress matches its items, and its log is numbered 1..n
    without gaps.
    """
    from runlife._core.spec import lifecycle_of

    if run_ids is None:
        run_ids = []
        cursor = None
        while True:
            page = await store.list_runs(RunQuery(limit=500, cursor=cursor))
            run_ids.extend(r.id for r in page.runs)
            cursor = page.next_cursor
            if cursor is None:
                break
    specs = {job.name: job.spec for job in await store.list_jobs()}
    for run_id in run_ids:
        run = await store.get_run(run_id)
        lifecycle = lifecycle_of(specs.get(run.job))
        start = run.history[0].from_ if run.history else run.state
        assert lifecycle.replay(run.history, start) == run.state, run
        assert lifecycle.status_of(run.state) is run.status, run
        items = await store.items(run_id)
        assert run.progress == ItemCounts.of(i.status for i in items), run_id
        seqs: list[int] = []
        cursor = None
        while True:
            logs = await store.logs(LogQuery(run_id=run_id, cursor=cursor, limit=5000))
            seqs.extend(line.seq for line in logs.lines)
            cursor = logs.next_cursor
            if cursor is None:
                break
        assert seqs == list(range(1, len(seqs) + 1)), run_id


def _on_asyncio() -> bool:
    try:
        return asyncio.current_task() is not None
    except RuntimeError:  # no asyncio loop: trio
        return False


class HostileCallers:
    """Tests of `StoreContract` that try the store as a hostile caller."""

    cancel_rounds: ClassVar[int] = 60
    """How many randomly cancelled writes `test_cancelled_calls_...` makes."""

    async def check_store_integrity(self, store: Store) -> None:
        """Extra integrity checks of the store's own (``PRAGMA integrity_check`` for
        SQLite); override in a subclass. The contract's own checks always run."""

    # -- the store refuses what is not a successor ---------------------------------

    async def _done(self, store: Store) -> Run:
        run = await store.create_run(_queued())
        for step in (S.RUNNING, S.SUCCEEDED):
            nxt = LC.transition(run, step, at=await store.now())
            run = await store.update_run(nxt, expected_version=run.version)
        return run

    async def _refused(
        self, store: Store, stored: Run, write: Run, expected: int, error: type[Exception]
    ) -> None:
        events = len(await store.events(run_id=stored.id))
        with pytest.raises(error) as info:
            await store.update_run(write, expected_version=expected)
        assert stored.id in str(info.value) or isinstance(info.value, InvalidValue)
        assert await store.get_run(stored.id) == stored, "a refused write changed the run"
        assert len(await store.events(run_id=stored.id)) == events, "a refused write wrote events"

    async def test_a_terminal_run_cannot_be_rewritten(self, store: Store) -> None:
        """A SUCCEEDED run is never made RUNNING again, nor its version lowered, so a
        stale writer holding version 0 still loses its compare-and-set."""
        done = await self._done(store)
        rewrite = attrs.evolve(done, status=S.RUNNING, state=S.RUNNING, ended_at=None, version=0)
        await self._refused(store, done, rewrite, done.version, NotASuccessor)
        again = attrs.evolve(done, warnings=("late",), version=done.version + 1)
        await self._refused(store, done, again, done.version, InvalidTransition)
        stale = LC.transition(
            attrs.evolve(done, status=S.QUEUED, state=S.QUEUED, ended_at=None, version=0),
            S.RUNNING,
            at=await store.now(),
        )
        with pytest.raises(ConcurrentUpdate):
            await store.update_run(stale, expected_version=0)

    async def test_version_must_be_one_higher_per_change(self, store: Store) -> None:
        """The same, a lower or a skipping version is refused; one higher per move is
        accepted."""
        run = await store.create_run(_queued())
        nxt = LC.transition(run, S.RUNNING, at=await store.now())
        for version in (run.version, run.version + 2):
            await self._refused(
                store, run, attrs.evolve(nxt, version=version), run.version, NotASuccessor
            )
        await self._refused(store, run, attrs.evolve(nxt, version=-1), run.version, InvalidValue)
        two = LC.transition(nxt, S.WAITING, at=await store.now())
        stored = await store.update_run(two, expected_version=run.version)
        assert stored.version == run.version + 2
        warned = attrs.evolve(stored, warnings=("slow link",), version=stored.version + 1)
        assert (await store.update_run(warned, expected_version=stored.version)).warnings == (
            "slow link",
        )

    async def test_status_must_be_the_states(self, store: Store) -> None:
        """A status that disagrees with its state, or an unknown state, is refused."""
        run = await store.create_run(_queued())
        nxt = LC.transition(run, S.RUNNING, at=await store.now())
        await self._refused(
            store, run, attrs.evolve(nxt, status=S.WAITING), run.version, InvalidValue
        )
        unknown = attrs.evolve(nxt, state="NOWHERE")
        await self._refused(store, run, unknown, run.version, InvalidValue)

    async def test_history_must_extend_the_stored_history(self, store: Store) -> None:
        """A truncated, rewritten or illegal history is refused; every store keeps
        what it had."""
        run = await store.create_run(_queued())
        now = await store.now()
        first = await store.update_run(
            LC.transition(run, S.RUNNING, at=now), expected_version=run.version
        )
        nxt = LC.transition(first, S.WAITING, at=now)
        truncated = attrs.evolve(nxt, history=nxt.history[1:])
        await self._refused(store, first, truncated, first.version, NotASuccessor)
        old = nxt.history[0]
        rewritten = attrs.evolve(
            nxt, history=(attrs.evolve(old, reason="forged"), *nxt.history[1:])
        )
        await self._refused(store, first, rewritten, first.version, NotASuccessor)
        illegal = LC.transition(first, S.SUCCEEDED, at=now)
        illegal = attrs.evolve(
            illegal, history=(*first.history, attrs.evolve(illegal.history[-1], to=S.SKIPPED)),
            state=S.SKIPPED, status=S.SKIPPED,
        )  # fmt: skip
        await self._refused(store, first, illegal, first.version, NotASuccessor)
        ends_elsewhere = attrs.evolve(nxt, state=S.RUNNING, status=S.RUNNING)
        await self._refused(store, first, ends_elsewhere, first.version, NotASuccessor)
        back = attrs.evolve(
            nxt, history=(*first.history, attrs.evolve(nxt.history[-1], at=T0 - timedelta(1)))
        )
        await self._refused(store, first, back, first.version, NotASuccessor)
        assert (await store.update_run(nxt, expected_version=first.version)).state is S.WAITING

    async def test_identity_never_changes(self, store: Store) -> None:
        """Changing id-like fields (job, created_at, trigger, lineage, keys, params,
        the schedule slot) is refused, not applied, ignored or echoed."""
        run = await store.create_run(_queued(params={"devices": ["a"]}, idempotency_key="k"))
        nxt = LC.transition(run, S.RUNNING, at=await store.now())
        changes: dict[str, Any] = {
            "job": "other",
            "created_at": T0 + timedelta(seconds=1),
            "trigger": Trigger.RETRY,
            "scheduled_for": T0,
            "parent_id": "p",
            "root_id": "r",
            "workflow_run_id": "w",
            "idempotency_key": "k2",
            "params": {"devices": ["b"]},
        }
        for field, value in changes.items():
            await self._refused(
                store, run, attrs.evolve(nxt, **{field: value}), run.version, NotASuccessor
            )

    async def test_attempts_continue_the_stored_attempts(self, store: Store) -> None:
        """A write may end the last attempt or add one, never rewrite an ended one."""
        run = await store.create_run(_queued())
        now = await store.now()
        run = await store.update_run(LC.transition(run, S.RUNNING, at=now), expected_version=0)
        retry = LC.transition(run, S.RETRYING, at=now, error=ErrorInfo(message="boom"))
        run = await store.update_run(retry, expected_version=run.version)
        requeued = LC.transition(run, S.QUEUED, at=now)
        forged = attrs.evolve(
            requeued, attempts=(attrs.evolve(requeued.attempts[0], outcome="succeeded"),)
        )
        await self._refused(store, run, forged, run.version, NotASuccessor)
        dropped = attrs.evolve(requeued, attempts=())
        await self._refused(store, run, dropped, run.version, NotASuccessor)
        renumbered = attrs.evolve(
            requeued, attempts=(attrs.evolve(requeued.attempts[0], number=2),)
        )
        await self._refused(store, run, renumbered, run.version, InvalidValue)

    async def test_moves_are_checked_against_the_jobs_lifecycle(self, store: Store) -> None:
        """A job's stored spec gives its lifecycle: its own moves are accepted, the
        default lifecycle's are not, and a run in a state it does not have is refused."""
        lc = two_queues()
        await store.save_job(JobRecord(name="deploy", spec=JobSpec(lifecycle=lc).to_spec()))
        run = await store.create_run(Run.create(job="deploy", at=T0, lifecycle=lc))
        now = await store.now()
        slot = await store.update_run(
            lc.transition(run, "WAITING_SLOT", at=now), expected_version=0
        )
        ready = await store.update_run(lc.transition(slot, "READY", at=now), expected_version=1)
        assert (ready.state, ready.status) == ("READY", S.QUEUED)
        with pytest.raises(InvalidValue):
            await store.create_run(Run.create(job="deploy", at=T0))  # a default-lifecycle run
        skip = attrs.evolve(
            ready,
            history=(*ready.history, attrs.evolve(ready.history[-1], from_="READY", to="NEW")),
            state="NEW", status=S.PENDING, version=ready.version + 1,
        )  # fmt: skip
        await self._refused(store, ready, skip, ready.version, NotASuccessor)

    async def test_a_queued_state_of_another_kind_never_stalls_a_claim(self, store: Store) -> None:
        """Both QUEUED states of a lifecycle are claimed; a run whose state the given
        lifecycle does not know is passed over, and the other jobs are still claimed."""
        lc = two_queues()
        await store.save_job(JobRecord(name="deploy", spec=JobSpec(lifecycle=lc).to_spec()))
        a = await store.create_run(Run.create(job="deploy", at=T0, lifecycle=lc, initial="READY"))
        b = await store.create_run(
            Run.create(job="deploy", at=_at(1), lifecycle=lc, initial="WAITING_SLOT")
        )
        claims = await store.claim("w1", {"deploy": lc}, limit=5, lease=LONG)
        assert [(c.run_id, c.run.state) for c in claims] == [(a.id, "WORKING"), (b.id, "WORKING")]
        other = await store.create_run(
            Run.create(job="deploy", at=_at(2), lifecycle=lc, initial="READY")
        )
        healthy = await store.create_run(_queued("backup"))
        claims = await store.claim("w1", {"deploy": LC, "backup": LC}, limit=5, lease=LONG)
        assert [c.run_id for c in claims] == [healthy.id]
        assert (await store.get_run(other.id)).status is S.QUEUED

    # -- one rule for every value -----------------------------------------------------

    async def _unchanged_after(
        self, store: Store, error: type[Exception], call: Callable[[], Awaitable[Any]]
    ) -> None:
        before = await store.events()
        runs = await store.list_runs(RunQuery(limit=1000))
        with anyio.fail_after(10):
            with pytest.raises(error):
                await call()
        assert await store.events() == before, "a refused call wrote events"
        assert await store.list_runs(RunQuery(limit=1000)) == runs, "a refused call wrote runs"

    async def test_moments_out_of_range_are_refused_before_writing(self, store: Store) -> None:
        """Moments past 9999-12-30 or before 0001-01-02 UTC (in any zone) are refused
        with InvalidValue naming the field; nothing is half written and the job's
        runs stay readable and claimable."""
        late = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
        fourteen = timezone(timedelta(hours=-14))
        bad: list[tuple[str, datetime]] = [
            ("due_at", late),
            ("due_at", datetime.max.replace(tzinfo=fourteen)),
            ("scheduled_for", datetime.min.replace(tzinfo=UTC)),
            ("created_at", datetime.min.replace(tzinfo=timezone(timedelta(hours=14)))),
        ]
        for field, value in bad:
            run = attrs.evolve(_queued(), **{field: value})  # type: ignore[arg-type]
            await self._unchanged_after(store, InvalidValue, partial(store.create_run, run))
            with pytest.raises(RunNotFound):
                await store.get_run(run.id)
        ok = await store.create_run(_queued())
        assert [c.run_id for c in await store.claim("w", {"backup": LC}, limit=5, lease=LONG)] == [
            ok.id
        ]

    async def test_moments_keep_exact_microseconds_across_the_range(self, store: Store) -> None:
        """The first and last moments of the range, and odd microseconds far from
        1970, read back exactly, in UTC."""
        for moment in (
            datetime(1, 1, 2, 0, 0, 0, 1, tzinfo=UTC),
            datetime(1583, 10, 15, 13, 37, 1, 999_999, tzinfo=UTC),
            datetime(2999, 6, 30, 23, 59, 59, 999_989, tzinfo=UTC),
            datetime(9999, 12, 30, 23, 59, 59, 999_999, tzinfo=UTC),
        ):
            run = Run.create(job="far", at=moment, scheduled_for=moment)
            got = await store.create_run(run)
            again = await store.get_run(run.id)
            for value in (got.created_at, again.created_at, again.due_at, again.scheduled_for):
                assert value == moment, value
                assert value.utcoffset() == timedelta(0), value
                assert value.microsecond == moment.microsecond

    async def test_port_arguments_out_of_range_are_refused(self, store: Store) -> None:
        """Leases, batches, page sizes and timeouts outside their ranges are refused
        at once with InvalidValue, on every store alike."""
        run = await store.create_run(_queued())
        (claim,) = await store.claim("w", {"backup": LC}, limit=1, lease=LONG)
        now = await store.now()
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: store.purge(older_than=now, batch=0),
            lambda: store.purge(older_than=now, batch=-1),
            lambda: store.claim("w", {"backup": LC}, limit=1, lease=-10),
            lambda: store.claim("w", {"backup": LC}, limit=1, lease=math.nan),
            lambda: store.claim("w", {"backup": LC}, limit=1, lease=math.inf),
            lambda: store.claim("w", {"backup": LC}, limit=-1, lease=LONG),
            lambda: store.claim("", {"backup": LC}, limit=1, lease=LONG),
            lambda: store.heartbeat(claim, lease=-5),
            lambda: store.heartbeat(claim, lease=math.nan),
            lambda: store.search_logs(run.id, "x", limit=0),
            lambda: store.search_logs(run.id, "x", limit=-1),
            lambda: store.search_logs(run.id, "a\x00b"),
            lambda: store.logs(LogQuery(run_id=run.id, limit=2**64)),
            lambda: store.logs(LogQuery(run_id=run.id, limit=0)),
            lambda: store.logs(LogQuery(run_id=run.id, stream="bogus")),
            lambda: store.list_runs(RunQuery(limit=0)),
            lambda: store.list_runs(RunQuery(field="bogus")),  # type: ignore[arg-type]
            lambda: store.list_runs(RunQuery(cursor="not a cursor")),
            lambda: store.count_runs(RunQuery(field="bogus")),  # type: ignore[arg-type]
            lambda: store.abandoned(limit=0),
            lambda: store.due([S.QUEUED], limit=-1),
            lambda: store.due(["BOGUS"]),  # type: ignore[list-item]
            lambda: store.events(after=-1),
            lambda: store.events(limit=0),
            lambda: store.wait_changed(math.nan),
            lambda: store.send_signal(run.id, "a\x00b"),
            lambda: store.request_cancel(run.id, by=""),
            lambda: store.request_cancel(run.id, by="ops", reason="a\x00b"),
            lambda: store.request_cancel("", by="ops"),
            lambda: store.cancel_requests(run.id),
            lambda: store.cancel_requests([run.id, 7]),  # type: ignore[list-item]
            *(
                lambda bad=bad: store.update_run(
                    LC.transition(claim.run, S.SUCCEEDED, at=now),
                    expected_version=claim.run.version,
                    claim=claim,
                    expected_progress=bad,
                )
                for bad in (
                    {"total": 0},
                    ItemCounts(total=2, failed=1),
                    ItemCounts(total=-1, failed=-1),
                    ItemCounts(total=2**63, succeeded=2**63),
                    ItemCounts(total=True, succeeded=True),
                )
            ),
        ]
        for call in calls:
            await self._unchanged_after(store, InvalidValue, call)
        assert (await store.heartbeat(claim, lease=LONG)) > now
        assert await store.cancel_requests([run.id]) == {}

    async def test_naive_query_moments_are_read_as_utc(self, store: Store) -> None:
        """A naive ``since`` or ``until`` means UTC, on every store."""
        run = await store.create_run(_queued())
        naive = T0.replace(tzinfo=None)
        page = await store.list_runs(
            RunQuery(since=naive - timedelta(seconds=1), until=naive + timedelta(seconds=1))
        )
        assert [r.id for r in page.runs] == [run.id]
        assert await store.count_runs(RunQuery(since=naive + timedelta(seconds=1))) == {}

    async def test_job_records_with_bad_limits_are_refused(self, store: Store) -> None:
        """A per-label limit that is not a positive int, or a max_concurrency below 1,
        is refused at save_job; healthy jobs are claimed as before."""
        for job in (
            JobRecord(name="bad", per_label={"d": "x"}),  # type: ignore[dict-item]
            JobRecord(name="bad", per_label={"d": 0}),
            JobRecord(name="bad", max_concurrency=0),
            JobRecord(name="bad", max_concurrency=-1),
            JobRecord(name="bad", max_concurrency=True),
            JobRecord(name="", spec={}),
            JobRecord(name="bad", spec={"version": 99}),
        ):
            with pytest.raises(InvalidValue):
                await store.save_job(job)
        assert await store.list_jobs() == ()
        run = await store.create_run(_queued("healthy"))
        claims = await store.claim("w", {"healthy": LC, "bad": LC}, limit=5, lease=LONG)
        assert [c.run_id for c in claims] == [run.id]

    async def test_log_lines_are_checked_where_they_enter(self, store: Store) -> None:
        """A line whose message is not text, whose stream or level is unknown, or
        that belongs to another run than the writer's claim, is refused; nothing of
        the batch is written, and later reads and searches work."""
        a = await store.create_run(_queued("a"))
        b = await store.create_run(_queued("b"))
        (claim,) = await store.claim("w", {"a": LC}, limit=1, lease=LONG)
        now = await store.now()

        def line(run: Run, **kwargs: Any) -> LogLine:
            return LogLine(run_id=run.id, seq=0, **{"at": now, **kwargs})

        good = line(a, message="ok")
        for bad in (
            line(a, message=None),
            line(a, message=42),
            line(a, message="a\x00b"),
            line(a, message="lone \ud800 surrogate"),
            line(a, stream="nope"),
            line(a, level="INFO"),
            line(a, attempt=2**40),
            line(a, at=datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
        ):
            await self._unchanged_after(
                store, InvalidValue, partial(store.append_logs, [good, bad])
            )
        await self._unchanged_after(
            store,
            InvalidValue,
            lambda: store.append_logs([good, line(b, message="x")], claim=claim),
        )
        await self._unchanged_after(
            store, NotSerializable, lambda: store.append_logs([line(a, fields={"x": object()})])
        )
        assert (await store.logs(LogQuery(run_id=a.id))).lines == ()
        assert await store.search_logs(a.id, "ok") == ()
        (stored,) = await store.append_logs([good], claim=claim)
        assert stored.seq == 1
        assert [x.seq for x in await store.search_logs(a.id, "OK")] == [1]

    async def test_text_and_json_a_store_cannot_keep_are_refused(self, store: Store) -> None:
        """NUL characters, lone surrogates, integers past 64 bits and JSON nested past
        the limit are refused everywhere, before writing."""
        base = _queued()
        for change, error in (
            ({"job": "back\x00up"}, InvalidValue),
            ({"job": "back\udfffup"}, InvalidValue),
            ({"labels": {"site": "dc\x001"}}, InvalidValue),
            ({"labels": {"si\ud800te": "dc1"}}, InvalidValue),
            ({"params": {"x": "a\x00b"}}, NotSerializable),
            ({"params": {"x\x00": 1}}, NotSerializable),
            ({"params": {"x": "\ud800"}}, NotSerializable),
            ({"params": {"n": 2**64}}, NotSerializable),
            ({"params": {"n": math.inf}}, NotSerializable),
            ({"priority": 2**31}, InvalidValue),
            ({"priority": -(2**31) - 1}, InvalidValue),
            ({"priority": 2**70}, InvalidValue),
            ({"idempotency_key": "k\x00"}, InvalidValue),
            ({"error": ErrorInfo(message="m\x00")}, InvalidValue),
        ):
            run = attrs.evolve(base, **change)
            await self._unchanged_after(store, error, partial(store.create_run, run))
        deep: Any = 1
        for _ in range(5000):
            deep = [deep]
        await self._unchanged_after(
            store, NotSerializable, lambda: store.create_run(attrs.evolve(base, params={"d": deep}))
        )
        stored = await store.create_run(base)
        now = await store.now()
        moved = LC.transition(stored, S.RUNNING, at=now)
        huge = attrs.evolve(moved, attempts=(attrs.evolve(moved.attempts[0], number=2**64),))
        await self._unchanged_after(
            store, InvalidValue, lambda: store.update_run(huge, expected_version=0)
        )
        item = Item(run_id=base.id, key="k", output={"x": "\x00"})
        with pytest.raises(NotSerializable):
            await store.save_item(item)
        with pytest.raises(InvalidValue):
            await store.save_item(Item(run_id=base.id, key="k\ud800"))
        with pytest.raises(NotSerializable):
            await store.send_signal(base.id, "go", {"x": 2**65})
        edge = attrs.evolve(base, id=base.id + "-edge", idempotency_key=None, priority=2**31 - 1,
                            params={"n": 2**63 - 1, "m": -(2**63), "s": "äöü ✓ 𝄞"})  # fmt: skip
        got = await store.create_run(edge)
        assert got == edge
        assert (await store.get_run(edge.id)) == edge

    async def test_case_insensitive_search_folds_every_letter(self, store: Store) -> None:
        """Searching logs and run text folds case as Python's str.lower does, beyond
        ASCII too, on every store."""
        run = await store.create_run(_queued(labels={"site": "Zürich-ÄÖÜ"}))
        now = await store.now()
        await store.append_logs(
            [LogLine(run_id=run.id, seq=0, at=now, message="Gerät ÄÖÜ nicht erreichbar")]
        )
        assert [x.seq for x in await store.search_logs(run.id, "äöü")] == [1]
        assert [x.seq for x in await store.search_logs(run.id, "GERÄT")] == [1]
        page = await store.list_runs(RunQuery(text="zürich-äöü"))
        assert [r.id for r in page.runs] == [run.id]

    # -- cancellation never corrupts a store -----------------------------------------

    async def test_cancelled_calls_happen_entirely_or_not_at_all(self, store: Store) -> None:
        """Writes of every kind, cancelled at random moments by asyncio.wait_for,
        task.cancel or anyio/trio scopes, leave a usable store whose every run is
        intact, and lose no write that was reported done."""
        backend = "asyncio" if _on_asyncio() else "other"
        rng = random.Random(0x5EED)
        await store.save_job(JobRecord(name="backup", max_concurrency=50))
        done_runs: list[str] = []
        logged: dict[str, int] = {}
        delays = (0.0, 0.0002, 0.0005, 0.001, 0.004, 0.016, 0.03)

        async def some_write(kind: str) -> None:
            now = await store.now()
            if kind == "create":
                run = await store.create_run(_queued(labels={"n": str(rng.random())}))
                done_runs.append(run.id)
            elif kind == "logs" and done_runs:
                rid = rng.choice(done_runs)
                lines = [
                    LogLine(run_id=rid, seq=0, at=now, message=f"line {i}", fields={"i": i})
                    for i in range(rng.choice((1, 50, 2000)))
                ]
                stored = await store.append_logs(lines)
                logged[rid] = max(logged.get(rid, 0), stored[-1].seq)
            elif kind == "claim":
                await store.claim("w", {"backup": LC}, limit=3, lease=LONG)
            elif kind == "update" and done_runs:
                run = await store.get_run(rng.choice(done_runs))
                if not run.is_terminal:
                    target = rng.choice(sorted(LC.allowed(run.state)))
                    nxt = LC.transition(run, target, at=now)
                    await store.update_run(nxt, expected_version=run.version)
            elif kind == "item" and done_runs:
                rid = rng.choice(done_runs)
                status = rng.choice([S.RUNNING, S.SUCCEEDED, S.FAILED])
                await store.save_item(Item(run_id=rid, key=f"k{rng.randrange(5)}", status=status))
            elif kind == "signal" and done_runs:
                await store.send_signal(rng.choice(done_runs), "go", {"n": 1})
            elif kind == "cancel" and done_runs:
                await store.request_cancel(rng.choice(done_runs), by="ops", reason="stop")
            elif kind == "purge":
                await store.purge(older_than=now + timedelta(days=1), batch=rng.choice((1, 7)))

        kinds = ("create", "logs", "claim", "update", "item", "signal", "cancel", "purge")
        for _ in range(self.cancel_rounds):
            kind = rng.choice(kinds)
            delay = rng.choice(delays)
            how = rng.choice(("scope", "wait_for", "task") if backend == "asyncio" else ("scope",))
            try:
                if how == "scope":
                    with anyio.move_on_after(delay):
                        await some_write(kind)
                elif how == "wait_for":
                    await asyncio.wait_for(some_write(kind), delay)
                else:
                    task = asyncio.ensure_future(some_write(kind))
                    await asyncio.sleep(delay)
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            except TimeoutError:
                pass
            except (InvalidTransition, ConcurrentUpdate, RunNotFound):
                pass  # the purge and the claims race the updates: refusals are fine
            # The store is still usable after every cancellation.
            with anyio.fail_after(30):
                probe = await store.create_run(_queued("probe"))
                assert (await store.get_run(probe.id)).id == probe.id
        with anyio.fail_after(60):
            for rid, seq in logged.items():
                try:
                    run = await store.get_run(rid)
                except RunNotFound:
                    continue  # purged
                page = await store.logs(LogQuery(run_id=run.id, cursor=None, limit=100_000))
                assert len(page.lines) >= seq, "a reported append was lost"
            await check_integrity(store)
            await self.check_store_integrity(store)

    async def test_aclose_after_cancelled_writes_returns(self, store: Store) -> None:
        """Closing right after a cancelled write waits for what is in flight and
        returns; the store then refuses use."""
        run = await store.create_run(_queued())
        now = await store.now()
        lines = [LogLine(run_id=run.id, seq=0, at=now, message=f"l{i}") for i in range(5000)]
        with anyio.move_on_after(0.001):
            await store.append_logs(lines)
        with anyio.fail_after(30):
            await store.aclose()
