"""The canonical statuses of a run and the reasons a run exists."""

from __future__ import annotations

import enum

__all__ = ("ACTIVE", "TERMINAL", "Status", "Trigger")


class Status(enum.StrEnum):
    """The canonical status of a run (and of an item inside a run).

    Every lifecycle maps each of its states onto one of these, so that storage,
    queries and the runtime speak one language whatever the host calls its states.

    >>> Status.FAILED.is_terminal
    True
    >>> Status("QUEUED") is Status.QUEUED
    True
    """

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    WAITING = "WAITING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"

    @property
    def is_terminal(self) -> bool:
        """Whether a run in this status can never change again."""
        return self in TERMINAL


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.SKIPPED})
ACTIVE = frozenset(Status) - TERMINAL


class Trigger(enum.StrEnum):
    """Why a run exists.

    >>> Trigger("RETRY")
    <Trigger.RETRY: 'RETRY'>
    """

    SCHEDULED = "SCHEDULED"
    """Fired by the job's schedule."""
    ADHOC = "ADHOC"
    """Submitted by a person or by the host."""
    RETRY = "RETRY"
    """A failed run tried again, as a new run."""
    RERUN = "RERUN"
    """A finished run started again from scratch, as a new run."""
    RESUME = "RESUME"
    """A new run that skips what its parent already finished."""
    UPSTREAM = "UPSTREAM"
    """Started by a workflow once its upstream nodes allowed it."""
