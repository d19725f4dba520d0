"""``runlife demo``: a few runs driven through the pure lifecycle, printed for people.

Self-contained on purpose: no store, no runtime, no clock. Every moment is given, so
the output (run ids aside) is the same on every machine. The retried run follows the
timeline of DESIGN.md: ``max_attempts=3``, a 60 s retry delay and a 300 s attempt
timeout on a job that always hangs give attempts at 02:00, 02:06 and 02:12, and the
run ends FAILED at 02:17 with a timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TextIO

from runlife._core.lifecycle import DEFAULT_LIFECYCLE, Lifecycle
from runlife._core.records import ErrorInfo
from runlife._core.run import Run
from runlife._core.status import Status, Trigger

__all__ = ("PROMOTE_LIFECYCLE", "demo_runs", "render_table", "render_timeline", "run_demo")

NIGHT = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
MAX_ATTEMPTS = 3
RETRY_DELAY = timedelta(seconds=60)
ATTEMPT_TIMEOUT = timedelta(seconds=300)

PROMOTE_LIFECYCLE = Lifecycle(
    "promote",
    {
        "IDLE": Status.PENDING,
        "ACTIVE": Status.PENDING,
        "TRIGGER": Status.QUEUED,
        "STARTED": Status.RUNNING,
        "RUNNING": Status.RUNNING,
        "SUCCESS": Status.SUCCEEDED,
        "FAILED": Status.FAILED,
        "TERMINATED": Status.CANCELLED,
    },
    {
        "IDLE": ["ACTIVE", "TERMINATED"],
        "ACTIVE": ["TRIGGER", "TERMINATED"],
        "TRIGGER": ["STARTED", "TERMINATED"],
        "STARTED": ["RUNNING", "FAILED", "TERMINATED"],
        "RUNNING": ["SUCCESS", "FAILED", "TERMINATED"],
    },
)
"""The custom lifecycle of the demo's ``promote`` job (DESIGN.md's example)."""


def _at(minutes: int, seconds: int = 0) -> datetime:
    return NIGHT + timedelta(minutes=minutes, seconds=seconds)


def _succeeded_backup() -> Run:
    lc = DEFAULT_LIFECYCLE
    run = Run.create(
        job="nightly_backup", at=_at(0), trigger=Trigger.SCHEDULED, scheduled_for=_at(0),
        params={"devices": ["core-rtr-01", "core-rtr-02"]}, labels={"site": "dc1"},
    )  # fmt: skip
    run = lc.transition(run, Status.QUEUED, at=_at(0), reason="cron 0 2 * * * fired")
    run = lc.transition(run, Status.RUNNING, at=_at(0, 1), reason="claimed by worker w1")
    return lc.transition(run, Status.SUCCEEDED, at=_at(3, 13), reason="returned")


def _timed_out_backup() -> Run:
    """The DESIGN.md timeline: every attempt hangs and is cut at +300 s."""
    lc = DEFAULT_LIFECYCLE
    run = Run.create(
        job="nightly_backup", at=_at(0), trigger=Trigger.SCHEDULED, scheduled_for=_at(0),
        params={"devices": ["edge-sw-07"]}, labels={"site": "dc2"},
    )  # fmt: skip
    run = lc.transition(run, Status.QUEUED, at=_at(0), reason="cron 0 2 * * * fired")
    start = _at(0)
    for number in range(1, MAX_ATTEMPTS + 1):
        run = lc.transition(run, Status.RUNNING, at=start, reason="claimed by worker w2")
        cut = start + ATTEMPT_TIMEOUT
        error = ErrorInfo(
            kind="timeout",
            type="TimeoutError",
            message=f"attempt {number} timed out after {ATTEMPT_TIMEOUT.seconds} s",
        )
        if number == MAX_ATTEMPTS:
            return lc.transition(
                run, Status.FAILED, at=cut, error=error,
                reason=f"timed out; {MAX_ATTEMPTS} of {MAX_ATTEMPTS} attempts spent",
            )  # fmt: skip
        start = cut + RETRY_DELAY
        run = lc.transition(
            run, Status.RETRYING, at=cut, error=error, due_at=start,
            reason=f"timed out; retry in {RETRY_DELAY.seconds} s "
            f"(attempt {number + 1} of {MAX_ATTEMPTS})",
        )  # fmt: skip
        run = lc.transition(run, Status.QUEUED, at=start, reason="retry delay over")
    raise AssertionError("unreachable: the last attempt returns")


def _cancelled_while_queued() -> Run:
    lc = DEFAULT_LIFECYCLE
    run = Run.create(
        job="refresh_dashboard", at=_at(1), labels={"dashboard": "capacity"},
        params={"dashboard": "capacity"},
    )  # fmt: skip
    run = lc.transition(run, Status.QUEUED, at=_at(1), reason="submitted by alice")
    return lc.transition(run, Status.CANCELLED, at=_at(4), reason="cancelled by alice")


def _custom_lifecycle_run() -> Run:
    lc = PROMOTE_LIFECYCLE
    run = Run.create(job="promote", at=_at(20), lifecycle=lc, labels={"model": "churn-v7"})
    run = lc.transition(run, "ACTIVE", at=_at(20), reason="approved by bob")
    run = lc.transition(run, "TRIGGER", at=_at(21), reason="change window opened")
    # The runtime moves runs by canonical status; RUNNING enters STARTED, the entry state.
    run = lc.transition(run, Status.RUNNING, at=_at(21), reason="claimed by worker w1")
    run = lc.transition(run, "RUNNING", at=_at(22), reason="pre-checks passed")
    return lc.transition(run, "SUCCESS", at=_at(25, 30), reason="returned")


def demo_runs() -> list[Run]:
    """The demo's four runs, each at the end of its life."""
    return [
        _succeeded_backup(),
        _timed_out_backup(),
        _cancelled_while_queued(),
        _custom_lifecycle_run(),
    ]


def _clock(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%H:%M:%S")


def _span(span: timedelta | None) -> str:
    if span is None:
        return "-"
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _columns(rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _status(run: Run) -> str:
    return str(run.status) if run.state == run.status else f"{run.status} ({run.state})"


def render_table(runs: Sequence[Run]) -> str:
    """The runs as a table: status, start, end, duration, attempts and error."""
    rows = [
        ("RUN", "JOB", "STATUS", "TRIGGER", "STARTED", "ENDED", "DURATION", "ATTEMPTS", "ERROR")
    ]
    for run in runs:
        error = f"{run.error.kind}: {run.error.message}" if run.error else ""
        rows.append(
            (
                run.id[-8:],
                run.job,
                _status(run),
                str(run.trigger),
                _clock(run.started_at),
                _clock(run.ended_at),
                _span(run.duration),
                str(len(run.attempts)),
                error,
            )
        )
    return "\n".join(_columns(rows))


def render_timeline(run: Run) -> str:
    """The lifecycle timeline of one run: every move with its reason, then its attempts."""
    lines = [f"Lifecycle timeline of run {run.id} ({run.job}, {_status(run)})"]
    rows: list[tuple[str, ...]] = [("AT", "FROM", "TO", "REASON")]
    rows += [
        (_clock(step.at), str(step.from_), str(step.to), step.reason or "") for step in run.history
    ]
    lines += _columns(rows, indent="  ")
    lines.append("")
    lines.append("Attempts")
    rows = [("#", "STARTED", "ENDED", "DURATION", "OUTCOME")]
    rows += [
        (
            str(a.number),
            _clock(a.started_at),
            _clock(a.ended_at),
            _span(a.duration),
            a.outcome or "",
        )
        for a in run.attempts
    ]
    lines += _columns(rows, indent="  ")
    return "\n".join(lines)


def run_demo(out: TextIO) -> None:
    """Drive the demo's runs through their lifecycles and print them to *out*."""
    runs = demo_runs()
    out.write(
        "runlife demo: four runs driven through the pure lifecycle "
        f"(times UTC, {NIGHT:%Y-%m-%d})\n\n"
    )
    out.write(render_table(runs) + "\n\n")
    out.write(render_timeline(runs[1]) + "\n\n")
    out.write(render_timeline(runs[3]) + "\n\n")
    out.write(
        "Nothing was stored: this demo uses only the pure core (runlife.Lifecycle, runlife.Run).\n"
    )
