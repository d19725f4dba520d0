"""Static checks of the public API, read by mypy (strict) in CI, never run.

Each built-in adapter must satisfy its port exactly as declared in `runlife.abc`: a
signature that drifts from the protocol fails the type check here, not in a user's
code. The public values keep precise types.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, assert_type

from runlife import (
    DEFAULT_LIFECYCLE,
    AsyncRuntime,
    CancelRequest,
    Claim,
    Cron,
    Item,
    ItemContext,
    JobOverview,
    JobSpec,
    LogLine,
    LogPage,
    Page,
    Retry,
    Run,
    RunContext,
    RunExplanation,
    RunGraph,
    RunQuery,
    Runtime,
    Status,
    Summary,
    SystemClock,
    Transition,
    Workflow,
    job,
    open_store,
)
from runlife.abc import Clock, Executor, Hooks, Store
from runlife.executors import AsyncExecutor, ProcessExecutor, ThreadExecutor
from runlife.stores import MemoryStore, PostgresStore, SQLiteStore
from runlife.testing import VirtualClock


def stores_satisfy_the_port(m: MemoryStore, s: SQLiteStore, p: PostgresStore) -> list[Store]:
    return [m, s, p, open_store("memory://")]


def clocks_satisfy_the_port() -> list[Clock]:
    return [SystemClock(), VirtualClock()]


def executors_satisfy_the_port() -> list[Executor]:
    return [AsyncExecutor(), ThreadExecutor(), ProcessExecutor()]


class Pager(Hooks):
    """Overrides some of the hooks, sync and async: still a `Hooks`."""

    async def on_failure(self, run: Run) -> None: ...

    def on_transition(self, run: Run, transition: Transition) -> None: ...


def hooks_satisfy_the_port() -> AsyncRuntime:
    return AsyncRuntime(store="memory://", hooks=[Pager()], hook_timeout=5)


async def the_runtime_keeps_its_types() -> None:
    @job
    async def backup(ctx: object) -> None: ...

    nightly = Workflow("nightly", {backup: []})
    async with AsyncRuntime(jobs=[backup], workflows=[nightly], store="memory://") as rt:
        assert_type(rt, AsyncRuntime)
        assert_type(await rt.submit(backup), Run)
        assert_type(await rt.submit(nightly), Run)
        assert_type(await rt.graph("id"), RunGraph)
        assert_type(await rt.wait("id"), Run)
        assert_type(await rt.list_runs(status=Status.FAILED), Page)
        assert_type(await rt.items("id", Status.FAILED, phase="backup", limit=50), tuple[Item, ...])
        assert_type(await rt.cancel("id", "wrong site", by="ops:ana", wait=False), Run)
        assert_type(await rt.set_policy(backup, retry=Retry(max_attempts=3)), JobSpec)
        assert_type(await rt.purge(older_than=timedelta(days=30)), int)
        assert_type(await rt.logs("id", level="error", after=3), LogPage)
        assert_type(await rt.search_logs("id", "timed out"), tuple[LogLine, ...])
        assert_type(await rt.export_logs("id", fmt="jsonl"), str)
        async for line in rt.follow_logs("id"):
            assert_type(line, LogLine)


def the_blocking_runtime_keeps_its_types() -> None:
    @job
    def backup(ctx: object) -> None: ...

    with Runtime(jobs=[backup], store="memory://") as rt:
        assert_type(rt, Runtime)
        assert_type(rt.submit(backup), Run)
        assert_type(rt.wait("id"), Run)
        assert_type(rt.resume("id"), Run)
        assert_type(rt.list_runs(status=Status.FAILED), Page)
        assert_type(rt.set_policy("backup", reset=["retry"]), JobSpec)
        assert_type(rt.purge(older_than=datetime(2026, 1, 1, tzinfo=UTC)), int)
        assert_type(rt.async_runtime, AsyncRuntime)
    with Runtime(store="memory://", serve=False) as ops:
        assert_type(ops.summary(since=datetime(2026, 1, 1, tzinfo=UTC)), Summary)
        assert_type(ops.list_jobs(), tuple[JobOverview, ...])
        assert_type(ops.explain("id"), RunExplanation)
        assert_type(ops.count_runs(job="backup"), Mapping[Status, int])


async def items_keep_their_types(ctx: RunContext) -> None:
    async with ctx.item("core-rtr-01", phase="backup") as item:
        assert_type(item, ItemContext)
    with ctx.item("core-rtr-02") as item:
        assert_type(item.skipped, bool)
    assert_type(await ctx.items(["a", "b"]), tuple[str, ...])
    assert_type(await ctx.map(str.upper, ["a"], retry=Retry(max_attempts=2)), dict[str, Any])


async def values_keep_their_types(store: Store, claim: Claim) -> None:
    t0 = datetime(2026, 3, 10, 2, tzinfo=UTC)
    run = Run.create(job="backup", at=t0)
    assert_type(DEFAULT_LIFECYCLE.transition(run, Status.QUEUED, at=t0), Run)
    assert_type(DEFAULT_LIFECYCLE.path(run.state, Status.QUEUED), tuple[str, ...])
    assert_type(await store.list_runs(RunQuery(status=Status.FAILED)), Page)
    assert_type(await store.heartbeat(claim, lease=30), datetime)
    assert_type(await store.request_cancel("id", by="ops:ana"), CancelRequest | None)
    assert_type(await store.cancel_requests(["id"]), Mapping[str, CancelRequest])
    assert_type(Retry().next_delay(1, ValueError("boom"), None), float | None)
    assert_type(Cron("0 2 * * *").next_after(t0), datetime)
    assert_type(Workflow("w", {"a": [], "b": ["a"]}).upstream("b"), tuple[str, ...])
