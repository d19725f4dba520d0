"""Hypothesis strategies for retry policies and cron schedules.

Re-exported from ``runlife.testing.strategies``.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from runlife._core.policy import Retry
from runlife._core.schedule import Cron
from runlife.exceptions import InvalidPolicy

__all__ = ("cron_expressions", "crons", "retries")

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
