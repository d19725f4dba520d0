"""``runlife runs``, ``show``, ``items``, ``explain``, ``graph`` and ``watch``."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import anyio

from runlife._cli import args as values
from runlife._cli.app import Command, Context, common
from runlife._cli.render import Column, Output
from runlife._core.lifecycle import Lifecycle
from runlife._core.records import Item, ItemCounts
from runlife._core.run import Run
from runlife._core.spec import JobSpec
from runlife._core.status import Status
from runlife._present import human_duration, lifecycle_chain, moment_text, progress_text
from runlife._runtime.runtime import AsyncRuntime
from runlife.exceptions import InvalidLifecycle, InvalidPolicy, JobNotFound

__all__ = ("RUN_COLUMNS", "add", "lifecycle_for", "run_row", "when")

RUN_COLUMNS = (
    Column(header="ID"),
    Column(header="JOB", shrink=True, min_width=8),
    Column(header="TRIGGER", drop=4),
    Column(header="LIFECYCLE", drop=7, shrink=True, min_width=20),
    Column(header="STATUS", shrink=True, min_width=11),
    Column(header="PROGRESS", drop=1, shrink=True, min_width=8),
    Column(header="STARTED", drop=5),
    Column(header="ENDED", drop=6),
    Column(header="DURATION", drop=2, justify="right"),
)
"""The columns of a runs table, those dropped first on a narrow terminal with the
highest ``drop``: at 80 columns ID, JOB, STATUS and PROGRESS stay."""


def add(commands: Any) -> None:
    """Add the run commands to the ``runlife`` parser."""
    runs = commands.add_parser(
        "runs",
        help="list runs, newest first",
        description="List runs, newest first, filtered; one page at a time (--cursor).",
    )
    common(runs)
    runs.add_argument("--status", type=values.status, action="append", help="FAILED, RUNNING, ...")
    runs.add_argument("--job", help="only runs of this job (or workflow)")
    runs.add_argument(
        "--trigger", type=values.trigger, action="append", help="SCHEDULED, ADHOC, ..."
    )
    runs.add_argument(
        "--label", type=values.label, action="append", metavar="KEY=VALUE", help="repeatable"
    )
    runs.add_argument(
        "--since", type=values.moment, metavar="WHEN", help="created since: 24h, 7d or ISO 8601"
    )
    runs.add_argument("--until", type=values.moment, metavar="WHEN", help="created before")
    runs.add_argument(
        "--search", metavar="TEXT", help="in the job name, error message and label values"
    )
    runs.add_argument("--limit", type=values.positive_int, default=50, help="runs per page (50)")
    runs.add_argument("--cursor", help="the next page: the cursor the last page printed")
    runs.set_defaults(cmd=Command(handler=_runs))

    show = commands.add_parser(
        "show",
        help="a run in detail: lifecycle, attempts, items, lineage",
        description="One run in detail: its times, lifecycle timeline, attempts with their "
        "errors, items (failed first) and phases, warnings, lineage, labels and signals.",
    )
    common(show)
    show.add_argument("run", metavar="RUN", help="the run's id")
    show.set_defaults(cmd=Command(handler=_show))

    items = commands.add_parser("items", help="a run's items", description="A run's items.")
    common(items)
    items.add_argument("run", metavar="RUN", help="the run's id")
    items.add_argument("--status", type=values.status, help="only items in this status")
    items.add_argument("--phase", help="only items of this phase")
    items.set_defaults(cmd=Command(handler=_items))

    explain = commands.add_parser(
        "explain",
        help="why a run is not running",
        description="Why a run is not running: the upstream it waits on, the limit that is "
        "full, the signal it waits for, when it starts or is retried, or how it ended.",
    )
    common(explain)
    explain.add_argument("run", metavar="RUN", help="the run's id")
    explain.set_defaults(cmd=Command(handler=_explain))

    graph = commands.add_parser(
        "graph",
        help="a workflow run's graph with its nodes' statuses",
        description="A workflow run's graph, each node with its run's status.",
    )
    common(graph)
    graph.add_argument("run", metavar="WORKFLOW_RUN", help="the workflow run's id")
    graph.add_argument("--format", choices=("text", "mermaid", "dot"), default="text")
    graph.set_defaults(cmd=Command(handler=_graph))

    watch = commands.add_parser(
        "watch",
        help="follow a run's progress until it ends",
        description="Follow a run's status and item progress until it ends. Exit status 0 "
        "when it SUCCEEDED, 1 when it ended otherwise.",
    )
    common(watch)
    watch.add_argument("run", metavar="RUN", help="the run's id")
    watch.add_argument(
        "--interval", type=float, default=0.5, metavar="SECONDS", help="between looks (0.5)"
    )
    watch.set_defaults(cmd=Command(handler=_watch))


# -- shared pieces -----------------------------------------------------------------


def when(value: datetime | timedelta | None, now: datetime) -> datetime | None:
    """A ``--since``/``--until`` value as a moment (a span counts back from *now*)."""
    if isinstance(value, timedelta):
        return now - value
    return value


async def lifecycle_for(rt: AsyncRuntime, job: str, cache: dict[str, Lifecycle]) -> Lifecycle:
    """The lifecycle of *job* as its stored spec says (the default one when the
    store has no record of it, or one this runlife cannot read)."""
    if job not in cache:
        try:
            spec = await rt.job_spec(job)
        except (JobNotFound, InvalidPolicy, InvalidLifecycle):
            spec = JobSpec()
        cache[job] = spec.lifecycle
    return cache[job]


def _duration(run: Run, now: datetime) -> str:
    if run.duration is not None:
        return human_duration(run.duration)
    if run.started_at is not None and not run.is_terminal:
        return human_duration(run.elapsed(now))
    return "-"


def run_row(out: Output, run: Run, lifecycle: Lifecycle, now: datetime) -> list[Any]:
    """A run's cells in `RUN_COLUMNS`."""
    return [
        run.id,
        run.job,
        run.trigger.value,
        out.chain(lifecycle_chain(run, lifecycle)),
        out.run_status(run),
        progress_text(run.progress),
        moment_text(run.started_at, short=True),
        moment_text(run.ended_at, short=True),
        _duration(run, now),
    ]


# -- runs ----------------------------------------------------------------------------


async def _runs(ctx: Context) -> int:
    a, rt, out = ctx.args, ctx.rt, ctx.out
    now = rt.clock.now()
    page = await rt.list_runs(
        job=a.job,
        status=a.status,
        trigger=a.trigger,
        labels=dict(a.label or ()),
        since=when(a.since, now),
        until=when(a.until, now),
        text=a.search,
        limit=a.limit,
        cursor=a.cursor,
    )
    if out.as_json:
        out.json({"runs": page.runs, "next_cursor": page.next_cursor})
        return 0
    if not page.runs:
        out.line("no runs match", style="dim")
        return 0
    cache: dict[str, Lifecycle] = {}
    rows = [run_row(out, run, await lifecycle_for(rt, run.job, cache), now) for run in page.runs]
    out.table(RUN_COLUMNS, rows)
    if page.next_cursor is not None:
        out.text(f"more: --cursor {page.next_cursor}")
    return 0


# -- show ----------------------------------------------------------------------------


async def _all_items(rt: AsyncRuntime, run_id: str, **filters: Any) -> list[Item]:
    found: list[Item] = []
    after: str | None = None
    while True:
        page = await rt.items(run_id, after=after, limit=1000, **filters)
        found.extend(page)
        if len(page) < 1000:
            return found
        after = page[-1].key


def _failed_first(items: list[Item]) -> list[Item]:
    order = {Status.FAILED: 0, Status.CANCELLED: 1}
    return sorted(items, key=lambda item: order.get(item.status, 2))


async def _show(ctx: Context) -> int:
    rt, out = ctx.rt, ctx.out
    run = await rt.get_run(ctx.args.run)
    items = _failed_first(await _all_items(rt, run.id))
    signals = await rt.signals(run.id)
    parent = await rt.get_run(run.parent_id) if run.parent_id else None
    children = (await rt.list_runs(parent_id=run.id, limit=100)).runs
    nodes = (await rt.list_runs(workflow_run_id=run.id, limit=1000)).runs
    if out.as_json:
        out.json(
            {
                "run": run,
                "items": items,
                "signals": signals,
                "parent": parent,
                "children": children,
                "workflow_children": nodes,
            }
        )
        return 0
    now = rt.clock.now()
    lifecycle = await lifecycle_for(rt, run.job, {})
    out.line(out.styled((f"run {run.id}", "bold"), ("  ", None), (run.job, "bold")), crop=True)
    details: list[tuple[str, Any]] = [
        ("status", out.run_status(run)),
        ("lifecycle", out.chain(lifecycle_chain(run, lifecycle))),
        ("trigger", run.trigger.value),
        ("created", moment_text(run.created_at)),
    ]
    if run.scheduled_for is not None:
        details.append(("scheduled for", moment_text(run.scheduled_for)))
    details += [
        ("started", moment_text(run.started_at)),
        ("ended", moment_text(run.ended_at)),
        ("duration", _duration(run, now)),
        ("attempts", str(run.attempt)),
        ("progress", progress_text(run.progress)),
    ]
    if run.error is not None:
        details.append(("error", out.styled((f"{run.error.kind}: {run.error.message}", "red"))))
    if run.labels:
        details.append(("labels", ", ".join(f"{k}={v}" for k, v in sorted(run.labels.items()))))
    if run.params:
        details.append(("params", _short_json(run.params)))
    if run.result is not None:
        details.append(("result", _short_json(run.result)))
    if run.priority:
        details.append(("priority", str(run.priority)))
    for name, value in details:
        line = out.styled((f"  {name:<14}", "dim"), ("", None)).append_text(_text(out, value))
        out.line(line, crop=True)

    out.line()
    out.line("lifecycle timeline", style="bold")
    timeline = [
        [moment_text(move.at), str(move.from_), str(move.to), move.reason or ""]
        for move in run.history
    ]
    out.table(
        (Column(header="AT"), Column(header="FROM"), Column(header="TO"),
         Column(header="REASON", shrink=True, min_width=10)),
        timeline or [["-", "-", str(run.state), "created"]],
    )  # fmt: skip

    if run.attempts:
        out.line()
        out.line("attempts", style="bold")
        rows = [
            [
                str(a.number),
                moment_text(a.started_at),
                moment_text(a.ended_at),
                human_duration(a.duration),
                a.outcome or "running",
                "" if a.error is None else f"{a.error.type}: {a.error.message}",
            ]
            for a in run.attempts
        ]
        out.table(
            (Column(header="#"), Column(header="STARTED"), Column(header="ENDED", drop=2),
             Column(header="TOOK", drop=1), Column(header="OUTCOME"),
             Column(header="ERROR", shrink=True, min_width=10)),
            rows,
        )  # fmt: skip

    if items:
        out.line()
        out.line(f"items ({progress_text(run.progress)}; failed first)", style="bold")
        out.table(ITEM_COLUMNS, [_item_row(out, item) for item in items[:50]])
        if len(items) > 50:
            out.line(f"... and {len(items) - 50} more: runlife items {run.id}", style="dim")
        phases: dict[str, list[Status]] = defaultdict(list)
        for item in items:
            if item.phase is not None:
                phases[item.phase].append(item.status)
        if phases:
            out.line()
            out.line("phases", style="bold")
            for phase, statuses in phases.items():
                out.line(f"  {phase:<14}{progress_text(ItemCounts.of(statuses))}")

    if run.warnings:
        out.line()
        out.line("warnings", style="bold yellow")
        for warning in run.warnings:
            out.line(f"  {out.warn_mark} {warning}")

    lineage: list[tuple[str, Run]] = []
    if parent is not None:
        lineage.append(("parent", parent))
    if run.workflow_run_id is not None:
        lineage.append(("workflow run", await rt.get_run(run.workflow_run_id)))
    lineage += [("child", child) for child in children]
    lineage += [("node", node) for node in nodes]
    if lineage or run.root_id:
        out.line()
        out.line("lineage", style="bold")
        rows = [[how, other.id, other.job, out.run_status(other)] for how, other in lineage]
        if run.root_id and run.root_id != run.parent_id:
            rows.insert(0, ["root", run.root_id, "", ""])
        out.table(
            (Column(header="HOW"), Column(header="RUN"), Column(header="JOB", shrink=True),
             Column(header="STATUS", shrink=True, min_width=9)),
            rows,
        )  # fmt: skip
    if signals:
        out.line()
        out.line("signals", style="bold")
        for name, value in signals.items():
            out.line(f"  {name:<14}{_short_json(value)}")
    return 0


def _text(out: Output, value: Any) -> Any:
    return out.styled((value, None)) if isinstance(value, str) else value


def _short_json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


# -- items ---------------------------------------------------------------------------

ITEM_COLUMNS = (
    Column(header="KEY", shrink=True, min_width=12),
    Column(header="PHASE", drop=4),
    Column(header="STATUS"),
    Column(header="TRIES", drop=3, justify="right"),
    Column(header="STARTED", drop=5),
    Column(header="DURATION", drop=2, justify="right"),
    Column(header="ERROR / OUTPUT", drop=1, shrink=True, min_width=12),
)


def _item_row(out: Output, item: Item) -> list[Any]:
    if item.error is not None:
        note: Any = out.styled((f"{item.error.kind}: {item.error.message}", "red"))
    elif item.reason:
        note = item.reason
    else:
        note = "" if item.output is None else _short_json(item.output)
    return [
        item.key,
        item.phase or "-",
        out.status(item.status),
        str(item.attempts),
        moment_text(item.started_at, short=True),
        human_duration(item.duration),
        note,
    ]


async def _items(ctx: Context) -> int:
    a, rt, out = ctx.args, ctx.rt, ctx.out
    items = await _all_items(rt, a.run, status=a.status, phase=a.phase)
    if not items:
        await rt.get_run(a.run)  # RunNotFound for a run that does not exist
    if out.as_json:
        out.json({"items": items})
        return 0
    if not items:
        out.line("no items match", style="dim")
        return 0
    out.table(ITEM_COLUMNS, [_item_row(out, item) for item in items])
    return 0


# -- explain, graph, watch -------------------------------------------------------------


async def _explain(ctx: Context) -> int:
    why = await ctx.rt.explain(ctx.args.run)
    if ctx.out.as_json:
        ctx.out.json(why)
        return 0
    ctx.out.text(why.message)
    return 0


async def _graph(ctx: Context) -> int:
    graph = await ctx.rt.graph(ctx.args.run)
    if ctx.out.as_json:
        ctx.out.json(
            {
                "run_id": graph.run_id,
                "status": graph.status,
                "workflow": graph.workflow,
                "statuses": graph.statuses,
                "runs": graph.runs,
            }
        )
        return 0
    fmt = ctx.args.format
    text = (
        graph.to_mermaid()
        if fmt == "mermaid"
        else graph.to_dot()
        if fmt == "dot"
        else graph.to_text()
    )
    ctx.out.text(text)
    return 0


async def _watch(ctx: Context) -> int:
    rt, out = ctx.rt, ctx.out
    run = await rt.get_run(ctx.args.run)
    lifecycle = await lifecycle_for(rt, run.job, {})
    interval = max(float(ctx.args.interval), 0.05)
    if out.as_json:
        seen: tuple[Any, ...] = ()
        while True:
            key = (run.state, run.progress, run.attempt)
            if key != seen:
                out.json(run)
                seen = key
            if run.is_terminal:
                break
            await anyio.sleep(interval)
            run = await rt.get_run(run.id)
        return 0 if run.status is Status.SUCCEEDED else 1
    if out.console.is_terminal:
        from rich.live import Live

        with Live(
            _watch_view(out, run, lifecycle, rt), console=out.console, transient=False
        ) as live:
            while not run.is_terminal:
                await anyio.sleep(interval)
                run = await rt.get_run(run.id)
                live.update(_watch_view(out, run, lifecycle, rt))
    else:
        last = ""
        while True:
            line = _watch_line(run, rt.clock.now())
            if line != last:
                out.text(line)
                last = line
            if run.is_terminal:
                break
            await anyio.sleep(interval)
            run = await rt.get_run(run.id)
    return 0 if run.status is Status.SUCCEEDED else 1


def _watch_line(run: Run, now: datetime) -> str:
    text = f"{moment_text(now)}  {run.id}  {run.job}  {run.state}"
    if run.progress.total:
        text += f"  {progress_text(run.progress)}"
    if run.attempt > 1:
        text += f"  attempt {run.attempt}"
    if run.is_terminal:
        text += f"  took {human_duration(run.duration)}"
        if run.error is not None:
            text += f"  {run.error.kind}: {run.error.message}"
    return text


def _watch_view(out: Output, run: Run, lifecycle: Lifecycle, rt: AsyncRuntime) -> Any:
    from rich.console import Group
    from rich.progress_bar import ProgressBar

    now = rt.clock.now()
    head = out.styled((f"{run.id}  ", "bold"), (f"{run.job}  ", "bold")).append_text(
        out.run_status(run)
    )
    parts: list[Any] = [head, out.chain(lifecycle_chain(run, lifecycle))]
    counts = run.progress
    if counts.total:
        parts.append(ProgressBar(total=counts.total, completed=counts.done, width=40))
        parts.append(out.styled((progress_text(counts), None)))
    parts.append(out.styled((f"elapsed {human_duration(run.elapsed(now))}", "dim")))
    if run.error is not None:
        parts.append(out.styled((f"{run.error.kind}: {run.error.message}", "red")))
    return Group(*parts)
