"""The canonical lifecycle, custom lifecycles and what `Lifecycle` refuses."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest

from runlife import (
    CANONICAL_MOVES,
    DEFAULT_LIFECYCLE,
    ErrorInfo,
    InvalidLifecycle,
    InvalidTransition,
    Lifecycle,
    Run,
    Status,
    Transition,
)

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
S = Status

# The canonical moves, written out again here rather than read from the code.
MOVES_TABLE = """
PENDING  -> QUEUED | RUNNING | SKIPPED | CANCELLED
QUEUED   -> RUNNING | CANCELLED
RUNNING  -> SUCCEEDED | FAILED | CANCELLED | RETRYING | WAITING
RETRYING -> QUEUED | CANCELLED | FAILED
WAITING  -> RUNNING | RETRYING | CANCELLED | FAILED
"""
ALLOWED = {
    Status(line.split("->")[0].strip()): {Status(t.strip()) for t in line.split("->")[1].split("|")}
    for line in MOVES_TABLE.strip().splitlines()
}

# A path from PENDING to each status, to put a run there before the move under test.
PATH_TO = {
    S.PENDING: (),
    S.QUEUED: (S.QUEUED,),
    S.RUNNING: (S.QUEUED, S.RUNNING),
    S.RETRYING: (S.QUEUED, S.RUNNING, S.RETRYING),
    S.WAITING: (S.QUEUED, S.RUNNING, S.WAITING),
    S.SUCCEEDED: (S.QUEUED, S.RUNNING, S.SUCCEEDED),
    S.FAILED: (S.QUEUED, S.RUNNING, S.FAILED),
    S.CANCELLED: (S.CANCELLED,),
    S.SKIPPED: (S.SKIPPED,),
}

TASKS = Lifecycle(
    "tasks",
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


def walk(run: Run, path: tuple[str, ...], lc: Lifecycle = DEFAULT_LIFECYCLE) -> Run:
    for i, state in enumerate(path, start=1):
        run = lc.transition(run, state, at=T0 + timedelta(minutes=i))
        assert run.state == state
    return run


def fresh(**kwargs: object) -> Run:
    return Run.create(job="nightly_backup", at=T0, **kwargs)  # type: ignore[arg-type]


def snapshot(run: Run) -> dict[str, object]:
    return {f.name: getattr(run, f.name) for f in attrs.fields(Run)}


# -- the canonical table ------------------------------------------------------------


def test_canonical_moves_are_the_documented_table() -> None:
    """CANONICAL_MOVES is exactly the table written out above; terminal statuses have no exit."""
    for status in Status:
        assert CANONICAL_MOVES[status] == ALLOWED.get(status, set())
        assert DEFAULT_LIFECYCLE.allowed(status) == ALLOWED.get(status, set())
        assert status.is_terminal == (status not in ALLOWED)


@pytest.mark.parametrize(
    ("source", "target"), list(itertools.product(Status, Status)), ids=lambda s: str(s)
)
def test_transition_matrix(source: Status, target: Status) -> None:
    """Every (from, to) pair: accepted exactly when the table allows it; the old run is
    never changed; a refusal names run, from, to and the allowed targets."""
    run = walk(fresh(), PATH_TO[source])
    assert run.status is source
    before = snapshot(run)
    if target in ALLOWED.get(source, set()):
        moved = DEFAULT_LIFECYCLE.transition(run, target, at=T0 + timedelta(hours=1))
        assert moved.status is target
        assert moved.state == target
        assert moved.history[-1] == Transition(
            from_=source, to=target, at=T0 + timedelta(hours=1), reason=None
        )
        assert moved.version == run.version + 1
    else:
        with pytest.raises(InvalidTransition) as info:
            DEFAULT_LIFECYCLE.transition(run, target, at=T0 + timedelta(hours=1))
        exc = info.value
        assert (exc.run_id, exc.from_, exc.to) == (run.id, source, target)
        assert exc.allowed == ALLOWED.get(source, set())
        message = str(exc)
        assert run.id in message
        assert f"from {source} to {target}" in message
        for allowed in ALLOWED.get(source, ()):
            assert str(allowed) in message.split("allowed from")[1]
        if source.is_terminal:
            assert "terminal" in message
    assert snapshot(run) == before


def test_states_of_default_lifecycle_are_the_status_members() -> None:
    """DEFAULT_LIFECYCLE's states are Status members; allowed() returns a frozenset of them."""
    assert DEFAULT_LIFECYCLE.states == tuple(Status)
    allowed = DEFAULT_LIFECYCLE.allowed(S.QUEUED)
    assert isinstance(allowed, frozenset)
    assert all(type(state) is Status for state in allowed)
    assert DEFAULT_LIFECYCLE.initial is S.PENDING
    assert DEFAULT_LIFECYCLE.terminal_states == {S.SUCCEEDED, S.FAILED, S.CANCELLED, S.SKIPPED}


def test_status_given_as_plain_string() -> None:
    """A status name as a plain string works like the Status member."""
    run = DEFAULT_LIFECYCLE.transition(fresh(), "QUEUED", at=T0)
    assert run.status is S.QUEUED
    assert run.state == S.QUEUED


def test_unknown_target_is_an_invalid_transition() -> None:
    """A target that is neither a state nor a status is refused as a transition."""
    with pytest.raises(InvalidTransition, match="cannot move from PENDING to BOGUS"):
        DEFAULT_LIFECYCLE.transition(fresh(), "BOGUS", at=T0)


def test_run_of_another_lifecycle_is_refused() -> None:
    """A run whose state the lifecycle does not know raises InvalidLifecycle naming it."""
    run = fresh(lifecycle=TASKS)
    with pytest.raises(InvalidLifecycle, match="'IDLE' is not a state of lifecycle 'default'"):
        DEFAULT_LIFECYCLE.transition(run, S.CANCELLED, at=T0)


# -- what a move records ----------------------------------------------------------


def test_attempts_open_on_running_and_close_on_leaving() -> None:
    """Entering RUNNING opens attempt n+1; leaving RUNNING/WAITING closes it with its outcome."""
    lc = DEFAULT_LIFECYCLE
    timeout = ErrorInfo(kind="timeout", type="TimeoutError", message="cut at 300 s")
    run = lc.transition(fresh(), S.QUEUED, at=T0)
    run = lc.transition(run, S.RUNNING, at=T0)
    assert [(a.number, a.started_at, a.outcome) for a in run.attempts] == [(1, T0, None)]
    run = lc.transition(run, S.WAITING, at=T0 + timedelta(seconds=10))
    run = lc.transition(run, S.RUNNING, at=T0 + timedelta(seconds=20))
    assert len(run.attempts) == 1, "WAITING -> RUNNING continues the same attempt"
    run = lc.transition(run, S.RETRYING, at=T0 + timedelta(seconds=300), error=timeout)
    assert run.attempts[0].outcome == "timeout"
    assert run.attempts[0].error == timeout
    assert run.attempts[0].duration == timedelta(seconds=300)
    assert run.error == timeout
    run = lc.transition(run, S.QUEUED, at=T0 + timedelta(seconds=360))
    run = lc.transition(run, S.RUNNING, at=T0 + timedelta(seconds=360))
    assert [a.number for a in run.attempts] == [1, 2]
    assert run.attempt == 2
    done = lc.transition(run, S.SUCCEEDED, at=T0 + timedelta(seconds=400))
    assert done.attempts[-1].outcome == "succeeded"
    assert done.error is None, "success clears the error of an earlier attempt"
    cancelled = lc.transition(run, S.CANCELLED, at=T0 + timedelta(seconds=400))
    assert cancelled.attempts[-1].outcome == "cancelled"
    failed = lc.transition(run, S.FAILED, at=T0 + timedelta(seconds=400))
    assert failed.attempts[-1].outcome == "failed"


def test_timestamps_follow_the_moves() -> None:
    """queued_at is the latest entry into QUEUED, started_at the first into RUNNING,
    ended_at the entry into a terminal status; duration is None while active."""
    lc = DEFAULT_LIFECYCLE
    at = [T0 + timedelta(minutes=m) for m in (0, 1, 6, 7, 8, 12)]
    run = fresh()
    for status, moment in zip(
        (S.QUEUED, S.RUNNING, S.RETRYING, S.QUEUED, S.RUNNING), at, strict=False
    ):
        run = lc.transition(run, status, at=moment)
        assert run.duration is None
        assert run.ended_at is None
    assert run.queued_at == at[3]
    assert run.started_at == at[1]
    assert run.elapsed(at[5]) == at[5] - at[1]
    run = lc.transition(run, S.FAILED, at=at[5])
    assert run.ended_at == at[5]
    assert run.duration == at[5] - at[1] == timedelta(minutes=11)
    assert run.elapsed(at[5] + timedelta(days=1)) == run.duration


def test_duration_of_a_run_that_never_started_is_none() -> None:
    """A run cancelled while queued has an end but no start, so no duration."""
    run = walk(fresh(), (S.QUEUED, S.CANCELLED))
    assert run.ended_at is not None
    assert run.started_at is None
    assert run.duration is None


def test_earlier_moment_is_clamped_to_the_last_move() -> None:
    """A moment before the run's last move (or its creation) is taken as that moment."""
    lc = DEFAULT_LIFECYCLE
    run = lc.transition(fresh(), S.QUEUED, at=T0 - timedelta(seconds=5))
    assert run.history[-1].at == T0 == run.queued_at
    run = lc.transition(run, S.RUNNING, at=T0 + timedelta(seconds=10))
    run = lc.transition(run, S.SUCCEEDED, at=T0 + timedelta(seconds=3))
    assert run.history[-1].at == T0 + timedelta(seconds=10) == run.ended_at
    assert run.duration == timedelta(0)


def test_naive_moment_is_read_as_utc() -> None:
    """A naive datetime is read as UTC; other time zones are kept as given."""
    run = DEFAULT_LIFECYCLE.transition(fresh(), S.QUEUED, at=datetime(2026, 3, 10, 3, 0))
    assert run.history[-1].at == datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
    assert run.history[-1].at.tzinfo is not None
    paris = timezone(timedelta(hours=1))
    run = DEFAULT_LIFECYCLE.transition(
        run, S.RUNNING, at=datetime(2026, 3, 10, 4, 30, tzinfo=paris)
    )
    assert run.started_at == datetime(2026, 3, 10, 3, 30, tzinfo=UTC)


def test_due_at_is_set_anew_by_each_move() -> None:
    """due_at is what the move says, and a move that says nothing clears it."""
    lc = DEFAULT_LIFECYCLE
    later = T0 + timedelta(minutes=6)
    run = walk(fresh(), (S.QUEUED, S.RUNNING))
    run = lc.transition(run, S.RETRYING, at=T0 + timedelta(minutes=5), due_at=later)
    assert run.due_at == later
    run = lc.transition(run, S.QUEUED, at=later)
    assert run.due_at is None


def test_reason_is_recorded() -> None:
    """The reason of a move is kept in its Transition."""
    run = DEFAULT_LIFECYCLE.transition(fresh(), S.SKIPPED, at=T0, reason="upstream extract FAILED")
    assert run.history == (
        Transition(from_=S.PENDING, to=S.SKIPPED, at=T0, reason="upstream extract FAILED"),
    )


# -- replay ---------------------------------------------------------------------


def test_replay_yields_the_state_and_audits_history() -> None:
    """Replaying history from the initial state gives the run's state; a forged
    history is refused at its first bad step."""
    run = walk(fresh(), (S.QUEUED, S.RUNNING, S.RETRYING, S.QUEUED, S.RUNNING, S.SUCCEEDED))
    assert DEFAULT_LIFECYCLE.replay(run.history, DEFAULT_LIFECYCLE.initial) is S.SUCCEEDED
    assert DEFAULT_LIFECYCLE.replay(()) is S.PENDING
    forged = (*run.history, Transition(from_=S.SUCCEEDED, to=S.RUNNING, at=T0))
    with pytest.raises(InvalidTransition, match="from SUCCEEDED to RUNNING"):
        DEFAULT_LIFECYCLE.replay(forged)
    broken = (run.history[0], run.history[2])
    with pytest.raises(InvalidTransition):
        DEFAULT_LIFECYCLE.replay(broken)


# -- custom lifecycles ------------------------------------------------------------


def test_custom_lifecycle_walk() -> None:
    """IDLE -> ACTIVE -> TRIGGER -> STARTED -> RUNNING -> SUCCESS, with statuses following."""
    run = fresh(lifecycle=TASKS)
    assert (run.state, run.status) == ("IDLE", S.PENDING)
    run = walk(run, ("ACTIVE", "TRIGGER", "STARTED", "RUNNING", "SUCCESS"), TASKS)
    assert [(t.from_, t.to) for t in run.history] == [
        ("IDLE", "ACTIVE"),
        ("ACTIVE", "TRIGGER"),
        ("TRIGGER", "STARTED"),
        ("STARTED", "RUNNING"),
        ("RUNNING", "SUCCESS"),
    ]
    assert run.status is S.SUCCEEDED
    assert len(run.attempts) == 1, "STARTED -> RUNNING stays inside one attempt"
    assert TASKS.replay(run.history, TASKS.initial) == "SUCCESS"


def test_status_target_enters_the_entry_state() -> None:
    """A Status target means that status's entry state, even when another state is
    named like the status (the runtime moves runs by canonical status)."""
    run = walk(fresh(lifecycle=TASKS), ("ACTIVE", "TRIGGER"), TASKS)
    run = TASKS.transition(run, S.RUNNING, at=T0 + timedelta(hours=1))
    assert run.state == "STARTED"
    assert run.status is S.RUNNING
    assert run.attempts[-1].number == 1
    run = TASKS.transition(run, "RUNNING", at=T0 + timedelta(hours=1))
    assert run.state == "RUNNING", "a plain string names the state"
    with pytest.raises(InvalidTransition, match="from RUNNING to STARTED"):
        TASKS.transition(run, S.RUNNING, at=T0 + timedelta(hours=1))
    failed = TASKS.transition(run, S.FAILED, at=T0 + timedelta(hours=2))
    assert failed.state == "FAILED"
    assert failed.status is S.FAILED


def test_status_absent_from_lifecycle_is_an_invalid_transition() -> None:
    """Moving to a status the lifecycle does not use is refused, naming the allowed states."""
    run = walk(fresh(lifecycle=TASKS), ("ACTIVE", "TRIGGER", "STARTED"), TASKS)
    with pytest.raises(InvalidTransition) as info:
        TASKS.transition(run, S.WAITING, at=T0)
    assert info.value.allowed == {"RUNNING", "FAILED", "TERMINATED"}


def test_entries_and_questions() -> None:
    """entry(), status_of(), resolve() and entries= overrides."""
    assert TASKS.entry(S.PENDING) == "IDLE"
    assert TASKS.entry("RUNNING") == "STARTED"
    assert TASKS.status_of("TERMINATED") is S.CANCELLED
    assert TASKS.resolve(S.RUNNING) == "STARTED"
    assert TASKS.resolve("RUNNING") == "RUNNING"
    assert TASKS.resolve("QUEUED") == "TRIGGER"
    with pytest.raises(InvalidLifecycle, match="no state of status 'WAITING'") as info:
        TASKS.entry("WAITING")
    assert info.value.state == "WAITING"
    with pytest.raises(InvalidLifecycle, match="'NOPE' is not a state"):
        TASKS.status_of("NOPE")
    with pytest.raises(InvalidLifecycle, match="'NOPE' is not a state"):
        TASKS.allowed("NOPE")
    lc = Lifecycle(
        "tasks",
        {"A": "PENDING", "B": "QUEUED", "C": "QUEUED", "D": "CANCELLED"},
        {"A": ["B", "C"], "B": ["D"], "C": ["D"]},
        entries={S.QUEUED: "C"},
    )
    assert lc.entry(S.QUEUED) == "C"
    assert lc.transition(fresh(lifecycle=lc), S.QUEUED, at=T0).state == "C"


def test_default_initial_is_the_pending_entry() -> None:
    """Without initial=, a lifecycle starts in PENDING's entry state, else its first state."""
    assert TASKS.initial == "IDLE"
    later = Lifecycle(
        "q",
        {"GO": "RUNNING", "ENQ": "PENDING", "WAIT": "PENDING", "OK": "SUCCEEDED"},
        {"ENQ": ["WAIT"], "WAIT": ["GO"], "GO": ["OK"]},
    )
    assert later.initial == "ENQ"
    queued = Lifecycle("q", {"WAIT": "QUEUED", "GO": "RUNNING", "DONE": "SUCCEEDED"},
                       {"WAIT": ["GO"], "GO": ["DONE"]})  # fmt: skip
    assert queued.initial == "WAIT"
    with pytest.raises(InvalidLifecycle, match="initial state 'DONE' is CANCELLED") as info:
        Lifecycle("q", {"DONE": "CANCELLED", "WAIT": "QUEUED"}, {"WAIT": ["DONE"]})
    assert info.value.state == "DONE"


def test_equality_and_repr() -> None:
    """Lifecycles compare by their table; repr lists the states."""
    twin = Lifecycle("default", {s: s for s in Status}, dict(CANONICAL_MOVES.items()))
    assert twin == DEFAULT_LIFECYCLE
    assert hash(twin) == hash(DEFAULT_LIFECYCLE)
    assert TASKS != DEFAULT_LIFECYCLE
    assert (
        repr(TASKS)
        == "<Lifecycle 'tasks': IDLE ACTIVE TRIGGER STARTED RUNNING SUCCESS FAILED TERMINATED>"
    )


def test_mermaid_of_default_lifecycle() -> None:
    """to_mermaid() draws every move, the start and the terminal exits."""
    text = DEFAULT_LIFECYCLE.to_mermaid()
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert lines[1] == "    [*] --> PENDING"
    moves = {tuple(line.split(" --> ")) for line in lines[2:]}
    expected = {("    " + a, b) for a, targets in ALLOWED.items() for b in targets}
    expected |= {("    " + s, "[*]") for s in Status if s.is_terminal}
    assert moves == expected


# -- what Lifecycle refuses -------------------------------------------------------

REFUSED = {
    "unreachable state": (
        {"A": "PENDING", "B": "QUEUED", "C": "CANCELLED"},
        {"A": ["C"], "B": ["C"]},
        {},
        "B",
        "'B' is unreachable from the initial state 'A'",
    ),
    "cannot end": (
        {"A": "PENDING", "B": "QUEUED", "C": "QUEUED", "D": "CANCELLED"},
        {"A": ["B", "D"], "B": ["C"], "C": ["B"]},
        {},
        "B",
        "'B' (QUEUED) cannot reach a terminal state",
    ),
    "terminal with exit": (
        {"A": "PENDING", "B": "CANCELLED", "C": "CANCELLED"},
        {"A": ["B"], "B": ["C"]},
        {},
        "B",
        "terminal state 'B' (CANCELLED) has an exit to 'C'",
    ),
    "unknown status": (
        {"A": "PENDING", "B": "DONE"},
        {"A": ["B"]},
        {},
        "B",
        "'B' maps onto unknown status 'DONE'",
    ),
    "unknown source state": (
        {"A": "PENDING", "B": "CANCELLED"},
        {"A": ["B"], "Z": ["B"]},
        {},
        "Z",
        "transitions name unknown state 'Z'",
    ),
    "unknown target state": (
        {"A": "PENDING", "B": "CANCELLED"},
        {"A": ["B", "Z"]},
        {},
        "Z",
        "'A' moves to unknown state 'Z'",
    ),
    "non-canonical move": (
        {"A": "PENDING", "B": "SUCCEEDED"},
        {"A": ["B"]},
        {},
        "A",
        "'A' (PENDING) -> 'B' (SUCCEEDED) is not a canonical move; PENDING may move to "
        "CANCELLED, QUEUED, RUNNING, SKIPPED",
    ),
    "backwards canonical move": (
        {"A": "PENDING", "B": "QUEUED", "C": "CANCELLED"},
        {"A": ["B"], "B": ["A", "C"]},
        {},
        "B",
        "'B' (QUEUED) -> 'A' (PENDING) is not a canonical move",
    ),
    "initial not a state": (
        {"A": "PENDING", "B": "CANCELLED"},
        {"A": ["B"]},
        {"initial": "Z"},
        "Z",
        "initial state 'Z' is not one of its states",
    ),
    "initial is terminal": (
        {"A": "PENDING", "B": "CANCELLED"},
        {"A": ["B"]},
        {"initial": "B"},
        "B",
        "initial state 'B' is CANCELLED",
    ),
    "initial is running": (
        {"A": "RUNNING", "B": "FAILED"},
        {"A": ["B"]},
        {},
        "A",
        "initial state 'A' is RUNNING; a new run starts in a state of status PENDING or QUEUED",
    ),
    "entry of another status": (
        {"A": "PENDING", "B": "CANCELLED"},
        {"A": ["B"]},
        {"entries": {"QUEUED": "A"}},
        "A",
        "entry state 'A' for QUEUED must be a state of status QUEUED",
    ),
    "entry for unknown status": (
        {"A": "PENDING", "B": "CANCELLED"},
        {"A": ["B"]},
        {"entries": {"DONE": "B"}},
        "B",
        "entry state 'B' is given for unknown status 'DONE'",
    ),
    "moves as a string": (
        {"A": "PENDING", "B": "CANCELLED"},
        {"A": "B"},
        {},
        "A",
        "the moves of 'A' must be a collection of state names, not the string 'B'",
    ),
    "empty state name": (
        {"": "PENDING"},
        {},
        {},
        "",
        "state names must be non-empty strings",
    ),
}


@pytest.mark.parametrize("case", REFUSED, ids=str)
def test_refused_lifecycles(case: str) -> None:
    """Each refused shape raises InvalidLifecycle whose message and .state name the state."""
    states, moves, kwargs, state, message = REFUSED[case]
    with pytest.raises(InvalidLifecycle) as info:
        Lifecycle("tasks", states, moves, **kwargs)  # type: ignore[arg-type]
    assert info.value.state == state
    assert message in str(info.value)
    assert "lifecycle 'tasks'" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_empty_lifecycle_is_refused() -> None:
    """A lifecycle needs states."""
    with pytest.raises(InvalidLifecycle, match="has no states"):
        Lifecycle("empty", {}, {})


def test_moves_within_a_status_are_free() -> None:
    """Any move between two states of one status is accepted (the host's own steps)."""
    lc = Lifecycle(
        "steps",
        {"PREP": "RUNNING", "IDLE": "PENDING", "COPY": "RUNNING", "CHECK": "RUNNING",
         "OK": "SUCCEEDED"},
        {"IDLE": ["PREP"], "PREP": ["COPY"], "COPY": ["CHECK", "PREP"], "CHECK": ["OK", "COPY"]},
    )  # fmt: skip
    assert lc.initial == "IDLE"
    assert lc.entry(S.RUNNING) == "PREP"
    run = walk(fresh(lifecycle=lc), ("PREP", "COPY", "PREP", "COPY", "CHECK", "OK"), lc)
    assert run.status is S.SUCCEEDED
    assert len(run.attempts) == 1
