"""Helpers of the reliability tests: stores from sync code, worker processes, journals.

The tests run `worker.py` as real processes against a real SQLite file or a real
PostgreSQL database, kill them for real, and then judge the store from what it
holds (the runs' histories and attempts) and from what the workers wrote down
(their journals).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

from runlife import DEFAULT_LIFECYCLE, JobRecord, Run, RunQuery, Status
from runlife.abc import Store
from runlife.stores import open_store

T = TypeVar("T")

WORKER = Path(__file__).with_name("worker.py")
RUNTIME_WORKER = Path(__file__).with_name("runtime_worker.py")
HOST = Path(__file__).with_name("host.py")

ACTIVE = frozenset(s for s in Status if not s.is_terminal)


def kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite:") else "postgres"


def with_store(url: str, fn: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``fn(store)`` on a store opened from *url*, from synchronous test code."""

    async def main() -> T:
        async with open_store(url) as store:
            return await fn(store)

    return anyio.run(main)


def seed(
    url: str,
    job: str,
    n: int,
    *,
    labels: Callable[[int], dict[str, str]] | None = None,
    record: JobRecord | None = None,
    params: Callable[[int], dict[str, Any]] | None = None,
) -> list[str]:
    """Create the job's record and *n* QUEUED runs of it (params ``{"i": i}`` unless
    given); return their ids in order."""

    async def main(store: Store) -> list[str]:
        await store.save_job(record or JobRecord(name=job))
        now = await store.now()
        ids = []
        for i in range(n):
            run = Run.create(
                job=job,
                at=now,
                initial=Status.QUEUED,
                labels=labels(i) if labels else None,
                params=params(i) if params else {"i": i},
            )
            ids.append((await store.create_run(run)).id)
        return ids

    return with_store(url, main)


def all_runs(url: str, job: str) -> dict[str, Run]:
    """Every run of *job*, by id, read page by page."""

    async def main(store: Store) -> dict[str, Run]:
        runs: dict[str, Run] = {}
        cursor = None
        while True:
            page = await store.list_runs(RunQuery(job=job, limit=200, cursor=cursor))
            runs.update((r.id, r) for r in page.runs)
            cursor = page.next_cursor
            if cursor is None:
                return runs

    return with_store(url, main)


def active_count(url: str, job: str) -> int:
    """How many runs of *job* are not terminal yet."""

    async def main(store: Store) -> int:
        counts = await store.count_runs(RunQuery(job=job, status=ACTIVE))
        return sum(counts.values())

    return with_store(url, main)


def check_history(run: Run) -> None:
    """The run's history replays to its state, and it succeeded exactly once."""
    assert DEFAULT_LIFECYCLE.replay(run.history) == run.state, run
    succeeded = [t for t in run.history if t.to == Status.SUCCEEDED]
    assert len(succeeded) == 1, f"run {run.id} entered SUCCEEDED {len(succeeded)} times"


class Workers:
    """The worker processes of one test; all are killed and reaped at its end."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.kills: dict[str, float] = {}

    def start(
        self, url: str, worker_id: str, job: str, *options: str, script: Path = WORKER, **env: str
    ) -> None:
        """Start *script* (``worker.py`` unless given) as worker *worker_id*."""
        argv = [sys.executable, str(script), "--url", url, "--worker-id", worker_id]
        argv += ["--job", job, "--out", str(self.out), *options]
        # stderr to a file: a pipe nobody reads could fill up and stall the worker.
        stderr = (self.out / f"{worker_id}.stderr").open("wb")
        with stderr:
            self.procs[worker_id] = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, **env}
            )

    def kill(self, worker_id: str) -> float:
        """SIGKILL the worker; return when (epoch seconds) it was killed."""
        proc = self.procs[worker_id]
        at = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.kills[worker_id] = at
        return at

    def signal(self, worker_id: str, sig: signal.Signals) -> None:
        self.procs[worker_id].send_signal(sig)

    def alive(self) -> list[str]:
        return [w for w, p in self.procs.items() if p.poll() is None]

    def wait_all(self, timeout: float) -> dict[str, int]:
        """Wait for every worker to exit by itself; fail if one does not in time."""
        deadline = time.monotonic() + timeout
        for worker_id, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"worker {worker_id} did not exit within {timeout} s")
        return {w: p.returncode for w, p in self.procs.items()}

    def stderr(self, worker_id: str) -> str:
        return (self.out / f"{worker_id}.stderr").read_text(errors="replace")

    def check_exits(self) -> None:
        """Every worker that was not killed exited 0 (its stderr says why if not)."""
        for worker_id, proc in self.procs.items():
            if worker_id not in self.kills:
                assert proc.returncode == 0, f"{worker_id}: {self.stderr(worker_id)}"

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                # SIGCONT first: a stopped process would not die before it is resumed
                # on some systems, and would hold its database connections.
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            proc.wait()


class Hosts(Workers):
    """The runtime hosts (``host.py``) of one test: all killed and reaped at its end."""

    def start(self, url: str, worker_id: str, job: str = "task", *options: str, **env: str) -> None:
        argv = [sys.executable, str(HOST), "--url", url, "--host-id", worker_id]
        argv += ["--job", job, "--out", str(self.out), *options]
        stderr = (self.out / f"{worker_id}.stderr").open("wb")
        with stderr:
            self.procs[worker_id] = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, **env}
            )

    def log(self, host: str) -> list[dict[str, Any]]:
        """The runtime's structlog lines of *host* (a cut last line skipped)."""
        path = self.out / f"{host}.log"
        if not path.exists():
            return []
        lines = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return lines

    def ready(self, host: str) -> bool:
        """Whether *host* has entered its runtime (fails if it exited before)."""
        if any(e["ev"] == "ready" for e in journal(self.out, [host])):
            return True
        if self.procs[host].poll() is not None:
            pytest.fail(f"host {host} exited early: {self.stderr(host)}")
        return False


def journal(out: Path, worker_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Every event the workers wrote, in file order per worker."""
    events: list[dict[str, Any]] = []
    paths = (
        sorted(out.glob("*.jsonl"))
        if worker_ids is None
        else [out / f"{w}.jsonl" for w in worker_ids]
    )
    for path in paths:
        if not path.exists():
            continue  # a worker that has not started writing yet
        for line in path.read_text(encoding="utf-8").splitlines():
            # A SIGKILL can cut the last line short (not flushed whole): skip it.
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll *predicate* until it holds; fail naming *what* after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
