"""Pure lifecycle transitions per second, against the floor of a bare attrs evolve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from benchmarks._harness import Report, best_of
from runlife import DEFAULT_LIFECYCLE, Run, Status

TARGET = 200_000
N = 20_000
PATH = (Status.QUEUED, Status.RUNNING, Status.RETRYING, Status.QUEUED, Status.RUNNING,
        Status.SUCCEEDED)  # fmt: skip


@attrs.frozen
class _Three:
    a: int
    b: int
    c: int


def run(report: Report) -> None:
    t0 = datetime(2026, 3, 10, 2, tzinfo=UTC)
    moments = [t0 + timedelta(seconds=i) for i in range(len(PATH))]
    seed = Run.create(job="nightly_backup", at=t0, params={"devices": ["core-rtr-01"]})
    transition = DEFAULT_LIFECYCLE.transition

    def walk() -> None:
        for _ in range(N):
            run = seed
            for status, at in zip(PATH, moments, strict=True):
                run = transition(run, status, at=at)

    rate = N * len(PATH) / best_of(walk)

    three = _Three(1, 2, 3)
    table: dict[int, int] = {}

    def floor() -> None:
        value = three
        for i in range(N * len(PATH)):
            value = attrs.evolve(value, a=i)
            table[i & 1023] = i

    floor_rate = N * len(PATH) / best_of(floor)
    report.figure(
        "transitions/s (history + attempts recorded)", rate, "/s",
        target=f">= {TARGET:,}/s", ok=rate >= TARGET,
    )  # fmt: skip
    report.figure(
        "floor: evolve of a 3-field record + dict update", floor_rate, "/s",
        target="reference, same run", ok=True,
    )  # fmt: skip
