"""runlife: the whole life of a host application's background work.

The layers, from the bottom up (each imports only those below it):

* core (``runlife._core``): lifecycle, records, policies, schedules, graphs. Pure:
  no I/O, no awaits, ``now`` is always a parameter.
* ports (`runlife.abc`): the protocols stores and clocks implement.
* adapters (`runlife.stores`, the clocks): memory, SQLite and PostgreSQL storage.
* runtime (`AsyncRuntime`, ``@runlife.job``, `runlife.executors`): claims runs, runs
  their attempts, applies the policies, fires schedules. The only layer that awaits.
* faces: `Runtime` (the blocking twin of `AsyncRuntime`), the ``runlife`` command and
  `runlife.testing`.

Every name below is imported on first use, so that ``import runlife`` (and the
pytest plugin of every project that has runlife installed) costs next to nothing
until runlife is actually used.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from runlife._clock import SystemClock
    from runlife._core.graph import (
        CriticalPath,
        Explanation,
        Resolution,
        Resolver,
        RunGraph,
        SkippedNode,
        TriggerRule,
        Workflow,
        WorkflowOutcome,
    )
    from runlife._core.lifecycle import (
        CANONICAL_MOVES,
        DEFAULT_LIFECYCLE,
        Lifecycle,
    )
    from runlife._core.overview import (
        JobOverview,
        Overdue,
        RunExplanation,
        Summary,
        WhyKind,
    )
    from runlife._core.policy import (
        Deadline,
        DeadlineKind,
        FailureDecision,
        ItemsOutcome,
        Limits,
        Quota,
        QuotaPeriod,
        QuotaUsage,
        Retry,
        Timeout,
        decide_failure,
        items_outcome,
    )
    from runlife._core.queries import (
        CancelRequest,
        Claim,
        JobRecord,
        LogPage,
        LogQuery,
        Page,
        RunQuery,
    )
    from runlife._core.records import (
        Attempt,
        ErrorInfo,
        ErrorKind,
        Event,
        Item,
        ItemCounts,
        LogLine,
        Transition,
    )
    from runlife._core.run import Run
    from runlife._core.schedule import (
        CatchUp,
        Cron,
        Every,
        Schedule,
    )
    from runlife._core.spec import JobSpec
    from runlife._core.status import (
        Status,
        Trigger,
    )
    from runlife._runtime.blocking import Runtime
    from runlife._runtime.context import RunContext
    from runlife._runtime.items import ItemContext
    from runlife._runtime.job import Job, job
    from runlife._runtime.runtime import AsyncRuntime
    from runlife.exceptions import (
        AttemptFailed,
        ConcurrentUpdate,
        Conflict,
        DependencyCycle,
        InvalidCompletion,
        InvalidLifecycle,
        InvalidPolicy,
        InvalidTransition,
        InvalidValue,
        InvalidWorkflow,
        JobNotFound,
        LeaseLost,
        NodeNotFound,
        NotASuccessor,
        NotFound,
        NotSerializable,
        QuotaExceeded,
        RunlifeError,
        RunNotFound,
        SchemaMismatch,
        StoreError,
        UnknownStore,
    )
    from runlife.procedure import Phase, Procedure, ProcedureFailed
    from runlife.stores import open_store

__all__ = (
    "CANONICAL_MOVES",
    "DEFAULT_LIFECYCLE",
    "AsyncRuntime",
    "Attempt",
    "AttemptFailed",
    "CancelRequest",
    "CatchUp",
    "Claim",
    "ConcurrentUpdate",
    "Conflict",
    "CriticalPath",
    "Cron",
    "Deadline",
    "DeadlineKind",
    "DependencyCycle",
    "ErrorInfo",
    "ErrorKind",
    "Event",
    "Every",
    "Explanation",
    "FailureDecision",
    "InvalidCompletion",
    "InvalidLifecycle",
    "InvalidPolicy",
    "InvalidTransition",
    "InvalidValue",
    "InvalidWorkflow",
    "Item",
    "ItemContext",
    "ItemCounts",
    "ItemsOutcome",
    "Job",
    "JobNotFound",
    "JobOverview",
    "JobRecord",
    "JobSpec",
    "LeaseLost",
    "Lifecycle",
    "Limits",
    "LogLine",
    "LogPage",
    "LogQuery",
    "NodeNotFound",
    "NotASuccessor",
    "NotFound",
    "NotSerializable",
    "Overdue",
    "Page",
    "Phase",
    "Procedure",
    "ProcedureFailed",
    "Quota",
    "QuotaExceeded",
    "QuotaPeriod",
    "QuotaUsage",
    "Resolution",
    "Resolver",
    "Retry",
    "Run",
    "RunContext",
    "RunExplanation",
    "RunGraph",
    "RunNotFound",
    "RunQuery",
    "RunlifeError",
    "Runtime",
    "Schedule",
    "SchemaMismatch",
    "SkippedNode",
    "Status",
    "StoreError",
    "Summary",
    "SystemClock",
    "Timeout",
    "Transition",
    "Trigger",
    "TriggerRule",
    "UnknownStore",
    "WhyKind",
    "Workflow",
    "WorkflowOutcome",
    "decide_failure",
    "items_outcome",
    "job",
    "open_store",
)

_WHERE: dict[str, str] = {
    "CANONICAL_MOVES": "runlife._core.lifecycle",
    "DEFAULT_LIFECYCLE": "runlife._core.lifecycle",
    "AsyncRuntime": "runlife._runtime.runtime",
    "Attempt": "runlife._core.records",
    "AttemptFailed": "runlife.exceptions",
    "CancelRequest": "runlife._core.queries",
    "CatchUp": "runlife._core.schedule",
    "Claim": "runlife._core.queries",
    "ConcurrentUpdate": "runlife.exceptions",
    "Conflict": "runlife.exceptions",
    "CriticalPath": "runlife._core.graph",
    "Cron": "runlife._core.schedule",
    "Deadline": "runlife._core.policy",
    "DeadlineKind": "runlife._core.policy",
    "DependencyCycle": "runlife.exceptions",
    "ErrorInfo": "runlife._core.records",
    "ErrorKind": "runlife._core.records",
    "Event": "runlife._core.records",
    "Every": "runlife._core.schedule",
    "Explanation": "runlife._core.graph",
    "FailureDecision": "runlife._core.policy",
    "InvalidCompletion": "runlife.exceptions",
    "InvalidLifecycle": "runlife.exceptions",
    "InvalidPolicy": "runlife.exceptions",
    "InvalidTransition": "runlife.exceptions",
    "InvalidValue": "runlife.exceptions",
    "InvalidWorkflow": "runlife.exceptions",
    "Item": "runlife._core.records",
    "ItemContext": "runlife._runtime.items",
    "ItemCounts": "runlife._core.records",
    "ItemsOutcome": "runlife._core.policy",
    "JobOverview": "runlife._core.overview",
    "Job": "runlife._runtime.job",
    "JobNotFound": "runlife.exceptions",
    "JobRecord": "runlife._core.queries",
    "JobSpec": "runlife._core.spec",
    "LeaseLost": "runlife.exceptions",
    "Lifecycle": "runlife._core.lifecycle",
    "Limits": "runlife._core.policy",
    "LogLine": "runlife._core.records",
    "LogPage": "runlife._core.queries",
    "LogQuery": "runlife._core.queries",
    "NodeNotFound": "runlife.exceptions",
    "NotASuccessor": "runlife.exceptions",
    "NotFound": "runlife.exceptions",
    "NotSerializable": "runlife.exceptions",
    "Overdue": "runlife._core.overview",
    "Page": "runlife._core.queries",
    "Phase": "runlife.procedure",
    "Procedure": "runlife.procedure",
    "ProcedureFailed": "runlife.procedure",
    "Quota": "runlife._core.policy",
    "QuotaExceeded": "runlife.exceptions",
    "QuotaPeriod": "runlife._core.policy",
    "QuotaUsage": "runlife._core.policy",
    "Resolution": "runlife._core.graph",
    "Resolver": "runlife._core.graph",
    "Retry": "runlife._core.policy",
    "Run": "runlife._core.run",
    "RunContext": "runlife._runtime.context",
    "RunExplanation": "runlife._core.overview",
    "RunGraph": "runlife._core.graph",
    "RunNotFound": "runlife.exceptions",
    "RunQuery": "runlife._core.queries",
    "RunlifeError": "runlife.exceptions",
    "Runtime": "runlife._runtime.blocking",
    "Schedule": "runlife._core.schedule",
    "SchemaMismatch": "runlife.exceptions",
    "SkippedNode": "runlife._core.graph",
    "Status": "runlife._core.status",
    "Summary": "runlife._core.overview",
    "StoreError": "runlife.exceptions",
    "SystemClock": "runlife._clock",
    "Timeout": "runlife._core.policy",
    "Transition": "runlife._core.records",
    "Trigger": "runlife._core.status",
    "TriggerRule": "runlife._core.graph",
    "UnknownStore": "runlife.exceptions",
    "WhyKind": "runlife._core.overview",
    "Workflow": "runlife._core.graph",
    "WorkflowOutcome": "runlife._core.graph",
    "decide_failure": "runlife._core.policy",
    "items_outcome": "runlife._core.policy",
    "job": "runlife._runtime.job",
    "open_store": "runlife.stores",
}


def __getattr__(name: str) -> _typing.Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
