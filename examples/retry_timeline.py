"""A nightly backup's retry timeline, lived in virtual time.

A job that always hangs, with ``Retry(max_attempts=3, delay=60)`` and
``Timeout(attempt=300)``: each attempt is cut at its deadline by the clock, the retry
policy decides what follows, and the run ends FAILED at 02:17 with a timeout, while
its cron schedule's next fire stays where it was. Seventeen virtual minutes take a
few milliseconds, on asyncio and on trio, because the virtual clock jumps to the next
deadline whenever every task is blocked.

Run it with ``python examples/retry_timeline.py``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import anyio

from runlife import DEFAULT_LIFECYCLE as lc
from runlife import Cron, Retry, Run, Status, Timeout, Trigger, decide_failure
from runlife.testing import VirtualClock

schedule = Cron("0 2 * * *")
retry = Retry(max_attempts=3, delay=60)
timeout = Timeout(attempt=300)


async def hang() -> None:
    await anyio.sleep_forever()


async def main(backend: str) -> None:
    clock = VirtualClock(start=datetime(2026, 3, 10, 2, 0, tzinfo=UTC))
    fire = schedule.next_after(clock.now().replace(hour=1))
    run = Run.create(job="nightly_backup", at=fire, trigger=Trigger.SCHEDULED, scheduled_for=fire)
    run = lc.transition(run, Status.QUEUED, at=clock.now())
    started = time.perf_counter()
    while not run.is_terminal:
        await clock.sleep_until(run.due_at or clock.now())
        run = lc.transition(run, Status.RUNNING, at=clock.now(), reason="claimed")
        deadline = timeout.next_deadline(run)
        assert deadline is not None
        with clock.move_on_at(deadline.at) as scope:
            await hang()
        assert scope.cancelled_caught  # the attempt was cut at its timeout
        decision = decide_failure(
            run, deadline.error(run.attempt), at=clock.now(), retry=retry, timeout=timeout
        )
        run = decision.apply(run)
        print(f"  {clock.now():%H:%M:%S}  {decision.reason}")
        if decision.retry:
            run = lc.transition(run, Status.QUEUED, at=clock.now(), due_at=decision.due_at)
    wall = (time.perf_counter() - started) * 1000
    assert run.ended_at is not None
    attempts = ", ".join(f"{a.started_at:%H:%M:%S}" for a in run.attempts)
    print(f"{backend}: attempts at {attempts}; {run.status} at {run.ended_at:%H:%M:%S} "
          f"({run.error.kind if run.error else '-'}) in {wall:.0f} ms of wall time")  # fmt: skip
    print(f"  next scheduled fire: {schedule.next_after(run.ended_at):%Y-%m-%d %H:%M} UTC")


for backend in ("asyncio", "trio"):
    anyio.run(main, backend, backend=backend)
