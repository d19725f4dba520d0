"""Jobs for the process executor's tests: a child process imports them by name."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import runlife
from runlife import Retry, RunContext, Timeout
from runlife.executors import ProcessExecutor


class Unreachable(Exception):
    """A failure of the tests' own, matched by name in the parent."""


def _note_pid(pidfile: str) -> None:
    # Written whole, then renamed: the test never reads half a number.
    part = Path(pidfile + ".part")
    part.write_text(str(os.getpid()))
    part.rename(pidfile)


@runlife.job(executor="process")
def square(ctx: RunContext, n: int) -> dict[str, Any]:
    ctx.warn(f"squaring {n} at attempt {ctx.attempt}")
    ctx.heartbeat()
    ctx.log.info("squared", n=n, run=ctx.run_id)
    return {"square": n * n, "pid": os.getpid(), "run_id": ctx.run_id, "params": ctx.params}


@runlife.job(executor="process")
async def square_async(ctx: RunContext, n: int) -> int:
    return n * n


@runlife.job(
    executor="process",
    retry=Retry(
        max_attempts=5, delay=30, retry_on=(Unreachable, OSError), give_up_on=(PermissionError,)
    ),
)
def flaky(ctx: RunContext) -> None:
    if ctx.attempt == 1:
        raise Unreachable("no route to core-rtr-01")
    if ctx.attempt == 2:
        raise ConnectionRefusedError("core-rtr-01 refused")
    raise PermissionError("denied on core-rtr-01")


@runlife.job(executor="process", timeout=Timeout(attempt=3))
def sleeps(ctx: RunContext, pidfile: str, cleaned: str) -> str:
    # The pid is told inside the try: a SIGTERM that comes once the test has seen
    # it always finds the finally.
    try:
        _note_pid(pidfile)
        time.sleep(60)
    finally:
        Path(cleaned).write_text(f"cancelled={ctx.cancelled}")
    return "woke up"


@runlife.job(executor=ProcessExecutor(grace=0.2))
def stubborn(ctx: RunContext, pidfile: str) -> str:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _note_pid(pidfile)
    time.sleep(60)
    return "woke up"


@runlife.job(executor="process")
def not_json(ctx: RunContext) -> dict[str, Any]:
    return {"at": datetime(2026, 3, 10, tzinfo=UTC)}


@runlife.job(executor="process")
def dies(ctx: RunContext) -> None:
    os._exit(3)


def nowhere(ctx: RunContext) -> int:
    return 1


# A function whose name leads nowhere in its module: the child cannot find it.
nowhere.__qualname__ = "moved_away"
lost = runlife.job(nowhere, name="lost", executor="process")


@runlife.job(executor="process")
def naps(ctx: RunContext, n: int) -> tuple[float, float]:
    started = time.time()
    time.sleep(0.2)
    return started, time.time()


@runlife.job(executor="process")
def chatty(ctx: RunContext, n: int) -> int:
    """Says something on every channel a child has."""
    print("to stdout", n)
    print("to stderr", n, file=sys.stderr)
    ctx.log.bind(item="core-rtr-01").info("structured", n=n)
    logging.getLogger("chatty").warning("through logging %d", n)
    sys.stdout.write("no newline at the end")
    os.write(1, b"straight to fd 1\n")
    return n


@runlife.job(executor="process")
def backs_up(ctx: RunContext, devices: list[str]) -> int:
    """One item per device; the unreachable one fails, the run goes on."""
    for device in ctx.items(devices, phase="backup"):
        with ctx.item(device) as item:
            if item.skipped:
                continue
            item.log.info("backing up", host=device)
            print("config of", device)
            if device == "rtr-3":
                raise Unreachable(f"no route to {device}")
            item.output = {"bytes": 1000 + len(device)}
    return len(devices)


# The same function, failing its run when an item fails (the child finds it by name).
backs_up_strict = runlife.job(
    backs_up.fn, name="backs_up_strict", executor="process", items_fail_run=0
)


@runlife.job(executor="process")
async def backs_up_async(ctx: RunContext, devices: list[str]) -> int:
    for device in await ctx.items(devices):
        async with ctx.item(device, phase="backup") as item:
            if device == "rtr-2":
                item.output = {"when": datetime(2026, 3, 10, tzinfo=UTC)}  # not JSON
            elif device == "rtr-4":
                item.skip("decommissioned")
            else:
                item.output = device.upper()
    return len(devices)
