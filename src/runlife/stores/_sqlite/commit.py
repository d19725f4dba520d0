"""Group commit: every write of the store goes through one queue and one connection.

A write is an *operation*: a function of the connection, the store time and the
batch's `Later` rows, run in a worker thread inside a write transaction. The
first writer that finds nobody leading becomes the *leader*: it lets the tasks
that are ready queue their writes too, takes every queued operation, and runs
them all in ONE transaction (``BEGIN IMMEDIATE``). Each fails alone: an
operation checks before it writes, so the batch first runs without savepoints,
and only if one failed after writing does it run again with a ``SAVEPOINT`` per
operation. The leader then hands each caller its own outcome and the lead to
the next waiting writer, if any. No background task is needed, so the same code
runs on asyncio and trio.

Cancellation (by anyio, trio, or plain asyncio ``Task.cancel`` and ``wait_for``,
which reach a task at any await) never cuts a write in half:

- a write whose caller is cancelled before its batch started leaves the queue:
  it happened not at all (a leader cancelled before its thread started puts the
  others' writes back on the queue);
- once a batch is in its thread, the thread runs to its end
  (`runlife._threads.run_sync` waits for it, even under asyncio's cancellation),
  and every write of it happened entirely; the others' callers get their outcome;
- whoever leaves the lead (done, failed or cancelled) hands it on, so the queue
  never stalls.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel

from runlife._threads import run_sync
from runlife.exceptions import StoreError
from runlife.stores._batching import on_asyncio
from runlife.stores._failpoints import FailpointError, armed, hit
from runlife.stores._sqlite import sql
from runlife.stores._sqlite.connections import Conn
from runlife.stores._sqlite.errors import is_busy, translate

__all__ = ("GroupCommit", "Later", "OpFn")

T = TypeVar("T")


class Later:
    """What the operations of a batch leave for its end.

    Rows that every operation adds (transition events, the status copies of
    ``run_labels``) are written with one ``executemany`` each just before the
    commit, in the order of the operations; what the store learns from the
    batch (runs as stored, job specs) is applied only once it committed; until
    then `kept` tells the batch's later operations what its earlier ones wrote. An
    operation that fails takes its part back (`mark` / `reset`).
    """

    __slots__ = ("_by_id", "events", "labels", "runs", "specs")

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.labels: list[tuple[str, str]] = []
        self.runs: list[tuple[str, Any]] = []
        self.specs: list[tuple[str, Any]] = []
        self._by_id: dict[str, Any] = {}

    def keep(self, run_id: str, entry: Any) -> None:
        """Record what the store keeps of *run_id* once the batch commits (None:
        nothing, the run is terminal or gone)."""
        self.runs.append((run_id, entry))
        self._by_id[run_id] = entry

    def kept(self, run_id: str, default: Any) -> Any:
        """What an earlier operation of this batch kept of *run_id*, else *default*."""
        return self._by_id.get(run_id, default)

    def mark(self) -> tuple[int, int, int, int]:
        return len(self.events), len(self.labels), len(self.runs), len(self.specs)

    def reset(self, mark: tuple[int, int, int, int]) -> None:
        del self.events[mark[0] :]
        del self.labels[mark[1] :]
        del self.runs[mark[2] :]
        del self.specs[mark[3] :]
        self._by_id = dict(self.runs)

    def write(self, conn: sqlite3.Connection) -> None:
        if self.labels:
            conn.executemany(sql.LABEL_STATUS, self.labels)
        if self.events:
            conn.executemany(sql.INSERT_TRANSITION_EVENT, self.events)


OpFn = Callable[[sqlite3.Connection, int, Later], T]
"""An operation: ``fn(connection, store time in µs, later)``, run inside the batch's
transaction. It checks before it writes, and may run twice (a batch that must
use savepoints runs again), so it only reads what it is given."""

_UNSET: Any = object()


class _Op(Generic[T]):
    """One queued write: its function, then its outcome; and when its batch ran, or
    the lead came to it: on asyncio a bare future (the cheapest thing a task can
    wait on), else an anyio event."""

    __slots__ = ("abandoned", "error", "event", "finished", "fn", "future", "name", "result")

    def __init__(
        self,
        name: str | None,
        fn: OpFn[T],
        loop: asyncio.AbstractEventLoop | None,
        event: type[anyio.Event] | None,
    ) -> None:
        self.name = name
        self.fn = fn
        self.future = None if loop is None else loop.create_future()
        self.event = None if event is None else event()
        self.finished = False
        self.abandoned = False
        self.result: T = _UNSET
        self.error: BaseException | None = None

    def wake(self) -> None:
        future = self.future
        if future is None:
            assert self.event is not None
            self.event.set()
        elif not future.done():  # a cancelled waiter cancelled it
            future.set_result(None)

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result


class GroupCommit:
    """The write queue of one connection (see the module), made on the event loop
    that will use it (it binds to its backend).

    Args:
        conn: the writer connection.
        path: the file, for error messages.
        lock_timeout: seconds a batch may wait for another process's write lock.
        on_commit: called in the writer thread with the `Later` of each batch
            that committed.
        on_flush: called on the event loop after each batch that changed the
            database (a write that changed nothing, an empty claim say, is no
            change for the store's waiters).
    """

    def __init__(
        self,
        conn: Conn,
        path: str,
        lock_timeout: float,
        on_commit: Callable[[Later], None],
        on_flush: Callable[[], None],
    ) -> None:
        self._conn = conn
        self._path = path
        self._lock_timeout = lock_timeout
        self._on_commit = on_commit
        self._on_flush = on_flush
        self._queue: list[_Op[Any]] = []
        self._leader: _Op[Any] | None = None
        self._idle: anyio.Event | None = None
        self._loop = asyncio.get_running_loop() if on_asyncio() else None
        # Elsewhere the running backend's own Event class: made directly, an event
        # costs half (anyio.Event() looks the backend up on every call).
        self._event: type[anyio.Event] | None = None if self._loop else type(anyio.Event())
        self.commits = 0
        """How many transactions committed (for tests and benchmarks)."""

    @property
    def busy(self) -> bool:
        """Whether a write is queued or in flight."""
        return self._leader is not None or bool(self._queue)

    async def idle(self) -> None:
        """Wait until no write is queued or in flight."""
        while self.busy:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    async def write(self, name: str | None, fn: OpFn[T]) -> T:
        """Run *fn* in a batch and return its result (or raise its error).

        *name* names its failpoints (``{name}.before_commit`` and
        ``{name}.after_commit``), if it has any.
        """
        op = _Op(name, fn, self._loop, self._event)
        self._queue.append(op)
        if self._leader is None:
            self._leader = op
        else:
            try:
                # Until its batch ran, or it is handed the lead.
                if op.future is not None:
                    await op.future
                else:
                    assert op.event is not None
                    await op.event.wait()
            except BaseException:
                self._leave(op)
                raise
            if op.finished:
                return op.outcome()
        try:
            await self._lead(op)
        finally:
            if not op.finished:  # cancelled before its batch ran: it never will
                op.abandoned = True
                with suppress(ValueError):
                    self._queue.remove(op)
            self._pass_lead(op)
        return op.outcome()

    def _leave(self, op: _Op[Any]) -> None:
        """A waiting writer was cancelled: its write leaves the queue if it has not
        been taken into a batch (once taken, it happens entirely); the lead, if it
        was just handed to it, goes on."""
        op.abandoned = True
        if op.finished:
            return
        with suppress(ValueError):
            self._queue.remove(op)
        self._pass_lead(op)

    def _pass_lead(self, op: _Op[Any]) -> None:
        if self._leader is not op:
            return
        if self._queue:
            nxt = self._queue[0]
            self._leader = nxt
            nxt.wake()
            return
        self._leader = None
        if self._idle is not None:
            self._idle.set()
            self._idle = None

    async def _lead(self, op: _Op[Any]) -> None:
        # Let the tasks that are ready (those the last batch woke, mostly) queue
        # their next writes first: a batch costs a thread hand-off and a commit
        # whatever its size, and while it runs its thread and the event loop fight
        # over the GIL. Without this the lead passes at once and a full batch
        # alternates with small ones. A few passes at most, so that the writes
        # already queued are never held back for long.
        for _ in range(4):
            n = len(self._queue)
            await anyio.lowlevel.cancel_shielded_checkpoint()
            if len(self._queue) == n:
                break
        batch, self._queue = self._queue, []
        ran = [False]
        try:
            changed = await run_sync(self._commit, batch, ran)
        except BaseException:
            if ran[0]:  # the thread ran to its end: every outcome is there
                self._settle(batch, op)
            else:  # it never started: the others' writes wait for the next leader
                self._queue[:0] = [o for o in batch if o is not op and not o.abandoned]
            raise
        self._settle(batch, op)
        if changed:
            self._on_flush()

    @staticmethod
    def _settle(batch: list[_Op[Any]], leader: _Op[Any]) -> None:
        for o in batch:
            o.finished = True
            if o is not leader:
                o.wake()

    # -- in the writer thread -----------------------------------------------------

    def _commit(self, batch: list[_Op[Any]], ran: list[bool]) -> bool:
        """Run *batch* in one transaction, each write failing alone; never raises
        (every write gets its outcome). Whether the database changed."""
        ran[0] = True
        # A write whose caller was cancelled before the batch started is dropped.
        live = [op for op in batch if not op.abandoned]
        changed = False
        try:
            with self._conn.use() as conn:
                before = conn.total_changes
                later = self._transaction(conn, live)
                changed = later is not None and conn.total_changes != before
            if later is not None:
                self.commits += 1
                self._on_commit(later)
                for op in live:
                    if op.name is not None and op.error is None:
                        try:
                            hit(f"{op.name}.after_commit")
                        except FailpointError as exc:
                            op.error = exc
        except BaseException as exc:  # a closed store; or a failure of the machinery
            error = translate(exc, self._path)
            for op in live:
                if op.result is _UNSET and op.error is None:
                    op.error = error
            if not isinstance(exc, Exception):
                raise
        return changed

    def _transaction(self, conn: sqlite3.Connection, batch: list[_Op[Any]]) -> Later | None:
        """Run *batch* in a transaction; the batch's `Later` once it committed, or
        None if the transaction failed as a whole (every write then has the error)."""
        deadline = time.monotonic() + self._lock_timeout
        delay = 0.002
        savepoints = armed()
        if conn.in_transaction:  # never expected: a batch always ends its transaction
            conn.execute("ROLLBACK")
        while True:
            later = Later()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    (now,) = conn.execute(f"SELECT {sql.NOW}").fetchone()
                    if savepoints:
                        for op in batch:
                            self._run_op(conn, op, now, later)
                    elif not all(self._run_plain(conn, op, now, later) for op in batch):
                        conn.execute("ROLLBACK")
                        savepoints = True
                        continue
                    later.write(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except Exception as exc:
                if is_busy(exc) and time.monotonic() < deadline:
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 0.1)
                    continue
                if is_busy(exc):
                    error: BaseException = StoreError(
                        f"{self._path!r} stayed locked by another writer for "
                        f"{self._lock_timeout:g} s"
                    )
                    error.__cause__ = exc
                else:
                    error = translate(exc, self._path)
                for op in batch:
                    op.result = _UNSET
                    op.error = error
                return None
            return later

    def _run_plain(self, conn: sqlite3.Connection, op: _Op[Any], now: int, later: Later) -> bool:
        """Run *op* without a savepoint; False if it failed after writing."""
        before = conn.total_changes
        mark = later.mark()
        try:
            op.result = op.fn(conn, now, later)
        except sqlite3.OperationalError:
            raise  # busy, I/O, disk full: the whole transaction is in doubt
        except Exception as exc:
            later.reset(mark)
            op.result = _UNSET
            op.error = translate(exc, self._path)
            return conn.total_changes == before
        op.error = None
        return True

    def _run_op(self, conn: sqlite3.Connection, op: _Op[Any], now: int, later: Later) -> None:
        conn.execute("SAVEPOINT op")
        mark = later.mark()
        try:
            op.result = op.fn(conn, now, later)
            if op.name is not None:
                hit(f"{op.name}.before_commit")
        except sqlite3.OperationalError:
            raise  # busy, I/O, disk full: the whole transaction is in doubt
        except Exception as exc:
            later.reset(mark)
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            op.result = _UNSET
            op.error = translate(exc, self._path)
        else:
            op.error = None
            conn.execute("RELEASE op")
