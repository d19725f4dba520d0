"""The workflow driver, in memory: a chain's links per second, the latency from an
upstream run's end to its downstream run's start, and a fan-out/fan-in's cost per
node at two sizes.

1. A chain of 1,000 jobs (each does nothing): links per second of wall time, from
   the workflow run's creation to its end (its own timestamps), best of three runs;
   beside it the same per second of process CPU (the rate on an unshared core). The
   benchmark looks for the end every 20 ms rather than with ``rt.wait``, which would
   read the run again after each of the thousands of runs' outcomes.
2. In those chains, for each link, the time from the upstream run's ``ended_at`` to
   the downstream run's first attempt's start (its claim): the p50 and p99.
3. A fan-out/fan-in (one root, N parallel nodes, one join) at N = 1,000 and
   10,000: seconds of wall time per node, best of three each, the sizes taking
   turns so that a busy machine slows both alike; and their ratio (flat: 1.0).

Everything runs on one runtime per workflow, a `MemoryStore` and the real clock;
job records are saved when the runtime starts, before the clock starts. As in
`benchmarks._harness.best_of`, the garbage collector is off while a run is timed.
"""

from __future__ import annotations

import gc
import statistics
import time
from typing import Any

import anyio

import runlife
from benchmarks._harness import Report
from runlife import AsyncRuntime, Run, RunContext, Status, Workflow

CHAIN = 1_000
TRIALS = 3
LINKS_TARGET = 5_000.0
LATENCY_TARGET_MS = 1.0
FAN_SIZES = (1_000, 10_000)
FLAT_RATIO = 1.3
CONCURRENCY = 64


async def _nothing(ctx: RunContext) -> None:
    return None


def _jobs(names: list[str]) -> list[runlife.Job]:
    return [runlife.job(name=name)(_nothing) for name in names]


def chain(n: int) -> Workflow:
    jobs = _jobs([f"link{i:05d}" for i in range(n)])
    return Workflow("chain", {job: [jobs[i - 1]] if i else [] for i, job in enumerate(jobs)})


def fan(n: int) -> Workflow:
    jobs = _jobs(["split", *(f"part{i:05d}" for i in range(n)), "merge"])
    split, parts, merge = jobs[0], jobs[1:-1], jobs[-1]
    graph: dict[Any, list[Any]] = {split: [], **{p: [split] for p in parts}, merge: parts}
    return Workflow(f"fan{n}", graph)


async def _timed(wf: Workflow, trials: int) -> list[tuple[float, float, tuple[Run, ...]]]:
    """(wall seconds, CPU seconds, children) of *trials* runs of *wf*, one at a time."""
    out = []
    async with AsyncRuntime(workflows=[wf], store="memory://", concurrency=CONCURRENCY) as rt:
        await anyio.sleep(0.5)  # the runtime's first looks at its store
        for _ in range(trials):
            gc.collect()
            gc.disable()
            try:
                cpu = time.process_time()
                run = await rt.submit(wf)
                while not run.is_terminal:
                    await anyio.sleep(0.02)
                    run = await rt.get_run(run.id)
                cpu = time.process_time() - cpu
            finally:
                gc.enable()
            assert run.status is Status.SUCCEEDED, run
            assert run.ended_at is not None
            page = await rt.list_runs(workflow_run_id=run.id, limit=len(wf))
            out.append(((run.ended_at - run.created_at).total_seconds(), cpu, page.runs))
    return out


def _latencies(children: tuple[Run, ...], wf: Workflow) -> list[float]:
    """Per link, seconds from the upstream run's end to the downstream run's start."""
    by_node = {run.job: run for run in children}
    out = []
    for upstream, node in wf.edges:
        up, down = by_node[upstream], by_node[node]
        assert up.ended_at is not None
        assert down.attempts
        out.append((down.attempts[0].started_at - up.ended_at).total_seconds())
    return out


def run(report: Report) -> None:
    wf = chain(CHAIN)
    trials = anyio.run(_timed, wf, TRIALS)
    wall, cpu, _ = min(trials, key=lambda t: t[0])
    links = CHAIN - 1
    report.figure(
        f"chain of {CHAIN:,} runs: links per second", links / wall, "/s",
        target=f">= {LINKS_TARGET:,.0f}/s", ok=links / wall >= LINKS_TARGET,
    )  # fmt: skip
    report.figure(
        "  the same per second of process CPU", links / cpu, "/s",
        target="reference: the rate on an unshared core", ok=True,
    )  # fmt: skip
    latencies = sorted(x for _, _, children in trials for x in _latencies(children, wf))
    p50 = statistics.median(latencies) * 1e3
    p99 = latencies[int(len(latencies) * 0.99)] * 1e3
    report.figure(
        "upstream SUCCEEDED -> downstream RUNNING, p50", p50, "ms",
        target="reference", ok=True,
    )  # fmt: skip
    report.figure(
        "upstream SUCCEEDED -> downstream RUNNING, p99", p99, "ms",
        target=f"<= {LATENCY_TARGET_MS:g} ms", ok=p99 <= LATENCY_TARGET_MS,
    )  # fmt: skip

    fans = {n: fan(n) for n in FAN_SIZES}
    per_node = dict.fromkeys(FAN_SIZES, float("inf"))
    per_cpu = dict.fromkeys(FAN_SIZES, float("inf"))
    for _ in range(TRIALS):
        for n, wf in fans.items():
            ((wall, cpu, _),) = anyio.run(_timed, wf, 1)
            per_node[n] = min(per_node[n], wall / len(wf))
            per_cpu[n] = min(per_cpu[n], cpu / len(wf))
    for n in FAN_SIZES:
        report.figure(
            f"fan-out/fan-in of {n:,}: per node", per_node[n] * 1e6, "us",
            target="reference for flatness", ok=True,
        )  # fmt: skip
    small, large = FAN_SIZES
    ratio = per_node[large] / per_node[small]
    report.figure(
        f"per-node cost at {large:,} / at {small:,}", ratio, "x",
        target=f"<= {FLAT_RATIO}x", ok=ratio <= FLAT_RATIO,
    )  # fmt: skip
    report.figure(
        "  the same in process CPU", per_cpu[large] / per_cpu[small], "x",
        target="reference", ok=True,
    )  # fmt: skip


if __name__ == "__main__":  # pragma: no cover
    start = time.perf_counter()
    run(Report())
    print(f"({time.perf_counter() - start:.1f} s)")
