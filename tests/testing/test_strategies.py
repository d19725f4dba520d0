"""The strategies draw what they promise and shrink to small examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from runlife import InvalidTransition, Status
from runlife.testing import strategies as rls


def test_a_run_with_attempts_shrinks_to_one_attempt() -> None:
    run = find(rls.runs(), lambda r: bool(r.attempts))
    assert len(run.attempts) == 1
    assert len(run.history) == 1  # PENDING -> RUNNING: the shortest way to an attempt


def test_a_run_with_warnings_shrinks_to_one_attempt_and_one_warning() -> None:
    run = find(rls.runs(), lambda r: bool(r.warnings))
    assert len(run.attempts) == 1
    assert len(run.warnings) == 1


def test_a_custom_lifecycle_shrinks_to_two_states() -> None:
    lc = find(rls.lifecycles(), lambda lc: True)
    assert len(lc.states) == 2


@settings(max_examples=50, deadline=None)
@given(rls.invalid_steps(rls.lifecycles()))
def test_invalid_steps_are_refused(step: tuple[object, object, str]) -> None:
    lc, run, target = step
    with pytest.raises(InvalidTransition):
        lc.transition(run, target, at=run.created_at)  # type: ignore[attr-defined]


def test_an_invalid_step_shrinks_to_a_new_run() -> None:
    _, run, _ = find(rls.invalid_steps(), lambda s: True)
    assert run.history == ()


@settings(max_examples=60, deadline=None)
@given(rls.nasty_crons(), st.integers(0, 4 * 366))
def test_nasty_crons_fire_forward_and_on_real_moments(cron: object, day: int) -> None:
    """Across leap years and DST changes, each next fire is later, and it names a
    moment that exists in the schedule's zone (none in a spring-forward gap)."""
    start = datetime(2027, 1, 1, tzinfo=UTC) + timedelta(days=day, hours=day % 24)
    fire = cron.next_after(start)  # type: ignore[attr-defined]
    assert fire > start
    assert fire.tzinfo is not None
    assert fire.astimezone(UTC).astimezone(fire.tzinfo) == fire


def test_nasty_crons_include_the_leap_day_and_the_dst_gap() -> None:
    leap = find(rls.nasty_crons(), lambda c: c.expr == "0 0 29 2 *")
    fire = leap.next_after(datetime(2026, 3, 1, tzinfo=UTC)).astimezone(ZoneInfo(leap.tz))
    assert f"{fire:%Y-%m-%d %H:%M}" == "2028-02-29 00:00"
    find(rls.nasty_crons(), lambda c: c.expr == "30 2 * * *" and c.tz == "Europe/Paris")


def test_statuses_split_terminal_and_not() -> None:
    assert find(rls.statuses(terminal=True), lambda s: True) in {
        Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.SKIPPED,
    }  # fmt: skip
    assert find(rls.statuses(terminal=False), lambda s: True) is Status.PENDING
