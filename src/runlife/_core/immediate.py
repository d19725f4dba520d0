"""The process-wide switch behind `runlife.testing.immediate`: no waits for retries
and schedules, in tests that live in real time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ("immediate", "is_immediate")

_depth = 0


def is_immediate() -> bool:
    """Whether `immediate` is in force (anywhere in this process)."""
    return _depth > 0


@contextmanager
def immediate() -> Iterator[None]:
    """Turn retry delays and schedules into zero waits while the block runs.

    Inside it, every retry that a policy allows comes at once (its delay is 0,
    the attempts budget is unchanged), and each runtime that starts fires the
    next slot of each of its schedules at once, then follows the schedule. It
    nests, and holds for the whole process (every thread and event loop), like
    stamina's ``set_testing``. For tests in real time: in virtual time, use a
    `runlife.testing.VirtualClock` instead, which keeps the delays' meaning.

    >>> from runlife import Retry
    >>> retry = Retry(max_attempts=3, delay=60)
    >>> with immediate():
    ...     retry.next_delay(1), retry.next_delay(3)
    (0.0, None)
    >>> retry.next_delay(1)
    60.0
    """
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
