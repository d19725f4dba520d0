"""Retry, timeout, limits, quotas and item outcomes: pure values and pure decisions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runlife import DEFAULT_LIFECYCLE, ErrorInfo, InvalidPolicy, ItemCounts, Run, Status, Trigger
from runlife._core.policy import (
    Deadline,
    Limits,
    Quota,
    QuotaUsage,
    Retry,
    Timeout,
    decide_failure,
    items_outcome,
)
from runlife._core.schedule import Cron
from runlife.exceptions import QuotaExceeded
from runlife.testing._policy_strategies import retries

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
lc = DEFAULT_LIFECYCLE


def at(hms: str) -> datetime:
    h, m, s = (int(p) for p in hms.split(":"))
    return T0.replace(hour=h, minute=m, second=s)


def running(at_: datetime = T0) -> Run:
    run = Run.create(job="backup", at=at_, initial=Status.QUEUED)
    return lc.transition(run, Status.RUNNING, at=at_)


# -- Retry --------------------------------------------------------------------


def test_retry_defaults() -> None:
    """Retry() is three attempts, a fixed 60 s delay, retrying every Exception."""
    policy = Retry()
    assert (policy.max_attempts, policy.delay, policy.backoff) == (3, 60.0, None)
    assert policy.retry_on == (Exception,)
    assert policy.give_up_on == ()
    assert policy.retry_abandoned is True
    assert [policy.next_delay(n, ValueError()) for n in (1, 2, 3)] == [60.0, 60.0, None]


def test_a_zero_delay_is_valid() -> None:
    assert Retry(delay=0).next_delay(1) == 0.0


def test_retry_accepts_a_timedelta_delay() -> None:
    assert Retry(delay=timedelta(minutes=2)).delay == 120.0


def test_from_config_reads_the_operators_form() -> None:
    """ "max_retries" counts every attempt; each policy ignores the other's keys."""
    config = {"max_retries": 3, "retry_delay_seconds": 60, "timeout_seconds": 300}
    assert Retry.from_config(config) == Retry(max_attempts=3, delay=60)
    assert Timeout.from_config(config) == Timeout(attempt=300)
    assert Retry.from_config({}) == Retry()
    assert Timeout.from_config({"max_retries": 2}) == Timeout()


@pytest.mark.parametrize("cls", [Retry, Timeout])
def test_from_config_refuses_unknown_keys(cls: type[Retry] | type[Timeout]) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        cls.from_config({"max_retries": 3, "retry_delay": 60})
    assert caught.value.value == "retry_delay"
    assert "retry_delay_seconds" in str(caught.value)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"max_retries": 0}, "max_retries"),
        ({"max_retries": "3"}, "max_retries"),
        ({"retry_delay_seconds": -1}, "retry_delay_seconds"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
    ],
)
def test_from_config_names_the_bad_key(config: dict[str, object], field: str) -> None:
    parse = Timeout.from_config if field == "timeout_seconds" else Retry.from_config
    with pytest.raises(InvalidPolicy) as caught:
        parse(config)
    assert caught.value.field == field
    assert repr(next(iter(config.values()))) in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": -1}, "max_attempts"),
        ({"max_attempts": 1.5}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"delay": -1}, "delay"),
        ({"delay": float("nan")}, "delay"),
        ({"delay": "60"}, "delay"),
        ({"backoff": "linear"}, "backoff"),
        ({"factor": 0.5}, "factor"),
        ({"factor": float("inf")}, "factor"),
        ({"max_delay": -5}, "max_delay"),
        ({"jitter": 1.5}, "jitter"),
        ({"jitter": -0.1}, "jitter"),
        ({"retry_on": [int]}, "retry_on"),
        ({"retry_on": "ValueError"}, "retry_on"),
        ({"give_up_on": 3}, "give_up_on"),
        ({"retry_abandoned": "yes"}, "retry_abandoned"),
    ],
)
def test_retry_refuses_bad_input(kwargs: dict[str, object], field: str) -> None:
    """Each bad value is refused with an error naming the parameter and the value."""
    with pytest.raises(InvalidPolicy) as caught:
        Retry(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert f"{field}=" in str(caught.value)
    assert repr(next(iter(kwargs.values())))[:20] in str(caught.value)


@given(
    delay=st.floats(0, 1000),
    factor=st.floats(1, 5),
    cap=st.none() | st.floats(0, 10_000),
    attempts=st.integers(1, 60),
)
def test_exponential_delays_never_decrease_up_to_the_cap(
    delay: float, factor: float, cap: float | None, attempts: int
) -> None:
    policy = Retry(
        max_attempts=attempts + 1, delay=delay, backoff="exponential", factor=factor, max_delay=cap
    )
    delays = [d for d in (policy.next_delay(n) for n in range(1, attempts + 1)) if d is not None]
    assert len(delays) == attempts
    assert delays == sorted(delays)
    assert delays[0] == (delay if cap is None else min(delay, cap))
    if cap is not None:
        assert max(delays) <= cap


def test_exponential_backoff_without_a_cap_stays_finite() -> None:
    policy = Retry(max_attempts=10_000, delay=1, backoff="exponential", factor=4)
    assert policy.next_delay(5000) == 1e9


@given(policy=retries(), attempt=st.integers(1, 20), seed=st.integers(0, 2**32))
def test_jitter_stays_within_its_bound_and_the_cap(policy: Retry, attempt: int, seed: int) -> None:
    plain = Retry(
        max_attempts=policy.max_attempts,
        delay=policy.delay,
        backoff=policy.backoff,
        factor=policy.factor,
    )
    base = plain.next_delay(attempt)
    delay = policy.next_delay(attempt, None, random.Random(seed))
    if base is None:
        assert delay is None
        return
    assert delay is not None
    assert delay >= 0
    low, high = base * (1 - policy.jitter), base * (1 + policy.jitter)
    if policy.max_delay is not None:
        assert delay <= policy.max_delay
        low, high = min(low, policy.max_delay), min(high, policy.max_delay)
    assert low * (1 - 1e-9) <= delay <= high * (1 + 1e-9)


_CLASSES = (Exception, ValueError, KeyError, LookupError, OSError, ConnectionError, TimeoutError)


@given(
    both=st.sampled_from(_CLASSES),
    retry_on=st.lists(st.sampled_from(_CLASSES), max_size=3),
    give_up_on=st.lists(st.sampled_from(_CLASSES), max_size=3),
    attempt=st.integers(1, 5),
)
def test_give_up_on_wins_over_retry_on(
    both: type[Exception],
    retry_on: list[type[Exception]],
    give_up_on: list[type[Exception]],
    attempt: int,
) -> None:
    """An error matching give_up_on is never retried, whatever retry_on says."""
    policy = Retry(max_attempts=10, retry_on=(both, *retry_on), give_up_on=(both, *give_up_on))
    error = both("boom")
    assert policy.next_delay(attempt, error) is None
    assert policy.next_delay(attempt, ErrorInfo.from_exception(error)) is None
    for failure in (error, ErrorInfo.from_exception(error)):
        decision = decide_failure(running(), failure, at=T0, retry=policy)
        assert decision.status is Status.FAILED
        assert f"{both.__name__} matches give_up_on" in decision.reason


class DeviceBusy(Exception):
    pass


def test_errors_outside_retry_on_are_not_retried() -> None:
    policy = Retry(retry_on=(ConnectionError,))
    assert policy.next_delay(1, ConnectionRefusedError()) == 60.0
    assert policy.next_delay(1, ValueError()) is None
    assert policy.next_delay(1, ErrorInfo(kind="error", type="ConnectionError")) == 60.0
    assert policy.next_delay(1, ErrorInfo(kind="error", type="ValueError")) is None
    # A stored builtin's name stands for its class, subclasses included.
    refused = ErrorInfo(kind="error", type="ConnectionRefusedError")
    assert policy.next_delay(1, refused) == 60.0
    assert Retry(give_up_on=(OSError,)).next_delay(1, refused) is None
    # Other names are compared with the classes' names.
    assert Retry(retry_on=(DeviceBusy,)).next_delay(1, ErrorInfo(type="DeviceBusy")) == 60.0
    assert Retry(give_up_on=(DeviceBusy,)).next_delay(1, ErrorInfo(type="DeviceBusy")) is None
    assert Retry().next_delay(1, ErrorInfo(type="SomethingElse")) == 60.0
    decision = decide_failure(running(), ValueError(), at=T0, retry=policy)
    assert decision.reason.endswith("ValueError does not match retry_on")


def test_timeouts_match_as_timeout_error() -> None:
    timeout = ErrorInfo(kind="timeout", type="TimeoutError")
    assert Retry().next_delay(1, timeout) == 60.0
    assert Retry(give_up_on=(TimeoutError,)).next_delay(1, timeout) is None
    assert Retry(retry_on=(OSError,)).next_delay(1, timeout) == 60.0  # TimeoutError is an OSError


def test_abandoned_attempts_follow_retry_abandoned() -> None:
    abandoned = ErrorInfo(kind="abandoned", type="LeaseExpired")
    assert Retry().next_delay(1, abandoned) == 60.0
    assert Retry(retry_abandoned=False).next_delay(1, abandoned) is None
    decision = decide_failure(running(), abandoned, at=T0, retry=Retry(retry_abandoned=False))
    assert decision.status is Status.FAILED
    assert decision.error.kind == "abandoned"
    assert "retry_abandoned=False" in decision.reason


def test_interrupted_attempts_never_spend_budget() -> None:
    """A shutdown's interrupted attempt goes back at once and does not count."""
    policy = Retry(max_attempts=1)
    interrupted = ErrorInfo(kind="interrupted", type="Interrupted")
    assert policy.next_delay(1, interrupted) == 0.0
    run = running()
    decision = decide_failure(run, interrupted, at=at("02:01:00"), retry=policy)
    assert (decision.status, decision.due_at, decision.spends_budget) == (
        Status.RETRYING,
        at("02:01:00"),
        False,
    )
    run = decision.apply(run)
    run = lc.transition(run, Status.QUEUED, at=at("02:01:00"))
    run = lc.transition(run, Status.RUNNING, at=at("02:01:00"))
    # Attempt 2 is the first that spends budget: with max_attempts=1 it is the last.
    last = decide_failure(run, ValueError("boom"), at=at("02:02:00"), retry=policy)
    assert last.status is Status.FAILED
    assert "attempt 1 of 1" in last.reason
    assert [a.outcome for a in last.apply(run).attempts] == ["interrupted", "error"]


@pytest.mark.parametrize("kind", ["cancelled", "items"])
def test_cancelled_and_items_failures_are_not_retried(kind: str) -> None:
    error = ErrorInfo(kind=kind, type="X")  # type: ignore[arg-type]
    assert Retry().next_delay(1, error) is None
    assert decide_failure(running(), error, at=T0, retry=Retry()).status is Status.FAILED


def test_no_retry_starts_after_the_run_deadline() -> None:
    """With Timeout(run=...), a retry that would start after it fails the run now."""
    run = running()
    decision = decide_failure(
        run, ValueError(), at=at("02:09:30"), retry=Retry(delay=60), timeout=Timeout(run=600)
    )
    assert decision.status is Status.FAILED
    assert decision.error.kind == "timeout"
    assert "deadline" in decision.reason


def test_the_nightly_retry_timeline_as_pure_decisions() -> None:
    """Retry(3, 60) + Timeout(attempt=300) on a job that always hangs.

    Attempts at 02:00:00, 02:06:00 and 02:12:00, each cut at +300 s; the run ends
    FAILED at 02:17:00 with kind "timeout"; the cron's next fire is unchanged.
    """
    retry, timeout = Retry(max_attempts=3, delay=60), Timeout(attempt=300)
    cron = Cron("0 2 * * *")
    fire = cron.next_after(at("01:59:00"))
    assert fire == at("02:00:00")
    run = Run.create(job="nightly_backup", at=fire, trigger=Trigger.SCHEDULED, scheduled_for=fire)
    run = lc.transition(run, Status.QUEUED, at=fire)
    now = fire
    while True:
        run = lc.transition(run, Status.RUNNING, at=now)
        deadline = timeout.next_deadline(run)
        assert deadline is not None
        assert deadline.kind == "attempt"
        assert timeout.expired(run, deadline.at - timedelta(microseconds=1)) is None
        now = deadline.at  # the job hangs: nothing happens before the deadline
        assert timeout.expired(run, now) == deadline
        decision = decide_failure(run, deadline.error(run.attempt), at=now, retry=retry)
        run = lc.transition(
            run, decision.status, at=now, error=decision.error, due_at=decision.due_at,
            reason=decision.reason,
        )  # fmt: skip
        if run.status is Status.FAILED:
            break
        assert run.status is Status.RETRYING
        assert decision.due_at is not None
        now = decision.due_at
        run = lc.transition(run, Status.QUEUED, at=now)

    assert [a.started_at for a in run.attempts] == [at("02:00:00"), at("02:06:00"), at("02:12:00")]
    assert [a.ended_at for a in run.attempts] == [at("02:05:00"), at("02:11:00"), at("02:17:00")]
    assert [a.outcome for a in run.attempts] == ["timeout"] * 3
    assert run.status is Status.FAILED
    assert run.ended_at == at("02:17:00")
    assert run.error is not None
    assert run.error.kind == "timeout"
    assert run.error.message == "attempt 3 exceeded its timeout of 300 s"
    assert lc.replay(run.history) == run.state
    # The schedule is untouched: next fire tomorrow 02:00, nothing due at 02:17.
    assert cron.next_after(fire) == at("02:00:00") + timedelta(days=1)
    assert cron.due(fire, at("02:17:00")) == ()


# -- Timeout ------------------------------------------------------------------


@pytest.mark.parametrize("field", ["attempt", "run", "queued", "heartbeat"])
@pytest.mark.parametrize("value", [0, -1, "300", float("nan"), timedelta(0)])
def test_timeout_refuses_bad_input(field: str, value: object) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        Timeout(**{field: value})  # type: ignore[arg-type]
    assert caught.value.field == field
    assert f"{field}={value!r}" in str(caught.value)


def test_deadline_arithmetic() -> None:
    timeout = Timeout(attempt=300, run=3600, queued=600, heartbeat=30)
    assert timeout.attempt_deadline(T0) == at("02:05:00")
    assert timeout.run_deadline(T0) == at("03:00:00")
    assert timeout.queued_deadline(T0) == at("02:10:00")
    assert timeout.heartbeat_deadline(T0) == at("02:00:30")
    assert Timeout().attempt_deadline(T0) is None
    assert timeout.attempt_deadline(None) is None


def test_deadlines_follow_the_status() -> None:
    timeout = Timeout(attempt=300, run=3600, queued=600, heartbeat=30)
    queued = lc.transition(Run.create(job="j", at=T0), Status.QUEUED, at=T0)
    assert [d.kind for d in timeout.deadlines(queued)] == ["queued"]
    run = lc.transition(queued, Status.RUNNING, at=at("02:01:00"))
    assert [(d.kind, d.at) for d in timeout.deadlines(run, last_beat=at("02:01:20"))] == [
        ("heartbeat", at("02:01:50")),
        ("attempt", at("02:06:00")),
        ("run", at("03:01:00")),
    ]
    heartbeat = timeout.next_deadline(run)
    assert heartbeat is not None
    assert heartbeat.error().kind == "abandoned"
    retrying = lc.transition(run, Status.RETRYING, at=at("02:02:00"))
    assert [d.kind for d in timeout.deadlines(retrying)] == ["run"]
    assert timeout.deadlines(Run.create(job="j", at=T0)) == ()


def test_equal_deadlines_report_the_run_limit() -> None:
    """When attempt and run limits end together, the run limit is the one reported."""
    run = running()
    deadline = Timeout(attempt=300, run=300).next_deadline(run)
    assert deadline == Deadline(kind="run", at=at("02:05:00"), limit=timedelta(seconds=300))
    assert deadline.error().message == "the run exceeded its timeout of 300 s"


# -- Limits and quotas --------------------------------------------------------


def test_calendar_month_quota_frees_at_the_next_month_in_its_zone() -> None:
    limits = Limits(quota=Quota(max_runs=1000, per="month", tz="Europe/Paris"))
    now = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)  # already April 1st in Paris
    assert limits.quota is not None
    assert limits.quota.window_start(now) == datetime(2026, 4, 1, tzinfo=ZoneInfo("Europe/Paris"))
    limits.check_quota("sync", QuotaUsage(count=999), now)
    with pytest.raises(QuotaExceeded) as caught:
        limits.check_quota("sync", QuotaUsage(count=1000), now)
    assert caught.value.job == "sync"
    assert caught.value.quota == "at most 1000 runs per calendar month (Europe/Paris)"
    assert caught.value.frees_at == datetime(2026, 5, 1, tzinfo=ZoneInfo("Europe/Paris"))


def test_rolling_quota_frees_when_the_oldest_run_leaves_the_window() -> None:
    quota = Quota(max_runs=3, window=timedelta(hours=24))
    limits = Limits(quota=quota)
    now = at("12:00:00")
    assert quota.window_start(now) == now - timedelta(hours=24)
    oldest = now - timedelta(hours=20)
    with pytest.raises(QuotaExceeded) as caught:
        limits.check_quota("sync", QuotaUsage(count=3, oldest=oldest), now)
    assert caught.value.frees_at == oldest + timedelta(hours=24)
    assert "per rolling 24 h" in str(caught.value)
    # Without the oldest run, the latest it can free up.
    with pytest.raises(QuotaExceeded) as caught:
        limits.check_quota("sync", 3, now)
    assert caught.value.frees_at == now + timedelta(hours=24)


@pytest.mark.parametrize(
    ("per", "now", "start", "frees"),
    [
        ("minute", "2026-03-29T03:00:30+02:00", "03-29T03:00:00+02:00", "03-29T03:01:00+02:00"),
        ("hour", "2026-03-29T03:10:00+02:00", "03-29T03:00:00+02:00", "03-29T04:00:00+02:00"),
        ("day", "2026-03-29T12:00:00+02:00", "03-29T00:00:00+01:00", "03-30T00:00:00+02:00"),
        ("week", "2026-03-29T12:00:00+02:00", "03-23T00:00:00+01:00", "03-30T00:00:00+02:00"),
        ("month", "2026-03-29T12:00:00+02:00", "03-01T00:00:00+01:00", "04-01T00:00:00+02:00"),
        ("year", "2026-12-31T23:30:00+01:00", "01-01T00:00:00+01:00", "2027-01-01T00:00:00+01:00"),
    ],
)  # fmt: skip
def test_calendar_windows_in_a_zone_with_dst(per: str, now: str, start: str, frees: str) -> None:
    """Window bounds are local midnights (and so on), whatever the UTC offset does."""
    quota = Quota(max_runs=1, per=per, tz="Europe/Paris")  # type: ignore[arg-type]
    moment = datetime.fromisoformat(now)

    def full(text: str) -> datetime:
        return datetime.fromisoformat(text if text.startswith("20") else f"2026-{text}")

    assert quota.window_start(moment) == full(start)
    assert quota.frees_at(1, moment) == full(frees)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_runs": 0, "per": "day"}, "max_runs"),
        ({"max_runs": 1.5, "per": "day"}, "max_runs"),
        ({"max_runs": 5, "per": "fortnight"}, "per"),
        ({"max_runs": 5}, "per"),
        ({"max_runs": 5, "per": "day", "window": 60}, "per"),
        ({"max_runs": 5, "window": -60}, "window"),
        ({"max_runs": 5, "per": "day", "tz": "Mars/Olympus"}, "tz"),
    ],
)
def test_quota_refuses_bad_input(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        Quota(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert f"{field}=" in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": "2"}, "max_concurrency"),
        ({"per_label": {"device": 0}}, "per_label['device']"),
        ({"per_label": ["device"]}, "per_label"),
        ({"quota": 1000}, "quota"),
    ],
)
def test_limits_refuse_bad_input(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        Limits(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_no_quota_never_refuses() -> None:
    Limits(max_concurrency=2, per_label={"device": 1}).check_quota("j", 10**9, T0)


@given(count=st.integers(0, 50), max_runs=st.integers(1, 50))
def test_a_quota_refuses_exactly_from_its_limit(count: int, max_runs: int) -> None:
    limits = Limits(quota=Quota(max_runs=max_runs, per="day"))
    if count < max_runs:
        limits.check_quota("j", count, T0)
    else:
        with pytest.raises(QuotaExceeded):
            limits.check_quota("j", count, T0)


# -- items --------------------------------------------------------------------


def test_failed_items_warn_without_a_threshold() -> None:
    outcome = items_outcome(ItemCounts(total=4, succeeded=3, failed=1))
    assert outcome.status is Status.SUCCEEDED
    assert outcome.error is None
    assert outcome.warnings == ("1 of 4 items failed",)


def test_a_zero_threshold_fails_on_any_failed_item() -> None:
    outcome = items_outcome(ItemCounts(total=4, succeeded=3, failed=1), 0)
    assert outcome.status is Status.FAILED
    assert outcome.error == ErrorInfo(
        kind="items", type="ItemsFailed", message="1 of 4 items failed"
    )


def test_all_items_succeeding_is_a_plain_success() -> None:
    for threshold in (None, 0, 0.5):
        outcome = items_outcome(ItemCounts(total=4, succeeded=3, skipped=1), threshold)
        assert (outcome.status, outcome.warnings) == (Status.SUCCEEDED, ())


@given(
    succeeded=st.integers(0, 20),
    failed=st.integers(0, 20),
    skipped=st.integers(0, 5),
    threshold=st.none() | st.floats(0, 1),
)
def test_a_run_fails_when_more_than_the_threshold_of_items_failed(
    succeeded: int, failed: int, skipped: int, threshold: float | None
) -> None:
    total = succeeded + failed + skipped
    counts = ItemCounts(total=total, succeeded=succeeded, failed=failed, skipped=skipped)
    outcome = items_outcome(counts, threshold)
    fails = threshold is not None and failed > threshold * total
    assert (outcome.status is Status.FAILED) == fails
    message = f"{failed} of {total} items failed" if total != 1 else "1 of 1 item failed"
    if fails:
        assert outcome.error is not None
        assert outcome.error.message == message
    elif failed:
        assert outcome.warnings == (message,)


@pytest.mark.parametrize("threshold", [-0.1, 1.5, "0.5", True])
def test_items_fail_run_refuses_bad_thresholds(threshold: object) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        items_outcome(ItemCounts(total=1, failed=1), threshold)  # type: ignore[arg-type]
    assert caught.value.field == "items_fail_run"
    assert repr(threshold) in str(caught.value)
