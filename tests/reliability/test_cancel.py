"""Cancel across processes: one process holds a long run, another cancels it.

Both are real processes (tests/reliability/runtime_worker.py), each a whole
`AsyncRuntime` over the same SQLite file or PostgreSQL database. The holder must
see the stored request within one heartbeat round, cancel its attempt through the
attempt's cancel scope (the job's ``finally`` runs in the holder), record the run
CANCELLED with the canceller's reason and name, and exit by itself.
"""

from __future__ import annotations

from typing import Any

from harness import RUNTIME_WORKER, Workers, journal, wait_for, with_store

from runlife import Status
from runlife.abc import Store

LEASE = 1.5
"""The holder's lease: it renews it, and reads cancel requests, every 0.5 s."""


def _event(workers: Workers, worker_id: str, name: str) -> dict[str, Any] | None:
    found = [e for e in journal(workers.out, [worker_id]) if e["ev"] == name]
    return found[0] if found else None


def test_a_run_held_by_another_process_is_cancelled_within_one_heartbeat(
    store_url: str, workers: Workers
) -> None:
    options = ("--lease", str(LEASE))
    workers.start(store_url, "holder", "long", "--mode", "hold", *options, script=RUNTIME_WORKER)
    wait_for(lambda: _event(workers, "holder", "started") is not None, 30, "the long run to start")
    started = _event(workers, "holder", "started")
    assert started is not None
    run_id = started["run"]

    workers.start(
        store_url,
        "canceller",
        "long",
        "--mode",
        "cancel",
        "--run",
        run_id,
        "--reason",
        "change window closed",
        "--by",
        "ops:ana",
        "--backend",
        "trio",
        *options,
        script=RUNTIME_WORKER,
    )
    assert workers.wait_all(60) == {"holder": 0, "canceller": 0}
    workers.check_exits()

    cancelled = _event(workers, "canceller", "cancelled")
    assert cancelled is not None
    assert (cancelled["run"], cancelled["status"], cancelled["message"]) == (
        run_id,
        "CANCELLED",
        "cancelled by ops:ana: change window closed",
    )
    # A heartbeat round is LEASE / 3; the rest is slack for a loaded machine. The
    # holder's lease never lapsed: no reaper had a part in it.
    assert cancelled["took"] < LEASE, cancelled
    stopped = _event(workers, "holder", "stopped")
    exited = _event(workers, "holder", "exit")
    assert stopped is not None  # the attempt was cut in the holder process
    assert stopped["run"] == run_id
    assert exited is not None
    assert exited["status"] == "CANCELLED"

    async def read(store: Store) -> Any:
        return await store.get_run(run_id)

    run = with_store(store_url, read)
    assert run.status is Status.CANCELLED
    assert run.error is not None
    assert (run.error.kind, run.error.message) == (
        "cancelled",
        "cancelled by ops:ana: change window closed",
    )
    assert [a.outcome for a in run.attempts] == ["cancelled"]
    assert run.history[-1].reason == "cancelled by ops:ana: change window closed"
