"""``runlife demo``: one night of background work, stored in SQLite and read back.

The demo writes a night of runs into the embedded default store the way a host
would: every move is made by the pure core (`Lifecycle`, `decide_failure`,
`items_outcome`) and written through the `Store` port, with per-device items and
log lines. Then it answers the operators' questions from what is stored: what ran
and how it ended, which records failed, why a run failed, what its log says.

Every moment is given (the night of 2026-03-10, UTC), so the output is the same on
every machine, run ids and the database path aside. The retried backup shows how
the retry and timeout policies combine: ``max_attempts=3``, a 60 s retry delay and a 300 s attempt
timeout on a device that never answers give attempts at 02:00, 02:06 and 02:12, and
the run ends FAILED at 02:17 with a timeout while its schedule stays enabled.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import anyio

from runlife._core.lifecycle import DEFAULT_LIFECYCLE, Lifecycle
from runlife._core.policy import Limits, Retry, Timeout, decide_failure, items_outcome
from runlife._core.queries import JobRecord, LogQuery, RunQuery
from runlife._core.records import ErrorInfo, Item, LogLine
from runlife._core.run import Run
from runlife._core.schedule import Cron
from runlife._core.spec import JobSpec
from runlife._core.status import Status, Trigger
from runlife.abc import Store

__all__ = ("PROMOTE_LIFECYCLE", "record_night", "render_table", "render_timeline", "run_demo")

NIGHT = datetime(2026, 3, 10, tzinfo=UTC)
BACKUP_SCHEDULE = Cron("0 2 * * *")
BACKUP_RETRY = Retry(max_attempts=3, delay=60)
BACKUP_TIMEOUT = Timeout(attempt=300)

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
"""The custom lifecycle of the demo's ``promote`` job: the host's own state names,
each mapped onto a canonical status."""

# (device, address, seconds it takes, config bytes); the backup log of the seeds.
DC1_DEVICES = (
    ("core-rtr-01.dc1", "10.1.0.1", 45, 24_832),
    ("core-rtr-02.dc1", "10.1.0.2", 52, 26_104),
    ("dist-sw-01.dc1", "10.1.1.1", 38, 18_456),
    ("dist-sw-02.dc1", "10.1.1.2", 41, 19_220),
)
BRANCH_DEVICES = (
    ("edge-sw-01.branch1", "10.5.1.1", 1.1, None),
    ("edge-sw-02.branch1", "10.5.1.2", 0.9, None),
    ("edge-sw-03.branch2", "10.5.3.1", 30, "Connection timed out after 30s - no route to host"),
    ("edge-sw-04.branch2", "10.5.3.2", 1.3, None),
)


def _at(hour: int, minute: int = 0, second: float = 0) -> datetime:
    return NIGHT + timedelta(hours=hour, minutes=minute, seconds=second)


class _Host:
    """Writes runs as a host application would: the core decides, the store keeps."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(self, run: Run) -> Run:
        return await self.store.create_run(run)

    async def move(
        self, run: Run, to: Status | str, at: datetime, lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
        **details: Any,
    ) -> Run:  # fmt: skip
        moved = lifecycle.transition(run, to, at=at, **details)
        return await self.store.update_run(moved, expected_version=run.version)

    async def log(self, run: Run, at: datetime, message: str, **details: Any) -> None:
        level = details.pop("level", "info")
        item = details.pop("item", None)
        line = LogLine(run_id=run.id, seq=0, at=at, level=level, message=message, item=item,
                       attempt=run.attempt or None, fields=details)  # fmt: skip
        await self.store.append_logs([line])


async def _backup_dc1(host: _Host) -> None:
    run = await host.create(Run.create(
        job="nightly_backup", at=_at(2), trigger=Trigger.SCHEDULED, scheduled_for=_at(2),
        params={"devices": [name for name, *_ in DC1_DEVICES]}, labels={"site": "dc1"},
    ))  # fmt: skip
    run = await host.move(run, Status.QUEUED, _at(2), reason="cron 0 2 * * * fired")
    start = _at(2, 0, 1)
    run = await host.move(run, Status.RUNNING, start, reason="claimed by worker w1")
    for name, address, seconds, size in DC1_DEVICES:
        end = start + timedelta(seconds=seconds)
        await host.log(run, start, "backing up", item=name, host=address)
        snapshot = f"snap-{start:%Y%m%d-%H%M%S}-{name.split('.')[0]}"
        output = {"config_bytes": size, "snapshot": snapshot}
        await host.store.save_item(Item(
            run_id=run.id, key=name, status=Status.SUCCEEDED, started_at=start, ended_at=end,
            attempts=1, output=output,
        ))  # fmt: skip
        await host.log(run, end, f"config saved ({size:,} bytes)", item=name, **output)
        start = end
    await host.move(run, Status.SUCCEEDED, _at(2, 3, 47), reason="returned")


async def _backup_dc2_times_out(host: _Host) -> None:
    """The nightly retry timeline, as pure decisions of the retry and timeout policies."""
    run = await host.create(Run.create(
        job="edge_backup", at=_at(2), trigger=Trigger.SCHEDULED, scheduled_for=_at(2),
        params={"devices": ["edge-sw-07.dc2"]}, labels={"site": "dc2"},
    ))  # fmt: skip
    run = await host.move(run, Status.QUEUED, _at(2), reason="cron 0 2 * * * fired")
    while not run.is_terminal:
        run = await host.move(run, Status.RUNNING, run.due_at or _at(2), reason="claimed by w2")
        await host.log(run, run.attempts[-1].started_at, "connecting to edge-sw-07.dc2")
        deadline = BACKUP_TIMEOUT.next_deadline(run)
        assert deadline is not None  # an attempt timeout is set
        error = deadline.error(run.attempt)
        await host.log(run, deadline.at, error.message, level="error")
        decision = decide_failure(
            run, error, at=deadline.at, retry=BACKUP_RETRY, timeout=BACKUP_TIMEOUT
        )
        run = await host.store.update_run(decision.apply(run), expected_version=run.version)
        if decision.retry:
            assert decision.due_at is not None
            run = await host.move(run, Status.QUEUED, decision.due_at, reason="retry delay over")


async def _health_check(host: _Host) -> None:
    """One device of four fails; with ``items_fail_run=0`` that fails the run."""
    run = await host.create(Run.create(
        job="edge_health_check", at=_at(14, 15), trigger=Trigger.SCHEDULED,
        scheduled_for=_at(14, 15), labels={"site": "branch2"},
        params={"devices": [name for name, *_ in BRANCH_DEVICES]},
    ))  # fmt: skip
    run = await host.move(run, Status.QUEUED, _at(14, 15), reason="cron 15 14 * * * fired")
    run = await host.move(run, Status.RUNNING, _at(14, 15), reason="claimed by worker w1")
    start = _at(14, 15)
    for name, address, seconds, failure in BRANCH_DEVICES:
        end = start + timedelta(seconds=seconds)
        error = ErrorInfo(kind="timeout", type="TimeoutError", message=failure) if failure else None
        await host.store.save_item(Item(
            run_id=run.id, key=name, phase="ssh",
            status=Status.FAILED if error else Status.SUCCEEDED, started_at=start, ended_at=end,
            attempts=1, error=error,
            output=None if error else {"checks": "all passed"},
        ))  # fmt: skip
        if error:
            await host.log(run, end, error.message, level="error", item=name, host=address)
        start = end
    stored = await host.store.get_run(run.id)
    outcome = items_outcome(stored.progress, items_fail_run=0)
    await host.move(run, outcome.status, start, reason=outcome.error.message if outcome.error
                    else "returned", error=outcome.error)  # fmt: skip


async def _dashboard_cancelled(host: _Host) -> None:
    run = await host.create(Run.create(
        job="refresh_dashboard", at=_at(2, 1), labels={"dashboard": "capacity"},
        params={"dashboard": "capacity"},
    ))  # fmt: skip
    run = await host.move(run, Status.QUEUED, _at(2, 1), reason="submitted by alice")
    await host.move(run, Status.CANCELLED, _at(2, 4), reason="cancelled by alice")


async def _promote(host: _Host) -> None:
    lc = PROMOTE_LIFECYCLE
    run = await host.create(
        Run.create(job="promote", at=_at(2, 20), lifecycle=lc, labels={"model": "churn-v7"})
    )
    run = await host.move(run, "ACTIVE", _at(2, 20), lc, reason="approved by bob")
    run = await host.move(run, "TRIGGER", _at(2, 21), lc, reason="change window opened")
    # The runtime moves runs by canonical status: RUNNING enters STARTED, the entry state.
    run = await host.move(run, Status.RUNNING, _at(2, 21), lc, reason="claimed by worker w1")
    run = await host.move(run, "RUNNING", _at(2, 22), lc, reason="pre-checks passed")
    await host.move(run, "SUCCESS", _at(2, 25, 30), lc, reason="returned")


async def record_night(store: Store) -> None:
    """Write the demo's night of runs, with their items and logs, into *store*."""
    host = _Host(store)
    config = {"max_retries": 3, "retry_delay_seconds": 60, "timeout_seconds": 300}
    backup = JobSpec(
        retry=Retry.from_config(config),
        timeout=Timeout.from_config(config),
        schedule=BACKUP_SCHEDULE,
        limits=Limits(per_label={"site": 1}),
    ).to_spec()
    for job in ("nightly_backup", "edge_backup"):
        await store.save_job(JobRecord(name=job, per_label={"site": 1}, spec=backup))
    promote = JobSpec(lifecycle=PROMOTE_LIFECYCLE).to_spec()
    await store.save_job(JobRecord(name="promote", spec=promote))
    for script in (_backup_dc1, _backup_dc2_times_out, _dashboard_cancelled, _promote,
                   _health_check):  # fmt: skip
        await script(host)


# -- rendering ----------------------------------------------------------------


def _clock(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%H:%M:%S")


def _span(span: timedelta | None) -> str:
    if span is None:
        return "-"
    seconds = span.total_seconds()
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _columns(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _status(run: Run) -> str:
    return str(run.status) if run.state == run.status else f"{run.status} ({run.state})"


def _error(error: ErrorInfo | None) -> str:
    return "" if error is None else f"{error.kind}: {error.message}"


def _where(run: Run) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in sorted(run.labels.items()))
    return f"{run.job} [{labels}]" if labels else run.job


def render_table(runs: Sequence[Run]) -> str:
    """The runs as a table: status, start, end, duration, attempts, items and error."""
    rows = [("RUN", "JOB", "STATUS", "TRIGGER", "STARTED", "ENDED", "DURATION", "ATTEMPTS",
             "ITEMS", "ERROR")]  # fmt: skip
    for run in runs:
        p = run.progress
        items = f"{p.succeeded}/{p.total} ok" if p.total else "-"
        rows.append((run.id[-8:], _where(run), _status(run), str(run.trigger),
                     _clock(run.started_at), _clock(run.ended_at), _span(run.duration),
                     str(len(run.attempts)), items, _error(run.error)))  # fmt: skip
    return "\n".join(_columns(rows))


def render_timeline(run: Run) -> str:
    """The lifecycle timeline of one run (every move with its reason), then its attempts."""
    rows: list[tuple[str, ...]] = [("AT", "FROM", "TO", "REASON")]
    rows += [(_clock(t.at), str(t.from_), str(t.to), t.reason or "") for t in run.history]
    lines = [f"  Lifecycle timeline of run {run.id}", *_columns(rows, "    "), "", "  Attempts"]
    rows = [("#", "STARTED", "ENDED", "DURATION", "OUTCOME")]
    rows += [(str(a.number), _clock(a.started_at), _clock(a.ended_at), _span(a.duration),
              a.outcome or "") for a in run.attempts]  # fmt: skip
    return "\n".join([*lines, *_columns(rows, "    ")])


def _output(item: Item) -> str:
    if item.error is not None:
        return _error(item.error)
    out = item.output or {}
    if "config_bytes" in out:
        return f"{out['config_bytes']:,} bytes, {out['snapshot']}"
    return ", ".join(f"{k}: {v}" for k, v in out.items())


def render_items(items: Sequence[Item]) -> str:
    """Items as a table: key, status, duration, and output or error."""
    rows = [("ITEM", "STATUS", "DURATION", "OUTPUT")]
    rows += [(i.key, str(i.status), _span(i.duration), _output(i)) for i in items]
    return "\n".join(_columns(rows, "    "))


async def _report(store: Store, out: TextIO) -> None:
    page = await store.list_runs(RunQuery(limit=50))
    out.write("What ran, and how did it end?  (store.list_runs, newest first)\n")
    out.write(render_table(page.runs) + "\n\n")

    counts = await store.count_runs(RunQuery())
    summary = ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))
    out.write(f"Summary  (store.count_runs): {summary}\n\n")

    backup = (await store.list_runs(RunQuery(job="nightly_backup", labels={"site": "dc1"}))).runs[0]
    out.write(f"Device results of {_where(backup)}  (store.items)\n")
    out.write(render_items(await store.items(backup.id)) + "\n\n")

    out.write(
        "Which records failed?  (store.list_runs(status=FAILED), store.items(status=FAILED))\n"
    )
    for run in (await store.list_runs(RunQuery(status=Status.FAILED))).runs:
        failed = await store.items(run.id, Status.FAILED)
        p = run.progress
        out.write(f"  {_where(run)}: {p.failed} of {p.total} items failed\n" if p.total
                  else f"  {_where(run)}: no items; the run itself failed\n")  # fmt: skip
        if failed:
            out.write(render_items(failed) + "\n")
    out.write("\n")

    dc2 = (await store.list_runs(RunQuery(job="edge_backup"))).runs[0]
    assert dc2.ended_at is not None
    out.write(f"Why did {_where(dc2)} fail?  (run.error, run.history, run.attempts)\n")
    out.write(f"  {_error(dc2.error)}\n")
    out.write(render_timeline(dc2) + "\n")
    next_fire = BACKUP_SCHEDULE.next_after(dc2.ended_at)
    out.write(f"  The schedule stays enabled: next fire {next_fire:%Y-%m-%d %H:%M} UTC.\n\n")

    log = await store.logs(LogQuery(run_id=dc2.id))
    found = await store.search_logs(dc2.id, "exceeded")
    out.write(f"Its log  (store.logs: {len(log.lines)} lines; store.search_logs('exceeded'): "
              f"lines {', '.join(str(line.seq) for line in found)})\n")  # fmt: skip
    for line in log.lines:
        out.write(f"    {line.seq:>3}  {_clock(line.at)}  attempt {line.attempt}  "
                  f"{line.level:<5}  {line.message}\n")  # fmt: skip
    out.write("\n")

    promote = (await store.list_runs(RunQuery(job="promote"))).runs[0]
    out.write(f"A custom lifecycle: {_where(promote)}, {_status(promote)}\n")
    out.write(render_timeline(promote) + "\n")


async def _demo(path: Path, out: TextIO) -> None:
    from runlife.stores import SQLiteStore

    async with SQLiteStore(path) as store:
        await record_night(store)
        out.write(f"runlife demo: one night of background work (2026-03-10, UTC), stored in "
                  f"SQLite at {path}\n\n")  # fmt: skip
        await _report(store, out)


def run_demo(out: TextIO, db: Path | None = None) -> None:
    """Record the demo's night into SQLite (*db*, or a temporary file) and print what
    the store answers to *out*."""
    if db is not None:
        db.unlink(missing_ok=True)
        anyio.run(_demo, db, out)
        out.write(f"\nThe database is kept: runlife.open_store('sqlite:///{db}') opens it.\n")
        return
    with tempfile.TemporaryDirectory(prefix="runlife-demo-") as tmp:
        anyio.run(_demo, Path(tmp) / "runs.db", out)
