"""Run logs: lines per second a job logs through ``ctx.log`` inside a run, stored.

One async job logs ``LINES`` lines (``ctx.log.info("backing up", host=..., n=i)``)
and returns; the figure is lines per second from the submit to the terminal run,
every line stored (in batches of 1000, the last ones before the run's end): into
a `MemoryStore` and into a `SQLiteStore` in a temporary directory. Beside each,
the same structlog call on a logger whose only processor drops the event (the
cheapest a structlog call can be), in the same process, and the ratio of the two.
Each figure is the best of ``TRIALS``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import structlog

import runlife
from benchmarks._harness import Report, best_of
from runlife.abc import Store
from runlife.stores import MemoryStore, SQLiteStore

LINES = 200_000
TRIALS = 3
MEMORY_TARGET = 200_000
SQLITE_TARGET = 100_000
HOSTS = ("core-rtr-01", "core-rtr-02", "dist-sw-01", "dist-sw-02")


@runlife.job
async def chatty(ctx: runlife.RunContext, lines: int) -> int:
    log = ctx.log
    for i in range(lines):
        log.info("backing up", host=HOSTS[i & 3], n=i)
    return lines


async def _one_run(store: Store) -> float:
    """Seconds from the submit to the terminal run, every line stored."""
    async with runlife.AsyncRuntime(
        jobs=[chatty], store=store, max_log_lines=LINES + 10, max_log_bytes=LINES * 100
    ) as rt:
        started = time.perf_counter()
        run = await rt.wait((await rt.submit(chatty, params={"lines": LINES})).id)
        took = time.perf_counter() - started
        last = (await rt.logs(run.id, after=LINES - 1)).lines
    assert run.status is runlife.Status.SUCCEEDED, run.error
    assert [line.seq for line in last] == [LINES], "not every line was stored"
    return took


def _stored_per_second(make: Any) -> float:
    best = float("inf")
    for _ in range(TRIALS):

        async def trial() -> float:
            async with make() as store:
                return await _one_run(store)

        best = min(best, anyio.run(trial))
    return LINES / best


def _null_per_second() -> float:
    def drop(_logger: Any, _method: str, _event: Any) -> Any:
        raise structlog.DropEvent

    log = structlog.wrap_logger(
        None,
        processors=[drop],
        wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
    ).bind(run_id="01a2", job="chatty", attempt=1)

    def calls() -> None:
        info = log.info
        for i in range(LINES):
            info("backing up", host=HOSTS[i & 3], n=i)

    return LINES / best_of(calls, repeat=TRIALS)


def run(report: Report) -> None:
    null = _null_per_second()
    report.figure(
        "structlog call, null processor (reference)", null, "lines/s", target="-", ok=True
    )
    memory = _stored_per_second(MemoryStore)
    report.figure(
        f"ctx.log lines stored, MemoryStore ({LINES:,} lines, 1 run)",
        memory,
        "lines/s",
        target=f">= {MEMORY_TARGET:,}",
        ok=memory >= MEMORY_TARGET,
    )
    report.figure("  ratio to the null structlog call", memory / null, "x", target="-", ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = (Path(tmp) / f"runs-{n}.db" for n in range(TRIALS))
        sqlite = _stored_per_second(lambda: SQLiteStore(next(paths)))
    report.figure(
        f"ctx.log lines stored, SQLiteStore ({LINES:,} lines, 1 run)",
        sqlite,
        "lines/s",
        target=f">= {SQLITE_TARGET:,}",
        ok=sqlite >= SQLITE_TARGET,
    )
    report.figure("  ratio to the null structlog call", sqlite / null, "x", target="-", ok=True)
