"""Schedules: when a job fires. `Cron` (a cron expression in a time zone) and `Every`.

Both are pure values: ``next_after(moment)`` says when the schedule fires next,
``due(last_fired, now)`` which fire times are due under its catch-up policy. The
runtime does the waiting.

croniter is used here only, and only to parse and validate expressions (its
``expand``): the fire times come from the matcher below, which walks the expanded
fields in the schedule's *local* wall time and then maps each local time onto an
instant with runlife's DST rules (below). That is both faster than croniter's
iterator (a few µs against ~40 µs) and what makes the DST rules exact:

* a local fire time that does not exist (the spring-forward gap) fires at the first
  instant after the gap, so a daily job is never lost;
* a local time that occurs twice (fall-back) fires once, at its first occurrence.

In UTC, where neither case arises, the fire times are croniter's.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from runlife._core.convert import aware
from runlife._core.values import MAX_SECONDS
from runlife.exceptions import InvalidPolicy

__all__ = (
    "CatchUp",
    "Cron",
    "Every",
    "Schedule",
    "localize",
    "schedule_from_spec",
    "zone",
    "zone_name",
)

CatchUp = Literal["latest", "all", "none"]
"""What a schedule does with fire times it missed (the runtime was down or late).

``"latest"`` fires once for the latest missed time, ``"all"`` fires each missed time
in order, ``"none"`` fires only a time that is not late (within ``grace``, 60 s by
default).
"""

_CATCH_UPS = ("latest", "all", "none")
_NONE_GRACE = timedelta(seconds=60)
_MINUTE = timedelta(minutes=1)
_TICK = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# How far ahead (in years) a fire time is searched for. The rarest expression that
# is accepted (the fifth Monday of February) fires once in 28 years, or 40 across a
# century that skips a leap year.
_HORIZON_YEARS = 60


def zone(name: str | tzinfo, field: str = "tz") -> tzinfo:
    """The time zone called *name* (an IANA name such as ``"Europe/Paris"``).

    ``"UTC"`` gives `datetime.UTC`, so that UTC schedules return plain UTC datetimes.

    Raises:
        InvalidPolicy: *name* is not a known time zone; the error names *field*.
    """
    if isinstance(name, tzinfo):
        return name
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidPolicy(
            field, name, "an IANA time zone name such as 'UTC' or 'Europe/Paris'"
        ) from None


def zone_name(tz: str | tzinfo, field: str = "tz") -> str:
    """The IANA name of time zone *tz* (a name, or a zone that knows its name).

    Raises:
        InvalidPolicy: *tz* is a zone without a name (a fixed offset, say).

    >>> zone_name(ZoneInfo("Europe/Paris")), zone_name(UTC), zone_name("Asia/Tokyo")
    ('Europe/Paris', 'UTC', 'Asia/Tokyo')
    """
    if isinstance(tz, str):
        return tz
    if tz is UTC:
        return "UTC"
    key = getattr(tz, "key", None)
    if isinstance(key, str):
        return key
    raise InvalidPolicy(field, tz, "a time zone with an IANA name such as 'Europe/Paris'")


def localize(local: datetime, tz: tzinfo) -> datetime:
    """The instant at which wall-clock time *local* (naive) happens in *tz*.

    A time that occurs twice (fall-back) is its first occurrence; a time that does
    not exist (spring-forward gap) is the first instant after the gap. The result
    is aware, in *tz*.

    >>> from zoneinfo import ZoneInfo
    >>> paris = ZoneInfo("Europe/Paris")
    >>> localize(datetime(2026, 3, 29, 2, 30), paris).isoformat()  # in the gap
    '2026-03-29T03:00:00+02:00'
    >>> localize(datetime(2026, 10, 25, 2, 30), paris).isoformat()  # twice: the first
    '2026-10-25T02:30:00+02:00'
    """
    first = local.replace(tzinfo=tz, fold=0)
    if tz is UTC:
        return first
    back = first.astimezone(UTC).astimezone(tz)
    if back.replace(tzinfo=None) == local:
        return back
    return _gap_end(local, tz)


def _gap_end(local: datetime, tz: tzinfo) -> datetime:
    # In a gap, fold=1 reads the time with the offset after the transition (an
    # instant before it) and fold=0 with the offset before (an instant after it),
    # so the transition lies between the two: bisect to the second.
    lo = int(local.replace(tzinfo=tz, fold=1).timestamp())
    hi = int(local.replace(tzinfo=tz, fold=0).timestamp())
    after = datetime.fromtimestamp(hi, tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, tz)


def _timedelta_or_none(value: float | timedelta | None) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise InvalidPolicy("grace", value, "None, seconds >= 0 or a timedelta")
    try:
        return timedelta(seconds=value)
    except OverflowError:
        raise InvalidPolicy("grace", value, "None, seconds >= 0 or a timedelta") from None


def _check_grace(_inst: object, _attr: object, value: timedelta | None) -> None:
    if value is not None and value < timedelta(0):
        raise InvalidPolicy("grace", value, "None, seconds >= 0 or a timedelta")


def _check_catch_up(_inst: object, _attr: object, value: object) -> None:
    if value not in _CATCH_UPS:
        raise InvalidPolicy("catch_up", value, "one of 'latest', 'all', 'none'")


class _Schedule:
    """What `Cron` and `Every` share: the catch-up decision."""

    catch_up: CatchUp
    grace: timedelta | None

    def next_after(self, moment: datetime) -> datetime:
        raise NotImplementedError

    def _latest_at_or_before(self, start: datetime, now: datetime) -> datetime | None:
        # The latest fire in (start, now]. Search back from now over growing spans
        # so that a minutely cron after a month offline costs a few steps, not 40 000.
        for span in (timedelta(hours=1), timedelta(days=1), timedelta(days=32), None):
            lo = start if span is None else max(start, now - span)
            latest = None
            fire = self.next_after(lo)
            while fire <= now:
                latest = fire
                fire = self.next_after(fire)
            if latest is not None or lo == start:
                return latest
        return None  # pragma: no cover - the last span always ends the loop

    def due(
        self, last_fired: datetime | None, now: datetime, *, limit: int = 1000
    ) -> tuple[datetime, ...]:
        """The fire times due at *now*, given the schedule last fired at *last_fired*.

        Fire times in ``(last_fired, now]`` are candidates; one older than ``grace``
        (``now - fire > grace``) is missed. ``catch_up="all"`` returns the
        candidates in order (at most *limit*, the earliest: the rest are due at the
        next call), ``"latest"`` only the latest, ``"none"`` only the latest and
        only if it is within ``grace`` (60 s unless given). A schedule that never
        fired (*last_fired* None) has nothing due: it fires from now on, so the
        runtime records when it enabled the schedule.
        """
        if last_fired is None:
            return ()
        now, start = aware(now).astimezone(UTC), aware(last_fired).astimezone(UTC)
        grace = self.grace
        if grace is None and self.catch_up == "none":
            grace = _NONE_GRACE
        if grace is not None:
            # A fire at exactly now - grace is still on time.
            start = max(start, now - grace - _TICK)
        if start >= now:
            return ()
        if self.catch_up != "all":
            latest = self._latest_at_or_before(start, now)
            return () if latest is None else (latest,)
        fires: list[datetime] = []
        fire = self.next_after(start)
        while fire <= now and len(fires) < limit:
            fires.append(fire)
            fire = self.next_after(fire)
        return tuple(fires)


def _interval(value: float | timedelta) -> timedelta:
    if isinstance(value, timedelta):
        interval = value
    elif isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidPolicy("seconds", value, "a positive number of seconds or a timedelta")
    else:
        try:
            interval = timedelta(seconds=value)
        except OverflowError:
            raise InvalidPolicy(
                "seconds", value, "a positive number of seconds or a timedelta"
            ) from None
    if interval <= timedelta(0) or interval.total_seconds() > MAX_SECONDS:
        raise InvalidPolicy(
            "seconds", value, "a positive number of seconds, at most a century, or a timedelta"
        )
    return interval


@attrs.frozen
class Every(_Schedule):
    """Fire every *seconds*, on a fixed grid: ``anchor + k * seconds``.

    The grid is anchored (at the Unix epoch unless *anchor* is given), so every
    process computes the same fire times and a restart does not shift them:
    ``Every(3600)`` fires on the hour, UTC.

    Raises:
        InvalidPolicy: *seconds* is not positive, or *catch_up* / *grace* is bad.

    >>> every = Every(90)
    >>> every.next_after(datetime(2026, 3, 10, 2, 0, 0, tzinfo=UTC)).isoformat()
    '2026-03-10T02:01:30+00:00'
    """

    seconds: timedelta = attrs.field(converter=_interval)
    anchor: datetime = attrs.field(default=_EPOCH, converter=aware, kw_only=True)
    catch_up: CatchUp = attrs.field(default="latest", validator=_check_catch_up, kw_only=True)
    grace: timedelta | None = attrs.field(
        default=None, converter=_timedelta_or_none, validator=_check_grace, kw_only=True
    )

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly later than *moment* (aware, UTC).

        Raises `InvalidPolicy` when that time is past the last moment a datetime holds.
        """
        steps = (aware(moment) - self.anchor) // self.seconds + 1
        try:
            return (self.anchor + steps * self.seconds).astimezone(UTC)
        except OverflowError:
            raise InvalidPolicy(
                "moment", moment, "a moment whose next fire time is before the year 10000"
            ) from None

    def to_spec(self) -> dict[str, Any]:
        """This schedule as JSON: ``"kind": "every"``, seconds, the anchor in UTC.

        >>> Every(90).to_spec()
        {'kind': 'every', 'seconds': 90.0, 'anchor': '1970-01-01T00:00:00+00:00', 'catch_up': 'latest', 'grace': None}
        """  # noqa: E501
        return {
            "kind": "every",
            "seconds": self.seconds.total_seconds(),
            "anchor": self.anchor.astimezone(UTC).isoformat(),
            "catch_up": self.catch_up,
            "grace": None if self.grace is None else self.grace.total_seconds(),
        }

    @classmethod
    def from_spec(cls, data: Mapping[str, Any]) -> Every:
        """Read a schedule written by `to_spec` (see also `schedule_from_spec`).

        Raises:
            InvalidPolicy: a missing or unknown key, or a bad value; ``field`` is
                its path (``"schedule.seconds"``).

        >>> Every.from_spec(Every(3600).to_spec()) == Every(3600)
        True
        """
        from runlife._core.spec import read_object, read_str, under

        with under("schedule"):
            fields = read_object(data, _EVERY_KEYS, "an every schedule's spec")
            _check_kind(fields["kind"], "every")
            text = read_str(fields["anchor"], "anchor", _MOMENT)
            try:
                anchor = datetime.fromisoformat(text)
            except ValueError:
                raise InvalidPolicy("anchor", text, _MOMENT) from None
            return cls(
                fields["seconds"],
                anchor=anchor,
                catch_up=fields["catch_up"],
                grace=fields["grace"],
            )

    def _latest_at_or_before(self, start: datetime, now: datetime) -> datetime | None:
        # On a grid the latest fire is arithmetic, however many were missed.
        latest = self.anchor + ((now - self.anchor) // self.seconds) * self.seconds
        return latest.astimezone(UTC) if latest > start else None


def _next_table(values: Sequence[int | str], size: int, lo: int) -> tuple[int, ...]:
    # next_table[i]: the smallest allowed value >= i, or -1 when there is none.
    allowed = set(range(lo, size)) if values[0] == "*" else {int(v) for v in values}
    table = [-1] * (size + 1)
    nxt = -1
    for i in range(size - 1, lo - 1, -1):
        if i in allowed:
            nxt = i
        table[i] = nxt
    return tuple(table)


def _expand(expr: str) -> tuple[list[list[Any]], dict[Any, set[Any]]]:
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidPolicy("expr", expr, "a cron expression such as '0 2 * * *'")
    text = " ".join(expr.split())
    if text.startswith("@"):
        if text.lower() not in _ALIASES:
            raise InvalidPolicy("expr", expr, f"a cron expression or one of {', '.join(_ALIASES)}")
    elif len(text.split()) != 5:
        raise InvalidPolicy(
            "expr",
            expr,
            "5 fields (minute hour day-of-month month day-of-week); "
            f"got {len(text.split())} (seconds and year fields are not supported)",
        )
    elif "w" in text.lower().split()[2]:
        raise InvalidPolicy("expr", expr, "a day-of-month without 'W' (nearest weekday)")
    try:
        expanded, nth = _croniter_expand(text)
    except Exception as exc:  # croniter raises several unrelated classes
        raise InvalidPolicy("expr", expr, _explain(text, exc)) from exc
    return expanded, nth


def _croniter_expand(text: str) -> tuple[Any, Any]:
    # Imported on first use: croniter costs ~25 ms of every `import runlife`, and
    # only a Cron being built needs it.
    from croniter import croniter  # noqa: TID251 - the one module croniter may live in

    return croniter.expand(text)


def _explain(text: str, exc: Exception) -> str:
    # croniter says what is wrong but not always where: find the field that fails
    # on its own to name it.
    parts = text.split()
    if len(parts) == 5:
        for index, part in enumerate(parts):
            alone = ["*"] * 5
            alone[index] = part
            try:
                _croniter_expand(" ".join(alone))
            except Exception:
                return (
                    f"a valid cron expression: the {_FIELDS[index]} field {part!r} is wrong ({exc})"
                )
    return f"a valid cron expression ({exc})"


class _Matcher:
    """Finds the next local wall time matching an expanded cron expression."""

    __slots__ = (
        "_dom_only",
        "_dow_only",
        "any_day",
        "dom",
        "dom_last",
        "dow",
        "hours",
        "minutes",
        "months",
        "nth",
    )

    def __init__(self, expanded: Sequence[Sequence[Any]], nth: dict[Any, set[Any]]) -> None:
        minutes, hours, days, months, weekdays = expanded
        self.minutes = _next_table(minutes, 60, 0)
        self.hours = _next_table(hours, 24, 0)
        self.months = _next_table(months, 13, 1)
        dom_any = days[0] == "*"
        dow_any = weekdays[0] == "*"
        self.dom = frozenset(int(d) for d in days if d not in ("*", "l"))
        self.dom_last = "l" in days
        self.nth = tuple((wd, -1 if n == "l" else int(n)) for wd, ns in nth.items() for n in ns)
        # The weekdays that match on any week (those with a '#'/'L' are in nth).
        self.dow = frozenset(int(w) for w in weekdays if w != "*" and int(w) not in nth)
        self.any_day = dom_any and dow_any
        # When both day fields are restricted a day matching either one fires
        # (vixie cron, croniter): day_ok ORs them unless one of them is '*'.
        self._dom_only = not dom_any and dow_any
        self._dow_only = dom_any and not dow_any

    def day_ok(self, day: int, dim: int, first_dow: int) -> bool:
        dom = day in self.dom or (self.dom_last and day == dim)
        if self._dom_only:
            return dom
        cron_dow = (first_dow + day) % 7  # calendar's Monday=0, first day is day 1
        dow = cron_dow in self.dow
        if not dow:
            for wd, n in self.nth:
                if wd == cron_dow and ((day + 7 > dim) if n < 0 else (day - 1) // 7 + 1 == n):
                    dow = True
                    break
        if self._dow_only:
            return dow
        return dom or dow

    def next(self, start: datetime, horizon: int) -> datetime | None:
        """The first matching wall time at or after *start* (whole minutes)."""
        y, mo, d, h, mi = start.year, start.month, start.day, start.hour, start.minute
        months, hours, minutes = self.months, self.hours, self.minutes
        any_day = self.any_day
        while y <= horizon:
            nmo = months[mo]
            if nmo < 0:
                y, mo, d, h, mi = y + 1, 1, 1, 0, 0
                continue
            if nmo != mo:
                mo, d, h, mi = nmo, 1, 0, 0
            first_dow, dim = calendar.monthrange(y, mo)
            if not any_day:
                day_ok = self.day_ok
                start_day = d
                while d <= dim and not day_ok(d, dim, first_dow):
                    d += 1
                if d != start_day:
                    h, mi = 0, 0
            if d > dim:
                if mo == 12:
                    y, mo, d, h, mi = y + 1, 1, 1, 0, 0
                else:
                    mo, d, h, mi = mo + 1, 1, 0, 0
                continue
            nh = hours[h]
            if nh < 0:
                d, h, mi = d + 1, 0, 0
                continue
            if nh != h:
                h, mi = nh, 0
            nmi = minutes[mi]
            if nmi < 0:
                if h == 23:
                    d, h, mi = d + 1, 0, 0
                else:
                    h, mi = h + 1, 0
                continue
            return datetime(y, mo, d, h, nmi)
        return None


@attrs.frozen
class Cron(_Schedule):
    """Fire at the times of a cron expression, read in time zone *tz*.

    Five fields (minute hour day-of-month month day-of-week) with croniter's
    syntax: ``*``, lists, ranges, steps, names (``jan``, ``mon``), ``L`` for the
    last day of the month, ``1#2`` for the second Monday, ``L5`` for the last
    Friday, and the aliases ``@hourly`` … ``@yearly``. When both day fields are
    restricted a day matching either fires (as in cron).

    Args:
        expr: the cron expression.
        tz: the IANA time zone the expression is read in (default UTC).
        catch_up: what to do with missed fire times (see `CatchUp`).
        grace: a fire time older than this (seconds or timedelta) is missed.

    Raises:
        InvalidPolicy: a bad expression (naming it and the field at fault), an
            unknown time zone, a bad *catch_up* or a negative *grace*.

    >>> from zoneinfo import ZoneInfo
    >>> cron = Cron("0 2 * * *", tz="Europe/Paris")
    >>> fire = cron.next_after(datetime(2026, 3, 28, 12, 0, tzinfo=UTC))  # 02:00 is in the gap
    >>> fire.isoformat(), fire.astimezone(ZoneInfo("Europe/Paris")).isoformat()
    ('2026-03-29T01:00:00+00:00', '2026-03-29T03:00:00+02:00')
    """

    expr: str
    tz: str = attrs.field(default="UTC", kw_only=True)
    catch_up: CatchUp = attrs.field(default="latest", validator=_check_catch_up, kw_only=True)
    grace: timedelta | None = attrs.field(
        default=None, converter=_timedelta_or_none, validator=_check_grace, kw_only=True
    )
    _zone: tzinfo = attrs.field(init=False, eq=False, repr=False)
    _matcher: _Matcher = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_zone", zone(self.tz))
        expanded, nth = _expand(self.expr)
        if nth and expanded[2][0] != "*":
            # croniter then ignores the day of month; cron would OR them. Refuse the
            # ambiguity rather than pick one silently.
            raise InvalidPolicy(
                "expr",
                self.expr,
                "a day-of-month of '*' when the day-of-week uses '#' or 'L' "
                "(use two schedules for 'this day or that weekday')",
            )
        matcher = _Matcher(expanded, nth)
        object.__setattr__(self, "_matcher", matcher)
        probe = datetime(2000, 1, 1)
        if matcher.next(probe, probe.year + 400) is None:
            raise InvalidPolicy("expr", self.expr, "an expression that matches a real date")

    def to_spec(self) -> dict[str, Any]:
        """This schedule as JSON: ``"kind": "cron"``, the expression, the zone's name.

        >>> Cron("0 2 * * *", tz="Europe/Paris").to_spec()
        {'kind': 'cron', 'expr': '0 2 * * *', 'tz': 'Europe/Paris', 'catch_up': 'latest', 'grace': None}
        """  # noqa: E501
        return {
            "kind": "cron",
            "expr": self.expr,
            "tz": zone_name(self.tz),
            "catch_up": self.catch_up,
            "grace": None if self.grace is None else self.grace.total_seconds(),
        }

    @classmethod
    def from_spec(cls, data: Mapping[str, Any]) -> Cron:
        """Read a schedule written by `to_spec` (see also `schedule_from_spec`).

        Raises:
            InvalidPolicy: a missing or unknown key, or a bad value (a bad
                expression says which field of it is wrong); ``field`` is its path
                (``"schedule.expr"``).

        >>> Cron.from_spec(Cron("0 2 * * *", tz="Europe/Paris").to_spec()).tz
        'Europe/Paris'
        """
        from runlife._core.spec import read_object, under

        with under("schedule"):
            fields = read_object(data, _CRON_KEYS, "a cron schedule's spec")
            _check_kind(fields["kind"], "cron")
            return cls(
                fields["expr"],
                tz=fields["tz"],
                catch_up=fields["catch_up"],
                grace=fields["grace"],
            )

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly later than *moment*, aware, in UTC.

        A naive *moment* is read as UTC. Fire times are returned in UTC, like every
        time runlife stores: two aware datetimes of the same zone compare by wall
        time, ignoring ``fold``, which is wrong in a fall-back hour.

        Raises:
            InvalidPolicy: no fire time before year 9999 (only near that year).
        """
        tz = self._zone
        moment = aware(moment).astimezone(UTC)
        wall = moment if tz is UTC else moment.astimezone(tz)
        start = wall.replace(second=0, microsecond=0, tzinfo=None, fold=0) + _MINUTE
        horizon = start.year + _HORIZON_YEARS
        while True:
            local = self._matcher.next(start, horizon)
            if local is None:
                raise InvalidPolicy("moment", moment, "a moment with a fire time after it")
            if tz is UTC:
                return local.replace(tzinfo=UTC)
            fire = localize(local, tz).astimezone(UTC)
            # A wall time in a fall-back fold fires at its first occurrence, which
            # is before *moment* when *moment* is in the second pass of the fold.
            if fire > moment:
                return fire
            start = local + _MINUTE


Schedule = Cron | Every
"""A job's schedule."""


_EVERY_KEYS = ("kind", "seconds", "anchor", "catch_up", "grace")
_CRON_KEYS = ("kind", "expr", "tz", "catch_up", "grace")
_KINDS: dict[str, type[Cron] | type[Every]] = {"cron": Cron, "every": Every}
_MOMENT = "an ISO 8601 moment such as '1970-01-01T00:00:00+00:00'"


def _check_kind(kind: object, expected: str) -> None:
    if kind != expected:
        raise InvalidPolicy("kind", kind, repr(expected))


def schedule_from_spec(data: Mapping[str, Any]) -> Schedule:
    """Read a `Cron` or an `Every` from its spec, by its ``"kind"``.

    Raises:
        InvalidPolicy: the kind is neither ``"cron"`` nor ``"every"``, or the spec
            is malformed; ``field`` is its path (``"schedule.kind"``).

    >>> schedule_from_spec(Cron("*/5 * * * *").to_spec())
    Cron(expr='*/5 * * * *', tz='UTC', catch_up='latest', grace=None)
    >>> schedule_from_spec({"kind": "hourly"})
    Traceback (most recent call last):
    ...
    runlife.exceptions.InvalidPolicy: schedule.kind='hourly' is invalid: expected 'cron' or 'every'
    """
    from runlife._core.spec import ABSENT, under

    kind = data.get("kind", ABSENT) if isinstance(data, Mapping) else None
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        with under("schedule"):
            if not isinstance(data, Mapping):
                raise InvalidPolicy("", data, "a schedule's spec: an object with a 'kind'")
            raise InvalidPolicy("kind", kind, "'cron' or 'every'")
    return cls.from_spec(data)
