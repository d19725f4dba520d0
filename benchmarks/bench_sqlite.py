"""SQLiteStore: full run lifecycles per second with group commit, and reads at scale.

1. Lifecycles: concurrent tasks create runs (PENDING -> QUEUED, with history),
   claimers take them in batches and complete them (RUNNING -> SUCCEEDED with a
   result), every write through the public API; group commit shares transactions.
   Beside it, the floor: plain sqlite3 writing the same rows per lifecycle with
   as many writes per commit, and the ratio of the two (the store's overhead).
2. ``list_runs``: a page of 50 with a status + label filter over 1,000,000 runs,
   first page and a deep page (by cursor).
3. ``logs``: a 500-line page at several offsets of a 1,000,000-line log.

The 1M-row fixtures are written straight into a fresh database (executemany in
one transaction) in a temporary directory that is deleted afterwards; each is
synced to disk before its reads are timed, so that they do not share the disk
with the writeback of a gigabyte the benchmark itself just wrote.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import anyio
import attrs

from benchmarks._harness import Report
from runlife import DEFAULT_LIFECYCLE, Run, Status
from runlife._core.codec import encode_cursor, to_us
from runlife._core.ids import new_id
from runlife._core.queries import Claim, LogQuery, RunQuery
from runlife.stores._sqlite import SQLiteStore, sql

LIFECYCLES = 10_000
TRIALS = 3
CREATORS = 128
CLAIMERS = 4
CLAIM_BATCH = 64
COMPLETERS = 128
LIFECYCLE_TARGET = 5_000
RATIO_TARGET = 0.5
RUNS = 1_000_000
LINES = 1_000_000
SEARCH_LINES = 100_000
READ_TARGET_MS = 5.0
T0 = datetime(2026, 3, 10, 2, tzinfo=UTC)


async def _lifecycles(path: Path) -> tuple[float, float, int]:
    """Lifecycles per second of wall time and per second of process CPU time, and
    how many transactions committed them."""
    lc = DEFAULT_LIFECYCLE
    jobs = {"sync_device": lc}
    done = 0
    finished = anyio.Event()
    async with SQLiteStore(path) as store:
        send, receive = anyio.create_memory_object_stream[Claim](LIFECYCLES)

        async def create(count: int) -> None:
            for _ in range(count):
                now = datetime.now(UTC)
                run = Run.create(job="sync_device", at=now, labels={"site": "dc1"},
                                 params={"device": "core-rtr-01"})  # fmt: skip
                # Created with its first move recorded (PENDING -> QUEUED), as version 0.
                await store.create_run(attrs.evolve(lc.transition(run, Status.QUEUED, at=now),
                                                    version=0))  # fmt: skip

        async def completer() -> None:
            nonlocal done
            async for claim in receive:
                run = lc.transition(claim.run, Status.SUCCEEDED, at=datetime.now(UTC))
                run = attrs.evolve(run, result={"changed": 3})
                await store.update_run(run, expected_version=claim.run.version, claim=claim)
                done += 1
                if done >= LIFECYCLES:
                    finished.set()
                    return

        async def claimer(worker: str) -> None:
            while not finished.is_set():
                claims = await store.claim(worker, jobs, limit=CLAIM_BATCH, lease=30)
                if not claims:
                    await anyio.sleep(0.0005)
                    continue
                for claim in claims:
                    send.send_nowait(claim)

        start = time.perf_counter()
        cpu = time.process_time()
        async with anyio.create_task_group() as tg:
            per = LIFECYCLES // CREATORS
            for i in range(CREATORS):
                tg.start_soon(create, per + (1 if i < LIFECYCLES % CREATORS else 0))
            for i in range(CLAIMERS):
                tg.start_soon(claimer, f"worker-{i}")
            for _ in range(COMPLETERS):
                tg.start_soon(completer)
            await finished.wait()
            tg.cancel_scope.cancel()
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        send.close()
        receive.close()
        counts = await store.count_runs(RunQuery())
        assert counts == {Status.SUCCEEDED: LIFECYCLES}, counts
        assert store._commits is not None
        commits = store._commits.commits
    return LIFECYCLES / elapsed, LIFECYCLES / cpu, commits


def _floor(path: Path, synchronous: str, per_commit: int) -> float:
    """Lifecycles per second of plain sqlite3 writing what the store writes for one.

    The same rows as a lifecycle of `_lifecycles` (the run row with its JSON, its
    label row, an event per transition; the claim reading the queue and moving the
    run, its label's status and event; the completion reading the run's head and
    moving it, again with label status and event), through the store's own
    statements and schema, the same pragmas (WAL, *synchronous*), and *per_commit*
    of those writes per transaction, as the store's group commit had. Values are
    formatted straight into their JSON: no records, no checks, no event loop.
    """

    async def make() -> None:
        async with SQLiteStore(path):
            pass

    anyio.run(make)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    now_sql = f"SELECT {sql.NOW}"
    ids = [new_id() for _ in range(LIFECYCLES)]
    chunk = max(1, per_commit // 3)  # lifecycles per commit of each phase: 3 writes each
    start = time.perf_counter()
    for first in range(0, LIFECYCLES, chunk):
        wave = ids[first : first + chunk]
        conn.execute("BEGIN IMMEDIATE")
        (now,) = conn.execute(now_sql).fetchone()
        for run_id in wave:
            history = f'[{{"f":"PENDING","t":"QUEUED","at":{now},"r":null}}]'
            conn.execute(sql.INSERT_RUN, (
                run_id, "sync_device", "QUEUED", "QUEUED", "ADHOC", '{"device":"core-rtr-01"}',
                None, None, '{"site":"dc1"}', now, None, now, None, None, None, "[]", history,
                "[]", None, None, None, None, None, 0, 0, None,
            ))  # fmt: skip
            conn.execute(sql.INSERT_LABEL, (run_id, "site", "dc1", "QUEUED", now))
            conn.execute(sql.INSERT_TRANSITION_EVENT, (
                run_id, "sync_device", "transition", now, "QUEUED", "PENDING", "QUEUED", None,
            ))  # fmt: skip
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        (now,) = conn.execute(now_sql).fetchone()
        claimed = 0
        while claimed < len(wave):
            conn.execute(sql.jobs_named(1), ("sync_device",)).fetchall()
            found = conn.execute(sql.QUEUED_FIRST, ("sync_device", CLAIM_BATCH)).fetchall()
            tail = f'{{"f":"QUEUED","t":"RUNNING","at":{now},"r":"claimed by worker-0"}}]'
            attempts = f'[{{"n":1,"s":{now},"e":null,"o":null,"err":null}}]'
            conn.executemany(sql.CLAIM_RUN, [
                (tail, "RUNNING", "RUNNING", attempts, now, now, None, None, None, None, None,
                 "[]", 2, "worker-0", now + 30_000_000, 1, row[0])
                for row in found
            ])  # fmt: skip
            conn.executemany(sql.LABEL_STATUS, [("RUNNING", row[0]) for row in found])
            conn.executemany(sql.INSERT_TRANSITION_EVENT, [
                (row[0], "sync_device", "transition", now, "RUNNING", "QUEUED", "RUNNING",
                 "claimed by worker-0") for row in found
            ])  # fmt: skip
            claimed += len(found)
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        (now,) = conn.execute(now_sql).fetchone()
        for run_id in wave:
            conn.execute(sql.GET_HEAD, (run_id,)).fetchone()
            tail = f'{{"f":"RUNNING","t":"SUCCEEDED","at":{now},"r":null}}]'
            attempts = f'[{{"n":1,"s":{now},"e":{now},"o":"succeeded","err":null}}]'
            conn.execute(sql.MOVE_RUN, (
                tail, "SUCCEEDED", "SUCCEEDED", attempts, now, now, now, None, None, None,
                '{"changed":3}', "[]", 3, None, None, run_id,
            ))  # fmt: skip
            conn.execute(sql.LABEL_STATUS, ("SUCCEEDED", run_id))
            conn.execute(sql.INSERT_TRANSITION_EVENT, (
                run_id, "sync_device", "transition", now, "SUCCEEDED", "RUNNING", "SUCCEEDED",
                None))  # fmt: skip
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    (done,) = conn.execute("SELECT count(*) FROM runs WHERE status = 'SUCCEEDED'").fetchone()
    assert done == LIFECYCLES, done
    conn.close()
    return LIFECYCLES / elapsed


def _fixture_connection(path: Path) -> sqlite3.Connection:
    """The schema by the store itself, then a raw connection set up for bulk loading."""

    async def make() -> None:
        async with SQLiteStore(path):
            pass

    anyio.run(make)
    conn = sqlite3.connect(path, isolation_level=None)
    # A scratch file: no journal, no syncs (the store switches WAL back on at open).
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    return conn


def _without_indexes(conn: sqlite3.Connection, tables: tuple[str, ...]) -> list[str]:
    """Drop the secondary indexes of *tables*; returns the SQL that makes them again
    (building an index from sorted data at the end is much faster than keeping it
    up to date row by row)."""
    marks = ", ".join("?" * len(tables))
    rows = conn.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        f" AND tbl_name IN ({marks})",
        tables,
    ).fetchall()
    for name, _ in rows:
        conn.execute(f"DROP INDEX {name}")
    return [sql for _, sql in rows]


def _build_runs(path: Path) -> None:
    conn = _fixture_connection(path)
    statuses = ["SUCCEEDED"] * 16 + ["FAILED"] * 3 + ["CANCELLED", "RUNNING"]
    base = to_us(T0)

    def rows():  # type: ignore[no-untyped-def]
        for i in range(RUNS):
            status = statuses[i % len(statuses)]
            created = base + i * 1_000_000
            site = f"dc{i % 10}"
            device = f"rtr-{i % 1000:04d}"
            # The JSON the store writes, formatted directly (json.dumps per row
            # would double the time of the load).
            labels = f'{{"site":"{site}","device":"{device}"}}'
            history = (
                f'[{{"f":"PENDING","t":"QUEUED","at":{created},"r":null}},'
                f'{{"f":"QUEUED","t":"RUNNING","at":{created + 1000},"r":"claimed by w"}},'
                f'{{"f":"RUNNING","t":"{status}","at":{created + 9000},"r":null}}]'
            )
            run_id = f"{i:08x}-0000-7000-8000-000000000000"
            yield (run_id, "sync_device", status, status, "ADHOC", '{"n":1}', None, None,
                   labels, created, None, created, created + 1000, created + 9000, None, "[]",
                   history, "[]", None, None, None, None, None, 0, 3, None), (
                   (run_id, "site", site, status, created),
                   (run_id, "device", device, status, created))  # fmt: skip

    indexes = _without_indexes(conn, ("runs", "run_labels"))
    conn.execute("BEGIN")
    batch_runs: list[tuple[object, ...]] = []
    batch_labels: list[tuple[object, ...]] = []
    for run_row, label_rows in rows():
        batch_runs.append(run_row)
        batch_labels.extend(label_rows)
        if len(batch_runs) >= 50_000:
            _flush_runs(conn, batch_runs, batch_labels)
    _flush_runs(conn, batch_runs, batch_labels)
    for statement in indexes:
        conn.execute(statement)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def _flush_runs(
    conn: sqlite3.Connection, runs: list[tuple[object, ...]], labels: list[tuple[object, ...]]
) -> None:
    conn.executemany(
        "INSERT INTO runs (id, job, status, state, trigger, params, result, error, labels,"
        " created_at, scheduled_for, queued_at, started_at, ended_at, due_at, attempts,"
        " history, warnings, progress, parent_id, root_id, workflow_run_id, idempotency_key,"
        " priority, version, error_message)"
        f" VALUES ({', '.join('?' * 26)})",
        runs,
    )
    conn.executemany(
        "INSERT INTO run_labels (run_id, key, value, status, created_at) VALUES (?, ?, ?, ?, ?)",
        labels,
    )
    runs.clear()
    labels.clear()


def _build_log(path: Path, run_id: str, search_id: str) -> None:
    conn = _fixture_connection(path)
    base = to_us(T0)
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO runs (id, job, status, state, trigger, params, labels, created_at,"
        " attempts, history, warnings, priority, version)"
        " VALUES (?, 'sync_device', 'RUNNING', 'RUNNING', 'ADHOC', '{}', '{}', ?, '[]', '[]',"
        " '[]', 0, 0)",
        (run_id, base),
    )
    # Lines as the store writes them: each distinct message of a run once in
    # log_messages (indexed for search), each line naming its message. The 1M-line
    # log's messages go in without the full-text index (it would take a while to
    # build); the search is measured on a second run of SEARCH_LINES lines indexed
    # as the store indexes them.
    levels = ("info", "info", "info", "warning", "error")
    streams = ("log", "log", "stdout", "stderr")

    def message(seq: int) -> str:
        return f"device rtr-{seq % 1000:04d}: pushed {seq % 97} config lines in {seq % 13} ms"

    conn.executemany(
        "INSERT INTO log_messages (mid, run_id, message) VALUES (?, ?, ?)",
        ((seq, run_id, message(seq)) for seq in range(1, LINES + 1)),
    )
    conn.executemany(
        "INSERT INTO logs (run_id, seq, mid, at, stream, level, item, attempt, fields)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)",
        (
            (run_id, seq, seq, base + seq * 1000, streams[seq % 4], levels[seq % 5],
             f"rtr-{seq % 1000:04d}", '{"host":"rtr"}' if seq % 2 else None)
            for seq in range(1, LINES + 1)
        ),
    )  # fmt: skip
    conn.execute(
        "INSERT INTO runs (id, job, status, state, trigger, params, labels, created_at,"
        " attempts, history, warnings, priority, version)"
        " VALUES (?, 'sync_device', 'RUNNING', 'RUNNING', 'ADHOC', '{}', '{}', ?, '[]', '[]',"
        " '[]', 0, 0)",
        (search_id, base),
    )
    conn.executemany(
        "INSERT INTO log_messages (mid, run_id, message) VALUES (?, ?, ?)",
        ((LINES + seq, search_id, message(seq)) for seq in range(1, SEARCH_LINES + 1)),
    )
    conn.executemany(
        "INSERT INTO logs (run_id, seq, mid, at, stream, level, item, attempt, fields)"
        " VALUES (?, ?, ?, ?, 'log', 'info', NULL, 1, NULL)",
        (
            (search_id, seq, LINES + seq, base + seq * 1000)
            for seq in range(1, SEARCH_LINES + 1)
        ),
    )  # fmt: skip
    conn.execute(
        "INSERT INTO log_messages_fts (rowid, message)"
        " SELECT mid, message FROM log_messages WHERE run_id = ?",
        (search_id,),
    )
    conn.execute("COMMIT")
    conn.close()


async def _time_ms(fn, repeat: int = 20) -> float:  # type: ignore[no-untyped-def]
    """The median of *repeat* timings of the awaitable factory *fn*, in ms."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1000


async def _list_runs(path: Path) -> tuple[float, float, float]:
    async with SQLiteStore(path) as store:
        query = RunQuery(status="FAILED", labels={"site": "dc3"}, limit=50)
        first = await store.list_runs(query)
        assert len(first.runs) == 50
        assert first.next_cursor
        assert all(r.status is Status.FAILED and r.labels["site"] == "dc3" for r in first.runs)
        page = first
        for _ in range(40):  # a deep cursor: 2,000 runs in
            assert page.next_cursor is not None
            page = await store.list_runs(RunQuery(status="FAILED", labels={"site": "dc3"},
                                                  cursor=page.next_cursor))  # fmt: skip
        deep = RunQuery(status="FAILED", labels={"site": "dc3"}, cursor=page.next_cursor)
        mid_cursor = page.next_cursor
        t_first = await _time_ms(lambda: store.list_runs(query))
        t_deep = await _time_ms(lambda: store.list_runs(deep))
        # Two statuses and a label: one index range per status, merged.
        two = RunQuery(status=("FAILED", "CANCELLED"), labels={"device": "rtr-0042"},
                       cursor=mid_cursor)  # fmt: skip
        t_two = await _time_ms(lambda: store.list_runs(two))
    return t_first, t_deep, t_two


async def _log_pages(path: Path, run_id: str, search_id: str) -> tuple[float, float, float]:
    async with SQLiteStore(path) as store:
        worst = 0.0
        for offset in (0, 250_000, 999_000):
            cursor = encode_cursor(offset) if offset else None
            q = LogQuery(run_id=run_id, cursor=cursor, limit=500)
            page = await store.logs(q)
            assert len(page.lines) == 500
            assert page.lines[0].seq == offset + 1
            worst = max(worst, await _time_ms(lambda q=q: store.logs(q)))
        filtered = LogQuery(run_id=run_id, cursor=encode_cursor(600_000), level="error")
        t_filtered = await _time_ms(lambda: store.logs(filtered))
        t_search = await _time_ms(
            lambda: store.search_logs(search_id, "RTR-0042: pushed 3", limit=100), repeat=5
        )
    return worst, t_filtered, t_search


def run(report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="runlife-bench-") as tmp:
        root = Path(tmp)
        # The best of a few trials, each on a fresh file, as best_of does for the
        # pure benchmarks: the machine is shared, and its noise only ever slows.
        trials = [anyio.run(_lifecycles, root / f"lifecycles-{n}.db") for n in range(TRIALS)]
        rate, per_cpu, _ = max(trials)
        commits = round(sum(t[2] for t in trials) / len(trials))
        report.figure(
            f"full lifecycles/s ({CREATORS} creators, claims of {CLAIM_BATCH}, best of {TRIALS})",
            rate, "/s",
            target=f">= {LIFECYCLE_TARGET:,}/s", ok=rate >= LIFECYCLE_TARGET,
        )  # fmt: skip
        report.figure(
            "  the same per second of process CPU (both threads)", per_cpu, "/s",
            target="reference: the rate on an unshared core", ok=True,
        )  # fmt: skip
        # The floor: plain sqlite3 writing the same rows in as many transactions.
        per_commit = max(1, round(3 * LIFECYCLES / commits))
        floors = {}
        for synchronous in ("NORMAL", "OFF"):
            floors[synchronous] = max(
                _floor(root / f"floor-{synchronous}-{n}.db", synchronous, per_commit)
                for n in range(TRIALS)
            )
        report.figure(
            f"  floor: plain sqlite3, same rows, {per_commit} writes/commit, synchronous=NORMAL",
            floors["NORMAL"], "/s", target="reference (the store's pragmas)", ok=True,
        )  # fmt: skip
        report.figure(
            "  floor: the same with synchronous=OFF", floors["OFF"], "/s",
            target="reference (no durability)", ok=True,
        )  # fmt: skip
        for synchronous in ("NORMAL", "OFF"):
            ratio = rate / floors[synchronous]
            report.figure(
                f"  ratio: runlife lifecycles/s / floor ({synchronous})", ratio, "",
                target=f">= {RATIO_TARGET:g}", ok=ratio >= RATIO_TARGET,
            )  # fmt: skip

        start = time.perf_counter()
        _build_runs(root / "runs.db")
        build = time.perf_counter() - start
        os.sync()  # the reads are timed on their own, not beside the fixture's writeback
        first, deep, two = anyio.run(_list_runs, root / "runs.db")
        report.figure("list_runs status+label page of 50 / 1M runs (first)", first, "ms",
                      target=f"<= {READ_TARGET_MS:g} ms", ok=first <= READ_TARGET_MS)  # fmt: skip
        report.figure("list_runs status+label page of 50 / 1M runs (deep)", deep, "ms",
                      target=f"<= {READ_TARGET_MS:g} ms", ok=deep <= READ_TARGET_MS)  # fmt: skip
        report.figure("list_runs 2 statuses + label, deep page / 1M runs", two, "ms",
                      target="reference", ok=True)  # fmt: skip
        report.figure("fixture: 1M runs + 2M labels loaded", build, "s",
                      target="reference", ok=True)  # fmt: skip
        (root / "runs.db").unlink()

        run_id, search_id = new_id(), new_id()
        start = time.perf_counter()
        _build_log(root / "logs.db", run_id, search_id)
        build = time.perf_counter() - start
        os.sync()
        worst, filtered, search = anyio.run(_log_pages, root / "logs.db", run_id, search_id)
        report.figure("logs: 500-line page of a 1M-line log (worst offset)", worst, "ms",
                      target=f"<= {READ_TARGET_MS:g} ms", ok=worst <= READ_TARGET_MS)  # fmt: skip
        report.figure("logs: 500 error lines after line 600,000 (filtered)", filtered, "ms",
                      target="reference", ok=True)  # fmt: skip
        report.figure(f"search_logs (FTS5 trigram), {SEARCH_LINES:,}-line log", search, "ms",
                      target="reference", ok=True)  # fmt: skip
        report.figure("fixture: 1M + 100k (indexed) log lines loaded", build, "s",
                      target="reference", ok=True)  # fmt: skip
