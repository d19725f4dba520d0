"""A method of procedure, "Deploy VLAN 100 - DC1 Access Switches", as a runlife job.

The MOP is a `runlife.Procedure`: a pre-check, a change and a post-check on each
access switch, one switch after the other, and a rollback on standby. Every step on
every switch is an item of the run, so the monitor below reads the execution's
progress from the store alone (``rt.get_run`` and ``rt.items(run_id, phase=...)``):
phase by phase, switch by switch, each step's status and duration.

It runs twice, in virtual time on a memory store (so it takes a few milliseconds):
first looked at while the change is under way on acc-sw-01.dc1, then to its end;
then again with acc-sw-02.dc1 refusing the port change, which rolls both switches
back and fails the run saying so.

Run it with ``python examples/mop_vlan.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio

import runlife
from runlife import Item, Phase, Procedure, Run, Status
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

NAME = "Deploy VLAN 100 - DC1 Access Switches"
SWITCHES = ["acc-sw-01.dc1", "acc-sw-02.dc1"]
ADDRESSES = {"acc-sw-01.dc1": "10.1.2.1", "acc-sw-02.dc1": "10.1.2.2"}
# How long each command takes on the switches (seconds).
TAKES = {
    "show vlan brief": 1.2,
    "show interfaces trunk": 1.8,
    "conf t / vlan 100 / name ENG": 2.1,
    "conf t / interface range Gi1/0/1-24": 4.0,
    "show vlan brief | include 100": 0.9,
    "show interfaces Gi1/0/1 switchport": 1.1,
    "no vlan 100 / revert ports": 2.5,
}

clock = VirtualClock(start=datetime(2026, 3, 10, 22, 0, tzinfo=UTC))
refusing: set[str] = set()  # switches that refuse the port change


def command(text: str) -> Any:
    """A step that sends *text* to the switch and returns what it answered."""

    async def send(switch: str) -> str:
        await clock.sleep(TAKES[text])
        if text.startswith("conf t / interface") and switch in refusing:
            raise ConnectionError("% Invalid input detected at '^' marker")
        return f"{switch}# {text}: ok"

    return send


def phase(name: str, *texts: str) -> Phase:
    return Phase(name, {text: command(text) for text in texts})


mop = Procedure(
    [
        phase("pre-check", "show vlan brief", "show interfaces trunk"),
        phase("change", "conf t / vlan 100 / name ENG", "conf t / interface range Gi1/0/1-24"),
        phase("post-check", "show vlan brief | include 100", "show interfaces Gi1/0/1 switchport"),
    ],
    rollback=phase("rollback", "no vlan 100 / revert ports"),
)


@runlife.job
async def deploy_vlan_100(ctx: runlife.RunContext, switches: list[str]) -> dict[str, Any]:
    return await mop.run(ctx, switches)


WORDS = {
    Status.SUCCEEDED: "passed",
    Status.FAILED: "failed",
    Status.RUNNING: "running",
    Status.PENDING: "pending",
    Status.SKIPPED: "skipped",
    Status.CANCELLED: "cancelled",
}


def report(run: Run, phases: dict[str, tuple[Item, ...]]) -> str:
    """The execution's progress, in the shape of the operators' monitor."""
    running = [i for items in phases.values() for i in items if i.status is Status.RUNNING]
    status = {Status.SUCCEEDED: "completed", Status.FAILED: "failed"}.get(run.status, "running")
    lines = [f"Execution: {NAME}", "Strategy: sequential"]
    lines.append(f"Status: {status}" + (f": {run.error.message}" if run.error else ""))
    if running:
        switch = running[0].key.split("/")[0]
        lines.append(f"Current Phase: {running[0].phase}")
        lines.append(f"Current Device: {switch} ({ADDRESSES[switch]})")
    lines += ["", "Phase Progress:"]
    number = 0
    for name, keys in mop.keys(SWITCHES).items():
        items = {i.key: i for i in phases[name]}
        passed = sum(i.status is Status.SUCCEEDED for i in items.values())
        title = name.title()
        if not items:
            lines.append(f"  [ ] {title} (standby)")
        elif passed == len(keys):
            lines.append(f"  [x] {title} (completed - {passed} of {len(keys)} steps passed)")
        elif all(i.status is Status.SKIPPED for i in items.values()):
            lines.append(f"  [-] {title} (not run - 0 of {len(keys)} steps)")
        elif any(i.status in (Status.FAILED, Status.SKIPPED) for i in items.values()):
            lines.append(f"  [!] {title} (stopped - {passed} of {len(keys)} steps passed)")
        elif any(i.status is not Status.PENDING for i in items.values()):
            lines.append(f"  [>] {title} (in progress - {passed} of {len(keys)} steps completed)")
        else:
            lines.append(f"  [ ] {title} (pending - 0 of {len(keys)} steps)")
        for key in keys:
            number += 1
            switch, step = key.split("/", 1)
            item = items.get(key)
            word = "standby" if item is None else WORDS[item.status]
            took = f" {item.duration.total_seconds():.1f}s" if item and item.duration else ""
            label = f"Step {number}: {switch} {step}"
            lines.append(f"      {label:<58} [{word}]{took}")
    return "\n".join(lines)


async def monitor(rt: runlife.AsyncRuntime, run_id: str) -> str:
    run = await rt.get_run(run_id)
    return report(run, {name: await rt.items(run_id, phase=name) for name in mop.keys([])})


async def main() -> None:
    store = MemoryStore(clock=clock)
    async with runlife.AsyncRuntime(jobs=[deploy_vlan_100], store=store, clock=clock) as rt:
        run = await rt.submit(deploy_vlan_100, {"switches": SWITCHES})
        await clock.sleep(10)  # the pre-checks took 6 s; the port change is under way
        print(await monitor(rt, run.id), end="\n\n")
        await rt.wait(run.id)
        print(await monitor(rt, run.id), end="\n\n")

        refusing.add("acc-sw-02.dc1")
        run = await rt.submit(deploy_vlan_100, {"switches": SWITCHES})
        await rt.wait(run.id)
        print(await monitor(rt, run.id))


if __name__ == "__main__":
    anyio.run(main)
