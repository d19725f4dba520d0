"""`Run.create`: what a new run holds, and what it refuses."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runlife import (
    DEFAULT_LIFECYCLE,
    InvalidLifecycle,
    InvalidValue,
    ItemCounts,
    Lifecycle,
    NotSerializable,
    Run,
    Status,
    Trigger,
)
from runlife.testing import strategies
from runlife.testing.strategies import lifecycles, runs

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)

json_values = strategies.json_values()


def test_new_run_defaults() -> None:
    """A new run is PENDING in the default lifecycle, version 0, with nothing recorded."""
    run = Run.create(job="nightly_backup", at=T0)
    assert run.status is Status.PENDING
    assert run.state is Status.PENDING
    assert run.trigger is Trigger.ADHOC
    assert (run.version, run.attempts, run.history, run.warnings) == (0, (), (), ())
    assert run.params == {}
    assert run.labels == {}
    assert run.progress == ItemCounts()
    assert run.created_at == T0
    assert (run.queued_at, run.started_at, run.ended_at, run.due_at) == (None, None, None, None)
    assert run.attempt == 0
    assert not run.is_terminal
    assert not run.has_warnings
    assert run.parent_id is None
    assert run.root_id is None


@given(params=st.dictionaries(strategies.texts(), json_values, max_size=5))
def test_json_params_are_accepted_and_copied(params: dict[str, object]) -> None:
    """Any JSON mapping is accepted; the run holds a copy that survives a JSON round trip."""
    run = Run.create(job="j", at=T0, params=params)
    assert run.params == params
    assert run.params is not params
    assert json.loads(json.dumps(run.params)) == run.params


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"when": datetime(2026, 1, 1)}, "params['when']"),
        ({"devices": ["core-rtr-01", {1, 2}]}, "params['devices'][1]"),
        ({"nested": {"deep": [object()]}}, "params['nested']['deep'][0]"),
        ({"ratio": math.nan}, "params['ratio']"),
        ({"ratio": math.inf}, "params['ratio']"),
        ({"map": {1: "a"}}, "params['map'] key 1"),
        ({"raw": b"bytes"}, "params['raw']"),
    ],
)
def test_non_json_params_are_refused_naming_the_path(params: dict[str, object], path: str) -> None:
    """NotSerializable names the path to the first non-JSON value (and is a TypeError)."""
    with pytest.raises(NotSerializable) as info:
        Run.create(job="j", at=T0, params=params)
    assert info.value.field == path
    assert str(info.value).startswith(f"{path} is not JSON-serialisable")
    assert isinstance(info.value, TypeError)


def test_labels_must_be_str_to_str() -> None:
    """Labels are str -> str; anything else is refused naming the label."""
    run = Run.create(job="j", at=T0, labels={"site": "dc1", "device": "core-rtr-01"})
    assert run.labels == {"site": "dc1", "device": "core-rtr-01"}
    with pytest.raises(NotSerializable, match=r"labels\['port'\]") as info:
        Run.create(job="j", at=T0, labels={"port": 22})  # type: ignore[dict-item]
    assert info.value.value == 22
    with pytest.raises(NotSerializable, match=r"labels\[1\]"):
        Run.create(job="j", at=T0, labels={1: "x"})  # type: ignore[dict-item]


def test_labels_are_copied() -> None:
    """Changing the caller's dict afterwards does not change the run."""
    labels = {"site": "dc1"}
    run = Run.create(job="j", at=T0, labels=labels)
    labels["site"] = "dc2"
    assert run.labels == {"site": "dc1"}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"job": ""}, "job"),
        ({"job": 3}, "job"),
        ({"job": "j", "priority": 1.5}, "priority"),
        ({"job": "j", "priority": True}, "priority"),
        ({"job": "j", "initial": Status.SUCCEEDED}, "initial"),
        ({"job": "j", "initial": Status.RUNNING}, "initial"),
        ({"job": "j", "initial": "NOWHERE"}, "initial"),
        ({"job": "j", "priority": 2**31}, "priority"),
        ({"job": "j\x00"}, "job"),
        ({"job": "j", "at": "2026-01-01"}, "at"),
        ({"job": "j", "at": datetime(9999, 12, 31, tzinfo=UTC)}, "at"),
        ({"job": "j", "scheduled_for": 1}, "scheduled_for"),
        ({"job": "j", "idempotency_key": 1}, "idempotency_key"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], field: str) -> None:
    """Bad arguments raise InvalidValue naming the field: an empty job, a priority
    that is not a 32-bit int, a non-waiting initial status, a moment that is not a
    datetime in range."""
    kwargs = {"at": T0, **kwargs}
    with pytest.raises(InvalidValue) as info:
        Run.create(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_initial_queued_sets_queued_at() -> None:
    """A run created straight into QUEUED was queued at its creation."""
    run = Run.create(job="j", at=T0, initial=Status.QUEUED)
    assert run.status is Status.QUEUED
    assert run.queued_at == T0


def test_naive_creation_time_is_utc() -> None:
    """A naive *at* is read as UTC."""
    run = Run.create(job="j", at=datetime(2026, 3, 10, 2, 0), scheduled_for=datetime(2026, 3, 10))
    assert run.created_at == T0
    assert run.scheduled_for == datetime(2026, 3, 10, tzinfo=UTC)
    assert run.due_at == run.scheduled_for


def test_trigger_from_text() -> None:
    """The trigger may be given by name."""
    assert Run.create(job="j", at=T0, trigger="SCHEDULED").trigger is Trigger.SCHEDULED  # type: ignore[arg-type]


def test_parent_and_root_ids() -> None:
    """A retry points at its parent, and every run of the chain at the first run."""
    first = Run.create(job="j", at=T0)
    second = Run.create(job="j", at=T0, parent=first, trigger=Trigger.RETRY)
    third = Run.create(job="j", at=T0, parent=second, trigger=Trigger.RERUN)
    assert (second.parent_id, second.root_id) == (first.id, first.id)
    assert (third.parent_id, third.root_id) == (second.id, first.id)
    assert len({first.id, second.id, third.id}) == 3


def test_custom_lifecycle_initial() -> None:
    """A run of a custom lifecycle starts in its initial state, or in a given one."""
    lc = Lifecycle(
        "tasks",
        {"IDLE": "PENDING", "ACTIVE": "PENDING", "TRIGGER": "QUEUED", "TERMINATED": "CANCELLED"},
        {"IDLE": ["ACTIVE"], "ACTIVE": ["TRIGGER"], "TRIGGER": ["TERMINATED"]},
    )
    run = Run.create(job="j", at=T0, lifecycle=lc)
    assert (run.state, run.status) == ("IDLE", Status.PENDING)
    assert Run.create(job="j", at=T0, lifecycle=lc, initial="ACTIVE").state == "ACTIVE"
    queued = Run.create(job="j", at=T0, lifecycle=lc, initial=Status.QUEUED)
    assert (queued.state, queued.status) == ("TRIGGER", Status.QUEUED)
    with pytest.raises(InvalidLifecycle, match="no state of status 'RUNNING'"):
        Run.create(job="j", at=T0, lifecycle=lc, initial=Status.RUNNING)


def test_duration_and_elapsed() -> None:
    """duration is None while active; elapsed counts from start (or creation) to now or end."""
    lc = DEFAULT_LIFECYCLE
    run = Run.create(job="j", at=T0)
    assert run.elapsed(T0 + timedelta(minutes=3)) == timedelta(minutes=3)
    run = lc.transition(run, Status.QUEUED, at=T0)
    run = lc.transition(run, Status.RUNNING, at=T0 + timedelta(minutes=1))
    assert run.duration is None
    assert run.elapsed(T0 + timedelta(minutes=6)) == timedelta(minutes=5)
    assert run.elapsed(datetime(2026, 3, 10, 2, 6)) == timedelta(minutes=5), "naive now is UTC"
    run = lc.transition(run, Status.SUCCEEDED, at=T0 + timedelta(minutes=4))
    assert run.duration == timedelta(minutes=3)
    assert run.elapsed(T0 + timedelta(hours=5)) == timedelta(minutes=3)


@given(runs(lifecycle=st.one_of(st.just(DEFAULT_LIFECYCLE), lifecycles())))
def test_generated_runs_are_consistent(run: Run) -> None:
    """Runs from the public strategy are what a store may hold: version counts history,
    status matches state, duration only when over."""
    assert run.version == len(run.history)
    assert (run.duration is not None) == (run.is_terminal and run.started_at is not None)
    assert run.id
