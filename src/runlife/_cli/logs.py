"""``runlife logs``: a run's log, whole or filtered, by page, searched or followed."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

from runlife._cli import args as values
from runlife._cli.app import Command, Context, common
from runlife._core.logtext import render_jsonl, render_line
from runlife._core.records import LogLine

__all__ = ("PAGE", "add")

PAGE = 500
"""Lines per page of ``--page``."""


def add(commands: Any) -> None:
    """Add ``runlife logs`` to the parser."""
    logs = commands.add_parser(
        "logs",
        help="a run's log: filtered, by page, searched or followed",
        description="A run's log. Without filters: the whole log with a header naming the "
        "run (ready to attach to an escalation). With --stream, --item, --level or "
        "--search: the matching lines. --page N gives the N-th page of 500 lines; "
        "--follow streams the lines as they are stored until the run ends.",
    )
    common(logs)
    logs.add_argument("run", metavar="RUN", help="the run's id")
    logs.add_argument("--stream", choices=("stdout", "stderr", "log"))
    logs.add_argument("--item", metavar="KEY", help="only the lines of this item")
    logs.add_argument("--level", metavar="LEVEL", help="only lines of this level (error, ...)")
    logs.add_argument("--search", metavar="TEXT", help="only lines whose message contains TEXT")
    logs.add_argument("--follow", "-f", action="store_true", help="stream until the run ends")
    logs.add_argument("--page", type=values.positive_int, metavar="N", help=f"page N of {PAGE}")
    logs.add_argument(
        "--output", "-o", type=values.output_file, metavar="FILE", help="write to FILE"
    )
    logs.add_argument("--format", choices=("text", "jsonl"), default="text")
    logs.set_defaults(cmd=Command(handler=_logs))


def _render(lines: Iterable[LogLine], fmt: str) -> str:
    if fmt == "jsonl":
        return render_jsonl(lines)
    return "".join(render_line(line) + "\n" for line in lines)


async def _logs(ctx: Context) -> int:
    a, rt = ctx.args, ctx.rt
    fmt = "jsonl" if ctx.out.as_json else a.format
    filters = {"stream": a.stream, "item": a.item, "level": a.level}
    filtered = any(filters.values()) or a.search is not None
    target: IO[str]
    target = open(a.output, "w", encoding="utf-8") if a.output else sys.stdout  # noqa: SIM115
    try:
        if a.follow:
            async for line in rt.follow_logs(a.run, **filters):
                if a.search is None or a.search.lower() in line.message.lower():
                    target.write(_render([line], fmt))
                    target.flush()
        elif a.search is not None:
            found = await rt.search_logs(a.run, a.search, limit=100_000)
            target.write(_render([ln for ln in found if _matches(ln, filters)], fmt))
        elif a.page is not None:
            target.write(_render(await _page(ctx, filters, a.page), fmt))
        elif filtered:
            target.write(_render(await _page(ctx, filters, None), fmt))
        else:
            target.write(await rt.export_logs(a.run, fmt))
    finally:
        if a.output:
            target.close()
    if a.output:
        print(f"wrote the log of run {a.run} to {a.output}", file=sys.stderr)
    return 0


def _matches(line: LogLine, filters: dict[str, str | None]) -> bool:
    level = filters["level"]
    return (
        (filters["stream"] is None or line.stream == filters["stream"])
        and (filters["item"] is None or line.item == filters["item"])
        and (level is None or line.level == level.lower())
    )


async def _page(ctx: Context, filters: dict[str, Any], number: int | None) -> list[LogLine]:
    """Page *number* (from 1) of the filtered log, or all of it for None."""
    rt, run_id = ctx.rt, ctx.args.run
    cursor: str | None = None
    lines: list[LogLine] = []
    index = 1
    while True:
        page = await rt.logs(run_id, after=cursor, limit=PAGE, **filters)
        if number is None:
            lines.extend(page.lines)
        elif index == number:
            return list(page.lines)
        if page.next_cursor is None:
            return lines
        cursor = page.next_cursor
        index += 1
