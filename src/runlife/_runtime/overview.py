"""The reads behind the runtime's ``summary``, ``list_jobs`` and ``explain`` verbs.

Each reads what its question needs from the store (through the guard) and hands
it to the pure answer in `runlife._core.overview`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import attrs

from runlife._core.claiming import LIVE
from runlife._core.graph import Explanation
from runlife._core.overview import (
    JobOverview,
    RunExplanation,
    Summary,
    explain_run,
    job_overview,
    summarize,
)
from runlife._core.queries import RunQuery
from runlife._core.run import Run
from runlife._core.spec import JobSpec
from runlife._core.status import Status
from runlife._core.values import MAX_PAGE, check_moment
from runlife._runtime.driver import Driver
from runlife._runtime.guard import StoreGuard
from runlife._runtime.jobs import JobBook
from runlife.exceptions import InvalidLifecycle, InvalidPolicy, InvalidValue, RunlifeError

__all__ = ("ACTIVE", "active_runs", "explain", "jobs", "summary")

ACTIVE: Final = frozenset({Status.RUNNING, Status.WAITING, Status.QUEUED, Status.RETRYING})
"""The statuses of the runs a summary looks at now (PENDING runs wait by design)."""

# How many lapsed leases one look reads: a store with more has a bigger problem
# than this list shows.
_STALLED_LIMIT: Final = 1000


async def active_runs(guard: StoreGuard, statuses: frozenset[Status] = ACTIVE) -> list[Run]:
    """Every run of the store in *statuses*, newest first, page by page."""
    runs: list[Run] = []
    cursor: str | None = None
    while True:
        page = await guard.list_runs(RunQuery(status=statuses, limit=MAX_PAGE, cursor=cursor))
        runs.extend(page.runs)
        if page.next_cursor is None:
            return runs
        cursor = page.next_cursor


async def summary(
    guard: StoreGuard,
    book: JobBook,
    *,
    now: datetime,
    since: datetime | None,
    until: datetime | None,
) -> Summary:
    """`summarize` over the store: counts in the window, its active and stalled runs."""
    since = check_moment("since", since, optional=True)
    until = check_moment("until", until, optional=True)
    if since is not None and until is not None and until < since:
        raise InvalidValue("until", until, f"a moment at or after since ({since.isoformat()})")
    counts = await guard.count_runs(RunQuery(since=since, until=until))
    active = await active_runs(guard)
    specs: dict[str, JobSpec] = {}
    for name in {run.job for run in active}:
        spec = await book.spec_or_none(name)
        if spec is not None:
            specs[name] = spec
    stalled = await guard.abandoned(limit=_STALLED_LIMIT)
    return summarize(
        at=now,
        since=since,
        until=until,
        counts=counts,
        active=active,
        specs=specs,
        stalled=stalled,
    )


async def jobs(guard: StoreGuard, book: JobBook, *, now: datetime) -> tuple[JobOverview, ...]:
    """One `JobOverview` per job record of the store, by name."""
    records = await guard.list_jobs()
    running: dict[str, int] = {}
    queued: dict[str, int] = {}
    for run in await active_runs(guard, frozenset({*LIVE, Status.QUEUED})):
        into = queued if run.status is Status.QUEUED else running
        into[run.job] = into.get(run.job, 0) + 1
    rows: list[JobOverview] = []
    for record in records:
        try:
            spec: JobSpec | None = await book.spec(record.name)
        except (InvalidPolicy, InvalidLifecycle):
            spec = None
        rows.append(
            job_overview(
                record,
                spec,
                now=now,
                last_success=await _newest(guard, record.name, Status.SUCCEEDED),
                last_failure=await _newest(guard, record.name, Status.FAILED),
                running=running.get(record.name, 0),
                queued=queued.get(record.name, 0),
            )
        )
    return tuple(rows)


async def _newest(guard: StoreGuard, job: str, status: Status) -> Run | None:
    page = await guard.list_runs(RunQuery(job=job, status=status, limit=1))
    return page.runs[0] if page.runs else None


async def explain(
    guard: StoreGuard, book: JobBook, driver: Driver, run_id: str, *, now: datetime
) -> RunExplanation:
    """`explain_run` over the store: the run, its job's policy, the live runs that
    fill its job's limits, its workflow node, its signals, lease and cancel request."""
    run = await guard.get_run(run_id)
    spec = await book.spec_or_none(run.job) or JobSpec()
    live = 0
    by_label: dict[str, int] = {}
    if run.status is Status.QUEUED:
        limits = spec.limits
        if limits.max_concurrency is not None:
            live = sum((await guard.count_runs(RunQuery(job=run.job, status=LIVE))).values())
        for key in limits.per_label:
            value = run.labels.get(key)
            if value is not None:
                query = RunQuery(job=run.job, status=LIVE, labels={key: value})
                by_label[key] = sum((await guard.count_runs(query)).values())
    node = None
    if run.status is Status.PENDING and run.workflow_run_id is not None:
        node = await _node(guard, driver, run)
    stalled = False
    cancel = None
    if run.status in LIVE:
        stalled = any(r.id == run.id for r in await guard.abandoned(limit=_STALLED_LIMIT))
        cancel = (await guard.cancel_requests([run.id])).get(run.id)
    signals = await guard.signals(run.id) if run.status is Status.WAITING else {}
    graph = None
    if spec.workflow is not None and not run.is_terminal:
        graph = await driver.graph(run)
    return explain_run(
        run,
        now=now,
        spec=spec,
        node=node,
        live=live,
        live_by_label=by_label,
        signals=signals,
        stalled=stalled,
        cancel=cancel,
        graph=graph,
    )


async def _node(guard: StoreGuard, driver: Driver, run: Run) -> Explanation | None:
    assert run.workflow_run_id is not None
    try:
        graph = await driver.graph(await guard.get_run(run.workflow_run_id))
    except RunlifeError:
        return None  # its workflow run was purged, or its spec cannot be read here
    if run.job not in graph.workflow:
        return None
    # The graph counts a node by its first run; this run is the one asked about.
    statuses = {**graph.statuses, run.job: run.status}
    return attrs.evolve(graph, statuses=statuses).explain(run.job)
