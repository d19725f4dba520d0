"""@runlife.job: a function and its policy as a frozen value; params checked at submit."""

from __future__ import annotations

import attrs
import pytest

import runlife
from runlife import (
    DEFAULT_LIFECYCLE,
    InvalidPolicy,
    InvalidValue,
    Job,
    JobSpec,
    Limits,
    NotSerializable,
    Retry,
    RunContext,
    Timeout,
)


def test_bare_decorator_makes_a_default_job() -> None:
    @runlife.job
    def cleanup(ctx: RunContext) -> str:
        return "clean"

    assert isinstance(cleanup, Job)
    assert cleanup.name == "cleanup"
    assert cleanup.spec == JobSpec()
    assert cleanup.spec.retry.max_attempts == 1
    assert cleanup.labels == {}
    assert not cleanup.is_async
    assert cleanup(None) == "clean"  # still callable as its function
    assert cleanup.fn(None) == "clean"


def test_policy_goes_into_the_spec() -> None:
    @runlife.job(
        name="nightly",
        retry=Retry(max_attempts=3, delay=60),
        timeout=Timeout(attempt=300),
        schedule=runlife.Cron("0 2 * * *"),
        limits=Limits(max_concurrency=1),
        labels={"kind": "backup"},
        queued=False,
        items_fail_run=0.25,
    )
    async def backup(ctx: RunContext, devices: tuple[str, ...] = ()) -> None: ...

    assert backup.name == "nightly"
    assert backup.is_async
    assert backup.spec == JobSpec(
        lifecycle=DEFAULT_LIFECYCLE,
        retry=Retry(max_attempts=3, delay=60),
        timeout=Timeout(attempt=300),
        schedule=runlife.Cron("0 2 * * *"),
        limits=Limits(max_concurrency=1),
        items_fail_run=0.25,
        queued=False,
    )
    assert backup.labels == {"kind": "backup"}
    record = backup.to_record()
    assert (record.name, record.max_concurrency) == ("nightly", 1)
    assert JobSpec.from_spec(record.spec) == backup.spec


def test_a_job_is_frozen_and_registers_nothing() -> None:
    def f(ctx: RunContext) -> None: ...

    one, two = runlife.job(f), runlife.job(f)
    assert one == two
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        one.name = "other"  # type: ignore[misc]


def test_params_are_checked_against_the_signature() -> None:
    @runlife.job
    def move(ctx: RunContext, src: str, dst: str, *, force: bool = False) -> None: ...

    assert move.check_params({"src": "a", "dst": "b"}) == {"src": "a", "dst": "b"}
    with pytest.raises(InvalidValue) as missing:
        move.check_params({"src": "a"})
    assert missing.value.field == "params.dst"
    with pytest.raises(InvalidValue) as unknown:
        move.check_params({"src": "a", "dst": "b", "speed": 3})
    assert unknown.value.field == "params.speed"
    assert "src, dst, force" in str(unknown.value)
    with pytest.raises(NotSerializable, match=r"params\['src'\]"):
        move.check_params({"src": {1, 2}, "dst": "b"})
    with pytest.raises(InvalidValue, match="mapping"):
        move.check_params(["src"])  # type: ignore[arg-type]


def test_kwargs_take_any_param() -> None:
    @runlife.job
    def anything(ctx: RunContext, **params: object) -> None: ...

    assert anything.check_params({"x": 1, "y": [2]}) == {"x": 1, "y": [2]}


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (lambda: None, "first parameter takes the RunContext"),
        (lambda ctx, a, /: None, "positional-only"),
    ],
)
def test_a_function_that_cannot_take_ctx_and_params_is_refused(fn: object, expected: str) -> None:
    with pytest.raises(InvalidPolicy, match=expected):
        runlife.job(fn)  # type: ignore[arg-type]


def test_an_executor_must_suit_the_function() -> None:
    async def coro(ctx: RunContext) -> None: ...

    def plain(ctx: RunContext) -> None: ...

    with pytest.raises(InvalidPolicy, match="async function"):
        runlife.job(executor="thread")(coro)
    with pytest.raises(InvalidPolicy, match="sync function"):
        runlife.job(executor="async")(plain)
    with pytest.raises(InvalidPolicy, match="executor"):
        runlife.job(executor="process")(plain)
    assert runlife.job(executor="thread")(plain).executor == "thread"


def test_bad_policy_values_are_refused() -> None:
    def f(ctx: RunContext) -> None: ...

    with pytest.raises(InvalidPolicy, match="items_fail_run"):
        runlife.job(items_fail_run=2)(f)
    with pytest.raises(InvalidPolicy, match="retry"):
        runlife.job(retry=3)(f)  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match="name"):
        runlife.job(name="")(f)
    with pytest.raises(NotSerializable, match="labels"):
        runlife.job(labels={"site": 1})(f)  # type: ignore[dict-item]
