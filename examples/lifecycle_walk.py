"""Walk one run through the pure lifecycle, then declare and use a lifecycle of your own.

Run it with ``python examples/lifecycle_walk.py``. Nothing here needs a store, an
event loop or a clock: every moment is a parameter.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from runlife import (
    DEFAULT_LIFECYCLE,
    ErrorInfo,
    InvalidLifecycle,
    InvalidTransition,
    Lifecycle,
    Run,
    Status,
    Trigger,
)

t0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return t0 + timedelta(minutes=minutes)


def show(run: Run) -> None:
    print(f"run {run.id} of {run.job}: {run.status} (state {run.state}), version {run.version}")
    for step in run.history:
        print(f"  {step.at:%H:%M}  {step.from_:<9} -> {step.to:<9} {step.reason or ''}".rstrip())
    for attempt in run.attempts:
        print(f"  attempt {attempt.number}: {attempt.outcome} after {attempt.duration}")
    print(f"  duration: {run.duration}")


# 1. The default lifecycle: a backup that times out once, is retried and succeeds.
lc = DEFAULT_LIFECYCLE
run = Run.create(
    job="nightly_backup",
    at=t0,
    trigger=Trigger.SCHEDULED,
    params={"devices": ["core-rtr-01", "core-rtr-02"]},
    labels={"site": "dc1"},
)
run = lc.transition(run, Status.QUEUED, at=at(0), reason="cron fired")
run = lc.transition(run, Status.RUNNING, at=at(0))
timeout = ErrorInfo(kind="timeout", type="TimeoutError", message="cut at 300 s")
run = lc.transition(run, Status.RETRYING, at=at(5), error=timeout, due_at=at(6))
run = lc.transition(run, Status.QUEUED, at=at(6), reason="retry delay over")
run = lc.transition(run, Status.RUNNING, at=at(6))
done = lc.transition(run, Status.SUCCEEDED, at=at(9))
show(done)
assert lc.replay(done.history, lc.initial) == done.state  # the timeline replays

# Values never change: `run` is still RUNNING, and a finished run cannot move.
assert run.status is Status.RUNNING
try:
    lc.transition(done, Status.RUNNING, at=at(10))
except InvalidTransition as exc:
    print(f"refused: {exc}")

# 2. A lifecycle of your own: named states, each standing for a canonical status.
promote = Lifecycle(
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
run = Run.create(job="promote", at=t0, lifecycle=promote)
for state in ("ACTIVE", "TRIGGER"):
    run = promote.transition(run, state, at=at(1))
run = promote.transition(run, Status.RUNNING, at=at(2))  # a status enters its entry state
assert run.state == "STARTED"
run = promote.transition(run, "RUNNING", at=at(3))
run = promote.transition(run, "SUCCESS", at=at(7))
show(run)

# 3. Tables that cannot work are refused, naming the state at fault.
try:
    Lifecycle("broken", {"IDLE": "PENDING", "DONE": "SUCCEEDED"}, {"IDLE": ["DONE"]})
except InvalidLifecycle as exc:
    print(f"refused: {exc} (state {exc.state!r})")
