"""The job spec: every policy value's JSON form reads back equal, a newer or malformed
spec is refused naming the key, and a process without the host's code decides alike."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runlife import (
    DEFAULT_LIFECYCLE,
    Cron,
    DependencyCycle,
    ErrorInfo,
    Every,
    InvalidLifecycle,
    InvalidPolicy,
    InvalidWorkflow,
    JobSpec,
    Lifecycle,
    Limits,
    Quota,
    Retry,
    RunlifeError,
    Status,
    Timeout,
    TriggerRule,
    Workflow,
)
from runlife._core.schedule import schedule_from_spec
from runlife._core.spec import ABSENT, SPEC_VERSION, lifecycle_of
from runlife.testing import strategies as rls

TASKS = Lifecycle(
    "tasks",
    {
        "IDLE": "PENDING",
        "TRIGGER": "QUEUED",
        "STARTED": "RUNNING",
        "RUNNING": "RUNNING",
        "SUCCESS": "SUCCEEDED",
        "FAILED": "FAILED",
        "TERMINATED": "CANCELLED",
    },
    {
        "IDLE": ["TRIGGER"],
        "TRIGGER": ["STARTED", "TERMINATED"],
        "STARTED": ["RUNNING", "FAILED", "TERMINATED"],
        "RUNNING": ["SUCCESS", "FAILED", "TERMINATED"],
    },
)


class Outer:
    class Nested(Exception):
        """An exception class whose qualified name has a dot."""


def plain_json(value: object, path: str = "spec") -> None:
    """Assert that *value* is made of exactly str, int, float, bool, None, lists and
    str-keyed dicts (no tuples, enum members or other str subclasses)."""
    kind = type(value)
    if value is None or kind in (str, int, float, bool):
        return
    if isinstance(value, list) and kind is list:
        for i, item in enumerate(value):
            plain_json(item, f"{path}[{i}]")
        return
    assert kind is dict, f"{path} is a {kind.__name__}"
    assert isinstance(value, dict)
    for key, item in value.items():
        assert type(key) is str, f"{path} has the key {key!r}"
        plain_json(item, f"{path}[{key!r}]")


def json_round_trip(spec: dict[str, Any]) -> dict[str, Any]:
    """*spec* through JSON text, asserting that nothing changed on the way."""
    plain_json(spec)
    again: dict[str, Any] = json.loads(json.dumps(spec, allow_nan=False))
    assert again == spec
    return again


# -- round trips ----------------------------------------------------------------


@given(rls.lifecycles())
def test_lifecycle_reads_back_equal_with_its_state_order_and_moves(lc: Lifecycle) -> None:
    back = Lifecycle.from_spec(json_round_trip(lc.to_spec()))
    assert back == lc
    assert back.states == lc.states
    assert back.initial == lc.initial
    for state in lc.states:
        assert back.allowed(state) == lc.allowed(state)
        assert back.status_of(state) is lc.status_of(state)
    for status in {lc.status_of(s) for s in lc.states}:
        assert back.entry(status) == lc.entry(status)


def test_default_lifecycle_reads_back_as_itself_with_status_members_as_states() -> None:
    back = Lifecycle.from_spec(json_round_trip(DEFAULT_LIFECYCLE.to_spec()))
    assert back is DEFAULT_LIFECYCLE
    assert all(type(state) is Status for state in back.states)


def test_a_spec_equal_to_the_default_lifecycle_reads_as_the_default_itself() -> None:
    spec = DEFAULT_LIFECYCLE.to_spec()
    spec["states"].reverse()
    spec["transitions"] = {k: list(reversed(v)) for k, v in spec["transitions"].items()}
    assert Lifecycle.from_spec(spec) is DEFAULT_LIFECYCLE


def test_custom_lifecycle_spec_lists_states_in_order_with_their_statuses() -> None:
    spec = TASKS.to_spec()
    assert spec["states"][:3] == [
        {"name": "IDLE", "status": "PENDING"},
        {"name": "TRIGGER", "status": "QUEUED"},
        {"name": "STARTED", "status": "RUNNING"},
    ]
    assert spec["transitions"]["TRIGGER"] == ["STARTED", "TERMINATED"]
    assert spec["initial"] == "IDLE"
    assert spec["entries"]["RUNNING"] == "STARTED"
    assert Lifecycle.from_spec(spec) == TASKS


@given(rls.retries())
def test_retry_reads_back_equal(policy: Retry) -> None:
    assert Retry.from_spec(json_round_trip(policy.to_spec())) == policy


@given(rls.timeouts())
def test_timeout_reads_back_equal(timeout: Timeout) -> None:
    assert Timeout.from_spec(json_round_trip(timeout.to_spec())) == timeout


MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(rls.schedules(), MOMENTS)
def test_schedule_reads_back_equal_and_fires_at_the_same_times(
    schedule: Cron | Every, moment: datetime
) -> None:
    back = schedule_from_spec(json_round_trip(schedule.to_spec()))
    assert back == schedule
    assert type(back) is type(schedule)
    assert back.next_after(moment) == schedule.next_after(moment)


@given(rls.quotas())
def test_quota_reads_back_equal(quota: Quota) -> None:
    back = Quota.from_spec(json_round_trip(quota.to_spec()))
    assert back == quota
    assert str(back) == str(quota)


@given(rls.limits())
def test_limits_read_back_equal(limits: Limits) -> None:
    assert Limits.from_spec(json_round_trip(limits.to_spec())) == limits


@given(rls.dags())
def test_workflow_reads_back_equal_with_its_node_order_and_rules(wf: Workflow) -> None:
    back = Workflow.from_spec(json_round_trip(wf.to_spec()))
    assert back == wf
    assert back.nodes == wf.nodes
    assert back.rules == wf.rules
    assert set(back.edges) == set(wf.edges)


@given(rls.job_specs())
def test_job_spec_reads_back_equal(spec: JobSpec) -> None:
    assert JobSpec.from_spec(json_round_trip(spec.to_spec())) == spec


def test_job_spec_of_a_job_without_policy_means_one_attempt_and_no_limits() -> None:
    spec = JobSpec()
    assert spec.lifecycle is DEFAULT_LIFECYCLE
    assert spec.retry.max_attempts == 1
    assert spec.retry.next_delay(1, ValueError("boom")) is None
    assert spec.timeout == Timeout()
    assert spec.schedule is None
    assert spec.limits == Limits()
    assert spec.items_fail_run is None
    assert spec.queued is True
    assert spec.workflow is None
    assert JobSpec.from_spec(json_round_trip(spec.to_spec())) == spec


def test_job_spec_writes_its_version() -> None:
    assert JobSpec().to_spec()["version"] == SPEC_VERSION == 2


def test_a_version_1_spec_reads_as_one_with_nothing_declared() -> None:
    """Version 1 had no ``declared`` key; version 2 requires it."""
    spec = _full_spec()
    old = {**spec, "version": 1, "lifecycle": dict(spec["lifecycle"])}
    del old["declared"]
    del old["lifecycle"]["paths"]
    assert JobSpec.from_spec(old) == JobSpec.from_spec(spec)
    with pytest.raises(InvalidPolicy) as err:
        JobSpec.from_spec({**old, "declared": {}})
    assert (err.value.field, err.value.value) == ("declared", {})
    with pytest.raises(InvalidPolicy) as err:
        JobSpec.from_spec({**old, "version": 2})
    assert (err.value.field, err.value.value) == ("declared", ABSENT)


# -- policy set while the job runs ------------------------------------------------------


def test_with_policy_sets_fields_and_remembers_what_the_job_declares() -> None:
    declared = JobSpec(retry=Retry(max_attempts=3), items_fail_run=0.5)
    spec = declared.with_policy(retry=Retry(max_attempts=5), items_fail_run=None)
    assert (spec.retry.max_attempts, spec.items_fail_run) == (5, None)
    assert spec.declared == {"retry": Retry(max_attempts=3), "items_fail_run": 0.5}
    # Setting a field again keeps the job's own declaration, not the value it replaces.
    again = spec.with_policy(retry=Retry(max_attempts=7), timeout=Timeout(run=60))
    assert again.declared == {
        "retry": Retry(max_attempts=3),
        "items_fail_run": 0.5,
        "timeout": Timeout(),
    }
    assert JobSpec.from_spec(json_round_trip(again.to_spec())) == again
    back = again.with_policy(reset=["retry", "timeout", "items_fail_run"])
    assert back == declared
    assert spec.with_policy() == spec
    assert spec.with_policy(reset=["limits"]) == spec  # a field never set: nothing to reset


def test_redeclared_keeps_the_fields_set_over_a_new_declaration() -> None:
    stored = JobSpec(retry=Retry(max_attempts=3)).with_policy(limits=Limits(max_concurrency=1))
    code = JobSpec(retry=Retry(max_attempts=4), limits=Limits(max_concurrency=8), queued=False)
    now = stored.redeclared(code)
    assert now.retry == Retry(max_attempts=4)  # not set: the new declaration wins
    assert now.limits == Limits(max_concurrency=1)  # set: kept
    assert now.queued is False
    assert now.declared == {"limits": Limits(max_concurrency=8)}
    assert now.with_policy(reset=["limits"]) == code
    assert JobSpec().redeclared(code) is code


@pytest.mark.parametrize(
    ("kwargs", "field", "value"),
    [
        ({"retry": 3}, "retry", 3),
        ({"timeout": 300}, "timeout", 300),
        ({"limits": {"max_concurrency": 2}}, "limits", {"max_concurrency": 2}),
        ({"items_fail_run": 2}, "items_fail_run", 2),
        ({"reset": ["queued"]}, "reset", "queued"),
        ({"reset": "retry"}, "reset", "retry"),
        ({"retry": Retry(), "reset": ["retry"]}, "reset", "retry"),
    ],
)
def test_with_policy_refuses_bad_values_naming_the_field(
    kwargs: dict[str, Any], field: str, value: object
) -> None:
    with pytest.raises(InvalidPolicy) as err:
        JobSpec().with_policy(**kwargs)
    assert (err.value.field, err.value.value) == (field, value)


def test_declared_is_checked_like_the_fields() -> None:
    with pytest.raises(InvalidPolicy) as err:
        JobSpec(declared={"queued": True})
    assert (err.value.field, err.value.value) == ("declared", "queued")
    with pytest.raises(InvalidPolicy) as err:
        JobSpec(declared={"items_fail_run": 7})
    assert (err.value.field, err.value.value) == ("declared.items_fail_run", 7)


def test_workflows_are_equal_whatever_their_mapping_order_and_unequal_otherwise() -> None:
    a = Workflow("w", {"x": [], "y": ["x"], "z": ["x", "y"]}, rules={"z": "ALL_DONE"})
    b = Workflow("w", {"z": ["y", "x"], "y": ["x"], "x": []}, rules={"z": TriggerRule.ALL_DONE})
    assert a == b
    assert hash(a) == hash(b)
    assert a != Workflow("w", {"x": [], "y": ["x"], "z": ["y"]}, rules={"z": "ALL_DONE"})
    assert a != Workflow("w", {"x": [], "y": ["x"], "z": ["x", "y"]})
    assert a != Workflow("v", {"x": [], "y": ["x"], "z": ["x", "y"]}, rules={"z": "ALL_DONE"})


# -- exception classes by name ------------------------------------------------------


def test_retry_names_exception_classes_by_module_and_qualified_name() -> None:
    policy = Retry(retry_on=(TimeoutError, json.JSONDecodeError), give_up_on=(Outer.Nested,))
    spec = policy.to_spec()
    assert spec["retry_on"] == ["builtins.TimeoutError", "json.decoder.JSONDecodeError"]
    assert spec["give_up_on"] == [f"{__name__}:Outer.Nested"]
    back = Retry.from_spec(spec)
    assert back.retry_on == (TimeoutError, json.JSONDecodeError)
    assert back.give_up_on == (Outer.Nested,)


def _class_in_missing_module(name: str) -> type[Exception]:
    return type(name, (Exception,), {"__module__": "runlife_nowhere.errors", "__qualname__": name})


ERROR_TYPES = ("Flaky", "Fatal", "Other", "ValueError", "TimeoutError", "KeyError", "Outer.Flaky")
KINDS = ("error", "timeout", "abandoned", "interrupted", "cancelled", "items")


@given(
    retry_on=st.lists(st.sampled_from(("Flaky", "Exception", "OSError")), unique=True),
    give_up_on=st.lists(st.sampled_from(("Fatal", "Flaky", "ConnectionError")), unique=True),
    kind=st.sampled_from(KINDS),
    error_type=st.sampled_from(ERROR_TYPES),
    retry_abandoned=st.booleans(),
)
def test_retry_whose_classes_do_not_import_decides_stored_errors_like_the_original(
    retry_on: list[str],
    give_up_on: list[str],
    kind: Any,
    error_type: str,
    retry_abandoned: bool,
) -> None:
    def classes(names: list[str]) -> tuple[type[BaseException], ...]:
        known = {"Exception": Exception, "OSError": OSError, "ConnectionError": ConnectionError}
        return tuple(known.get(n) or _class_in_missing_module(n) for n in names)

    original = Retry(
        retry_on=classes(retry_on), give_up_on=classes(give_up_on), retry_abandoned=retry_abandoned
    )
    back = Retry.from_spec(json_round_trip(original.to_spec()))
    error = ErrorInfo(kind=kind, type=error_type, message="boom")
    assert back.retries(error) == original.retries(error)
    assert back.next_delay(1, error) == original.next_delay(1, error)
    assert back.to_spec() == original.to_spec()
    assert Retry.from_spec(original.to_spec()) == back


def test_retry_naming_a_class_that_does_not_import_keeps_deciding_by_its_name() -> None:
    spec = {**Retry().to_spec(), "retry_on": ["mypkg.errors.Flaky"], "give_up_on": []}
    policy = Retry.from_spec(spec)
    assert policy.retries(ErrorInfo(type="Flaky"))
    assert not policy.retries(ErrorInfo(type="Sturdy"))
    assert not policy.retries(ErrorInfo(type="ValueError"))
    assert policy.retries(ValueError("boom")) is False
    assert policy.to_spec()["retry_on"] == ["mypkg.errors.Flaky"]


def test_retry_naming_a_missing_class_of_an_importable_module_decides_by_its_name() -> None:
    policy = Retry.from_spec({**Retry().to_spec(), "give_up_on": ["json.NoSuchError"]})
    assert not policy.retries(ErrorInfo(type="NoSuchError"))
    assert policy.retries(ErrorInfo(type="JSONDecodeError"))


# -- versions -----------------------------------------------------------------------


def test_a_spec_from_a_newer_runlife_is_refused_with_advice_to_upgrade() -> None:
    newer = {**JobSpec().to_spec(), "version": 3, "a_key_of_version_3": {}}
    with pytest.raises(
        InvalidPolicy, match="spec version 3 is newer than this runlife's 2; upgrade runlife"
    ) as err:
        JobSpec.from_spec(newer)
    assert (err.value.field, err.value.value) == ("version", 3)
    with pytest.raises(InvalidPolicy, match="upgrade runlife"):
        lifecycle_of(newer)


def test_a_spec_without_a_version_is_refused() -> None:
    with pytest.raises(InvalidPolicy) as err:
        JobSpec.from_spec({})
    assert (err.value.field, err.value.value) == ("version", ABSENT)
    spec = JobSpec().to_spec()
    del spec["version"]
    with pytest.raises(InvalidPolicy, match="version"):
        JobSpec.from_spec(spec)


@pytest.mark.parametrize("version", [0, -1, "1", 1.0, True, None])
def test_a_version_that_is_not_a_positive_int_is_refused(version: object) -> None:
    with pytest.raises(InvalidPolicy) as err:
        JobSpec.from_spec({**JobSpec().to_spec(), "version": version})
    assert (err.value.field, err.value.value) == ("version", version)


# -- malformed specs ------------------------------------------------------------------


def _full_spec() -> dict[str, Any]:
    return JobSpec(
        lifecycle=TASKS,
        retry=Retry(max_attempts=3, delay=60),
        timeout=Timeout(attempt=300),
        schedule=Cron("0 2 * * *", tz="Europe/Paris"),
        limits=Limits(max_concurrency=2, per_label={"site": 1}, quota=Quota(max_runs=9, per="day")),
        workflow=Workflow("billing", {"invoice": [], "email": ["invoice"]}),
    ).to_spec()


def _set(path: tuple[object, ...], value: object) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        target: Any = spec
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _drop(path: tuple[object, ...]) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        target: Any = spec
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


MALFORMED = [
    # (how the spec is spoiled, the key path the error names, the value it names)
    (_set(("retry", "delay"), "60"), "retry.delay", "60"),
    (_set(("retry", "max_attempts"), 0), "retry.max_attempts", 0),
    (_drop(("retry", "jitter")), "retry.jitter", ABSENT),
    (_set(("retry", "delays"), 60), "retry.delays", 60),
    (_set(("retry", "retry_on"), "builtins.Exception"), "retry.retry_on", "builtins.Exception"),
    (_set(("retry", "retry_on"), [7]), "retry.retry_on[0]", 7),
    (_set(("retry", "give_up_on"), ["builtins.len"]), "retry.give_up_on[0]", "builtins.len"),
    (_set(("retry", "give_up_on"), ["TimeoutError"]), "retry.give_up_on[0]", "TimeoutError"),
    (_set(("retry",), None), "retry", None),
    (_set(("timeout", "attempt"), -5), "timeout.attempt", -5),
    (_set(("timeout", "run"), "1h"), "timeout.run", "1h"),
    (_drop(("timeout", "heartbeat")), "timeout.heartbeat", ABSENT),
    (_set(("schedule", "kind"), "hourly"), "schedule.kind", "hourly"),
    (_drop(("schedule", "kind")), "schedule.kind", ABSENT),
    (_set(("schedule", "expr"), "61 * * * *"), "schedule.expr", "61 * * * *"),
    (_set(("schedule", "tz"), "Mars/Olympus"), "schedule.tz", "Mars/Olympus"),
    (_set(("schedule", "grace"), -1), "schedule.grace", -1),
    (_set(("schedule",), "0 2 * * *"), "schedule", "0 2 * * *"),
    (_set(("limits", "max_concurrency"), 0), "limits.max_concurrency", 0),
    (_set(("limits", "per_label"), {"site": 0}), "limits.per_label['site']", 0),
    (_set(("limits", "quota", "per"), "fortnight"), "limits.quota.per", "fortnight"),
    (_drop(("limits", "quota", "tz")), "limits.quota.tz", ABSENT),
    (_set(("lifecycle", "name"), 5), "lifecycle.name", 5),
    (_set(("lifecycle", "states"), {"IDLE": "PENDING"}), "lifecycle.states", {"IDLE": "PENDING"}),
    (_set(("lifecycle", "states", 1), "QUEUED"), "lifecycle.states[1]", "QUEUED"),
    (_drop(("lifecycle", "states", 1, "status")), "lifecycle.states[1].status", ABSENT),
    (
        _set(("lifecycle", "transitions", "IDLE"), "TRIGGER"),
        "lifecycle.transitions['IDLE']",
        "TRIGGER",
    ),
    (
        _set(("lifecycle", "transitions", "IDLE"), [["TRIGGER"]]),
        "lifecycle.transitions['IDLE'][0]",
        ["TRIGGER"],
    ),
    (_set(("lifecycle", "initial"), None), "lifecycle.initial", None),
    (_set(("lifecycle", "entries", "RUNNING"), 3), "lifecycle.entries['RUNNING']", 3),
    (
        _set(("workflow", "nodes", 1, "upstream"), "invoice"),
        "workflow.nodes[1].upstream",
        "invoice",
    ),
    (_set(("workflow", "nodes", 0), "invoice"), "workflow.nodes[0]", "invoice"),
    (_set(("workflow", "rules"), {"email": 1}), "workflow.rules['email']", 1),
    (_set(("items_fail_run",), 2), "items_fail_run", 2),
    (_set(("items_fail_run",), True), "items_fail_run", True),
    (_set(("queued",), "yes"), "queued", "yes"),
    (_set(("declared",), []), "declared", []),
    (_set(("declared", "queued"), True), "declared.queued", True),
    (_set(("declared", "retry"), {"max_attempts": 2}), "declared.retry.delay", ABSENT),
    (_set(("declared", "items_fail_run"), 2), "declared.items_fail_run", 2),
    (_drop(("declared",)), "declared", ABSENT),
    (_drop(("limits",)), "limits", ABSENT),
    (_set(("labels",), {}), "labels", {}),
]


@pytest.mark.parametrize(
    ("spoil", "field", "value"), MALFORMED, ids=[field for _, field, _ in MALFORMED]
)
def test_a_malformed_spec_is_refused_naming_the_key_path_and_value(
    spoil: Callable[[dict[str, Any]], None], field: str, value: object
) -> None:
    spec = _full_spec()
    spoil(spec)
    with pytest.raises(InvalidPolicy) as err:
        JobSpec.from_spec(spec)
    assert err.value.field == field
    assert err.value.value == value
    assert str(err.value).startswith(f"{field}={value!r} is invalid")


def test_a_spec_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidPolicy) as err:
        JobSpec.from_spec([1])  # type: ignore[arg-type]
    assert err.value.field == "spec"


def test_each_value_names_its_own_keys_when_read_alone() -> None:
    with pytest.raises(InvalidPolicy) as err:
        Retry.from_spec({**Retry().to_spec(), "factor": 0.5})
    assert err.value.field == "retry.factor"
    with pytest.raises(InvalidPolicy) as err:
        Limits.from_spec({**Limits(quota=Quota(max_runs=1, per="day")).to_spec(), "quota": 3})
    assert err.value.field == "limits.quota"
    with pytest.raises(InvalidPolicy) as err:
        Cron.from_spec({**Cron("* * * * *").to_spec(), "kind": "every"})
    assert err.value.field == "schedule.kind"
    with pytest.raises(InvalidPolicy) as err:
        Every.from_spec({**Every(60).to_spec(), "anchor": "yesterday"})
    assert (err.value.field, err.value.value) == ("schedule.anchor", "yesterday")


def test_a_lifecycle_spec_that_cannot_work_is_refused_as_the_constructor_would() -> None:
    spec = TASKS.to_spec()
    spec["states"].append({"name": "IDLE", "status": "PENDING"})
    with pytest.raises(InvalidLifecycle, match="lists state 'IDLE' twice") as err:
        Lifecycle.from_spec(spec)
    assert err.value.state == "IDLE"
    spec = TASKS.to_spec()
    spec["states"][0]["status"] = "DONE"
    with pytest.raises(InvalidLifecycle, match="unknown status 'DONE'"):
        Lifecycle.from_spec(spec)
    spec = TASKS.to_spec()
    spec["transitions"]["TRIGGER"].append("SUCCESS")
    with pytest.raises(InvalidLifecycle, match="not a canonical move"):
        Lifecycle.from_spec(spec)


def test_a_workflow_spec_that_cannot_work_is_refused_as_the_constructor_would() -> None:
    wf = Workflow("billing", {"invoice": [], "email": ["invoice"]})
    spec = wf.to_spec()
    spec["nodes"].append({"name": "email", "upstream": []})
    with pytest.raises(InvalidWorkflow, match="lists node 'email' twice"):
        Workflow.from_spec(spec)
    spec = wf.to_spec()
    spec["nodes"][0]["upstream"] = ["email"]
    with pytest.raises(DependencyCycle):
        Workflow.from_spec(spec)
    spec = wf.to_spec()
    spec["rules"] = {"email": "MOSTLY_DONE"}
    with pytest.raises(InvalidWorkflow, match="MOSTLY_DONE"):
        Workflow.from_spec(spec)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(-2, 2)
    | st.sampled_from(
        ("", "x", "PENDING", "cron", "every", "builtins.Exception", "UTC", "0 2 * * *")
    )
    # Numbers past what a timedelta, a datetime or a float holds.
    | st.sampled_from((1e300, -1e300, 10**30, 2**63, float("inf"), float("nan"))),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(("name", "x")), inner, max_size=2)
    ),
    max_leaves=6,
)


def _paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


@given(st.data(), JSON_VALUES)
def test_any_json_at_any_key_is_read_or_refused_with_a_runlife_error(
    data: st.DataObject, value: object
) -> None:
    """No spec, however spoiled, escapes as a bare KeyError, TypeError or the like."""
    spec = _full_spec()
    path = data.draw(st.sampled_from(_paths(spec)))
    _set(path, value)(spec)
    with contextlib.suppress(RunlifeError):
        JobSpec.from_spec(spec)
    with contextlib.suppress(RunlifeError):
        lifecycle_of(spec)


# -- lifecycle_of -----------------------------------------------------------------------


@pytest.mark.parametrize("spec", [None, {}, {"retry": {"max_attempts": 3}}, {"n": 1}])
def test_lifecycle_of_a_record_written_before_versioned_specs_is_the_default(
    spec: dict[str, Any] | None,
) -> None:
    assert lifecycle_of(spec) is DEFAULT_LIFECYCLE


def test_lifecycle_of_reads_the_spec_lifecycle_once_per_distinct_part() -> None:
    stored = JobSpec(lifecycle=TASKS).to_spec()
    first = lifecycle_of(json.loads(json.dumps(stored)))
    assert first == TASKS
    assert lifecycle_of(json.loads(json.dumps(stored))) is first
    assert lifecycle_of(JobSpec().to_spec()) is DEFAULT_LIFECYCLE


def test_lifecycle_of_is_not_fooled_by_a_spec_changed_after_it_was_read() -> None:
    spec = JobSpec(lifecycle=TASKS).to_spec()
    assert lifecycle_of(spec) == TASKS
    spec["lifecycle"]["transitions"]["IDLE"].append("TERMINATED")
    assert lifecycle_of(spec).allowed("IDLE") == {"TRIGGER", "TERMINATED"}
    assert lifecycle_of(JobSpec(lifecycle=TASKS).to_spec()).allowed("IDLE") == {"TRIGGER"}


def test_lifecycle_of_a_versioned_spec_without_a_lifecycle_is_refused() -> None:
    spec = JobSpec().to_spec()
    del spec["lifecycle"]
    with pytest.raises(InvalidPolicy) as err:
        lifecycle_of(spec)
    assert err.value.field == "lifecycle"


def test_lifecycle_of_a_malformed_lifecycle_names_its_key() -> None:
    spec = JobSpec(lifecycle=TASKS).to_spec()
    spec["lifecycle"] = copy.deepcopy(spec["lifecycle"])
    spec["lifecycle"]["states"][0] = ["IDLE", "PENDING"]
    with pytest.raises(InvalidPolicy) as err:
        lifecycle_of(spec)
    assert err.value.field == "lifecycle.states[0]"


def test_timeouts_in_a_spec_are_seconds() -> None:
    spec = Timeout(attempt=timedelta(minutes=5), heartbeat=1.5).to_spec()
    assert spec == {"attempt": 300.0, "run": None, "queued": None, "heartbeat": 1.5}
