"""The small harness every benchmark reports through."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import attrs

__all__ = ("Figure", "Report", "best_of")


@attrs.frozen
class Figure:
    name: str
    value: float
    unit: str
    target: str
    ok: bool


@attrs.define
class Report:
    """Collects the figures of one benchmark run and prints each as it comes."""

    figures: list[Figure] = attrs.Factory(list)

    def figure(self, name: str, value: float, unit: str, *, target: str, ok: bool) -> None:
        """Record and print one figure beside its target."""
        fig = Figure(name, value, unit, target, ok)
        self.figures.append(fig)
        mark = "PASS" if ok else "MISS"
        print(f"  [{mark}] {name:<58} {value:>14,.2f} {unit:<10} target {target}", flush=True)

    @property
    def missed(self) -> list[Figure]:
        return [f for f in self.figures if not f.ok]


def best_of(fn: Callable[[], object], *, repeat: int = 5) -> float:
    """The fastest of *repeat* timings of *fn*, in seconds (garbage collector off)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best
