"""A store opened from a URL, made to tell time by a test's clock where it can."""

from __future__ import annotations

from runlife.abc import Clock, Store
from runlife.stores import MemoryStore, SQLiteStore

__all__ = ("on_clock",)


def on_clock(store: Store, clock: Clock) -> Store:
    """*store* (not yet entered) on *clock*'s time: the memory and SQLite stores take
    a clock; any other store, PostgreSQL's included, keeps its own."""
    if type(store) is MemoryStore:
        return MemoryStore(clock=clock)
    if type(store) is SQLiteStore:
        return SQLiteStore(store.path, clock=clock)
    return store
