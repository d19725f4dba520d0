"""How the ``runlife`` command writes to a terminal: colours, tables that fit, JSON.

`Output` wraps a rich console on the command's stdout. Colours are on only for
a terminal, and never with ``NO_COLOR`` set; the width is the terminal's, or
``COLUMNS``, or 80 when writing to a pipe. `Output.table` fits its table to that
width on one line per row: it drops the columns that matter least first, then
shortens the columns that may be shortened (with an ellipsis), never wrapping a
row. Durations, progress, moments and the lifecycle chain come from
`runlife._present`, the one form every face shows.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, Literal

import attrs

from runlife._cli.jsonform import dumps
from runlife._core.run import Run
from runlife._core.status import Status
from runlife._present import ChainStep, chain_text
from runlife.exceptions import RunlifeError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

__all__ = ("STATUS_STYLE", "Column", "MissingRich", "Output", "status_style")

STATUS_STYLE: Mapping[Status, str] = {
    Status.PENDING: "dim",
    Status.QUEUED: "cyan",
    Status.RUNNING: "bold blue",
    Status.RETRYING: "yellow",
    Status.WAITING: "magenta",
    Status.SUCCEEDED: "green",
    Status.FAILED: "bold red",
    Status.CANCELLED: "yellow",
    Status.SKIPPED: "dim",
}
"""The colour of each status, wherever the command shows one."""

_GAP = 2


def status_style(status: Status) -> str:
    """The style a status is shown in."""
    return STATUS_STYLE[status]


class MissingRich(RunlifeError):
    """The command's tables need rich, which is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "the runlife command's tables need the 'rich' package: "
            "pip install 'runlife[cli]' (or use --json)"
        )


@attrs.frozen(kw_only=True)
class Column:
    """One column of a table.

    Attributes:
        header: its title.
        drop: 0 for a column always shown; otherwise, when the table is too wide,
            the columns with the highest ``drop`` go first.
        shrink: whether it may be shortened (with an ellipsis) to fit.
        min_width: the narrowest it is shortened to.
        justify: ``"left"`` or ``"right"``.
    """

    header: str
    drop: int = 0
    shrink: bool = False
    min_width: int = 6
    justify: Literal["left", "right"] = "left"


def _rich() -> Any:
    try:
        import rich.console
        import rich.table
        import rich.text
    except ImportError:
        raise MissingRich() from None
    return rich


class Output:
    """The command's stdout: plain text, styled text, tables and JSON.

    Args:
        file: where to write (the process's stdout unless given).
        as_json: whether the command was asked for ``--json``.
    """

    def __init__(self, file: IO[str] | None = None, *, as_json: bool = False) -> None:
        self.file = file if file is not None else sys.stdout
        self.as_json = as_json
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        """The rich console on the output (made on first use)."""
        if self._console is None:
            rich = _rich()
            self._console = rich.console.Console(
                file=self.file,
                no_color=bool(os.environ.get("NO_COLOR")) or None,
                highlight=False,
                soft_wrap=False,
                emoji=False,
            )
        return self._console

    @property
    def width(self) -> int:
        """The width to fit to."""
        width: int = self.console.width
        return max(width, 20)

    @property
    def warn_mark(self) -> str:
        """The mark of a run that has warnings (``!`` where the output is not UTF-8)."""
        return "⚠" if self.console.encoding.lower().startswith("utf") else "!"

    def json(self, value: Any) -> None:
        """Write *value* in its JSON form (`runlife._cli.jsonform`)."""
        self.file.write(dumps(value) + "\n")
        self.file.flush()

    def line(self, text: str | Text = "", style: str | None = None, *, crop: bool = False) -> None:
        """Write one styled line: whole, for the terminal to wrap, or, with *crop*,
        shortened to the width (with an ellipsis)."""
        rich = _rich()
        shown = rich.text.Text(text, style=style or "") if isinstance(text, str) else text
        if crop:
            self.console.print(shown, no_wrap=True, overflow="ellipsis", crop=True)
        else:
            self.console.print(shown, soft_wrap=True)

    def text(self, text: str) -> None:
        """Write *text* as it is (a graph, an exported log), wrapping as the terminal does."""
        self.file.write(text if text.endswith("\n") else text + "\n")
        self.file.flush()

    def styled(self, *parts: tuple[str, str | None]) -> Text:
        """A line made of ``(text, style)`` parts."""
        rich = _rich()
        out: Text = rich.text.Text()
        for text, style in parts:
            out.append(text, style=style or "")
        return out

    def status(self, status: Status, *, warnings: bool = False, label: str | None = None) -> Text:
        """A status in its colour, with the warning mark when *warnings*."""
        rich = _rich()
        out: Text = rich.text.Text(label or status.value, style=status_style(status))
        if warnings:
            out.append(" " + self.warn_mark, style="bold yellow")
        return out

    def run_status(self, run: Run) -> Text:
        """A run's status (its state too, for a custom lifecycle's own state name)."""
        label = run.status.value
        if str(run.state) != run.status.value:
            label = f"{run.state} ({run.status.value})"
        return self.status(run.status, warnings=run.has_warnings, label=label)

    def chain(self, steps: Sequence[ChainStep]) -> Text:
        """A lifecycle chain, its current state bold (a failed end in red)."""
        rich = _rich()
        out: Text = rich.text.Text()
        if self.console.no_color or not self.console.is_terminal:
            out.append(chain_text(tuple(steps), arrow=" > "))
            return out
        for index, step in enumerate(steps):
            if index:
                out.append(" > ", style="dim")
            style = {
                "done": "",
                "current": "bold " + status_style(step.status),
                "failed": "bold red",
                "future": "dim",
            }[step.stand]
            if step.stand == "done" and step.status is Status.SUCCEEDED:
                style = "green"
            out.append(step.state, style=style)
        return out

    def table(
        self, columns: Sequence[Column], rows: Iterable[Sequence[str | Text]], *, title: str = ""
    ) -> None:
        """Write a table that fits the width, one line per row (see the module
        docstring)."""
        rich = _rich()
        body = [[rich.text.Text(c) if isinstance(c, str) else c for c in row] for row in rows]
        natural = [
            max([len(col.header), *(body[r][i].cell_len for r in range(len(body)))])
            for i, col in enumerate(columns)
        ]
        kept = _fit(columns, natural, self.width)
        table = rich.table.Table(
            box=None,
            show_edge=False,
            pad_edge=False,
            padding=(0, _GAP // 2),
            header_style="bold",
            title=title or None,
            title_justify="left",
            expand=False,
        )
        for index, width in kept:
            col = columns[index]
            table.add_column(
                col.header, width=width, no_wrap=True, overflow="ellipsis", justify=col.justify
            )
        for row in body:
            table.add_row(*(row[index] for index, _ in kept))
        self.console.print(table, crop=True)


def _fit(columns: Sequence[Column], natural: list[int], width: int) -> list[tuple[int, int]]:
    """The columns kept, each with its width, so that they fit in *width*."""
    kept = list(range(len(columns)))

    def need(indexes: list[int], floor: bool) -> int:
        widths = [
            min(natural[i], max(columns[i].min_width, len(columns[i].header)))
            if floor and columns[i].shrink
            else natural[i]
            for i in indexes
        ]
        return sum(widths) + _GAP * (len(indexes) - 1)

    # Drop columns (highest drop first) until the rest fit, shrinking what may shrink.
    while need(kept, floor=True) > width:
        droppable = [i for i in kept if columns[i].drop]
        if not droppable:
            break
        kept.remove(max(droppable, key=lambda i: (columns[i].drop, i)))
    widths = {i: natural[i] for i in kept}
    excess = sum(widths.values()) + _GAP * (len(kept) - 1) - width
    shrinkable = [i for i in kept if columns[i].shrink]
    while excess > 0 and shrinkable:
        # Take from the widest shrinkable column, one character at a time.
        widest = max(shrinkable, key=lambda i: widths[i])
        floor = min(natural[widest], max(columns[widest].min_width, len(columns[widest].header)))
        if widths[widest] <= floor:
            shrinkable.remove(widest)
            continue
        widths[widest] -= 1
        excess -= 1
    return [(i, widths[i]) for i in kept]
