"""The live event stream: the store's events, in order, filtered, resumable from a
seq, and seen across processes that share a store."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from pathlib import Path

import anyio
import pytest

import runlife
from runlife import (
    AsyncRuntime,
    Event,
    InvalidValue,
    ItemCounts,
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


@runlife.job
async def inventory(ctx: RunContext, devices: list[str]) -> None:
    for device in await ctx.items(devices):
        async with ctx.item(device) as item:
            item.log.info("reading inventory", host=device)
            if device == "rtr-2":
                raise ConnectionError("no route")


async def test_item_updates_carry_progress_and_logging_is_told_per_batch(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """Besides transitions, the stream carries each item update with the run's
    counts after it, and one ``log`` event per batch of lines stored; ``kind``
    keeps one sort. The last lines are stored before the terminal transition."""
    devices = ["rtr-1", "rtr-2", "rtr-3"]
    with anyio.fail_after(10):
        async with AsyncRuntime(jobs=[inventory], store=store, clock=clock) as rt:
            run = await rt.wait((await rt.submit(inventory, {"devices": devices})).id)
            everything = [e async for e in _drain(rt, run.id)]
            items = await take(rt.events(run_id=run.id, kind="item"), 4)
            logs = await take(rt.events(run_id=run.id, kind=["log"]), 1)
            lines = (await rt.logs(run.id)).lines
    kinds = [e.kind for e in everything]
    assert kinds[-1] == "transition"
    assert kinds.index("log") < len(kinds) - 1
    assert [e for e in everything if e.kind == "item"][:4] == items
    assert [(e.item.key, str(e.item.status), e.progress) for e in items if e.item] == [
        ("rtr-1", "PENDING", ItemCounts(total=1, pending=1)),
        ("rtr-2", "PENDING", ItemCounts(total=2, pending=2)),
        ("rtr-3", "PENDING", ItemCounts(total=3, pending=3)),
        # Started and ended between two writes: stored (and told) once, ended.
        ("rtr-1", "SUCCEEDED", ItemCounts(total=3, pending=2, succeeded=1)),
    ]
    last_item = [e for e in everything if e.kind == "item"][-1]
    assert last_item.progress == run.progress == ItemCounts(total=3, succeeded=2, failed=1)
    assert [(e.lines, e.log) for e in logs] == [(3, lines[-1])]
    assert [line.item for line in lines] == devices


async def _drain(rt: AsyncRuntime, run_id: str) -> AsyncIterator[Event]:
    """The run's events up to its terminal transition."""
    stream = rt.events(run_id=run_id)
    async with aclosing(stream):
        async for event in stream:
            yield event
            if event.kind == "transition" and event.status.is_terminal:
                return


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
            ({"kind": "lines"}, "kind"),
            ({"kind": []}, "kind"),
            ({"kind": 3}, "kind"),
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


# -- across processes ----------------------------------------------------------------

WRITER = Path(__file__).with_name("events_writer.py")


async def _events_until(url: str, after: int | None, last: Callable[[Event], bool]) -> list[Event]:
    """The events of ``inventory`` runs, from after *after*, up to the first for
    which *last* is true, through a runtime over *url* that is closed afterwards
    (the monitor's connection ends)."""
    got: list[Event] = []
    async with AsyncRuntime(store=url, poll=60) as monitor:
        stream = monitor.events(job="inventory", after=after)
        async with aclosing(stream):
            async for event in stream:
                got.append(event)
                if last(event):
                    break
    return got


def _ended(key: str) -> Callable[[Event], bool]:
    return lambda e: e.item is not None and e.item.key == key and e.item.status.is_terminal


@pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])
async def test_a_monitor_that_reconnects_with_its_cursor_misses_nothing_of_another_process(
    url: str, tmp_path: Path
) -> None:
    """Another process runs a job of four items that log; a monitor here follows
    its events (transitions, item updates with the run's progress, log appends),
    disconnects mid-run, and reconnects with the seq of the last event it handled:
    the two parts are exactly the store's events, none missed, none twice."""
    gate = tmp_path / "gate"
    with anyio.fail_after(60):
        async with await anyio.open_process(
            [sys.executable, str(WRITER), url, str(gate)],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        ) as writer:
            before = await _events_until(url, None, _ended("rtr-2"))
            # Disconnected: the writer goes on while nobody watches.
            gate.touch()
            terminal = lambda e: e.kind == "transition" and e.status.is_terminal  # noqa: E731
            after = await _events_until(url, before[-1].seq, terminal)
            assert await writer.wait() == 0
        async with runlife.open_store(url) as store:
            everything = await store.events()
            run = await store.get_run(before[0].run_id)
            lines = (await store.logs(runlife.LogQuery(run_id=run.id))).lines
    assert before + after == [e for e in everything if e.job == "inventory"]
    assert run.status is Status.SUCCEEDED
    assert run.warnings == ("1 of 4 items failed: rtr-3",)
    got = before + after
    kinds = {e.kind for e in got}
    assert kinds == {"transition", "item", "log"}
    assert [str(e.status) for e in got if e.kind == "transition"] == [
        "QUEUED",
        "RUNNING",
        "SUCCEEDED",
    ]
    items = [e for e in got if e.kind == "item"]
    assert items[-1].progress == run.progress
    assert run.progress == runlife.ItemCounts(total=4, succeeded=3, failed=1)
    assert all(e.progress is not None for e in items)
    logged = [e for e in got if e.kind == "log"]
    # The log events tell of every line, in order, each batch once.
    assert sum(e.lines or 0 for e in logged) == len(lines) == 12
    assert [e.log.seq for e in logged if e.log] == sorted({e.log.seq for e in logged if e.log})
    assert logged[-1].log == lines[-1]
    # The last lines were stored before the terminal transition.
    assert got.index(logged[-1]) < len(got) - 1
