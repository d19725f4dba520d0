"""SQLiteStore: the store contract, plus what is SQLite's own.

Schema safety (garbage, foreign and newer files are refused untouched), group
commit (shared transactions, one failing write failing alone), several
connections on one file, busy handling, failpoints and the database clock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import pytest

from runlife import DEFAULT_LIFECYCLE, Run, Status
from runlife._core.queries import JobRecord, LogQuery, RunQuery
from runlife._core.records import LogLine
from runlife.exceptions import (
    ConcurrentUpdate,
    InvalidPolicy,
    NotSerializable,
    RunNotFound,
    SchemaMismatch,
    StoreError,
)
from runlife.stores import _failpoints
from runlife.stores._sqlite import SCHEMA_VERSION, SQLiteStore
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
    from runlife.stores import _sqlite

    async with SQLiteStore(db) as store:
        kept = await store.create_run(queued())
    future = SCHEMA_VERSION + 1
    monkeypatch.setattr(_sqlite, "SCHEMA_VERSION", future)
    monkeypatch.setattr(
        _sqlite,
        "_MIGRATIONS",
        {**_sqlite._MIGRATIONS, future: ("CREATE TABLE runlife_probe (note TEXT)",)},
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
    with pytest.raises(InvalidPolicy, match="MemoryStore"):
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
    original = SQLiteStore._commit_batch

    def counting(self: SQLiteStore, batch: list[Any], ran: list[bool]) -> None:
        batches.append(len(batch))
        original(self, batch, ran)

    monkeypatch.setattr(SQLiteStore, "_commit_batch", counting)
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
    """aclose waits for queued writes, then closes; later use raises StoreError."""
    store = SQLiteStore(db)
    runs = [queued() for _ in range(30)]
    async with anyio.create_task_group() as tg:
        for run in runs:
            tg.start_soon(store.create_run, run)
        await anyio.sleep(0)
        tg.start_soon(store.aclose)
    with pytest.raises(StoreError, match="closed"):
        await store.get_run(runs[0].id)
    async with SQLiteStore(db) as again:
        assert (await again.count_runs(RunQuery())) == {Status.QUEUED: 30}


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
        hits = conn.execute("SELECT count(*) FROM logs_fts WHERE logs_fts MATCH 'needle'")
        assert hits.fetchone() == (0,)
    finally:
        conn.close()
