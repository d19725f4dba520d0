"""``runlife jobs``, ``pause``, ``unpause``, ``summary`` and ``purge``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from runlife._cli import args as values
from runlife._cli.app import Command, Context, common
from runlife._cli.render import Column
from runlife._cli.runs import RUN_COLUMNS, lifecycle_for, run_row, when
from runlife._core.overview import JobOverview
from runlife._core.run import Run
from runlife._core.status import TERMINAL, Status
from runlife._present import human_duration, moment_text, schedule_text

__all__ = ("JOB_COLUMNS", "add", "schedule_text")

JOB_COLUMNS = (
    Column(header="JOB", shrink=True, min_width=10),
    Column(header="SCHEDULE", drop=3, shrink=True, min_width=10),
    Column(header="NEXT FIRE", drop=2),
    Column(header="PAUSED", drop=5),
    Column(header="LAST SUCCESS", drop=4),
    Column(header="LAST FAILURE", drop=1),
    Column(header="RUNNING", justify="right"),
    Column(header="QUEUED", drop=6, justify="right"),
)


def add(commands: Any) -> None:
    """Add the job and store commands to the parser."""
    jobs = commands.add_parser(
        "jobs",
        help="every job: schedule, next fire, paused, last success and failure",
        description="One row per job (and workflow) of the store: its schedule, when it "
        "fires next, whether it is paused, its newest success and failure, and how many "
        "of its runs run now.",
    )
    common(jobs)
    jobs.set_defaults(cmd=Command(handler=_jobs))
    for verb, paused in (("pause", True), ("unpause", False)):
        parser = commands.add_parser(
            verb,
            help=f"{verb} a job's schedule",
            description="Pause a job's schedule: it fires nothing until unpaused."
            if paused
            else "Unpause a job's schedule; its catch_up decides about the slots it missed.",
        )
        common(parser)
        parser.add_argument("job", metavar="JOB", help="the job's name")
        parser.set_defaults(cmd=Command(handler=_pause if paused else _unpause))

    summary = commands.add_parser(
        "summary",
        help="how the work is doing: counts, oldest running, overdue, stalled",
        description="Runs created in the window by status, and, now: the oldest running "
        "run, the runs past a time limit of their job, and the runs whose lease lapsed "
        "(their worker is presumed lost).",
    )
    common(summary)
    summary.add_argument(
        "--since", type=values.moment, default=timedelta(hours=24), metavar="WHEN",
        help="window start: 24h (default), 7d or ISO 8601",
    )  # fmt: skip
    summary.add_argument("--until", type=values.moment, metavar="WHEN", help="window end")
    summary.set_defaults(cmd=Command(handler=_summary))

    purge = commands.add_parser(
        "purge",
        help="delete finished runs older than a span",
        description="Delete the finished runs that ended before the span, with their "
        "history, items, logs, signals and events. Active runs are never purged.",
    )
    common(purge)
    purge.add_argument(
        "--older-than", type=values.span, required=True, metavar="SPAN", help="90d, 12w, ..."
    )
    purge.add_argument(
        "--status", type=values.status, action="append", help="only runs that ended so"
    )
    purge.add_argument("--dry-run", action="store_true", help="count them, delete nothing")
    purge.set_defaults(cmd=Command(handler=_purge))


def _outcome(run: Run | None) -> str:
    return "-" if run is None else moment_text(run.ended_at or run.created_at, short=True)


def _job_row(out: Any, row: JobOverview) -> list[Any]:
    name = f"{row.name} (workflow)" if row.workflow else row.name
    return [
        name,
        schedule_text(row.schedule) if row.readable else "(unreadable spec)",
        moment_text(row.next_fire, short=True),
        out.styled(("paused", "yellow")) if row.paused else "-",
        _outcome(row.last_success),
        out.styled((_outcome(row.last_failure), "red")) if row.last_failure else "-",
        str(row.running),
        str(row.queued),
    ]


async def _jobs(ctx: Context) -> int:
    rows = await ctx.rt.list_jobs()
    if ctx.out.as_json:
        ctx.out.json({"jobs": rows})
        return 0
    if not rows:
        ctx.out.line("no jobs in this store", style="dim")
        return 0
    ctx.out.table(JOB_COLUMNS, [_job_row(ctx.out, row) for row in rows])
    return 0


async def _pause(ctx: Context) -> int:
    record = await ctx.rt.pause(ctx.args.job)
    if ctx.out.as_json:
        ctx.out.json(record)
    else:
        ctx.out.line(
            f"paused {record.name}: its schedule fires nothing until "
            f"`runlife unpause {record.name}`"
        )
    return 0


async def _unpause(ctx: Context) -> int:
    record = await ctx.rt.unpause(ctx.args.job)
    if ctx.out.as_json:
        ctx.out.json(record)
    else:
        ctx.out.line(f"unpaused {record.name}: its schedule fires again")
    return 0


async def _summary(ctx: Context) -> int:
    rt, out, a = ctx.rt, ctx.out, ctx.args
    now = rt.clock.now()
    summary = await rt.summary(since=when(a.since, now), until=when(a.until, now))
    if out.as_json:
        out.json(summary)
        return 0
    window = f"since {moment_text(summary.since)}" if summary.since else "all time"
    if summary.until is not None:
        window += f" until {moment_text(summary.until)}"
    out.line(f"{summary.total} runs created {window} (UTC)", style="bold")
    if summary.counts:
        parts: list[tuple[str, str | None]] = []
        for status, count in summary.counts.items():
            if parts:
                parts.append(("  ", None))
            parts.append((f"{status.value} {count}", _style(status)))
        out.line(out.styled(("  ", None), *parts))
    oldest = summary.oldest_running
    if oldest is not None:
        out.line(
            f"oldest running: {oldest.id}  {oldest.job}  for {human_duration(oldest.elapsed(now))}"
        )
    else:
        out.line("oldest running: none", style="dim")
    cache: dict[str, Any] = {}
    if summary.overdue:
        out.line()
        out.line(f"past a time limit ({len(summary.overdue)})", style="bold red")
        for overdue in summary.overdue:
            late = human_duration(now - overdue.deadline.at)
            out.line(
                f"  {overdue.run.id}  {overdue.run.job}  {overdue.run.status}  "
                f"{overdue.deadline.kind} limit {human_duration(overdue.deadline.limit)}, "
                f"passed {late} ago"
            )
    if summary.stalled:
        out.line()
        out.line(f"stalled: lease lapsed ({len(summary.stalled)})", style="bold red")
        rows = [
            run_row(out, r, await lifecycle_for(rt, r.job, cache), now) for r in summary.stalled
        ]
        out.table(RUN_COLUMNS, rows)
    if summary.healthy:
        out.line("nothing overdue or stalled", style="green")
    return 0


def _style(status: Status) -> str:
    from runlife._cli.render import status_style

    return status_style(status)


async def _purge(ctx: Context) -> int:
    rt, out, a = ctx.rt, ctx.out, ctx.args
    cutoff = rt.clock.now() - a.older_than
    statuses = frozenset(a.status) if a.status else TERMINAL
    if a.dry_run:
        counts = await rt.count_runs(status=statuses, field="ended", until=cutoff)
        count = sum(counts.values())
        verb = "would delete"
    else:
        count = await rt.purge(older_than=cutoff, statuses=statuses)
        verb = "deleted"
    if out.as_json:
        out.json({"deleted": 0 if a.dry_run else count, "matched": count, "before": cutoff})
    else:
        out.line(
            f"{verb} {count} finished run{'s' * (count != 1)} ended before {moment_text(cutoff)}"
        )
    return 0
