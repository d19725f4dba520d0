"""Stale writer: a worker frozen past its lease comes back, and the store refuses it.

Worker A claims a run and proves it can write; then it is frozen with SIGSTOP for
longer than its lease. Worker B reaps the lapsed run and claims it again (a new
fence). While B holds the run, A is resumed with SIGCONT and tries every kind of
worker write with its old claim: heartbeat, item save, log append, completion.
Each must be refused with `LeaseLost`, none may leave a trace, and the run ends
completed once, by B.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from harness import Workers, all_runs, check_history, journal, seed, wait_for, with_store

from runlife import (
    DEFAULT_LIFECYCLE,
    ConcurrentUpdate,
    ErrorInfo,
    JobRecord,
    LeaseLost,
    LogQuery,
    Run,
    Status,
)
from runlife.abc import Store
from runlife.stores import open_store

LEASE = 1.0


def _event(workers: Workers, worker_id: str, ev: str) -> dict[str, Any] | None:
    found = [e for e in journal(workers.out, [worker_id]) if e["ev"] == ev]
    if not found and workers.procs[worker_id].poll() is not None:
        pytest.fail(f"{worker_id} exited early: {workers.stderr(worker_id)}")
    return found[-1] if found else None


@pytest.mark.slow
def test_a_worker_stopped_past_its_lease_has_every_write_refused(
    store_url: str, workers: Workers, tmp_path: Path
) -> None:
    job = "stale"
    [run_id] = seed(store_url, job, 1)
    resume, finish = tmp_path / "resume", tmp_path / "finish"

    workers.start(
        store_url, "A", job, "--mode", "stale", "--lease", str(LEASE),
        "--resume-file", str(resume),
    )  # fmt: skip
    wait_for(lambda: _event(workers, "A", "ready") is not None, 30, "A to claim and write")
    ready = _event(workers, "A", "ready")
    assert ready is not None
    assert ready["results"] == {"heartbeat": "ok", "save_item": "ok", "append_logs": "ok"}, ready
    workers.signal("A", signal.SIGSTOP)
    stopped_at = time.time()

    # B reaps A's run once the lease lapses, claims it, and holds it until told.
    workers.start(
        store_url, "B", job, "--lease", str(LEASE), "--reap-interval", "0.2",
        "--finish-file", str(finish),
    )  # fmt: skip
    wait_for(
        lambda: any(e["ev"] == "claim" for e in journal(workers.out, ["B"])),
        30,
        "B to re-claim the run",
    )
    reclaimed_after = time.time() - stopped_at

    resume.touch()
    workers.signal("A", signal.SIGCONT)
    wait_for(lambda: workers.procs["A"].poll() is not None, 30, "A to finish its stale writes")
    stale = _event(workers, "A", "stale_writes")
    assert stale is not None, workers.stderr("A")
    # B still holds the run while A writes: the refusal is the fence's, not a
    # consequence of the run having ended.
    assert with_store(store_url, lambda s: s.get_run(run_id)).status is Status.RUNNING
    assert stale["results"] == {
        "heartbeat": "LeaseLost",
        "save_item": "LeaseLost",
        "append_logs": "LeaseLost",
        "update_run": "LeaseLost",
    }, stale["errors"]

    finish.touch()
    workers.wait_all(timeout=30)
    workers.check_exits()

    run = all_runs(store_url, job)[run_id]
    assert run.status is Status.SUCCEEDED
    check_history(run)
    assert [a.outcome for a in run.attempts] == ["abandoned", "succeeded"]
    b_events = journal(workers.out, ["B"])
    assert [e["run"] for e in b_events if e["ev"] == "done"] == [run_id]
    claims = {e["w"]: e for e in journal(workers.out) if e["ev"] == "claim"}
    assert claims["B"]["fence"] > claims["A"]["fence"]

    # A's writes before the stop are kept; none of its stale ones left a trace.
    async def traces(store: Store) -> tuple[set[str], set[str]]:
        items = {i.key for i in await store.items(run_id)}
        lines = {line.message for line in (await store.logs(LogQuery(run_id=run_id))).lines}
        return items, lines

    items, lines = with_store(store_url, traces)
    assert items == {"item-before"}
    assert lines == {"log-before"}
    print(f"\nstale figures: re-claimed {reclaimed_after:.2f} s after SIGSTOP (lease {LEASE} s)")


@pytest.mark.anyio
async def test_a_heartbeat_racing_the_reaper_leaves_exactly_one_winner(store_url: str) -> None:
    """Reaper and owner both act on a lapsed lease: one of them wins, never both.

    The reaper found the run abandoned; before it writes, the owner heartbeats. If
    the store let the heartbeat revive the lease, the reap must be refused; if it
    refused the heartbeat, the reap must go through. Either way one worker holds
    the run afterwards (or none), never two.
    """
    jobs = {"race-hb": DEFAULT_LIFECYCLE}
    async with open_store(store_url) as store:
        await store.save_job(JobRecord(name="race-hb"))
        run = Run.create(job="race-hb", at=await store.now(), initial=Status.QUEUED)
        await store.create_run(run)
        [claim] = await store.claim("owner", jobs, limit=1, lease=0.2)
        with anyio.fail_after(10):
            while not (lapsed := await store.abandoned()):
                await anyio.sleep(0.05)
        [seen] = lapsed
        try:
            await store.heartbeat(claim, lease=30)
            revived = True
        except LeaseLost:
            revived = False
        reap = DEFAULT_LIFECYCLE.transition(
            seen, Status.RETRYING, at=await store.now(), error=ErrorInfo(kind="abandoned")
        )
        if revived:
            with pytest.raises(ConcurrentUpdate):
                await store.update_run(reap, expected_version=seen.version, only_if_lapsed=True)
            done = DEFAULT_LIFECYCLE.transition(claim.run, Status.SUCCEEDED, at=await store.now())
            await store.update_run(done, expected_version=claim.run.version, claim=claim)
        else:
            await store.update_run(reap, expected_version=seen.version, only_if_lapsed=True)
            with pytest.raises(LeaseLost):
                await store.heartbeat(claim, lease=30)
        ended = await store.get_run(run.id)
        assert ended.status is (Status.SUCCEEDED if revived else Status.RETRYING)
        if revived:
            check_history(ended)
        print(f"\nheartbeat vs reaper: {'heartbeat' if revived else 'reaper'} won")
