"""Testing a host's jobs with runlife.testing: a custom lifecycle walked at random by
`LifecycleMachine`, a nightly backup job driven by `RuntimeMachine` (submits, cancels,
faults, crashes and clock moves, in virtual time), and the backup's 17-minute retry
timeline with heartbeats, through the ``runlife_runtime`` fixture, on asyncio and trio.

This file is a test module: ``pytest examples/testing_jobs.py``, or
``python examples/testing_jobs.py``, which runs pytest on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st

import runlife
from runlife import Lifecycle, Limits, Retry, RunContext, Status, Timeout
from runlife.testing import LifecycleMachine, RuntimeMachine, VirtualClock

# -- a host's own lifecycle, checked with LifecycleMachine -------------------------

PROMOTE = Lifecycle(
    "promote",
    {
        "IDLE": "PENDING",
        "ACTIVE": "PENDING",
        "TRIGGER": "QUEUED",
        "STARTED": "RUNNING",
        "RUNNING": "RUNNING",
        "SUCCESS": "SUCCEEDED",
        "FAILED": "FAILED",
        "TERMINATED": "CANCELLED",
    },
    {
        "IDLE": ["ACTIVE", "TERMINATED"],
        "ACTIVE": ["TRIGGER", "TERMINATED"],
        "TRIGGER": ["STARTED", "TERMINATED"],
        "STARTED": ["RUNNING", "FAILED", "TERMINATED"],
        "RUNNING": ["SUCCESS", "FAILED", "TERMINATED"],
    },
)


@settings(max_examples=30, stateful_step_count=15, deadline=None)
class PromoteLifecycle(LifecycleMachine):
    lifecycle = PROMOTE
    store_url = "memory://"  # every move also goes through a store


TestPromoteLifecycle = PromoteLifecycle.TestCase

# -- a nightly backup job, checked with RuntimeMachine -----------------------------

clocks: list[VirtualClock] = []  # the clock of the test at hand, for the job's waits


@runlife.job(
    retry=Retry(max_attempts=3, delay=60),
    timeout=Timeout(attempt=300, heartbeat=90),
    limits=Limits(max_concurrency=2, per_label={"site": 1}),
)
async def nightly_backup(ctx: RunContext, site: str, minutes: int = 0) -> dict[str, object]:
    """Back up one site: a heartbeat a minute for *minutes* minutes."""
    for _ in range(minutes):
        ctx.heartbeat()
        await clocks[-1].sleep(60)
    return {"site": site, "minutes": minutes}


@settings(max_examples=10, stateful_step_count=20, deadline=None)
class NightlyBackupMachine(RuntimeMachine):
    jobs = (nightly_backup,)
    params: ClassVar = {
        "nightly_backup": st.fixed_dictionaries({"site": st.sampled_from(["dc1", "dc2"])})
    }


TestNightlyBackupMachine = NightlyBackupMachine.TestCase

# -- the 17-minute retry timeline, through the plugin's fixtures --------------------


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runlife_clock() -> VirtualClock:
    clocks.append(VirtualClock(start=datetime(2026, 3, 10, 2, 0, tzinfo=UTC)))
    return clocks[-1]


@pytest.mark.anyio
@pytest.mark.runlife(jobs=[nightly_backup])
async def test_the_17_minute_retry_timeline(runlife_runtime, runlife_clock) -> None:  # type: ignore[no-untyped-def]
    """A backup that would beat for an hour: each attempt is cut at 5 minutes, the
    next comes a minute later, and the run fails at 02:17, in well under a second."""
    started = time.perf_counter()
    run = await runlife_runtime.submit(nightly_backup, {"site": "dc1", "minutes": 60})
    run = await runlife_runtime.wait(run.id)
    wall = time.perf_counter() - started
    assert run.status is Status.FAILED
    assert [f"{a.started_at:%H:%M}" for a in run.attempts] == ["02:00", "02:06", "02:12"]
    assert f"{run.ended_at:%H:%M}" == "02:17"
    assert wall < 1
    print(f"\n{run.status} at {run.ended_at:%H:%M} after 3 attempts, {wall * 1000:.0f} ms")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    args = ["-q", "-s", "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", here, __file__]
    sys.exit(subprocess.call([sys.executable, "-m", "pytest", *args]))  # noqa: S603
