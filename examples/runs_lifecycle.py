"""Runs of data operations: Promote starts directly in Running, a Profile run
succeeds with a warning for a failed container, a Scan fails and is resumed, then
rerun from scratch, and a Sync is aborted.

* Promote is declared ``queued=False``: its runs skip QUEUED and start at once.
* Profile records each container (table) as an item: a container can fail while the
  run ends SUCCEEDED, with a warning naming it (the run-level and the container-level
  layers are independent); its per-container results are the run's items.
* Scan fails on an unrecoverable error half-way: ``rt.resume`` makes a new run that
  does only the containers not done (the others are SKIPPED, naming where they
  succeeded); ``rt.rerun`` makes a new run that does them all again.
* Sync is aborted by the user (``rt.cancel``): CANCELLED, saying who.

Run it with ``python examples/runs_lifecycle.py``. Virtual time, memory store.
"""

from __future__ import annotations

from datetime import UTC, datetime

import anyio

import runlife
from runlife import Status
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

clock = VirtualClock(start=datetime(2026, 3, 10, 11, 0, tzinfo=UTC))
TABLES = ["orders", "customers", "invoices", "events"]
broken = {"invoices"}  # containers the scan cannot read, until fixed


@runlife.job(queued=False)
async def promote(ctx: runlife.RunContext, entities: int = 12) -> str:
    await clock.sleep(8)
    return f"{entities} entities promoted"


@runlife.job
async def profile(ctx: runlife.RunContext, tables: list[str]) -> None:
    async def one(table: str) -> dict[str, int]:
        await clock.sleep(3)
        if table == "events":
            raise PermissionError("permission denied for table events")
        return {"rows": 1000 * len(table)}

    await ctx.map(one, tables, concurrency=1)


@runlife.job
async def scan(ctx: runlife.RunContext, tables: list[str]) -> None:
    for table in await ctx.items(tables):
        async with ctx.item(table) as item:
            if item.skipped:
                continue
            await clock.sleep(4)
            if table in broken:
                raise RuntimeError(f"scan of {table} aborted: connection reset")
            item.output = {"anomalies": len(table) % 3}
        if table in broken:
            raise RuntimeError(f"unrecoverable: lost the connection while scanning {table}")


@runlife.job
async def sync(ctx: runlife.RunContext) -> None:
    await clock.sleep(3600)


def row(run: runlife.Run) -> str:
    moves = " -> ".join([run.history[0].from_, *(str(t.to) for t in run.history)])
    mark = " (!)" if run.warnings else "    "
    return f"  {run.job:<8}{run.trigger:<10}{run.status:<10}{mark} {moves}"


async def results(rt: runlife.AsyncRuntime, run: runlife.Run) -> str:
    return ", ".join(f"{i.key} {i.status}" for i in await rt.items(run.id))


async def main() -> None:
    store = MemoryStore(clock=clock)
    jobs = [promote, profile, scan, sync]
    async with runlife.AsyncRuntime(jobs=jobs, store=store, clock=clock) as rt:
        promoted = await rt.wait((await rt.submit(promote)).id)
        profiled = await rt.wait((await rt.submit(profile, {"tables": TABLES})).id)
        scanned = await rt.wait((await rt.submit(scan, {"tables": TABLES})).id)
        broken.clear()  # the connection is fixed
        resumed = await rt.wait((await rt.resume(scanned.id)).id)
        rerun = await rt.wait((await rt.rerun(resumed.id)).id)
        synced = await rt.submit(sync)
        await clock.sleep(60)
        aborted = await rt.cancel(synced.id, "wrong source", by="dana")

        print("Runs (a (!) marks a warning):")
        for run in (promoted, profiled, scanned, resumed, rerun, aborted):
            print(row(run))
        print(f"\nProfile succeeded with a warning: {profiled.warnings[0]}")
        print(f"  per-container results: {await results(rt, profiled)}")
        assert scanned.error is not None
        assert aborted.error is not None
        print(f"\nScan failed: {scanned.error.message}")
        print(f"  results: {await results(rt, scanned)}")
        parent = "the failed scan" if resumed.parent_id == scanned.id else resumed.parent_id
        print(f"Resumed as a new run, whose parent is {parent}:")
        print(f"  results: {await results(rt, resumed)}")
        skipped = [i for i in await rt.items(resumed.id) if i.status is Status.SKIPPED]
        print(f"  {skipped[0].key}: {skipped[0].reason}")
        print(f"Rerun from scratch: {await results(rt, rerun)}")
        print(f"\nSync aborted: {aborted.error.message}")


if __name__ == "__main__":
    anyio.run(main)
