"""SQLiteStore: the store contract, plus what is SQLite's own.

Schema safety (garbage, foreign and newer files are refused untouched), group
commit (shared transactions, one failing write failing alone), several
connections on one file, busy handling, failpoints and the database clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import pytest

from runlife import DEFAULT_LIFECYCLE, Lifecycle, Run, Status
from runlife._core import codec
from runlife._core.codec import encode_cursor
from runlife._core.queries import JobRecord, LogQuery, RunQuery
from runlife._core.records import LogLine
from runlife._core.spec import JobSpec
from runlife.exceptions import (
    ConcurrentUpdate,
    InvalidValue,
    LeaseLost,
    NotASuccessor,
    NotSerializable,
    RunlifeError,
    RunNotFound,
    SchemaMismatch,
    StoreError,
)
from runlife.stores import _failpoints, open_store
from runlife.stores._registry import sqlite_path
from runlife.stores._sqlite import SCHEMA_VERSION, SQLiteStore, schema
from runlife.stores._sqlite.commit import GroupCommit
from runlife.stores._sqlite.messages import LONGEST_KEPT, MessageIds
from runlife.testing._contract import StoreContract

LC = DEFAULT_LIFECYCLE
T0 = datetime(2026, 3, 10, 2, tzinfo=UTC)


class TestSQLiteStore(StoreContract):
    """SQLiteStore keeps the whole Store contract."""

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SQLiteStore]:
        async with SQLiteStore(tmp_path / "runs.db") as store:
            yield store


pytestmark = pytest.mark.anyio


def queued(job: str = "backup", **kwargs: Any) -> Run:
    return Run.create(job=job, at=T0, initial=Status.QUEUED, **kwargs)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


# -- files runlife must not touch --------------------------------------------------


async def test_garbage_file_is_refused_untouched(db: Path) -> None:
    """A file that is not a SQLite database raises SchemaMismatch; its bytes stay."""
    garbage = b"this is not a database, just some bytes\x00\x01\x02" * 100
    db.write_bytes(garbage)
    with pytest.raises(SchemaMismatch, match="not a usable SQLite database"):
        async with SQLiteStore(db):
            pass
    assert db.read_bytes() == garbage
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


async def test_foreign_database_is_refused_untouched(db: Path) -> None:
    """A SQLite database of another application raises SchemaMismatch naming its
    tables, and is not modified."""
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(SchemaMismatch, match=r"another application.*invoices"):
        await SQLiteStore(db).list_jobs()
    assert db.read_bytes() == before


async def test_an_older_database_is_migrated_forward_keeping_its_runs(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a file of an older schema applies the missing migrations in order, once,
    and records each; the runs already stored are kept."""
    async with SQLiteStore(db) as store:
        kept = await store.create_run(queued())
    future = SCHEMA_VERSION + 1
    monkeypatch.setattr(schema, "SCHEMA_VERSION", future)
    monkeypatch.setattr(
        schema,
        "MIGRATIONS",
        {**schema.MIGRATIONS, future: ("CREATE TABLE runlife_probe (note TEXT)",)},
    )
    for _ in range(2):  # the second open finds nothing left to do
        async with SQLiteStore(db) as store:
            assert (await store.get_run(kept.id)).id == kept.id
    with sqlite3.connect(db) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM runlife_schema ORDER BY 1")]
        probe = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'runlife_probe'")
        assert probe.fetchone() == (1,)
    conn.close()
    assert versions == list(range(1, future + 1))


async def test_a_version_1_database_gets_cancel_requests(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file made by the first schema (before cancel requests) is migrated to the
    current version on opening: its running run keeps running and can be asked to
    cancel."""
    with monkeypatch.context() as patch:
        patch.setattr(schema, "SCHEMA_VERSION", 1)
        async with SQLiteStore(db) as store:
            await store.create_run(queued())
            (claim,) = await store.claim("w1", {"backup": LC}, limit=1, lease=3600)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT max(version) FROM runlife_schema").fetchone() == (1,)
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'cancel_requests'")
        assert tables.fetchone() == (0,)
    conn.close()
    async with SQLiteStore(db) as store:
        assert (await store.get_run(claim.run_id)).status is Status.RUNNING
        request = await store.request_cancel(claim.run_id, by="ops:ana", reason="stop")
        assert request is not None
        assert await store.cancel_requests([claim.run_id]) == {claim.run_id: request}
    with sqlite3.connect(db) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM runlife_schema ORDER BY 1")]
    conn.close()
    assert versions == list(range(1, SCHEMA_VERSION + 1))


async def test_a_version_3_log_keeps_its_lines_with_each_message_once(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file of schema 3 (each line held its message, and the full-text index held
    each line) is migrated on opening: every line reads back as it was, each
    distinct message of a run is stored and indexed once, search finds the lines,
    and appending goes on numbering after the last line."""
    with monkeypatch.context() as patch:
        patch.setattr(schema, "SCHEMA_VERSION", 3)
        async with SQLiteStore(db) as store:
            a = await store.create_run(queued())
            b = await store.create_run(queued())
    at = codec.to_us(T0)
    old = [
        (a.id, 1, 1, at, "log", "info", "backing up", "r1", 1, '{"n":1}'),
        (b.id, 1, 2, at + 1, "stdout", "info", "backing up", None, None, None),
        (a.id, 2, 3, at + 2, "stderr", "warning", "Device UNREACHABLE", "r2", 2, None),
        (a.id, 3, 4, at + 3, "log", "info", "backing up", "r3", 2, '{"n":3}'),
    ]
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO logs (run_id, seq, lid, at, stream, level, message, item, attempt,"
            " fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            old,
        )
        conn.execute("INSERT INTO logs_fts (rowid, message) SELECT lid, message FROM logs")
    conn.close()
    async with SQLiteStore(db) as store:
        page = await store.logs(LogQuery(run_id=a.id))
        assert [
            (x.seq, x.at, x.stream, x.level, x.message, x.item, x.attempt, x.fields)
            for x in page.lines
        ] == [
            (1, T0, "log", "info", "backing up", "r1", 1, {"n": 1}),
            (2, T0 + timedelta(microseconds=2), "stderr", "warning", "Device UNREACHABLE",
             "r2", 2, {}),
            (3, T0 + timedelta(microseconds=3), "log", "info", "backing up", "r3", 2, {"n": 3}),
        ]  # fmt: skip
        assert [x.seq for x in await store.search_logs(a.id, "unreach")] == [2]
        assert [x.seq for x in await store.search_logs(a.id, "BACKING")] == [1, 3]
        assert [x.seq for x in await store.search_logs(b.id, "backing")] == [1]
        with sqlite3.connect(db) as conn:
            messages = sorted(conn.execute("SELECT run_id, message FROM log_messages"))
            (indexed,) = conn.execute(
                "SELECT count(*) FROM log_messages_fts WHERE log_messages_fts MATCH 'backing'"
            ).fetchone()
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()
        assert messages == sorted(
            [(a.id, "backing up"), (a.id, "Device UNREACHABLE"), (b.id, "backing up")]
        )
        assert indexed == 2
        (more,) = await store.append_logs(
            [LogLine(run_id=a.id, seq=0, at=T0, message="backing up")]
        )
        assert more.seq == 4
        assert [x.seq for x in await store.search_logs(a.id, "backing")] == [1, 3, 4]


async def test_newer_schema_is_refused_untouched(db: Path) -> None:
    """A database migrated by a newer runlife raises SchemaMismatch and is not modified."""
    async with SQLiteStore(db) as store:
        await store.save_job(JobRecord(name="backup"))
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO runlife_schema (version, applied_at) VALUES (?, 0)",
            (SCHEMA_VERSION + 1,),
        )
    conn.close()
    before = db.read_bytes()
    with pytest.raises(SchemaMismatch, match=f"version {SCHEMA_VERSION + 1}, newer"):
        async with SQLiteStore(db):
            pass
    assert db.read_bytes() == before


async def test_empty_sqlite_file_gets_the_schema(db: Path) -> None:
    """An existing but empty SQLite database is taken over: schema, WAL, version row."""
    sqlite3.connect(db).close()
    async with SQLiteStore(db) as store:
        await store.save_job(JobRecord(name="backup"))
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT max(version) FROM runlife_schema").fetchone() == (
            SCHEMA_VERSION,
        )
    finally:
        conn.close()


async def test_unopenable_path_raises_store_error(tmp_path: Path) -> None:
    """A path in a missing directory fails with StoreError (the driver error chained)."""
    with pytest.raises(StoreError) as info:
        await SQLiteStore(tmp_path / "missing" / "runs.db").list_jobs()
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_memory_path_is_refused() -> None:
    """':memory:' cannot be shared between the writer and the readers: refused, with
    the advice to use MemoryStore."""
    with pytest.raises(InvalidValue, match="MemoryStore"):
        SQLiteStore(":memory:")


async def test_data_survives_reopening(db: Path) -> None:
    """What one store wrote, a new store on the same file reads (durable file)."""
    run = queued(params={"devices": ["core-rtr-01"]}, labels={"site": "dc1"})
    async with SQLiteStore(db) as store:
        await store.create_run(run)
    async with SQLiteStore(db) as store:
        assert await store.get_run(run.id) == run
    assert SQLiteStore(db).url == f"sqlite:///{db}"


# -- group commit ------------------------------------------------------------------


async def test_concurrent_writes_share_transactions(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 concurrent creates are committed in far fewer transactions than writes."""
    batches: list[int] = []
    original = GroupCommit._commit

    def counting(self: GroupCommit, batch: list[Any], ran: list[bool]) -> None:
        batches.append(len(batch))
        original(self, batch, ran)

    monkeypatch.setattr(GroupCommit, "_commit", counting)
    runs = [queued() for _ in range(200)]
    async with SQLiteStore(db) as store:
        async with anyio.create_task_group() as tg:
            for run in runs:
                tg.start_soon(store.create_run, run)
        counts = await store.count_runs(RunQuery())
    assert counts == {Status.QUEUED: 200}
    assert sum(batches) == 200
    assert len(batches) < 50
    assert max(batches) > 1


async def test_one_failing_write_fails_alone_in_its_batch(db: Path) -> None:
    """In one shared transaction, a stale compare-and-set fails with ConcurrentUpdate
    while the writes beside it commit."""
    async with SQLiteStore(db) as store:
        runs = [await store.create_run(queued()) for _ in range(20)]
        stale = runs[7]
        await store.update_run(LC.transition(stale, Status.CANCELLED, at=T0), expected_version=0)
        outcomes: dict[str, object] = {}

        async def cancel(run: Run) -> None:
            try:
                await store.update_run(
                    LC.transition(run, Status.CANCELLED, at=T0, reason="batch"),
                    expected_version=0,
                )
                outcomes[run.id] = "ok"
            except ConcurrentUpdate as exc:
                outcomes[run.id] = exc

        async with anyio.create_task_group() as tg:
            for run in runs:
                tg.start_soon(cancel, run)
        failed = {rid for rid, out in outcomes.items() if out != "ok"}
        assert failed == {stale.id}
        for run in runs:
            got = await store.get_run(run.id)
            assert got.status is Status.CANCELLED
            assert got.history[-1].reason == (None if run is stale else "batch")


async def test_label_filters_follow_status_changes_made_in_one_batch(db: Path) -> None:
    """Runs created, claimed and completed by concurrent writers (so in shared
    transactions) are found by status + label exactly where they ended up."""
    async with SQLiteStore(db) as store:
        runs = [queued(labels={"site": f"dc{i % 2}"}) for i in range(40)]
        async with anyio.create_task_group() as tg:
            for run in runs:
                tg.start_soon(store.create_run, run)
        claims = await store.claim("w", {"backup": LC}, limit=40, lease=60)

        async def finish(i: int) -> None:
            claim = claims[i]
            to = Status.SUCCEEDED if i % 4 else Status.FAILED
            await store.update_run(
                LC.transition(claim.run, to, at=T0),
                expected_version=claim.run.version,
                claim=claim,
            )

        async with anyio.create_task_group() as tg:
            for i in range(30):
                tg.start_soon(finish, i)
        for site in ("dc0", "dc1"):
            found: dict[Status, set[str]] = {}
            for status in (Status.RUNNING, Status.SUCCEEDED, Status.FAILED, Status.QUEUED):
                page = await store.list_runs(RunQuery(status=status, labels={"site": site}))
                found[status] = {r.id for r in page.runs}
            want: dict[Status, set[str]] = {s: set() for s in found}
            for run in await _all(store):
                if run.labels["site"] == site:
                    want[run.status].add(run.id)
            assert found == want
            assert sum(len(v) for v in found.values()) == 20


async def _all(store: SQLiteStore) -> list[Run]:
    return list((await store.list_runs(RunQuery(limit=1000))).runs)


async def test_a_cancelled_writer_does_not_stall_the_queue(db: Path) -> None:
    """Writers cancelled while queued leave; the others (and later ones) complete."""
    async with SQLiteStore(db) as store:
        done: list[str] = []

        async def create(run: Run, cancel: bool) -> None:
            with anyio.CancelScope() as scope:
                if cancel:
                    scope.cancel()
                await store.create_run(run)
                done.append(run.id)

        runs = [queued() for _ in range(60)]
        async with anyio.create_task_group() as tg:
            for i, run in enumerate(runs):
                tg.start_soon(create, run, i % 3 == 0)
        later = await store.create_run(queued())
        assert set(done) == {r.id for i, r in enumerate(runs) if i % 3}
        assert (await store.get_run(later.id)).status is Status.QUEUED


async def test_writers_cancelled_at_any_moment_never_stall_the_queue(db: Path) -> None:
    """A crowd of writers cancelled together, after 0 to 6 turns of the loop, catches
    the leader at every stage: waiting for its batch to fill, or cancelled before its
    thread started with its batch going back to the queue. A write whose caller is
    gone must not go back (nor be handed the lead): the next write completes."""
    async with SQLiteStore(db) as store:
        for turns in [*range(7)] * 6:
            with anyio.fail_after(10):  # a stalled queue fails here instead of hanging
                with anyio.CancelScope() as scope:
                    async with anyio.create_task_group() as tg:
                        for _ in range(20):
                            tg.start_soon(store.create_run, queued())
                        for _ in range(turns):
                            await anyio.lowlevel.checkpoint()
                        scope.cancel()
                later = await store.create_run(queued())
            assert (await store.get_run(later.id)).status is Status.QUEUED


async def test_close_finishes_writes_in_flight(db: Path) -> None:
    """aclose waits for the writes queued before it, then closes; later use raises
    StoreError."""
    store = SQLiteStore(db)
    await store.create_run(queued())  # opened, and the job's lifecycle learnt
    runs = [queued() for _ in range(30)]
    async with anyio.create_task_group() as tg:
        for run in runs:
            tg.start_soon(store.create_run, run)
        await anyio.wait_all_tasks_blocked()  # every write is queued or in its batch
        tg.start_soon(store.aclose)
    with pytest.raises(StoreError, match="closed"):
        await store.get_run(runs[0].id)
    async with SQLiteStore(db) as again:
        assert (await again.count_runs(RunQuery())) == {Status.QUEUED: 31}


# -- several connections, processes and locks ---------------------------------------


async def test_two_stores_on_one_file_never_claim_a_run_twice(db: Path) -> None:
    """Two stores (two writer connections, as two processes would have) racing to
    claim: every run is claimed exactly once and max_concurrency holds overall."""
    async with SQLiteStore(db) as a, SQLiteStore(db) as b:
        await a.save_job(JobRecord(name="capped", max_concurrency=3))
        free = [await a.create_run(queued("free")) for _ in range(40)]
        for _ in range(10):
            await a.create_run(queued("capped"))
        claimed: list[str] = []

        async def claimer(store: SQLiteStore, worker: str) -> None:
            for _ in range(30):
                claims = await store.claim(worker, {"free": LC, "capped": LC}, limit=3, lease=60)
                claimed.extend(c.run_id for c in claims)
                await anyio.sleep(0)

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(claimer, a, f"a{i}")
                tg.start_soon(claimer, b, f"b{i}")
        assert len(claimed) == len(set(claimed))
        assert {r.id for r in free} <= set(claimed)
        running = await a.count_runs(RunQuery(job="capped", status="RUNNING"))
        assert running == {Status.RUNNING: 3}


def test_stores_in_threads_open_a_fresh_file_at_once(db: Path) -> None:
    """Several stores (own event loops, like processes) creating the schema of one
    fresh file at the same moment all succeed and see one schema."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    async def open_and_write(i: int) -> None:
        async with SQLiteStore(db) as store:
            await store.create_run(queued(f"job{i}"))

    def worker(i: int) -> None:
        barrier.wait()
        try:
            anyio.run(open_and_write, i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    async def count() -> dict[Status, int]:
        async with SQLiteStore(db) as store:
            return dict(await store.count_runs(RunQuery()))

    assert anyio.run(count) == {Status.QUEUED: 4}


async def test_a_held_write_lock_is_waited_out_not_reported(db: Path) -> None:
    """While another connection holds the write lock, writes wait (busy timeout, then
    backoff) and succeed once it is released: no "database is locked"."""
    async with SQLiteStore(db, busy_timeout=0.05) as store:
        run = await store.create_run(queued())
        blocker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            results: list[Run] = []

            async def write() -> None:
                results.append(
                    await store.update_run(
                        LC.transition(run, Status.CANCELLED, at=T0), expected_version=0
                    )
                )

            async with anyio.create_task_group() as tg:
                tg.start_soon(write)
                await anyio.sleep(0.4)
                assert results == []
                blocker.execute("COMMIT")
            assert results[0].status is Status.CANCELLED
        finally:
            blocker.close()


async def test_a_lock_held_too_long_is_a_store_error(db: Path) -> None:
    """Past lock_timeout, the write fails with StoreError (the driver error chained)."""
    async with SQLiteStore(db, busy_timeout=0.02, lock_timeout=0.2) as store:
        await store.list_jobs()
        blocker = sqlite3.connect(db, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreError, match="locked") as info:
                await store.save_job(JobRecord(name="backup"))
            assert isinstance(info.value.__cause__, sqlite3.OperationalError)
            blocker.execute("ROLLBACK")
        finally:
            blocker.close()
        assert await store.list_jobs() == ()


async def test_a_write_that_changed_nothing_wakes_no_waiter(db: Path) -> None:
    """An empty claim commits a transaction that changes nothing: no change for
    wait_changed (else a runtime's idle claims would wake its own claim loop, which
    claims again, at once, for ever). A write that changes a run still wakes."""
    async with SQLiteStore(db) as store:
        await store.save_job(JobRecord(name="backup"))
        await store.wait_changed(10)  # the job's write is a change: seen, done with
        waited: list[float] = []

        async def wait(timeout: float) -> None:
            start = anyio.current_time()
            await store.wait_changed(timeout)
            waited.append(anyio.current_time() - start)

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait, 0.5)
            for _ in range(10):
                await anyio.sleep(0.02)
                assert await store.claim("w", {"backup": LC}, limit=1, lease=30) == ()
        assert waited[0] >= 0.5
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait, 10)
            await anyio.sleep(0.05)
            await store.create_run(queued())
        assert waited[1] < 5


async def test_a_commit_of_another_process_before_the_first_wait_wakes_it(db: Path) -> None:
    """A commit that another process makes after this store last read, but before
    its first wait_changed, is a change: the wait returns at once (its first look
    at the file used to be taken as where changes start, and the commit was missed
    until the next one)."""
    async with SQLiteStore(db) as store:
        await store.save_job(JobRecord(name="backup"))
        assert not (await store.get_job("backup")).paused
        writer = (
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
            " c.execute('UPDATE jobs SET paused = 1'); c.commit()"
        )
        subprocess.run([sys.executable, "-c", writer, str(db)], check=True, timeout=30)
        start = anyio.current_time()
        await store.wait_changed(10)
        assert anyio.current_time() - start < 5
        assert (await store.get_job("backup")).paused


# -- time, input, failpoints ---------------------------------------------------------


async def test_store_time_is_the_database_clock(db: Path) -> None:
    """now() comes from SQLite (millisecond resolution, UTC) and leases are set from it."""
    async with SQLiteStore(db) as store:
        before = datetime.now(UTC)
        now = await store.now()
        assert now.tzinfo is UTC
        assert now.microsecond % 1000 == 0
        assert abs(now - before) < timedelta(seconds=5)
        await store.create_run(queued())
        (claim,) = await store.claim("w", {"backup": LC}, limit=1, lease=30)
        expected = claim.run.history[-1].at + timedelta(seconds=30)
        assert claim.expires_at == expected


async def test_non_json_params_are_refused_naming_the_field(db: Path) -> None:
    """A run whose params hold a non-JSON value is refused before writing, and the
    error names the path of the value."""
    async with SQLiteStore(db) as store:
        run = attrs.evolve(queued(), params={"devices": ["a", {"when": datetime.now(UTC)}]})
        with pytest.raises(NotSerializable) as info:
            await store.create_run(run)
        assert info.value.field == "params['devices'][1]['when']"
        with pytest.raises(RunNotFound):
            await store.get_run(run.id)


@pytest.fixture
def failpoints() -> Any:
    yield _failpoints
    _failpoints.disarm()


async def test_failpoint_before_commit_writes_nothing(db: Path, failpoints: Any) -> None:
    """An error injected before commit fails the create and stores nothing."""
    async with SQLiteStore(db) as store:
        run = queued(idempotency_key="once")
        failpoints.arm("create_run.before_commit")
        with pytest.raises(StoreError, match="failpoint"):
            await store.create_run(run)
        with pytest.raises(RunNotFound):
            await store.get_run(run.id)
        assert await store.create_run(run) == run


async def test_failpoint_after_commit_is_ambiguous_and_a_retry_is_safe(
    db: Path, failpoints: Any
) -> None:
    """An error after commit reaches the caller, yet the run is stored; retrying
    with the same idempotency key returns that run."""
    async with SQLiteStore(db) as store:
        run = queued(idempotency_key="once")
        failpoints.arm("create_run.after_commit")
        with pytest.raises(StoreError):
            await store.create_run(run)
        again = await store.create_run(queued(idempotency_key="once"))
        assert again.id == run.id
        failpoints.arm("claim.after_commit")
        with pytest.raises(StoreError):
            await store.claim("w", {"backup": LC}, limit=1, lease=30)
        assert (await store.get_run(run.id)).status is Status.RUNNING
        assert await store.claim("w", {"backup": LC}, limit=1, lease=30) == ()


# -- logs ------------------------------------------------------------------------------


async def test_search_logs_short_needles_and_case(db: Path) -> None:
    """Search finds substrings case-insensitively, through the trigram index (3+
    characters) or by scanning (shorter), only in the given run's log."""
    async with SQLiteStore(db) as store:
        a = await store.create_run(queued())
        b = await store.create_run(queued())
        messages = ["Pushed CONFIG to core-rtr-01", "ok", "Énergie: 5 W", "no match here"]
        await store.append_logs(
            [LogLine(run_id=a.id, seq=0, at=T0, message=m) for m in messages]
            + [LogLine(run_id=b.id, seq=0, at=T0, message="pushed config elsewhere")]
        )

        async def found(text: str) -> list[int]:
            return [line.seq for line in await store.search_logs(a.id, text)]

        assert await found("pushed config") == [1]
        assert await found("OK") == [2]
        assert await found("énergie") == [3]
        assert await found("o") == [1, 2, 4]
        assert await found("") == [1, 2, 3, 4]
        assert await found("zzz") == []
        page = await store.logs(LogQuery(run_id=b.id))
        assert [line.message for line in page.lines] == ["pushed config elsewhere"]


async def test_a_runs_message_is_stored_once_however_often_it_is_logged(db: Path) -> None:
    """Lines of one message, in one append or many, name one row of log_messages
    (one entry of the full-text index); another run's same message is its own."""
    async with SQLiteStore(db) as store:
        a = await store.create_run(queued())
        b = await store.create_run(queued())
        for _ in range(3):
            await store.append_logs(
                [LogLine(run_id=a.id, seq=0, at=T0, message="backing up", fields={"n": n})
                 for n in range(5)]
                + [LogLine(run_id=b.id, seq=0, at=T0, message="backing up")]
            )  # fmt: skip
        page = await store.logs(LogQuery(run_id=a.id))
        assert [x.fields for x in page.lines] == [{"n": n} for n in range(5)] * 3
        assert len(await store.search_logs(b.id, "backing")) == 3
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM log_messages").fetchone() == (2,)
    finally:
        conn.close()


def test_message_ids_remembered_wrongly_are_stored_anew(db: Path) -> None:
    """The ids a writer remembers are checked against the file: after a rollback
    (or a purge) took their rows, the messages are stored and indexed again, and
    a line never names a row of another message."""

    async def make() -> None:
        async with SQLiteStore(db):
            pass

    anyio.run(make)
    ids = MessageIds()
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN")
        first = ids.ids(conn, [("r1", "backing up"), ("r1", "done")])
        conn.execute("ROLLBACK")
        conn.execute("BEGIN")
        # Another message takes the id the rolled-back one had.
        conn.execute("INSERT INTO log_messages (mid, run_id, message) VALUES (?, 'r2', 'x')",
                     (first["r1"]["backing up"],))  # fmt: skip
        again = ids.ids(conn, [("r1", "backing up"), ("r1", "done")])
        conn.execute("COMMIT")
        stored = dict(conn.execute("SELECT mid, message FROM log_messages WHERE run_id = 'r1'"))
        assert {stored[again["r1"][m]] for m in ("backing up", "done")} == {"backing up", "done"}
        (hits,) = conn.execute(
            "SELECT count(*) FROM log_messages_fts WHERE log_messages_fts MATCH 'backing'"
        ).fetchone()
        assert hits == 1
        assert ids.ids(conn, [("r1", "done")]) == {"r1": {"done": again["r1"]["done"]}}
        # A message too long to remember is stored again by the next append.
        long = "x" * (LONGEST_KEPT + 1)
        first_long = ids.ids(conn, [("r1", long)])["r1"][long]
        second_long = ids.ids(conn, [("r1", long)])["r1"][long]
        assert first_long != second_long
        texts = dict(conn.execute("SELECT mid, message FROM log_messages WHERE run_id = 'r1'"))
        assert texts[first_long] == texts[second_long] == long
    finally:
        conn.close()


async def test_purge_removes_log_lines_from_the_search_index(db: Path) -> None:
    """Purged runs' lines leave the full-text index too (no orphaned hits)."""
    async with SQLiteStore(db) as store:
        run = await store.create_run(queued())
        await store.append_logs([LogLine(run_id=run.id, seq=0, at=T0, message="needle")])
        done = LC.transition(LC.transition(run, Status.RUNNING, at=T0), Status.SUCCEEDED, at=T0)
        await store.update_run(done, expected_version=0)
        assert await store.purge(older_than=T0 + timedelta(days=1)) == 1
    conn = sqlite3.connect(db)
    try:
        hits = conn.execute(
            "SELECT count(*) FROM log_messages_fts WHERE log_messages_fts MATCH 'needle'"
        )
        assert hits.fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM log_messages").fetchone() == (0,)
    finally:
        conn.close()


# -- URLs ------------------------------------------------------------------------------

ACCEPTED_URLS = [
    # SQLAlchemy's reading: three slashes then a relative path, four for an absolute one.
    ("sqlite:///runs.db", "runs.db"),
    ("sqlite:///data/runs.db", "data/runs.db"),
    ("sqlite:////var/lib/app/runs.db", "/var/lib/app/runs.db"),
    # The path right after "sqlite:", as a user writes it.
    ("sqlite:runs.db", "runs.db"),
    ("sqlite:data/runs.db", "data/runs.db"),
    ("sqlite:/var/lib/app/runs.db", "/var/lib/app/runs.db"),
    # Percent-escapes are decoded; the scheme is case-insensitive.
    ("sqlite:///my%20runs.db", "my runs.db"),
    ("sqlite:///what%3F%23.db", "what?#.db"),
    ("SQLite:///runs.db", "runs.db"),
    ("sqlite:///dir/énergie.db", "dir/énergie.db"),
]

REFUSED_URLS = [
    ("sqlite:", "sqlite:///relative"),  # no path
    ("sqlite://", "sqlite:///relative"),
    ("sqlite:///", "sqlite:///relative"),
    ("sqlite:////", "sqlite:///relative"),  # a directory
    ("sqlite:///data/", "sqlite:///relative"),
    ("sqlite://host/runs.db", "without host"),  # a host
    ("sqlite://runs.db", "without host"),
    ("sqlite:///runs.db?mode=ro", "without host, query options"),  # options
    ("sqlite:///runs.db#x", "fragment"),
    ("sqlite:///%00.db", "sqlite:///relative"),  # a NUL, escaped or not
    ("sqlite:///a\x00b.db", "sqlite:///relative"),
    ("sqlite:///%FF.db", "sqlite:///relative"),  # not UTF-8 once decoded
    ("sqlite:///a\ud800.db", "sqlite:///relative"),
    ("sqlite:///file:runs.db", "sqlite:///relative"),  # a SQLite URI
    ("sqlite:///:memory:", "MemoryStore"),  # SQLite's memory lives in one connection
    ("sqlite::memory:", "MemoryStore"),
    ("sqlite:///file::memory:?cache=shared", "MemoryStore"),
]


@pytest.mark.parametrize(("url", "path"), ACCEPTED_URLS)
def test_sqlite_urls_have_one_reading(url: str, path: str) -> None:
    """Two forms name a file: SQLAlchemy's (sqlite:///relative, sqlite:////absolute)
    and the path right after "sqlite:"; open_store opens exactly that path, and the
    store's url opens it again."""
    assert sqlite_path(url) == path
    store = open_store(url)
    assert isinstance(store, SQLiteStore)
    assert store.path == path
    assert sqlite_path(store.url) == path


@pytest.mark.parametrize(("url", "says"), REFUSED_URLS)
def test_other_sqlite_urls_are_refused_naming_the_url_and_the_forms(url: str, says: str) -> None:
    """Anything else is refused with InvalidValue (never a bare ValueError, never a
    silently different file) naming the URL and what is accepted; :memory: points
    to MemoryStore."""
    with pytest.raises(InvalidValue, match=re.escape(says)) as info:
        open_store(url)
    assert type(info.value) is InvalidValue
    assert info.value.field == "url"
    assert info.value.value == url
    assert repr(url) in str(info.value)


@pytest.mark.parametrize("path", ["", ":memory:", "a\x00b.db", "file:runs.db?mode=ro", b"x.db"])
def test_a_store_path_that_is_no_file_is_refused(path: Any) -> None:
    """SQLiteStore itself refuses what cannot name a file of its own with InvalidValue."""
    with pytest.raises(InvalidValue):
        SQLiteStore(path)


# -- values the driver cannot take -------------------------------------------------------


def _only_runlife_errors(exc: BaseException) -> None:
    """Nothing of the driver reaches a caller: no sqlite3 error, no bare OverflowError,
    UnicodeEncodeError or ValueError."""
    assert isinstance(exc, RunlifeError), repr(exc)
    assert not isinstance(exc, sqlite3.Error | OverflowError | UnicodeError)


async def test_values_sqlite_cannot_bind_are_refused_before_the_driver(db: Path) -> None:
    """Integers past 64 bits, lone surrogates, NUL characters, unknown query fields and
    page sizes that can never finish are refused by admission, naming the field; the
    driver never sees them and nothing is written."""
    async with SQLiteStore(db) as store:
        run = await store.create_run(queued(labels={"site": "dc1"}))
        other = await store.create_run(queued())
        (claim,) = await store.claim("w", {"backup": LC}, limit=1, lease=60)
        fresh = await store.create_run(queued("restore"))
        big = 2**64
        refusals: list[tuple[str, Any]] = [
            ("params", lambda: store.create_run(queued(params={"n": big}))),
            ("priority", lambda: store.create_run(attrs.evolve(queued(), priority=big))),
            ("labels", lambda: store.create_run(queued(labels={"site": "\ud800"}))),
            ("job", lambda: store.create_run(queued("a\x00b"))),
            ("run_id", lambda: store.get_run("\udc00")),
            ("expected_version", lambda: store.update_run(run, expected_version=big)),
            (
                "result",
                lambda: store.update_run(
                    attrs.evolve(LC.transition(fresh, Status.CANCELLED, at=T0), result=[big]),
                    expected_version=0,
                ),
            ),
            ("text", lambda: store.search_logs(run.id, "a\x00b")),
            ("text", lambda: store.list_runs(RunQuery(text="\ud800"))),
            ("field", lambda: store.list_runs(RunQuery(field="bogus"))),  # type: ignore[arg-type]
            ("field", lambda: store.count_runs(RunQuery(field="bogus"))),  # type: ignore[arg-type]
            ("limit", lambda: store.list_runs(RunQuery(limit=0))),
            ("cursor", lambda: store.logs(LogQuery(run_id=run.id, cursor=encode_cursor(big)))),
            ("after", lambda: store.events(after=big)),
            ("batch", lambda: store.purge(older_than=T0, batch=0)),
            ("batch", lambda: store.purge(older_than=T0, batch=-1)),
            ("lease", lambda: store.heartbeat(claim, lease=float("inf"))),
            ("timeout", lambda: store.wait_changed(-1)),
            (
                "lines[0].run_id",
                lambda: store.append_logs(
                    [LogLine(run_id=other.id, seq=0, at=T0, message="not the claimed run")],
                    claim=claim,
                ),
            ),
            (
                "lines[0].message",
                lambda: store.append_logs([LogLine(run_id=run.id, seq=0, at=T0, message="\ud800")]),
            ),
        ]
        for field, call in refusals:
            with anyio.fail_after(10):  # purge(batch=0) used to never return
                with pytest.raises((InvalidValue, NotSerializable)) as info:
                    await call()
            _only_runlife_errors(info.value)
            assert field in getattr(info.value, "field", ""), (field, info.value)
        # A claim whose values cannot be the store's holds nothing.
        forged = attrs.evolve(claim, fence=2**70)
        with pytest.raises(LeaseLost):
            await store.heartbeat(forged, lease=60)
        assert await store.count_runs(RunQuery()) == {Status.QUEUED: 2, Status.RUNNING: 1}
        assert (await store.logs(LogQuery(run_id=other.id))).lines == ()
        assert (await store.logs(LogQuery(run_id=run.id))).lines == ()


async def test_a_write_the_database_refuses_fails_alone_as_a_store_error(db: Path) -> None:
    """A statement the database refuses (here a trigger planted behind the store's
    back) fails that write alone with StoreError, the driver's error chained; the
    writes in the same batch commit, and nothing of the failed one is left."""
    async with SQLiteStore(db) as store:
        await store.create_run(queued())
        conn = sqlite3.connect(db)
        conn.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON run_labels WHEN new.value = 'boom'"
            " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
        conn.commit()
        conn.close()
        bad = queued(labels={"site": "boom"})
        good = [queued(labels={"site": "fine"}) for _ in range(10)]
        outcomes: dict[str, BaseException | None] = {}

        async def create(run: Run) -> None:
            try:
                await store.create_run(run)
                outcomes[run.id] = None
            except BaseException as exc:
                outcomes[run.id] = exc

        async with anyio.create_task_group() as tg:
            for run in [*good[:5], bad, *good[5:]]:
                tg.start_soon(create, run)
        error = outcomes[bad.id]
        assert isinstance(error, StoreError)
        assert isinstance(error.__cause__, sqlite3.IntegrityError)
        assert all(outcomes[run.id] is None for run in good)
        with pytest.raises(RunNotFound):
            await store.get_run(bad.id)
        assert await store.events(run_id=bad.id) == ()
        assert await store.count_runs(RunQuery()) == {Status.QUEUED: 11}


# -- the store's copies of runs and lifecycles ---------------------------------------------


async def test_a_run_changed_by_another_process_is_checked_against_the_stored_one(
    db: Path,
) -> None:
    """A store checks a successor against the run as stored: once another process
    (another store on the file) moved the run, the copy this store kept is not used."""
    async with SQLiteStore(db) as a, SQLiteStore(db) as b:
        run = await a.create_run(Run.create(job="backup", at=T0))
        theirs = await b.update_run(LC.transition(run, Status.QUEUED, at=T0), expected_version=0)
        with pytest.raises(ConcurrentUpdate):
            await a.update_run(LC.transition(run, Status.CANCELLED, at=T0), expected_version=0)
        # A write that continues the stored run (not this store's old copy) is taken.
        mine = await a.update_run(
            LC.transition(theirs, Status.CANCELLED, at=T0, reason="from a"), expected_version=1
        )
        assert [t.to for t in mine.history] == [Status.QUEUED, Status.CANCELLED]
        # One that continues this store's old copy is not a successor of the stored run.
        with pytest.raises(NotASuccessor):
            await b.update_run(
                attrs.evolve(LC.transition(run, Status.CANCELLED, at=T0), version=3),
                expected_version=2,
            )
        assert await b.get_run(run.id) == mine


async def test_a_lifecycle_changed_by_another_process_is_read_again(db: Path) -> None:
    """A job's lifecycle comes from its stored spec; a store that learnt an older one
    reads the spec again before refusing a run of the new one."""
    tasks = Lifecycle(
        "tasks",
        {"IDLE": "PENDING", "GO": "QUEUED", "BUSY": "RUNNING", "DONE": "SUCCEEDED",
         "STOPPED": "CANCELLED"},
        {"IDLE": ["GO", "STOPPED"], "GO": ["BUSY", "STOPPED"], "BUSY": ["DONE", "STOPPED"]},
    )  # fmt: skip
    async with SQLiteStore(db) as a, SQLiteStore(db) as b:
        await a.create_run(Run.create(job="promote", at=T0))  # a learns: the default
        await b.save_job(JobRecord(name="promote", spec=JobSpec(lifecycle=tasks).to_spec()))
        run = await a.create_run(Run.create(job="promote", at=T0, lifecycle=tasks))
        nxt = tasks.transition(tasks.transition(run, "GO", at=T0), "BUSY", at=T0)
        assert (await a.update_run(nxt, expected_version=0)).state == "BUSY"
        back = attrs.evolve(nxt, state="IDLE", status=Status.PENDING, version=3)
        with pytest.raises(NotASuccessor):  # BUSY -> IDLE is no move of it
            await a.update_run(back, expected_version=2)


# -- cancellation ----------------------------------------------------------------------------

CANCELLED_APPENDS = r"""
import asyncio, random, sqlite3, sys
from datetime import UTC, datetime

from runlife import Run, Status
from runlife._core.records import LogLine
from runlife.stores._sqlite import SQLiteStore


async def main(path: str) -> None:
    rng = random.Random(int(sys.argv[2]))
    store = SQLiteStore(path)
    now = datetime.now(UTC)
    first = await store.create_run(Run.create(job="backup", at=now, initial=Status.QUEUED))
    lines = [LogLine(run_id=first.id, seq=0, at=now, message=f"line {i}") for i in range(20_000)]
    created = [first.id]
    # The reported scenario, then a few waits long enough to cut appends while their
    # batch is in its thread.
    timeouts = [rng.choice([0.0005, 0.001, 0.004, 0.016, 0.03]) for _ in range(40)]
    timeouts += [rng.uniform(0.05, 0.5) for _ in range(4)]
    for timeout in timeouts:
        try:
            await asyncio.wait_for(store.append_logs(lines), timeout)
        except TimeoutError:
            pass
        created.append((await store.create_run(Run.create(job="backup", at=now))).id)
    await store.aclose()
    conn = sqlite3.connect(path)
    print(conn.execute("PRAGMA integrity_check").fetchone()[0])
    seqs = [s for (s,) in conn.execute("SELECT seq FROM logs ORDER BY run_id, seq")]
    print(len(seqs) % len(lines) == 0 and seqs == list(range(1, len(seqs) + 1)))
    # Every stored line's message is in the index (each distinct one of a run once
    # or more, never a line without its message).
    (fts,) = conn.execute(
        "SELECT count(DISTINCT m.message) FROM log_messages_fts f"
        " JOIN log_messages m ON m.mid = f.rowid WHERE log_messages_fts MATCH 'line'"
    ).fetchone()
    (named,) = conn.execute(
        "SELECT count(DISTINCT m.message) FROM logs l JOIN log_messages m ON m.mid = l.mid"
    ).fetchone()
    (lost,) = conn.execute(
        "SELECT count(*) FROM logs WHERE mid NOT IN (SELECT mid FROM log_messages)"
    ).fetchone()
    print(fts == named == (len(lines) if seqs else 0) and lost == 0)
    stored = {r for (r,) in conn.execute("SELECT id FROM runs")}
    print(stored == set(created))


asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_log_appends_cut_by_wait_for_leave_the_store_whole(tmp_path: Path, seed: int) -> None:
    """asyncio.wait_for cutting 20,000-line appends at any point, each followed by a
    create, then aclose (in a child process: a crash fails the test, not pytest):
    the process exits 0, the file passes integrity_check, every append happened
    entirely or not at all (its lines numbered without a gap, all indexed for
    search), and every create that returned is stored."""
    done = subprocess.run(
        [sys.executable, "-c", CANCELLED_APPENDS, str(tmp_path / "runs.db"), str(seed)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["ok", "True", "True", "True"], done.stdout


def _integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


async def _cut(anyio_backend: Any, delay: float, call: Any) -> None:
    """Run *call()*, cut after *delay* seconds: by asyncio.wait_for on asyncio (plain
    asyncio cancellation, which reaches a task at any await), by a cancel scope on trio."""
    if anyio_backend[0] == "asyncio":
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call(), delay)
    else:
        with anyio.move_on_after(delay):
            await call()


def _with_history(**kwargs: Any) -> Run:
    """A new run created with its first move (PENDING -> QUEUED) recorded."""
    run = Run.create(job="backup", at=T0, **kwargs)
    return attrs.evolve(LC.transition(run, Status.QUEUED, at=T0), version=0)


def _ended(at: datetime) -> Run:
    run = Run.create(job="old", at=at, labels={"site": "dc1"})
    return attrs.evolve(LC.transition(run, Status.SKIPPED, at=at), version=0)


async def test_a_purge_cut_at_any_point_leaves_the_store_usable(
    db: Path, anyio_backend: Any
) -> None:
    """purge cut at random points (before, during and after its batches) never leaves
    the write queue stalled: writes right after it complete, aclose returns in time,
    and each run is either purged with everything of its own or wholly kept."""
    rng = random.Random(7)
    store = SQLiteStore(db)
    old = [await store.create_run(_ended(T0 - timedelta(days=30))) for _ in range(200)]
    for run in old[::10]:
        await store.append_logs([LogLine(run_id=run.id, seq=0, at=T0, message="bye")])
    for _ in range(40):
        delay = rng.choice([0, 0.0001, 0.0005, 0.001, 0.002, 0.005, 0.02])
        batch = rng.choice([1, 2, 5])
        await _cut(anyio_backend, delay, lambda b=batch: store.purge(older_than=T0, batch=b))
        with anyio.fail_after(20):
            kept = await store.create_run(queued())
            assert (await store.get_run(kept.id)).id == kept.id
    with anyio.fail_after(20):
        await store.aclose()
    assert _integrity(db) == "ok"
    conn = sqlite3.connect(db)
    try:
        left = {r for (r,) in conn.execute("SELECT id FROM runs WHERE job = 'old'")}
        for table, column in (("run_labels", "run_id"), ("events", "run_id"), ("logs", "run_id")):
            owners = {r for (r,) in conn.execute(
                f"SELECT DISTINCT {column} FROM {table} WHERE {column} IN"
                " (SELECT id FROM runs WHERE job = 'old')"
                f" UNION SELECT DISTINCT {column} FROM {table} WHERE {column} NOT IN"
                " (SELECT id FROM runs)"
            )}  # fmt: skip
            assert owners <= left, table  # nothing of a purged run is left behind
        labelled = {r for (r,) in conn.execute("SELECT run_id FROM run_labels")}
        assert left <= labelled  # nothing of a kept run went
    finally:
        conn.close()


@pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])
async def test_writers_cancelled_natively_at_any_await_never_stall_or_tear(db: Path) -> None:
    """Crowds of writers (creates, moves, log appends) cancelled with Task.cancel after
    0 to 12 turns of the loop (the leader before its thread starts, while it runs,
    after it ran) never stall the queue, and each write happened entirely or not at
    all: a created run has its label row and its event, a move its event."""
    rng = random.Random(11)
    async with SQLiteStore(db) as store:
        base = [await store.create_run(_with_history(labels={"site": "dc1"})) for _ in range(4)]
        for turn in range(60):
            runs = [_with_history(labels={"site": "dc2"}) for _ in range(12)]
            calls = [store.create_run(run) for run in runs]
            calls += [store.append_logs([LogLine(run_id=r.id, seq=0, at=T0, message="x")] * 50)
                      for r in base]  # fmt: skip
            tasks = [asyncio.ensure_future(c) for c in calls]
            for _ in range(rng.randrange(13)):
                await asyncio.sleep(0)
            if turn % 3 == 0:
                await asyncio.sleep(rng.uniform(0, 0.004))
            for task in rng.sample(tasks, rng.randrange(len(tasks) + 1)):
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            # A write that was not cut returns its own outcome.
            for run, out in zip(runs, outcomes, strict=False):
                assert isinstance(out, asyncio.CancelledError) or out == run, out
            for out in outcomes[len(runs) :]:
                assert isinstance(out, asyncio.CancelledError) or len(out) == 50, out
            with anyio.fail_after(20):
                later = await store.create_run(_with_history())
            assert (await store.get_run(later.id)).status is Status.QUEUED
    assert _integrity(db) == "ok"
    conn = sqlite3.connect(db)
    try:
        torn = conn.execute(
            "SELECT count(*) FROM runs r WHERE json_array_length(r.history)"
            " != (SELECT count(*) FROM events e WHERE e.run_id = r.id AND kind = 'transition')"
            " OR json_array_length(r.history) = 0"
            " OR (SELECT count(*) FROM run_labels l WHERE l.run_id = r.id)"
            " != (SELECT count(*) FROM json_each(r.labels))"
        ).fetchone()
        assert torn == (0,)
        # Each append of 50 lines went in whole.
        for run_id, n in conn.execute("SELECT run_id, count(*) FROM logs GROUP BY run_id"):
            assert n % 50 == 0
            # ... with its event: 50 lines each.
            (told,) = conn.execute(
                "SELECT sum(json_extract(data, '$.lines')) FROM events"
                " WHERE run_id = ? AND kind = 'log'",
                (run_id,),
            ).fetchone()
            assert told == n
    finally:
        conn.close()


async def test_a_store_on_a_clock_tells_and_judges_its_time(db: Path) -> None:
    """With ``clock=``, the store's time is the clock's: claims are stamped with it and
    leases expire by it (a runtime in virtual time on a file)."""
    from runlife.testing import VirtualClock

    clock = VirtualClock(start=datetime(2026, 3, 10, 2, 0, tzinfo=UTC), autojump=False)
    async with SQLiteStore(db, clock=clock) as store:
        assert await store.now() == clock.now()
        run = await store.create_run(queued())
        (claim,) = await store.claim("w1", {"backup": LC}, limit=1, lease=30)
        assert claim.run.started_at == clock.now()
        assert await store.abandoned() == ()
        clock.advance(31)
        assert [r.id for r in await store.abandoned()] == [run.id]
