"""Items through ``ctx.item``: what recording an item costs a job, per item.

1. Memory: a run of 10,000 items, each ``async with ctx.item(key): pass``, timed
   inside the job from the first item until every item is stored; beside it the
   floor of a bare ``async with`` of an empty context manager plus one
   ``save_item`` per item on the same store. Target: at most 5x the floor.
2. SQLite: the same run on a SQLite file; beside it, plain sqlite3 writing the
   same item rows in the same run (the rows the store wrote, read back from its
   item events, with the store's statements and schema and as many
   transactions as the store committed). Target: at least half its rate.
"""

from __future__ import annotations

import gc
import json
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import anyio

from benchmarks._harness import Report
from runlife import AsyncRuntime, Item, Run, RunContext, Status, job
from runlife._core.codec import raw_dumps
from runlife._core.ids import new_id
from runlife.abc import Store
from runlife.stores import MemoryStore, SQLiteStore
from runlife.stores._sqlite import rows, sql

N = 10_000
TRIALS = 5
MEMORY_TARGET = 5.0
SQLITE_TARGET = 0.5


class _Empty:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


async def _through_ctx_item(store: Store) -> tuple[float, str]:
    """Seconds per item of a run of N items through ``ctx.item`` (until stored), and
    the run's id."""
    keys = [f"record-{n:05d}" for n in range(N)]
    took = 0.0

    @job
    async def records(ctx: RunContext) -> None:
        nonlocal took
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for key in keys:
                async with ctx.item(key):
                    pass
            await ctx._items.flush()  # type: ignore[union-attr]
            took = time.perf_counter() - start
        finally:
            gc.enable()

    async with AsyncRuntime(jobs=[records], store=store) as rt:
        run = await rt.wait((await rt.submit(records)).id)
    assert run.status is Status.SUCCEEDED, run
    assert run.progress.succeeded == N, run.progress
    return took / N, run.id


async def _memory_floor() -> float:
    """Seconds per item of a bare ``async with`` plus one save_item."""
    async with MemoryStore() as store:
        run = await store.create_run(Run.create(job="records", at=datetime.now(UTC)))
        now = datetime.now(UTC)
        items = [
            Item(run_id=run.id, key=f"record-{n:05d}", status=Status.SUCCEEDED, started_at=now,
                 ended_at=now, attempts=1)
            for n in range(N)
        ]  # fmt: skip
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for item in items:
                async with _Empty():
                    await store.save_item(item)
            return (time.perf_counter() - start) / N
        finally:
            gc.enable()


async def _memory_trial() -> tuple[float, float]:
    per_item, _ = await _through_ctx_item(MemoryStore())
    return per_item, await _memory_floor()


async def _sqlite_trial(path: Path) -> tuple[float, int, list[str]]:
    """Seconds per item on SQLite, the store's commits meanwhile, and the item
    rows it wrote (their event bodies, in order)."""
    async with SQLiteStore(path) as store:
        assert store._commits is not None
        before = store._commits.commits
        per_item, run_id = await _through_ctx_item(store)
        commits = store._commits.commits - before
    conn = sqlite3.connect(path)
    written = [
        data
        for (data,) in conn.execute(
            "SELECT data FROM events WHERE run_id = ? AND kind = 'item' ORDER BY seq", (run_id,)
        )
    ]
    conn.close()
    return per_item, commits, written


def _floor(path: Path, written: list[str], commits: int) -> float:
    """Seconds per item of plain sqlite3 writing *written* (item rows as the store's
    event bodies) into one run, in *commits* transactions, through the store's
    statements and schema and pragmas: per transaction the stored statuses of its
    keys, the rows, the run's progress and an event per row. Values go straight
    from the JSON into the statements: no records, no checks, no event loop."""

    async def make() -> None:
        async with SQLiteStore(path):
            pass

    anyio.run(make)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    run_id = new_id()
    conn.execute(
        "INSERT INTO runs (id, job, status, state, trigger, params, labels, created_at,"
        " attempts, history, warnings, priority, version)"
        " VALUES (?, 'records', 'RUNNING', 'RUNNING', 'ADHOC', '{}', '{}', 0, '[]', '[]',"
        " '[]', 0, 1)",
        (run_id,),
    )
    parsed = [json.loads(data) for data in written]
    per_commit = max(1, round(len(parsed) / max(commits, 1)))
    bucket_of = {"PENDING": 1, "RUNNING": 2, "SUCCEEDED": 3, "FAILED": 4, "SKIPPED": 5}
    counts = [0, 0, 0, 0, 0, 0]
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for first in range(0, len(parsed), per_commit):
            batch = parsed[first : first + per_commit]
            conn.execute("BEGIN IMMEDIATE")
            (now,) = conn.execute(f"SELECT {sql.NOW}").fetchone()
            conn.execute(sql.ITEM_RUN, (run_id,)).fetchone()
            keys = list(dict.fromkeys(d["key"] for d in batch))
            stored: dict[str, str] = {}
            for at in range(0, len(keys), sql.ITEM_KEYS_AT_ONCE):
                chunk = keys[at : at + sql.ITEM_KEYS_AT_ONCE]
                stored.update(conn.execute(sql.item_statuses(len(chunk)), (run_id, *chunk)))
            values, events = [], []
            for d in batch:
                old = stored.get(d["key"])
                if old is None:
                    counts[0] += 1
                else:
                    counts[bucket_of[old]] -= 1
                counts[bucket_of[d["status"]]] += 1
                stored[d["key"]] = d["status"]
                values.append((run_id, d["key"], d["phase"], d["status"], d["s"], d["e"],
                               d["attempts"], None, "null"))  # fmt: skip
                events.append((run_id, "records", now, "RUNNING", raw_dumps(d)))
            conn.executemany(sql.SAVE_ITEM, values)
            conn.execute(sql.SET_PROGRESS, (raw_dumps(counts), run_id))
            conn.executemany(sql.INSERT_ITEM_EVENT, events)
            conn.execute("COMMIT")
        took = time.perf_counter() - start
    finally:
        gc.enable()
    (done,) = conn.execute("SELECT count(*) FROM items WHERE status = 'SUCCEEDED'").fetchone()
    assert done == N, done
    assert (
        rows.progress_from_text(
            conn.execute("SELECT progress FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
        ).succeeded
        == N
    )
    conn.close()
    return took / N


def run(report: Report) -> None:
    memory = [anyio.run(_memory_trial) for _ in range(TRIALS)]  # each with its floor
    per_item = min(m[0] for m in memory)
    floor = min(m[1] for m in memory)
    ratio = per_item / floor
    report.figure(
        f"memory: ctx.item per item, {N:,} items (best of {TRIALS})", per_item * 1e6, "us",
        target="reference", ok=True,
    )  # fmt: skip
    report.figure(
        "  floor: bare async with + one save_item", floor * 1e6, "us",
        target="reference, same process", ok=True,
    )  # fmt: skip
    report.figure(
        "  ratio: ctx.item / floor", ratio, "x",
        target=f"<= {MEMORY_TARGET:g}x", ok=ratio <= MEMORY_TARGET,
    )  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="runlife-bench-") as tmp:
        root = Path(tmp)
        # Each trial and its floor back to back: the machine is shared, and its
        # noise only ever slows.
        trials, floors = [], []
        for n in range(TRIALS):
            trial = anyio.run(_sqlite_trial, root / f"items-{n}.db")
            trials.append(trial)
            floors.append(_floor(root / f"floor-{n}.db", trial[2], trial[1]))
        sqlite_per_item, commits, written = min(trials, key=lambda t: t[0])
        floor_per_item = min(floors)
    rate, floor_rate = 1 / sqlite_per_item, 1 / floor_per_item
    report.figure(
        f"sqlite: ctx.item items/s, {N:,} items (best of {TRIALS})", rate, "/s",
        target="reference", ok=True,
    )  # fmt: skip
    report.figure(
        f"  rows written {len(written):,} in {commits:,} transactions", len(written) / N,
        "rows/item", target="reference", ok=True,
    )  # fmt: skip
    report.figure(
        "  floor: plain sqlite3, the same rows and transactions", floor_rate, "/s",
        target="reference (the store's pragmas)", ok=True,
    )  # fmt: skip
    sqlite_ratio = rate / floor_rate
    report.figure(
        "  ratio: runlife items/s / floor", sqlite_ratio, "",
        target=f">= {SQLITE_TARGET:g}", ok=sqlite_ratio >= SQLITE_TARGET,
    )  # fmt: skip
