"""PostgresStore: the store contract on a real server, plus what is PostgreSQL's own.

The server is the session's `postgres_dsn` (``RUNLIFE_PG_DSN`` or a throwaway
server); each test gets a fresh schema, chosen through the URL's ``search_path``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import attrs
import psycopg  # noqa: TID251 - tests create and inspect schemas, which no store API does
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# tests/ is on sys.path (rootdir-style layout): the session server fixture lives there.
from runlife import (
    DEFAULT_LIFECYCLE,
    Claim,
    ErrorInfo,
    Item,
    JobRecord,
    LogLine,
    Run,
    RunQuery,
    Status,
)
from runlife._core.values import MAX_TIME, MIN_TIME
from runlife.abc import Store
from runlife.exceptions import (
    ConcurrentUpdate,
    InvalidValue,
    LeaseLost,
    SchemaMismatch,
    StoreError,
)
from runlife.stores import MemoryStore, _failpoints, open_store
from runlife.stores._postgres import PostgresStore
from runlife.stores._postgres.connection import parse_url
from runlife.testing._contract import StoreContract

pytestmark = pytest.mark.postgres


class TestPostgresStore(StoreContract):
    """PostgresStore keeps the whole Store contract, on asyncio and on trio."""

    @pytest.fixture
    async def store(self, pg_url: str) -> AsyncIterator[PostgresStore]:
        async with PostgresStore(pg_url, max_size=4) as store:
            self._url = pg_url
            yield store

    async def check_store_integrity(self, store: Store) -> None:
        """No connection was left inside a transaction by a cancelled call."""
        assert _idle_in_transaction(self._url) == 0


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
async def test_many_stores_opening_at_once_migrate_once(pg_url: str) -> None:
    """Stores opening together (each with its own connections, as separate processes
    would) on an empty schema all succeed; the schema is made once."""
    stores = [PostgresStore(pg_url, max_size=1) for _ in range(6)]
    try:
        async with anyio.create_task_group() as tg:
            for store in stores:
                tg.start_soon(store.__aenter__)
    finally:
        for store in stores:
            await store.aclose()
    with psycopg.connect(pg_url) as conn:
        versions = conn.execute("SELECT version FROM runlife_schema").fetchall()
    assert versions == [(1,), (2,)]


@pytest.mark.anyio
async def test_an_older_schema_is_migrated_forward_keeping_its_runs(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a database of an older schema applies the missing migrations in order,
    once, and records each; the runs already stored are kept."""
    from runlife.stores._postgres import schema

    async with PostgresStore(pg_url) as store:
        kept = await store.create_run(queued())
    future = schema.SCHEMA_VERSION + 1
    monkeypatch.setattr(schema, "SCHEMA_VERSION", future)
    monkeypatch.setattr(
        schema,
        "MIGRATIONS",
        {**schema.MIGRATIONS, future: "CREATE TABLE runlife_probe (note text)"},
    )
    for _ in range(2):  # the second open finds nothing left to do
        async with PostgresStore(pg_url) as store:
            assert (await store.get_run(kept.id)).id == kept.id
    with psycopg.connect(pg_url) as conn:
        versions = conn.execute("SELECT version FROM runlife_schema ORDER BY 1").fetchall()
        assert conn.execute("SELECT to_regclass('runlife_probe') IS NOT NULL").fetchone() == (True,)
    assert [v for (v,) in versions] == list(range(1, future + 1))


@pytest.mark.anyio
async def test_a_version_1_database_gets_cancel_requests(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database made by the first schema (before cancel requests) is migrated to
    version 2 on opening: its running run keeps running and can be asked to cancel."""
    from runlife.stores._postgres import schema

    with monkeypatch.context() as patch:
        patch.setattr(schema, "SCHEMA_VERSION", 1)
        async with PostgresStore(pg_url) as store:
            await store.create_run(queued())
            (claim,) = await store.claim("w1", {"backup": LC}, limit=1, lease=3600)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT max(version) FROM runlife_schema").fetchone() == (1,)
        found = conn.execute("SELECT to_regclass('runlife_cancel_requests') IS NULL").fetchone()
        assert found == (True,)
    async with PostgresStore(pg_url) as store:
        assert (await store.get_run(claim.run_id)).status is Status.RUNNING
        request = await store.request_cancel(claim.run_id, by="ops:ana", reason="stop")
        assert request is not None
        assert await store.cancel_requests([claim.run_id]) == {claim.run_id: request}
    with psycopg.connect(pg_url) as conn:
        versions = conn.execute("SELECT version FROM runlife_schema ORDER BY 1").fetchall()
    assert [v for (v,) in versions] == [1, 2]


@pytest.mark.anyio
async def test_a_newer_schema_is_refused_and_left_untouched(pg_url: str) -> None:
    """A database migrated by a newer runlife raises SchemaMismatch and is not modified."""
    async with PostgresStore(pg_url) as store:
        await store.create_run(queued())
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO runlife_schema (version) VALUES (99)")
    with pytest.raises(SchemaMismatch, match="99"):
        async with PostgresStore(pg_url):
            pass
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT max(version) FROM runlife_schema").fetchone() == (99,)
        assert conn.execute("SELECT count(*) FROM runlife_runs").fetchone() == (1,)


@pytest.mark.anyio
async def test_a_foreign_table_is_refused(pg_url: str) -> None:
    """A runlife_runs table that runlife did not make is refused, not migrated over."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE runlife_runs (id int)")
    with pytest.raises(SchemaMismatch, match="not made by runlife"):
        async with PostgresStore(pg_url):
            pass


@pytest.mark.anyio
async def test_log_search_uses_a_trigram_index(pg_url: str) -> None:
    """pg_trgm ships with the server: the log message index exists and search matches
    case-insensitively, with LIKE wildcards taken literally."""
    async with PostgresStore(pg_url) as store:
        run = await store.create_run(queued())
        lines = [
            LogLine(run_id=run.id, seq=0, at=T0, message=m)
            for m in ("Backing up core-rtr-01", "100% done", "1000 done", "BACKING UP edge")
        ]
        await store.append_logs(lines)
        found = await store.search_logs(run.id, "backing up")
        assert [line.seq for line in found] == [1, 4]
        assert [line.message for line in await store.search_logs(run.id, "0%")] == ["100% done"]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('runlife_logs_trgm')").fetchone() != (None,)


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["before_commit", "after_commit"])
async def test_failpoints_around_the_commit(pg_url: str, where: str) -> None:
    """A failure before COMMIT leaves nothing; after COMMIT (the ambiguous case) the
    write stands, and retrying the create returns the same run."""
    async with PostgresStore(pg_url) as store:
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
async def test_wait_changed_is_woken_by_another_process(pg_url: str) -> None:
    """LISTEN/NOTIFY: a write through another connection wakes a waiter long before
    its timeout."""
    async with PostgresStore(pg_url) as waiter, PostgresStore(pg_url) as writer:
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
async def test_a_write_of_another_process_before_the_first_wait_wakes_it(
    pg_url: str,
) -> None:
    """A write that another process makes after this store last read, but before
    its first wait_changed, is a change: the store listens from its opening (it
    used to LISTEN at its first wait, and missed what came before)."""
    async with PostgresStore(pg_url) as waiter, PostgresStore(pg_url) as writer:
        assert (await waiter.count_runs(RunQuery())) == {}
        await writer.create_run(queued())
        start = time.monotonic()
        await waiter.wait_changed(10)
        assert time.monotonic() - start < 5


@pytest.mark.anyio
async def test_event_followers_never_miss_an_event(pg_url: str) -> None:
    """Events commit in seq order: a follower that keeps reading after the last seq
    it saw, while many writers commit, ends with every event exactly once."""
    writers = [PostgresStore(pg_url, max_size=2) for _ in range(4)]
    follower = PostgresStore(pg_url, max_size=1)
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
async def test_limits_hold_under_many_concurrent_claimers(pg_url: str) -> None:
    """8 claimers with their own connections race for runs of a job with
    max_concurrency=2 and per_label={"device": 1}: never more than 2 live runs, never
    2 on one device — checked by sampling the store while they race and by
    replaying every claim and completion in commit (event) order."""
    setup = PostgresStore(pg_url)
    await setup.save_job(JobRecord(name="dev", max_concurrency=2, per_label={"device": 1}))
    devices = ["a", "b", "c", "a", "b", "c", None]
    runs = [
        queued("dev", i, labels={} if d is None else {"device": d})
        for i, d in enumerate(devices * 6)
    ]
    for run in runs:
        await setup.create_run(run)
    claimers = [PostgresStore(pg_url, max_size=1) for _ in range(8)]
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
    pg_url: str,
) -> None:
    """Concurrent creates and updates of one store are batched, yet each call gets
    its own outcome: duplicates find the stored run, a lost compare-and-set and a
    stale claim are refused alone, the others are written."""
    async with PostgresStore(pg_url, max_size=2) as store:
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


# -- exact moments, value ranges, text ----------------------------------------------------


def _moments() -> st.SearchStrategy[datetime]:
    return st.datetimes(
        min_value=MIN_TIME.replace(tzinfo=None),
        max_value=MAX_TIME.replace(tzinfo=None),
        timezones=st.just(UTC),
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(moments=st.lists(st.tuples(_moments(), _moments()), min_size=1, max_size=12))
def test_moments_round_trip_exactly_across_the_whole_range(
    pg_url: str, moments: list[tuple[datetime, datetime]]
) -> None:
    """Random moments from 0001-01-02 to 9999-12-30 UTC come back to the microsecond:
    as columns (created_at, due_at, queued_at), as history rows (read through the
    JSON the store aggregates) and as the moments of their events. (A conversion
    through a double is off by up to 15 µs far from 1970.)"""

    async def check() -> None:
        async with PostgresStore(pg_url, max_size=2) as store:
            for created, later in moments:
                first, second = sorted((created, later))
                run = Run.create(job="far", at=first, initial=Status.QUEUED)
                run = attrs.evolve(run, due_at=second)
                stored = await store.create_run(run)
                claimed = await store.claim_run(stored.id, "w", LC, lease=60)
                nxt = LC.transition(claimed.run, Status.SUCCEEDED, at=claimed.run.created_at)
                moved = attrs.evolve(nxt, due_at=second)
                await store.update_run(moved, expected_version=claimed.run.version)
                got = await store.get_run(run.id)
                assert (got.created_at, got.queued_at, got.due_at) == (first, first, second)
                assert got.history == moved.history
                events = await store.events(run_id=run.id)
                assert [e.at for e in events] == [t.at for t in moved.history]
                assert [e.transition for e in events] == list(moved.history)

    anyio.run(check)


@pytest.mark.anyio
async def test_column_types_follow_the_kernels_ranges(pg_url: str) -> None:
    """Priorities are 32-bit (the kernel bounds them so), versions and fences 64-bit:
    the extremes of each are stored and compared as given."""
    async with PostgresStore(pg_url) as store:
        low = await store.create_run(queued(priority=-(2**31)))
        high = await store.create_run(queued(priority=2**31 - 1))
        assert (await store.get_run(low.id)).priority == -(2**31)
        claims = await store.claim("w", {"backup": LC}, limit=2, lease=60)
        assert [c.run_id for c in claims] == [high.id, low.id]
        far = 2**40
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE runlife_runs SET version = %s, fence = %s WHERE id = %s",
                (far, far, high.id),
            )
        held = attrs.evolve(claims[0], fence=far, run=attrs.evolve(claims[0].run, version=far))
        end = LC.transition(held.run, Status.SUCCEEDED, at=await store.now())
        stored = await store.update_run(end, expected_version=far, claim=held)
        assert stored.version == far + 1
        assert (await store.get_run(high.id)).version == far + 1
    with psycopg.connect(pg_url) as conn:
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'runlife_runs' AND table_schema = current_schema()"
            ).fetchall()
        )
    assert types["priority"] == "integer"
    assert (types["version"], types["fence"], types["n_logs"]) == ("bigint",) * 3


@pytest.mark.anyio
async def test_case_folding_is_pythons_str_lower(pg_url: str) -> None:
    """Search folds case with Python's str.lower() on both sides, whatever the
    database's locale (the test server's is C): PostgreSQL finds exactly the lines
    and runs the memory store finds, for letters whose lowercase is not simple."""
    messages = ["Gerät ÄÖÜ offline", "İstanbul", "STRASSE ẞ", "ΟΔΟΣ", "ǅemal", "plain ascii"]
    needles = [
        "äöü",
        "ÄÖÜ",
        "i̇stanbul",
        "İSTANBUL",
        "ß",
        "οδοσ",
        "οδος",
        "ǆ",
        "ǅ",
        "ASCII",
        "%",
        "_",
    ]
    memory = MemoryStore()
    async with PostgresStore(pg_url) as pg, memory:
        found: dict[str, tuple[list[list[int]], list[list[str]]]] = {}
        for store in (pg, memory):
            runs = []
            for i, message in enumerate(messages):
                run = await store.create_run(queued(f"job-{i}", labels={"where": message}))
                runs.append(run)
                line = LogLine(run_id=runs[0].id, seq=0, at=T0, message=message)
                await store.append_logs([line])
            lines = [[x.seq for x in await store.search_logs(runs[0].id, n)] for n in needles]
            texts = [
                sorted(r.job for r in (await store.list_runs(RunQuery(text=n))).runs)
                for n in needles
            ]
            found[store.url] = (lines, texts)
        assert found[pg.url] == found[memory.url]
        assert found[pg.url][0][0] == [1]  # "äöü" finds "Gerät ÄÖÜ offline"


# -- URLs and connecting ------------------------------------------------------------------


def test_a_malformed_url_is_refused_naming_it_without_its_password() -> None:
    """A URL libpq cannot read is refused at once with InvalidValue, which shows the
    URL without its password and says what is accepted."""
    bad = ("postgresql://app:s3cret@[bad", "postgresql://app:s3cret@host:port/db",
           "postgresql://app:s3cret@host/db?nosuch=1", "mysql://app:s3cret@host/db")  # fmt: skip
    for url in bad:
        with pytest.raises(InvalidValue) as info:
            PostgresStore(url)
        assert "s3cret" not in str(info.value)
        assert "app@" in str(info.value)
        assert "postgresql://user:password@host" in str(info.value)
    with pytest.raises(InvalidValue, match=r"postgresql://\[bad"):
        open_store("postgresql://[bad")


def test_connections_wait_ten_seconds_unless_the_url_says() -> None:
    """A new connection gets 10 s to be answered by default; ?connect_timeout=N
    overrides it."""
    assert parse_url("postgresql://app@db/app").connect_timeout == 10
    assert parse_url("postgresql://app@db/app?connect_timeout=3").connect_timeout == 3


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


@pytest.mark.anyio
async def test_a_server_that_never_answers_fails_within_the_connect_timeout(
    silent_port: int,
) -> None:
    """A port that accepts and never answers fails the first call after about
    connect_timeout seconds (not psycopg's default of 130 s), with a StoreError that says where it
    tried to connect, as whom and for how long, and never the password."""
    url = f"postgresql://app:s3cret@127.0.0.1:{silent_port}/runs?connect_timeout=1"
    store = PostgresStore(url)
    start = time.monotonic()
    with pytest.raises(StoreError) as info:
        await store.get_run("x")
    elapsed = time.monotonic() - start
    message = str(info.value)
    assert elapsed < 1 + 3, elapsed
    assert "s3cret" not in message
    for part in ("127.0.0.1", str(silent_port), "'runs'", "'app'", "connect_timeout=1 s"):
        assert part in message, message
    assert isinstance(info.value.__cause__, psycopg.Error)
    await store.aclose()


# -- failures and cancellation inside transactions -----------------------------------------


def _idle_in_transaction(url: str) -> int:
    """How many connections of *url* (by its application_name) sit inside a transaction."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
            "AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()",
            (psycopg.conninfo.conninfo_to_dict(url)["application_name"],),
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.anyio
async def test_a_failure_decoding_rows_inside_a_write_rolls_it_back(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write whose own Python code fails half way (a row that cannot be decoded,
    an encoding that fails) commits nothing: the update whose RETURNING rows could
    not be decoded left the run as it was, the claim that could not decode its
    candidates left the run QUEUED with its fence and no event, the item and the
    log lines that failed after their first statements left no trace."""
    from runlife.stores._postgres import rows

    async with PostgresStore(pg_url, max_size=1) as store:
        run = await store.create_run(queued(idempotency_key="k"))
        events = await store.events()

        def broken(*args: Any) -> Any:
            raise OverflowError("date value out of range")

        with monkeypatch.context() as patch:
            patch.setattr(rows, "progress", broken)
            moved = LC.transition(run, Status.CANCELLED, at=await store.now())
            with pytest.raises(StoreError, match="out of range"):
                await store.update_run(moved, expected_version=run.version)

        with monkeypatch.context() as patch:
            patch.setattr(rows, "candidate_from_row", broken)
            with pytest.raises(StoreError, match="out of range") as info:
                await store.claim("w", {"backup": LC}, limit=1, lease=60)
            assert isinstance(info.value.__cause__, OverflowError)
        with monkeypatch.context() as patch:
            patch.setattr(rows, "item_event_body", broken)
            with pytest.raises(StoreError):
                await store.save_item(Item(run_id=run.id, key="k", status=Status.RUNNING))
        with monkeypatch.context() as patch:
            patch.setattr(rows, "log_row", broken)
            with pytest.raises(StoreError):
                await store.append_logs([LogLine(run_id=run.id, seq=0, at=T0, message="m")])
        assert await store.get_run(run.id) == run
        assert await store.items(run.id) == ()
        assert await store.events() == events
        assert _idle_in_transaction(pg_url) == 0
        (claim,) = await store.claim("w", {"backup": LC}, limit=1, lease=60)
        assert claim.fence == 1
        [line] = await store.append_logs([LogLine(run_id=run.id, seq=0, at=T0, message="m")])
        assert line.seq == 1


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_plain_asyncio_cancellation_of_a_waiting_claim_rolls_it_back(
    pg_url: str,
) -> None:
    """asyncio.wait_for cutting a claim that waits for a job-row lock (its
    transaction open) rolls the transaction back and leaves the store's only
    connection usable; the run is claimed exactly once afterwards."""
    async with PostgresStore(pg_url, max_size=1) as store:
        await store.save_job(JobRecord(name="backup", max_concurrency=1))
        run = await store.create_run(queued())
        with psycopg.connect(pg_url) as blocker:
            blocker.execute("SELECT 1 FROM runlife_jobs WHERE name = 'backup' FOR UPDATE")
            for _ in range(3):
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(store.claim("w", {"backup": LC}, limit=1, lease=60), 0.3)
                assert (await store.get_run(run.id)).status is Status.QUEUED
            assert _idle_in_transaction(pg_url) == 1  # the blocker alone
        (claim,) = await store.claim("w", {"backup": LC}, limit=1, lease=60)
        assert claim.fence == 1
        assert [e.transition.to for e in await store.events(run_id=run.id) if e.transition] == [
            Status.RUNNING
        ]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_cancelled_update_whose_statement_was_sent_happens_entirely(
    pg_url: str,
) -> None:
    """A group-committed update cancelled by asyncio.wait_for once its statement is
    on its way (here: waiting for a row lock) is not cut: the caller gets its
    TimeoutError after the write, which happened whole (version, history, event);
    one cancelled before its batch left never happens."""
    async with PostgresStore(pg_url, max_size=1) as store:
        run = await store.create_run(queued())
        claim = await store.claim_run(run.id, "w", LC, lease=60)
        end = LC.transition(claim.run, Status.SUCCEEDED, at=await store.now())
        with psycopg.connect(pg_url) as blocker:
            blocker.execute("SELECT 1 FROM runlife_runs WHERE id = %s FOR UPDATE", (run.id,))
            task = asyncio.ensure_future(
                asyncio.wait_for(
                    store.update_run(end, expected_version=claim.run.version, claim=claim), 0.2
                )
            )
            await asyncio.sleep(0.6)
            assert not task.done()  # it waits for its write, not for the timeout
            blocker.rollback()
            with pytest.raises(TimeoutError):
                await task
        stored = await store.get_run(run.id)
        assert stored.status is Status.SUCCEEDED
        assert stored.history == end.history
        events = [e.transition.to for e in await store.events(run_id=run.id) if e.transition]
        assert events == [Status.RUNNING, Status.SUCCEEDED]
        # Cancelled before its batch was sent: withdrawn, never written.
        other = await store.create_run(queued())
        task = asyncio.ensure_future(store.create_run(queued()))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert {r.id for r in (await store.list_runs(RunQuery())).runs} == {run.id, other.id}
        assert _idle_in_transaction(pg_url) == 0


# -- the codec's forms --------------------------------------------------------------------


@pytest.mark.anyio
async def test_stored_json_is_the_codecs(pg_url: str) -> None:
    """What PostgreSQL keeps as JSON is the core codec's form, the same SQLite keeps:
    attempts, errors, transition and item event bodies (items with their run_id)."""
    from runlife._core import codec

    async with PostgresStore(pg_url) as store:
        run = await store.create_run(queued())
        claim = await store.claim_run(run.id, "w", LC, lease=60)
        item = Item(run_id=run.id, key="dev-1", status=Status.FAILED, output={"n": [1, 2]},
                    error=ErrorInfo(kind="error", type="E", message="m"))  # fmt: skip
        await store.save_item(item, claim=claim)
        failed = LC.transition(
            claim.run, Status.FAILED, at=await store.now(), error=ErrorInfo(message="boom")
        )
        stored = await store.update_run(failed, expected_version=claim.run.version, claim=claim)
    with psycopg.connect(pg_url) as conn:
        attempts, error = conn.execute(
            "SELECT attempts::text, error::text FROM runlife_runs WHERE id = %s", (run.id,)
        ).fetchone() or (None, None)
        bodies = conn.execute(
            "SELECT kind, body::text FROM runlife_events WHERE run_id = %s ORDER BY seq",
            (run.id,),
        ).fetchall()
    assert json.loads(attempts) == codec.attempts_to_json(stored.attempts)
    assert json.loads(error) == codec.error_to_json(stored.error)
    kinds = [kind for kind, _ in bodies]
    assert kinds == ["transition", "item", "transition"]
    assert json.loads(bodies[0][1]) == codec.transition_to_json(stored.history[0])
    assert json.loads(bodies[1][1]) == {**codec.item_to_json(item), "n": [1, 0, 0, 0, 1, 0]}
    assert json.loads(bodies[2][1]) == codec.transition_to_json(stored.history[1])
