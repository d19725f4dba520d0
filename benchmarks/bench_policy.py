"""Policy decisions and schedules: the costs the runtime pays on every attempt and submit."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from benchmarks._harness import Report, best_of
from runlife._core.policy import Limits, Quota, QuotaUsage, Retry
from runlife._core.schedule import Cron

N = 20_000
CRON_N = 5_000


def _per_call(fn: object, n: int) -> float:
    """Microseconds per call of the loop *fn* that makes *n* calls."""
    return best_of(fn) / n * 1e6  # type: ignore[arg-type]


def run(report: Report) -> None:
    error = ConnectionError("no route to host")
    rng = random.Random(1)
    fixed = Retry(max_attempts=3, delay=60)
    expo = Retry(max_attempts=10, delay=1, backoff="exponential", max_delay=300, jitter=0.2)

    def delays_fixed() -> None:
        next_delay = fixed.next_delay
        for _ in range(N):
            next_delay(2, error, rng)

    def delays_expo() -> None:
        next_delay = expo.next_delay
        for _ in range(N):
            next_delay(6, error, rng)

    now = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    calendar = Limits(quota=Quota(max_runs=1000, per="month", tz="Europe/Paris"))
    rolling = Limits(quota=Quota(max_runs=1000, window=timedelta(hours=24)))
    usage = QuotaUsage(count=999, oldest=now - timedelta(hours=23))

    def quota_calendar() -> None:
        check = calendar.check_quota
        for _ in range(N):
            check("sync", 999, now)

    def quota_rolling() -> None:
        check = rolling.check_quota
        for _ in range(N):
            check("sync", usage, now)

    moments = [now + timedelta(minutes=7 * i) for i in range(CRON_N)]
    crons = {
        "Cron('0 2 * * *', UTC)": Cron("0 2 * * *"),
        "Cron('0 2 * * *', Europe/Paris)": Cron("0 2 * * *", tz="Europe/Paris"),
        "Cron('*/7 3-5 1,15 * mon-fri', America/New_York)": Cron(
            "*/7 3-5 1,15 * mon-fri", tz="America/New_York"
        ),
        "Cron('0 0 * * 1#2', Europe/Paris)": Cron("0 0 * * 1#2", tz="Europe/Paris"),
    }

    for name, fn, target in (
        ("Retry.next_delay (fixed)", delays_fixed, 2.0),
        ("Retry.next_delay (exponential + jitter + cap)", delays_expo, 2.0),
        ("Limits.check_quota (calendar month, under quota)", quota_calendar, 2.0),
        ("Limits.check_quota (rolling 24 h, QuotaUsage)", quota_rolling, 2.0),
    ):
        us = _per_call(fn, N)
        report.figure(name, us, "µs/call", target=f"< {target:g} µs", ok=us < target)

    for name, cron in crons.items():

        def walk(cron: Cron = cron) -> None:
            next_after = cron.next_after
            for moment in moments:
                next_after(moment)

        us = _per_call(walk, CRON_N)
        report.figure(f"{name}.next_after", us, "µs/call", target="< 50 µs", ok=us < 50)

    for backend in ("asyncio", "trio"):
        ms = _virtual_timeline(backend) * 1e3
        report.figure(
            f"VirtualClock: 17 virtual min, 5 s heartbeats ({backend})", ms, "ms",
            target="< 500 ms", ok=ms < 500,
        )  # fmt: skip


def _virtual_timeline(backend: str) -> float:
    """Real seconds for 17 virtual minutes beside a 5 s heartbeat (204 jumps)."""
    clock: VirtualClock
    import time

    import anyio

    from runlife.testing._clock import VirtualClock

    async def main() -> None:
        async def heartbeat() -> None:
            while True:
                await clock.sleep(5)

        async with anyio.create_task_group() as tg:
            tg.start_soon(heartbeat)
            await clock.sleep(17 * 60)
            tg.cancel_scope.cancel()

    best = float("inf")
    for _ in range(3):  # the first run pays for imports (trio.testing, anyio's backend)
        clock = VirtualClock(start=datetime(2026, 3, 10, 2, 0, tzinfo=UTC))
        start = time.perf_counter()
        anyio.run(main, backend=backend)
        best = min(best, time.perf_counter() - start)
    return best
