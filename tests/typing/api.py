"""Static checks of the public API, read by mypy (strict) in CI, never run.

Each built-in adapter must satisfy its port exactly as declared in `runlife.abc`: a
signature that drifts from the protocol fails the type check here, not in a user's
code. The public values keep precise types.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import assert_type

from runlife import (
    DEFAULT_LIFECYCLE,
    AsyncRuntime,
    Claim,
    Cron,
    LogLine,
    LogPage,
    Page,
    Retry,
    Run,
    RunQuery,
    Status,
    SystemClock,
    Workflow,
    job,
    open_store,
)
from runlife.abc import Clock, Executor, Store
from runlife.executors import AsyncExecutor, ProcessExecutor, ThreadExecutor
from runlife.stores import MemoryStore, PostgresStore, SQLiteStore
from runlife.testing import VirtualClock


def stores_satisfy_the_port(m: MemoryStore, s: SQLiteStore, p: PostgresStore) -> list[Store]:
    return [m, s, p, open_store("memory://")]


def clocks_satisfy_the_port() -> list[Clock]:
    return [SystemClock(), VirtualClock()]


def executors_satisfy_the_port() -> list[Executor]:
    return [AsyncExecutor(), ThreadExecutor(), ProcessExecutor()]


async def the_runtime_keeps_its_types() -> None:
    @job
    async def backup(ctx: object) -> None: ...

    async with AsyncRuntime(jobs=[backup], store="memory://") as rt:
        assert_type(rt, AsyncRuntime)
        assert_type(await rt.submit(backup), Run)
        assert_type(await rt.wait("id"), Run)
        assert_type(await rt.list_runs(status=Status.FAILED), Page)
        assert_type(await rt.logs("id", level="error", after=3), LogPage)
        assert_type(await rt.search_logs("id", "timed out"), tuple[LogLine, ...])
        assert_type(await rt.export_logs("id", fmt="jsonl"), str)
        async for line in rt.follow_logs("id"):
            assert_type(line, LogLine)


async def values_keep_their_types(store: Store, claim: Claim) -> None:
    t0 = datetime(2026, 3, 10, 2, tzinfo=UTC)
    run = Run.create(job="backup", at=t0)
    assert_type(DEFAULT_LIFECYCLE.transition(run, Status.QUEUED, at=t0), Run)
    assert_type(await store.list_runs(RunQuery(status=Status.FAILED)), Page)
    assert_type(await store.heartbeat(claim, lease=30), datetime)
    assert_type(Retry().next_delay(1, ValueError("boom"), None), float | None)
    assert_type(Cron("0 2 * * *").next_after(t0), datetime)
    assert_type(Workflow("w", {"a": [], "b": ["a"]}).upstream("b"), tuple[str, ...])
