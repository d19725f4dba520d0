"""runlife: the whole life of a host application's background work.

The layers, from the bottom up (each imports only those below it):

* core (``runlife._core``): lifecycle, records, policies, schedules, graphs. Pure:
  no I/O, no awaits, ``now`` is always a parameter.
* ports (`runlife.abc`): the protocols stores and clocks implement.
* adapters (`runlife.stores`, the clocks): memory, SQLite and PostgreSQL storage.
* faces: the ``runlife`` command and `runlife.testing`.
"""

from __future__ import annotations

from runlife._clock import SystemClock
from runlife._core.graph import (
    CriticalPath,
    Explanation,
    Resolution,
    Resolver,
    SkippedNode,
    TriggerRule,
    Workflow,
    WorkflowOutcome,
)
from runlife._core.lifecycle import CANONICAL_MOVES, DEFAULT_LIFECYCLE, Lifecycle
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
from runlife._core.queries import Claim, JobRecord, LogPage, LogQuery, Page, RunQuery
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
from runlife._core.schedule import CatchUp, Cron, Every, Schedule
from runlife._core.spec import JobSpec
from runlife._core.status import Status, Trigger
from runlife.exceptions import (
    ConcurrentUpdate,
    DependencyCycle,
    InvalidCompletion,
    InvalidLifecycle,
    InvalidPolicy,
    InvalidTransition,
    InvalidWorkflow,
    JobNotFound,
    LeaseLost,
    NodeNotFound,
    NotSerializable,
    QuotaExceeded,
    RunlifeError,
    RunNotFound,
    SchemaMismatch,
    StoreError,
    UnknownStore,
)
from runlife.stores import open_store

__all__ = (
    "CANONICAL_MOVES",
    "DEFAULT_LIFECYCLE",
    "Attempt",
    "CatchUp",
    "Claim",
    "ConcurrentUpdate",
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
    "InvalidWorkflow",
    "Item",
    "ItemCounts",
    "ItemsOutcome",
    "JobNotFound",
    "JobRecord",
    "JobSpec",
    "LeaseLost",
    "Lifecycle",
    "Limits",
    "LogLine",
    "LogPage",
    "LogQuery",
    "NodeNotFound",
    "NotSerializable",
    "Page",
    "Quota",
    "QuotaExceeded",
    "QuotaPeriod",
    "QuotaUsage",
    "Resolution",
    "Resolver",
    "Retry",
    "Run",
    "RunNotFound",
    "RunQuery",
    "RunlifeError",
    "Schedule",
    "SchemaMismatch",
    "SkippedNode",
    "Status",
    "StoreError",
    "SystemClock",
    "Timeout",
    "Transition",
    "Trigger",
    "TriggerRule",
    "UnknownStore",
    "Workflow",
    "WorkflowOutcome",
    "decide_failure",
    "items_outcome",
    "open_store",
)
