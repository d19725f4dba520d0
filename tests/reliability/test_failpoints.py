"""Failpoints: a store write fails before or after its commit, and nothing breaks.

A failure *before* the commit must leave no trace; a failure *after* it (the
ambiguous case: the caller sees an error, the store kept the write) must be one a
caller can recover from by reading back or by retrying. Either way each run ends in
exactly one terminal state, and an idempotent create retried after an ambiguous
commit returns the run that was stored, not a second one.

The in-process tests arm the failpoints with `arm`; the last test arms them in
real worker processes through ``RUNLIFE_FAILPOINTS`` while they drain a queue.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
from harness import Workers, all_runs, check_history, journal, seed

from runlife import (
    DEFAULT_LIFECYCLE,
    Claim,
    ConcurrentUpdate,
    ErrorInfo,
    JobRecord,
    LeaseLost,
    Run,
    RunNotFound,
    RunQuery,
    Status,
)
from runlife.abc import Store
from runlife.stores import open_store
from runlife.stores._failpoints import FailpointError, arm, disarm

JOB = "fp"
JOBS = {JOB: DEFAULT_LIFECYCLE}


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    disarm()
    async with open_store(store_url) as opened:
        await opened.save_job(JobRecord(name=JOB))
        yield opened
    disarm()


@pytest.fixture(autouse=True)
def _disarmed() -> Iterator[None]:
    # Failpoints are process-wide: a failing test must not leave one armed.
    yield
    disarm()


async def _queued(store: Store, key: str | None = None) -> Run:
    run = Run.create(job=JOB, at=await store.now(), initial=Status.QUEUED, idempotency_key=key)
    return await store.create_run(run)


async def _claim_one(store: Store, worker: str = "w1", lease: float = 30) -> Claim:
    [claim] = await store.claim(worker, JOBS, limit=1, lease=lease)
    return claim


async def _complete(store: Store, claim: Claim) -> Run:
    run = claim.run
    done = DEFAULT_LIFECYCLE.transition(run, Status.SUCCEEDED, at=await store.now())
    return await store.update_run(done, expected_version=run.version, claim=claim)


async def _runs_of_job(store: Store) -> tuple[Run, ...]:
    return (await store.list_runs(RunQuery(job=JOB, limit=100))).runs


def _ended_once(run: Run) -> None:
    """The run is terminal and entered a terminal state exactly once."""
    assert run.status.is_terminal
    check_history(run)
    terminal = [t for t in run.history if DEFAULT_LIFECYCLE.status_of(t.to).is_terminal]
    assert len(terminal) == 1, run.history


# -- create_run ------------------------------------------------------------------


@pytest.mark.anyio
async def test_create_failing_before_commit_stores_nothing(store: Store) -> None:
    arm("create_run.before_commit")
    first = Run.create(job=JOB, at=await store.now(), initial=Status.QUEUED, idempotency_key="k")
    with pytest.raises(FailpointError):
        await store.create_run(first)
    with pytest.raises(RunNotFound):
        await store.get_run(first.id)
    assert await _runs_of_job(store) == ()
    # The retry creates it, once.
    stored = await _queued(store, key="k")
    assert [r.id for r in await _runs_of_job(store)] == [stored.id]


@pytest.mark.anyio
async def test_create_retried_after_an_ambiguous_commit_returns_the_same_run(
    store: Store,
) -> None:
    arm("create_run.after_commit")
    first = Run.create(job=JOB, at=await store.now(), initial=Status.QUEUED, idempotency_key="k")
    with pytest.raises(FailpointError):
        await store.create_run(first)
    # The caller cannot tell whether it was stored; it submits again with the same
    # key: as the same value, and as a new value (a new id) built by a fresh submit.
    again = await store.create_run(first)
    fresh = await _queued(store, key="k")
    assert again.id == fresh.id == first.id
    assert [r.id for r in await _runs_of_job(store)] == [first.id]
    # ... and that one run goes on to end once.
    await _complete(store, await _claim_one(store))
    _ended_once(await store.get_run(first.id))


# -- claim ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_claim_failing_before_commit_leaves_the_run_queued(store: Store) -> None:
    run = await _queued(store)
    arm("claim.before_commit")
    with pytest.raises(FailpointError):
        await store.claim("w1", JOBS, limit=1, lease=30)
    unchanged = await store.get_run(run.id)
    assert (unchanged.status, unchanged.version, unchanged.attempts) == (
        Status.QUEUED,
        run.version,
        (),
    )
    claim = await _claim_one(store)
    assert claim.run.attempt == 1
    await _complete(store, claim)
    ended = await store.get_run(run.id)
    _ended_once(ended)
    assert [a.outcome for a in ended.attempts] == ["succeeded"]


@pytest.mark.anyio
async def test_claim_failing_after_commit_is_recovered_by_the_reaper(store: Store) -> None:
    run = await _queued(store)
    arm("claim.after_commit")
    with pytest.raises(FailpointError):
        await store.claim("w1", JOBS, limit=1, lease=0.5)
    # The claim committed but its owner never learnt it: the run is held by
    # nobody alive. Nobody else may take it while the lease runs ...
    assert (await store.get_run(run.id)).status is Status.RUNNING
    assert await store.claim("w2", JOBS, limit=1, lease=30) == ()
    # ... and once it lapses a reaper sends it back to the queue (here its own
    # write is ambiguous too: the retried reap is refused, the run is reaped once).
    with anyio.fail_after(10):
        while not (lapsed := await store.abandoned()):
            await anyio.sleep(0.05)
    [orphan] = lapsed
    retrying = DEFAULT_LIFECYCLE.transition(
        orphan, Status.RETRYING, at=await store.now(), error=ErrorInfo(kind="abandoned")
    )
    arm("update_run.after_commit")
    with pytest.raises(FailpointError):
        await store.update_run(retrying, expected_version=orphan.version, only_if_lapsed=True)
    with pytest.raises(ConcurrentUpdate):
        await store.update_run(retrying, expected_version=orphan.version, only_if_lapsed=True)
    reaped = await store.get_run(run.id)
    assert reaped.status is Status.RETRYING
    queued = DEFAULT_LIFECYCLE.transition(reaped, Status.QUEUED, at=await store.now())
    await store.update_run(queued, expected_version=reaped.version)

    claim = await _claim_one(store, "w2")
    assert claim.run.attempt == 2
    await _complete(store, claim)
    ended = await store.get_run(run.id)
    _ended_once(ended)
    assert [a.outcome for a in ended.attempts] == ["abandoned", "succeeded"]


# -- update_run -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_completion_failing_before_commit_can_be_retried(store: Store) -> None:
    run = await _queued(store)
    claim = await _claim_one(store)
    arm("update_run.before_commit")
    with pytest.raises(FailpointError):
        await _complete(store, claim)
    held = await store.get_run(run.id)
    assert (held.status, held.version) == (Status.RUNNING, claim.run.version)
    await store.heartbeat(claim, lease=30)  # the claim still holds
    await _complete(store, claim)
    _ended_once(await store.get_run(run.id))


@pytest.mark.anyio
async def test_completion_failing_after_commit_is_kept_once(store: Store) -> None:
    run = await _queued(store)
    claim = await _claim_one(store)
    done = DEFAULT_LIFECYCLE.transition(claim.run, Status.SUCCEEDED, at=await store.now())
    arm("update_run.after_commit")
    with pytest.raises(FailpointError):
        await store.update_run(done, expected_version=claim.run.version, claim=claim)
    # A blind retry is refused: the completion ended the hold. Reading back tells
    # the caller that its write is the one stored.
    with pytest.raises(LeaseLost):
        await store.update_run(done, expected_version=claim.run.version, claim=claim)
    stored = await store.get_run(run.id)
    assert (stored.status, stored.version) == (Status.SUCCEEDED, done.version)
    _ended_once(stored)


# -- in worker processes ----------------------------------------------------------------

FAILPOINTS = ",".join(
    f"{name}={count}"
    for name, count in {
        "claim.before_commit": 2,
        "claim.after_commit": 2,
        "update_run.before_commit": 3,
        "update_run.after_commit": 3,
    }.items()
)


@pytest.mark.slow
def test_workers_hit_by_failpoints_still_end_every_run_once(
    store_url: str, workers: Workers
) -> None:
    """Three processes each fail 10 writes (claims, completions, reaps) and drain anyway."""
    ids = seed(store_url, JOB, 120)
    for name in ("f0", "f1", "f2"):
        workers.start(
            store_url, name, JOB, "--lease", "1", "--reap-interval", "0.3",
            RUNLIFE_FAILPOINTS=FAILPOINTS,
        )  # fmt: skip
    workers.wait_all(timeout=60)
    workers.check_exits()

    runs = all_runs(store_url, JOB)
    assert set(runs) == set(ids)
    assert Counter(r.status for r in runs.values()) == {Status.SUCCEEDED: len(ids)}
    for run in runs.values():
        _ended_once(run)
    events = journal(workers.out)
    done = Counter(e["run"] for e in events if e["ev"] == "done")
    assert max(done.values()) == 1
    seen = Counter(e["ev"] for e in events)
    print(f"\nfailpoint figures: {dict(seen)}")
    # The failpoints did fire, in each kind of write.
    assert seen["claim_error"] >= 1
    assert seen["complete_error"] + seen["reap_error"] >= 1
    assert any(e.get("ambiguous") for e in events if e["ev"] == "done")
