"""The runtime: end-to-end runs per second, each beside the floor it is a ratio of.

A run here is end to end: ``submit`` (QUEUED), claimed by the runtime's worker,
its attempt run (an async no-op job), SUCCEEDED written, and ``wait`` returning
it. Every run is submitted first, then every run is awaited; the clock starts at
the first submit (the runtime already entered) and stops at the last SUCCEEDED.
Every job function counts its executions: each run must execute exactly once.

1. MemoryStore: 1,000 and 100,000 runs submitted one ``submit`` at a time. The
   floor: asyncio ``create_task`` of an async no-op for each, then ``await`` of
   each, in the same process and run. Per-run cost must stay flat from 1,000 to
   100,000 queued runs. The same through one ``submit_many`` is a reference.
2. SQLite (a temporary file): the runs submitted by concurrent tasks (as the
   store benchmark's creators), then awaited; the runtime holds as many runs at
   once as one claim of the store benchmark takes. The floor is bench_sqlite's: plain
   sqlite3 writing the rows of a lifecycle, with as many writes per commit as the
   runtime's store had (its group commit), in the same run.
3. PostgreSQL: 4 runtime processes (on this machine's cores), each submitting its
   share from concurrent tasks and running whichever runs it claims, until every
   run of every process is SUCCEEDED; each holds as many runs at once as one
   claim of the store benchmark takes. Beside it, bench_postgres's store-level
   figure (4 processes making the same lifecycles through the store alone), in
   the same run against the same server. Executions are counted per run id.

Timings are the best of TRIALS, each on a fresh runtime and store (the machine
may be shared, and its noise only ever slows); the trials of figures compared
with each other take turns. The garbage collector runs as it
does in a host, in the runtime's figures and in the floors alike, after a full
collection before each.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio

import runlife
from benchmarks import bench_postgres, bench_sqlite
from benchmarks._harness import Report
from runlife import Status
from runlife.stores import MemoryStore
from runlife.stores._postgres import PostgresStore
from runlife.stores._sqlite import SQLiteStore

TRIALS = 3
SMALL = 1_000
MEMORY_CONCURRENCY = 16  # the runtime's default
LARGE = 100_000
FLOOR_RATIO = 0.20
FLAT_RATIO = 1.3
SQLITE_RUNS = bench_sqlite.LIFECYCLES  # the floor writes this many lifecycles
SQLITE_SUBMITTERS = 128
# The runs a runtime holds at once: as many as one claim of the store benchmark.
SQLITE_CONCURRENCY = bench_sqlite.CLAIM_BATCH
SQLITE_RATIO = 0.4
PG_PROCESSES = bench_postgres.WORKERS
PG_PER_PROCESS = bench_postgres.PER_WORKER
PG_SUBMITTERS = bench_postgres.TASKS
PG_POOL = bench_postgres.POOL
PG_CONCURRENCY = bench_postgres.CHUNK
PG_RATIO = 0.6

_executed: list[str] = []


@runlife.job
async def noop(ctx: runlife.RunContext) -> None:
    _executed.append(ctx.run_id)


def _timed(main: Callable[[], Coroutine[Any, Any, float]]) -> float:
    """Run *main* on a fresh asyncio loop, after a full collection; it returns the
    seconds it measured."""
    gc.collect()
    return anyio.run(main)


def _check_executed(n: int) -> None:
    if len(_executed) != n or len(set(_executed)) != n:
        raise RuntimeError(f"{len(_executed)} executions of {len(set(_executed))} runs, not {n}")
    _executed.clear()


# -- 1. memory -----------------------------------------------------------------------


async def _floor(n: int) -> float:
    async def nothing() -> None:
        return None

    start = time.perf_counter()
    tasks = [asyncio.create_task(nothing()) for _ in range(n)]
    for task in tasks:
        await task
    return time.perf_counter() - start


async def _memory(n: int, many: bool) -> float:
    async with runlife.AsyncRuntime(
        jobs=[noop], store=MemoryStore(), concurrency=MEMORY_CONCURRENCY
    ) as rt:
        start = time.perf_counter()
        if many:
            runs = await rt.submit_many(noop, [{}] * n)
        else:
            runs = tuple([await rt.submit(noop) for _ in range(n)])
        for run in runs:
            done = await rt.wait(run.id)
            if done.status is not Status.SUCCEEDED:
                raise RuntimeError(f"run {run.id} ended {done.status}")
        elapsed = time.perf_counter() - start
    _check_executed(n)
    return elapsed


def _run_memory(report: Report) -> None:
    _timed(lambda: _memory(SMALL, False))  # warm up: imports, caches
    # The trials of each figure take turns, so that a change in the machine's load
    # weighs on the figures a ratio compares alike.
    best: dict[str, float] = {}
    for _ in range(TRIALS):
        for name, fn in (
            ("floor", lambda: _floor(LARGE)),
            ("small", lambda: _memory(SMALL, False)),
            ("large", lambda: _memory(LARGE, False)),
            ("many", lambda: _memory(LARGE, True)),
        ):
            best[name] = min(best.get(name, float("inf")), _timed(fn))
    floor, small = LARGE / best["floor"], SMALL / best["small"]
    large, many = LARGE / best["large"], LARGE / best["many"]
    report.figure(
        f"floor: asyncio create_task + await of a no-op, {LARGE:,} tasks", floor, "/s",
        target="reference, same run", ok=True,
    )  # fmt: skip
    for label, rate in ((f"{SMALL:,}", small), (f"{LARGE:,}", large)):
        report.figure(
            f"memory: runs/s end to end, {label} runs, submit each", rate, "/s",
            target=f">= {FLOOR_RATIO:g} x floor = {FLOOR_RATIO * floor:,.0f}/s",
            ok=rate >= FLOOR_RATIO * floor,
        )  # fmt: skip
    for label, rate in ((f"{SMALL:,}", small), (f"{LARGE:,}", large)):
        report.figure(
            f"  ratio: runtime runs/s / floor, {label} runs", rate / floor, "",
            target=f">= {FLOOR_RATIO:g}", ok=rate >= FLOOR_RATIO * floor,
        )  # fmt: skip
    flat = small / large
    report.figure(
        f"  per-run cost at {LARGE:,} / at {SMALL:,} runs", flat, "x",
        target=f"<= {FLAT_RATIO:g}", ok=flat <= FLAT_RATIO,
    )  # fmt: skip
    report.figure(
        f"memory: runs/s end to end, {LARGE:,} runs, one submit_many", many, "/s",
        target="reference", ok=True,
    )  # fmt: skip


# -- 2. SQLite -----------------------------------------------------------------------


async def _sqlite(path: Path, commits: list[int]) -> float:
    n = SQLITE_RUNS
    async with (
        SQLiteStore(path) as store,
        runlife.AsyncRuntime(jobs=[noop], store=store, concurrency=SQLITE_CONCURRENCY) as rt,
    ):
        assert store._commits is not None
        before = store._commits.commits
        start = time.perf_counter()
        await _submit_and_wait(rt, noop, n, SQLITE_SUBMITTERS)
        elapsed = time.perf_counter() - start
        commits.append(store._commits.commits - before)
    _check_executed(n)
    return elapsed


async def _submit_and_wait(rt: runlife.AsyncRuntime, job: runlife.Job, n: int, tasks: int) -> None:
    """*n* runs of *job* submitted by *tasks* concurrent tasks, then each awaited by them."""
    ids: list[list[str]] = [[] for _ in range(tasks)]

    async def submit(mine: list[str], count: int) -> None:
        for _ in range(count):
            mine.append((await rt.submit(job)).id)

    async def wait(mine: list[str]) -> None:
        for run_id in mine:
            done = await rt.wait(run_id)
            if done.status is not Status.SUCCEEDED:
                raise RuntimeError(f"run {run_id} ended {done.status}")

    async with anyio.create_task_group() as tg:
        for i in range(tasks):
            tg.start_soon(submit, ids[i], n // tasks + (1 if i < n % tasks else 0))
    async with anyio.create_task_group() as tg:
        for mine in ids:
            tg.start_soon(wait, mine)


def _run_sqlite(report: Report, root: Path) -> None:
    commits: list[int] = []
    elapsed = []
    for trial in range(TRIALS):
        elapsed.append(_timed(lambda t=trial: _sqlite(root / f"runtime-{t}.db", commits)))
    rate = SQLITE_RUNS / min(elapsed)
    per_commit = max(1, round(3 * SQLITE_RUNS / (sum(commits) / len(commits))))
    floor = max(
        bench_sqlite._floor(root / f"floor-{t}.db", "NORMAL", per_commit) for t in range(TRIALS)
    )
    report.figure(
        f"sqlite: runs/s end to end, {SQLITE_RUNS:,} runs, {SQLITE_SUBMITTERS} submitters,"
        f" concurrency {SQLITE_CONCURRENCY}",
        rate, "/s", target=f">= {SQLITE_RATIO:g} x floor = {SQLITE_RATIO * floor:,.0f}/s",
        ok=rate >= SQLITE_RATIO * floor,
    )  # fmt: skip
    report.figure(
        f"  floor: plain sqlite3 lifecycles, {per_commit} writes/commit, synchronous=NORMAL",
        floor, "/s", target="reference, same run", ok=True,
    )  # fmt: skip
    report.figure(
        "  ratio: runtime runs/s / floor", rate / floor, "",
        target=f">= {SQLITE_RATIO:g}", ok=rate >= SQLITE_RATIO * floor,
    )  # fmt: skip


# -- 3. PostgreSQL -------------------------------------------------------------------


@runlife.job
async def pg_noop(ctx: runlife.RunContext) -> None:
    _executed.append(ctx.run_id)


async def _pg_work(url: str, index: int, ready: Any, go: Any, waited: Any, leave: Any) -> None:
    name = f"bench-runtime-{index}"
    store = PostgresStore(f"{url}&application_name={name}", min_size=PG_POOL, max_size=PG_POOL)
    async with (
        store,
        runlife.AsyncRuntime(
            jobs=[pg_noop], store=store, worker_id=name, concurrency=PG_CONCURRENCY
        ) as rt,
    ):
        ready.set()
        await anyio.to_thread.run_sync(go.wait)
        await _submit_and_wait(rt, pg_noop, PG_PER_PROCESS, PG_SUBMITTERS)
        waited.put(index)
        # Keep running the others' runs until every process has seen its own end.
        await anyio.to_thread.run_sync(leave.wait)


def _pg_process(url: str, index: int, ready: Any, go: Any, waited: Any, leave: Any,
                results: Any) -> None:  # fmt: skip
    anyio.run(_pg_work, url, index, ready, go, waited, leave)
    results.put(list(_executed))


def _pg_measure(url: str) -> tuple[float, int]:
    """Runs per second of PG_PROCESSES runtimes, and how many runs executed twice."""

    async def prepare() -> None:
        async with PostgresStore(url) as store:  # creates the schema once
            await store.now()

    anyio.run(prepare)
    ctx = multiprocessing.get_context("spawn")
    readies = [ctx.Event() for _ in range(PG_PROCESSES)]
    go, leave = ctx.Event(), ctx.Event()
    waited, results = ctx.Queue(), ctx.Queue()
    procs = [
        ctx.Process(target=_pg_process, args=(url, i, readies[i], go, waited, leave, results))
        for i in range(PG_PROCESSES)
    ]
    for p in procs:
        p.start()
    for ready in readies:
        if not ready.wait(60):
            raise RuntimeError("a runtime process did not start")
    start = time.perf_counter()
    go.set()
    for _ in procs:
        waited.get(timeout=600)
    elapsed = time.perf_counter() - start
    leave.set()
    executed = [run_id for _ in procs for run_id in results.get(timeout=120)]
    for p in procs:
        p.join(30)
    n = PG_PROCESSES * PG_PER_PROCESS
    if len(set(executed)) != n:
        raise RuntimeError(f"{len(set(executed))} runs executed, expected {n}")
    return n / elapsed, len(executed) - n


def _run_postgres(report: Report) -> None:
    dsn = os.environ.get("RUNLIFE_PG_DSN")
    if dsn:
        _pg_report(report, "RUNLIFE_PG_DSN", dsn)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from pgserver import throwaway_server

    with throwaway_server() as server:
        _pg_report(report, "TCP 127.0.0.1", server)


def _pg_report(report: Report, transport: str, dsn: str) -> None:
    fresh = bench_postgres._fresh_schema
    store_rates, rates, doubles = [], [], 0
    for _ in range(TRIALS):
        store_rates.append(bench_postgres._measure(bench_postgres._with_schema(dsn, fresh(dsn)))[0])
        rate, double = _pg_measure(bench_postgres._with_schema(dsn, fresh(dsn)))
        rates.append(rate)
        doubles += double
    floor, rate = max(store_rates), max(rates)
    n = PG_PROCESSES * PG_PER_PROCESS
    report.figure(
        f"postgres: runs/s end to end, {PG_PROCESSES} runtimes of concurrency {PG_CONCURRENCY},"
        f" {transport} ({n:,} runs)",
        rate, "/s", target=f">= {PG_RATIO:g} x store-level = {PG_RATIO * floor:,.0f}/s",
        ok=rate >= PG_RATIO * floor,
    )  # fmt: skip
    report.figure(
        f"  store-level: bench_postgres lifecycles/s, {PG_PROCESSES} processes", floor, "/s",
        target="reference, same run", ok=True,
    )  # fmt: skip
    report.figure(
        "  ratio: runtime runs/s / store-level", rate / floor, "",
        target=f">= {PG_RATIO:g}", ok=rate >= PG_RATIO * floor,
    )  # fmt: skip
    report.figure(
        f"  runs executed twice, all {TRIALS} trials", doubles, "",
        target="0", ok=doubles == 0,
    )  # fmt: skip


def run(report: Report) -> None:
    _run_memory(report)
    with tempfile.TemporaryDirectory(prefix="runlife-bench-") as tmp:
        _run_sqlite(report, Path(tmp))
    _run_postgres(report)
