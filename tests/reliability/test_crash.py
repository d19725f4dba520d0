"""Crash: worker processes are SIGKILLed while they drain a queue, and nothing is lost.

Four worker processes (tests/reliability/worker.py) drain one store; every ~1.5 s
a random one is killed with SIGKILL, mid-work or mid-write, and replaced by a fresh
process. The surviving workers reap the dead one's runs once their leases lapse.
At the end the store must show: every run SUCCEEDED (none lost), exactly one
SUCCEEDED per history (none completed twice), each attempt claimed by one worker,
and every abandoned attempt re-claimed within lease + reaper interval + 1 s of the
kill that abandoned it.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter, defaultdict
from typing import Any

import anyio
import pytest
from harness import Workers, all_runs, check_history, journal, kind, seed, with_store

from runlife import RunQuery, Status
from runlife.abc import Store

RUNS = 400
WORKERS = 4
LEASE = 1.0
REAP_INTERVAL = 0.5
KILL_EVERY = 1.5
BOUND = LEASE + REAP_INTERVAL + 1.0
"""The promise: an abandoned run is running again within this many seconds of the kill."""

OPTIONS = (
    "--lease", str(LEASE), "--reap-interval", str(REAP_INTERVAL),
    "--slots", "1", "--limit", "1", "--work-min", "30", "--work-max", "70",
    # A few runs outlive their lease several times over: only heartbeats keep them.
    "--long-every", "50", "--long-ms", str(int(2.2 * LEASE * 1000)),
)  # fmt: skip


def _supervise(url: str, job: str, workers: Workers, seed_: int) -> list[tuple[str, float]]:
    """Run the workers, killing one every ~KILL_EVERY s until the job has no active run."""
    rng = random.Random(seed_)
    count = itertools.count()

    def start() -> None:
        # Every other worker runs on trio, where PostgresStore takes another path.
        i = next(count)
        workers.start(url, f"w{i}", job, "--backend", ("asyncio", "trio")[i % 2], *OPTIONS)

    active = frozenset(s for s in Status if not s.is_terminal)
    kills: list[tuple[str, float]] = []

    async def main(store: Store) -> None:
        for _ in range(WORKERS):
            start()
        deadline = time.monotonic() + 90
        next_kill = time.monotonic() + KILL_EVERY
        while sum((await store.count_runs(RunQuery(job=job, status=active))).values()):
            assert time.monotonic() < deadline, "the workers did not drain the queue in 90 s"
            if time.monotonic() >= next_kill:
                victim = rng.choice(workers.alive())
                kills.append((victim, workers.kill(victim)))
                start()
                next_kill += KILL_EVERY + rng.uniform(-0.3, 0.3)
            await anyio.sleep(0.1)

    with_store(url, main)
    return kills


@pytest.mark.slow
def test_sigkilled_workers_lose_no_run_and_complete_none_twice(
    store_url: str, workers: Workers
) -> None:
    job = "crash"
    ids = seed(store_url, job, RUNS)
    started = time.monotonic()
    kills = _supervise(store_url, job, workers, seed_=len(ids))
    drained_in = time.monotonic() - started
    workers.wait_all(timeout=20)
    workers.check_exits()

    runs = all_runs(store_url, job)
    events = journal(workers.out)

    # Kills and contention never surface as store errors ("database is locked",
    # a dead peer's connection) in the survivors.
    assert [e for e in events if e["ev"].endswith("_error")] == []
    # No run lost: every run is there, and terminal, and it is the success.
    assert set(runs) == set(ids)
    assert Counter(r.status for r in runs.values()) == {Status.SUCCEEDED: RUNS}
    # No run completed twice, by the store's history and by the workers' own word.
    for run in runs.values():
        check_history(run)
    done = Counter(e["run"] for e in events if e["ev"] == "done")
    assert max(done.values()) == 1, [r for r, n in done.items() if n > 1]

    # Each attempt was claimed by exactly one worker, under a fence of its own.
    claims: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["ev"] == "claim":
            claims[(e["run"], e["attempt"])].append(e)
    assert all(len(c) == 1 for c in claims.values()), [c for c in claims.values() if len(c) > 1]
    for run in runs.values():
        fences = [claims[(run.id, a.number)][0]["fence"] for a in run.attempts
                  if (run.id, a.number) in claims]  # fmt: skip
        assert fences == sorted(set(fences)), (run.id, fences)
        # Only the last attempt succeeded; every earlier one was abandoned by a dead
        # or stalled worker (nothing else fails in this test).
        assert [a.outcome for a in run.attempts[:-1]] == ["abandoned"] * (run.attempt - 1)
        assert run.attempts[-1].outcome == "succeeded"
    # The completion a worker logged is the one the store kept (same attempt).
    for e in events:
        if e["ev"] == "done":
            assert e["attempt"] == runs[e["run"]].attempt, e

    # Heartbeats kept runs alive past their lease in live workers: a run that took
    # longer than its lease in one attempt was never reaped from its owner.
    kept = [
        r
        for r in runs.values()
        if r.attempt == 1 and r.duration is not None and r.duration.total_seconds() > 2 * LEASE
    ]
    assert kept, "no long run finished in one attempt: heartbeats were not exercised"

    figures = _reclaim_delays(runs, claims, events, dict(kills))
    figures.update(
        store=kind(store_url),
        runs=RUNS,
        kills=len(kills),
        drained_in=round(drained_in, 1),
        refused_writes=sum(e["ev"] == "refused" for e in events),
        kept_by_heartbeats=len(kept),
        heartbeats=sum(e["ev"] == "hb" for e in events),
    )
    print(f"\ncrash figures: {figures}")
    assert len(kills) >= 3, "too few kills to prove anything: the drain was too fast"
    assert figures["abandoned_attempts"] >= 1, "no kill hit a worker holding a run"
    assert figures["max_delay_after_kill"] <= BOUND, figures
    assert figures["max_delay_after_lapse"] <= REAP_INTERVAL + 1.0, figures


def _reclaim_delays(
    runs: dict[str, Any],
    claims: dict[tuple[str, int], list[dict[str, Any]]],
    events: list[dict[str, Any]],
    kills: dict[str, float],
) -> dict[str, Any]:
    """How long after the kill (or the lapse) each abandoned attempt ran again.

    The owner of an abandoned attempt is the worker whose journal has its claim.
    For an owner that was killed, the delay runs from the kill; for one that was
    alive but stalled past its lease (a starved process on a busy machine), from
    the last lease expiry it was granted. An owner killed between its claim and
    its journal line is unknown: it is charged to the first kill after the
    attempt started, which can only overstate the delay.
    """
    expiry: dict[tuple[str, int], float] = {}
    for e in events:
        if e["ev"] in ("claim", "hb") and "exp" in e:
            key = (e["run"], e["fence"])
            expiry[key] = max(expiry.get(key, 0.0), e["exp"])
    kill_times = sorted(kills.values())
    after_kill: list[float] = []
    after_lapse: list[float] = []
    unknown = 0
    for run in runs.values():
        for before, after in itertools.pairwise(run.attempts):
            if before.outcome != "abandoned":
                continue
            rerun_at = after.started_at.timestamp()
            claim = claims.get((run.id, before.number))
            if claim is None:
                unknown += 1
                start = before.started_at.timestamp()
                # No kill after the attempt started would be a lapse nobody explains.
                kill_at = next((t for t in kill_times if t >= start - 0.05), float("-inf"))
                after_kill.append(rerun_at - kill_at)
            elif kills.get(claim[0]["w"], float("inf")) < rerun_at:
                after_kill.append(rerun_at - kills[claim[0]["w"]])
            else:
                # Its owner was alive when the run ran again: it stalled past its lease.
                lapse = expiry[(run.id, claim[0]["fence"])]
                after_lapse.append(rerun_at - lapse)
    return {
        "abandoned_attempts": len(after_kill) + len(after_lapse),
        "owner_unknown": unknown,
        "stalled_not_killed": len(after_lapse),
        "max_delay_after_kill": round(max(after_kill, default=0.0), 3),
        "mean_delay_after_kill": round(sum(after_kill) / max(len(after_kill), 1), 3),
        "max_delay_after_lapse": round(max(after_lapse, default=0.0), 3),
        "bound": BOUND,
    }


@pytest.mark.slow
@pytest.mark.parametrize("failpoint", ["claim.after_commit", "update_run.after_commit"])
def test_a_worker_killed_between_commit_and_reply_loses_and_repeats_nothing(
    store_url: str, workers: Workers, failpoint: str
) -> None:
    """The worst moment to die: the store committed the write, the worker never knew.

    Worker x dies (SIGKILL, by its own hand) as soon as the failpoint fires, right
    after the commit of its first claim or completion. Worker y then drains the
    queue. A committed claim must be reaped and run again; a committed completion
    must stand, and never be run again.
    """
    job = "commit-crash"
    ids = seed(store_url, job, 20)
    fast = ("--lease", str(LEASE), "--reap-interval", str(REAP_INTERVAL), "--slots", "4")
    workers.start(
        store_url, "x", job, "--die-on-failpoint", "--limit", "4", *fast,
        RUNLIFE_FAILPOINTS=f"{failpoint}=1",
    )  # fmt: skip
    workers.wait_all(timeout=30)
    assert workers.procs["x"].returncode == -9, workers.stderr("x")
    workers.kills["x"] = time.time()  # killed, by itself: not an exit to check
    runs_at_death = all_runs(store_url, job)
    x_events = journal(workers.out, ["x"])
    assert x_events[-1]["ev"] == "crash"
    assert not any(e["ev"] == "done" for e in x_events)

    workers.start(store_url, "y", job, *fast)
    workers.wait_all(timeout=30)
    workers.check_exits()
    runs = all_runs(store_url, job)
    assert Counter(r.status for r in runs.values()) == {Status.SUCCEEDED: len(ids)}
    for run in runs.values():
        check_history(run)
    held_by_x = {r for r, run in runs_at_death.items() if run.status is not Status.QUEUED}
    assert held_by_x, "x died before anything committed"
    if failpoint == "claim.after_commit":
        # x claimed these and died: they were reaped and run again by y.
        assert {r for r, run in runs_at_death.items() if run.status is Status.RUNNING} == held_by_x
        for r in held_by_x:
            assert [a.outcome for a in runs[r].attempts] == ["abandoned", "succeeded"]
    else:
        # x's completions committed: they stand, and y did not run them again. SQLite
        # commits writes that arrive together in one transaction, so the commit that
        # fired the failpoint may carry more than one completion.
        completed = [r for r in held_by_x if runs_at_death[r].status is Status.SUCCEEDED]
        assert completed
        for r in completed:
            assert runs[r] == runs_at_death[r]
            assert [a.outcome for a in runs[r].attempts] == ["succeeded"]
    y_done = {e["run"] for e in journal(workers.out, ["y"]) if e["ev"] == "done"}
    assert y_done == {r for r in ids if runs_at_death[r].status is not Status.SUCCEEDED}
