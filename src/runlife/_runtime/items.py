"""Items inside runs: ``ctx.item`` (an `ItemContext`), ``ctx.items`` and ``ctx.map``.

* **Writes.** Each item is written when it starts (RUNNING) and when it ends,
  with the attempt's claim. The writes do not wait for the store: a `RunItems`
  (one per attempt) keeps the latest state of each item not stored yet and one
  background task writes them, all that are waiting in one ``save_items`` call,
  as fast as the store takes them (an item that starts and ends between two
  writes is stored once, in its final state). So a loop of items costs about
  one store write per batch, not two per item, and the store's
  ``run.progress`` trails the job by one write at most. Before the attempt's
  outcome is written, every item write is stored, so the counts a finished run
  shows are exact and `items_verdict` judges them. Writers wait only when
  `MAX_WAITING` items are waiting (a slow store slows the job, memory stays
  bounded).
* **Outcomes.** An `Exception` inside an item ends it FAILED and is suppressed;
  a `BaseException` (a cancellation: the attempt was cut) ends it CANCELLED and
  goes on. An item still open when its attempt ends (a thread that could not be
  stopped) is recorded CANCELLED then.
* **Resume.** In a run that resumes another (trigger RESUME, ``parent_id`` the
  resumed run), the items that succeeded there are not done again: they are
  recorded SKIPPED, with the output they had and a reason naming that run
  (`resumed_items` decides; along a chain of resumes, the run where each
  succeeded is found).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import structlog

from runlife._clock import now_of
from runlife._core.fast import compile_maker
from runlife._core.policy import ItemsOutcome, Retry, items_outcome, resumed_items, wait_limit
from runlife._core.queries import Claim
from runlife._core.records import ErrorInfo, Item
from runlife._core.run import Run
from runlife._core.status import Status, Trigger
from runlife._core.values import check_json, check_names, check_text, is_text
from runlife._runtime.capture import route_item, routed_item, unroute
from runlife._runtime.guard import StoreGuard
from runlife.abc import Clock
from runlife.exceptions import (
    AttemptFailed,
    InvalidValue,
    LeaseLost,
    RunlifeError,
    RunNotFound,
)
from runlife.executors import AsyncExecutor

__all__ = ("MAX_WAITING", "ItemContext", "RunItems", "items_verdict")

MAX_WAITING: Final = 4096
"""How many items may wait to be written before writers wait for the store."""

_NAMED: Final = 5  # failed items named by a run's outcome
_YIELD_EVERY: Final = 64  # items entered between two checkpoints
_STOPPED = "its attempt was stopped while the item ran"
_STILL_RUNNING = "; its thread could not be interrupted and is still running"

# Items are built on the hot path from values checked already: positionally
# (run_id, key, phase, status, started_at, ended_at, attempts, error, output, reason).
_item: Callable[..., Item] = compile_maker(Item)
_is_async = AsyncExecutor().accepts

Spawn = Callable[[Callable[[], Coroutine[Any, Any, None]]], object]


class ItemContext:
    """One item of a run: what ``ctx.item(key)`` gives inside its block.

    Entering the block records the item RUNNING; leaving it records how it ended,
    with its duration and `output`: SUCCEEDED, or FAILED with the error of an
    `Exception` raised inside (type, message, traceback), which is suppressed so
    the run goes on. A `BaseException` (the attempt was cancelled or cut) records
    it CANCELLED and passes through. A sync job function (in a thread) uses plain
    ``with``.

    In a run that resumes another (``rt.resume``), an item that succeeded there
    is not done again: `skipped` is True, the item is recorded SKIPPED with the
    `output` it had and a `reason` naming that run, and the block should do
    nothing (``if item.skipped: continue``; ``await ctx.items(keys)`` gives the
    keys left to do, and ``ctx.map`` skips them itself). If the block runs
    anyway, the item stays SKIPPED unless the block raises.

    Attributes:
        key: the item's key (unique in its run).
        phase: the item's phase, if any (``"pre-check"``, ``"change"``).
        output: what to record as the item's output (JSON); set it in the block.
        skipped: whether the item was done in the run this one resumes.
        reason: why the item is skipped (None if it is not).

    >>> import anyio, runlife
    >>> from runlife.stores import MemoryStore
    >>> @runlife.job
    ... async def backup(ctx, devices):
    ...     for device in devices:
    ...         async with ctx.item(device, phase="backup") as item:
    ...             if device == "rtr-2":
    ...                 raise ConnectionError("no route to host")
    ...             item.output = {"bytes": 24832}
    >>> async def main():
    ...     async with runlife.AsyncRuntime(jobs=[backup], store=MemoryStore()) as rt:
    ...         run = await rt.wait((await rt.submit(backup, {"devices": ["rtr-1", "rtr-2"]})).id)
    ...         return run, await rt.items(run.id)
    >>> run, items = anyio.run(main)
    >>> run.status, run.warnings
    (<Status.SUCCEEDED: 'SUCCEEDED'>, ('1 of 2 items failed: rtr-2',))
    >>> [(i.key, i.status.value, i.output) for i in items]
    [('rtr-1', 'SUCCEEDED', {'bytes': 24832}), ('rtr-2', 'FAILED', None)]
    >>> items[1].error.message
    'no route to host'
    """

    __slots__ = (
        "_book",
        "_log",
        "_parent_log",
        "_routed",
        "_skip",
        "key",
        "output",
        "phase",
        "reason",
        "skipped",
    )

    def __init__(self, book: RunItems, key: str, phase: str | None, log: Any) -> None:
        self._book = book
        self._parent_log = log
        self._log: Any = None
        self._routed: Any = None  # the token of its route (`route_item`)
        self._skip: str | None = None
        self.key = key
        self.phase = phase
        self.output: Any = None
        self.skipped = False
        self.reason: str | None = None

    def __repr__(self) -> str:
        return f"<ItemContext {self.key!r} of run {self._book.run_id}>"

    @property
    def log(self) -> Any:
        """A structlog logger bound to the run, its attempt and this item (``item=key``)."""
        if self._log is None:
            self._log = self._parent_log.bind(item=self.key)
        return self._log

    def skip(self, reason: str) -> None:
        """Record the item SKIPPED, for *reason*, when the block ends (unless it raises).

        Raises:
            InvalidValue: *reason* is not text.
        """
        check_text("reason", reason)
        self._skip = reason

    async def __aenter__(self) -> Self:
        await self._book.enter(self)
        self._routed = route_item(self.key)  # its body's prints and logging are its
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._unroute()
        return self._book.leave(self, exc)

    def __enter__(self) -> Self:
        self._book.check_thread("with ctx.item(...)", "async with ctx.item(...)")
        anyio.from_thread.run(self._book.enter, self)
        self._routed = route_item(self.key)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._unroute()
        return anyio.from_thread.run_sync(self._book.leave, self, exc)

    def _unroute(self) -> None:
        routed, self._routed = self._routed, None
        unroute(routed)


class RunItems:
    """The items of one attempt: their writes, their skipping on resume, ``ctx.map``.

    Made by the worker for each attempt; the job reaches it through its
    `RunContext`. Every method runs on the event loop (`ItemContext` bridges
    threads to it).

    Args:
        run: the run, as claimed for this attempt.
        claim: the attempt's claim: every write names it.
        guard: the store.
        clock: the runtime's clock (retry delays and timeouts of ``ctx.map``).
        spawn: starts the writing task (in the worker's task group).
    """

    def __init__(
        self, *, run: Run, claim: Claim, guard: StoreGuard, clock: Clock, spawn: Spawn
    ) -> None:
        self.run_id = run.id
        self._run = run
        self._claim = claim
        self._guard = guard
        self._clock = clock
        self._now = now_of(clock)
        self._spawn = spawn
        self._thread = threading.get_ident()
        self._waiting: dict[str, Item] = {}
        self._open: dict[str, Item] = {}
        self._known: set[str] = set()  # keys this attempt declared or started
        self._phases: dict[str, str | None] = {}
        self._entered = 0
        self._queued = 0  # writes handed to the writer so far
        self._stored = 0  # of which this many are stored (or dropped)
        self._writing = False
        self._wake: anyio.Event | None = None
        self._wrote: anyio.Event | None = None
        self._closed = False
        self._lost = False
        self._resuming = run.trigger is Trigger.RESUME and run.parent_id is not None
        self._done: dict[str, tuple[Item, str]] | None = None if self._resuming else {}
        self._skipped: set[str] = set()
        self._loading: anyio.Lock | None = None

    def __repr__(self) -> str:
        return f"<RunItems of run {self.run_id}: {len(self._waiting)} waiting to be written>"

    @property
    def wrote(self) -> bool:
        """Whether the attempt handed any item write to the store."""
        return self._queued > 0

    @functools.cached_property
    def _log(self) -> Any:
        # Made when first needed: most attempts never log about their items.
        return structlog.get_logger("runlife.items").bind(run_id=self.run_id)

    # -- the job's side ----------------------------------------------------------------

    def item(self, key: str, phase: str | None, log: Any) -> ItemContext:
        """The context of item *key* (see `ItemContext`)."""
        check_text("key", key, empty=False)
        check_text("phase", phase, optional=True)
        return ItemContext(self, key, phase, log)

    async def declare(self, keys: Iterable[str], phase: str | None = None) -> tuple[str, ...]:
        """Record *keys* as the run's items, PENDING (SKIPPED if done in the resumed
        run), in one write, stored on return; the keys left to do (all but those
        done in the resumed run), in order.

        Keys this attempt has declared or started already are left as they are.
        """
        check_text("phase", phase, optional=True)
        checked = _check_keys(keys)
        await self._resume_info()
        assert self._done is not None
        todo: list[str] = []
        for key in checked:
            if phase is not None:
                self._phases[key] = phase
            done = self._done.get(key)
            if done is None:
                todo.append(key)
            if key in self._known:
                continue
            self._known.add(key)
            if done is not None:
                self._put(self._skipped_item(key, phase, *done))
            else:
                self._put(_item(self.run_id, key, phase, Status.PENDING, None, None, 0, None,
                                None, None))  # fmt: skip
        await self.flush()
        return tuple(todo)

    async def enter(self, scope: ItemContext) -> None:
        """Start item *scope*: RUNNING, or SKIPPED when the resumed run did it."""
        self._entered += 1
        if not self._entered % _YIELD_EVERY:
            # Even blocks that never await let the writer, the heartbeats and a
            # cancellation in now and then.
            await anyio.lowlevel.checkpoint()
        key = scope.key
        if self._done is None:
            await self._resume_info()
            assert self._done is not None
        if key in self._open:
            raise InvalidValue("key", key, "a key that no other open item of this run has")
        done = self._done.get(key) if self._done else None
        phase = scope.phase
        if phase is None:
            phase = scope.phase = self._phases.get(key)
        self._known.add(key)
        if done is not None:
            item = self._skipped_item(key, phase, *done)
            scope.skipped, scope.reason, scope.output = True, item.reason, item.output
            self._open[key] = item
            if key not in self._skipped:
                self._put(item)
        else:
            item = _item(self.run_id, key, phase, Status.RUNNING, self._now(), None, 1,
                         None, None, None)  # fmt: skip
            self._open[key] = item
            self._put(item)
        if len(self._waiting) >= MAX_WAITING:
            await self._wait_written()

    def leave(self, scope: ItemContext, exc: BaseException | None) -> bool:
        """End item *scope* as *exc* says; whether to suppress *exc*."""
        started = self._open.pop(scope.key, None)
        if started is None:  # its attempt ended meanwhile (a thread left running)
            return False
        failed = isinstance(exc, Exception)
        if started.status is Status.SKIPPED and not failed:
            if exc is None and scope._skip is not None:
                self._put(_ended(started, Status.SKIPPED, self._now(), reason=scope._skip))
            return False
        now = self._now()
        output, bad = _json_or_error(scope.output, scope.key)
        if exc is None and bad is None:
            if scope._skip is not None:
                item = _ended(started, Status.SKIPPED, now, output=output, reason=scope._skip)
            else:
                item = _ended(started, Status.SUCCEEDED, now, output=output)
        elif exc is None or failed:
            error = _error_of(exc if exc is not None else bad)  # type: ignore[arg-type]
            item = _ended(started, Status.FAILED, now, output=output, error=error)
        else:
            error = ErrorInfo(kind="cancelled", type=type(exc).__qualname__, message=_STOPPED)
            item = _ended(started, Status.CANCELLED, now, output=output, error=error)
        self._put(item)
        return failed

    def check_thread(self, what: str, instead: str) -> None:
        """Refuse *what* on the event loop's thread (an async job uses *instead*)."""
        if threading.get_ident() == self._thread:
            raise RuntimeError(
                f"{what} is for sync job functions, which run in threads; "
                f"an async job function uses {instead}"
            )

    async def resumed(self) -> dict[str, dict[str, Any]]:
        """The items done in the run this one resumes (none if it resumes none),
        by key: the ``output`` they had and the ``reason`` they are skipped, for
        an attempt in a child process to know what `enter` will decide."""
        await self._resume_info()
        assert self._done is not None
        out = {}
        for key, done in self._done.items():
            item = self._skipped_item(key, None, *done)
            out[key] = {"output": item.output, "reason": item.reason}
        return out

    # -- ctx.map -------------------------------------------------------------------------

    async def map(
        self,
        fn: Callable[[str], Any],
        keys: Iterable[str],
        *,
        concurrency: int = 4,
        retry: Retry | None = None,
        timeout: float | timedelta | None = None,
        phase: str | None = None,
        log: Any,
    ) -> dict[str, Any]:
        """Run ``fn(key)`` for each key as an item (see ``RunContext.map``)."""
        if not callable(fn):
            raise InvalidValue("fn", fn, "a function of one key, sync or async")
        if type(concurrency) is not int or concurrency < 1:
            raise InvalidValue("concurrency", concurrency, "an int >= 1")
        if retry is not None and not isinstance(retry, Retry):
            raise InvalidValue("retry", retry, "a runlife.Retry or None")
        limit = wait_limit(timeout)  # InvalidPolicy (an InvalidValue) naming timeout
        checked = _check_keys(keys)
        todo = await self.declare(checked, phase)
        assert self._done is not None
        outputs: dict[str, Any] = {}
        for key in checked:
            done = self._done.get(key)
            if done is not None:
                outputs[key] = done[0].output
        policy = retry if retry is not None else Retry(max_attempts=1, delay=0)
        is_async = _is_async(fn)
        threads = None if is_async else anyio.CapacityLimiter(concurrency)
        queue = iter(todo)

        async def run_keys() -> None:
            for key in queue:
                await self._map_key(fn, key, is_async, threads, policy, limit, outputs, log)

        async with anyio.create_task_group() as tg:
            for _ in range(min(concurrency, len(todo))):
                tg.start_soon(run_keys)
        return {key: outputs[key] for key in checked if key in outputs}

    async def _map_key(
        self,
        fn: Callable[[str], Any],
        key: str,
        is_async: bool,
        threads: anyio.CapacityLimiter | None,
        policy: Retry,
        limit: timedelta | None,
        outputs: dict[str, Any],
        log: Any,
    ) -> None:
        clock = self._clock
        phase = self._phases.get(key)
        first: datetime | None = None
        current: Item | None = None
        number = 0
        try:
            while True:
                number += 1
                start = clock.now()
                if first is None:
                    first = start
                current = _item(self.run_id, key, phase, Status.RUNNING, first, None, number,
                                None, None, None)  # fmt: skip
                self._open[key] = current
                self._put(current)
                value, error = await self._call(fn, key, number, is_async, threads, limit)
                if error is None:
                    value, error = _json_or_error(value, key)
                if error is None:
                    self._finish_key(current, Status.SUCCEEDED, output=value)
                    outputs[key] = value
                    return
                info = error if isinstance(error, ErrorInfo) else _error_of(error)
                delay = policy.next_delay(number, error)
                if delay is None:
                    self._finish_key(current, Status.FAILED, error=info)
                    return
                current = _ended(current, Status.RETRYING, None, error=info)
                self._open[key] = current
                self._put(current)
                # The item keeps its last error only: each retried one is logged.
                log.bind(item=key).warning(
                    f"item attempt {number} of {policy.max_attempts} failed; "
                    f"retrying in {delay:g} s",
                    item_attempt=number,
                    started_at=start.isoformat(),
                    error=f"{info.type}: {info.message}",
                )
                await clock.sleep(delay)
        except BaseException as exc:
            if self._open.get(key) is current and current is not None:
                error = ErrorInfo(kind="cancelled", type=type(exc).__qualname__, message=_STOPPED)
                self._finish_key(current, Status.CANCELLED, error=error)
            raise

    def _finish_key(
        self, current: Item, status: Status, *, output: Any = None, error: ErrorInfo | None = None
    ) -> None:
        self._open.pop(current.key, None)
        self._put(_ended(current, status, self._clock.now(), output=output, error=error))

    async def _call(
        self,
        fn: Callable[[str], Any],
        key: str,
        number: int,
        is_async: bool,
        threads: anyio.CapacityLimiter | None,
        limit: timedelta | None,
    ) -> tuple[Any, BaseException | ErrorInfo | None]:
        """``fn(key)``, within *limit*: its value, or the error that ended it."""
        returned = threading.Event()

        def in_thread() -> Any:
            try:
                with routed_item(key):
                    return fn(key)
            finally:
                returned.set()

        async def call() -> Any:
            if is_async:
                with routed_item(key):
                    return await fn(key)
            with self._clock.busy():
                return await anyio.to_thread.run_sync(
                    in_thread, limiter=threads, abandon_on_cancel=True
                )

        value: Any = None
        finished = False
        try:
            if limit is None:
                return await call(), None
            with self._clock.move_on_at(self._clock.now() + limit):
                value = await call()
                finished = True
        except Exception as exc:
            return None, exc
        if finished:
            return value, None
        seconds = f"{limit.total_seconds():g} s"
        note = "" if is_async or returned.is_set() else _STILL_RUNNING
        message = f"attempt {number} of item {key!r} exceeded its timeout of {seconds}{note}"
        return None, ErrorInfo(kind="timeout", type="TimeoutError", message=message)

    # -- the writes --------------------------------------------------------------------

    def _put(self, item: Item) -> None:
        """Hand *item* to the writer (replacing a state of its key not written yet)."""
        if self._closed:
            self._log.debug("item written after its attempt ended; dropped", item=item.key)
            return
        self._waiting[item.key] = item
        self._queued += 1
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()
        elif not self._writing:
            self._writing = True
            self._spawn(self._writer)

    async def _writer(self) -> None:
        try:
            while True:
                if not self._waiting:
                    if self._closed:
                        return
                    wake = self._wake = anyio.Event()
                    await wake.wait()
                    continue
                queued, batch = self._queued, list(self._waiting.values())
                self._waiting = {}
                self._skipped.update(i.key for i in batch if i.status is Status.SKIPPED)
                await self._write(batch)
                self._stored = queued
                self._signal_written()
        finally:
            self._writing = False
            self._wake = None
            self._signal_written()

    async def _write(self, batch: list[Item]) -> None:
        if self._lost:
            return
        try:
            await self._guard.save_items(batch, claim=self._claim)
        except LeaseLost:
            self._lost = True
            self._log.warning(
                "lease lost: item writes are dropped; the run is another writer's now"
            )
        except Exception:
            # Never the worker's end: the writer runs in its task group.
            self._log.exception("items not stored", items=", ".join(i.key for i in batch[:10]))

    def _signal_written(self) -> None:
        if self._wrote is not None:
            self._wrote.set()
            self._wrote = None

    async def _wait_written(self) -> None:
        if self._wrote is None:
            self._wrote = anyio.Event()
        await self._wrote.wait()

    async def flush(self) -> None:
        """Return once every item handed to the writer so far is stored."""
        target = self._queued
        while self._stored < target and self._writing:
            await self._wait_written()

    async def close(self, *, write: bool = True) -> None:
        """End the attempt's items: the ones still open are recorded CANCELLED,
        everything waiting is stored (dropped unless *write*), and later writes
        are dropped."""
        if self._closed:
            return
        now = self._clock.now()
        for started in self._open.values():
            if started.status is not Status.SKIPPED:
                error = ErrorInfo(kind="cancelled", type="Stopped", message=_STOPPED)
                self._put(_ended(started, Status.CANCELLED, now, error=error))
        self._open.clear()
        if not write:
            self._lost = True
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        while self._writing:
            await self._wait_written()

    # -- resuming ----------------------------------------------------------------------

    async def _resume_info(self) -> None:
        """Learn, once, which items the resumed run (and those it resumed) did."""
        if self._done is not None:
            return
        if self._loading is None:
            self._loading = anyio.Lock()
        async with self._loading:
            if self._done is None:
                assert self._run.parent_id is not None
                self._done = await _done_before(self._guard, self._run.parent_id)

    def _skipped_item(self, key: str, phase: str | None, done: Item, where: str) -> Item:
        parent = self._run.parent_id
        if where == parent:
            reason = f"succeeded in run {where}, which this run resumes"
        else:
            reason = f"succeeded in run {where}, before run {parent}, which this run resumes"
        return _item(self.run_id, key, phase if phase is not None else done.phase,
                     Status.SKIPPED, None, self._clock.now(), 0, None, done.output,
                     reason)  # fmt: skip


async def _done_before(guard: StoreGuard, parent_id: str) -> dict[str, tuple[Item, str]]:
    """The items done in run *parent_id*, or in the runs it resumed in turn, by key,
    with the id of the run each succeeded in."""
    done: dict[str, tuple[Item, str]] = {}
    keys: frozenset[str] | None = None
    run_id: str | None = parent_id
    while run_id is not None and (keys is None or keys):
        try:
            run = await guard.get_run(run_id)
        except RunNotFound:
            break  # purged: what it did is not known
        found, keys = resumed_items(
            await guard.items(run_id), resumed=run.trigger is Trigger.RESUME, keys=keys
        )
        for key, item in found.items():
            done.setdefault(key, (item, run_id))
        run_id = run.parent_id
    return done


async def items_verdict(guard: StoreGuard, run: Run, items_fail_run: float | None) -> ItemsOutcome:
    """How *run* ends by its item counts (`items_outcome`), naming the first
    failed items (read from the store when some failed)."""
    progress = run.progress
    names: list[str] = []
    if progress.failed:
        for status in (Status.FAILED, Status.CANCELLED):
            found = await guard.items(run.id, status, limit=_NAMED - len(names))
            names += (item.key for item in found)
            if len(names) >= _NAMED:
                break
    return items_outcome(progress, items_fail_run, names)


# -- helpers ---------------------------------------------------------------------------


def _ended(
    item: Item,
    status: Status,
    at: datetime | None,
    *,
    output: Any = None,
    error: ErrorInfo | None = None,
    reason: str | None = None,
) -> Item:
    return _item(item.run_id, item.key, item.phase, status, item.started_at, at,
                 item.attempts, error, output, reason)  # fmt: skip


def _error_of(exc: BaseException) -> ErrorInfo:
    """The `ErrorInfo` of *exc* (of the code elsewhere for `AttemptFailed`), its
    texts made storable (no NUL, no lone surrogate)."""
    info = exc.error if isinstance(exc, AttemptFailed) else ErrorInfo.from_exception(exc)
    texts = (info.type, info.message, info.traceback or "")
    if all(map(is_text, texts)):
        return info
    return ErrorInfo(
        kind=info.kind,
        type=_storable(info.type),
        message=_storable(info.message),
        traceback=None if info.traceback is None else _storable(info.traceback),
    )


def _storable(text: str) -> str:
    return text.replace("\x00", "\\x00").encode("utf-8", "replace").decode("utf-8")


def _json_or_error(value: Any, key: str) -> tuple[Any, RunlifeError | None]:
    """*value* if it is JSON; else None and the error that says why not."""
    if value is None or value.__class__ in (int, bool):
        return value, None
    try:
        check_json(value, f"item {key!r} output")
    except RunlifeError as exc:
        return None, exc
    return value, None


def _check_keys(keys: Iterable[str]) -> tuple[str, ...]:
    return check_names("keys", keys, each="keys")
