"""Many workers on one PostgreSQL database: each run is claimed by exactly one.

Four worker runtimes (as four processes or hosts would be; here four runtimes in one
process, each with its own connection pool and worker id) share one PostgreSQL
store. A fifth runtime only submits: 40 thumbnail runs over two sites, with at most
two runs of a site at once across all workers (``Limits(per_label={"site": 2})``,
enforced by the store when it claims). Then, read from the store: who ran what, and
that no run ran twice.

Run it with ``RUNLIFE_PG_URL=postgresql://user@host/db python examples/postgres_workers.py``
(it creates runlife's tables in that database, or in the schema the URL names with
``?options=-csearch_path%3Dmyschema``).
"""

from __future__ import annotations

import os
import sys
from collections import Counter

import anyio
import anyio.abc

import runlife
from runlife import Limits, Status

active: Counter[str] = Counter()  # runs of each site running now, across the workers
peak: Counter[str] = Counter()


@runlife.job(limits=Limits(per_label={"site": 2}))
async def make_thumbnail(ctx: runlife.RunContext, image: str) -> str:
    site = image.split("/")[0]  # the run's label "site" too
    active[site] += 1
    peak[site] = max(peak[site], active[site])
    try:
        await anyio.sleep(0.05)
    finally:
        active[site] -= 1
    return f"{image}.thumb.png"


async def worker(
    url: str, name: str, stop: anyio.Event, *, task_status: anyio.abc.TaskStatus[None]
) -> None:
    async with runlife.AsyncRuntime(
        jobs=[make_thumbnail], store=url, worker_id=name, concurrency=2, poll=0.2
    ):
        task_status.started()
        await stop.wait()


def claimed_by(run: runlife.Run) -> str:
    return next(t.reason or "" for t in run.history if t.to == "RUNNING").removeprefix(
        "claimed by "
    )


async def main(url: str) -> None:
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        for n in range(1, 5):
            await tg.start(worker, url, f"worker-{n}", stop)
        # The host's web process only submits: it has no jobs of its own to run.
        async with runlife.AsyncRuntime(store=url, worker_id="web-1") as rt:
            runs: list[runlife.Run] = []
            for site in ("dc1", "dc2"):
                images = [{"image": f"{site}/img-{n:02d}"} for n in range(20)]
                runs += await rt.submit_many("make_thumbnail", images, labels={"site": site})
            done = [await rt.wait(run.id, timeout=60) for run in runs]
        stop.set()

    print(f"{len(done)} runs, {sum(r.status is Status.SUCCEEDED for r in done)} SUCCEEDED")
    for name, count in sorted(Counter(claimed_by(run) for run in done).items()):
        print(f"  {name}: {count} runs")
    print(f"each run ran once: {all(len(run.attempts) == 1 for run in done)}")
    print(f"at most 2 runs of a site at once: {max(peak.values()) <= 2}")


if __name__ == "__main__":
    url = os.environ.get("RUNLIFE_PG_URL")
    if not url:
        sys.exit("set RUNLIFE_PG_URL to a postgresql:// URL (see the docstring)")
    anyio.run(main, url)
