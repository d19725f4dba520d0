"""Run the benchmarks: ``python -m benchmarks [name ...]``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import benchmarks
from benchmarks._harness import Report


def main(argv: list[str]) -> int:
    names = sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules(benchmarks.__path__)
        if m.name.startswith("bench_")
    )
    chosen = [n for n in names if not argv or n in argv]
    unknown = set(argv) - set(names)
    if unknown:
        print(f"unknown benchmarks: {', '.join(sorted(unknown))}; known: {', '.join(names)}")
        return 2
    report = Report()
    for name in chosen:
        print(f"{name}:", flush=True)
        start = time.perf_counter()
        importlib.import_module(f"benchmarks.bench_{name}").run(report)
        print(f"  ({time.perf_counter() - start:.1f} s)", flush=True)
    missed = report.missed
    print(f"\n{len(report.figures) - len(missed)} of {len(report.figures)} figures at target")
    for fig in missed:
        print(f"  missed: {fig.name}: {fig.value:,.2f} {fig.unit} (target {fig.target})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
