"""RuntimeMachine over runlife's own jobs, on memory and SQLite, asyncio and trio."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

import runlife
import runlife._runtime.worker as worker
from runlife import Limits, Retry, RunContext, Timeout
from runlife._core.policy import FailureDecision
from runlife.testing import RuntimeMachine


@runlife.job(
    retry=Retry(max_attempts=3, delay=60, backoff="exponential"),
    timeout=Timeout(attempt=300),
    limits=Limits(max_concurrency=2, per_label={"site": 1}),
)
async def nightly_backup(ctx: RunContext, site: str) -> dict[str, str]:
    ctx.log.info("backing up", site=site)
    return {"site": site}


@runlife.job(retry=Retry(max_attempts=2, delay=30, jitter=0.5))
async def wait_for_go(ctx: RunContext) -> object:
    return await ctx.wait_for("go", timeout=600)


@runlife.job(retry=Retry(max_attempts=2, delay=10))
def count_rows(ctx: RunContext, n: int) -> int:
    return n * 2


SITES = st.sampled_from(["dc1", "dc2"])
PARAMS = {
    "nightly_backup": st.fixed_dictionaries({"site": SITES}),
    "count_rows": st.fixed_dictionaries({"n": st.integers(0, 9)}),
}
QUICK = settings(
    max_examples=20,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)


class Machine(RuntimeMachine):
    jobs = (nightly_backup, wait_for_go, count_rows)
    params = PARAMS


@QUICK
class MemoryMachine(Machine):
    pass


@settings(QUICK, max_examples=10)
class SQLiteMachine(Machine):
    store_url = "sqlite:///{tmp}/runs.db"


@settings(QUICK, max_examples=5)
class TrioMachine(Machine):
    backend = "trio"


TestMemoryMachine = MemoryMachine.TestCase
TestSQLiteMachine = SQLiteMachine.TestCase
TestTrioMachine = TrioMachine.TestCase


def test_the_machine_catches_a_runtime_that_retries_before_the_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker whose retries come at once, not after their delay, fails the machine."""
    real = worker.decide_failure

    def at_once(*args: Any, **kwargs: Any) -> FailureDecision:
        decision = real(*args, **kwargs)
        return decision if decision.due_at is None else attrs.evolve(decision, due_at=decision.at)

    monkeypatch.setattr(worker, "decide_failure", at_once)
    hunt = settings(QUICK, max_examples=60, phases=[Phase.generate], derandomize=True)
    with pytest.raises(AssertionError, match="retry delay is"):
        run_state_machine_as_test(Machine, settings=hunt)


def test_the_machine_catches_a_runtime_that_cuts_attempts_late() -> None:
    """A runtime that gives attempts two minutes more than their timeout fails the
    machine: its jobs are the machine's, with a longer attempt limit."""

    class LateCuts(Machine):
        jobs = (nightly_backup,)

        def _wrap(self, job: runlife.Job) -> runlife.Job:
            wrapped = super()._wrap(job)
            limit = job.spec.timeout.attempt
            if limit is None:
                return wrapped
            late = attrs.evolve(job.spec.timeout, attempt=limit.total_seconds() + 120)
            return attrs.evolve(wrapped, spec=attrs.evolve(job.spec, timeout=late))

    hunt = settings(QUICK, max_examples=100, phases=[Phase.generate], derandomize=True)
    with pytest.raises(AssertionError, match="past its attempt deadline"):
        run_state_machine_as_test(LateCuts, settings=hunt)
