"""The job spec: a versioned JSON form of a job's whole policy.

A store keeps each job's `JobSpec` as JSON (``JobRecord.spec``), so that a process
that does not import the job (a second runtime, the ``runlife`` command, the
monitor page) still knows its lifecycle, retry, timeouts, schedule, limits, item
policy and workflow graph. Each policy value has ``to_spec()`` and
``from_spec(data)``; `JobSpec` puts them together under ``"version"``.

Reading validates through each value's own constructor, so a spec is refused with
the same errors as the value would be (`InvalidPolicy`, `InvalidLifecycle`,
`InvalidWorkflow`); a malformed spec (a missing or unknown key, a wrong type) is
refused with `InvalidPolicy` whose ``field`` is the key's path, such as
``"retry.delay"`` or ``"lifecycle.states[2].status"``. A spec written by a newer
runlife is refused rather than half understood.

A job's policy fields (`POLICY_FIELDS`) may be changed while the job runs
(``set_policy``): `JobSpec.with_policy` sets them, and the spec remembers under
``declared`` what the job itself declares for each field set that way, so that a
runtime starting later with the job's code keeps what was set
(`JobSpec.redeclared`) and a field can be reset to the job's own declaration.

The readers at the end of this module are shared by every ``from_spec``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

import attrs

from runlife._core.graph import Workflow
from runlife._core.lifecycle import DEFAULT_LIFECYCLE, Lifecycle
from runlife._core.policy import Limits, Retry, Timeout
from runlife._core.schedule import Cron, Every, schedule_from_spec
from runlife.exceptions import InvalidPolicy

__all__ = ("POLICY_FIELDS", "SPEC_VERSION", "UNCHANGED", "JobSpec", "lifecycle_of")

SPEC_VERSION: Final = 2
"""The version of the spec form this runlife writes (and the newest it reads).

Version 2 added the lifecycle's ``"paths"`` (the ways it declares between statuses)
and ``"declared"`` (what the job's code declares for each field set with
``set_policy``); a version 1 spec reads as one with nothing declared."""

POLICY_FIELDS: Final = ("retry", "timeout", "limits", "items_fail_run")
"""The fields of a `JobSpec` that ``set_policy`` may change while the job runs."""

_V1_KEYS = (
    "version",
    "lifecycle",
    "retry",
    "timeout",
    "schedule",
    "limits",
    "items_fail_run",
    "queued",
    "workflow",
)
_KEYS = (*_V1_KEYS, "declared")
_NO_RETRY = Retry(max_attempts=1)


class _Unchanged:
    """The value of a policy field that `JobSpec.with_policy` leaves as it is."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unchanged>"


UNCHANGED: Final = _Unchanged()
"""The default of each field of `JobSpec.with_policy` (and ``set_policy``): keep it."""


def _instance_of(kind: type | tuple[type, ...], expected: str, *, optional: bool = False) -> Any:
    def check(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not (isinstance(value, kind) or (optional and value is None)):
            raise InvalidPolicy(attribute.name, value, expected)

    return check


def _check_items_fail_run(_inst: object, _attr: object, value: Any) -> None:
    # The rule of `items_outcome`, checked when the spec is made rather than when
    # the first run ends.
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1
    ):
        raise InvalidPolicy("items_fail_run", value, "None, or a fraction from 0 to 1")


def _check_queued(_inst: object, _attr: object, value: Any) -> None:
    if not isinstance(value, bool):
        raise InvalidPolicy("queued", value, "True or False")


_FIELD_KINDS: Final[Mapping[str, tuple[type, str]]] = {
    "retry": (Retry, "a Retry"),
    "timeout": (Timeout, "a Timeout"),
    "limits": (Limits, "a Limits"),
}


def _check_field(field: str, value: Any, path: str | None = None) -> None:
    """*value* as policy field *field* would accept it, or `InvalidPolicy` naming *path*."""
    if field == "items_fail_run":
        try:
            _check_items_fail_run(None, None, value)
        except InvalidPolicy as exc:
            raise InvalidPolicy(path or field, value, exc.expected) from None
        return
    kind, expected = _FIELD_KINDS[field]
    if not isinstance(value, kind):
        raise InvalidPolicy(path or field, value, expected)


def _fresh_mapping(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


def _check_declared(_inst: object, _attr: object, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise InvalidPolicy("declared", value, "a mapping of policy field names to values")
    for field, declared in value.items():
        if field not in POLICY_FIELDS:
            raise InvalidPolicy(
                "declared", field, f"names of policy fields: {', '.join(POLICY_FIELDS)}"
            )
        _check_field(field, declared, f"declared.{field}")


@attrs.frozen(kw_only=True)
class JobSpec:
    """A job's whole policy, as one value with a versioned JSON form.

    A job declared without policy has ``JobSpec()``: the default lifecycle, one
    attempt (no retry: ``Retry(max_attempts=1)``), no time limits, no schedule,
    no limits or quota, failed items only warn (``items_fail_run=None``), runs are
    created QUEUED, and no workflow.

    Args:
        lifecycle: the job's `Lifecycle`.
        retry: its `Retry` policy.
        timeout: its `Timeout` limits.
        schedule: a `Cron` or an `Every`, or None for a job that only runs when
            submitted.
        limits: its capacity `Limits` and quota.
        items_fail_run: None (failed items only warn), or the fraction of failed
            items above which a run FAILS (0: any failed item; see `items_outcome`).
        queued: False for a job whose runs start RUNNING at once, claimed by the
            submitting runtime, instead of waiting in QUEUED.
        workflow: the `Workflow` whose graph this spec describes, for a workflow.
        declared: for each policy field set while the job runs (see `with_policy`),
            what the job itself declares for it; the field holds the value in force.
            Empty for a spec made from a job's declaration.

    Raises:
        InvalidPolicy: a field of the wrong kind, naming it.

    >>> spec = JobSpec(retry=Retry(max_attempts=3, delay=60), timeout=Timeout(attempt=300))
    >>> JobSpec.from_spec(spec.to_spec()) == spec
    True
    """

    lifecycle: Lifecycle = attrs.field(
        default=DEFAULT_LIFECYCLE, validator=_instance_of(Lifecycle, "a Lifecycle")
    )
    retry: Retry = attrs.field(default=_NO_RETRY, validator=_instance_of(Retry, "a Retry"))
    timeout: Timeout = attrs.field(factory=Timeout, validator=_instance_of(Timeout, "a Timeout"))
    schedule: Cron | Every | None = attrs.field(
        default=None,
        validator=_instance_of((Cron, Every), "None, a Cron or an Every", optional=True),
    )
    limits: Limits = attrs.field(factory=Limits, validator=_instance_of(Limits, "a Limits"))
    items_fail_run: float | None = attrs.field(default=None, validator=_check_items_fail_run)
    queued: bool = attrs.field(default=True, validator=_check_queued)
    workflow: Workflow | None = attrs.field(
        default=None, validator=_instance_of(Workflow, "None or a Workflow", optional=True)
    )
    declared: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_fresh_mapping, validator=_check_declared
    )

    def with_policy(
        self,
        *,
        retry: Retry | _Unchanged = UNCHANGED,
        timeout: Timeout | _Unchanged = UNCHANGED,
        limits: Limits | _Unchanged = UNCHANGED,
        items_fail_run: float | _Unchanged | None = UNCHANGED,
        reset: Iterable[str] = (),
    ) -> JobSpec:
        """This spec with the given policy fields set, and the fields named in
        *reset* back to what the job declares.

        A field set here stays set: `redeclared` keeps it over the job's own
        declaration, which ``declared`` remembers, until the field is reset.

        Raises:
            InvalidPolicy: a value of the wrong kind, a *reset* name that is not
                one of `POLICY_FIELDS`, or a field both set and reset.

        >>> spec = JobSpec(retry=Retry(max_attempts=3)).with_policy(retry=Retry(max_attempts=5))
        >>> spec.retry.max_attempts, spec.declared["retry"].max_attempts
        (5, 3)
        >>> spec.with_policy(reset=["retry"]) == JobSpec(retry=Retry(max_attempts=3))
        True
        """
        given: dict[str, Any] = {
            "retry": retry,
            "timeout": timeout,
            "limits": limits,
            "items_fail_run": items_fail_run,
        }
        changes = {f: v for f, v in given.items() if v is not UNCHANGED}
        if isinstance(reset, str):
            raise InvalidPolicy("reset", reset, "a collection of policy field names")
        resets = list(reset)
        for field in resets:
            if field not in POLICY_FIELDS:
                raise InvalidPolicy(
                    "reset", field, f"names of policy fields: {', '.join(POLICY_FIELDS)}"
                )
            if field in changes:
                raise InvalidPolicy("reset", field, "fields that are not also set")
        for field, value in changes.items():
            _check_field(field, value)
        declared = dict(self.declared)
        values: dict[str, Any] = {}
        for field in resets:
            if field in declared:
                values[field] = declared.pop(field)
        for field, value in changes.items():
            declared.setdefault(field, getattr(self, field))
            values[field] = value
        return attrs.evolve(self, declared=declared, **values)

    def redeclared(self, declaration: JobSpec) -> JobSpec:
        """The policy in force for a job that declares *declaration*, given this
        stored spec: *declaration*, with the fields set while the job ran (this
        spec's ``declared`` ones) kept as this spec has them.

        >>> stored = JobSpec(retry=Retry(max_attempts=3)).with_policy(retry=Retry(max_attempts=5))
        >>> now = stored.redeclared(JobSpec(retry=Retry(max_attempts=4), timeout=Timeout(run=60)))
        >>> now.retry.max_attempts, now.declared["retry"].max_attempts, now.timeout.run.seconds
        (5, 4, 60)
        """
        if not self.declared and not declaration.declared:
            return declaration
        values = {field: getattr(self, field) for field in self.declared}
        declared = {field: getattr(declaration, field) for field in self.declared}
        return attrs.evolve(declaration, declared=declared, **values)

    def to_spec(self) -> dict[str, Any]:
        """This spec as JSON, under ``"version"`` (`SPEC_VERSION`).

        >>> spec = JobSpec().to_spec()
        >>> spec["version"], spec["retry"]["max_attempts"], spec["schedule"], spec["declared"]
        (2, 1, None, {})
        """
        return {
            "version": SPEC_VERSION,
            "lifecycle": self.lifecycle.to_spec(),
            "retry": self.retry.to_spec(),
            "timeout": self.timeout.to_spec(),
            "schedule": None if self.schedule is None else self.schedule.to_spec(),
            "limits": self.limits.to_spec(),
            "items_fail_run": self.items_fail_run,
            "queued": self.queued,
            "workflow": None if self.workflow is None else self.workflow.to_spec(),
            "declared": {
                field: _field_to_spec(field, value) for field, value in self.declared.items()
            },
        }

    @classmethod
    def from_spec(cls, data: Mapping[str, Any]) -> JobSpec:
        """Read a spec written by `to_spec` (by this runlife or an older one).

        Raises:
            InvalidPolicy: the spec is newer than this runlife, or malformed (a
                missing or unknown key, a wrong type, a bad value); ``field`` is
                the key's path.
            InvalidLifecycle: its lifecycle cannot work.
            InvalidWorkflow: its workflow graph cannot work.

        >>> JobSpec.from_spec(JobSpec().to_spec()) == JobSpec()
        True
        >>> JobSpec.from_spec({**JobSpec().to_spec(), "version": 3})
        Traceback (most recent call last):
        ...
        runlife.exceptions.InvalidPolicy: version=3 is invalid: expected a version up to 2; spec version 3 is newer than this runlife's 2; upgrade runlife
        """  # noqa: E501
        version = SPEC_VERSION
        keys: tuple[str, ...] = _KEYS
        if isinstance(data, Mapping):
            version = _check_version(data.get("version", ABSENT))
            if version == 1:
                keys = _V1_KEYS
        fields = read_object(data, keys, "a job spec", name="spec")
        schedule = fields["schedule"]
        workflow = fields["workflow"]
        declared = _declared_from_spec(fields.get("declared", {}))
        return cls(
            lifecycle=Lifecycle.from_spec(fields["lifecycle"], version=version),
            retry=Retry.from_spec(fields["retry"]),
            timeout=Timeout.from_spec(fields["timeout"]),
            schedule=None if schedule is None else schedule_from_spec(schedule),
            limits=Limits.from_spec(fields["limits"]),
            items_fail_run=fields["items_fail_run"],
            queued=fields["queued"],
            workflow=None if workflow is None else Workflow.from_spec(workflow),
            declared=declared,
        )


def _field_to_spec(field: str, value: Any) -> Any:
    return value if field == "items_fail_run" else value.to_spec()


def _declared_from_spec(data: object) -> dict[str, Any]:
    expected = f"an object whose keys are policy fields: {', '.join(POLICY_FIELDS)}"
    if not isinstance(data, Mapping):
        raise InvalidPolicy("declared", data, expected)
    out: dict[str, Any] = {}
    for field, value in data.items():
        if field not in POLICY_FIELDS:
            raise InvalidPolicy(
                f"declared.{field}" if isinstance(field, str) else "declared",
                value,
                f"no such key; {expected}",
            )
        with under("declared"):
            if field == "retry":
                out[field] = Retry.from_spec(value)
            elif field == "timeout":
                out[field] = Timeout.from_spec(value)
            elif field == "limits":
                out[field] = Limits.from_spec(value)
            else:
                _check_items_fail_run(None, None, value)
                out[field] = value
    return out


def _check_version(version: object) -> int:
    if version is ABSENT:
        raise InvalidPolicy(
            "version", version, f"the version of the spec form, an int such as {SPEC_VERSION}"
        )
    if type(version) is not int or version < 1:
        raise InvalidPolicy("version", version, f"an int from 1 to {SPEC_VERSION}")
    if version > SPEC_VERSION:
        raise InvalidPolicy(
            "version",
            version,
            f"a version up to {SPEC_VERSION}; spec version {version} is newer than this "
            f"runlife's {SPEC_VERSION}; upgrade runlife",
        )
    return version


# Lifecycles already read, by name: each entry is a private copy of the spec's
# lifecycle part and what it reads as. Comparing a part with a copy (dict ==, in C)
# costs a microsecond or two; reading it again costs about a hundred.
_LIFECYCLES: dict[str, list[tuple[dict[str, Any], Lifecycle]]] = {}
_LIFECYCLES_MAX = 64
_DEFAULT_PART = DEFAULT_LIFECYCLE.to_spec()
_LIFECYCLES[_DEFAULT_PART["name"]] = [(_DEFAULT_PART, DEFAULT_LIFECYCLE)]


def lifecycle_of(spec: Mapping[str, Any] | None) -> Lifecycle:
    """The lifecycle of a stored job spec (``JobRecord.spec``), cheaply.

    `DEFAULT_LIFECYCLE` for None, an empty spec, or one without ``"version"``
    (written before job specs were versioned). Lifecycles are cached by the
    spec's ``"lifecycle"`` part, so a store may call this on every write.

    Raises:
        InvalidPolicy: the spec is newer than this runlife, or its lifecycle part
            is missing or malformed.
        InvalidLifecycle: its lifecycle cannot work.

    >>> lifecycle_of(None) is lifecycle_of({}) is DEFAULT_LIFECYCLE
    True
    >>> lifecycle_of(JobSpec().to_spec()) is DEFAULT_LIFECYCLE
    True
    """
    if not spec:
        return DEFAULT_LIFECYCLE
    version = spec.get("version")
    if version is None:
        return DEFAULT_LIFECYCLE
    if version.__class__ is not int or not 1 <= version <= SPEC_VERSION:
        _check_version(version)
    part: Any = spec.get("lifecycle")
    name = part.get("name") if part.__class__ is dict else None
    if name.__class__ is str:
        for known, lifecycle in _LIFECYCLES.get(name, ()):
            if known == part:
                return lifecycle
    if part is None and "lifecycle" not in spec:
        raise InvalidPolicy("lifecycle", ABSENT, "the job's lifecycle (see Lifecycle.to_spec)")
    lifecycle = Lifecycle.from_spec(spec["lifecycle"], version=version)
    if name.__class__ is str:
        if sum(len(b) for b in _LIFECYCLES.values()) >= _LIFECYCLES_MAX:
            _LIFECYCLES.clear()
            _LIFECYCLES[_DEFAULT_PART["name"]] = [(_DEFAULT_PART, DEFAULT_LIFECYCLE)]
        # A copy: the caller may change its dict after this call.
        _LIFECYCLES.setdefault(name, []).append((copy.deepcopy(part), lifecycle))
    return lifecycle


# -- readers shared by every from_spec ------------------------------------------


class _Absent:
    """The value of a key that a spec does not have."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Final = _Absent()
"""Stands in `InvalidPolicy.value` for a key that a spec lacks."""


def join(path: str, field: str) -> str:
    """The key path *field* (relative) under *path*: ``join("retry", "delay")``."""
    if not path:
        return field
    if not field:
        return path
    return f"{path}{field}" if field.startswith("[") else f"{path}.{field}"


@contextmanager
def under(path: str) -> Iterator[None]:
    """Report an `InvalidPolicy` raised inside with its field under *path*.

    >>> with under("retry"):
    ...     Retry(delay=-1)
    Traceback (most recent call last):
    ...
    runlife.exceptions.InvalidPolicy: retry.delay=-1 is invalid: expected seconds >= 0 (int or float) or a timedelta
    """  # noqa: E501
    try:
        yield
    except InvalidPolicy as exc:
        raise InvalidPolicy(join(path, exc.field), exc.value, exc.expected) from exc.__cause__


def read_object(
    data: object, keys: tuple[str, ...], what: str, *, name: str = ""
) -> Mapping[str, Any]:
    """*data* as an object with exactly *keys*, or `InvalidPolicy` naming the key.

    *what* says what the object is (``"a retry spec"``). Fields are relative
    (``"delay"``), to be put under their path by `under`; *name* is the field of
    *data* itself when it is not an object at all (``""``: the path itself).
    """
    expected = f"{what}: an object with the keys {', '.join(keys)}"
    if not isinstance(data, Mapping):
        raise InvalidPolicy(name, data, expected)
    for key in keys:
        if key not in data:
            raise InvalidPolicy(key, ABSENT, f"a value; {expected}")
    if len(data) != len(keys):
        for key, value in data.items():
            if key not in keys:
                raise InvalidPolicy(
                    key if isinstance(key, str) else repr(key), value, f"no such key; {expected}"
                )
    return data


def read_str(value: object, field: str, expected: str = "a string") -> str:
    """*value* if it is a str, else `InvalidPolicy` naming *field*."""
    if not isinstance(value, str):
        raise InvalidPolicy(field, value, expected)
    return value


def read_list(value: object, field: str, expected: str) -> list[Any] | tuple[Any, ...]:
    """*value* if it is a list (or tuple), else `InvalidPolicy` naming *field*."""
    if not isinstance(value, list | tuple):
        raise InvalidPolicy(field, value, expected)
    return value


def read_strs(value: object, field: str, expected: str = "a list of strings") -> list[str]:
    """*value* as a list of str, or `InvalidPolicy` naming the element at fault."""
    items = read_list(value, field, expected)
    for index, item in enumerate(items):
        read_str(item, f"{field}[{index}]", expected)
    return list(items)


def read_str_map(value: object, field: str, expected: str) -> dict[str, Any]:
    """*value* as a dict with str keys, or `InvalidPolicy` naming *field*."""
    if not isinstance(value, Mapping):
        raise InvalidPolicy(field, value, expected)
    for key in value:
        if not isinstance(key, str):
            raise InvalidPolicy(f"{field}[{key!r}]", key, f"{expected} (with string keys)")
    return dict(value)
