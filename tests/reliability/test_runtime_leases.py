"""Leases: a live runtime keeps its long runs; a frozen one loses them and is refused.

* Runs that work five times longer than their lease, in two live hosts, are kept
  by the runtimes' heartbeats alone: never reaped, one attempt each.
* Two hosts are frozen with SIGSTOP past their lease while they run an attempt
  each: one whose function is still working when it wakes, one whose function has
  returned by then. A third host reaps both runs and claims them again. Resumed
  with SIGCONT while the third host holds the runs, the frozen hosts' every write
  (a heartbeat, and the outcome of the one that returned) is refused with
  `LeaseLost`, and none leaves a trace: the runs end SUCCEEDED once, by the third.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from harness import Hosts, all_runs, check_history, journal, kind, seed, wait_for, with_store
from test_runtime_crash import completions, owners

from runlife import Status

LEASE = 1.0
WORK = 5.0
"""Seconds a long run works: five leases (the ratio of a 10 s run on a 2 s lease)."""


@pytest.mark.slow
def test_heartbeats_keep_runs_that_outlive_their_lease(store_url: str, hosts: Hosts) -> None:
    ids = seed(store_url, "task", 4, params=lambda i: {"i": i, "ms": WORK * 1000})
    options = ("--lease", str(LEASE), "--concurrency", "2", "--poll", "0.25", "--until-drained")
    hosts.start(store_url, "h0", "task", *options)
    hosts.start(store_url, "h1", "task", "--backend", "trio", *options)
    hosts.wait_all(timeout=25)
    hosts.check_exits()

    runs = all_runs(store_url, "task")
    events = journal(hosts.out)
    for run in runs.values():
        check_history(run)
        [attempt] = run.attempts
        assert attempt.outcome == "succeeded"
        assert attempt.duration is not None
        assert attempt.duration.total_seconds() >= WORK
    assert Counter(e["run"] for e in events if e["ev"] == "exec") == dict.fromkeys(ids, 1)
    beats = [e for e in events if e["ev"] == "write" and e["call"] == "heartbeat"]
    # Every heartbeat was accepted while its run was held. (The runtime renews a
    # lease until the outcome is written: a renewal that lands just after it is
    # refused, harmlessly.)
    refused = [e for e in beats if e["result"] != "ok"]
    for e in refused:
        ended = runs[e["run"]].ended_at
        assert e["result"] == "LeaseLost", e
        assert ended is not None
        assert ended.timestamp() <= e["t"], e
    per_run = Counter(e["run"] for e in beats if e["result"] == "ok")
    # One renewal every third of the lease: about 15 in 5 s; at least a lease's
    # worth of them must have been needed (5), or heartbeats were not exercised.
    assert min(per_run.values()) >= WORK / LEASE, per_run
    reaped = [line for h in hosts.procs for line in hosts.log(h) if "reaped" in line["event"]]
    assert reaped == []
    print(
        f"\nheartbeat figures: store={kind(store_url)} renewals per run {sorted(per_run.values())}"
    )


def _writes_after(events: list[dict[str, Any]], host: str, since: float) -> list[dict[str, Any]]:
    return [e for e in events if e["ev"] == "write" and e["w"] == host and e["t"] >= since]


@pytest.mark.slow
def test_a_runtime_stopped_past_its_lease_has_every_write_refused(
    store_url: str, hosts: Hosts, tmp_path: Path
) -> None:
    returned_file, b_finish = tmp_path / "a2-may-return", tmp_path / "b-may-return"
    fast = ("--lease", str(LEASE), "--poll", "0.25", "--concurrency", "1", "--until-drained")
    # A1's function is still working when it wakes; A2's has returned by then.
    hosts.start(store_url, "A1", "task", "--work-min", "60000", "--work-max", "60000", *fast)
    hosts.start(store_url, "A2", "task", "--work-min", "0", "--work-max", "0",
                "--finish-file", str(returned_file), *fast)  # fmt: skip
    wait_for(lambda: hosts.ready("A1") and hosts.ready("A2"), 30, "A1 and A2 to start")
    ids = seed(store_url, "task", 2)

    def executing(*names: str, attempt: int) -> bool:
        found = {e["w"] for e in journal(hosts.out) if e["ev"] == "exec"
                 and e["attempt"] == attempt}  # fmt: skip
        return set(names) <= found

    wait_for(lambda: executing("A1", "A2", attempt=1), 30, "A1 and A2 to run an attempt each")
    hosts.start(store_url, "B", "task", "--concurrency", "2", "--finish-file", str(b_finish),
                *fast[:4], "--until-drained")  # fmt: skip
    wait_for(lambda: hosts.ready("B"), 30, "B to start")
    hosts.signal("A1", signal.SIGSTOP)
    hosts.signal("A2", signal.SIGSTOP)
    stopped_at = time.time()

    # B reaps both runs once their leases lapse, and runs them again (it holds
    # them until told to return).
    wait_for(lambda: executing("B", attempt=2), 30, "B to re-run the runs")
    wait_for(lambda: len([e for e in journal(hosts.out, ["B"]) if e["ev"] == "exec"]) == 2,
             30, "B to re-run both runs")  # fmt: skip
    b_claims = {e["run"]: e for e in journal(hosts.out, ["B"]) if e["ev"] == "claim"}
    reclaimed_after = max(e["t"] for e in b_claims.values()) - stopped_at
    held_by_b = (
        with_store(store_url, lambda s: s.get_run(ids[0])),
        with_store(store_url, lambda s: s.get_run(ids[1])),
    )

    returned_file.touch()
    resumed_at = time.time()
    hosts.signal("A1", signal.SIGCONT)
    hosts.signal("A2", signal.SIGCONT)

    def refused(host: str, *calls: str) -> bool:
        done = {e["call"] for e in _writes_after(journal(hosts.out), host, resumed_at)}
        return set(calls) <= done

    # A2's function returns as it wakes: its first write may be its outcome (it
    # needs no read first), and then it has no lease left to renew.
    wait_for(lambda: refused("A1", "heartbeat")
             and (refused("A2", "heartbeat") or refused("A2", "update_run")), 30,
             "A1 and A2 to try their writes")  # fmt: skip
    events = journal(hosts.out)
    a2_returned = any(e["ev"] == "returned" and e["w"] == "A2" for e in events)
    if a2_returned:
        wait_for(lambda: refused("A2", "update_run"), 30, "A2 to write its outcome")
    events = journal(hosts.out)
    # B still holds both runs, as it did before A1 and A2 woke: their writes were
    # refused by the fence, and changed nothing.
    for before in held_by_b:
        now = with_store(store_url, lambda s, r=before.id: s.get_run(r))
        assert now.status is Status.RUNNING
        assert (now.version, now.history, now.attempts) == (
            before.version, before.history, before.attempts,
        )  # fmt: skip
    stale = {h: _writes_after(events, h, resumed_at) for h in ("A1", "A2")}
    assert {e["result"] for h in stale for e in stale[h]} == {"LeaseLost"}, stale
    # A1's attempt was stopped (its lease was lost) before its function returned.
    assert not any(e["ev"] == "returned" and e["w"] == "A1" for e in events)
    if a2_returned:
        # Its outcome, refused; a heartbeat too if its round came before that
        # refusal let the run go (the two are due at once when it wakes).
        assert "update_run" in {e["call"] for e in stale["A2"]}
        assert {e["call"] for e in stale["A2"]} <= {"heartbeat", "update_run"}

    b_finish.touch()
    hosts.wait_all(timeout=30)
    hosts.check_exits()
    runs = all_runs(store_url, "task")
    events = journal(hosts.out)
    owner = owners(events)
    for run in runs.values():
        assert run.status is Status.SUCCEEDED
        check_history(run)
        assert [a.outcome for a in run.attempts] == ["abandoned", "succeeded"]
        assert owner[(run.id, 2)] == "B"
        assert b_claims[run.id]["fence"] > next(
            e["fence"] for e in events if e["ev"] == "claim" and e["run"] == run.id
            and e["attempt"] == 1
        )  # fmt: skip
    assert completions(events) == dict.fromkeys(ids, 1)
    assert all(e["w"] == "B" for e in events if e["ev"] == "write" and e.get("to") == "SUCCEEDED"
               and e["result"] == "ok")  # fmt: skip
    lost = [line["event"] for line in hosts.log("A1") if line["level"] == "warning"]
    assert any(event.startswith("lease lost") for event in lost), lost
    print(
        f"\nstale runtime figures: store={kind(store_url)} re-claimed {reclaimed_after:.2f} s "
        f"after SIGSTOP (lease {LEASE} s); A2's function returned before its heartbeat: "
        f"{a2_returned}; refused writes {sum(len(v) for v in stale.values())}"
    )
    assert reclaimed_after <= LEASE + LEASE / 3 + 1.0
