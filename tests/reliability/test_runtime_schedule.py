"""Schedules on a real store: each slot fires once across runtimes, and after a
3-hour outage ``catch_up`` does what it says.

Two `AsyncRuntime` objects share one SQLite file or one PostgreSQL database, in one
process and in virtual time (a `VirtualClock`: the scheduler's waits are clock
deadlines, the store's uniqueness of ``(job, scheduled_for)`` is the real store's).
Three jobs share the cron ``*/5 * * * *``, one per ``catch_up`` policy. The two
runtimes fire for 30 minutes; then no runtime runs for 3 hours; then two start
again at once, 2.5 minutes after the latest missed slot (outside the 60 s grace
of ``"none"``), and run for 10 minutes:

* ``"latest"`` fires the latest missed slot once, then each slot on time;
* ``"all"`` fires every missed slot, each once, in order, then each on time;
* ``"none"`` fires no missed slot, then each on time.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

import runlife
from runlife import AsyncRuntime, Cron, Run, RunQuery, Status, Trigger
from runlife.stores import open_store
from runlife.testing import VirtualClock

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def _nothing(ctx: runlife.RunContext) -> None:
    return None


JOBS = {
    policy: runlife.job(name=f"every5-{policy}", schedule=Cron("*/5 * * * *", catch_up=policy))(
        _nothing
    )
    for policy in ("latest", "all", "none")
}

MINUTE = timedelta(minutes=1)


def _start() -> datetime:
    # Virtual time starts near the store's real time (the store judges leases by
    # its own clock), at a whole hour plus one minute.
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now + MINUTE


async def _fired(store: runlife.abc.Store, job: runlife.Job) -> list[Run]:
    page = await store.list_runs(RunQuery(job=job.name, limit=1000))
    assert page.next_cursor is None
    return sorted(page.runs, key=lambda r: r.scheduled_for or datetime.min.replace(tzinfo=UTC))


async def test_two_runtimes_fire_each_slot_once_and_catch_up_after_an_outage(
    store_url: str,
) -> None:
    t0 = _start()
    clock = VirtualClock(start=t0)
    jobs = list(JOBS.values())

    def slots(first: datetime, last: datetime) -> list[datetime]:
        out, at = [], first
        while at <= last:
            out.append(at)
            at += 5 * MINUTE
        return out

    async with open_store(store_url) as store:

        def runtime(name: str) -> AsyncRuntime:
            # The scheduler sleeps until each fire time whatever the poll; a long
            # poll and lease spare the other services' store calls in virtual time.
            return AsyncRuntime(
                jobs=jobs, store=store, clock=clock, worker_id=name, poll=60, lease=300
            )

        async with (
            runtime("one"),
            runtime("two"),
        ):
            await clock.sleep(30 * 60)  # t0 + 30 min: slots t0+4 .. t0+29
        # Leaving took no virtual time: the runtime left last fired nothing more.
        assert clock.now() == t0 + 30 * MINUTE
        before = slots(t0 + 4 * MINUTE, t0 + 29 * MINUTE)
        for job in jobs:
            runs = await _fired(store, job)
            assert [r.scheduled_for for r in runs] == before, job.name
            assert all(r.trigger is Trigger.SCHEDULED for r in runs)
            assert all(r.created_at == r.scheduled_for for r in runs)  # fired on time

        # No runtime for 3 hours: back 2.5 min after the latest missed slot.
        restart = t0 + 209 * MINUTE + timedelta(seconds=150)
        clock.advance((restart - clock.now()).total_seconds())
        assert clock.now() == restart
        missed = slots(t0 + 34 * MINUTE, restart)
        assert len(missed) == 36
        assert (restart - missed[-1]).total_seconds() == 150
        async with (
            runtime("three"),
            runtime("four"),
        ):
            await clock.sleep(10 * 60)
        assert clock.now() == restart + 10 * MINUTE
        after = slots(missed[-1] + 5 * MINUTE, restart + 10 * MINUTE)
        assert len(after) == 2

        fired = {policy: await _fired(store, job) for policy, job in JOBS.items()}
        expected = {
            "latest": [*before, missed[-1], *after],
            "all": [*before, *missed, *after],
            "none": [*before, *after],
        }
        for policy, runs in fired.items():
            assert [r.scheduled_for for r in runs] == expected[policy], policy
            assert Counter(r.status for r in runs) == {Status.SUCCEEDED: len(runs)}, policy
            # The caught-up slots were fired at the restart, the others on time.
            late = [r for r in runs if r.scheduled_for in missed]
            assert all(r.created_at == restart for r in late), policy
            on_time = [r for r in runs if r.scheduled_for not in missed]
            assert all(r.created_at == r.scheduled_for for r in on_time), policy
            record = await store.get_job(JOBS[policy].name)
            assert record.last_scheduled_for == after[-1]
