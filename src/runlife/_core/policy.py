"""Policies as pure values and pure decisions: retry, timeout, limits and quotas, items.

Nothing here sleeps or reads a clock: every decision takes ``now`` (or ``at``) and
returns what should happen, and the runtime carries it out. A retry timeline
(attempts cut at their timeout and retried after a delay until the run fails) is a
sequence of such decisions (see ``docs/policies.md``):

- `Timeout.next_deadline` says when the running attempt must be cut;
- its `Deadline.error` is the attempt's error;
- `decide_failure` says what follows a failed attempt: RETRYING until when, or
  FAILED with which error;
- `items_outcome` says how a run whose items partly failed ends, and
  `resumed_items` which items of an earlier run a resumed run skips.
"""

from __future__ import annotations

import builtins
import importlib
import math
import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import attrs

from runlife._core.convert import aware
from runlife._core.immediate import is_immediate
from runlife._core.records import ErrorInfo, Item, ItemCounts
from runlife._core.schedule import localize, zone, zone_name
from runlife._core.status import Status
from runlife._core.values import MAX_SECONDS
from runlife.exceptions import InvalidPolicy, QuotaExceeded

if TYPE_CHECKING:
    from runlife._core.lifecycle import Lifecycle
    from runlife._core.run import Run

__all__ = (
    "Deadline",
    "DeadlineKind",
    "FailureDecision",
    "ItemsOutcome",
    "Limits",
    "Quota",
    "QuotaPeriod",
    "QuotaUsage",
    "Retry",
    "Timeout",
    "decide_failure",
    "decide_wait_timeout",
    "items_outcome",
    "resumed_items",
    "wait_limit",
)

# The longest delay runlife hands out (about 31 years): an exponential backoff
# without max_delay grows past what a timedelta or a database can hold.
_FOREVER = 1e9
_CONFIG_KEYS = frozenset({"max_retries", "retry_delay_seconds", "timeout_seconds"})


class _Random(Protocol):
    def random(self) -> float: ...


_SECONDS = "seconds >= 0 (int or float) or a timedelta"
_LIMIT = "None, seconds > 0 (int or float) or a timedelta"


def _to_seconds(field: str, value: Any, accepted: str = _SECONDS) -> float:
    """*value* (seconds or a timedelta) as float seconds >= 0, or `InvalidPolicy`."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise InvalidPolicy(field, value, accepted)
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidPolicy(field, value, accepted)
    if seconds > MAX_SECONDS:
        raise InvalidPolicy(field, value, f"{accepted}, of at most {MAX_SECONDS:g} s (a century)")
    return seconds


def _seconds_of(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _to_limit(field: str, value: Any) -> timedelta | None:
    """*value* (None, seconds or a timedelta) as None or a positive timedelta."""
    if value is None:
        return None
    seconds = _to_seconds(field, value, _LIMIT)
    if isinstance(value, timedelta):
        limit = value
    else:
        try:
            limit = timedelta(seconds=seconds)
        except OverflowError:  # more than a timedelta holds (about 2.7 million years)
            raise InvalidPolicy(field, value, _LIMIT) from None
    if not limit:  # zero, or less than the microsecond a timedelta counts in
        raise InvalidPolicy(field, value, _LIMIT)
    return limit


def _to_classes(field: str, value: Any) -> tuple[type[BaseException], ...]:
    """An exception class or an iterable of them, as a tuple."""
    if isinstance(value, type):
        value_tuple: tuple[Any, ...] = (value,)
    elif isinstance(value, tuple | list | set | frozenset):
        value_tuple = tuple(value)
    else:
        raise InvalidPolicy(field, value, "an exception class or a tuple of them")
    if not all(isinstance(c, type) and issubclass(c, BaseException) for c in value_tuple):
        raise InvalidPolicy(field, value, "an exception class or a tuple of them")
    return value_tuple


# attrs converters (named functions, so that mypy's attrs plugin reads their types)


def _delay(value: float | timedelta) -> float:
    return _to_seconds("delay", value)


def _max_delay(value: float | timedelta | None) -> float | None:
    return None if value is None else _to_seconds("max_delay", value, "None or " + _SECONDS)


def _retry_on(value: Any) -> tuple[type[BaseException], ...]:
    return _to_classes("retry_on", value)


def _give_up_on(value: Any) -> tuple[type[BaseException], ...]:
    return _to_classes("give_up_on", value)


def _attempt_limit(value: float | timedelta | None) -> timedelta | None:
    return _to_limit("attempt", value)


def _run_limit(value: float | timedelta | None) -> timedelta | None:
    return _to_limit("run", value)


def _queued_limit(value: float | timedelta | None) -> timedelta | None:
    return _to_limit("queued", value)


def _heartbeat_limit(value: float | timedelta | None) -> timedelta | None:
    return _to_limit("heartbeat", value)


def _window(value: float | timedelta | None) -> timedelta | None:
    return _to_limit("window", value)


def _positive_int(field: str, *, allow_none: bool = False) -> Any:
    def check(_inst: object, _attr: object, value: Any) -> None:
        if value is None and allow_none:
            return
        if type(value) is not int or value < 1:
            raise InvalidPolicy(field, value, ("None or " if allow_none else "") + "an int >= 1")

    return check


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds:g} s"


def _error_type(error: BaseException | ErrorInfo) -> str:
    return error.type if isinstance(error, ErrorInfo) else type(error).__qualname__


@attrs.frozen(kw_only=True)
class Retry:
    """How often and after which delay a failed attempt is tried again.

    Args:
        max_attempts: attempts in all, the first try included (>= 1).
        delay: seconds (or a timedelta) before the second attempt; 0 is valid.
        backoff: None for a fixed delay, ``"exponential"`` for
            ``delay * factor ** (n - 1)`` before attempt n + 1.
        factor: the exponential growth factor (>= 1).
        max_delay: a cap on every delay, jitter included.
        jitter: spread each delay uniformly over ``±jitter`` of itself (0 to 1).
        retry_on: exception classes that are retried.
        give_up_on: exception classes that are never retried; wins over *retry_on*.
        retry_abandoned: whether an attempt whose worker was lost (kind
            ``"abandoned"``) is retried (spending budget) or ends the run FAILED.

    An attempt cut by its timeout counts as a `TimeoutError` for *retry_on* and
    *give_up_on*. An ``"interrupted"`` attempt (its runtime shut down) is always
    tried again at once and never spends budget; ``"cancelled"`` and ``"items"``
    are never retried.

    Raises:
        InvalidPolicy: a bad value; the message names the parameter.

    >>> policy = Retry(max_attempts=3, delay=60)
    >>> [policy.next_delay(n, ValueError("boom")) for n in (1, 2, 3)]
    [60.0, 60.0, None]
    >>> Retry(max_attempts=5, delay=10, backoff="exponential", max_delay=30).next_delay(3)
    30.0
    """

    max_attempts: int = attrs.field(default=3, validator=_positive_int("max_attempts"))
    delay: float = attrs.field(default=60.0, converter=_delay)
    backoff: Literal["exponential"] | None = None
    factor: float = 2.0
    max_delay: float | None = attrs.field(default=None, converter=_max_delay)
    jitter: float = 0.0
    retry_on: tuple[type[BaseException], ...] = attrs.field(
        default=(Exception,), converter=_retry_on
    )
    give_up_on: tuple[type[BaseException], ...] = attrs.field(default=(), converter=_give_up_on)
    retry_abandoned: bool = True

    def __attrs_post_init__(self) -> None:
        if self.backoff not in (None, "exponential"):
            raise InvalidPolicy("backoff", self.backoff, "None (fixed delay) or 'exponential'")
        factor = self.factor
        if (
            isinstance(factor, bool)
            or not isinstance(factor, int | float)
            or not math.isfinite(factor)
            or factor < 1
        ):
            raise InvalidPolicy("factor", factor, "a finite number >= 1")
        jitter = self.jitter
        if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter <= 1:
            raise InvalidPolicy("jitter", jitter, "a fraction from 0 to 1")
        object.__setattr__(self, "factor", float(factor))
        object.__setattr__(self, "jitter", float(jitter))
        if not isinstance(self.retry_abandoned, bool):
            raise InvalidPolicy("retry_abandoned", self.retry_abandoned, "True or False")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Retry:
        """Read the operators' form ``{"max_retries": 3, "retry_delay_seconds": 60}``.

        ``max_retries`` counts every attempt (the first included), as in the
        configurations this replaces; ``timeout_seconds`` is `Timeout`'s and is
        ignored here. Absent keys keep `Retry`'s defaults.

        Raises:
            InvalidPolicy: an unknown key, or a bad value (named by its key).

        >>> Retry.from_config({"max_retries": 3, "retry_delay_seconds": 60, "timeout_seconds": 300})
        Retry(max_attempts=3, delay=60.0, backoff=None, factor=2.0, max_delay=None, jitter=0.0, retry_on=(<class 'Exception'>,), give_up_on=(), retry_abandoned=True)
        """  # noqa: E501
        _check_config(config)
        kwargs: dict[str, Any] = {}
        if "max_retries" in config:
            value = config["max_retries"]
            if type(value) is not int or value < 1:
                raise InvalidPolicy("max_retries", value, "an int >= 1 (it counts every attempt)")
            kwargs["max_attempts"] = value
        if "retry_delay_seconds" in config:
            kwargs["delay"] = _to_seconds("retry_delay_seconds", config["retry_delay_seconds"])
        return cls(**kwargs)

    def to_spec(self) -> dict[str, Any]:
        """This policy as JSON: delays in seconds, exception classes by qualified name.

        A class is named ``"module.Name"``, or ``"module:Outer.Name"`` when it is
        nested in another class (so that the module's part is never a guess).

        >>> Retry(max_attempts=3, delay=60, give_up_on=(PermissionError,)).to_spec()
        {'max_attempts': 3, 'delay': 60.0, 'backoff': None, 'factor': 2.0, 'max_delay': None, 'jitter': 0.0, 'retry_on': ['builtins.Exception'], 'give_up_on': ['builtins.PermissionError'], 'retry_abandoned': True}
        """  # noqa: E501
        return {
            "max_attempts": self.max_attempts,
            "delay": self.delay,
            "backoff": self.backoff,
            "factor": self.factor,
            "max_delay": self.max_delay,
            "jitter": self.jitter,
            "retry_on": [_class_name(c) for c in self.retry_on],
            "give_up_on": [_class_name(c) for c in self.give_up_on],
            "retry_abandoned": self.retry_abandoned,
        }

    @classmethod
    def from_spec(cls, data: Mapping[str, Any]) -> Retry:
        """Read a policy written by `to_spec`.

        An exception class is imported from its module when that module imports
        here. When it does not (a process without the host's code), a placeholder
        class of the same module and name stands for it: it matches the
        `ErrorInfo` values a store keeps by name, as the class would (see
        `retries`), so every process decides alike on a stored failure.

        Raises:
            InvalidPolicy: a missing or unknown key, or a bad value; ``field`` is
                its path (``"retry.delay"``).

        >>> Retry.from_spec(Retry(give_up_on=(PermissionError,)).to_spec()).give_up_on
        (<class 'PermissionError'>,)
        >>> spec = {**Retry().to_spec(), "give_up_on": ["nowhere.errors.Fatal"]}
        >>> Retry.from_spec(spec).retries(ErrorInfo(type="Fatal"))
        False
        """
        from runlife._core.spec import read_object, read_strs, under

        with under("retry"):
            fields = read_object(data, _RETRY_KEYS, "a retry spec")
            return cls(
                max_attempts=fields["max_attempts"],
                delay=fields["delay"],
                backoff=fields["backoff"],
                factor=fields["factor"],
                max_delay=fields["max_delay"],
                jitter=fields["jitter"],
                retry_on=_classes_from_spec(read_strs(fields["retry_on"], "retry_on"), "retry_on"),
                give_up_on=_classes_from_spec(
                    read_strs(fields["give_up_on"], "give_up_on"), "give_up_on"
                ),
                retry_abandoned=fields["retry_abandoned"],
            )

    def retries(self, error: BaseException | ErrorInfo | None) -> bool:
        """Whether *error* is one this policy retries at all (budget aside).

        An exception is matched by class; an `ErrorInfo` (what a store keeps) by
        its kind and, for kind ``"error"``, by its type: a builtin exception's
        name gives its class, matched as an exception would be; any other name is
        compared with the names of the classes in *give_up_on* and *retry_on*
        (where ``Exception`` and ``BaseException`` match every name).
        """
        if error is None:
            return True
        if isinstance(error, BaseException):
            return not isinstance(error, self.give_up_on) and isinstance(error, self.retry_on)
        kind = error.kind
        if kind == "interrupted":
            return True
        if kind == "abandoned":
            return self.retry_abandoned
        if kind == "timeout":
            return not issubclass(TimeoutError, self.give_up_on) and issubclass(
                TimeoutError, self.retry_on
            )
        if kind != "error":
            return False
        name = error.type
        builtin = getattr(builtins, name, None)
        if isinstance(builtin, type) and issubclass(builtin, BaseException):
            # A builtin's class is known from its name: match its subclasses too.
            return not issubclass(builtin, self.give_up_on) and issubclass(builtin, self.retry_on)
        if any(c.__qualname__ == name for c in self.give_up_on):
            return False
        return any(c in (Exception, BaseException) or c.__qualname__ == name for c in self.retry_on)

    def next_delay(
        self,
        attempt: int,
        error: BaseException | ErrorInfo | None = None,
        rng: _Random | None = None,
    ) -> float | None:
        """Seconds to wait before trying again after attempt *attempt* failed, or None.

        *attempt* counts the attempts that spent budget so far (the failed one
        included; interrupted ones do not count). None means give up: the budget
        is spent or *error* is not retried (see `retries`). *rng* draws the
        jitter (``random`` unless given). Never sleeps.
        """
        if error is not None and not self.retries(error):
            return None
        if isinstance(error, ErrorInfo) and error.kind == "interrupted":
            return 0.0
        if attempt >= self.max_attempts:
            return None
        delay = self.delay
        if self.backoff is not None and attempt > 1:
            try:
                delay *= self.factor ** (attempt - 1)
            except OverflowError:
                delay = _FOREVER
        cap = self.max_delay
        if self.jitter:
            draw = (rng or random).random()
            delay *= 1.0 + self.jitter * (2.0 * draw - 1.0)
        if is_immediate():
            return 0.0  # runlife.testing.immediate(): the retry, without its wait
        if cap is not None and delay > cap:
            return cap
        return delay if delay < _FOREVER else _FOREVER


_RETRY_KEYS = (
    "max_attempts",
    "delay",
    "backoff",
    "factor",
    "max_delay",
    "jitter",
    "retry_on",
    "give_up_on",
    "retry_abandoned",
)
_TIMEOUT_KEYS = ("attempt", "run", "queued", "heartbeat")
_QUOTA_KEYS = ("max_runs", "per", "window", "tz")
_LIMITS_KEYS = ("max_concurrency", "per_label", "quota")
_CLASS_NAME = "the qualified name of an exception class, such as 'builtins.TimeoutError'"
# Placeholders for exception classes that do not import here, by (module, qualname):
# one class per name, so that two readings of one spec give equal policies.
_PLACEHOLDERS: dict[tuple[str, str], type[BaseException]] = {}


def _class_name(cls: type[BaseException]) -> str:
    module, qualname = cls.__module__, cls.__qualname__
    return f"{module}:{qualname}" if "." in qualname else f"{module}.{qualname}"


def _classes_from_spec(names: list[str], field: str) -> tuple[type[BaseException], ...]:
    return tuple(_class_from_name(name, f"{field}[{i}]") for i, name in enumerate(names))


def _class_from_name(name: str, field: str) -> type[BaseException]:
    """The exception class *name* names (see `Retry.to_spec`), or its placeholder."""
    module, colon, qualname = name.partition(":")
    if not colon:
        module, _, qualname = name.rpartition(".")
    parts = qualname.split(".")
    if (
        not all(part.isidentifier() for part in module.split("."))
        or not parts[-1].isidentifier()
        or not all(part.isidentifier() or part == "<locals>" for part in parts)
    ):
        raise InvalidPolicy(field, name, _CLASS_NAME)
    try:
        found: object = importlib.import_module(module)
    except Exception:  # not importable here (or broken): match by name
        return _placeholder(module, qualname)
    for part in parts:
        found = getattr(found, part, _PLACEHOLDERS)
        if found is _PLACEHOLDERS:  # another version of the module, or a local class
            return _placeholder(module, qualname)
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise InvalidPolicy(field, name, _CLASS_NAME + ", not another object")
    return found


def _placeholder(module: str, qualname: str) -> type[BaseException]:
    key = (module, qualname)
    cls = _PLACEHOLDERS.get(key)
    if cls is None:
        namespace = {
            "__module__": module,
            "__qualname__": qualname,
            "__doc__": f"Stands for {module}.{qualname}, which does not import here: "
            "it matches stored errors by that name.",
        }
        cls = _PLACEHOLDERS.setdefault(
            key, type(qualname.rpartition(".")[2], (Exception,), namespace)
        )
    return cls


def _check_config(config: Mapping[str, Any]) -> None:
    if not isinstance(config, Mapping):
        raise InvalidPolicy("config", config, "a mapping")
    unknown = sorted(set(config) - _CONFIG_KEYS)
    if unknown:
        raise InvalidPolicy(
            "config",
            unknown[0],
            f"one of the keys {', '.join(sorted(_CONFIG_KEYS))}",
        )


DeadlineKind = Literal["attempt", "run", "queued", "heartbeat"]
"""Which limit of a `Timeout` a deadline comes from."""


@attrs.frozen(kw_only=True)
class Deadline:
    """A moment at which a run must be stopped, and which limit put it there.

    What the runtime does when it passes: an ``attempt`` or ``heartbeat`` deadline
    cuts the attempt and asks `decide_failure` (with the run's `Timeout`, so that
    no retry starts past the run's deadline); a ``run`` deadline ends the run
    FAILED (CANCELLED from QUEUED, which cannot fail); a ``queued`` deadline
    CANCELS the run. The error is `error`.
    """

    kind: DeadlineKind
    at: datetime
    limit: timedelta

    def error(self, attempt: int | None = None) -> ErrorInfo:
        """The error of a run (or of its attempt *attempt*) stopped at this deadline.

        Kind ``"timeout"``, except for heartbeat silence, which is ``"abandoned"``.

        >>> from datetime import datetime, UTC, timedelta
        >>> d = Deadline(kind="attempt", at=datetime(2026, 3, 10, 2, 5, tzinfo=UTC),
        ...              limit=timedelta(seconds=300))
        >>> d.error(1).message
        'attempt 1 exceeded its timeout of 300 s'
        """
        seconds = _fmt_seconds(self.limit.total_seconds())
        if self.kind == "heartbeat":
            return ErrorInfo(
                kind="abandoned",
                type="HeartbeatTimeout",
                message=f"no heartbeat for {seconds}; the worker is presumed lost",
            )
        if self.kind == "queued":
            message = f"the run waited in QUEUED longer than its timeout of {seconds}"
        else:
            what = f"attempt {attempt}" if attempt else "the attempt"
            if self.kind == "run":
                what = "the run"
            message = f"{what} exceeded its timeout of {seconds}"
        return ErrorInfo(kind="timeout", type="TimeoutError", message=message)


# On equal deadlines the broader limit is reported: it is the one no retry can fix.
_DEADLINE_ORDER: Mapping[str, int] = {"run": 0, "queued": 1, "attempt": 2, "heartbeat": 3}


@attrs.frozen(kw_only=True)
class Timeout:
    """Time limits of a run, in seconds (or timedeltas); None means no limit.

    Args:
        attempt: per attempt, from its start; time the attempt spends WAITING
            for a signal does not count (an approval may take hours).
        run: for the whole run across attempts, from its first start (WAITING
            counts: it bounds the run's whole life).
        queued: for each wait in QUEUED, from entering it.
        heartbeat: heartbeat silence after which a running attempt is abandoned
            (none while it waits for a signal: its runtime holds it meanwhile).

    Raises:
        InvalidPolicy: a value that is not None, positive seconds or a timedelta.

    >>> Timeout(attempt=300).attempt
    datetime.timedelta(seconds=300)
    """

    attempt: timedelta | None = attrs.field(default=None, converter=_attempt_limit)
    run: timedelta | None = attrs.field(default=None, converter=_run_limit)
    queued: timedelta | None = attrs.field(default=None, converter=_queued_limit)
    heartbeat: timedelta | None = attrs.field(default=None, converter=_heartbeat_limit)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Timeout:
        """Read ``{"timeout_seconds": 300}`` (the attempt limit) from the operators' form.

        The `Retry` keys are ignored; unknown keys are refused.

        >>> Timeout.from_config({"max_retries": 3, "timeout_seconds": 300}).attempt.seconds
        300
        """
        _check_config(config)
        if "timeout_seconds" not in config:
            return cls()
        return cls(attempt=_to_limit("timeout_seconds", config["timeout_seconds"]))

    def to_spec(self) -> dict[str, Any]:
        """These limits as JSON, in seconds (None: no limit).

        >>> Timeout(attempt=300).to_spec()
        {'attempt': 300.0, 'run': None, 'queued': None, 'heartbeat': None}
        """
        return {
            "attempt": _seconds_of(self.attempt),
            "run": _seconds_of(self.run),
            "queued": _seconds_of(self.queued),
            "heartbeat": _seconds_of(self.heartbeat),
        }

    @classmethod
    def from_spec(cls, data: Mapping[str, Any]) -> Timeout:
        """Read limits written by `to_spec`.

        Raises:
            InvalidPolicy: a missing or unknown key, or a bad value; ``field`` is
                its path (``"timeout.attempt"``).

        >>> Timeout.from_spec({"attempt": 300.0, "run": None, "queued": None, "heartbeat": 60})
        Timeout(attempt=datetime.timedelta(seconds=300), run=None, queued=None, heartbeat=datetime.timedelta(seconds=60))
        """  # noqa: E501
        from runlife._core.spec import read_object, under

        with under("timeout"):
            fields = read_object(data, _TIMEOUT_KEYS, "a timeout spec")
            return cls(
                attempt=fields["attempt"],
                run=fields["run"],
                queued=fields["queued"],
                heartbeat=fields["heartbeat"],
            )

    @staticmethod
    def _after(start: datetime | None, limit: timedelta | None) -> datetime | None:
        if start is None or limit is None:
            return None
        return aware(start) + limit

    def attempt_deadline(self, started_at: datetime | None) -> datetime | None:
        """When an attempt started at *started_at* must be cut (None: never)."""
        return self._after(started_at, self.attempt)

    def run_deadline(self, run_started_at: datetime | None) -> datetime | None:
        """When a run first started at *run_started_at* must end (None: never)."""
        return self._after(run_started_at, self.run)

    def queued_deadline(self, queued_at: datetime | None) -> datetime | None:
        """When a run queued at *queued_at* stops waiting for capacity (None: never)."""
        return self._after(queued_at, self.queued)

    def heartbeat_deadline(self, last_beat: datetime | None) -> datetime | None:
        """When an attempt last heard from at *last_beat* counts as abandoned."""
        return self._after(last_beat, self.heartbeat)

    def deadlines(
        self,
        run: Run,
        *,
        last_beat: datetime | None = None,
        waited: timedelta = timedelta(0),
    ) -> tuple[Deadline, ...]:
        """Every deadline that applies to *run* in its current status, earliest first.

        QUEUED: the queue wait and the run limit (once the run has started);
        RUNNING: the attempt limit (pushed back by *waited*, the time the attempt
        has spent WAITING for signals), the run limit and the heartbeat limit
        (counting from *last_beat*, or from the attempt's start); WAITING: the
        run limit only (the attempt's clock stands still while it waits);
        RETRYING: the run limit; PENDING and terminal: none.

        >>> from datetime import datetime, UTC, timedelta
        >>> from runlife import DEFAULT_LIFECYCLE as lc, Run, Status
        >>> t0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
        >>> run = lc.transition(Run.create(job="deploy", at=t0, initial=Status.QUEUED),
        ...                     Status.RUNNING, at=t0)
        >>> limits = Timeout(attempt=300, run=6 * 3600)
        >>> [f"{d.kind} {d.at:%H:%M}" for d in limits.deadlines(run, waited=timedelta(hours=2))]
        ['attempt 04:05', 'run 08:00']
        >>> waiting = lc.transition(run, Status.WAITING, at=t0)
        >>> [d.kind for d in limits.deadlines(waiting)]
        ['run']
        """
        status = run.status
        found: list[Deadline] = []

        def add(kind: DeadlineKind, start: datetime | None, limit: timedelta | None) -> None:
            if start is not None and limit is not None:
                found.append(Deadline(kind=kind, at=aware(start) + limit, limit=limit))

        if status is Status.RUNNING:
            started = run.attempts[-1].started_at if run.attempts else run.started_at
            add("attempt", None if started is None else aware(started) + waited, self.attempt)
            add("run", run.started_at, self.run)
            add("heartbeat", last_beat or started, self.heartbeat)
        elif status is Status.WAITING:
            add("run", run.started_at, self.run)
        elif status is Status.QUEUED:
            add("queued", run.queued_at, self.queued)
            add("run", run.started_at, self.run)
        elif status is Status.RETRYING:
            add("run", run.started_at, self.run)
        found.sort(key=lambda d: (d.at, _DEADLINE_ORDER[d.kind]))
        return tuple(found)

    def next_deadline(
        self, run: Run, *, last_beat: datetime | None = None, waited: timedelta = timedelta(0)
    ) -> Deadline | None:
        """The earliest deadline of *run* in its current status (see `deadlines`).

        >>> from datetime import datetime, UTC
        >>> from runlife import DEFAULT_LIFECYCLE as lc, Run, Status
        >>> t0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
        >>> run = lc.transition(Run.create(job="backup", at=t0, initial=Status.QUEUED),
        ...                     Status.RUNNING, at=t0)
        >>> d = Timeout(attempt=300, run=3600).next_deadline(run)
        >>> d.kind, d.at.time()
        ('attempt', datetime.time(2, 5))
        """
        found = self.deadlines(run, last_beat=last_beat, waited=waited)
        return found[0] if found else None

    def expired(
        self, run: Run, now: datetime, *, last_beat: datetime | None = None
    ) -> Deadline | None:
        """The deadline of *run* that has passed by *now*, if one has."""
        deadline = self.next_deadline(run, last_beat=last_beat)
        if deadline is not None and deadline.at <= aware(now):
            return deadline
        return None


@attrs.frozen(kw_only=True)
class FailureDecision:
    """What follows a failed attempt: RETRYING until ``due_at``, or FAILED.

    ``status`` is `Status.RETRYING` or `Status.FAILED`; ``error`` is what the run
    records; ``delay`` the retry delay in seconds (None when failing);
    ``spends_budget`` is False for an interrupted attempt. `apply` makes the move.
    """

    status: Status
    at: datetime
    error: ErrorInfo
    reason: str
    due_at: datetime | None = None
    delay: float | None = None
    spends_budget: bool = True

    @property
    def retry(self) -> bool:
        """Whether the run is tried again."""
        return self.status is Status.RETRYING

    def apply(self, run: Run, lifecycle: Lifecycle | None = None) -> Run:
        """*run* moved as decided (through *lifecycle*, `DEFAULT_LIFECYCLE` unless given)."""
        from runlife._core.lifecycle import DEFAULT_LIFECYCLE

        lc = lifecycle if lifecycle is not None else DEFAULT_LIFECYCLE
        return lc.transition(
            run, self.status, at=self.at, reason=self.reason, error=self.error, due_at=self.due_at
        )


def decide_failure(
    run: Run,
    error: BaseException | ErrorInfo,
    *,
    at: datetime,
    retry: Retry,
    timeout: Timeout | None = None,
    rng: _Random | None = None,
) -> FailureDecision:
    """Decide what follows the failure, at *at*, of *run*'s current attempt.

    *run* is RUNNING or WAITING (its last attempt is the one that failed).
    *error* is the exception or the `ErrorInfo` (a timeout's `Deadline.error`, a
    reaper's ``"abandoned"``, a shutdown's ``"interrupted"``). The budget is
    `Retry.max_attempts` attempts, not counting interrupted ones. A retry that
    would start at or after the run's deadline (``timeout.run``) is not made: the
    run fails at once with kind ``"timeout"``.

    >>> from datetime import datetime, UTC
    >>> from runlife import DEFAULT_LIFECYCLE as lc, Run, Status
    >>> t0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    >>> run = lc.transition(Run.create(job="backup", at=t0, initial=Status.QUEUED),
    ...                     Status.RUNNING, at=t0)
    >>> d = decide_failure(run, ValueError("boom"), at=t0, retry=Retry(delay=60))
    >>> d.status, d.due_at.time(), d.reason
    (<Status.RETRYING: 'RETRYING'>, datetime.time(2, 1), 'attempt 1 of 3 failed (error ValueError); retrying in 60 s')
    """  # noqa: E501
    at = aware(at)
    info = error if isinstance(error, ErrorInfo) else ErrorInfo.from_exception(error)
    kind = info.kind
    if kind == "interrupted":
        return FailureDecision(
            status=Status.RETRYING,
            at=at,
            error=info,
            reason="interrupted by its runtime's shutdown; tried again at once, "
            "without spending its retry budget",
            due_at=at,
            delay=0.0,
            spends_budget=False,
        )
    spent = sum(1 for a in run.attempts[:-1] if a.outcome != "interrupted") + 1
    what = f"attempt {spent} of {retry.max_attempts} failed ({kind} {_error_type(error)})"
    if kind != "error":
        what = f"attempt {spent} of {retry.max_attempts} failed ({kind})"

    def fail(why: str, err: ErrorInfo = info) -> FailureDecision:
        return FailureDecision(status=Status.FAILED, at=at, error=err, reason=f"{what}; {why}")

    if not retry.retries(error):
        if kind == "abandoned":
            return fail("abandoned attempts are not retried (retry_abandoned=False)")
        if kind in ("cancelled", "items"):
            return fail(f"{kind} failures are not retried")
        if retry.give_up_on and attrs.evolve(retry, give_up_on=()).retries(error):
            return fail(f"{_error_type(error)} matches give_up_on")
        return fail(f"{_error_type(error)} does not match retry_on")
    delay = retry.next_delay(spent, error, rng)
    if delay is None:
        return fail("no attempts left")
    due = at + timedelta(seconds=delay)
    if timeout is not None and timeout.run is not None and run.started_at is not None:
        run_deadline = aware(run.started_at) + timeout.run
        if due >= run_deadline:
            limit = Deadline(kind="run", at=run_deadline, limit=timeout.run)
            return fail(
                f"a retry at {due.isoformat()} would start after the run's deadline "
                f"{run_deadline.isoformat()}",
                limit.error(),
            )
    return FailureDecision(
        status=Status.RETRYING,
        at=at,
        error=info,
        reason=f"{what}; retrying in {_fmt_seconds(delay)}",
        due_at=due,
        delay=delay,
    )


def wait_limit(timeout: float | timedelta | None) -> timedelta | None:
    """The timeout of a wait for a signal: None (no limit), or seconds > 0 (or a
    timedelta) up to a century.

    Raises:
        InvalidPolicy: any other value; its field is ``timeout``.

    >>> wait_limit(3600)
    datetime.timedelta(seconds=3600)
    """
    return _to_limit("timeout", timeout)


def decide_wait_timeout(
    run: Run, signal: str, limit: timedelta, *, at: datetime
) -> FailureDecision:
    """What follows a wait for *signal* that lasted its whole *limit*: the run
    FAILED, error kind ``"timeout"``, not retried.

    A wait's timeout is the time its job gave the outside world to answer; a retry
    would redo the attempt's work before asking again, and wait as long once more
    (as an Airflow sensor's timeout fails its task without retries).

    >>> from datetime import datetime, UTC, timedelta
    >>> from runlife import DEFAULT_LIFECYCLE as lc, Run, Status
    >>> t0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    >>> run = lc.transition(Run.create(job="deploy", at=t0, initial=Status.QUEUED),
    ...                     Status.RUNNING, at=t0)
    >>> d = decide_wait_timeout(run, "approved", timedelta(hours=1), at=t0)
    >>> d.status, d.error.kind, d.error.message
    (<Status.FAILED: 'FAILED'>, 'timeout', "attempt 1 waited 3600 s for signal 'approved', which did not come")
    """  # noqa: E501
    seconds = _fmt_seconds(limit.total_seconds())
    info = ErrorInfo(
        kind="timeout",
        type="SignalTimeout",
        message=f"attempt {run.attempt} waited {seconds} for signal {signal!r}, which did not come",
    )
    return FailureDecision(
        status=Status.FAILED,
        at=aware(at),
        error=info,
        reason=f"no signal {signal!r} within its wait's timeout of {seconds}; "
        "a wait's timeout is not retried",
    )


# -- limits and quotas --------------------------------------------------------

QuotaPeriod = Literal["minute", "hour", "day", "week", "month", "year"]
"""A calendar period of a `Quota`."""

_PERIODS = ("minute", "hour", "day", "week", "month", "year")


def _period_start(local: datetime, per: str) -> datetime:
    if per == "minute":
        return local.replace(second=0, microsecond=0)
    if per == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if per == "day":
        return day
    if per == "week":
        return day - timedelta(days=day.weekday())
    if per == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def _period_next(start: datetime, per: str) -> datetime:
    if per == "minute":
        return start + timedelta(minutes=1)
    if per == "hour":
        return start + timedelta(hours=1)
    if per == "day":
        return start + timedelta(days=1)
    if per == "week":
        return start + timedelta(days=7)
    if per == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start.replace(year=start.year + 1)


def _describe_window(window: timedelta) -> str:
    # "24 h" reads better than "1 d"; days from two on.
    seconds = window.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size * (2 if unit == "d" else 1) and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


@attrs.frozen(kw_only=True)
class QuotaUsage:
    """How much of a quota's current window a job has used: what a store supplies.

    ``count`` is the number of the job's runs created since `Quota.window_start`;
    ``oldest`` the creation time of the oldest of them (rolling windows need it
    to say when a slot frees up; without it the latest possible moment is given).
    """

    count: int
    oldest: datetime | None = None


@attrs.frozen(kw_only=True)
class Quota:
    """At most ``max_runs`` runs of a job per calendar period or per rolling window.

    Give either ``per`` (a calendar period, read in time zone ``tz``) or ``window``
    (seconds or a timedelta, rolling). Every run created counts, whatever its
    trigger and outcome; retries inside a run are attempts and do not.

    Raises:
        InvalidPolicy: a bad value, or neither or both of *per* and *window*.

    >>> str(Quota(max_runs=1000, per="month", tz="Europe/Paris"))
    'at most 1000 runs per calendar month (Europe/Paris)'
    >>> str(Quota(max_runs=50, window=86400))
    'at most 50 runs per rolling 24 h'
    """

    max_runs: int = attrs.field(validator=_positive_int("max_runs"))
    per: QuotaPeriod | None = None
    window: timedelta | None = attrs.field(default=None, converter=_window)
    tz: str = "UTC"
    _zone: tzinfo = attrs.field(init=False, eq=False, repr=False)
    _text: str = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.per is not None and self.per not in _PERIODS:
            raise InvalidPolicy("per", self.per, f"one of {', '.join(_PERIODS)}")
        if (self.per is None) == (self.window is None):
            raise InvalidPolicy(
                "per", self.per, "either a calendar period (per=...) or a rolling window=..."
            )
        object.__setattr__(self, "_zone", zone(self.tz))
        if self.window is not None:
            text = f"at most {self.max_runs} runs per rolling {_describe_window(self.window)}"
        else:
            text = f"at most {self.max_runs} runs per calendar {self.per} ({self.tz})"
        object.__setattr__(self, "_text", text)

    def __str__(self) -> str:
        return self._text

    def to_spec(self) -> dict[str, Any]:
        """This quota as JSON (a rolling window in seconds).

        >>> Quota(max_runs=1000, per="month", tz="Europe/Paris").to_spec()
        {'max_runs': 1000, 'per': 'month', 'window': None, 'tz': 'Europe/Paris'}
        """
        return {
            "max_runs": self.max_runs,
            "per": self.per,
            "window": _seconds_of(self.window),
            "tz": zone_name(self.tz),
        }

    @classmethod
    def from_spec(cls, data: Mapping[str, Any]) -> Quota:
        """Read a quota written by `to_spec`.

        Raises:
            InvalidPolicy: a missing or unknown key, or a bad value; ``field`` is
                its path (``"quota.max_runs"``).

        >>> str(Quota.from_spec({"max_runs": 50, "per": None, "window": 86400, "tz": "UTC"}))
        'at most 50 runs per rolling 24 h'
        """
        from runlife._core.spec import read_object, under

        with under("quota"):
            fields = read_object(data, _QUOTA_KEYS, "a quota spec")
            return cls(
                max_runs=fields["max_runs"],
                per=fields["per"],
                window=fields["window"],
                tz=fields["tz"],
            )

    def window_start(self, now: datetime) -> datetime:
        """Where the window that holds *now* starts: count the runs created since.

        >>> from datetime import datetime, UTC
        >>> q = Quota(max_runs=1000, per="month", tz="Europe/Paris")
        >>> q.window_start(datetime(2026, 3, 10, 2, 0, tzinfo=UTC)).isoformat()
        '2026-03-01T00:00:00+01:00'
        """
        now = aware(now)
        if self.window is not None:
            return now - self.window
        assert self.per is not None
        local = now.astimezone(self._zone).replace(tzinfo=None)
        return localize(_period_start(local, self.per), self._zone)

    def frees_at(self, usage: QuotaUsage | int, now: datetime) -> datetime:
        """When a job over this quota may next create a run."""
        now = aware(now)
        if self.window is not None:
            oldest = usage.oldest if isinstance(usage, QuotaUsage) else None
            return (aware(oldest) if oldest is not None else now) + self.window
        assert self.per is not None
        local = now.astimezone(self._zone).replace(tzinfo=None)
        return localize(_period_next(_period_start(local, self.per), self.per), self._zone)


def _per_label(value: Any) -> Mapping[str, int]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidPolicy("per_label", value, "a mapping of label name to an int >= 1")
    for key, limit in value.items():
        if not isinstance(key, str) or type(limit) is not int or limit < 1:
            raise InvalidPolicy(
                f"per_label[{key!r}]", limit, "a mapping of label name to an int >= 1"
            )
    return dict(value)


@attrs.frozen(kw_only=True)
class Limits:
    """Capacity limits and a quota for a job's runs.

    Args:
        max_concurrency: at most this many runs of the job RUNNING (or WAITING) at
            once; the others wait in QUEUED (None: no limit).
        per_label: ``{"device": 1}``: at most one active run per value of the
            run's ``device`` label.
        quota: a `Quota`, checked when a run is submitted (refused with
            `QuotaExceeded`).

    Raises:
        InvalidPolicy: a limit that is not None or an int >= 1, or a bad quota.
    """

    max_concurrency: int | None = attrs.field(
        default=None, validator=_positive_int("max_concurrency", allow_none=True)
    )
    per_label: Mapping[str, int] = attrs.field(factory=dict, converter=_per_label)
    quota: Quota | None = None

    def __attrs_post_init__(self) -> None:
        if self.quota is not None and not isinstance(self.quota, Quota):
            raise InvalidPolicy("quota", self.quota, "None or a Quota")

    def to_spec(self) -> dict[str, Any]:
        """These limits as JSON.

        >>> Limits(max_concurrency=2, per_label={"device": 1}).to_spec()
        {'max_concurrency': 2, 'per_label': {'device': 1}, 'quota': None}
        """
        return {
            "max_concurrency": self.max_concurrency,
            "per_label": dict(self.per_label),
            "quota": None if self.quota is None else self.quota.to_spec(),
        }

    @classmethod
    def from_spec(cls, data: Mapping[str, Any]) -> Limits:
        """Read limits written by `to_spec`.

        Raises:
            InvalidPolicy: a missing or unknown key, or a bad value; ``field`` is
                its path (``"limits.quota.per"``).

        >>> spec = Limits(quota=Quota(max_runs=2, per="day")).to_spec()
        >>> str(Limits.from_spec(spec).quota)
        'at most 2 runs per calendar day (UTC)'
        """
        from runlife._core.spec import read_object, under

        with under("limits"):
            fields = read_object(data, _LIMITS_KEYS, "a limits spec")
            quota = fields["quota"]
            return cls(
                max_concurrency=fields["max_concurrency"],
                per_label=fields["per_label"],
                quota=None if quota is None else Quota.from_spec(quota),
            )

    def check_quota(self, job: str, usage: QuotaUsage | int, now: datetime) -> None:
        """Refuse a new run of *job* if it would exceed the quota.

        *usage* is what the store counted for `Quota.window_start` (a
        `QuotaUsage`, or just the count for calendar quotas).

        Raises:
            QuotaExceeded: naming the job, the quota and when it frees up.

        >>> from datetime import datetime, UTC
        >>> limits = Limits(quota=Quota(max_runs=2, per="day"))
        >>> limits.check_quota("sync", 1, datetime(2026, 3, 10, 2, tzinfo=UTC))
        >>> limits.check_quota("sync", 2, datetime(2026, 3, 10, 2, tzinfo=UTC))
        Traceback (most recent call last):
        ...
        runlife.exceptions.QuotaExceeded: job 'sync' is over its quota (at most 2 runs per calendar day (UTC)); it frees up at 2026-03-11T00:00:00+00:00
        """  # noqa: E501
        quota = self.quota
        if quota is None:
            return
        count = usage if type(usage) is int else usage.count  # type: ignore[union-attr]
        if count < quota.max_runs:
            return
        raise QuotaExceeded(job, quota._text, quota.frees_at(usage, now))


# -- items --------------------------------------------------------------------


NAMED_FAILURES: Final = 5
"""How many failed items the message of `items_outcome` names at most."""


@attrs.frozen(kw_only=True)
class ItemsOutcome:
    """How a run whose items are done ends: its status, error and warnings."""

    status: Status
    error: ErrorInfo | None = None
    warnings: tuple[str, ...] = ()


def items_outcome(
    progress: ItemCounts, items_fail_run: float | None = None, failed: Sequence[str] = ()
) -> ItemsOutcome:
    """Decide how a run ends from its items' counts (after its function returned).

    With *items_fail_run* None, failed items only warn: the run SUCCEEDED with the
    warning ``"1 of 4 items failed"``. With a threshold, the run FAILED (kind
    ``"items"``, the same message) when more than that fraction of its items
    failed: ``0`` fails on any failed item, ``0.25`` when more than a quarter
    did. Skipped items are not failures; cancelled items are. *failed* names
    some of the failed items; the message names the first five of them.

    Raises:
        InvalidPolicy: *items_fail_run* is not None or a fraction from 0 to 1.

    >>> items_outcome(ItemCounts(total=4, succeeded=3, failed=1)).warnings
    ('1 of 4 items failed',)
    >>> items_outcome(ItemCounts(total=4, succeeded=3, failed=1), 0, ["edge-sw-03"]).error.message
    '1 of 4 items failed: edge-sw-03'
    """
    threshold = items_fail_run
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0 <= threshold <= 1
    ):
        raise InvalidPolicy("items_fail_run", threshold, "None, or a fraction from 0 to 1")
    failed_n, total = progress.failed, progress.total
    if not failed_n:
        return ItemsOutcome(status=Status.SUCCEEDED)
    message = f"{failed_n} of {total} item{'s' if total != 1 else ''} failed"
    names = list(failed[:NAMED_FAILURES])
    if names:
        more = failed_n - len(names)
        message += ": " + ", ".join(names) + (f" and {more} more" if more > 0 else "")
    if threshold is not None and failed_n > threshold * total:
        error = ErrorInfo(kind="items", type="ItemsFailed", message=message)
        return ItemsOutcome(status=Status.FAILED, error=error)
    return ItemsOutcome(status=Status.SUCCEEDED, warnings=(message,))


def resumed_items(
    items: Iterable[Item], *, resumed: bool, keys: Collection[str] | None = None
) -> tuple[dict[str, Item], frozenset[str]]:
    """What a run that resumes an earlier run takes from that run's *items*.

    Returns the items that SUCCEEDED there, by key (the new run skips them), and
    the keys that were SKIPPED there while it was itself resuming a run
    (*resumed*): they may have succeeded in the run before it, which is asked
    next. With *keys*, only those keys are looked at. An item skipped for any
    other reason, failed or never done runs again.

    >>> from runlife import Status
    >>> done, ask = resumed_items([Item(run_id="r2", key="a", status=Status.SUCCEEDED),
    ...                            Item(run_id="r2", key="b", status=Status.FAILED),
    ...                            Item(run_id="r2", key="c", status=Status.SKIPPED)],
    ...                           resumed=True)
    >>> sorted(done), sorted(ask)
    (['a'], ['c'])
    """
    done: dict[str, Item] = {}
    ask: set[str] = set()
    for item in items:
        if keys is not None and item.key not in keys:
            continue
        if item.status is Status.SUCCEEDED:
            done[item.key] = item
        elif resumed and item.status is Status.SKIPPED:
            ask.add(item.key)
    return done, frozenset(ask)
