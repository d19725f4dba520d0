"""``runlife demo``: a day of a network team's background work, run by the runtime.

The demo runs real jobs through `AsyncRuntime` on the embedded default store
(SQLite, in a file that is kept), in virtual time (`runlife.testing.VirtualClock`):
a day's schedules, retries and waits take a few seconds. What it runs:

* ``nightly_backup`` fires at 02:00 on its cron and backs up four devices, one
  after the other; dist-sw-02.dc1 is unreachable, so the run SUCCEEDED with a
  warning (3 of 4), and the notification hook says so.
* the ``billing`` workflow: ``generate_invoice`` FAILED (no usage data), so
  ``send_email_invoice`` is SKIPPED, its reason naming the upstream run.
* ``deploy_vlan_100``, a method of procedure (`runlife.Procedure`): pre-check,
  change and post-check phases over two switches, the rollback on standby.
* ``apply_firewall_policy`` WAITING for an approval (``ctx.wait_for``), which the
  demo sends as bob ten minutes later.
* ``resync_inventory``, CANCELLED by alice half-way through its records.
* ``edge_health_check`` fires at 14:15: edge-sw-03.branch2 times out at each of
  its two attempts (14:15:00 and 14:15:30), and one failed device fails the run.

Each move and each finished item is printed as the store records it (read from
``rt.events``). Then the runs are listed, with the commands that read the store.
Every moment is virtual and given, and each step of the scene waits for the one it
follows, so the moves, their times and the table are the same on every run of the
demo; run ids differ, and the notifications (told by a hook, in a task of its own)
may fall a line earlier or later among the moves.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import anyio

import runlife
from runlife import (
    AsyncRuntime,
    Cron,
    Event,
    Limits,
    Phase,
    Procedure,
    Retry,
    Run,
    RunContext,
    Status,
    Timeout,
    Workflow,
)
from runlife._cli.render import Output, status_style
from runlife._cli.runs import runs_table
from runlife._present import human_duration
from runlife.abc import Hooks
from runlife.exceptions import RunlifeError, SchemaMismatch
from runlife.testing import VirtualClock

__all__ = ("DEFAULT_DB", "DEMO_JOBS", "DemoRefused", "run_demo")

DEFAULT_DB = Path("runlife-demo.db")
"""Where the demo keeps its store unless told: in the current directory, where the
commands it prints find it and where ``ls`` shows it."""

START = datetime(2026, 3, 10, 1, 59, 50, tzinfo=UTC)
WIDTH = 80

BACKUP_DEVICES = ("core-rtr-01.dc1", "core-rtr-02.dc1", "dist-sw-01.dc1", "dist-sw-02.dc1")
# Seconds each backup takes, and config bytes; None: the device does not answer.
BACKUPS = {
    "core-rtr-01.dc1": (45, 24_832),
    "core-rtr-02.dc1": (52, 26_104),
    "dist-sw-01.dc1": (38, 18_456),
    "dist-sw-02.dc1": (30, None),
}
EDGE_DEVICES = (
    "edge-sw-01.branch1",
    "edge-sw-02.branch1",
    "edge-sw-03.branch2",
    "edge-sw-04.branch2",
)
CHECKS = {"edge-sw-01.branch1": 1.1, "edge-sw-02.branch1": 0.9, "edge-sw-04.branch2": 1.3}
SWITCHES = ("acc-sw-01.dc1", "acc-sw-02.dc1")
RECORDS = tuple(f"asset-{n:04d}" for n in range(1, 41))

DEMO_JOBS = frozenset(
    {
        "nightly_backup",
        "edge_health_check",
        "generate_invoice",
        "send_email_invoice",
        "billing",
        "deploy_vlan_100",
        "apply_firewall_policy",
        "resync_inventory",
    }
)
"""The jobs (and workflow) of the demo: a runlife store that knows only these is the
demo's own, which it may replace."""


class DemoRefused(RunlifeError, ValueError):
    """The demo will not write its store at the given path (the message says why)."""


# -- the host's jobs -------------------------------------------------------------


def _jobs(clock: VirtualClock) -> tuple[list[runlife.Job], Workflow]:
    """The demo's jobs and workflow; their waits are on *clock*."""

    @runlife.job(
        schedule=Cron("0 2 * * *"),
        retry=Retry(max_attempts=3, delay=60),
        timeout=Timeout(attempt=300),
        labels={"site": "dc1"},
    )
    async def nightly_backup(ctx: RunContext, devices: Sequence[str] = BACKUP_DEVICES) -> Any:
        async def backup(device: str) -> dict[str, Any]:
            log = ctx.log.bind(item=device)
            seconds, size = BACKUPS[device]
            log.info("connecting", host=device)
            await clock.sleep(seconds)
            if size is None:
                raise ConnectionError(f"Connection timed out after {seconds}s - no route to host")
            log.info(f"config saved ({size:,} bytes)")
            return {"config_bytes": size, "snapshot": f"snap-{clock.now():%Y%m%d-%H%M%S}"}

        return await ctx.map(backup, devices, concurrency=1)

    @runlife.job(schedule=Cron("15 14 * * *"), items_fail_run=0, labels={"site": "branch2"})
    async def edge_health_check(ctx: RunContext, devices: Sequence[str] = EDGE_DEVICES) -> Any:
        async def check(device: str) -> dict[str, str]:
            ctx.log.bind(item=device).info("ssh check", host=device)
            if device not in CHECKS:
                await anyio.sleep_forever()  # no route to host: cut by the timeout
            await clock.sleep(CHECKS[device])
            return {"ssh": "ok", "checks": "all passed"}

        # Each device gets two attempts of 30 s each, the second right after the first.
        retry = Retry(max_attempts=2, delay=0)
        return await ctx.map(check, devices, concurrency=4, timeout=30, retry=retry, phase="ssh")

    @runlife.job
    async def generate_invoice(ctx: RunContext, month: str = "2026-03") -> str:
        ctx.log.info("reading usage", month=month)
        await clock.sleep(4)
        raise LookupError(f"no usage data for {month} (metering export missing)")

    @runlife.job
    async def send_email_invoice(ctx: RunContext, to: str = "billing@example.com") -> None:
        ctx.log.info("sending", to=to)

    def command(text: str, seconds: float) -> Callable[[str], Awaitable[str]]:
        async def send(switch: str) -> str:
            await clock.sleep(seconds)
            return f"{switch}# {text}: ok"

        return send

    mop = Procedure(
        (
            Phase("pre-check", {"show vlan brief": command("show vlan brief", 1.2)}),
            Phase("change", {"vlan 100 name ENG": command("conf t / vlan 100 / name ENG", 2.1)}),
            Phase("post-check", {"show vlan 100": command("show vlan brief | include 100", 0.9)}),
        ),
        rollback=Phase("rollback", {"no vlan 100": command("no vlan 100", 2.5)}),
    )

    @runlife.job(labels={"site": "dc1"})
    async def deploy_vlan_100(ctx: RunContext, switches: Sequence[str] = SWITCHES) -> Any:
        return await mop.run(ctx, switches)

    @runlife.job
    async def apply_firewall_policy(ctx: RunContext, policy: str = "fw-2026-03") -> str:
        ctx.log.info("change ready, waiting for approval", policy=policy)
        approval = await ctx.wait_for("approved", timeout=4 * 3600)
        ctx.log.info("approved", by=approval["by"])
        await clock.sleep(20)
        return f"{policy} applied, approved by {approval['by']}"

    @runlife.job(limits=Limits(max_concurrency=1))
    async def resync_inventory(ctx: RunContext, records: Sequence[str] = RECORDS) -> None:
        for record in await ctx.items(records):
            async with ctx.item(record):
                await clock.sleep(15)

    billing = Workflow("billing", {generate_invoice: [], send_email_invoice: [generate_invoice]})
    jobs = [nightly_backup, edge_health_check, deploy_vlan_100, apply_firewall_policy,
            resync_inventory]  # fmt: skip
    return jobs, billing


class _Notify(Hooks):
    """The host's notification: a line for a run that failed or succeeded with warnings."""

    def __init__(self, say: Callable[[str, str], None], workflows: frozenset[str]) -> None:
        self.say = say
        self.workflows = workflows  # their nodes' failures are told already

    def on_warning(self, run: Run) -> None:
        self.say(f"  notify: {run.job} warned: {run.warnings[0]}", "yellow")

    def on_failure(self, run: Run) -> None:
        if run.error is not None and run.job not in self.workflows:
            self.say(f"  notify: {run.job} failed: {run.error.message}", "red")


# -- what is printed while it runs -----------------------------------------------


class _Screen:
    """The demo's lines, through the ``runlife`` command's output (rich's colours
    on a terminal, plain text in a pipe), each kept within 80 columns."""

    def __init__(self, out: TextIO) -> None:
        self.output = Output(out)

    def say(self, text: str = "", style: str = "") -> None:
        self.output.line(_fit(text), style or None)


def _fit(text: str, width: int = WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _event_lines(event: Event) -> list[tuple[str, str]]:
    """What one stored event says to a person (nothing for one not worth a line):
    a run's move, or an item's end; then, indented, why."""
    at = f"{event.at:%H:%M:%S}"
    if event.transition is not None:
        move = event.transition
        lines = [(f"{at}  {event.job:<22} {move.from_} -> {move.to}", status_style(event.status))]
        if move.reason and move.to in _EXPLAINED:
            lines.append((f"{'':12}{move.reason}", "dim"))
        return lines
    item = event.item
    if item is None or not (item.status.is_terminal or item.status is Status.RETRYING):
        return []
    took = f" {human_duration(item.duration)}" if item.duration else ""
    lines = [(f"{at}    {item.key:<32} {item.status}{took}", status_style(item.status))]
    if item.error is not None:
        lines.append((f"{'':12}{item.error.message}", "dim"))
    return lines


_EXPLAINED = frozenset({Status.FAILED, Status.CANCELLED, Status.SKIPPED})


async def _show_events(rt: AsyncRuntime, screen: _Screen) -> None:
    async for event in rt.events(after="now"):
        for line in _event_lines(event):
            screen.say(*line)


# -- the scene -------------------------------------------------------------------


async def _until_ended(rt: AsyncRuntime, clock: VirtualClock, job: str) -> Run:
    """The first run of *job* once it ended (it is fired by its schedule)."""
    while True:
        page = await rt.list_runs(job=job, limit=1)
        if page.runs and page.runs[0].is_terminal:
            return page.runs[0]
        await clock.sleep(5)


async def _until_status(rt: AsyncRuntime, clock: VirtualClock, run_id: str, status: Status) -> None:
    while (await rt.get_run(run_id)).status is not status:
        await clock.sleep(1)


async def play(rt: AsyncRuntime, clock: VirtualClock, billing: Workflow) -> None:
    """The day, from 01:59:50: what the host submits, signals and cancels."""
    await _until_ended(rt, clock, "nightly_backup")
    await rt.wait((await rt.submit(billing)).id)
    await rt.wait((await rt.submit("deploy_vlan_100")).id)

    await clock.sleep_until(clock.now().replace(minute=10, second=0, microsecond=0))
    change = await rt.submit("apply_firewall_policy", labels={"change": "CHG-4711"})
    await _until_status(rt, clock, change.id, Status.WAITING)
    inventory = await rt.submit("resync_inventory")
    await clock.sleep(150)
    await rt.cancel(inventory.id, "provider rate-limited, resume after the window", by="alice")
    await clock.sleep(450)
    await rt.signal(change.id, "approved", {"by": "bob"})
    await rt.wait(change.id)

    # The afternoon: nothing runs until the health check fires at 14:15.
    await clock.sleep_until(clock.now().replace(hour=14, minute=14, second=50, microsecond=0))
    await _until_ended(rt, clock, "edge_health_check")


@asynccontextmanager
async def _runtime(
    path: Path, clock: VirtualClock, screen: _Screen
) -> AsyncIterator[tuple[AsyncRuntime, Workflow]]:
    from runlife.stores import SQLiteStore

    jobs, billing = _jobs(clock)
    async with (
        SQLiteStore(path, clock=clock) as store,
        AsyncRuntime(
            jobs=jobs,
            workflows=[billing],
            store=store,
            clock=clock,
            worker_id="demo-host",
            lease=300,
            poll=60,
            hooks=[_Notify(screen.say, frozenset({billing.name}))],
        ) as rt,
    ):
        yield rt, billing


async def record_day(path: Path, screen: _Screen) -> None:
    """Run the demo's day into the SQLite store at *path*, then list its runs as
    ``runlife runs`` does, with the commands that inspect them."""
    clock = VirtualClock(start=START)
    async with _runtime(path, clock, screen) as (rt, billing):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_show_events, rt, screen)
            await clock.sleep(0)  # the stream takes its first step: it sees every move
            await play(rt, clock, billing)
            await clock.sleep(1)  # the last events reach the screen
            tg.cancel_scope.cancel()
        runs = (await rt.list_runs(limit=50)).runs
        screen.say()
        screen.say(f"The day's runs ({len(runs)}), as runlife runs lists them:", "bold")
        await runs_table(screen.output, rt, runs, clock.now())
    _commands(runs, path, screen)


# -- the store file ----------------------------------------------------------------


async def _check_path(path: Path) -> None:
    """Refuse a file that is not a runlife store, or a runlife store with other jobs;
    remove a store of the demo's own (and its journal files)."""
    if path.is_dir():
        raise DemoRefused(f"{path} is a directory; give --db a file path")
    if not path.exists() or path.stat().st_size == 0:
        return
    from runlife.stores import SQLiteStore

    try:
        async with SQLiteStore(path) as store:
            jobs = {job.name for job in await store.list_jobs()}
    except SchemaMismatch:
        raise DemoRefused(
            f"{path} is not a runlife store; the demo leaves it untouched (give --db another path)"
        ) from None
    others = sorted(jobs - DEMO_JOBS)
    if others:
        raise DemoRefused(
            f"{path} is a runlife store with other jobs ({', '.join(others[:3])}); "
            "the demo replaces only its own (give --db another path)"
        )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# -- the report ----------------------------------------------------------------------


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _commands(runs: tuple[Run, ...], path: Path, screen: _Screen) -> None:
    """The commands that inspect the kept store, written whole (never shortened)."""
    by_job = {run.job: run for run in reversed(runs)}
    store = shlex.quote(_url(path))
    failed, backup = by_job["edge_health_check"], by_job["nightly_backup"]
    lines = [f"The store is kept at {path}. Inspect it:", f"  runlife runs --store {store}"]
    for verb, run in (("show", failed), ("logs", backup)):
        lines += [f"  runlife {verb} {run.id} \\", f"      --store {store}"]
    screen.say()
    screen.output.text("\n".join(lines))


async def _demo(path: Path, out: TextIO) -> None:
    await _check_path(path)
    screen = _Screen(out)
    screen.say("runlife demo: a day of background work, run on SQLite in virtual time", "bold")
    screen.say("from 2026-03-10 01:59:50 UTC. Each move as the store records it:", "bold")
    screen.say()
    await record_day(path, screen)


def run_demo(out: TextIO, db: Path | None = None) -> int:
    """Run the demo's day into the SQLite store at *db* (`DEFAULT_DB` unless given),
    printing to *out*; returns the exit status (2 when the path is refused, with a
    one-line error on stderr)."""
    path = DEFAULT_DB if db is None else db
    try:
        anyio.run(_demo, path, out)
    except RunlifeError as refused:  # a refused path, or rich missing
        print(f"runlife demo: error: {refused}", file=sys.stderr)
        return 2
    return 0
