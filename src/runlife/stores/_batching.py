"""Batches: concurrent calls of one kind, made by one store, share one statement.

The SQL stores group the writes of runs (PostgreSQL's creates and updates: group
commit) and the reads of runs by id (``get_run``, of both). `Batched.submit`
queues a call; whoever finds no batch in flight makes every queued one (up to
`MAX_BATCH`) with one call of the batch's function, which gives each call its own
outcome: one run's lost compare-and-set (or a run not found) does not fail the
others, while a driver error fails the whole batch, as a failed commit would.

Cancellation never cuts a write in half, and never fails another caller's write:

* On asyncio the batches are written by a task of their own (the flusher), not
  by a caller. A caller cancelled (by anyio or by plain ``task.cancel()`` /
  ``asyncio.wait_for``) before its write was taken into a batch withdraws it (it
  never happens); once taken, the caller waits for the batch to finish (its write
  happened), and only then does its cancellation go on.
* On trio the first caller writes the batch, shielded from cancellation (trio
  has no plain cancellation to get around a shield).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final, Generic, TypeVar

import anyio

from runlife.exceptions import RunlifeError, StoreError

__all__ = ("MAX_BATCH", "Batched", "on_asyncio")

I = TypeVar("I")  # noqa: E741 - the item of a write
R = TypeVar("R")

MAX_BATCH: Final = 200
"""The most writes one statement takes."""


def on_asyncio() -> bool:
    """Whether the caller runs on asyncio (else on trio, in these stores' terms)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Slot(Generic[I, R]):
    """One write waiting in a batch, and what it came to."""

    __slots__ = ("done", "item", "outcome")

    def __init__(self, item: I, done: asyncio.Future[None] | None) -> None:
        self.item = item
        self.done = done  # asyncio: a bare future, the cheapest thing to wait on
        self.outcome: R | RunlifeError | None = None

    def answer(self, outcome: R | RunlifeError) -> None:
        """Give the slot its outcome, and wake its caller (asyncio)."""
        self.outcome = outcome
        done = self.done
        if done is not None and not done.done():  # a cancelled wait cancelled it
            done.set_result(None)


def _wrapped(exc: BaseException) -> StoreError:
    error = StoreError(f"batched write failed: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def _copy_error(exc: StoreError) -> StoreError:
    # Each waiter raises its own exception object (tracebacks are per raise).
    copy = type(exc)(*exc.args)
    copy.__cause__ = exc.__cause__
    return copy


class Batched(Generic[I, R]):
    """The queue of one kind of write, and the batch in flight.

    Args:
        write: writes a batch of items, returning one outcome per item, in order:
            the value to return, or the runlife error to raise.
    """

    def __init__(self, write: Callable[[list[I]], Awaitable[list[R | RunlifeError]]]) -> None:
        self._write = write
        self._pending: list[_Slot[I, R]] = []
        # asyncio: the flusher task; trio: whether a caller is writing, and the
        # event the others wait on.
        self._flusher: asyncio.Task[None] | None = None
        self._inflight: list[_Slot[I, R]] = []
        self._busy = False
        self._done: anyio.Event | None = None

    async def submit(self, item: I) -> R:
        """Write *item* in the next batch; its outcome (raised if it is an error)."""
        if on_asyncio():
            outcome = await self._submit_asyncio(item)
        else:
            outcome = await self._submit_leading(item)
        if isinstance(outcome, RunlifeError):
            raise outcome
        return outcome

    async def _outcomes(self, slots: list[_Slot[I, R]]) -> list[R | RunlifeError]:
        try:
            return await self._write([s.item for s in slots])
        except StoreError as exc:
            return [_copy_error(exc) for _ in slots]
        except Exception as exc:  # a bug: every waiter must still hear of it
            return [_wrapped(exc) for _ in slots]

    def _take(self) -> list[_Slot[I, R]]:
        slots, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        return slots

    # -- asyncio -------------------------------------------------------------------------

    async def _submit_asyncio(self, item: I) -> R | RunlifeError:
        loop = asyncio.get_running_loop()
        slot: _Slot[I, R] = _Slot(item, loop.create_future())
        self._pending.append(slot)
        if self._flusher is None:
            # The batch leaves now, with what is queued; later writes take the next.
            self._inflight = self._take()
            self._flusher = loop.create_task(self._flush())
            self._flusher.add_done_callback(self._flushed)
        try:
            await slot.done  # type: ignore[misc]
        except asyncio.CancelledError:  # by anyio, trio-style, or plain asyncio
            if slot in self._pending:
                self._pending.remove(slot)  # not taken: it never happens
                raise
            # Taken: wait until it happened (shielded from anyio's cancellation,
            # which would come again at every wait; plain asyncio's comes once),
            # each wait on a fresh future (a cancelled wait cancels its future).
            with anyio.CancelScope(shield=True):
                while slot.outcome is None:
                    slot.done = loop.create_future()
                    try:
                        await slot.done
                    except asyncio.CancelledError:
                        continue
            raise
        assert slot.outcome is not None
        return slot.outcome

    async def _flush(self) -> None:
        while self._inflight:
            outcomes = await self._outcomes(self._inflight)
            for slot, outcome in zip(self._inflight, outcomes, strict=True):
                slot.answer(outcome)
            self._inflight = []
            # Let the callers just answered go first (one may stop the process: the
            # next batch is not sent behind its back), and let more writes queue.
            await asyncio.sleep(0)
            self._inflight = self._take()
        self._flusher = None

    def _flushed(self, task: asyncio.Task[None]) -> None:
        # A flusher that did not end by itself (cancelled with its event loop,
        # say) leaves nobody waiting for it.
        if not task.cancelled() and task.exception() is None:
            return
        if self._flusher is task:
            self._flusher = None
        cause = asyncio.CancelledError() if task.cancelled() else task.exception()
        error = _wrapped(cause or RuntimeError("the batch writer stopped"))
        for slot in (*self._inflight, *self._pending):
            slot.answer(_copy_error(error) if slot.outcome is None else slot.outcome)
        self._inflight = []
        self._pending = []

    # -- trio ------------------------------------------------------------------------------

    async def _submit_leading(self, item: I) -> R | RunlifeError:
        slot: _Slot[I, R] = _Slot(item, None)
        self._pending.append(slot)
        with anyio.CancelScope(shield=True):
            while slot.outcome is None:
                if self._busy:
                    if self._done is None:
                        self._done = anyio.Event()
                    await self._done.wait()
                    continue
                self._busy = True
                slots = self._take()
                try:
                    outcomes = await self._outcomes(slots)
                except BaseException as exc:
                    for s in slots:
                        s.outcome = _wrapped(exc)
                    raise
                finally:
                    self._busy = False
                    done, self._done = self._done, None
                    if done is not None:
                        done.set()
                for s, outcome in zip(slots, outcomes, strict=True):
                    s.outcome = outcome
        assert slot.outcome is not None
        return slot.outcome
