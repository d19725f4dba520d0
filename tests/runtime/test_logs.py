"""Run logs: what a job logs (ctx.log, logging) and prints is stored with its run and
item, in batches, capped, stored before the run's end; read, searched, followed and
exported through the runtime's verbs."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import attrs
import pytest
import structlog

import runlife
from runlife import (
    AsyncRuntime,
    InvalidPolicy,
    InvalidValue,
    LogLine,
    LogQuery,
    Retry,
    Run,
    RunContext,
    RunNotFound,
    Status,
)
from runlife._runtime import capture
from runlife.exceptions import StoreError
from runlife.stores import MemoryStore, SQLiteStore
from runlife.testing import VirtualClock

from . import process_jobs
from .conftest import at

pytestmark = pytest.mark.anyio

JOB_LOGGER = "tests.runtime.jobs"


@pytest.fixture(autouse=True)
def job_logger_at_info() -> Any:
    """The jobs' `logging` logger passes info records (the root's level is the host's)."""
    logger = logging.getLogger(JOB_LOGGER)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(level)


async def whole_log(rt: AsyncRuntime, run_id: str) -> list[LogLine]:
    lines: list[LogLine] = []
    cursor = None
    while True:
        page = await rt.logs(run_id, after=cursor, limit=1000)
        lines.extend(page.lines)
        cursor = page.next_cursor
        if cursor is None:
            return lines


def said(lines: Sequence[LogLine]) -> list[tuple[str, str, str]]:
    return [(line.stream, line.level, line.message) for line in lines]


# -- many runs at once -----------------------------------------------------------------

EACH = 5


def expected(n: int) -> list[tuple[str, str, str]]:
    """What run *n*'s job says, in order: a print, a ctx.log line, a logging record."""
    out = []
    for i in range(EACH):
        out += [
            ("stdout", "info", f"run {n} print {i}"),
            ("log", "info", f"run {n} structlog {i}"),
            ("log", "info", f"run {n} logging {i}"),
        ]
    return out


class Gate:
    """Holds every run until all of them have started: they talk at once."""

    def __init__(self, runs: int) -> None:
        self.runs = runs
        self.arrived = 0
        self.lock = threading.Lock()
        self.open = threading.Event()

    def arrive(self) -> None:
        with self.lock:
            self.arrived += 1
            if self.arrived == self.runs:
                self.open.set()

    def wait(self) -> None:
        assert self.open.wait(30), f"{self.arrived} of {self.runs} runs started"


GATE = Gate(200)


@pytest.fixture
def gate() -> Gate:
    global GATE
    GATE = Gate(200)
    return GATE


@runlife.job
async def talk_on_the_loop(ctx: RunContext, n: int) -> int:
    GATE.arrive()
    with anyio.fail_after(30):
        while not GATE.open.is_set():  # no thread of anyio's is held meanwhile
            await anyio.sleep(0.005)
    for i in range(EACH):
        print("run", n, "print", i)  # four writes: the pieces of one line
        await anyio.sleep(0)
        ctx.log.info(f"run {n} structlog {i}", n=n)
        await anyio.sleep(0)
        logging.getLogger(JOB_LOGGER).info("run %d logging %d", n, i)
        await anyio.sleep(0)
    return n


@runlife.job
def talk_in_a_thread(ctx: RunContext, n: int) -> int:
    GATE.arrive()
    GATE.wait()
    for i in range(EACH):
        print("run", n, "print", i)
        time.sleep(0)
        ctx.log.info(f"run {n} structlog {i}", n=n)
        logging.getLogger(JOB_LOGGER).info("run %d logging %d", n, i)
        time.sleep(0)
    return n


async def two_hundred_runs(rt: AsyncRuntime) -> None:
    """200 runs at once, half on the loop and half in threads: every line is in its
    own run's log, in the order it was said, none lost and none crossed."""
    jobs = (talk_on_the_loop, talk_in_a_thread)
    submitted = [await rt.submit(jobs[n % 2], params={"n": n}) for n in range(200)]
    for n, first in enumerate(submitted):
        run = await rt.wait(first.id)
        assert (run.status, run.result) == (Status.SUCCEEDED, n)
        lines = await whole_log(rt, run.id)
        assert said(lines) == expected(n)
        assert [line.seq for line in lines] == list(range(1, 3 * EACH + 1))
        assert {(line.run_id, line.attempt, line.item) for line in lines} == {(run.id, 1, None)}
        assert [line.fields for line in lines if line.stream == "log"] == [
            {"n": n},
            {"logger": JOB_LOGGER},
        ] * EACH
        assert not run.has_warnings
    assert GATE.open.is_set()


async def test_200_concurrent_runs_each_keep_their_own_lines_in_memory(
    clock: VirtualClock, store: MemoryStore, gate: Gate
) -> None:
    async with AsyncRuntime(
        jobs=[talk_on_the_loop, talk_in_a_thread], store=store, clock=clock, concurrency=200
    ) as rt:
        await two_hundred_runs(rt)


async def test_200_concurrent_runs_each_keep_their_own_lines_in_sqlite(
    tmp_path: Path, gate: Gate
) -> None:
    jobs = [talk_on_the_loop, talk_in_a_thread]
    async with (
        SQLiteStore(tmp_path / "runs.db") as store,
        AsyncRuntime(jobs=jobs, store=store, concurrency=200) as rt,
    ):
        await two_hundred_runs(rt)


# -- following -------------------------------------------------------------------------


async def test_follow_logs_gives_lines_while_the_run_runs_and_ends_with_it(
    clock: VirtualClock, store: MemoryStore
) -> None:
    go = anyio.Event()

    @runlife.job
    async def slow(ctx: RunContext) -> None:
        ctx.log.info("connecting", host="core-rtr-01")
        await go.wait()
        print("done")

    seen: list[tuple[str, Status]] = []
    with anyio.fail_after(10):
        async with AsyncRuntime(jobs=[slow], store=store, clock=clock) as rt:
            run = await rt.submit(slow)
            async for line in rt.follow_logs(run.id):
                seen.append((line.message, (await rt.get_run(run.id)).status))
                go.set()
            final = await rt.get_run(run.id)
            rest = [line async for line in rt.follow_logs(run.id, after=1)]
    # The first line was stored by the buffer's interval (half a second), mid-run.
    assert seen[0] == ("connecting", Status.RUNNING)
    assert [message for message, _ in seen] == ["connecting", "done"]
    assert final.status is Status.SUCCEEDED
    assert [line.message for line in rest] == ["done"]


async def test_follow_logs_of_an_unknown_run_raises(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async with AsyncRuntime(store=store, clock=clock) as rt:
        with pytest.raises(RunNotFound):
            [line async for line in rt.follow_logs("no-such-run")]


async def test_follow_logs_across_processes_through_a_shared_sqlite_file(tmp_path: Path) -> None:
    """One runtime runs the job; another, on its own store over the same file (as
    another process would be), follows its log live through the store's change hint."""
    go = threading.Event()

    @runlife.job
    def steps(ctx: RunContext) -> None:
        ctx.log.info("step 1")
        go.wait(10)
        ctx.log.info("step 2")

    path = tmp_path / "runs.db"
    seen: list[tuple[str, Status]] = []
    with anyio.fail_after(20):
        async with (
            SQLiteStore(path) as one,
            SQLiteStore(path) as two,
            AsyncRuntime(jobs=[steps], store=one) as runner,
            AsyncRuntime(store=two, poll=60) as watcher,
        ):
            run = await runner.submit(steps)
            async for line in watcher.follow_logs(run.id):
                seen.append((line.message, (await watcher.get_run(run.id)).status))
                go.set()
    assert seen[0] == ("step 1", Status.RUNNING)
    assert [message for message, _ in seen] == ["step 1", "step 2"]


# -- the end of a run --------------------------------------------------------------------


class EndWatcher(MemoryStore):
    """Counts each run's stored lines at the moment its terminal write arrives."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lines_at_end: dict[str, int] = {}

    async def update_run(self, run: Run, **kwargs: Any) -> Run:
        if run.is_terminal:
            page = await self.logs(LogQuery(run_id=run.id, limit=100_000))
            self.lines_at_end[run.id] = len(page.lines)
        return await super().update_run(run, **kwargs)


async def test_a_reader_that_sees_the_run_terminal_sees_its_whole_log(
    clock: VirtualClock,
) -> None:
    """More lines than a batch, some still buffered when the job returns, a last
    line without its newline: all are stored before the terminal write."""

    @runlife.job
    def busy(ctx: RunContext) -> None:
        for i in range(1234):
            ctx.log.info(f"line {i}")
        print("still", "going", end="")

    store = EndWatcher(clock=clock)
    async with store, AsyncRuntime(jobs=[busy], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(busy)).id)
        lines = await whole_log(rt, run.id)
    assert store.lines_at_end == {run.id: 1235}
    assert len(lines) == 1235
    assert said(lines[-2:]) == [("log", "info", "line 1233"), ("stdout", "info", "still going")]


async def test_a_thread_left_running_after_its_run_ended_adds_nothing_to_its_log(
    clock: VirtualClock, store: MemoryStore
) -> None:
    printed, release, finished = threading.Event(), threading.Event(), threading.Event()

    @runlife.job
    def stuck(ctx: RunContext) -> None:
        print("before the cancel")
        printed.set()
        release.wait(10)
        print("after the cancel")
        ctx.log.info("after the cancel, logged")
        finished.set()

    async with AsyncRuntime(jobs=[stuck], store=store, clock=clock) as rt:
        run = await rt.submit(stuck)
        await anyio.to_thread.run_sync(printed.wait, 10)
        cancelled = await rt.cancel(run.id)
        release.set()
        await anyio.to_thread.run_sync(finished.wait, 10)
        lines = await whole_log(rt, run.id)
    assert cancelled.status is Status.CANCELLED
    assert said(lines) == [("stdout", "info", "before the cancel")]


class LosesOneReply(MemoryStore):
    """Stores a batch of lines, then fails as if the connection broke before the reply."""

    lose = False

    async def append_logs(self, lines: Sequence[LogLine], **kwargs: Any) -> tuple[LogLine, ...]:
        stored = await super().append_logs(lines, **kwargs)
        if self.lose and lines:
            self.lose = False
            raise StoreError("connection reset after the commit")
        return stored


async def test_a_batch_whose_reply_was_lost_is_not_stored_twice(clock: VirtualClock) -> None:
    store = LosesOneReply(clock=clock)

    @runlife.job
    async def two_batches(ctx: RunContext) -> None:
        ctx.log.info("first")
        await clock.sleep(1)  # the first batch is stored meanwhile
        store.lose = True
        ctx.log.info("second")

    async with store, AsyncRuntime(jobs=[two_batches], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(two_batches)).id)
        lines = await whole_log(rt, run.id)
    assert [(line.seq, line.message) for line in lines] == [(1, "first"), (2, "second")]
    assert rt.guard.outages == 1
    assert run.status is Status.SUCCEEDED


# -- limits and warnings ---------------------------------------------------------------


async def test_each_attempt_stores_up_to_its_line_limit_then_one_marker(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job(retry=Retry(max_attempts=2, delay=0))
    async def noisy(ctx: RunContext) -> None:
        for i in range(25):
            ctx.log.info(f"line {i}")
        if ctx.attempt == 1:
            raise RuntimeError("again")

    async with AsyncRuntime(jobs=[noisy], store=store, clock=clock, max_log_lines=10) as rt:
        run = await rt.wait((await rt.submit(noisy)).id)
        lines = await whole_log(rt, run.id)
    assert run.status is Status.SUCCEEDED
    for attempt in (1, 2):
        mine = [line for line in lines if line.attempt == attempt]
        assert [line.message for line in mine[:10]] == [f"line {i}" for i in range(10)]
        (marker,) = mine[10:]
        assert (marker.stream, marker.level) == ("log", "warning")
        assert marker.message == (
            f"log limit reached: attempt {attempt} stored 10 lines (60 characters); its "
            "limit is 10 lines or 20,000,000 characters, and its later lines are dropped"
        )
        assert marker.fields == {"max_lines": 10, "max_bytes": 20_000_000}
    assert run.warnings == tuple(
        f"attempt {n}: 15 log lines dropped over its limit of 10 lines or 20,000,000 characters"
        for n in (1, 2)
    )


async def test_the_character_limit_counts_messages_and_fields(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job
    async def wide(ctx: RunContext) -> None:
        print("x" * 30)  # 30
        ctx.log.info("y" * 10, host="z" * 16)  # 10 + 4 + 16
        print("this one is over")

    async with AsyncRuntime(jobs=[wide], store=store, clock=clock, max_log_bytes=70) as rt:
        run = await rt.wait((await rt.submit(wide)).id)
        lines = await whole_log(rt, run.id)
    assert [line.message[:10] for line in lines] == ["x" * 10, "y" * 10, "log limit "]
    assert run.warnings == (
        "attempt 1: 1 log line dropped over its limit of 100,000 lines or 70 characters",
    )


async def test_limits_are_checked(store: MemoryStore) -> None:
    with pytest.raises(InvalidPolicy, match="max_log_lines=0"):
        AsyncRuntime(store=store, max_log_lines=0)
    with pytest.raises(InvalidPolicy, match="max_log_bytes=True"):
        AsyncRuntime(store=store, max_log_bytes=True)


async def test_a_run_that_logged_warnings_succeeds_with_warnings(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job
    async def grumbles(ctx: RunContext) -> str:
        ctx.log.warning("disk almost full", free="3%")
        logging.getLogger(JOB_LOGGER).error("could not reach %s", "core-rtr-02")
        logging.getLogger(JOB_LOGGER).critical("and again")
        ctx.log.info("fine otherwise")
        print("stderr lines do not count", file=sys.stderr)
        return "ok"

    @runlife.job
    async def calm(ctx: RunContext) -> str:
        ctx.log.info("all good")
        print("really", file=sys.stderr)
        return "ok"

    async with AsyncRuntime(jobs=[grumbles, calm], store=store, clock=clock) as rt:
        loud = await rt.wait((await rt.submit(grumbles)).id)
        quiet = await rt.wait((await rt.submit(calm)).id)
        lines = await whole_log(rt, loud.id)
    assert (loud.status, loud.has_warnings) == (Status.SUCCEEDED, True)
    assert loud.warnings == ("attempt 1 logged 1 warning and 2 errors",)
    assert said(lines) == [
        ("log", "warning", "disk almost full"),
        ("log", "error", "could not reach core-rtr-02"),
        ("log", "critical", "and again"),
        ("log", "info", "fine otherwise"),
        ("stderr", "warning", "stderr lines do not count"),
    ]
    assert (quiet.status, quiet.has_warnings, quiet.warnings) == (Status.SUCCEEDED, False, ())


# -- the verbs -------------------------------------------------------------------------


@runlife.job
async def mixed(ctx: RunContext) -> None:
    for n in range(1, 7):
        if n % 3 == 0:
            print(f"printed {n}")
        elif n % 2 == 0:
            ctx.log.bind(item="core-rtr-02").error(f"Failed {n}")
        else:
            ctx.log.bind(item="core-rtr-01").info(f"backing up {n}")


async def test_logs_pages_and_filters(clock: VirtualClock, store: MemoryStore) -> None:
    async with AsyncRuntime(jobs=[mixed], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(mixed)).id)
        first = await rt.logs(run.id, limit=4)
        second = await rt.logs(run.id, after=first.next_cursor, limit=4)
        errors = await rt.logs(run.id, level="ERROR")
        printed = await rt.logs(run.id, stream="stdout")
        one = await rt.logs(run.id, item="core-rtr-01")
        after_seq = await rt.logs(run.id, after=4)
        found = await rt.search_logs(run.id, "FAILED")
        with pytest.raises(RunNotFound):
            await rt.logs("no-such-run")
        with pytest.raises(RunNotFound):
            await rt.search_logs("no-such-run", "x")
        with pytest.raises(InvalidValue, match="after"):
            await rt.logs(run.id, after=-1)
        with pytest.raises(InvalidValue, match="stream"):
            await rt.logs(run.id, stream="stdin")
    assert [line.seq for line in first.lines] == [1, 2, 3, 4]
    assert first.next_cursor is not None
    assert [line.seq for line in second.lines] == [5, 6]
    assert second.next_cursor is None
    assert [line.message for line in errors.lines] == ["Failed 2", "Failed 4"]
    assert [line.message for line in printed.lines] == ["printed 3", "printed 6"]
    assert [line.message for line in one.lines] == ["backing up 1", "backing up 5"]
    assert [line.seq for line in after_seq.lines] == [5, 6]
    assert [(line.seq, line.item) for line in found] == [(2, "core-rtr-02"), (4, "core-rtr-02")]


async def test_export_logs_as_text_for_an_escalation(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job(labels={"site": "dc1"})
    async def backup(ctx: RunContext, devices: dict[str, str]) -> None:
        ctx.log.info("starting", devices=len(devices))
        for device, address in devices.items():
            log = ctx.log.bind(item=device)
            log.info("backing up", host=address)
            await clock.sleep(45)
            with capture.routed_item(device):
                print(f"config saved for {device}")
        ctx.log.warning("slow device", device="core-rtr-02", took={"s": 45.5})

    devices = {"core-rtr-01": "10.1.0.1", "core-rtr-02": "10.1.0.2"}
    async with AsyncRuntime(jobs=[backup], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(backup, params={"devices": devices})).id)
        text = await rt.export_logs(run.id)
        jsonl = await rt.export_logs(run.id, fmt="jsonl")
        with pytest.raises(InvalidValue, match="'text' or 'jsonl'"):
            await rt.export_logs(run.id, fmt="csv")
        with pytest.raises(RunNotFound):
            await rt.export_logs("no-such-run")
    assert text == (
        f"run {run.id} of job backup: SUCCEEDED\n"
        "labels: site=dc1\n"
        "created 2026-03-10 02:00:00Z, started 2026-03-10 02:00:00Z, "
        "ended 2026-03-10 02:01:30Z, took 1m 30s\n"
        "attempts: 1\n"
        "warning: attempt 1 logged 1 warning\n"
        "\n"
        "2026-03-10 02:00:00.000Z a1 log    info     starting devices=2\n"
        "2026-03-10 02:00:00.000Z a1 log    info     [core-rtr-01] backing up host=10.1.0.1\n"
        "2026-03-10 02:00:45.000Z a1 stdout info     [core-rtr-01] config saved for core-rtr-01\n"
        "2026-03-10 02:00:45.000Z a1 log    info     [core-rtr-02] backing up host=10.1.0.2\n"
        "2026-03-10 02:01:30.000Z a1 stdout info     [core-rtr-02] config saved for core-rtr-02\n"
        "2026-03-10 02:01:30.000Z a1 log    warning  slow device device=core-rtr-02 "
        'took={"s":45.5}\n'
    )
    records = [json.loads(line) for line in jsonl.splitlines()]
    assert len(records) == 6
    assert records[1] == {
        "run_id": run.id,
        "seq": 2,
        "at": "2026-03-10T02:00:00+00:00",
        "stream": "log",
        "level": "info",
        "message": "backing up",
        "item": "core-rtr-01",
        "attempt": 1,
        "fields": {"host": "10.1.0.1"},
    }
    assert [(r["seq"], r["stream"], r["item"]) for r in records[2:4]] == [
        (3, "stdout", "core-rtr-01"),
        (4, "log", "core-rtr-02"),
    ]


async def test_a_logged_exception_keeps_its_traceback(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job
    async def flaky(ctx: RunContext) -> str:
        try:
            raise ConnectionError("no route to host")
        except ConnectionError:
            ctx.log.exception("backup failed", host="edge-sw-03")
            logging.getLogger(JOB_LOGGER).exception("the same, through logging")
        return "carried on"

    async with AsyncRuntime(jobs=[flaky], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(flaky)).id)
        lines = await whole_log(rt, run.id)
        text = await rt.export_logs(run.id)
    for line in lines:
        assert line.level == "error"
        trace = line.fields["exception"]
        assert trace.startswith("Traceback (most recent call last):\n")
        assert trace.endswith("ConnectionError: no route to host\n")
    assert lines[0].fields["host"] == "edge-sw-03"
    assert lines[1].fields["logger"] == JOB_LOGGER
    assert "a1 log    error    backup failed host=edge-sw-03\n    Traceback" in text
    assert "\n    ConnectionError: no route to host\n" in text


async def test_what_a_job_logs_is_made_storable(clock: VirtualClock, store: MemoryStore) -> None:
    """Odd text and values that are not JSON never refuse a batch: NUL and lone
    surrogates become escapes, other values their text."""

    @runlife.job
    async def odd(ctx: RunContext) -> None:
        ctx.log.info("nul \x00 and \udc80", path=Path("/tmp/x"), ratio=float("nan"), big=2**70)
        ctx.log.info("%s of %d", "3", 4, at=at(5), nested={"a": (1, {2, 3} - {2, 3})})
        ctx.log.log(logging.WARNING, "by number")
        print("tab\tand \x00")

    async with AsyncRuntime(jobs=[odd], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(odd)).id)
        lines = await whole_log(rt, run.id)
    assert said(lines) == [
        ("log", "info", "nul \\x00 and \\udc80"),
        ("log", "info", "3 of 4"),
        ("log", "warning", "by number"),
        ("stdout", "info", "tab\tand \\x00"),
    ]
    assert lines[0].fields == {"path": "/tmp/x", "ratio": "nan", "big": str(2**70)}
    assert lines[1].fields == {"at": "2026-03-10T02:00:05+00:00", "nested": {"a": [1, []]}}
    assert run.warnings == ("attempt 1 logged 1 warning",)


# -- what is captured, what passes through ------------------------------------------------


async def test_the_host_keeps_its_streams_handlers_and_structlog_setup(
    clock: VirtualClock, store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    out, err = sys.stdout, sys.stderr
    handlers = list(logging.getLogger().handlers)
    config = structlog.get_config()

    @runlife.job
    async def job(ctx: RunContext) -> None:
        print("inside the run")

    async with AsyncRuntime(jobs=[job], store=store, clock=clock) as rt:
        assert isinstance(sys.stdout, capture.StreamProxy)
        print("the host speaks")
        print("to its stderr", file=sys.stderr)
        assert logging.getLogger().handlers == handlers
        run = await rt.wait((await rt.submit(job)).id)
        lines = await whole_log(rt, run.id)
    assert (sys.stdout, sys.stderr) == (out, err)
    assert structlog.get_config() == config
    assert capsys.readouterr() == ("the host speaks\n", "to its stderr\n")
    assert said(lines) == [("stdout", "info", "inside the run")]


async def test_a_handler_writing_to_a_captured_stream_is_stored_once(
    clock: VirtualClock, store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """A logging.StreamHandler made inside a run writes to the captured stderr: its
    text passes through (the record is stored already), it is not stored twice."""
    logger = logging.getLogger(JOB_LOGGER + ".handler")

    @runlife.job
    async def job(ctx: RunContext) -> None:
        handler = logging.StreamHandler()  # its stream: sys.stderr, runlife's proxy
        logger.addHandler(handler)
        try:
            logger.warning("disk almost full")
        finally:
            logger.removeHandler(handler)

    async with AsyncRuntime(jobs=[job], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(job)).id)
        lines = await whole_log(rt, run.id)
    assert said(lines) == [("log", "warning", "disk almost full")]
    assert capsys.readouterr().err == "disk almost full\n"


async def test_threads_a_job_starts_carry_its_log_only_with_its_context(
    clock: VirtualClock, store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    @runlife.job
    async def spawns(ctx: RunContext) -> None:
        plain = threading.Thread(target=print, args=("from a plain thread",))
        copied = threading.Thread(
            target=contextvars.copy_context().run, args=(print, "from a thread with the context")
        )
        for thread in (plain, copied):
            thread.start()
            thread.join()
        await anyio.to_thread.run_sync(print, "from anyio's thread")

    async with AsyncRuntime(jobs=[spawns], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(spawns)).id)
        lines = await whole_log(rt, run.id)
    assert [line.message for line in lines] == [
        "from a thread with the context",
        "from anyio's thread",
    ]
    assert capsys.readouterr().out == "from a plain thread\n"


async def test_routed_item_marks_prints_and_records_as_an_items(
    clock: VirtualClock, store: MemoryStore
) -> None:
    @runlife.job
    async def per_device(ctx: RunContext) -> None:
        with capture.routed_item("core-rtr-01"):
            print("in the item")
            logging.getLogger(JOB_LOGGER).info("logged in the item")
        logging.getLogger(JOB_LOGGER).info("no item", extra={"item": "named by extra"})
        print("outside")

    async with AsyncRuntime(jobs=[per_device], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(per_device)).id)
        lines = await whole_log(rt, run.id)
    assert [(line.message, line.item) for line in lines] == [
        ("in the item", "core-rtr-01"),
        ("logged in the item", "core-rtr-01"),
        ("no item", "named by extra"),
        ("outside", None),
    ]


async def test_a_child_process_output_is_captured(clock: VirtualClock, store: MemoryStore) -> None:
    """A child's prints, stderr, ctx.log, logging records and raw writes to its file
    descriptor 1 (which land in its stderr) are the run's lines."""
    async with AsyncRuntime(jobs=[process_jobs.chatty], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(process_jobs.chatty, params={"n": 7})).id)
        lines = await whole_log(rt, run.id)
    assert run.status is Status.SUCCEEDED
    by_stream = {
        stream: [(line.level, line.message, line.item, line.fields) for line in lines
                 if line.stream == stream]
        for stream in ("log", "stdout", "stderr")
    }  # fmt: skip
    assert by_stream == {
        "log": [
            ("info", "structured", "core-rtr-01", {"n": 7}),
            ("warning", "through logging 7", None, {"logger": "chatty"}),
        ],
        "stdout": [("info", "to stdout 7", None, {}), ("info", "no newline at the end", None, {})],
        "stderr": [("warning", "to stderr 7", None, {}), ("warning", "straight to fd 1", None, {})],
    }
    assert {line.attempt for line in lines} == {1}
    assert run.warnings == ("attempt 1 logged 1 warning",)


async def test_settings_are_checked() -> None:
    from runlife._runtime.logs import LogSettings

    assert LogSettings() == LogSettings(max_lines=100_000, max_bytes=20_000_000)
    with pytest.raises(InvalidPolicy, match="batch"):
        LogSettings(batch=0)
    with pytest.raises(InvalidPolicy, match="interval"):
        LogSettings(interval=0)
    assert attrs.evolve(LogSettings(), interval=2).interval == 2
