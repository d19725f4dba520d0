"""The live event stream: the store's events, in order, filtered, resumable from a
seq, and seen across processes that share a store."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import anyio
import pytest

import runlife
from runlife import (
    AsyncRuntime,
    Event,
    InvalidValue,
    Retry,
    RunContext,
    Runtime,
    Status,
)
from runlife.stores import MemoryStore, SQLiteStore
from runlife.testing import VirtualClock

pytestmark = pytest.mark.anyio


@runlife.job
async def ok(ctx: RunContext) -> str:
    return "ok"


@runlife.job(retry=Retry(max_attempts=2, delay=5))
async def flaky(ctx: RunContext) -> str:
    if ctx.attempt == 1:
        raise OSError("link down")
    return "up"


@runlife.job
async def broken(ctx: RunContext) -> None:
    raise ValueError("bad config")


def moves(events: list[Event]) -> list[tuple[str, str, str]]:
    out = []
    for event in events:
        assert event.transition is not None
        out.append((event.run_id, str(event.transition.from_), str(event.status)))
    return out


async def take(stream: AsyncIterator[Event], n: int) -> list[Event]:
    """The first *n* events of *stream*, then the stream is closed."""
    out: list[Event] = []
    async with aclosing(stream):
        async for event in stream:
            out.append(event)
            if len(out) == n:
                break
    return out


async def test_a_runs_transitions_arrive_in_order_with_increasing_seqs(
    clock: VirtualClock, store: MemoryStore
) -> None:
    with anyio.fail_after(10):
        async with AsyncRuntime(jobs=[flaky], store=store, clock=clock) as rt:
            run = await rt.submit(flaky)
            events = await take(rt.events(run_id=run.id), 6)
            final = await rt.get_run(run.id)
    assert moves(events) == [
        (run.id, "PENDING", "QUEUED"),
        (run.id, "QUEUED", "RUNNING"),
        (run.id, "RUNNING", "RETRYING"),
        (run.id, "RETRYING", "QUEUED"),
        (run.id, "QUEUED", "RUNNING"),
        (run.id, "RUNNING", "SUCCEEDED"),
    ]
    assert all(e.kind == "transition" and e.job == "flaky" for e in events)
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 6
    assert final.status is Status.SUCCEEDED


async def test_filters_by_job_status_and_run(clock: VirtualClock, store: MemoryStore) -> None:
    with anyio.fail_after(10):
        async with AsyncRuntime(jobs=[ok, broken], store=store, clock=clock) as rt:
            good = await rt.submit(ok)
            bad = await rt.submit(broken)
            await rt.wait(good.id)
            await rt.wait(bad.id)
            of_job = await take(rt.events(job=broken), 3)
            ended = await take(rt.events(status=["SUCCEEDED", Status.FAILED]), 2)
            failed = await take(rt.events(status="FAILED"), 1)
            of_run = await take(rt.events(run_id=good.id, status=Status.RUNNING), 1)
    assert moves(of_job) == [
        (bad.id, "PENDING", "QUEUED"),
        (bad.id, "QUEUED", "RUNNING"),
        (bad.id, "RUNNING", "FAILED"),
    ]
    assert sorted(moves(ended)) == sorted(
        [(good.id, "RUNNING", "SUCCEEDED"), (bad.id, "RUNNING", "FAILED")]
    )
    assert moves(failed) == [(bad.id, "RUNNING", "FAILED")]
    assert moves(of_run) == [(good.id, "QUEUED", "RUNNING")]


async def test_resuming_after_the_last_seq_gives_exactly_the_rest(
    clock: VirtualClock, store: MemoryStore
) -> None:
    with anyio.fail_after(10):
        async with AsyncRuntime(jobs=[flaky], store=store, clock=clock) as rt:
            run = await rt.submit(flaky)
            await rt.wait(run.id)
            everything = await take(rt.events(), 6)
            # A monitor handled two events, lost its connection, and reconnects.
            first = await take(rt.events(), 2)
            last_seq = first[-1].seq
            rest = await take(rt.events(after=last_seq), 4)
    assert first + rest == everything


async def test_after_now_gives_only_what_is_stored_after_the_stream_starts(
    clock: VirtualClock, store: MemoryStore
) -> None:
    got: list[Event] = []
    with anyio.fail_after(10):
        async with AsyncRuntime(jobs=[ok], store=store, clock=clock) as rt:
            old = await rt.wait((await rt.submit(ok)).id)

            async def watch() -> None:
                stream = rt.events(after="now")
                async with aclosing(stream):
                    async for event in stream:
                        got.append(event)
                        if event.status is Status.SUCCEEDED:
                            return

            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                await clock.sleep(1)  # the watcher has read up to the end, and waits
                new = await rt.submit(ok)
    assert {e.run_id for e in got} == {new.id}
    assert old.id != new.id
    assert [str(e.status) for e in got] == ["QUEUED", "RUNNING", "SUCCEEDED"]


async def test_bad_filters_and_cursors_are_refused_naming_the_field(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(jobs=[ok], store=store, clock=clock) as rt:
        for kwargs, field in (
            ({"status": "DONE"}, "status"),
            ({"status": []}, "status"),
            ({"after": -1}, "after"),
            ({"after": "later"}, "after"),
            ({"job": 3}, "job"),
            ({"run_id": ""}, "run_id"),
        ):
            with pytest.raises(InvalidValue) as caught:
                await take(rt.events(**kwargs), 1)  # type: ignore[arg-type]
            assert caught.value.field == field


async def test_a_second_runtime_over_the_same_sqlite_file_sees_the_firsts_events(
    tmp_path: Path,
) -> None:
    """Two runtimes, each on its own store over one file, as two processes would be:
    the watcher (which runs nothing, and polls only once a minute) sees the runner's
    moves through the store's change hint."""
    go = threading.Event()

    @runlife.job
    def step(ctx: RunContext) -> str:
        go.wait(10)
        return "done"

    path = tmp_path / "runs.db"
    seen: list[Event] = []
    with anyio.fail_after(20):
        async with (
            SQLiteStore(path) as one,
            SQLiteStore(path) as two,
            AsyncRuntime(jobs=[step], store=one) as runner,
            AsyncRuntime(store=two, poll=60) as watcher,
        ):
            run = await runner.submit(step)
            stream = watcher.events(run_id=run.id)
            async with aclosing(stream):
                async for event in stream:
                    seen.append(event)
                    if event.status is Status.RUNNING:
                        go.set()
                    if event.status is Status.SUCCEEDED:
                        break
    assert moves(seen) == [
        (run.id, "PENDING", "QUEUED"),
        (run.id, "QUEUED", "RUNNING"),
        (run.id, "RUNNING", "SUCCEEDED"),
    ]


def test_the_blocking_twin_is_a_plain_iterator() -> None:
    @runlife.job
    def add(ctx: RunContext, a: int, b: int) -> int:
        return a + b

    with Runtime(jobs=[add], store="memory://") as rt:
        run = rt.wait(rt.submit(add, params={"a": 1, "b": 2}).id)
        got = []
        for event in rt.events(run_id=run.id):
            got.append(str(event.status))
            if event.status is Status.SUCCEEDED:
                break
    assert got == ["QUEUED", "RUNNING", "SUCCEEDED"]
