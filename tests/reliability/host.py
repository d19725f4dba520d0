"""A runtime host the reliability tests run as real processes (and kill, stop and starve).

It is an application the size of a test: one `runlife.AsyncRuntime` over the store
at ``--url``, running one job, ``--job`` (``task`` by default), whose function
writes down every execution where no store can lose or hide it. Each host keeps one
journal, ``<out>/<host id>.jsonl``, one JSON line per event, line-buffered (a
line reaches the kernel when written, so a ``SIGKILL`` loses only lines not yet
written):

``exec``      the job's function began an attempt (run, attempt): the count of
              these per run is how many times the run was *executed*, whatever the
              store says;
``returned``  the function is about to return (it did all of its work);
``claim``     the store gave this host a run (run, attempt, fence, lease expiry);
``write``     the outcome of each write that names a claim (``heartbeat`` and
              ``update_run``): ``ok``, or the error's type (``LeaseLost``, ...);
``ready``, ``exit``  the runtime was entered, and left.

The runtime's own log (structlog, JSON lines) goes to ``<out>/<host id>.log``.

The job, ``task(ctx, i, ms=None, poison=False)``, sleeps ``ms`` milliseconds (a
random ``--work-min`` .. ``--work-max`` when None), then waits for ``--finish-file``
if one is given, and returns ``{"i": i}``; a
poison run SIGKILLs its own process at every attempt. Its retry policy is
``Retry(max_attempts=--max-attempts, delay=0)``.

With ``--until-drained`` the host leaves the runtime (gracefully) once the job has
no active run left; otherwise at ``SIGTERM``.

Run as ``python tests/reliability/host.py --url URL --host-id ID --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TextIO

import anyio
import structlog

import runlife
from runlife import Claim, ItemCounts, Lifecycle, Run, RunQuery, Status
from runlife.abc import Store
from runlife.stores import SQLiteStore, open_store

ACTIVE = frozenset(s for s in Status if not s.is_terminal)


class Journal:
    """One JSON line per event, each written through to the kernel at once."""

    def __init__(self, path: str, host: str) -> None:
        self._file: TextIO = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        self._host = host

    def write(self, event: str, **fields: Any) -> None:
        fields = {k: v.timestamp() if isinstance(v, datetime) else v for k, v in fields.items()}
        self._file.write(json.dumps({"ev": event, "w": self._host, "t": time.time(), **fields}))
        self._file.write("\n")

    def close(self) -> None:
        self._file.close()


class Recording:
    """The host's store, journalling the claims it hands out and the outcome of
    every write that names a claim. Everything else goes to the store as it is."""

    def __init__(self, store: Store, journal: Journal) -> None:
        self._store = store
        self._journal = journal

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _claimed(self, claim: Claim) -> None:
        run = claim.run
        self._journal.write(
            "claim", run=run.id, attempt=run.attempt, fence=claim.fence, exp=claim.expires_at
        )

    async def claim(
        self, worker: str, jobs: Mapping[str, Lifecycle], *, limit: int, lease: float
    ) -> tuple[Claim, ...]:
        claims = await self._store.claim(worker, jobs, limit=limit, lease=lease)
        for claim in claims:
            self._claimed(claim)
        return claims

    async def claim_run(
        self, run_id: str, worker: str, lifecycle: Lifecycle, *, lease: float
    ) -> Claim:
        claim = await self._store.claim_run(run_id, worker, lifecycle, lease=lease)
        self._claimed(claim)
        return claim

    async def heartbeat(self, claim: Claim, *, lease: float) -> datetime:
        fields = {"call": "heartbeat", "run": claim.run_id, "fence": claim.fence}
        try:
            expiry = await self._store.heartbeat(claim, lease=lease)
        except Exception as exc:
            self._journal.write("write", result=type(exc).__name__, **fields)
            raise
        self._journal.write("write", result="ok", exp=expiry, **fields)
        return expiry

    async def update_run(
        self,
        run: Run,
        *,
        expected_version: int,
        claim: Claim | None = None,
        only_if_lapsed: bool = False,
        expected_progress: ItemCounts | None = None,
    ) -> Run:
        call = self._store.update_run(
            run,
            expected_version=expected_version,
            claim=claim,
            only_if_lapsed=only_if_lapsed,
            expected_progress=expected_progress,
        )
        if claim is None:
            return await call
        fields = {"call": "update_run", "run": run.id, "fence": claim.fence, "to": run.status}
        try:
            stored = await call
        except Exception as exc:
            self._journal.write("write", result=type(exc).__name__, **fields)
            raise
        self._journal.write("write", result="ok", **fields)
        return stored


def make_job(args: argparse.Namespace, journal: Journal) -> runlife.Job:
    rng = random.Random(f"{args.host_id}-{os.getpid()}")

    async def task(
        ctx: runlife.RunContext, i: int, ms: float | None = None, poison: bool = False
    ) -> dict[str, int]:
        journal.write("exec", run=ctx.run_id, attempt=ctx.attempt, i=i)
        if poison:
            os.kill(os.getpid(), signal.SIGKILL)
        work = ms if ms is not None else rng.uniform(args.work_min, args.work_max)
        await anyio.sleep(work / 1000)
        while args.finish_file and not os.path.exists(args.finish_file):
            await anyio.sleep(0.02)
        journal.write("returned", run=ctx.run_id, attempt=ctx.attempt)
        return {"i": i}

    retry = runlife.Retry(max_attempts=args.max_attempts, delay=0)
    return runlife.job(name=args.job, retry=retry)(task)


def configure_logging(path: str) -> TextIO:
    """The runtime's structlog lines, as JSON with an epoch timestamp, to *path*."""
    out: TextIO = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt=None),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(default=str),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=out),
    )
    return out


def open_host_store(args: argparse.Namespace) -> Store:
    if args.lock_timeout is not None:
        # A store that gives up on a locked file after this long (an outage the
        # runtime must ride out) rather than after SQLite's default minute.
        path = args.url.removeprefix("sqlite:///")
        return SQLiteStore(path, lock_timeout=args.lock_timeout)
    return open_store(args.url)


async def until_drained(store: Store, job: str, idle: float) -> None:
    """Return once *job* has had no active run for *idle* seconds."""
    quiet_since: float | None = None
    while True:
        try:
            counts = await store.count_runs(RunQuery(job=job, status=ACTIVE))
            active = sum(counts.values())
        except runlife.StoreError:
            active = -1  # the store is down: not drained
        now = time.monotonic()
        if active == 0:
            quiet_since = quiet_since or now
            if now - quiet_since >= idle:
                return
        else:
            quiet_since = None
        await anyio.sleep(0.1)


async def until_sigterm() -> None:
    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def amain(args: argparse.Namespace) -> int:
    journal = Journal(os.path.join(args.out, f"{args.host_id}.jsonl"), args.host_id)
    log = configure_logging(os.path.join(args.out, f"{args.host_id}.log"))
    journal.write("start", pid=os.getpid())
    try:
        async with open_host_store(args) as store:
            runtime = runlife.AsyncRuntime(
                jobs=[make_job(args, journal)],
                store=Recording(store, journal),  # type: ignore[arg-type]
                worker_id=args.host_id,
                lease=args.lease,
                concurrency=args.concurrency,
                poll=args.poll,
                grace=args.grace,
            )
            async with runtime:
                journal.write("ready")
                if args.until_drained:
                    await until_drained(store, args.job, args.idle)
                else:
                    await until_sigterm()
            journal.write("exit")
        return 0
    finally:
        journal.close()
        log.close()


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--host-id", required=True, help="also the runtime's worker id")
    p.add_argument("--out", required=True, help="directory of the journals and logs")
    p.add_argument("--job", default="task")
    p.add_argument("--lease", type=float, default=1.0, help="seconds")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--poll", type=float, default=0.25, help="seconds")
    p.add_argument("--grace", type=float, default=5.0, help="seconds")
    p.add_argument("--max-attempts", type=int, default=5)
    p.add_argument("--work-min", type=float, default=30, help="ms")
    p.add_argument("--work-max", type=float, default=70, help="ms")
    p.add_argument("--finish-file", default="", help="every run waits for this file to return")
    p.add_argument("--until-drained", action="store_true")
    p.add_argument("--idle", type=float, default=0.5, help="seconds drained before leaving")
    p.add_argument("--lock-timeout", type=float, default=None, help="SQLite only, seconds")
    p.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    return anyio.run(amain, args, backend=args.backend)


if __name__ == "__main__":
    sys.exit(main())
