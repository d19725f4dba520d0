"""Ways between statuses: a run moved to a status its state has no direct move to
walks the lifecycle's one way there, and every step is recorded."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runlife import (
    CANONICAL_MOVES,
    DEFAULT_LIFECYCLE,
    InvalidLifecycle,
    InvalidTransition,
    JobSpec,
    Lifecycle,
    Run,
    Status,
)
from runlife._core.claiming import ClaimPlan, claim_moves
from runlife._core.lifecycle import shortest_ways
from runlife.testing import strategies as rls

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
S = Status

# The lifecycle of the runtime's own tests and docs: two QUEUED and two RUNNING states.
TASKS_STATES = {
    "IDLE": "PENDING",
    "ACTIVE": "QUEUED",
    "TRIGGER": "QUEUED",
    "STARTED": "RUNNING",
    "RUNNING": "RUNNING",
    "SUCCESS": "SUCCEEDED",
    "FAILED": "FAILED",
    "TERMINATED": "CANCELLED",
}
TASKS_MOVES = {
    "IDLE": ["ACTIVE", "TERMINATED"],
    "ACTIVE": ["TRIGGER", "TERMINATED"],
    "TRIGGER": ["STARTED", "TERMINATED"],
    "STARTED": ["RUNNING", "FAILED", "TERMINATED"],
    "RUNNING": ["SUCCESS", "FAILED", "TERMINATED"],
}
TASKS = Lifecycle("tasks", TASKS_STATES, TASKS_MOVES)


def run_in(lc: Lifecycle, state: str) -> Run:
    """A run of *lc* brought to *state* by moves named one by one."""
    before: dict[str, str | None] = {lc.initial: None}
    queue = deque([lc.initial])
    while queue:
        here = queue.popleft()
        for nxt in sorted(lc.allowed(here)):
            if nxt not in before:
                before[nxt] = here
                queue.append(nxt)
    steps: list[str] = []
    at: str | None = state
    while at is not None and at != lc.initial:
        steps.append(at)
        at = before[at]
    run = Run.create(job="promote", at=T0, lifecycle=lc)
    for step in reversed(steps):
        run = lc.transition(run, step, at=T0)
    assert run.state == state
    return run


def moves(run: Run, since: int = 0) -> list[tuple[str, str]]:
    return [(t.from_, t.to) for t in run.history[since:]]


# -- the runtime's walk through the tasks lifecycle ---------------------------------


def test_a_run_walks_every_state_of_the_tasks_lifecycle() -> None:
    """Moved by status only (as the runtime moves runs), a run passes IDLE, ACTIVE,
    TRIGGER, STARTED; the job's own move takes it to RUNNING; success is direct."""
    run = Run.create(job="promote", at=T0, lifecycle=TASKS)
    run = TASKS.transition(run, S.QUEUED, at=T0, reason="submitted")
    assert (run.state, run.status) == ("ACTIVE", S.QUEUED)
    claimed = TASKS.transition(run, S.RUNNING, at=T0 + timedelta(seconds=1), reason="claimed")
    assert moves(claimed, 1) == [("ACTIVE", "TRIGGER"), ("TRIGGER", "STARTED")]
    assert [t.reason for t in claimed.history[1:]] == ["claimed", "claimed"]
    assert claimed.version == run.version + 2 == 3
    assert len(claimed.attempts) == 1
    assert claimed.queued_at == T0
    started = TASKS.transition(claimed, "RUNNING", at=T0 + timedelta(seconds=2))
    done = TASKS.transition(started, S.SUCCEEDED, at=T0 + timedelta(seconds=3))
    assert moves(done) == [
        ("IDLE", "ACTIVE"),
        ("ACTIVE", "TRIGGER"),
        ("TRIGGER", "STARTED"),
        ("STARTED", "RUNNING"),
        ("RUNNING", "SUCCESS"),
    ]
    assert TASKS.replay(done.history, TASKS.initial) == "SUCCESS"
    assert [a.outcome for a in done.attempts] == ["succeeded"]


def test_a_job_that_never_moves_itself_still_ends_through_its_running_state() -> None:
    """STARTED has no move to SUCCESS: success walks STARTED -> RUNNING -> SUCCESS,
    inside the one attempt, which ends at the last step."""
    run = TASKS.transition(run_in(TASKS, "TRIGGER"), S.RUNNING, at=T0)
    done = TASKS.transition(run, S.SUCCEEDED, at=T0 + timedelta(minutes=1), reason="done")
    assert moves(done, len(run.history)) == [("STARTED", "RUNNING"), ("RUNNING", "SUCCESS")]
    assert done.attempts[0].ended_at == T0 + timedelta(minutes=1)
    assert TASKS.path("STARTED", S.SUCCEEDED) == ("RUNNING", "SUCCESS")
    assert TASKS.path("STARTED", S.FAILED) == ("FAILED",)  # a direct move wins


def test_a_walk_keeps_the_error_and_due_time_of_the_whole_move() -> None:
    from runlife import ErrorInfo

    lc = Lifecycle(
        "retrying",
        {"NEW": "QUEUED", "ON": "RUNNING", "CHECK": "RUNNING", "WAIT": "RETRYING",
         "OK": "SUCCEEDED", "KO": "FAILED"},
        {"NEW": ["ON"], "ON": ["CHECK", "KO"], "CHECK": ["OK", "WAIT", "KO"],
         "WAIT": ["NEW", "KO"]},
    )  # fmt: skip
    run = lc.transition(Run.create(job="x", at=T0, lifecycle=lc), S.RUNNING, at=T0)
    error = ErrorInfo(kind="timeout", type="TimeoutError", message="cut")
    due = T0 + timedelta(minutes=5)
    retrying = lc.transition(run, S.RETRYING, at=T0, error=error, due_at=due)
    assert moves(retrying, 1) == [("ON", "CHECK"), ("CHECK", "WAIT")]
    assert (retrying.error, retrying.due_at) == (error, due)
    assert retrying.attempts[0].outcome == "timeout"
    assert retrying.attempts[0].error == error


def test_a_status_of_the_runs_own_status_is_only_its_entry_by_a_direct_move() -> None:
    running = run_in(TASKS, "RUNNING")
    assert TASKS.path("RUNNING", S.RUNNING) == ()
    with pytest.raises(InvalidTransition, match="from RUNNING to STARTED"):
        TASKS.transition(running, S.RUNNING, at=T0)
    assert TASKS.path("RUNNING", "SUCCESS") == ("SUCCESS",)  # a state's name: its move
    assert TASKS.path("STARTED", "SUCCESS") == ()
    assert TASKS.path("STARTED", "NOWHERE") == ()


def test_no_way_is_an_invalid_transition_naming_the_entry_state() -> None:
    """IDLE reaches RUNNING only through QUEUED: a walk never passes a third status."""
    assert TASKS.path("IDLE", S.RUNNING) == ()
    with pytest.raises(InvalidTransition) as info:
        TASKS.transition(run_in(TASKS, "IDLE"), S.RUNNING, at=T0)
    assert (info.value.from_, info.value.to) == ("IDLE", "STARTED")
    assert info.value.allowed == {"ACTIVE", "TERMINATED"}


def test_the_default_lifecycle_is_unchanged() -> None:
    """Every canonical move is its own way; the spec declares no paths."""
    for source, targets in CANONICAL_MOVES.items():
        for target in Status:
            expected = (target,) if target in targets else ()
            assert DEFAULT_LIFECYCLE.path(source, target) == expected
    assert DEFAULT_LIFECYCLE.to_spec()["paths"] == {}
    assert Lifecycle.from_spec(DEFAULT_LIFECYCLE.to_spec()) is DEFAULT_LIFECYCLE


# -- declared paths -------------------------------------------------------------------

FORK_STATES = {"NEW": "QUEUED", "LEFT": "QUEUED", "RIGHT": "QUEUED", "GO": "RUNNING",
               "OK": "SUCCEEDED", "STOP": "CANCELLED"}  # fmt: skip
FORK_MOVES = {"NEW": ["LEFT", "RIGHT", "STOP"], "LEFT": ["GO", "STOP"],
              "RIGHT": ["GO", "STOP"], "GO": ["OK"]}  # fmt: skip


def test_two_shortest_ways_must_be_told_apart() -> None:
    with pytest.raises(InvalidLifecycle) as info:
        Lifecycle("fork", FORK_STATES, FORK_MOVES)
    assert info.value.state == "NEW"
    assert str(info.value) == (
        "lifecycle 'fork': 'NEW' has two shortest ways to RUNNING ('GO'), NEW -> LEFT -> GO "
        "and NEW -> RIGHT -> GO; say which with paths={'NEW': {'RUNNING': [...]}}"
    )
    lc = Lifecycle("fork", FORK_STATES, FORK_MOVES, paths={"NEW": {"RUNNING": ["RIGHT", "GO"]}})
    assert lc.path("NEW", S.RUNNING) == ("RIGHT", "GO")
    claimed = lc.transition(Run.create(job="x", at=T0, lifecycle=lc), S.RUNNING, at=T0)
    assert moves(claimed) == [("NEW", "RIGHT"), ("RIGHT", "GO")]


def test_a_declared_path_replaces_the_way_and_may_end_in_any_state_of_its_status() -> None:
    lc = Lifecycle(
        "tasks",
        TASKS_STATES,
        TASKS_MOVES,
        paths={"ACTIVE": {S.RUNNING: ["TRIGGER", "STARTED", "RUNNING"]}},
    )
    assert lc != TASKS
    assert lc.path("ACTIVE", S.RUNNING) == ("TRIGGER", "STARTED", "RUNNING")
    assert lc.path("TRIGGER", S.RUNNING) == ("STARTED",)  # each state has its own way
    claimed = lc.transition(run_in(lc, "ACTIVE"), S.RUNNING, at=T0)
    assert claimed.state == "RUNNING"
    assert len(claimed.attempts) == 1
    spec = lc.to_spec()
    assert spec["paths"] == {"ACTIVE": {"RUNNING": ["TRIGGER", "STARTED", "RUNNING"]}}
    assert Lifecycle.from_spec(spec) == lc


BAD_PATHS = {
    "unknown source": ({"NOPE": {"RUNNING": ["GO"]}}, "NOPE", "paths name unknown state 'NOPE'"),
    "not a mapping": ({"NEW": ["GO"]}, "NEW", "the paths of 'NEW' must map a status"),
    "unknown status": (
        {"NEW": {"DONE": ["GO"]}},
        "NEW",
        "a path of 'NEW' is given for unknown status 'DONE'",
    ),
    "a string": (
        {"NEW": {"RUNNING": "GO"}},
        "NEW",
        "the path of 'NEW' to RUNNING must be a list of state names, not the string 'GO'",
    ),
    "its own status": (
        {"NEW": {"QUEUED": ["LEFT"]}},
        "NEW",
        "the path of 'NEW' (QUEUED) to QUEUED is not a way to another status",
    ),
    "not canonical": (
        {"NEW": {"SUCCEEDED": ["LEFT", "GO", "OK"]}},
        "NEW",
        "the path of 'NEW' (QUEUED) to SUCCEEDED is not a way to another status: QUEUED "
        "moves to CANCELLED, RUNNING",
    ),
    "empty": ({"NEW": {"RUNNING": []}}, "NEW", "the path of 'NEW' (QUEUED) to RUNNING is empty"),
    "unknown step": (
        {"NEW": {"RUNNING": ["LEFT", "GONE"]}},
        "NEW",
        "names unknown state 'GONE'",
    ),
    "not a move": (
        {"NEW": {"RUNNING": ["GO"]}},
        "NEW",
        "moves 'NEW' -> 'GO', which is not one of its moves",
    ),
    "a third status": (
        {"LEFT": {"RUNNING": ["GO", "OK"]}},
        "LEFT",
        "passes through 'OK' (SUCCEEDED); a path goes through states of QUEUED, then of RUNNING",
    ),
    "stops short": (
        {"NEW": {"RUNNING": ["LEFT"]}},
        "NEW",
        "ends in 'LEFT' (QUEUED), not in a state of RUNNING",
    ),
}


@pytest.mark.parametrize("case", BAD_PATHS, ids=str)
def test_bad_paths_are_refused_naming_the_state(case: str) -> None:
    paths, state, message = BAD_PATHS[case]
    with pytest.raises(InvalidLifecycle) as info:
        Lifecycle("fork", FORK_STATES, FORK_MOVES, paths=paths)  # type: ignore[arg-type]
    assert info.value.state == state
    assert message in str(info.value)


def test_a_path_through_a_state_twice_is_refused() -> None:
    states = {"NEW": "QUEUED", "A": "QUEUED", "B": "QUEUED", "GO": "RUNNING", "OK": "SUCCEEDED"}
    transitions = {"NEW": ["A"], "A": ["B"], "B": ["A", "GO"], "GO": ["OK"]}
    with pytest.raises(InvalidLifecycle, match="passes through 'A' twice"):
        Lifecycle("loop", states, transitions, paths={"NEW": {"RUNNING": ["A", "B", "A"]}})


def test_a_queued_state_without_a_way_to_running_is_refused() -> None:
    states = {"NEW": "QUEUED", "STUCK": "QUEUED", "GO": "RUNNING", "OK": "SUCCEEDED",
              "STOP": "CANCELLED"}  # fmt: skip
    with pytest.raises(InvalidLifecycle) as info:
        Lifecycle("stuck", states, {"NEW": ["GO", "STUCK"], "STUCK": ["STOP"], "GO": ["OK"]})
    assert info.value.state == "STUCK"
    assert "QUEUED state 'STUCK' has no way to 'GO', the entry state of RUNNING" in str(info.value)


def test_a_version_1_lifecycle_spec_has_no_paths_and_still_reads() -> None:
    spec = TASKS.to_spec()
    old = {key: value for key, value in spec.items() if key != "paths"}
    assert Lifecycle.from_spec(old, version=1) == TASKS
    stored = {**JobSpec(lifecycle=TASKS).to_spec(), "version": 1, "lifecycle": old}
    del stored["declared"]  # version 2 on
    assert JobSpec.from_spec(stored).lifecycle == TASKS
    from runlife._core.spec import lifecycle_of

    assert lifecycle_of(stored) == TASKS
    from runlife import InvalidPolicy

    with pytest.raises(InvalidPolicy) as info:
        Lifecycle.from_spec(old)  # version 2 needs the key
    assert info.value.field == "lifecycle.paths"
    bad = {**spec, "paths": {"ACTIVE": {"RUNNING": "TRIGGER"}}}
    with pytest.raises(InvalidPolicy) as info:
        Lifecycle.from_spec(bad)
    assert info.value.field == "lifecycle.paths['ACTIVE']['RUNNING']"


# -- over generated lifecycles ---------------------------------------------------------


@given(lc=rls.lifecycles(), data=st.data())
def test_every_walk_is_legal_ends_in_its_status_and_is_the_declared_way(
    lc: Lifecycle, data: st.DataObject
) -> None:
    state = data.draw(st.sampled_from(lc.states), label="state")
    here = lc.status_of(state)
    spec = lc.to_spec()
    declared = spec["paths"].get(state, {})
    run = run_in(lc, state)
    for status in Status:
        way = lc.path(state, status)
        if not way:
            with pytest.raises(InvalidTransition):
                lc.transition(run, status, at=T0)
            continue
        moved = lc.transition(run, status, at=T0 + timedelta(seconds=1), reason="walk")
        assert moved.status is status
        assert moved.state == way[-1]
        assert moves(moved, len(run.history)) == list(zip((state, *way[:-1]), way, strict=True))
        assert moved.version == run.version + len(way)
        assert lc.replay(moved.history, lc.initial) == moved.state
        statuses = [lc.status_of(step) for step in way]
        crossing = statuses.index(status)
        assert set(statuses[:crossing]) <= {here}
        assert set(statuses[crossing:]) == {status}
        if status is here:
            assert way == (lc.entry(status),)
        elif status.value in declared:
            assert list(way) == declared[status.value]
        elif lc.entry(status) in lc.allowed(state):
            assert way == (lc.entry(status),)
        else:
            status_of = {s: lc.status_of(s) for s in lc.states}
            moves_of = {s: lc.allowed(s) for s in lc.states}
            entry = lc.entry(status)
            assert shortest_ways(status_of, moves_of, state, status, entry, limit=3) == [way]


@given(lc=rls.lifecycles(), data=st.data())
def test_every_queued_state_is_claimable_and_a_claims_moves_are_its_way(
    lc: Lifecycle, data: st.DataObject
) -> None:
    queued = [s for s in lc.states if lc.status_of(s) is S.QUEUED]
    if not queued or S.RUNNING not in {lc.status_of(s) for s in lc.states}:
        return
    state = data.draw(st.sampled_from(queued))
    run = run_in(lc, state)
    plan = ClaimPlan("w1", {"promote": lc}, {}, now=T0, limit=1)
    claimed = plan.offer(run)
    assert claimed is not None
    assert claimed.status is S.RUNNING
    assert tuple(t.to for t in claim_moves(claimed, "w1")) == lc.path(state, S.RUNNING)
    assert claimed.attempts[-1].outcome is None


@given(lc=rls.lifecycles())
def test_generated_lifecycles_read_back_equal_with_their_paths(lc: Lifecycle) -> None:
    back = Lifecycle.from_spec(lc.to_spec())
    assert back == lc
    for state in lc.states:
        for status in Status:
            assert back.path(state, status) == lc.path(state, status)
