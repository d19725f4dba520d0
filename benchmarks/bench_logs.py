"""Run logs: lines per second a job logs through ``ctx.log`` inside a run, stored.

One async job logs ``LINES`` lines (``ctx.log.info("backing up", host=..., n=i)``)
and returns, into a `MemoryStore` and into a `SQLiteStore` in a temporary
directory. Two figures for each: the lines per second the job logs (its loop,
timed inside the run: what a line costs the job), and the lines per second from
the submit to the terminal run with every line stored (in batches of 1000, the
last ones before the run's end), the target's figure. Beside them, the same
structlog call on a logger whose only processor drops the event (the cheapest a
structlog call can be), in the same process, and the ratio. Each figure is the
best of ``TRIALS``; the garbage collector stays on, as in a host.
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
async def chatty(ctx: runlife.RunContext, lines: int) -> float:
    log = ctx.log
    started = time.perf_counter()
    for i in range(lines):
        log.info("backing up", host=HOSTS[i & 3], n=i)
    return time.perf_counter() - started


async def _one_run(store: Store) -> tuple[float, float]:
    """Seconds the job's loop took, and from the submit to the terminal run."""
    async with runlife.AsyncRuntime(
        jobs=[chatty], store=store, max_log_lines=LINES + 10, max_log_bytes=LINES * 100
    ) as rt:
        started = time.perf_counter()
        run = await rt.wait((await rt.submit(chatty, params={"lines": LINES})).id)
        took = time.perf_counter() - started
        last = (await rt.logs(run.id, after=LINES - 1)).lines
    assert run.status is runlife.Status.SUCCEEDED, run.error
    assert [line.seq for line in last] == [LINES], "not every line was stored"
    return run.result, took


def _per_second(make: Any) -> tuple[float, float]:
    """Lines per second: logged by the job, and stored (best of TRIALS each)."""
    best_job, best_run = float("inf"), float("inf")
    for _ in range(TRIALS):

        async def trial() -> tuple[float, float]:
            async with make() as store:
                return await _one_run(store)

        job, whole = anyio.run(trial)
        best_job, best_run = min(best_job, job), min(best_run, whole)
    return LINES / best_job, LINES / best_run


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
    with tempfile.TemporaryDirectory() as tmp:
        paths = (Path(tmp) / f"runs-{n}.db" for n in range(TRIALS))
        stores = (
            ("MemoryStore", MemoryStore, MEMORY_TARGET),
            ("SQLiteStore", lambda: SQLiteStore(next(paths)), SQLITE_TARGET),
        )
        for name, make, target in stores:
            job, stored = _per_second(make)
            report.figure(
                f"ctx.log lines logged by the job, {name}", job, "lines/s", target="-", ok=True
            )
            report.figure(
                f"ctx.log lines stored, {name} ({LINES:,} lines, 1 run)",
                stored,
                "lines/s",
                target=f">= {target:,}",
                ok=stored >= target,
            )
            report.figure(
                "  stored, as a share of the null structlog call's rate",
                stored / null,
                "x",
                target="-",
                ok=True,
            )
