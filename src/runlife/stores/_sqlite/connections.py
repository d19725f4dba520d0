"""The store's connections to its file: opening them, lending them to worker
threads, waiting out other processes' locks, and closing them safely.

A connection is only ever used by one worker thread at a time, inside `Conn.use`,
and is never closed while a thread is using it: `Conn.close` closes an idle
connection at once and leaves a busy one to the thread using it, which closes it
when its statement is done. (Closing a SQLite connection under a running
statement crashes the interpreter.)
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

import anyio

from runlife._threads import run_sync
from runlife.exceptions import StoreError
from runlife.stores._sqlite.errors import is_busy, translate

__all__ = ("Conn", "Readers", "connect", "with_busy_retry")

T = TypeVar("T")


def _icontains(haystack: str | None, needle: str) -> bool:
    # Python's lower(), as MemoryStore matches; SQLite's LIKE folds ASCII only.
    return haystack is not None and needle in haystack.lower()


def _julianday(now: Callable[[], datetime]) -> Callable[[str], float]:
    """SQLite's ``julianday('now')`` read from *now* (the only form the store's SQL uses)."""

    def julianday(value: str) -> float:
        if value != "now":
            raise ValueError(f"julianday({value!r}): a store on a clock reads only 'now'")
        return now().timestamp() / 86400.0 + 2440587.5

    return julianday


def connect(
    path: str, busy_ms: int, *, reader: bool = False, now: Callable[[], datetime] | None = None
) -> sqlite3.Connection:
    """A connection to *path* (``isolation_level=None``: the store says BEGIN and
    COMMIT itself) that waits *busy_ms* for another process's lock; with *now*, its
    SQL reads the time from it instead of the system's."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
    try:
        conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
        if now is not None:
            conn.create_function("julianday", 1, _julianday(now))
        if reader:
            conn.execute("PRAGMA query_only = 1")
            conn.create_function("rl_icontains", 2, _icontains, deterministic=True)
    except BaseException:
        conn.close()
        raise
    return conn


def with_busy_retry(fn: Callable[[], T], path: str, lock_timeout: float) -> T:
    """``fn()``, retried with capped, jittered backoff while another process holds a
    lock, for at most *lock_timeout* seconds; driver errors become `StoreError`."""
    deadline = time.monotonic() + lock_timeout
    delay = 0.002
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_busy(exc):
                error = translate(exc, path)
                if error is exc:
                    raise
                raise error from exc
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"{path!r} stayed locked by another writer for {lock_timeout:g} s"
                ) from exc
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.1)


class Conn:
    """One SQLite connection, lent to one thread at a time and closed only when idle."""

    __slots__ = ("_busy", "_closing", "_state", "_turn", "raw")

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw
        self._turn = threading.Lock()  # held by the thread using the connection
        self._state = threading.Lock()  # guards the two flags
        self._busy = False
        self._closing = False

    @property
    def closed(self) -> bool:
        """Whether the connection was closed (or will be, once idle)."""
        return self._closing

    @contextmanager
    def use(self) -> Iterator[sqlite3.Connection]:
        """The raw connection, for the calling thread alone (another one waits its
        turn); `StoreError` once closed."""
        with self._turn:
            with self._state:
                if self._closing:
                    raise StoreError("the store is closed")
                self._busy = True
            try:
                yield self.raw
            finally:
                self._release()

    def _release(self) -> None:
        with self._state:
            self._busy = False
            if self._closing:
                self.raw.close()

    def close(self) -> bool:
        """Close the connection now if it is idle (True), else as soon as the thread
        using it is done (False)."""
        with self._state:
            self._closing = True
            if self._busy:
                return False
            self.raw.close()
            return True


class Readers:
    """A pool of read-only connections, each lent to one worker thread at a time.

    WAL lets them read while the writer commits; a read sees every write that
    returned before it started.
    """

    def __init__(
        self,
        path: str,
        busy_ms: int,
        lock_timeout: float,
        size: int,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._path = path
        self._now = now
        self._busy_ms = busy_ms
        self._lock_timeout = lock_timeout
        self._size = size
        self._idle: list[Conn] = []
        self._all: list[Conn] = []
        self._slots: anyio.Semaphore | None = None
        self._closed = False

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` in a worker thread on an idle connection (busy locks
        waited out, driver errors as `StoreError`)."""
        if self._slots is None:
            # anyio primitives bind to the running backend: made on first use.
            self._slots = anyio.Semaphore(self._size)
        async with self._slots:
            if self._closed:
                raise StoreError("the store is closed")
            # run_sync: even a caller cancelled meanwhile leaves the slot only once
            # the thread is done with the connection (it puts it back itself).
            return await run_sync(self._run, fn)

    def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            conn = self._idle.pop()
        except IndexError:
            try:
                conn = Conn(connect(self._path, self._busy_ms, reader=True, now=self._now))
            except Exception as exc:
                raise translate(exc, self._path, "opening a reader") from exc
            self._all.append(conn)
        try:
            with conn.use() as raw:
                return with_busy_retry(lambda: fn(raw), self._path, self._lock_timeout)
        finally:
            self._idle.append(conn)

    async def drain(self) -> None:
        """Wait until no read is in flight (reads that start later are refused)."""
        self._closed = True
        if self._slots is None:
            return
        for _ in range(self._size):
            await self._slots.acquire()

    def close(self) -> None:
        """Close every connection (a busy one when its thread is done)."""
        self._closed = True
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._idle.clear()
