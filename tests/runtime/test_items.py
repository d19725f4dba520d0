"""Items inside runs: ctx.item, ctx.items, ctx.map, progress, outcomes and resume.

The operators' cases: the nightly backup of four devices, one unreachable; the
edge switch health check whose failing device was tried twice, 30 s apart; a
run of 40 records whose progress another process reads; a resumed run that does
only the records that failed.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import attrs
import pytest

import runlife
from runlife import (
    AsyncRuntime,
    ItemCounts,
    Retry,
    Run,
    RunContext,
    Status,
    SystemClock,
    Timeout,
    Trigger,
)
from runlife.abc import Clock, Store
from runlife.exceptions import InvalidValue, RunNotFound
from runlife.stores import MemoryStore, SQLiteStore
from runlife.testing import VirtualClock

from .conftest import at

pytestmark = pytest.mark.anyio

S = Status

# The nightly backup of the operators' log: three devices answer, one does not.
DEVICES = ("core-rtr-01.dc1", "core-rtr-02.dc1", "dist-sw-01.dc1", "dist-sw-02.dc1")
TAKES = {"core-rtr-01.dc1": 45, "core-rtr-02.dc1": 52, "dist-sw-01.dc1": 38}
CONFIG_BYTES = {"core-rtr-01.dc1": 24_832, "core-rtr-02.dc1": 26_104, "dist-sw-01.dc1": 18_456}
UNREACHABLE = "Connection timed out after 30s - no route to host"


@attrs.frozen
class Env:
    """A store and the runtime's clock: memory in virtual time (exact timings), or a
    SQLite file in real time (the job's waits scaled down a thousandfold)."""

    store: Store
    clock: Clock
    scale: float

    @property
    def exact(self) -> bool:
        return self.scale == 1


@pytest.fixture(params=["memory", "sqlite"])
async def env(
    request: pytest.FixtureRequest, clock: VirtualClock, tmp_path: Path
) -> AsyncIterator[Env]:
    if request.param == "memory":
        async with MemoryStore(clock=clock) as memory:
            yield Env(memory, clock, 1.0)
    else:
        async with SQLiteStore(tmp_path / "runs.db") as sqlite:
            yield Env(sqlite, SystemClock(), 0.001)


def nightly_backup_job(env: Env, **policy: Any) -> runlife.Job:
    clock, scale = env.clock, env.scale

    async def nightly_backup(ctx: RunContext, devices: list[str]) -> dict[str, int]:
        for device in await ctx.items(devices, phase="backup"):
            async with ctx.item(device) as item:
                item.log.info("backing up", host=device)
                if device not in TAKES:
                    await clock.sleep(30 * scale)
                    raise TimeoutError(UNREACHABLE)
                await clock.sleep(TAKES[device] * scale)
                item.output = {
                    "config_bytes": CONFIG_BYTES[device],
                    "snapshot": f"snap-20260310-{device.split('.')[0]}",
                }
        return {"devices": len(devices)}

    return runlife.job(**policy)(nightly_backup)


async def test_the_nightly_backup_succeeds_with_a_warning_naming_the_unreachable_device(
    env: Env,
) -> None:
    """Four devices, one unreachable, failed items only warning (items_fail_run=None):
    SUCCEEDED with "1 of 4 items failed: dist-sw-02.dc1", 3 of 4 succeeded, each
    device with its own timing, output, and the failing one's error text."""
    backup = nightly_backup_job(env)
    async with AsyncRuntime(jobs=[backup], store=env.store, clock=env.clock) as rt:
        run = await rt.wait((await rt.submit(backup, {"devices": list(DEVICES)})).id)
        items = await rt.items(run.id)

    assert run.status is S.SUCCEEDED
    assert run.result == {"devices": 4}
    assert run.warnings == ("1 of 4 items failed: dist-sw-02.dc1",)
    assert run.has_warnings
    assert run.progress == ItemCounts(total=4, succeeded=3, failed=1)
    assert [(i.key, i.status, i.phase) for i in items] == [
        ("core-rtr-01.dc1", S.SUCCEEDED, "backup"),
        ("core-rtr-02.dc1", S.SUCCEEDED, "backup"),
        ("dist-sw-01.dc1", S.SUCCEEDED, "backup"),
        ("dist-sw-02.dc1", S.FAILED, "backup"),
    ]
    takes = [timedelta(seconds=s * env.scale) for s in (45, 52, 38, 30)]
    if env.exact:
        assert [i.started_at for i in items] == [at(0), at(45), at(97), at(135)]
        assert [i.duration for i in items] == takes
        assert run.ended_at == at(165)
    else:  # real time: each took at least its wait
        for item, took in zip(items, takes, strict=True):
            assert item.duration is not None
            assert item.duration >= took
    assert items[0].output == {"config_bytes": 24_832, "snapshot": "snap-20260310-core-rtr-01"}
    assert items[1].output == {"config_bytes": 26_104, "snapshot": "snap-20260310-core-rtr-02"}
    failed = items[3]
    assert failed.error is not None
    assert (failed.error.kind, failed.error.type, failed.error.message) == (
        "error",
        "TimeoutError",
        UNREACHABLE,
    )
    assert failed.error.traceback is not None
    assert "raise TimeoutError(UNREACHABLE)" in failed.error.traceback
    assert failed.output is None
    assert [i.attempts for i in items] == [1, 1, 1, 1]


async def test_with_items_fail_run_0_one_unreachable_device_fails_the_run(env: Env) -> None:
    """items_fail_run=0: the same backup ends FAILED, kind items, "1 of 4 items
    failed", and is not retried (the devices did their work)."""
    backup = nightly_backup_job(env, items_fail_run=0, retry=Retry(max_attempts=3, delay=60))
    async with AsyncRuntime(jobs=[backup], store=env.store, clock=env.clock) as rt:
        run = await rt.wait((await rt.submit(backup, {"devices": list(DEVICES)})).id)

    assert run.status is S.FAILED
    assert run.error is not None
    assert (run.error.kind, run.error.type) == ("items", "ItemsFailed")
    assert run.error.message == "1 of 4 items failed: dist-sw-02.dc1"
    assert run.attempt == 1
    assert run.history[-1].reason == "attempt 1 of 3 failed (items); items failures are not retried"
    assert run.progress == ItemCounts(total=4, succeeded=3, failed=1)


async def test_progress_reads_0_of_40_from_the_start(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """ctx.items declares the total in one write: before any record is done,
    progress reads 0 of 40 (40 PENDING), and it moves as records end."""
    declared, step = anyio.Event(), anyio.Event()
    seen: list[ItemCounts] = []

    @runlife.job
    async def campaign(ctx: RunContext, contacts: list[str]) -> None:
        todo = await ctx.items(contacts)
        declared.set()
        await step.wait()
        for contact in todo:
            async with ctx.item(contact):
                await clock.sleep(1)

    contacts = [f"contact-{n:02d}" for n in range(40)]
    async with AsyncRuntime(jobs=[campaign], store=store, clock=clock) as rt:
        run = await rt.submit(campaign, {"contacts": contacts})
        await declared.wait()
        seen.append((await rt.get_run(run.id)).progress)
        step.set()
        await clock.sleep(10.5)
        seen.append((await rt.get_run(run.id)).progress)
        done = await rt.wait(run.id)

    assert seen == [
        ItemCounts(total=40, pending=40),
        ItemCounts(total=40, pending=29, running=1, succeeded=10),
    ]
    assert done.progress == ItemCounts(total=40, succeeded=40)
    assert [i.key for i in await store.items(run.id)] == contacts


async def test_progress_is_read_from_another_store_connection_while_running(
    tmp_path: Path,
) -> None:
    """A second SQLiteStore on the same file (as another process would open it)
    sees the run's progress as it moves: 0 of 40, one running, one done, and the
    exact counts once the run is terminal."""
    path = tmp_path / "runs.db"
    send, receive = anyio.create_memory_object_stream[None](40)
    declared = anyio.Event()

    @runlife.job
    async def campaign(ctx: RunContext, contacts: list[str]) -> None:
        for n, contact in enumerate(await ctx.items(contacts)):
            if n == 0:
                declared.set()
            async with ctx.item(contact) as item:
                if n < 2:
                    await receive.receive()  # the test lets the first two go
                item.output = {"sent": True}

    async def progress_becomes(reader: SQLiteStore, run_id: str, want: ItemCounts) -> None:
        with anyio.fail_after(10):
            while (await reader.get_run(run_id)).progress != want:
                await reader.wait_changed(1.0)

    contacts = [f"contact-{n:02d}" for n in range(40)]
    async with (
        send,
        receive,
        SQLiteStore(path) as writer,
        AsyncRuntime(jobs=[campaign], store=writer) as rt,
        SQLiteStore(path) as reader,
    ):
        run = await rt.submit(campaign, {"contacts": contacts})
        await declared.wait()
        assert (await reader.get_run(run.id)).progress.total == 40
        await progress_becomes(reader, run.id, ItemCounts(total=40, pending=39, running=1))
        await send.send(None)
        await progress_becomes(
            reader, run.id, ItemCounts(total=40, pending=38, running=1, succeeded=1)
        )
        await send.send(None)
        done = await rt.wait(run.id)
        seen = await reader.get_run(run.id)

    assert done.status is S.SUCCEEDED
    assert seen.progress == ItemCounts(total=40, succeeded=40)
    assert seen.is_terminal


# -- ctx.map -----------------------------------------------------------------------

HEALTH = datetime(2026, 3, 10, 14, 15, tzinfo=UTC)
EDGE = ("edge-sw-01.branch1", "edge-sw-02.branch1", "edge-sw-03.branch2", "edge-sw-04.branch2")
CHECK_TAKES = {"edge-sw-01.branch1": 1.1, "edge-sw-02.branch1": 0.9, "edge-sw-04.branch2": 1.3}


async def test_map_retries_each_key_on_its_own_timeline() -> None:
    """The edge switch health check, ctx.map with Retry(max_attempts=2, delay=30):
    edge-sw-03 fails at 14:15:00 and again at 14:15:30 (retry_delay 30 s) and ends
    FAILED after 2 attempts; the three others pass once, in 1.1, 0.9 and 1.3 s; the
    run fails "1 of 4 items failed" (items_fail_run=0)."""
    clock = VirtualClock(start=HEALTH)
    calls: list[tuple[str, datetime]] = []

    async def check(host: str) -> dict[str, str]:
        calls.append((host, clock.now()))
        if host not in CHECK_TAKES:
            raise TimeoutError(UNREACHABLE)
        await clock.sleep(CHECK_TAKES[host])
        return {"ssh": "passed"}

    @runlife.job(items_fail_run=0)
    async def edge_health(ctx: RunContext, hosts: list[str]) -> dict[str, Any]:
        return await ctx.map(check, hosts, retry=Retry(max_attempts=2, delay=30), phase="ssh")

    async with MemoryStore(clock=clock) as store:
        async with AsyncRuntime(jobs=[edge_health], store=store, clock=clock) as rt:
            run = await rt.submit(edge_health, {"hosts": list(EDGE)})
            await clock.sleep_until(HEALTH + timedelta(seconds=10))
            midway = (await rt.get_run(run.id)).progress
            run = await rt.wait(run.id)
            items = {i.key: i for i in await rt.items(run.id)}
            retried = (await rt.logs(run.id, item="edge-sw-03.branch2")).lines
        events = [e for e in await store.events(run_id=run.id) if e.kind == "item"]

    def t(seconds: float) -> datetime:
        return HEALTH + timedelta(seconds=seconds)

    assert run.status is S.FAILED
    assert run.error is not None
    assert (run.error.kind, run.error.message) == (
        "items",
        "1 of 4 items failed: edge-sw-03.branch2",
    )
    assert midway == ItemCounts(total=4, running=1, succeeded=3)  # edge-sw-03 RETRYING
    assert sorted(calls) == sorted(
        [(host, t(0)) for host in EDGE] + [("edge-sw-03.branch2", t(30))]
    )
    failing = items["edge-sw-03.branch2"]
    assert (failing.status, failing.attempts, failing.phase) == (S.FAILED, 2, "ssh")
    assert (failing.started_at, failing.ended_at) == (t(0), t(30))
    assert failing.error is not None
    assert (failing.error.type, failing.error.message) == ("TimeoutError", UNREACHABLE)
    retrying = [e.item for e in events if e.item and e.item.status is S.RETRYING]
    assert [(i.key, i.attempts) for i in retrying] == [("edge-sw-03.branch2", 1)]
    assert [e.at for e in events if e.item is retrying[0]] == [t(0)]
    assert [(e.message, e.fields["started_at"], e.fields["error"]) for e in retried] == [
        (
            "item attempt 1 of 2 failed; retrying in 30 s",
            t(0).isoformat(),
            f"TimeoutError: {UNREACHABLE}",
        )
    ]
    for host, seconds in CHECK_TAKES.items():
        item = items[host]
        assert (item.status, item.attempts, item.output) == (S.SUCCEEDED, 1, {"ssh": "passed"})
        assert item.duration == timedelta(seconds=seconds)


async def test_map_cuts_a_hanging_key_at_its_timeout_on_the_retry_timeline(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """Retry(max_attempts=3, delay=60) with timeout=300 on a key that always hangs:
    its attempts start at 02:00, 02:06 and 02:12, each cut at +300 s; the item
    ends FAILED at 02:17 with kind timeout; the other keys' outputs are returned."""
    starts: list[datetime] = []

    async def backup(device: str) -> int:
        if device == "core-rtr-02":
            starts.append(clock.now())
            await anyio.sleep_forever()
        return 24_832

    @runlife.job
    async def nightly(ctx: RunContext) -> dict[str, Any]:
        return await ctx.map(
            backup,
            ["core-rtr-01", "core-rtr-02", "core-rtr-03"],
            retry=Retry(max_attempts=3, delay=60),
            timeout=300,
        )

    async with AsyncRuntime(jobs=[nightly], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(nightly)).id)
        (cut,) = await rt.items(run.id, S.FAILED)

    assert starts == [at(0), at(6 * 60), at(12 * 60)]
    assert run.status is S.SUCCEEDED
    assert run.result == {"core-rtr-01": 24_832, "core-rtr-03": 24_832}
    # The two retries are logged at warning level: the run says so, then names the item.
    assert run.warnings == ("attempt 1 logged 2 warnings", "1 of 3 items failed: core-rtr-02")
    assert (cut.key, cut.attempts, cut.started_at, cut.ended_at) == (
        "core-rtr-02",
        3,
        at(0),
        at(17 * 60),
    )
    assert cut.error is not None
    assert (cut.error.kind, cut.error.type, cut.error.message) == (
        "timeout",
        "TimeoutError",
        "attempt 3 of item 'core-rtr-02' exceeded its timeout of 300 s",
    )


async def test_map_runs_a_sync_function_in_threads_at_most_concurrency_at_once(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A sync fn runs in threads: three at once (concurrency=3, held together by a
    barrier), never more; results come back by key, in key order."""
    barrier = threading.Barrier(3, timeout=10)
    lock = threading.Lock()
    running = peak = 0

    def resolve(name: str) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        barrier.wait()
        with lock:
            running -= 1
        return name.upper()

    @runlife.job
    async def lookup(ctx: RunContext, names: list[str]) -> dict[str, Any]:
        return await ctx.map(resolve, names, concurrency=3)

    names = [f"host-{n}" for n in range(9)]
    async with AsyncRuntime(jobs=[lookup], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(lookup, {"names": names})).id)

    assert run.status is S.SUCCEEDED
    assert run.result == {name: name.upper() for name in names}
    assert list(run.result) == names
    assert peak == 3
    assert run.progress == ItemCounts(total=9, succeeded=9)


async def test_map_refuses_bad_arguments_before_running_anything(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """Bad keys, concurrency, retry or timeout are refused with InvalidValue naming
    them, and no item is recorded."""
    refused: list[str] = []

    async def noop(key: str) -> None:
        return None

    @runlife.job
    async def bad(ctx: RunContext) -> None:
        for kwargs in (
            {"keys": ["a", "a"]},
            {"keys": ["a", 3]},
            {"keys": "abc"},
            {"keys": ["a"], "concurrency": 0},
            {"keys": ["a"], "retry": 3},
            {"keys": ["a"], "timeout": -1},
        ):
            try:
                await ctx.map(noop, **kwargs)
            except InvalidValue as exc:
                refused.append(exc.field)

    async with AsyncRuntime(jobs=[bad], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(bad)).id)
    assert refused == ["keys[1]", "keys[1]", "keys", "concurrency", "retry", "timeout"]
    assert run.progress == ItemCounts()


# -- what an item records --------------------------------------------------------------


async def test_a_sync_job_uses_plain_with(clock: VirtualClock, store: MemoryStore) -> None:
    """A sync job (in a thread) declares its items through anyio and uses plain
    ``with ctx.item(...)``: outputs, failures and progress as in an async job."""

    @runlife.job
    def export(ctx: RunContext, tables: list[str]) -> int:
        todo = anyio.from_thread.run(ctx.items, tables)
        for table in todo:
            with ctx.item(table, phase="export") as item:
                if table == "orders":
                    raise PermissionError("permission denied for table orders")
                item.output = {"rows": len(table)}
        return len(todo)

    async with AsyncRuntime(jobs=[export], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(export, {"tables": ["users", "orders", "items"]})).id)
        items = await rt.items(run.id)

    assert run.status is S.SUCCEEDED
    assert run.result == 3
    assert run.warnings == ("1 of 3 items failed: orders",)
    assert [(i.key, i.status, i.output, i.phase) for i in items] == [
        ("users", S.SUCCEEDED, {"rows": 5}, "export"),
        ("orders", S.FAILED, None, "export"),
        ("items", S.SUCCEEDED, {"rows": 5}, "export"),
    ]
    assert items[1].error is not None
    assert items[1].error.type == "PermissionError"


async def test_with_on_the_event_loop_is_refused(clock: VirtualClock, store: MemoryStore) -> None:
    """Plain ``with`` belongs to sync jobs; an async job gets a RuntimeError saying
    to use ``async with``."""
    said: list[str] = []

    @runlife.job
    async def wrong(ctx: RunContext) -> None:
        try:
            with ctx.item("a"):
                pass
        except RuntimeError as exc:
            said.append(str(exc))

    async with AsyncRuntime(jobs=[wrong], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(wrong)).id)
    assert run.status is S.SUCCEEDED
    assert said == [
        "with ctx.item(...) is for sync job functions, which run in threads; "
        "an async job function uses async with ctx.item(...)"
    ]
    assert await store.items(run.id) == ()


async def test_a_cancelled_run_passes_cancellation_through_its_open_item(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """Cancellation is not an item failure: it ends the open item CANCELLED, goes
    on through the job (the next item never starts) and the run ends CANCELLED."""
    entered: list[str] = []
    started = anyio.Event()

    @runlife.job
    async def sync_all(ctx: RunContext, devices: list[str]) -> None:
        for device in await ctx.items(devices):
            async with ctx.item(device):
                entered.append(device)
                started.set()
                await anyio.sleep_forever()

    async with AsyncRuntime(jobs=[sync_all], store=store, clock=clock) as rt:
        run = await rt.submit(sync_all, {"devices": ["r1", "r2"]})
        await started.wait()
        run = await rt.cancel(run.id, "operator stopped it")
        items = await rt.items(run.id)

    assert run.status is S.CANCELLED
    assert entered == ["r1"]
    assert [(i.key, i.status) for i in items] == [("r1", S.CANCELLED), ("r2", S.PENDING)]
    assert items[0].error is not None
    assert items[0].error.kind == "cancelled"
    assert items[0].error.message == "its attempt was stopped while the item ran"
    assert run.progress == ItemCounts(total=2, pending=1, failed=1)


async def test_an_attempt_cut_at_its_timeout_records_its_open_item(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """Timeout(attempt=60) cuts the attempt inside an item: the item ends CANCELLED
    at +60 s, and the run FAILED with kind timeout."""

    @runlife.job(timeout=Timeout(attempt=60))
    async def slow(ctx: RunContext) -> None:
        async with ctx.item("core-rtr-01"):
            await anyio.sleep_forever()

    async with AsyncRuntime(jobs=[slow], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(slow)).id)
        (item,) = await rt.items(run.id)
    assert run.status is S.FAILED
    assert run.error is not None
    assert run.error.kind == "timeout"
    assert (item.status, item.started_at, item.ended_at) == (S.CANCELLED, at(0), at(60))


async def test_bad_outputs_keys_and_skips(clock: VirtualClock, store: MemoryStore) -> None:
    """An output that is not JSON fails its item (the run goes on); a key open twice
    is refused; an error text a store cannot keep is kept escaped; item.skip
    records SKIPPED with its reason."""

    @runlife.job
    async def odd(ctx: RunContext) -> str:
        async with ctx.item("not-json") as item:
            item.output = {"when": datetime(2026, 3, 10)}
        async with ctx.item("twice"), ctx.item("twice"):
            pass
        async with ctx.item("nul"):
            raise ValueError("bad\x00byte")
        async with ctx.item("maintenance") as item:
            item.skip("device in a maintenance window")
        return "done"

    async with AsyncRuntime(jobs=[odd], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(odd)).id)
        items = {i.key: i for i in await rt.items(run.id)}

    assert run.status is S.SUCCEEDED
    assert run.result == "done"
    assert run.warnings == ("3 of 4 items failed: not-json, twice, nul",)
    bad = items["not-json"].error
    assert bad is not None
    assert (bad.type, bad.message.split(":")[0]) == (
        "NotSerializable",
        "item 'not-json' output['when'] is not JSON-serialisable",
    )
    twice = items["twice"].error
    assert twice is not None
    assert twice.type == "InvalidValue"
    assert "a key that no other open item of this run has" in twice.message
    nul = items["nul"].error
    assert nul is not None
    assert nul.message == "bad\\x00byte"
    skipped = items["maintenance"]
    assert (skipped.status, skipped.reason) == (S.SKIPPED, "device in a maintenance window")


async def test_rt_items_filters_pages_and_names_unknown_runs(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """rt.items filters by status and phase and pages after a key; an unknown run
    raises RunNotFound."""

    @runlife.job
    async def mop(ctx: RunContext) -> None:
        for phase, steps in (("pre-check", 2), ("change", 2), ("post-check", 2)):
            for n in range(steps):
                async with ctx.item(f"{phase}/{n + 1}", phase=phase):
                    if (phase, n) == ("change", 1):
                        raise RuntimeError("interface range rejected")

    async with AsyncRuntime(jobs=[mop], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(mop)).id)
        change = await rt.items(run.id, phase="change")
        failed = await rt.items(run.id, "FAILED")
        first = await rt.items(run.id, limit=4)
        rest = await rt.items(run.id, after=first[-1].key, limit=4)
        with pytest.raises(RunNotFound):
            await rt.items("no-such-run")
        with pytest.raises(InvalidValue):
            await rt.items(run.id, "BOGUS")

    assert [i.key for i in change] == ["change/1", "change/2"]
    assert [i.key for i in failed] == ["change/2"]
    assert [i.key for i in first] == ["pre-check/1", "pre-check/2", "change/1", "change/2"]
    assert [i.key for i in rest] == ["post-check/1", "post-check/2"]


# -- resume ----------------------------------------------------------------------------


async def resume(rt: AsyncRuntime, run_id: str) -> Run:
    """A run that resumes *run_id*: trigger RESUME, parent_id *run_id* (what
    ``rt.resume`` submits)."""
    return await rt._again(await rt.get_run(run_id), Trigger.RESUME)


async def test_resume_runs_exactly_the_items_that_failed(env: Env) -> None:
    """40 records, 2 fail (items_fail_run=0: the run FAILED). Resumed once the
    cause is fixed, the new run does those 2 only: the other 38 are SKIPPED with
    their outputs and a reason naming the resumed run."""
    done: Counter[str] = Counter()
    flaky = {"record-07", "record-23"}

    @runlife.job(items_fail_run=0)
    async def load_records(ctx: RunContext, records: list[str]) -> None:
        for record in await ctx.items(records):
            async with ctx.item(record) as item:
                done[record] += 1
                await env.clock.sleep(env.scale)
                if record in flaky:
                    raise ConnectionResetError("upstream closed the connection")
                item.output = {"loaded": record}

    records = [f"record-{n:02d}" for n in range(40)]
    async with AsyncRuntime(jobs=[load_records], store=env.store, clock=env.clock) as rt:
        first = await rt.wait((await rt.submit(load_records, {"records": records})).id)
        flaky.clear()
        done.clear()
        again = await rt.wait((await resume(rt, first.id)).id)
        items = {i.key: i for i in await rt.items(again.id)}

    assert first.status is S.FAILED
    assert first.error is not None
    assert first.error.message == "2 of 40 items failed: record-07, record-23"
    assert (again.trigger, again.parent_id) == (Trigger.RESUME, first.id)
    assert sorted(done.elements()) == ["record-07", "record-23"]
    assert again.status is S.SUCCEEDED
    assert again.progress == ItemCounts(total=40, succeeded=2, skipped=38)
    assert list(items) == records
    skipped = items["record-00"]
    assert (skipped.status, skipped.output, skipped.attempts) == (
        S.SKIPPED,
        {"loaded": "record-00"},
        0,
    )
    assert skipped.reason == f"succeeded in run {first.id}, which this run resumes"
    assert items["record-07"].status is S.SUCCEEDED
    assert items["record-07"].output == {"loaded": "record-07"}


async def test_resume_along_a_chain_of_runs_with_ctx_map_and_item_skipped(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """ctx.map skips the keys done before and returns their outputs; a key skipped
    in the run resumed (done in the one before it) is skipped again, its reason
    naming where it succeeded; a plain ctx.item block sees item.skipped."""
    failing = {"b", "c"}
    calls: list[str] = []
    blocks: list[tuple[str, bool]] = []

    async def sync(key: str) -> str:
        calls.append(key)
        if key in failing:
            raise OSError(f"{key} refused")
        return f"{key}-synced"

    @runlife.job(items_fail_run=0)
    async def sync_all(ctx: RunContext) -> dict[str, Any]:
        async with ctx.item("report", phase="report") as item:
            blocks.append(("report", item.skipped))
            if not item.skipped:
                item.output = "written"
        return await ctx.map(sync, ["a", "b", "c"])

    async with AsyncRuntime(jobs=[sync_all], store=store, clock=clock) as rt:
        first = await rt.wait((await rt.submit(sync_all)).id)
        failing.discard("b")
        second = await rt.wait((await resume(rt, first.id)).id)
        failing.clear()
        third = await rt.wait((await resume(rt, second.id)).id)
        items = {i.key: i for i in await rt.items(third.id)}

    assert [r.status for r in (first, second, third)] == [S.FAILED, S.FAILED, S.SUCCEEDED]
    assert calls == ["a", "b", "c", "b", "c", "c"]
    assert blocks == [("report", False), ("report", True), ("report", True)]
    assert third.result == {"a": "a-synced", "b": "b-synced", "c": "c-synced"}
    assert items["a"].reason == (
        f"succeeded in run {first.id}, before run {second.id}, which this run resumes"
    )
    assert items["b"].reason == f"succeeded in run {second.id}, which this run resumes"
    assert (items["report"].status, items["report"].output, items["report"].phase) == (
        S.SKIPPED,
        "written",
        "report",
    )
    assert items["c"].status is S.SUCCEEDED
    assert third.progress == ItemCounts(total=4, succeeded=1, skipped=3)


async def test_retry_and_rerun_do_every_item_again(clock: VirtualClock, store: MemoryStore) -> None:
    """Only a resume skips: rt.retry and rt.rerun start from scratch."""
    calls: Counter[str] = Counter()

    @runlife.job(items_fail_run=0)
    async def twice(ctx: RunContext) -> None:
        for key in await ctx.items(["a", "b"]):
            async with ctx.item(key):
                calls[key] += 1
                if key == "b":
                    raise ValueError("bad row")

    async with AsyncRuntime(jobs=[twice], store=store, clock=clock) as rt:
        first = await rt.wait((await rt.submit(twice)).id)
        await rt.wait((await rt.retry(first.id)).id)
        await rt.wait((await rt.rerun(first.id)).id)
    assert calls == {"a": 3, "b": 3}


async def test_what_an_item_prints_and_logs_is_stored_as_that_items(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """Inside ``ctx.item(key)`` and inside a ``ctx.map`` function, prints, `logging`
    and ``item.log`` lines are stored with the item; outside, with the run only."""
    import logging

    def ping(host: str) -> str:
        print(f"ping {host}")
        return "up"

    @runlife.job
    async def check(ctx: RunContext) -> None:
        print("starting")
        async with ctx.item("core-rtr-01") as item:
            print("backing up")
            logging.getLogger("host.backup").warning("slow link")
            item.log.info("saved", size=24_832)
        await ctx.map(ping, ["edge-sw-01"])

    async with AsyncRuntime(jobs=[check], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(check)).id)
        lines = (await rt.logs(run.id)).lines

    assert [(line.item, line.stream, line.message) for line in lines] == [
        (None, "stdout", "starting"),
        ("core-rtr-01", "stdout", "backing up"),
        ("core-rtr-01", "log", "slow link"),
        ("core-rtr-01", "log", "saved"),
        ("edge-sw-01", "stdout", "ping edge-sw-01"),
    ]
