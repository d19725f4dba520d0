"""Monitoring recurring jobs: is each one healthy, when did it last succeed, and
why is the dashboard stale?

Four scheduled jobs feed a dashboard: a source sync, a model refresh, a semantic
model publish and the dashboard refresh, each hourly. From 08:00 the warehouse
refuses the refresh's login. The host runs them from 05:58 to 10:30 in virtual time
(a memory store: it takes a moment), then reads, from the store only, what the
monitor shows: each job's last run, its status and duration, its last success and
its next fire; then walks the dashboard's lineage (its upstream jobs, from a
`Workflow`) to the first one whose last run failed.

Run it with ``python examples/recurring_monitor.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import anyio

import runlife
from runlife import Cron, Status, Workflow
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

clock = VirtualClock(start=datetime(2026, 3, 10, 5, 58, tzinfo=UTC))


@runlife.job(schedule=Cron("0 * * * *"))
async def sync_source(ctx: runlife.RunContext) -> int:
    await clock.sleep(240)
    return 1200  # rows


@runlife.job(schedule=Cron("10 * * * *"))
async def refresh_model(ctx: runlife.RunContext) -> None:
    await clock.sleep(300)
    if clock.now().hour >= 8:
        raise PermissionError("warehouse login failed: credentials expired")


@runlife.job(schedule=Cron("20 * * * *"))
async def publish_semantic_model(ctx: runlife.RunContext) -> None:
    await clock.sleep(90)


@runlife.job(schedule=Cron("30 * * * *"))
async def refresh_dashboard(ctx: runlife.RunContext) -> None:
    await clock.sleep(120)


JOBS = [sync_source, refresh_model, publish_semantic_model, refresh_dashboard]
# The lineage: which job feeds which (the graph alone; the jobs run on their schedules).
lineage = Workflow(
    "capacity_dashboard",
    {
        "sync_source": [],
        "refresh_model": ["sync_source"],
        "publish_semantic_model": ["refresh_model"],
        "refresh_dashboard": ["publish_semantic_model"],
    },
)


def hhmm(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%H:%M}"


async def main() -> None:
    store = MemoryStore(clock=clock)
    async with runlife.AsyncRuntime(jobs=JOBS, store=store, clock=clock, poll=60) as rt:
        await clock.sleep_until(datetime(2026, 3, 10, 10, 40, tzinfo=UTC))
        print(f"Monitor at {clock.now():%Y-%m-%d %H:%M} UTC")
        print(f"{'JOB':<24}{'LAST RUN':<10}{'STATUS':<11}{'TOOK':<7}{'LAST SUCCESS':<14}NEXT")
        last: dict[str, runlife.Run] = {}
        for job in JOBS:
            (run,) = (await rt.list_runs(job=job, limit=1)).runs
            ok = (await rt.list_runs(job=job, status=Status.SUCCEEDED, limit=1)).runs
            last[job.name] = run
            took = f"{run.duration.total_seconds() / 60:.1f}m" if run.duration else "-"
            success = hhmm(ok[0].ended_at if ok else None)
            print(f"{job.name:<24}{hhmm(run.started_at):<10}{run.status:<11}{took:<7}"
                  f"{success:<14}{hhmm(await rt.next_fire(job))}")  # fmt: skip

        print("\nWhy is the dashboard stale? Its upstream jobs, from the source on:")
        for name in (*lineage.upstream("refresh_dashboard"), "refresh_dashboard"):
            run = last[name]
            print(f"  {name:<24}{run.status}" + (f": {run.error.message}" if run.error else ""))
        upstream = lineage.upstream("refresh_dashboard")
        culprit = next(n for n in upstream if last[n].status is Status.FAILED)
        ok = (await rt.list_runs(job=culprit, status=Status.SUCCEEDED, limit=1)).runs[0]
        print(f"First failing upstream: {culprit} (last success {hhmm(ok.ended_at)}); "
              "the dashboard shows data as of then.")  # fmt: skip
        failures = await rt.list_runs(job=culprit, status=Status.FAILED)
        print(f"{culprit} failed {len(failures.runs)} times: "
              + ", ".join(hhmm(r.started_at) for r in reversed(failures.runs)))  # fmt: skip


if __name__ == "__main__":
    anyio.run(main)
