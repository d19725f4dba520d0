"""``@runlife.job``: a function and its policy, as one frozen `Job` value."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Final, overload

import attrs

from runlife._core.lifecycle import DEFAULT_LIFECYCLE, Lifecycle
from runlife._core.policy import Limits, Retry, Timeout
from runlife._core.queries import JobRecord
from runlife._core.schedule import Cron, Every
from runlife._core.spec import JobSpec
from runlife._core.values import check_json, check_labels, check_text
from runlife.abc import Executor
from runlife.exceptions import InvalidPolicy, InvalidValue
from runlife.executors._process import ProcessExecutor, check_importable

__all__ = ("EXECUTOR_NAMES", "Job", "job", "record_of")

EXECUTOR_NAMES: Final = ("async", "thread", "process")
"""The executors a job may name (see `runlife.executors`)."""

_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()
"""Stands in `InvalidValue.value` for a parameter that was not given."""


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object whose __call__ is async
    )


def _check_executor(name: str, fn: Callable[..., Any], executor: str | Executor | None) -> None:
    if executor is None:
        return
    if executor == "process" or isinstance(executor, ProcessExecutor):
        check_importable(name, fn, executor)
        return
    if isinstance(executor, str):
        if executor not in EXECUTOR_NAMES:
            raise InvalidPolicy(
                "executor",
                executor,
                "'async', 'thread', 'process', an Executor, or None (by the function)",
            )
        if (executor == "async") != _is_async(fn):
            kind = "an async" if _is_async(fn) else "a sync"
            raise InvalidPolicy(
                "executor",
                executor,
                f"an executor that runs {kind} function ('async' runs async functions "
                "on the event loop, 'thread' runs sync ones in worker threads)",
            )
        return
    if not isinstance(executor, Executor):
        raise InvalidPolicy(
            "executor", executor, "'async', 'thread', 'process', an Executor, or None"
        )
    if not executor.accepts(fn):
        raise InvalidPolicy("executor", executor, f"an executor that can run {fn!r}")


def _check_signature(name: str, fn: Callable[..., Any]) -> inspect.Signature:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        raise InvalidPolicy("fn", fn, "a function with a signature: (ctx, **params)") from None
    params = list(signature.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not params or (
        params[0].kind not in positional and params[0].kind is not inspect.Parameter.VAR_POSITIONAL
    ):
        raise InvalidPolicy(
            "fn", fn, f"a function whose first parameter takes the RunContext: {name}(ctx, ...)"
        )
    for param in params[1:]:
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise InvalidPolicy(
                "fn",
                fn,
                f"parameters after the context that can be passed by keyword "
                f"({param.name!r} of {name} is positional-only)",
            )
    return signature


@attrs.frozen(kw_only=True)
class Job:
    """A job: a function ``(ctx, **params)`` and its policy, as a frozen value.

    Make one with `job`. A `Job` registers nothing anywhere: hand it to an
    ``AsyncRuntime(jobs=[...])``. It stays callable as its function
    (``job(ctx, **params)``); ``job.fn`` is the function itself.

    Attributes:
        name: the job's name (``Run.job``): its function's ``__name__`` unless given.
        fn: the function.
        spec: its policy, a `JobSpec` (lifecycle, retry, timeout, schedule,
            limits, item policy, queued).
        labels: labels every run of the job gets (a submit's labels win).
        executor: the executor it names (``"async"``, ``"thread"``, ``"process"``
            or an Executor), or None (async functions run on the event loop,
            sync ones on the runtime's executor for them).
    """

    name: str
    fn: Callable[..., Any]
    spec: JobSpec = attrs.field(factory=JobSpec)
    labels: Mapping[str, str] = attrs.field(factory=dict)
    executor: str | Executor | None = None
    _signature: inspect.Signature = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        check_text("name", self.name, empty=False)
        if not callable(self.fn):
            raise InvalidPolicy("fn", self.fn, "a function (ctx, **params)")
        object.__setattr__(self, "_signature", _check_signature(self.name, self.fn))
        object.__setattr__(self, "labels", check_labels("labels", self.labels))
        _check_executor(self.name, self.fn, self.executor)
        if self.spec.schedule is not None:
            required = [
                p.name
                for p in list(self._signature.parameters.values())[1:]
                if p.kind in _KEYWORD and p.default is inspect.Parameter.empty
            ]
            if required:
                raise InvalidPolicy(
                    "schedule",
                    self.spec.schedule,
                    f"no schedule for a job whose parameters are required: a schedule fires "
                    f"{self.name} without params, so give {', '.join(required)} a default",
                )

    def __hash__(self) -> int:
        # By name and function (equal jobs have both equal), so that jobs can be a
        # workflow's keys: their labels and limits are dicts, which do not hash.
        return hash((self.name, self.fn))

    def __call__(self, ctx: Any, /, **params: Any) -> Any:
        """Call the job's function, as if it were not decorated."""
        return self.fn(ctx, **params)

    @property
    def is_async(self) -> bool:
        """Whether the function is async (it runs on the event loop by default)."""
        return _is_async(self.fn)

    def check_params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """*params* as a fresh dict, checked against the function's signature and as JSON.

        Raises:
            InvalidValue: a parameter the function requires is missing, or one it
                does not take is given; ``field`` names it (``"params.devices"``).
            NotSerializable: a value is not JSON; the message names its path.

        >>> @job
        ... def backup(ctx, devices, retries=1): ...
        >>> backup.check_params({"devices": ["core-rtr-01"]})
        {'devices': ['core-rtr-01']}
        >>> backup.check_params({"device": "core-rtr-01"})
        Traceback (most recent call last):
        ...
        runlife.exceptions.InvalidValue: params.device='core-rtr-01' is invalid: expected one of the parameters of job 'backup': devices, retries
        """  # noqa: E501
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise InvalidValue("params", params, "a mapping of parameter name to JSON value")
        out = dict(params)
        declared = list(self._signature.parameters.values())[1:]
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in declared)
        names = [p.name for p in declared if p.kind in _KEYWORD]
        for key, value in out.items():
            if not isinstance(key, str):
                raise InvalidValue(f"params[{key!r}]", value, "parameter names that are str")
            if key not in names and not takes_any:
                takes = ", ".join(names) or "none"
                raise InvalidValue(
                    f"params.{key}", value, f"one of the parameters of job {self.name!r}: {takes}"
                )
        for param in declared:
            if (
                param.kind in _KEYWORD
                and param.default is inspect.Parameter.empty
                and param.name not in out
            ):
                raise InvalidValue(
                    f"params.{param.name}",
                    MISSING,
                    f"a value: job {self.name!r} requires parameter {param.name!r}",
                )
        check_json(out, "params")
        return out

    def to_record(self) -> JobRecord:
        """The record of this job as it declares itself: its spec and its capacity limits."""
        return record_of(self.name, self.spec)


def record_of(name: str, spec: JobSpec) -> JobRecord:
    """The record of job *name* under *spec*: the spec, and its capacity limits in the
    columns the store enforces when it claims.

    >>> from runlife import Limits
    >>> record_of("sync", JobSpec(limits=Limits(max_concurrency=2))).max_concurrency
    2
    """
    limits = spec.limits
    return JobRecord(
        name=name,
        spec=spec.to_spec(),
        max_concurrency=limits.max_concurrency,
        per_label=dict(limits.per_label),
    )


@overload
def job(fn: Callable[..., Any], /) -> Job: ...


@overload
def job(
    *,
    name: str | None = None,
    retry: Retry | None = None,
    timeout: Timeout | None = None,
    schedule: Cron | Every | None = None,
    limits: Limits | None = None,
    labels: Mapping[str, str] | None = None,
    queued: bool = True,
    items_fail_run: float | None = None,
    executor: str | Executor | None = None,
    lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
) -> Callable[[Callable[..., Any]], Job]: ...


def job(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retry: Retry | None = None,
    timeout: Timeout | None = None,
    schedule: Cron | Every | None = None,
    limits: Limits | None = None,
    labels: Mapping[str, str] | None = None,
    queued: bool = True,
    items_fail_run: float | None = None,
    executor: str | Executor | None = None,
    lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
) -> Job | Callable[[Callable[..., Any]], Job]:
    """Make a `Job` of a function ``(ctx, **params)``, sync or async.

    Use it bare (``@runlife.job``) or with policy (``@runlife.job(retry=...)``).

    Args:
        name: the job's name; the function's ``__name__`` unless given.
        retry: its `Retry` policy; None: one attempt, no retry.
        timeout: its `Timeout` limits; None: no limits.
        schedule: a `Cron` or an `Every` to fire it on; None: it runs when submitted.
        limits: its capacity `Limits` and quota.
        labels: labels every run of the job gets.
        queued: False for a job whose runs start at once, claimed by the runtime
            that submits them, instead of waiting in QUEUED for capacity.
        items_fail_run: None (failed items only warn) or the fraction of failed
            items above which a run fails.
        executor: ``"async"``, ``"thread"``, ``"process"`` (a child process per
            attempt, for a function importable by name), an
            `runlife.abc.Executor`, or None: async functions on the event loop,
            sync ones in worker threads.
        lifecycle: the job's `Lifecycle`.

    Raises:
        InvalidPolicy: a bad policy value, an executor that cannot run the
            function (for ``"process"``: a function a child process cannot import
            by name, such as a lambda or a nested function), or a function that
            cannot take ``(ctx, **params)``.

    >>> import runlife
    >>> @runlife.job(retry=runlife.Retry(max_attempts=3, delay=60), labels={"kind": "backup"})
    ... async def nightly_backup(ctx, devices):
    ...     return {"devices": len(devices)}
    >>> nightly_backup.name, nightly_backup.spec.retry.max_attempts, nightly_backup.is_async
    ('nightly_backup', 3, True)
    """

    def make(fn: Callable[..., Any]) -> Job:
        spec = JobSpec(
            lifecycle=lifecycle,
            retry=retry if retry is not None else JobSpec().retry,
            timeout=timeout if timeout is not None else Timeout(),
            schedule=schedule,
            limits=limits if limits is not None else Limits(),
            items_fail_run=items_fail_run,
            queued=queued,
        )
        job_name = name if name is not None else getattr(fn, "__name__", None)
        if job_name is None:
            raise InvalidPolicy("name", None, "a name for a callable without a __name__")
        return Job(name=job_name, fn=fn, spec=spec, labels=dict(labels or {}), executor=executor)

    if fn is not None:
        return make(fn)
    return make
