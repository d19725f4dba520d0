"""PostgresStore: the store contract on a real server, plus what is PostgreSQL's own.

The server is the session's `postgres_dsn` (``RUNLIFE_PG_DSN`` or a throwaway
server); each test gets a fresh schema, chosen through the URL's ``search_path``.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import anyio
import attrs
import psycopg  # noqa: TID251 - tests create and inspect schemas, which no store API does
import pytest

# tests/ is on sys.path (rootdir-style layout): the session server fixture lives there.
from runlife import DEFAULT_LIFECYCLE, Claim, JobRecord, LogLine, Run, RunQuery, Status
from runlife.exceptions import ConcurrentUpdate, LeaseLost, SchemaMismatch, StoreError
from runlife.stores import _failpoints
from runlife.stores._postgres import PostgresStore
from runlife.testing._contract import StoreContract

pytestmark = pytest.mark.postgres


def schema_url(dsn: str, schema: str) -> str:
    """*dsn* with its tables in *schema* (libpq's ``options``, URL-encoded)."""
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def pg_schema_url(postgres_dsn: str) -> Iterator[str]:
    """The URL of a fresh, empty schema on the session's server, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema_url(postgres_dsn, schema)
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class TestPostgresStore(StoreContract):
    """PostgresStore keeps the whole Store contract, on asyncio and on trio."""

    @pytest.fixture
    async def store(self, pg_schema_url: str) -> AsyncIterator[PostgresStore]:
        async with PostgresStore(pg_schema_url, max_size=4) as store:
            yield store


# -- PostgreSQL's own behaviour ---------------------------------------------------------

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
LC = DEFAULT_LIFECYCLE


def queued(job: str = "backup", seconds: float = 0, **kwargs: Any) -> Run:
    return Run.create(job=job, at=T0 + timedelta(seconds=seconds), initial=Status.QUEUED, **kwargs)


def test_constructing_does_not_connect_and_hides_the_password() -> None:
    """open_store is synchronous: the constructor neither connects nor leaks secrets."""
    store = PostgresStore("postgresql://app:s3cret@127.0.0.1:1/app")
    assert store.url == "postgresql://app@127.0.0.1:1/app"
    assert "s3cret" not in repr(store)


@pytest.mark.anyio
async def test_unreachable_server_is_a_store_error_chained_to_the_driver() -> None:
    """A driver failure surfaces as StoreError whose cause is the driver's error."""
    store = PostgresStore("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(StoreError) as info:
        await store.get_run("x")
    assert isinstance(info.value.__cause__, psycopg.Error)
    await store.aclose()


@pytest.mark.anyio
async def test_many_stores_opening_at_once_migrate_once(pg_schema_url: str) -> None:
    """Stores opening together (each with its own connections, as separate processes
    would) on an empty schema all succeed; the schema is made once."""
    stores = [PostgresStore(pg_schema_url, max_size=1) for _ in range(6)]
    try:
        async with anyio.create_task_group() as tg:
            for store in stores:
                tg.start_soon(store.__aenter__)
    finally:
        for store in stores:
            await store.aclose()
    with psycopg.connect(pg_schema_url) as conn:
        versions = conn.execute("SELECT version FROM runlife_schema").fetchall()
    assert versions == [(1,)]


@pytest.mark.anyio
async def test_an_older_schema_is_migrated_forward_keeping_its_runs(
    pg_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a database of an older schema applies the missing migrations in order,
    once, and records each; the runs already stored are kept."""
    from runlife.stores import _postgres

    async with PostgresStore(pg_schema_url) as store:
        kept = await store.create_run(queued())
    future = _postgres.SCHEMA_VERSION + 1
    monkeypatch.setattr(_postgres, "SCHEMA_VERSION", future)
    monkeypatch.setattr(
        _postgres,
        "_MIGRATIONS",
        {**_postgres._MIGRATIONS, future: "CREATE TABLE runlife_probe (note text)"},
    )
    for _ in range(2):  # the second open finds nothing left to do
        async with PostgresStore(pg_schema_url) as store:
            assert (await store.get_run(kept.id)).id == kept.id
    with psycopg.connect(pg_schema_url) as conn:
        versions = conn.execute("SELECT version FROM runlife_schema ORDER BY 1").fetchall()
        assert conn.execute("SELECT to_regclass('runlife_probe') IS NOT NULL").fetchone() == (True,)
    assert [v for (v,) in versions] == list(range(1, future + 1))


@pytest.mark.anyio
async def test_a_newer_schema_is_refused_and_left_untouched(pg_schema_url: str) -> None:
    """A database migrated by a newer runlife raises SchemaMismatch and is not modified."""
    async with PostgresStore(pg_schema_url) as store:
        await store.create_run(queued())
    with psycopg.connect(pg_schema_url, autocommit=True) as conn:
        conn.execute("INSERT INTO runlife_schema (version) VALUES (99)")
    with pytest.raises(SchemaMismatch, match="99"):
        async with PostgresStore(pg_schema_url):
            pass
    with psycopg.connect(pg_schema_url) as conn:
        assert conn.execute("SELECT max(version) FROM runlife_schema").fetchone() == (99,)
        assert conn.execute("SELECT count(*) FROM runlife_runs").fetchone() == (1,)


@pytest.mark.anyio
async def test_a_foreign_table_is_refused(pg_schema_url: str) -> None:
    """A runlife_runs table that runlife did not make is refused, not migrated over."""
    with psycopg.connect(pg_schema_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE runlife_runs (id int)")
    with pytest.raises(SchemaMismatch, match="not made by runlife"):
        async with PostgresStore(pg_schema_url):
            pass


@pytest.mark.anyio
async def test_log_search_uses_a_trigram_index(pg_schema_url: str) -> None:
    """pg_trgm ships with the server: the log message index exists and search matches
    case-insensitively, with LIKE wildcards taken literally."""
    async with PostgresStore(pg_schema_url) as store:
        run = await store.create_run(queued())
        lines = [
            LogLine(run_id=run.id, seq=0, at=T0, message=m)
            for m in ("Backing up core-rtr-01", "100% done", "1000 done", "BACKING UP edge")
        ]
        await store.append_logs(lines)
        found = await store.search_logs(run.id, "backing up")
        assert [line.seq for line in found] == [1, 4]
        assert [line.message for line in await store.search_logs(run.id, "0%")] == ["100% done"]
    with psycopg.connect(pg_schema_url) as conn:
        assert conn.execute("SELECT to_regclass('runlife_logs_trgm')").fetchone() != (None,)


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["before_commit", "after_commit"])
async def test_failpoints_around_the_commit(pg_schema_url: str, where: str) -> None:
    """A failure before COMMIT leaves nothing; after COMMIT (the ambiguous case) the
    write stands, and retrying the create returns the same run."""
    async with PostgresStore(pg_schema_url) as store:
        run = queued(idempotency_key="k1")
        _failpoints.arm(f"create_run.{where}")
        try:
            with pytest.raises(StoreError):
                await store.create_run(run)
        finally:
            _failpoints.disarm()
        listed = await store.list_runs(RunQuery())
        assert len(listed.runs) == (1 if where == "after_commit" else 0)
        # The caller retries (with another id, even): the key finds one run.
        again = await store.create_run(attrs.evolve(run, id="other-id"))
        assert again.id == (run.id if where == "after_commit" else "other-id")
        run = again

        claim = (await store.claim("w1", {"backup": LC}, limit=1, lease=60))[0]
        done = LC.transition(claim.run, Status.SUCCEEDED, at=await store.now())
        _failpoints.arm(f"update_run.{where}")
        try:
            with pytest.raises(StoreError):
                await store.update_run(done, expected_version=claim.run.version, claim=claim)
        finally:
            _failpoints.disarm()
        stored = await store.get_run(run.id)
        expected = Status.SUCCEEDED if where == "after_commit" else Status.RUNNING
        assert stored.status is expected


@pytest.mark.anyio
async def test_wait_changed_is_woken_by_another_process(pg_schema_url: str) -> None:
    """LISTEN/NOTIFY: a write through another connection wakes a waiter long before
    its timeout."""
    async with PostgresStore(pg_schema_url) as waiter, PostgresStore(pg_schema_url) as writer:
        await waiter.wait_changed(0.05)  # connects the listener

        async def write_soon() -> None:
            await anyio.sleep(0.2)
            await writer.create_run(queued())

        async with anyio.create_task_group() as tg:
            tg.start_soon(write_soon)
            start = time.monotonic()
            await waiter.wait_changed(20)
            assert time.monotonic() - start < 5


@pytest.mark.anyio
async def test_event_followers_never_miss_an_event(pg_schema_url: str) -> None:
    """Events commit in seq order: a follower that keeps reading after the last seq
    it saw, while many writers commit, ends with every event exactly once."""
    writers = [PostgresStore(pg_schema_url, max_size=2) for _ in range(4)]
    follower = PostgresStore(pg_schema_url, max_size=1)
    seen: list[int] = []
    done = anyio.Event()

    async def write(store: PostgresStore, n: int) -> None:
        for i in range(n):
            run = await store.create_run(queued(seconds=i))
            claim = await store.claim_run(run.id, "w", LC, lease=60)
            end = LC.transition(claim.run, Status.SUCCEEDED, at=await store.now())
            await store.update_run(end, expected_version=claim.run.version, claim=claim)

    async def follow() -> None:
        last = 0
        while True:
            finished = done.is_set()
            batch = await follower.events(after=last)
            seen.extend(e.seq for e in batch if e.seq is not None)
            if batch:
                last = seen[-1]
            elif finished:
                return

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            async with anyio.create_task_group() as inner:
                for store in writers:
                    inner.start_soon(write, store, 15)
            done.set()
        every = [e.seq for e in await follower.events(limit=100_000)]
    finally:
        for store in (*writers, follower):
            await store.aclose()
    assert len(every) == 4 * 15 * 2  # RUNNING and SUCCEEDED per run
    assert seen == every


@pytest.mark.anyio
async def test_limits_hold_under_many_concurrent_claimers(pg_schema_url: str) -> None:
    """8 claimers with their own connections race for runs of a job with
    max_concurrency=2 and per_label={"device": 1}: never more than 2 live runs, never
    2 on one device — checked by sampling the store while they race and by
    replaying every claim and completion in commit (event) order."""
    setup = PostgresStore(pg_schema_url)
    await setup.save_job(JobRecord(name="dev", max_concurrency=2, per_label={"device": 1}))
    devices = ["a", "b", "c", "a", "b", "c", None]
    runs = [
        queued("dev", i, labels={} if d is None else {"device": d})
        for i, d in enumerate(devices * 6)
    ]
    for run in runs:
        await setup.create_run(run)
    claimers = [PostgresStore(pg_schema_url, max_size=1) for _ in range(8)]
    violations: list[str] = []
    finished = anyio.Event()

    async def claimer(store: PostgresStore, name: str) -> None:
        while True:
            claims = await store.claim(name, {"dev": LC}, limit=2, lease=60)
            if not claims:
                counts = await store.count_runs(RunQuery(job="dev"))
                if set(counts) == {Status.SUCCEEDED}:
                    return
                await anyio.sleep(0.005)
                continue
            for claim in claims:
                await anyio.sleep(0.002)
                end = LC.transition(claim.run, Status.SUCCEEDED, at=await store.now())
                await store.update_run(end, expected_version=claim.run.version, claim=claim)

    async def sampler() -> None:
        while not finished.is_set():
            live = (await setup.list_runs(RunQuery(job="dev", status=Status.RUNNING))).runs
            by_device = Counter(r.labels.get("device") for r in live if r.labels)
            if len(live) > 2 or any(n > 1 for n in by_device.values()):
                violations.append(f"sampled {[(r.id, dict(r.labels)) for r in live]}")
            await anyio.sleep(0.001)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(sampler)
            with anyio.fail_after(60):
                async with anyio.create_task_group() as racers:
                    for i, store in enumerate(claimers):
                        racers.start_soon(claimer, store, f"c{i}")
            finished.set()
        events = await setup.events(limit=100_000)
    finally:
        for store in (setup, *claimers):
            await store.aclose()

    labels = {r.id: r.labels.get("device") for r in runs}
    live: set[str] = set()
    peak = 0
    for event in events:
        assert event.transition is not None
        if event.transition.to == Status.RUNNING:
            live.add(event.run_id)
        elif event.transition.from_ == Status.RUNNING:
            live.discard(event.run_id)
        peak = max(peak, len(live))
        per_device = Counter(labels[r] for r in live if labels[r] is not None)
        if len(live) > 2 or any(n > 1 for n in per_device.values()):
            violations.append(f"after event {event.seq}: {sorted(live)}")
    assert violations == []
    assert peak == 2  # the race did fill the job's capacity
    claimed = [e.run_id for e in events if e.transition and e.transition.to == Status.RUNNING]
    assert sorted(claimed) == sorted(r.id for r in runs)  # each run claimed exactly once


@pytest.mark.anyio
async def test_concurrent_writes_share_statements_with_their_own_outcomes(
    pg_schema_url: str,
) -> None:
    """Concurrent creates and updates of one store are batched, yet each call gets
    its own outcome: duplicates find the stored run, a lost compare-and-set and a
    stale claim are refused alone, the others are written."""
    async with PostgresStore(pg_schema_url, max_size=2) as store:
        runs = [queued(seconds=i, idempotency_key=f"k{i % 10}") for i in range(30)]
        created: list[Run] = []

        async def create(run: Run) -> None:
            created.append(await store.create_run(run))

        async with anyio.create_task_group() as tg:
            for run in runs:
                tg.start_soon(create, run)
        assert len({r.id for r in created}) == 10  # one run per idempotency key
        assert len((await store.list_runs(RunQuery(limit=100))).runs) == 10

        claims = await store.claim("w1", {"backup": LC}, limit=10, lease=60)
        stale = attrs.evolve(claims[1], fence=claims[1].fence + 7)
        outcomes: dict[str, object] = {}

        async def finish(claim: Claim, expected: int) -> None:
            end = LC.transition(claim.run, Status.SUCCEEDED, at=T0)
            try:
                outcomes[claim.run_id] = await store.update_run(
                    end, expected_version=expected, claim=claim
                )
            except (ConcurrentUpdate, LeaseLost) as exc:
                outcomes[claim.run_id] = exc

        async with anyio.create_task_group() as tg:
            tg.start_soon(finish, claims[0], claims[0].run.version + 1)  # a lost CAS
            tg.start_soon(finish, stale, stale.run.version)  # a stale claim
            for claim in claims[2:]:
                tg.start_soon(finish, claim, claim.run.version)
        assert isinstance(outcomes[claims[0].run_id], ConcurrentUpdate)
        assert isinstance(outcomes[claims[1].run_id], LeaseLost)
        for claim in claims[2:]:
            stored = outcomes[claim.run_id]
            assert isinstance(stored, Run)
            assert stored == await store.get_run(claim.run_id)
            assert stored.status is Status.SUCCEEDED
        counts = await store.count_runs(RunQuery())
        assert counts == {Status.SUCCEEDED: 8, Status.RUNNING: 2}
