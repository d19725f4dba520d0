"""Every error runlife raises, under one root.

::

    RunlifeError
    ├── InvalidValue (ValueError)           a value refused where it entered: field, value, expected
    │   ├── InvalidPolicy                   ... a retry/timeout/cron/limits value
    │   └── UnknownStore                    ... a store URL with no known scheme
    ├── InvalidTransition (ValueError)      a move the lifecycle does not allow
    │   └── NotASuccessor                   a write that does not continue the stored run
    ├── InvalidLifecycle (ValueError)       a lifecycle table that cannot work
    ├── InvalidWorkflow (ValueError)        a workflow graph that cannot work
    │   └── DependencyCycle                 ... because it has a cycle
    ├── InvalidCompletion (ValueError)      a workflow node completed out of turn
    ├── NotSerializable (TypeError)         params or a result that is not JSON
    ├── NotFound (LookupError)              something asked for by name or id is not there
    │   ├── RunNotFound                     ... no run with that id
    │   ├── JobNotFound                     ... no job with that name
    │   └── NodeNotFound                    ... no node with that name in a workflow
    ├── Conflict                            another writer got there first
    │   ├── ConcurrentUpdate                ... a compare-and-set on a run's version lost
    │   └── LeaseLost                       ... a worker write whose lease was taken over
    ├── QuotaExceeded                       a submit over a quota
    ├── AttemptFailed                       a job function failed out of reach (a child process)
    └── StoreError                          the storage backend failed
        └── SchemaMismatch                  a database runlife cannot (or must not) use

Every exception carries its facts as attributes and builds its message from them,
so that a handler can act on the attributes and a person can act on the message.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runlife._core.records import ErrorInfo

__all__ = (
    "AttemptFailed",
    "ConcurrentUpdate",
    "Conflict",
    "DependencyCycle",
    "InvalidCompletion",
    "InvalidLifecycle",
    "InvalidPolicy",
    "InvalidTransition",
    "InvalidValue",
    "InvalidWorkflow",
    "JobNotFound",
    "LeaseLost",
    "NodeNotFound",
    "NotASuccessor",
    "NotFound",
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


class InvalidValue(RunlifeError, ValueError):
    """A value was refused where it entered runlife; nothing was written.

    Attributes: ``field`` (the parameter or field), ``value`` and ``expected``
    (what would have been accepted).

    >>> raise InvalidValue("lease", -5, "a number of seconds above 0")
    Traceback (most recent call last):
    ...
    runlife.exceptions.InvalidValue: lease=-5 is invalid: expected a number of seconds above 0
    """

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field}={_short.repr(value)} is invalid: expected {expected}")


class NotFound(RunlifeError, LookupError):
    """Something asked for by name or id is not there."""


class Conflict(RunlifeError):
    """Another writer changed what this write was based on; read again and retry."""


# Messages show values briefly: a deeply nested value must not break its own error.
_short = reprlib.Repr()
_short.maxlevel, _short.maxstring, _short.maxother = 3, 80, 80


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


class NotASuccessor(InvalidTransition):
    """A store refused a write that does not continue the run it has stored.

    A run is written as a successor of the stored one: its version one higher per
    change, its history the stored history with moves of its lifecycle appended
    (ending in its state), its identity unchanged, and the stored run not terminal.
    ``problem`` says which of these the write broke; nothing was written.
    """

    def __init__(self, run_id: str, from_: str, to: str, problem: str) -> None:
        self.problem = problem
        RunlifeError.__init__(self, f"run {run_id}: write refused, {problem}; nothing was written")
        self.run_id = run_id
        self.from_ = from_
        self.to = to
        self.allowed = frozenset()


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


class NodeNotFound(NotFound):
    """Workflow ``workflow`` has no node ``node``."""

    def __init__(self, workflow: str, node: str, known: Iterable[str] = ()) -> None:
        self.workflow = workflow
        self.node = node
        known = sorted(known)
        shown = ", ".join(known[:10]) + (f", ... ({len(known)} in all)" if len(known) > 10 else "")
        super().__init__(f"workflow {workflow!r} has no node {node!r}; nodes: {shown or 'none'}")


class InvalidPolicy(InvalidValue):
    """A policy value (retry, timeout, schedule, limits, spec) was refused.

    Attributes: ``field`` (the parameter), ``value`` and ``expected`` (what
    would have been accepted).
    """


class NotSerializable(RunlifeError, TypeError):
    """A value that must be JSON is not; ``field`` names where it was found."""

    def __init__(self, field: str, value: object, expected: str | None = None) -> None:
        self.field = field
        self.value = value
        accepted = expected or "use str, int, float, bool, None, lists and dicts with str keys"
        super().__init__(
            f"{field} is not JSON-serialisable: {type(value).__name__} "
            f"{_short.repr(value)}; {accepted}"
        )


class RunNotFound(NotFound):
    """No run has the id ``run_id``."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"no run with id {run_id!r}")


class JobNotFound(NotFound):
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


class AttemptFailed(RunlifeError):
    """A job function failed where its exception could not be handed over as it is
    (in a child process); ``error`` is its `runlife.ErrorInfo`: the exception's
    qualified type name, message and traceback text.

    Executors raise it (see `runlife.abc.Executor`); the runtime records ``error`` as
    the attempt's error, and the retry policy matches ``error.type`` by name, as it
    would match the exception itself.

    >>> from runlife import ErrorInfo
    >>> raise AttemptFailed(ErrorInfo(type="ConnectionRefusedError", message="no route"))
    Traceback (most recent call last):
    ...
    runlife.exceptions.AttemptFailed: ConnectionRefusedError: no route
    """

    def __init__(self, error: ErrorInfo) -> None:
        self.error = error
        super().__init__(f"{error.type}: {error.message}" if error.message else error.type)


class LeaseLost(Conflict):
    """A worker wrote to a run it no longer holds (its lease lapsed or was taken)."""

    def __init__(self, run_id: str, owner: str, fence: int) -> None:
        self.run_id = run_id
        self.owner = owner
        self.fence = fence
        super().__init__(
            f"worker {owner!r} no longer holds run {run_id} (fence {fence}); "
            "its lease lapsed and the run was reaped or claimed by another worker"
        )


class ConcurrentUpdate(Conflict):
    """A compare-and-set on a run lost to another writer: its ``version`` (or
    the item counts the write expected) changed meanwhile.

    >>> str(ConcurrentUpdate("01J9", 3, 4))
    'run 01J9 changed concurrently: expected version 3, found 4; read it again and retry'
    """

    def __init__(
        self, run_id: str, expected: int, actual: int | None, *, why: str | None = None
    ) -> None:
        self.run_id = run_id
        self.expected = expected
        self.actual = actual
        why = why or f"expected version {expected}, found {actual}"
        super().__init__(f"run {run_id} changed concurrently: {why}; read it again and retry")


class UnknownStore(InvalidValue):
    """A store URL has a scheme no store is registered for."""

    def __init__(self, url: str, known: Iterable[str]) -> None:
        self.url = url
        self.known = tuple(sorted(known))
        self.field, self.value = "url", url
        self.expected = f"a URL of a known scheme: {', '.join(self.known)}"
        RunlifeError.__init__(
            self, f"no store for URL {url!r}; known schemes: {', '.join(self.known)}"
        )


class StoreError(RunlifeError):
    """The storage backend failed; the driver's error is the ``__cause__``."""


class SchemaMismatch(StoreError):
    """A database is foreign, corrupt or from a newer runlife; it was left untouched."""
