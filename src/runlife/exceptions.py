"""Every error runlife raises, under one root.

::

    RunlifeError
    ├── InvalidTransition (ValueError)      a move the lifecycle does not allow
    ├── InvalidLifecycle (ValueError)       a lifecycle table that cannot work
    ├── InvalidWorkflow (ValueError)        a workflow graph that cannot work
    │   └── DependencyCycle                 ... because it has a cycle
    ├── InvalidCompletion (ValueError)      a workflow node completed out of turn
    ├── InvalidPolicy (ValueError)          a bad retry/timeout/cron/limits value
    ├── NotSerializable (TypeError)         params or a result that is not JSON
    ├── RunNotFound (LookupError)           no run with that id
    ├── JobNotFound (LookupError)           no job with that name
    ├── NodeNotFound (LookupError)          no node with that name in a workflow
    ├── QuotaExceeded                       a submit over a quota
    ├── LeaseLost                           a worker write whose lease was taken over
    ├── ConcurrentUpdate                    a compare-and-set lost to another writer
    ├── UnknownStore (ValueError)           a store URL with no known scheme
    └── StoreError                          the storage backend failed
        └── SchemaMismatch                  a database runlife cannot (or must not) use

Every exception carries its facts as attributes and builds its message from them,
so that a handler can act on the attributes and a person can act on the message.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

__all__ = (
    "ConcurrentUpdate",
    "DependencyCycle",
    "InvalidCompletion",
    "InvalidLifecycle",
    "InvalidPolicy",
    "InvalidTransition",
    "InvalidWorkflow",
    "JobNotFound",
    "LeaseLost",
    "NodeNotFound",
    "NotSerializable",
    "QuotaExceeded",
    "RunNotFound",
    "RunlifeError",
    "SchemaMismatch",
    "StoreError",
    "UnknownStore",
)


class RunlifeError(Exception):
    """The root of every error runlife raises."""


def _names(values: Iterable[object]) -> str:
    items = sorted(str(v) for v in values)
    return ", ".join(items) if items else "none (it is terminal)"


class InvalidTransition(RunlifeError, ValueError):
    """A run was asked to move where its lifecycle does not allow.

    Attributes: ``run_id``, ``from_``, ``to`` and ``allowed`` (the states it may
    move to from ``from_``).
    """

    def __init__(self, run_id: str, from_: str, to: str, allowed: Iterable[str]) -> None:
        self.run_id = run_id
        self.from_ = from_
        self.to = to
        self.allowed = frozenset(allowed)
        super().__init__(
            f"run {run_id} cannot move from {from_} to {to}; "
            f"allowed from {from_}: {_names(self.allowed)}"
        )


class InvalidLifecycle(RunlifeError, ValueError):
    """A lifecycle table was refused; ``state`` names the state at fault."""

    def __init__(self, message: str, *, state: str | None = None) -> None:
        self.state = state
        super().__init__(message)


class InvalidWorkflow(RunlifeError, ValueError):
    """A workflow graph was refused; ``node`` names the node at fault, if one is."""

    def __init__(self, message: str, *, node: str | None = None) -> None:
        self.node = node
        super().__init__(message)


class DependencyCycle(InvalidWorkflow):
    """A workflow has a cycle; ``cycle`` lists its nodes in order."""

    def __init__(self, workflow: str, cycle: Iterable[str]) -> None:
        self.cycle = tuple(cycle)
        path = " -> ".join((*self.cycle, self.cycle[0])) if self.cycle else "?"
        super().__init__(
            f"workflow {workflow!r} has a dependency cycle: {path}",
            node=self.cycle[0] if self.cycle else None,
        )


class InvalidCompletion(RunlifeError, ValueError):
    """A workflow node was completed when it could not be: it was not ready, it had
    finished already, or the status given is not terminal."""


class NodeNotFound(RunlifeError, LookupError):
    """Workflow ``workflow`` has no node ``node``."""

    def __init__(self, workflow: str, node: str, known: Iterable[str] = ()) -> None:
        self.workflow = workflow
        self.node = node
        known = sorted(known)
        shown = ", ".join(known[:10]) + (f", ... ({len(known)} in all)" if len(known) > 10 else "")
        super().__init__(f"workflow {workflow!r} has no node {node!r}; nodes: {shown or 'none'}")


class InvalidPolicy(RunlifeError, ValueError):
    """A policy value was refused.

    Attributes: ``field`` (the parameter), ``value`` and ``expected`` (what
    would have been accepted).
    """

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field}={value!r} is invalid: expected {expected}")


class NotSerializable(RunlifeError, TypeError):
    """A value that must be JSON is not; ``field`` names where it was found."""

    def __init__(self, field: str, value: object) -> None:
        self.field = field
        self.value = value
        super().__init__(
            f"{field} is not JSON-serialisable: {type(value).__name__} {value!r:.80}; "
            "use str, int, float, bool, None, lists and dicts with str keys"
        )


class RunNotFound(RunlifeError, LookupError):
    """No run has the id ``run_id``."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"no run with id {run_id!r}")


class JobNotFound(RunlifeError, LookupError):
    """No job is named ``job``; ``known`` lists the names that exist."""

    def __init__(self, job: str, known: Iterable[str] = ()) -> None:
        self.job = job
        self.known = tuple(sorted(known))
        super().__init__(f"no job named {job!r}; known jobs: {_names(self.known)}")


class QuotaExceeded(RunlifeError):
    """A submit would exceed ``quota``; it frees up at ``frees_at``."""

    def __init__(self, job: str, quota: str, frees_at: datetime | None) -> None:
        self.job = job
        self.quota = quota
        self.frees_at = frees_at
        when = frees_at.isoformat() if frees_at is not None else "when a run ends"
        super().__init__(f"job {job!r} is over its quota ({quota}); it frees up at {when}")


class LeaseLost(RunlifeError):
    """A worker wrote to a run it no longer holds (its lease lapsed or was taken)."""

    def __init__(self, run_id: str, owner: str, fence: int) -> None:
        self.run_id = run_id
        self.owner = owner
        self.fence = fence
        super().__init__(
            f"worker {owner!r} no longer holds run {run_id} (fence {fence}); "
            "its lease lapsed and the run was reaped or claimed by another worker"
        )


class ConcurrentUpdate(RunlifeError):
    """A compare-and-set on a run's ``version`` lost to another writer."""

    def __init__(self, run_id: str, expected: int, actual: int | None) -> None:
        self.run_id = run_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"run {run_id} changed concurrently: expected version {expected}, "
            f"found {actual}; read it again and retry"
        )


class UnknownStore(RunlifeError, ValueError):
    """A store URL has a scheme no store is registered for."""

    def __init__(self, url: str, known: Iterable[str]) -> None:
        self.url = url
        self.known = tuple(sorted(known))
        super().__init__(f"no store for URL {url!r}; known schemes: {', '.join(self.known)}")


class StoreError(RunlifeError):
    """The storage backend failed; the driver's error is the ``__cause__``."""


class SchemaMismatch(StoreError):
    """A database is foreign, corrupt or from a newer runlife; it was left untouched."""
