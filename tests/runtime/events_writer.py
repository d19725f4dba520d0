"""A runtime in a process of its own, for the event stream's tests across processes.

It runs one run of ``inventory`` over the store at URL: four items, each logging
three lines; ``rtr-3`` fails. After the second item it waits until the file GATE
exists (the monitor in the test process disconnects meanwhile), then goes on.
It exits once the run is terminal.

Run as ``python tests/runtime/events_writer.py URL GATE``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

import runlife
from runlife import AsyncRuntime, RunContext

DEVICES = ("rtr-1", "rtr-2", "rtr-3", "rtr-4")
LINES = 3


@runlife.job
async def inventory(ctx: RunContext, gate: str) -> int:
    for n, device in enumerate(await ctx.items(DEVICES), 1):
        async with ctx.item(device) as item:
            for line in range(LINES):
                item.log.info("reading inventory", host=device, line=line)
            if device == "rtr-3":
                raise ConnectionError(f"no route to {device}")
        if n == 2:
            while not Path(gate).exists():
                await anyio.sleep(0.01)
    return len(DEVICES)


async def main(url: str, gate: str) -> None:
    async with AsyncRuntime(jobs=[inventory], store=url) as rt:
        run = await rt.submit(inventory, params={"gate": gate})
        await rt.wait(run.id)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
