"""Workflow graphs: build + validate against graphlib, and incremental resolution.

The graph is a random DAG of N nodes and 3N edges whose node names and mapping order
are shuffled, so that neither the order given nor the names follow the topological
order.
"""

from __future__ import annotations

import graphlib
import random
import time
from collections import deque

from benchmarks._harness import Report, best_of
from runlife import Status
from runlife._core.graph import Workflow

N = 100_000
EDGES_PER_NODE = 3
BUILD_RATIO = 3.0
RESOLVE_SECONDS = 1.0
FLAT_RATIO = 1.5
SIZES = (1_000, 10_000, 100_000)


def random_dag(n: int, edges_per_node: int, seed: int) -> dict[str, list[str]]:
    """A random DAG as ``{node: [upstream, ...]}``, names and order shuffled."""
    rng = random.Random(seed)
    ups: list[set[int]] = [set() for _ in range(n)]
    edges = 0
    while edges < n * edges_per_node:
        a, b = rng.randrange(n), rng.randrange(n)
        if a == b:
            continue
        u, v = (a, b) if a < b else (b, a)
        if u not in ups[v]:
            ups[v].add(u)
            edges += 1
    label = list(range(n))
    rng.shuffle(label)
    names = [f"job{label[i]:06d}" for i in range(n)]
    order = list(range(n))
    rng.shuffle(order)
    return {names[v]: [names[u] for u in ups[v]] for v in order}


def graphlib_drain(graph: dict[str, list[str]]) -> None:
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()
    while sorter.is_active():
        ready = sorter.get_ready()
        sorter.done(*ready)


def resolve_all(wf: Workflow) -> int:
    """Complete every node as it becomes ready (FIFO); return how many completed."""
    resolver = wf.resolver()
    queue = deque(resolver.initial.ready)
    complete = resolver.complete
    succeeded = Status.SUCCEEDED
    count = 0
    while queue:
        queue.extend(complete(queue.popleft(), succeeded).ready)
        count += 1
    assert resolver.finished
    return count


def run(report: Report) -> None:
    graph = random_dag(N, EDGES_PER_NODE, seed=4)

    baseline = best_of(lambda: graphlib_drain(graph), repeat=3)
    build = best_of(lambda: Workflow("bench", graph), repeat=3)
    ratio = build / baseline
    report.figure(
        f"build + validate, {N:,} nodes / {N * EDGES_PER_NODE:,} edges", build, "s",
        target=f"<= {BUILD_RATIO}x graphlib", ok=ratio <= BUILD_RATIO,
    )  # fmt: skip
    report.figure(
        "graphlib build + prepare + drain (same graph)", baseline, "s",
        target="reference, same run", ok=True,
    )  # fmt: skip
    report.figure(
        "build + validate / graphlib", ratio, "x", target=f"<= {BUILD_RATIO}x",
        ok=ratio <= BUILD_RATIO,
    )  # fmt: skip

    # Every sample resolves about N nodes (a small graph many times over), and the
    # sizes take turns, so that a busy machine slows each size alike.
    workflows = {size: Workflow("bench", graph if size == N else random_dag(size, 3, seed=size))
                 for size in SIZES}  # fmt: skip
    per_node = dict.fromkeys(SIZES, float("inf"))
    full = float("inf")
    for _ in range(3):
        for size, wf in workflows.items():
            times = N // size
            seconds = best_of(lambda wf=wf, t=times: [resolve_all(wf) for _ in range(t)], repeat=1)  # type: ignore[misc]
            per_node[size] = min(per_node[size], seconds / (times * size))
            if size == N:
                full = min(full, seconds)
    report.figure(
        f"full incremental resolution, {N:,} nodes", full, "s",
        target=f"<= {RESOLVE_SECONDS} s", ok=full <= RESOLVE_SECONDS,
    )  # fmt: skip
    for size, cost in per_node.items():
        report.figure(
            f"per completion at {size:,} nodes", cost * 1e6, "us",
            target="reference for flatness", ok=True,
        )  # fmt: skip
    spread = max(per_node.values()) / min(per_node.values())
    report.figure(
        "per-completion cost, slowest / fastest size", spread, "x",
        target=f"<= {FLAT_RATIO}x", ok=spread <= FLAT_RATIO,
    )  # fmt: skip


if __name__ == "__main__":  # pragma: no cover
    start = time.perf_counter()
    run(Report())
    print(f"({time.perf_counter() - start:.1f} s)")
