"""Crash: runtime processes are SIGKILLed while they drain a queue, and nothing is lost.

Four hosts (tests/reliability/host.py, each an `AsyncRuntime` with its worker,
mover, reaper and scheduler) drain one store; every ~1.5 s a random one is killed
with SIGKILL and a fresh one started. The survivors' reapers recover the dead
one's runs once their leases lapse. At the end the store must show every run
SUCCEEDED once (none lost, none completed twice), the job's function must have
run again only the attempts the killed hosts held, and every abandoned attempt
must be running again within lease + reaper interval + 1 s of the kill.

A poison run, one that kills its own host at every attempt, must end FAILED with
error kind ``abandoned`` once its retry budget is spent: executed exactly
``max_attempts`` times, and never again.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from typing import Any

import anyio
import pytest
from harness import ACTIVE, Hosts, all_runs, check_history, journal, kind, seed, with_store

from runlife import Run, RunQuery, Status
from runlife.abc import Store

RUNS = 300
HOSTS = 4
CONCURRENCY = 1
LEASE = 1.0
REAP_INTERVAL = LEASE / 3
"""The runtime's reaper looks every third of a lease."""
KILL_EVERY = 1.5
BOUND = LEASE + REAP_INTERVAL + 1.0
"""The promise: an abandoned run is running again within this many seconds of the kill."""

OPTIONS = (
    "--lease", str(LEASE), "--concurrency", str(CONCURRENCY), "--poll", "0.25",
    "--work-min", "40", "--work-max", "80", "--until-drained",
)  # fmt: skip


def _active(store: Store) -> Any:
    return store.count_runs(RunQuery(job="task", status=ACTIVE))


def _supervise(url: str, hosts: Hosts, rng: random.Random) -> list[tuple[str, float]]:
    """Run the hosts, killing one every ~KILL_EVERY s until no run is active."""
    count = itertools.count()

    def start() -> None:
        i = next(count)  # every other host runs on trio
        hosts.start(url, f"h{i}", "task", "--backend", ("asyncio", "trio")[i % 2], *OPTIONS)

    kills: list[tuple[str, float]] = []

    async def main(store: Store) -> None:
        for _ in range(HOSTS):
            start()
        deadline = time.monotonic() + 60
        next_kill = time.monotonic() + KILL_EVERY
        while sum((await _active(store)).values()):
            assert time.monotonic() < deadline, "the hosts did not drain the queue in 60 s"
            if time.monotonic() >= next_kill:
                victim = rng.choice(hosts.alive())
                kills.append((victim, hosts.kill(victim)))
                start()
                next_kill += KILL_EVERY + rng.uniform(-0.3, 0.3)
            await anyio.sleep(0.1)

    with_store(url, main)
    return kills


def owners(events: list[dict[str, Any]]) -> dict[tuple[str, int], str]:
    """The host that claimed each (run, attempt), by the hosts' journals."""
    found: dict[tuple[str, int], str] = {}
    for e in events:
        if e["ev"] == "claim":
            key = (e["run"], e["attempt"])
            assert key not in found, f"attempt {key} claimed by {found[key]} and {e['w']}"
            found[key] = e["w"]
    return found


def reclaim_delays(
    runs: dict[str, Run], events: list[dict[str, Any]], kills: dict[str, float]
) -> dict[str, Any]:
    """How long after the kill (or the lapse) each abandoned attempt ran again.

    The owner of an abandoned attempt is the host whose journal has its claim. For
    an owner that was killed before the run ran again, the delay runs from the kill
    (this process's clock) to the next attempt's start (the store's clock: the same
    machine's). For an owner that was alive then (starved past its lease on a busy
    machine), from the last lease expiry the store granted it. An owner killed
    between the claim's commit and its journal line is unknown: the delay is then
    charged to the first kill after the attempt started, which can only overstate it.
    """
    owner = owners(events)
    expiry: dict[tuple[str, int], float] = {}
    for e in events:
        if "exp" in e:
            key = (e["run"], e["fence"])
            expiry[key] = max(expiry.get(key, 0.0), e["exp"])
    fences = {(e["run"], e["attempt"]): e["fence"] for e in events if e["ev"] == "claim"}
    kill_times = sorted(kills.values())
    after_kill: list[float] = []
    after_lapse: list[float] = []
    unknown = 0
    for run in runs.values():
        for before, after in itertools.pairwise(run.attempts):
            if before.outcome != "abandoned":
                continue
            rerun_at = after.started_at.timestamp()
            host = owner.get((run.id, before.number))
            if host is None:
                unknown += 1
                start = before.started_at.timestamp()
                kill_at = next((t for t in kill_times if t >= start - 0.05), float("-inf"))
                after_kill.append(rerun_at - kill_at)
            elif kills.get(host, float("inf")) < rerun_at:
                after_kill.append(rerun_at - kills[host])
            else:
                lapse = expiry[(run.id, fences[(run.id, before.number)])]
                after_lapse.append(rerun_at - lapse)
    return {
        "abandoned_attempts": len(after_kill) + len(after_lapse),
        "owner_unknown": unknown,
        "lapsed_not_killed": len(after_lapse),
        "max_delay_after_kill": round(max(after_kill, default=0.0), 3),
        "mean_delay_after_kill": round(sum(after_kill) / max(len(after_kill), 1), 3),
        "max_delay_after_lapse": round(max(after_lapse, default=0.0), 3),
    }


def completions(events: list[dict[str, Any]]) -> Counter[str]:
    """How many times a host's write of SUCCEEDED was accepted, per run."""
    return Counter(
        e["run"]
        for e in events
        if e["ev"] == "write" and e["call"] == "update_run"
        and e["to"] == "SUCCEEDED" and e["result"] == "ok"
    )  # fmt: skip


@pytest.mark.slow
def test_sigkilled_runtimes_lose_no_run_and_complete_none_twice(
    store_url: str, hosts: Hosts
) -> None:
    ids = seed(store_url, "task", RUNS)
    started = time.monotonic()
    kills = _supervise(store_url, hosts, random.Random(RUNS))
    drained_in = time.monotonic() - started
    hosts.wait_all(timeout=20)
    hosts.check_exits()

    runs = all_runs(store_url, "task")
    events = journal(hosts.out)
    killed = dict(kills)

    # No run lost: every run is there, terminal, and succeeded.
    assert set(runs) == set(ids)
    assert Counter(r.status for r in runs.values()) == {Status.SUCCEEDED: RUNS}
    # No run completed twice: by the store's history, and by the writes it accepted
    # (as the hosts journalled them: a host killed between the commit and its
    # journal line leaves one out, so the journals list at most the completions).
    for run in runs.values():
        check_history(run)
        assert [a.outcome for a in run.attempts[:-1]] == ["abandoned"] * (run.attempt - 1)
        assert run.attempts[-1].outcome == "succeeded"
    completed = completions(events)
    assert set(completed) <= set(ids)
    assert set(completed.values()) == {1}
    owner = owners(events)
    unjournalled = [owner.get((r, runs[r].attempt), "?") for r in ids if r not in completed]
    assert all(host in killed or host == "?" for host in unjournalled), unjournalled

    # Executions: the function ran each attempt at most once, and ran again only
    # what a killed host held (at most its concurrency, begun before its death).
    execs = [e for e in events if e["ev"] == "exec"]
    assert max(Counter((e["run"], e["attempt"]) for e in execs).values()) == 1
    assert {e["run"] for e in execs} == set(ids)
    repeated = [e for e in execs if e["attempt"] != runs[e["run"]].attempt]
    by_killed = [e for e in repeated if killed.get(e["w"], float("inf")) > e["t"]]
    held = Counter(e["w"] for e in by_killed)
    assert all(n <= CONCURRENCY for n in held.values()), held
    # What a killed host did not explain, a lapsed lease must (a starved host).
    figures = reclaim_delays(runs, events, killed)
    assert len(repeated) - len(by_killed) <= figures["lapsed_not_killed"], repeated

    # The survivors rode the kills without a store error or a failed service.
    errors = [line for h in hosts.procs for line in hosts.log(h) if line["level"] == "error"]
    assert errors == []

    figures.update(
        store=kind(store_url),
        runs=RUNS,
        kills=len(kills),
        drained_in=round(drained_in, 1),
        executions=len(execs),
        re_executions=len(repeated),
        returned_then_killed=sum(e["ev"] == "returned" for e in events) - RUNS,
        bound=round(BOUND, 2),
    )
    print(f"\nruntime crash figures: {figures}")
    assert len(kills) >= 3, "too few kills to prove anything: the drain was too fast"
    assert figures["abandoned_attempts"] >= 1, "no kill hit a host holding a run"
    assert figures["max_delay_after_kill"] <= BOUND, figures
    assert figures["max_delay_after_lapse"] <= REAP_INTERVAL + 1.0, figures


POISON_ATTEMPTS = 3


@pytest.mark.slow
def test_a_poison_run_fails_as_abandoned_after_its_budget(store_url: str, hosts: Hosts) -> None:
    """A run that SIGKILLs its host at every attempt: FAILED, kind abandoned, after
    exactly its budget of attempts; the other runs are untouched."""
    [poison, *others] = seed(
        store_url, "task", 21, params=lambda i: {"i": i, "poison": True} if i == 0 else {"i": i}
    )
    options = (
        "--lease", str(LEASE), "--concurrency", "1", "--poll", "0.25", "--work-min", "150",
        "--work-max", "250", "--max-attempts", str(POISON_ATTEMPTS), "--until-drained",
    )  # fmt: skip
    count = itertools.count()
    deaths: list[tuple[str, float]] = []

    def start() -> None:
        i = next(count)
        hosts.start(store_url, f"h{i}", "task", "--backend", ("asyncio", "trio")[i % 2], *options)

    async def main(store: Store) -> None:
        # One host more than the run can kill: one that was up from the start is
        # still up to reap the last death (a host started after a death may
        # take seconds to be up on a busy machine).
        for _ in range(POISON_ATTEMPTS + 1):
            start()
        deadline = time.monotonic() + 40
        while sum((await _active(store)).values()):
            assert time.monotonic() < deadline, "the runs did not end in 40 s"
            for host, proc in list(hosts.procs.items()):
                if proc.poll() is not None and host not in hosts.kills:
                    assert proc.returncode == -9, hosts.stderr(host)
                    hosts.kills[host] = time.time()  # killed by its own run
                    deaths.append((host, hosts.kills[host]))
                    start()
            await anyio.sleep(0.05)

    with_store(store_url, main)
    hosts.wait_all(timeout=20)
    hosts.check_exits()

    runs = all_runs(store_url, "task")
    run = runs[poison]
    assert run.status is Status.FAILED
    assert run.error is not None
    assert run.error.kind == "abandoned"
    assert [a.outcome for a in run.attempts] == ["abandoned"] * POISON_ATTEMPTS
    events = journal(hosts.out)
    # Executed once per attempt, each time in another host that it killed; no more.
    execs = sorted((e for e in events if e["ev"] == "exec" and e["run"] == poison),
                   key=lambda e: e["t"])  # fmt: skip
    assert [e["attempt"] for e in execs] == list(range(1, POISON_ATTEMPTS + 1))
    assert len(deaths) == POISON_ATTEMPTS
    assert [e["w"] for e in execs] == [h for h, _ in deaths]
    for other in others:
        assert runs[other].status is Status.SUCCEEDED
        assert [a.outcome for a in runs[other].attempts] == ["succeeded"]
    figures = reclaim_delays(runs, events, dict(deaths))
    # The last death was recognised (and the run failed) as soon as a lapse is.
    assert run.ended_at is not None
    failed_after = run.ended_at.timestamp() - deaths[-1][1]
    print(
        f"\npoison figures: store={kind(store_url)} deaths={len(deaths)} "
        f"failed {failed_after:.2f} s after the last {figures}"
    )
    assert figures["max_delay_after_kill"] <= BOUND, figures
    assert failed_after <= BOUND
