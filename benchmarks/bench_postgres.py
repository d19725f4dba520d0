"""PostgreSQL: full run lifecycles per second with 4 worker processes.

A lifecycle is create (a QUEUED run), claim (RUNNING: a new attempt, a history row
and its event, owner, lease, fence) and complete (SUCCEEDED by compare-and-set,
checked against the claim, with its history row and event), each call its own
write, as a runtime makes them. Each worker process runs TASKS concurrent loops
(as a runtime runs several attempts at once); each loop creates CHUNK runs one by
one, claims up to CHUNK QUEUED runs (its own or anyone's) and completes each, until
its share is done and nothing is left. Concurrent calls of one process share
statements (the store's group commit). The clock starts when all workers are
connected and stops when the last one is done; every run must end SUCCEEDED.

The server is ``RUNLIFE_PG_DSN`` (a fresh schema in it) or a throwaway one
started by ``tests/pgserver.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio

from benchmarks._harness import Report
from runlife import DEFAULT_LIFECYCLE, RunQuery, Status
from runlife._core.run import Run
from runlife.stores._postgres import PostgresStore

TARGET = 2_000
WORKERS = 4
PER_WORKER = 5_000
TASKS = 16  # concurrent lifecycles per process, as a runtime runs several attempts
CHUNK = 50  # runs created, then claimed, at a time by each of them
POOL = 3
JOB = "bench"


def _with_schema(dsn: str, schema: str) -> str:
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options={quote(f'-csearch_path={schema}')}"


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a local process has used so far; 0 if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _work(url: str, n: int, ready: Any, go: Any, worker: str) -> tuple[int, float]:
    # A pool of POOL connections, named after the worker so that their server
    # processes can be found and their CPU measured.
    async with PostgresStore(
        f"{url}&application_name={worker}", min_size=POOL, max_size=POOL
    ) as store:
        backends = await _backend_pids(url, worker)
        ready.set()
        await anyio.to_thread.run_sync(go.wait)
        cpu = time.process_time() + sum(_cpu_of(pid) for pid in backends)
        done = [0]
        async with anyio.create_task_group() as tg:
            for i in range(TASKS):
                share = n // TASKS + (1 if i < n % TASKS else 0)
                tg.start_soon(_lifecycles, store, share, worker, done)
        return done[0], time.process_time() + sum(_cpu_of(pid) for pid in backends) - cpu


async def _lifecycles(store: PostgresStore, n: int, worker: str, done: list[int]) -> None:
    """Create *n* runs in chunks; claim and complete QUEUED runs until none is left."""
    lc = DEFAULT_LIFECYCLE
    created = 0
    while True:
        if created < n:
            for _ in range(min(CHUNK, n - created)):
                run = Run.create(job=JOB, at=datetime.now(UTC), initial=Status.QUEUED)
                await store.create_run(run)
            created += min(CHUNK, n - created)
        claims = await store.claim(worker, {JOB: lc}, limit=CHUNK, lease=60)
        if not claims and created >= n:
            return
        for claim in claims:
            run = claim.run
            end = lc.transition(run, Status.SUCCEEDED, at=datetime.now(UTC), reason="done")
            await store.update_run(end, expected_version=run.version, claim=claim)
            done[0] += 1


async def _backend_pids(url: str, worker: str) -> list[int]:
    """The server processes of the worker's pooled connections."""
    import psycopg  # noqa: TID251 - the benchmark inspects the server

    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (worker,)
        )
        return [int(r[0]) for r in await cur.fetchall()]


def _worker(url: str, n: int, ready: Any, go: Any, results: Any, index: int) -> None:
    done, cpu = anyio.run(_work, url, n, ready, go, f"bench-{index}")
    results.put((done, cpu))


def _measure(url: str) -> tuple[float, int, float]:
    async def prepare() -> None:
        async with PostgresStore(url) as store:  # creates the schema once
            await store.now()

    anyio.run(prepare)
    ctx = multiprocessing.get_context("spawn")
    readies = [ctx.Event() for _ in range(WORKERS)]
    go = ctx.Event()
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(url, PER_WORKER, readies[i], go, results, i))
        for i in range(WORKERS)
    ]
    for p in procs:
        p.start()
    for ready in readies:
        if not ready.wait(60):
            raise RuntimeError("a benchmark worker did not start")
    start = time.perf_counter()
    go.set()
    outcomes = [results.get(timeout=300) for _ in procs]
    elapsed = time.perf_counter() - start
    done = sum(n for n, _ in outcomes)
    cpu = sum(c for _, c in outcomes)
    for p in procs:
        p.join(30)

    async def check() -> int:
        async with PostgresStore(url) as store:
            counts = await store.count_runs(RunQuery(job=JOB))
            return counts.get(Status.SUCCEEDED, 0)

    succeeded = anyio.run(check)
    if succeeded != done or done != WORKERS * PER_WORKER:
        raise RuntimeError(
            f"completed {done}, succeeded {succeeded}, expected {WORKERS * PER_WORKER}"
        )
    return done / elapsed, done, cpu / done


def run(report: Report) -> None:
    dsn = os.environ.get("RUNLIFE_PG_DSN")
    if dsn:
        _report(report, "RUNLIFE_PG_DSN", *_measure(_with_schema(dsn, _fresh_schema(dsn))))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from pgserver import throwaway_server

    # Loopback TCP, as a store on another machine would connect, then the Unix
    # socket, as a store on the database's own host would.
    for unix_socket, transport in ((False, "TCP 127.0.0.1"), (True, "Unix socket")):
        with throwaway_server(unix_socket=unix_socket) as server:
            _report(report, transport, *_measure(_with_schema(server, _fresh_schema(server))))


def _report(report: Report, transport: str, rate: float, n: int, cpu: float) -> None:
    report.figure(
        f"lifecycles/s, {WORKERS} processes, {transport} ({n:,} runs)", rate, "/s",
        target=f">= {TARGET:,}/s", ok=rate >= TARGET,
    )  # fmt: skip
    # The machine may be shared: CPU per lifecycle (worker processes and their server
    # processes together) says what 2 idle cores would give, whatever else runs.
    report.figure(
        f"  CPU per lifecycle (workers + their server backends), {transport}", cpu * 1e6,
        "us", target="reference, same run", ok=True,
    )  # fmt: skip
    report.figure(
        f"  lifecycles/s 2 idle cores would give at that CPU, {transport}", 2 / cpu, "/s",
        target=f">= {TARGET:,}/s (reference)", ok=True,
    )  # fmt: skip


def _fresh_schema(dsn: str) -> str:
    import psycopg  # noqa: TID251 - the benchmark makes its own schema

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema
