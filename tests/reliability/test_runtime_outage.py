"""Store outages: the database goes away mid-run, comes back, and every run ends right.

* PostgreSQL: two runtime hosts drain a queue on a server of this test's own; the
  server is stopped (``pg_ctl stop -m fast``: every session is ended) for 10 s
  while runs are in flight, then started again on the same port and data
  directory.
* SQLite: another process holds the file's write lock for 10 s (a backup tool, a
  migration); the hosts' stores give up on a write after 2 s (``lock_timeout``),
  so the runtime sees the lock as an outage.

Each call that failed must be logged by the host's `StoreGuard` when the outage
starts and when it ends, retried with a doubling delay (a 10 s outage costs a
handful of tries per call, not a hundred), and the hosts must carry on by
themselves: every run SUCCEEDED once, none lost, none completed twice, all hosts
exiting cleanly.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from harness import Hosts, all_runs, check_history, journal, seed, wait_for
from test_runtime_crash import completions

from pgserver import Server, ServerError, stoppable_server
from runlife import Status

RUNS = 60
OUTAGE = 10.0
LEASE = 2.0
OPTIONS = (
    "--lease", str(LEASE), "--concurrency", "4", "--poll", "0.25",
    "--work-min", "150", "--work-max", "300", "--until-drained",
)  # fmt: skip
FIRST_DELAY, MAX_TRIES = 0.1, 10
"""The guard's first retry delay; a call that rode out the whole outage with a
doubling delay tries about log2(OUTAGE / FIRST_DELAY) ~ 7 times at most (fewer
when the store itself waits for its database during a try)."""


@pytest.fixture
def server() -> Iterator[Server]:
    """A PostgreSQL server of this test's own (it is stopped and started again)."""
    try:
        with stoppable_server(max_connections=50) as server:
            yield server
    except ServerError as exc:
        pytest.fail(f"cannot start a throwaway PostgreSQL server:\n{exc}", pytrace=False)


def _done(url: str) -> int:
    return sum(r.status is Status.SUCCEEDED for r in all_runs(url, "task").values())


def _outage_lines(hosts: Hosts) -> dict[str, list[dict[str, Any]]]:
    return {
        host: [line for line in hosts.log(host) if line.get("event", "").startswith("store ")]
        for host in hosts.procs
    }


def _drain_through_an_outage(
    url: str, hosts: Hosts, stop: Any, start: Any, *extra: str
) -> dict[str, Any]:
    """Start two hosts, take the store away for OUTAGE s once runs are in flight,
    bring it back, wait for the drain, and check what every outage test checks."""
    ids = seed(url, "task", RUNS)
    hosts.start(url, "h0", "task", *OPTIONS, *extra)
    hosts.start(url, "h1", "task", "--backend", "trio", *OPTIONS, *extra)
    # Some runs done, others in flight: the outage hits the hosts mid-work.
    wait_for(lambda: _done(url) >= 10, 30, "the hosts to finish 10 runs")
    stopped_at = time.time()
    stop()
    done_before = Counter(e["ev"] for e in journal(hosts.out))["returned"]
    time.sleep(OUTAGE)
    start()
    restarted_at = time.time()
    hosts.wait_all(timeout=30)
    drained_at = time.time()
    hosts.check_exits()

    runs = all_runs(url, "task")
    events = journal(hosts.out)
    assert set(runs) == set(ids)
    assert Counter(r.status for r in runs.values()) == {Status.SUCCEEDED: RUNS}
    for run in runs.values():
        check_history(run)
    assert completions(events) == dict.fromkeys(ids, 1)
    # Work went on during the outage: functions returned while the store was away.
    returned_during = [
        e for e in events if e["ev"] == "returned" and stopped_at < e["t"] < restarted_at
    ]
    assert returned_during, "no function returned during the outage: it hit no run in flight"

    lines = _outage_lines(hosts)
    # The calls that failed were logged. (A call begun during the outage may
    # instead wait inside the store, as PostgresStore waits for a pooled
    # connection: such a host may see no failure at all, and log none.)
    assert any(lines.values()), "no host logged the outage"
    for found in lines.values():
        down = [line for line in found if line["event"] == "store unavailable; retrying"]
        up = [line for line in found if line["event"] == "store available again"]
        if not down:
            continue
        # Logged when it started (the first failure of a call, its first delay and
        # the store's error), and when it ended, after the store came back.
        assert {(line["failures"], line["retry_in"]) for line in down} == {(1, FIRST_DELAY)}
        assert all(line["error"].startswith(url.split("?")[0]) or "locked" in line["error"]
                   for line in down), down  # fmt: skip
        assert min(line["timestamp"] for line in down) >= stopped_at - 0.5
        assert min(line["timestamp"] for line in up) >= restarted_at - 0.5
        # Each call that failed came back, after a handful of tries (the delay
        # doubles; and the store itself waits for the database a while per try),
        # never one every tenth of a second.
        assert {line["call"] for line in up} == {line["call"] for line in down}
        assert max(line["failures"] for line in up) <= MAX_TRIES, up
    recovered_in = (
        max(
            min(line["timestamp"] for line in found if line["event"] == "store available again")
            for found in lines.values()
            if found
        )
        - restarted_at
    )
    abandoned = sum(a.outcome == "abandoned" for r in runs.values() for a in r.attempts)
    return {
        "runs": RUNS,
        "hosts_that_saw_it": sum(bool(found) for found in lines.values()),
        "done_before_outage": done_before,
        "returned_during_outage": len(returned_during),
        "recovered_in": round(recovered_in, 2),
        "drained_after_restart": round(drained_at - restarted_at, 2),
        "attempts_abandoned": abandoned,
        "tries_per_call_max": max(
            line["failures"]
            for found in lines.values()
            for line in found
            if line["event"] == "store available again"
        ),
    }


@pytest.mark.slow
@pytest.mark.postgres
def test_a_postgres_server_stopped_for_10_s_is_ridden_out(server: Server, hosts: Hosts) -> None:
    figures = _drain_through_an_outage(server.dsn, hosts, server.stop, server.start)
    print(f"\npostgres outage figures: {figures}")
    # The store's connection pool reconnects with its own backoff (1, 2, 4, 8 s):
    # its next attempt after a 10 s outage comes up to ~6 s after the server is
    # back; the guard's next try follows at once (it waits in the pool).
    assert figures["recovered_in"] <= 8.0, figures


@pytest.mark.slow
def test_a_sqlite_file_locked_for_10_s_is_ridden_out(tmp_path: Any, hosts: Hosts) -> None:
    path = tmp_path / "runs.db"
    url = f"sqlite:///{path}"
    locker: list[subprocess.Popen[str]] = []
    script = (
        "import sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('BEGIN IMMEDIATE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.readline()\n"
        "conn.execute('ROLLBACK')\n"
    )

    def lock() -> None:
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        locker.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline() == "locked\n"

    def unlock() -> None:
        [proc] = locker
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=10) == 0

    try:
        figures = _drain_through_an_outage(url, hosts, lock, unlock, "--lock-timeout", "2")
    finally:
        for proc in locker:
            with proc:  # closes its pipes
                proc.kill()
    print(f"\nsqlite outage figures: {figures}")
    # A write waits up to its lock_timeout (2 s) before it fails, then the guard
    # waits a delay of up to 6.4 s: within that of the unlock, every call is back.
    assert figures["recovered_in"] <= 2.0 + 6.4 + 1.0, figures
