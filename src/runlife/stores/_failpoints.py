"""Failpoints: named places in the stores where a test can inject a failure.

A store calls ``hit("create_run.before_commit")`` at each such place; it does
nothing unless a test armed that name, in this process with `arm` or in a child
process through the ``RUNLIFE_FAILPOINTS`` environment variable (comma-separated
``name=count`` pairs: fail the next *count* hits). The names used by the built-in
stores are ``{create_run,claim,update_run}.{before_commit,after_commit}``:
``after_commit`` fails *after* the transaction committed, which is the ambiguous
case a caller cannot tell from a lost write.
"""

from __future__ import annotations

import os

from runlife.exceptions import StoreError

__all__ = ("FailpointError", "arm", "armed", "disarm", "hit")


class FailpointError(StoreError):
    """The failure a failpoint injects: it looks like a driver error to the caller."""


_armed: dict[str, int] = {}


def _from_env() -> None:
    for pair in filter(None, os.environ.get("RUNLIFE_FAILPOINTS", "").split(",")):
        name, _, count = pair.partition("=")
        _armed[name.strip()] = int(count or 1)


_from_env()


def arm(name: str, count: int = 1) -> None:
    """Make the next *count* hits of *name* fail."""
    _armed[name] = count


def armed() -> bool:
    """Whether any failpoint is armed (a store may take a slower, checkable path)."""
    return any(count > 0 for count in _armed.values())


def disarm() -> None:
    """Disarm every failpoint."""
    _armed.clear()


def hit(name: str) -> None:
    """Fail here if *name* is armed (cheap when nothing is)."""
    if _armed and _armed.get(name, 0) > 0:
        _armed[name] -= 1
        raise FailpointError(f"failpoint {name} injected a failure")
