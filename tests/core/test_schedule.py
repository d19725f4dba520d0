"""Cron and Every: fire times, DST rules, agreement with croniter in UTC, catch-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter  # noqa: TID251 - the reference the schedule must agree with
from hypothesis import given, settings
from hypothesis import strategies as st

from runlife import InvalidPolicy
from runlife._core.schedule import CatchUp, Cron, Every, localize
from runlife.testing._policy_strategies import cron_expressions, crons

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")

moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)
)


def local(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold)  # type: ignore[arg-type, misc]


def fires(schedule: Cron | Every, after: datetime, count: int) -> list[datetime]:
    out = []
    for _ in range(count):
        after = schedule.next_after(after)
        out.append(after)
    return out


# -- agreement with croniter in UTC -------------------------------------------


@settings(max_examples=200)
@given(cron=crons(), moment=moments)
def test_utc_fire_times_agree_with_croniter(cron: Cron, moment: datetime) -> None:
    """In UTC, next_after is croniter's get_next, fire after fire."""
    reference = croniter(cron.expr, moment)
    ours = moment
    for _ in range(3):
        expected = reference.get_next(datetime)
        ours = cron.next_after(ours)
        assert ours == expected, cron.expr
        assert ours.tzinfo is UTC


@given(cron=crons(st.sampled_from(["UTC", "Europe/Paris", "America/New_York"])), moment=moments)
def test_fire_times_are_aware_and_strictly_increasing(cron: Cron, moment: datetime) -> None:
    previous = moment
    for fire in fires(cron, moment, 4):
        assert fire.tzinfo is not None
        assert fire > previous
        previous = fire


# -- DST ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "gap_day", "expr", "expected"),
    [
        # Paris, 2026-03-29: 02:00 CET -> 03:00 CEST; 02:30 does not exist.
        (PARIS, (2026, 3, 29), "30 2 * * *", (2026, 3, 29, 3, 0)),
        (PARIS, (2026, 3, 29), "0 2 * * *", (2026, 3, 29, 3, 0)),
        # New York, 2026-03-08: 02:00 EST -> 03:00 EDT.
        (NEW_YORK, (2026, 3, 8), "30 2 * * *", (2026, 3, 8, 3, 0)),
        (NEW_YORK, (2026, 3, 8), "59 2 * * *", (2026, 3, 8, 3, 0)),
    ],
)
def test_spring_forward_gap_fires_at_the_first_instant_after_it(
    zone: ZoneInfo, gap_day: tuple[int, int, int], expr: str, expected: tuple[int, ...]
) -> None:
    """A daily job whose time is in the gap still fires that day, at the gap's end."""
    cron = Cron(expr, tz=zone.key)
    day_before = local(zone, *gap_day) - timedelta(hours=12)
    first, second, third = fires(cron, day_before, 3)
    assert first == local(zone, *expected)
    assert first.tzinfo is UTC
    hour, minute = int(expr.split()[1]), int(expr.split()[0])
    # The days around it keep their wall time.
    wall = second.astimezone(zone)
    assert (wall.hour, wall.minute) == (hour, minute)
    assert second - first < timedelta(days=1)
    assert third - second == timedelta(days=1)


def test_minutely_fires_in_the_gap_collapse_into_one() -> None:
    cron = Cron("*/20 * * * *", tz="Europe/Paris")
    got = fires(cron, local(PARIS, 2026, 3, 29, 1, 30), 4)
    assert got == [
        local(PARIS, 2026, 3, 29, 1, 40),
        local(PARIS, 2026, 3, 29, 3, 0),  # 02:00, 02:20, 02:40 and 03:00, once
        local(PARIS, 2026, 3, 29, 3, 20),
        local(PARIS, 2026, 3, 29, 3, 40),
    ]


@pytest.mark.parametrize(
    ("zone", "day", "hour"),
    [(PARIS, (2026, 10, 25), 2), (NEW_YORK, (2026, 11, 1), 1)],
)
def test_fall_back_repeated_time_fires_once_at_its_first_occurrence(
    zone: ZoneInfo, day: tuple[int, int, int], hour: int
) -> None:
    cron = Cron(f"30 {hour} * * *", tz=zone.key)
    # Same-zone arithmetic ignores fold: compare instants in UTC.
    first_pass = local(zone, *day, hour, 30, fold=0).astimezone(UTC)
    second_pass = local(zone, *day, hour, 30, fold=1).astimezone(UTC)
    assert second_pass - first_pass == timedelta(hours=1)
    assert cron.next_after(local(zone, *day, 0, 0)) == first_pass
    tomorrow = local(zone, day[0], day[1], day[2] + 1, hour, 30)
    # After the first pass, and during the second pass, the next fire is tomorrow.
    assert cron.next_after(first_pass) == tomorrow
    assert cron.next_after(second_pass - timedelta(minutes=10)) == tomorrow


def test_croniter_itself_fires_twice_in_a_fall_back_hour() -> None:
    """Why the wall-time mapping is runlife's own: on 25 Oct 2026 in Paris croniter
    fires 02:30 twice (CEST, then CET); runlife fires it once."""
    start = local(PARIS, 2026, 10, 24, 12, 0)
    theirs = croniter("30 2 * * *", start)
    day = {theirs.get_next(datetime).astimezone(UTC) for _ in range(3)}
    theirs_on_the_day = [f for f in day if f.date() == datetime(2026, 10, 25).date()]
    ours = fires(Cron("30 2 * * *", tz="Europe/Paris"), start, 3)
    ours_on_the_day = [f for f in ours if f.date() == datetime(2026, 10, 25).date()]
    assert len(theirs_on_the_day) == 2
    assert ours_on_the_day == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]


def test_hourly_in_the_fall_back_hour_does_not_fire_twice() -> None:
    cron = Cron("0 * * * *", tz="America/New_York")
    got = fires(cron, local(NEW_YORK, 2026, 11, 1, 0, 30), 3)
    assert [f.astimezone(UTC).hour for f in got] == [5, 7, 8]  # 01:00 EDT, 02:00 EST, 03:00 EST


def _reference_fires(expr: str, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """runlife's DST rule, independently: a wall time w fires at the first instant whose
    wall time is >= w (the first occurrence, or the end of a gap). Wall times come
    from croniter walking naive local time, where it does no DST arithmetic."""
    out: list[datetime] = []
    walker = croniter(expr, start.astimezone(zone).replace(tzinfo=None) - timedelta(hours=3))
    while True:
        wall = walker.get_next(datetime)
        lo = min(wall.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1))
        instant = lo - timedelta(hours=2)
        while instant.astimezone(zone).replace(tzinfo=None) < wall:
            instant += timedelta(minutes=1)
        if instant > end:
            return out
        if instant > start and (not out or instant > out[-1]):
            out.append(instant)


@settings(max_examples=40, deadline=None)
@given(
    expr=cron_expressions(),
    transition=st.sampled_from(
        [
            (PARIS, datetime(2026, 3, 29, 1, tzinfo=UTC)),
            (PARIS, datetime(2026, 10, 25, 1, tzinfo=UTC)),
            (NEW_YORK, datetime(2026, 3, 8, 7, tzinfo=UTC)),
            (NEW_YORK, datetime(2026, 11, 1, 6, tzinfo=UTC)),
            # Half-hour shifts, and transitions at local midnight.
            (ZoneInfo("Australia/Lord_Howe"), datetime(2026, 4, 4, 15, tzinfo=UTC)),
            (ZoneInfo("Australia/Lord_Howe"), datetime(2026, 10, 3, 15, 30, tzinfo=UTC)),
            (ZoneInfo("America/Santiago"), datetime(2026, 4, 5, 3, tzinfo=UTC)),
            (ZoneInfo("America/Santiago"), datetime(2026, 9, 6, 4, tzinfo=UTC)),
        ]
    ),
    offset=st.integers(-180, 60),
)
def test_dst_days_follow_the_rules(
    expr: str, transition: tuple[ZoneInfo, datetime], offset: int
) -> None:
    """Around each DST transition, the fire times are exactly the rule's."""
    zone, instant = transition
    try:
        cron = Cron(expr, tz=zone.key)
    except InvalidPolicy:
        return
    start = instant + timedelta(minutes=offset)
    end = instant + timedelta(hours=3)
    expected = _reference_fires(expr, zone, start, end)
    got: list[datetime] = []
    fire = cron.next_after(start)
    while fire <= end:
        got.append(fire)
        fire = cron.next_after(fire)
    assert got == expected


def test_localize_reads_naive_wall_times() -> None:
    assert localize(datetime(2026, 3, 8, 2, 30), NEW_YORK) == local(NEW_YORK, 2026, 3, 8, 3, 0)
    assert localize(datetime(2026, 11, 1, 1, 30), NEW_YORK).utcoffset() == timedelta(hours=-4)
    assert localize(datetime(2026, 6, 1, 12, 0), UTC) == datetime(2026, 6, 1, 12, tzinfo=UTC)


# -- Every --------------------------------------------------------------------


def test_every_fires_on_a_fixed_grid() -> None:
    every = Every(3600)
    assert every.next_after(datetime(2026, 3, 10, 2, 0, tzinfo=UTC)) == datetime(
        2026, 3, 10, 3, 0, tzinfo=UTC
    )
    assert every.next_after(datetime(2026, 3, 10, 2, 59, 59, tzinfo=UTC)) == datetime(
        2026, 3, 10, 3, 0, tzinfo=UTC
    )
    anchored = Every(timedelta(minutes=10), anchor=datetime(2026, 1, 1, 0, 3, tzinfo=UTC))
    assert anchored.next_after(datetime(2026, 3, 10, 2, 0, tzinfo=UTC)).minute == 3


@given(seconds=st.integers(1, 10**6) | st.floats(0.001, 10**6), moment=moments)
def test_every_is_strictly_later_by_at_most_its_interval(seconds: float, moment: datetime) -> None:
    every = Every(seconds)
    fire = every.next_after(moment)
    assert moment < fire <= moment + every.seconds
    assert every.next_after(fire) - fire == every.seconds


# -- catch-up -----------------------------------------------------------------


H = datetime(2026, 3, 10, tzinfo=UTC)


def hours(*values: int) -> tuple[datetime, ...]:
    return tuple(H + timedelta(hours=v) for v in values)


@pytest.mark.parametrize(
    ("catch_up", "grace", "expected"),
    [
        ("all", None, hours(3, 4, 5, 6)),
        ("latest", None, hours(6)),
        ("none", None, ()),  # 06:00 is 20 min late: more than the default 60 s
        ("all", 3600, hours(6)),
        ("all", 2 * 3600, hours(5, 6)),
        ("latest", 600, ()),
        ("none", 3600, hours(6)),
    ],
)
def test_due_follows_the_catch_up_policy(
    catch_up: str, grace: float | None, expected: tuple[datetime, ...]
) -> None:
    cron = Cron("0 * * * *", catch_up=catch_up, grace=grace)  # type: ignore[arg-type]
    assert cron.due(hours(2)[0], H + timedelta(hours=6, minutes=20)) == expected


def test_a_fire_just_reached_is_due_under_every_policy() -> None:
    policies: tuple[CatchUp, ...] = ("all", "latest", "none")
    for catch_up in policies:
        cron = Cron("0 2 * * *", catch_up=catch_up)
        fire = datetime(2026, 3, 10, 2, tzinfo=UTC)
        assert cron.due(fire - timedelta(days=1), fire) == (fire,)
        assert cron.due(fire, fire) == ()


def test_due_without_a_last_fire_is_empty() -> None:
    assert Cron("* * * * *").due(None, H) == ()


def test_catch_up_all_is_limited_and_resumes() -> None:
    cron = Cron("* * * * *", catch_up="all")
    first = cron.due(H, H + timedelta(days=2), limit=1000)
    assert len(first) == 1000
    rest = cron.due(first[-1], H + timedelta(days=2), limit=5000)
    assert rest[0] == first[-1] + timedelta(minutes=1)
    assert len(first) + len(rest) == 2 * 24 * 60


def test_latest_after_a_long_outage_is_cheap_and_right() -> None:
    cron = Cron("* * * * *")
    assert cron.due(H, H + timedelta(days=400, seconds=30)) == (H + timedelta(days=400),)
    yearly = Cron("0 0 1 1 *")
    assert yearly.due(H, datetime(2030, 6, 1, tzinfo=UTC)) == (datetime(2030, 1, 1, tzinfo=UTC),)


@given(
    seconds=st.integers(1, 7200),
    outage=st.integers(0, 10**7),
    grace=st.none() | st.integers(0, 3600),
)
def test_every_latest_is_the_last_grid_point_before_now(
    seconds: int, outage: int, grace: int | None
) -> None:
    every = Every(seconds, anchor=H, grace=grace)
    now = H + timedelta(seconds=outage)
    latest = H + timedelta(seconds=outage - outage % seconds)
    late = grace is not None and now - latest > timedelta(seconds=grace)
    expected = () if latest == H or late else (latest,)
    assert every.due(H, now) == expected


def test_every_catches_up_too() -> None:
    every = Every(600, catch_up="all")
    assert every.due(H, H + timedelta(minutes=30)) == (
        H + timedelta(minutes=10),
        H + timedelta(minutes=20),
        H + timedelta(minutes=30),
    )


# -- bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("61 * * * *", "minute field '61'"),
        ("0 25 * * *", "hour field '25'"),
        ("0 0 32 * *", "day-of-month field '32'"),
        ("0 0 * 13 *", "month field '13'"),
        ("0 0 * * 8", "day-of-week field '8'"),
        ("0 0 * * funday", "day-of-week field 'funday'"),
        ("* * * *", "5 fields"),
        ("* * * * * *", "5 fields"),
        ("", "cron expression"),
        ("@reboot", "@daily"),
        ("0 0 31 2 *", "matches a real date"),
        ("0 0 1 * 1#2", "day-of-month of '*'"),
        ("0 0 15W * *", "'W'"),
    ],
)
def test_bad_cron_expressions_name_the_expression_and_the_field(expr: str, words: str) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        Cron(expr)
    assert caught.value.field == "expr"
    assert f"expr={expr!r}" in str(caught.value)
    assert words in str(caught.value)


def test_croniter_errors_are_chained() -> None:
    with pytest.raises(InvalidPolicy) as caught:
        Cron("61 * * * *")
    assert isinstance(caught.value.__cause__, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"tz": ""}, "tz"),
        ({"catch_up": "some"}, "catch_up"),
        ({"grace": -1}, "grace"),
        ({"grace": "60"}, "grace"),
    ],
)
def test_cron_refuses_bad_options(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        Cron("0 2 * * *", **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert f"{field}=" in str(caught.value)


@pytest.mark.parametrize("seconds", [0, -5, "60", float("nan"), timedelta(0), True])
def test_every_refuses_non_positive_intervals(seconds: object) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        Every(seconds)  # type: ignore[arg-type]
    assert caught.value.field == "seconds"


def test_schedules_are_values() -> None:
    assert Cron("0 2 * * *", tz="Europe/Paris") == Cron("0 2 * * *", tz="Europe/Paris")
    assert hash(Cron("0 2 * * *")) == hash(Cron("0 2 * * *"))
    assert (
        repr(Cron("0 2 * * *")) == "Cron(expr='0 2 * * *', tz='UTC', catch_up='latest', grace=None)"
    )
