"""Random walks through lifecycles keep the lifecycle's invariants.

`runlife.testing.LifecycleMachine`, run over DEFAULT_LIFECYCLE, over randomly
generated valid custom lifecycles, and through a memory and a SQLite store:
terminal states are never left, attempts only increase, replaying the history
gives the state, time never goes backwards, the version counts the moves, a
duration exists only once the run is over, and a refused move leaves the run
untouched.
"""

from __future__ import annotations

from hypothesis import settings

from runlife.testing import LifecycleMachine
from runlife.testing.strategies import lifecycles


@settings(stateful_step_count=40)
class DefaultLifecycleWalk(LifecycleMachine):
    """The default lifecycle, no store."""


@settings(stateful_step_count=40)
class CustomLifecycleWalk(LifecycleMachine):
    """Randomly generated valid custom lifecycles."""

    lifecycle = lifecycles()


@settings(max_examples=10, stateful_step_count=20, deadline=None)
class MemoryStoreWalk(LifecycleMachine):
    """Custom lifecycles, each move written to a memory store and read back."""

    lifecycle = lifecycles()
    store_url = "memory://"


@settings(max_examples=5, stateful_step_count=20, deadline=None)
class SQLiteStoreWalk(LifecycleMachine):
    """Custom lifecycles, each move written to a SQLite store and read back."""

    lifecycle = lifecycles()
    store_url = "sqlite:///{tmp}/runs.db"


TestDefaultLifecycleWalk = DefaultLifecycleWalk.TestCase
TestCustomLifecycleWalk = CustomLifecycleWalk.TestCase
TestMemoryStoreWalk = MemoryStoreWalk.TestCase
TestSQLiteStoreWalk = SQLiteStoreWalk.TestCase
