"""Hypothesis strategies for retry policies and cron schedules.

Re-exported from ``runlife.testing.strategies``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import attrs
from hypothesis import strategies as st

from runlife._core.policy import Limits, Quota, Retry, Timeout
from runlife._core.schedule import CatchUp, Cron, Every
from runlife.exceptions import InvalidPolicy

__all__ = (
    "cron_expressions",
    "crons",
    "every_schedules",
    "limits",
    "nasty_crons",
    "quotas",
    "retries",
    "schedules",
    "timeouts",
)

_ERRORS: tuple[type[BaseException], ...] = (
    Exception,
    ValueError,
    KeyError,
    OSError,
    ConnectionError,
    TimeoutError,
    RuntimeError,
)


def retries(*, max_attempts: int = 10, max_delay: float = 3600.0) -> st.SearchStrategy[Retry]:
    """Valid `Retry` policies: every parameter varies, within the given bounds.

    >>> from hypothesis import find
    >>> find(retries(), lambda r: r.backoff == "exponential").backoff
    'exponential'
    """
    delays = st.one_of(st.integers(0, int(max_delay)), st.floats(0, max_delay, allow_nan=False))
    errors = st.lists(st.sampled_from(_ERRORS), max_size=3, unique=True).map(tuple)
    return st.builds(
        Retry,
        max_attempts=st.integers(1, max_attempts),
        delay=delays,
        backoff=st.sampled_from([None, "exponential"]),
        factor=st.floats(1, 4, allow_nan=False),
        max_delay=st.none() | delays,
        jitter=st.floats(0, 1, allow_nan=False),
        retry_on=errors.filter(bool) | st.just((Exception,)),
        give_up_on=errors,
        retry_abandoned=st.booleans(),
    )


def _field(lo: int, hi: int, names: Sequence[str] = ()) -> st.SearchStrategy[str]:
    def value(v: int) -> str:
        # Names are spelled as often as numbers where a field has them.
        return names[v - lo] if names and v % 2 else str(v)

    number = st.integers(lo, hi)
    single = number.map(value)
    span = st.tuples(number, number).map(sorted).map(lambda ab: f"{value(ab[0])}-{value(ab[1])}")
    step = st.integers(1, hi - lo + 1)
    stepped = st.one_of(
        st.tuples(span, step).map(lambda t: f"{t[0]}/{t[1]}"),
        step.map(lambda s: f"*/{s}"),
    )
    part = st.one_of(single, span, stepped)
    listed = st.lists(part, min_size=2, max_size=3).map(",".join)
    return st.one_of(st.just("*"), single, span, stepped, listed)


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@st.composite
def cron_expressions(draw: st.DrawFn) -> str:
    """Five-field cron expressions that fire: ``*``, values, names, ranges, steps and
    lists in every field, ``L`` (last day of month) and ``#`` / ``L`` weekdays."""
    minute = draw(_field(0, 59))
    hour = draw(_field(0, 23))
    month = draw(_field(1, 12, _MONTHS))
    special = draw(st.sampled_from(["", "", "", "", "L", "#", "Lw"]))
    if special == "#":
        dom, dow = "*", f"{draw(st.integers(0, 6))}#{draw(st.integers(1, 4))}"
    elif special == "Lw":
        dom, dow = "*", f"L{draw(st.integers(0, 6))}"
    else:
        dom = draw(_field(1, 28)) if special != "L" else "L"
        dow = draw(_field(0, 6, _DAYS))
    return f"{minute} {hour} {dom} {month} {dow}"


def crons(
    tz: str | st.SearchStrategy[str] = "UTC",
) -> st.SearchStrategy[Cron]:
    """`Cron` schedules of `cron_expressions` in time zone *tz* (a name or a strategy).

    >>> from hypothesis import find
    >>> find(crons(), lambda c: "*" in c.expr).tz
    'UTC'
    """
    zones = tz if isinstance(tz, st.SearchStrategy) else st.just(tz)

    def build(expr: str, zone: str) -> Cron | None:
        try:
            return Cron(expr, tz=zone)
        except InvalidPolicy:  # the rare expression that names no real date
            return None

    built = st.builds(build, cron_expressions(), zones)
    return built.filter(lambda c: c is not None)  # type: ignore[return-value]


# Expressions and zones where a cron's arithmetic is hard: the spring-forward gap and
# the fall-back repeat of DST, a half-hour DST (Lord Howe), a zone that moves at
# midnight (Santiago), month ends of every length and leap days.
_NASTY_EXPRESSIONS = (
    "30 2 * * *",  # inside the spring-forward gap in Europe and America
    "30 1 * * *",  # twice on the fall-back night in America
    "0 0 L * *",  # the last day of each month
    "0 12 31 * *",  # only the months with 31 days
    "0 0 29 2 *",  # leap days only
    "59 23 28-31 * *",  # month ends of every length
    "0 0 * * *",  # midnight, which Santiago skips on its spring-forward day
    "*/20 1-3 * 3,4,10,11 0",  # Sunday nights of the months when clocks change
    "15 2 L 2 *",  # the last day of February, at 02:15
)
_NASTY_ZONES = (
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "UTC",
)


def nasty_crons() -> st.SearchStrategy[Cron]:
    """`Cron` schedules where time is hard: fires inside DST gaps and repeats (in
    zones with whole-hour, half-hour and midnight changes), on month ends of every
    length and on leap days; beside them, random expressions in those zones.

    >>> from datetime import datetime, UTC
    >>> from hypothesis import given
    >>> @given(nasty_crons())
    ... def test_next_fire_is_later(cron):
    ...     start = datetime(2028, 2, 28, 23, 59, tzinfo=UTC)
    ...     assert cron.next_after(start) > start
    >>> test_next_fire_is_later()
    """
    zones = st.sampled_from(_NASTY_ZONES)
    listed = st.builds(Cron, st.sampled_from(_NASTY_EXPRESSIONS), tz=zones)
    return st.one_of(listed, crons(tz=zones))


# Seconds from a microsecond (a timedelta's resolution) to about three years.
_SECONDS = st.one_of(
    st.integers(1, 10**8), st.floats(1e-6, 1e8, allow_nan=False, allow_infinity=False)
)
_ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")
_CATCH_UPS: st.SearchStrategy[CatchUp] = st.sampled_from(("latest", "all", "none"))
_GRACES = st.none() | st.just(0) | _SECONDS


def timeouts() -> st.SearchStrategy[Timeout]:
    """`Timeout` limits: each limit None or positive seconds (int or float).

    >>> from hypothesis import find
    >>> find(timeouts(), lambda t: t.attempt is not None).attempt.total_seconds() > 0
    True
    """
    limit = st.none() | _SECONDS
    return st.builds(Timeout, attempt=limit, run=limit, queued=limit, heartbeat=limit)


def every_schedules() -> st.SearchStrategy[Every]:
    """`Every` schedules: any positive interval, anchor, catch-up policy and grace.

    >>> from hypothesis import find
    >>> find(every_schedules(), lambda e: e.catch_up == "all").catch_up
    'all'
    """
    anchors = st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
    return st.builds(
        Every,
        _SECONDS,
        anchor=st.just(datetime(1970, 1, 1, tzinfo=UTC)) | anchors,
        catch_up=_CATCH_UPS,
        grace=_GRACES,
    )


def schedules() -> st.SearchStrategy[Cron | Every]:
    """`Cron` schedules in a few time zones and `Every` schedules, with any catch-up
    policy and grace.

    >>> from hypothesis import find
    >>> type(find(schedules(), lambda s: isinstance(s, Every))).__name__
    'Every'
    """
    zoned = crons(tz=st.sampled_from(_ZONES)) | nasty_crons()

    @st.composite
    def varied(draw: st.DrawFn) -> Cron:
        return attrs.evolve(draw(zoned), catch_up=draw(_CATCH_UPS), grace=draw(_GRACES))

    return st.one_of(varied(), every_schedules())


def quotas() -> st.SearchStrategy[Quota]:
    """`Quota` values: per calendar period in a few time zones, or per rolling window.

    >>> from hypothesis import find
    >>> find(quotas(), lambda q: q.window is not None).per is None
    True
    """
    periods = st.sampled_from(("minute", "hour", "day", "week", "month", "year"))
    max_runs = st.integers(1, 10**6)
    return st.one_of(
        st.builds(Quota, max_runs=max_runs, per=periods, tz=st.sampled_from(_ZONES)),
        st.builds(Quota, max_runs=max_runs, window=_SECONDS),
    )


def limits() -> st.SearchStrategy[Limits]:
    """`Limits`: a concurrency limit, per-label limits and a quota, each optional.

    >>> from hypothesis import find
    >>> find(limits(), lambda lim: lim.quota is not None).quota.max_runs >= 1
    True
    """
    labels = st.dictionaries(
        st.sampled_from(("device", "site", "tenant", "ü")), st.integers(1, 100), max_size=3
    )
    return st.builds(
        Limits,
        max_concurrency=st.none() | st.integers(1, 1000),
        per_label=labels,
        quota=st.none() | quotas(),
    )
