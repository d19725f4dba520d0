"""The minimal worker the reliability tests run as real processes (and kill).

It drives a store through the `runlife.abc.Store` port only, the way a runtime
would, so that the tests prove the *store's* guarantees with real processes, real
kills and real clocks:

* a claim loop: ``claim(worker, {job: DEFAULT_LIFECYCLE}, limit=k, lease=L)`` while
  it holds fewer than ``--slots`` runs; each claimed run is "worked" for a random
  short time and completed with ``update_run(..., claim=claim)``;
* a heartbeat loop: every ``L / 3`` seconds it extends the lease of every run it holds;
* a reaper loop (every worker reaps): ``abandoned()`` runs go RUNNING -> RETRYING
  (error kind ``abandoned``, ``only_if_lapsed=True``, due at once) and due RETRYING
  runs go back to QUEUED. The second step is driven by ``due()`` rather than done
  right after the first, so that a reaper killed between the two steps leaves a run
  that any other reaper still requeues.

Every outcome is one JSON line in ``<out>/<worker id>.jsonl``, written with line
buffering: each line reaches the kernel when written, so a SIGKILL loses only a
line the process had not written yet, never one it wrote. A completion is logged
(``done``) only after ``update_run`` returned, so the files list at most the
completions that committed; the store's history is the authority for "exactly once".

Modes:

``drain``  the loop above; exits 0 once the job has no active run left.
``create`` submit keyed runs and fire cron slots that other creators submit too.
``stale``  claim one run, prove its writes work, say ``ready``, then wait for the
           file ``--resume-file`` (the test SIGSTOPs it meanwhile, past its lease)
           and retry each worker write with the old claim, logging each outcome.

Run as ``python tests/reliability/worker.py --url URL --worker-id ID --job JOB --out DIR``.
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
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import anyio
from anyio.abc import TaskGroup

from runlife import (
    DEFAULT_LIFECYCLE,
    Claim,
    ConcurrentUpdate,
    ErrorInfo,
    Item,
    LeaseLost,
    LogLine,
    Run,
    RunQuery,
    Status,
    StoreError,
    Trigger,
)
from runlife.abc import Store
from runlife.stores import open_store
from runlife.stores._failpoints import FailpointError

# Every status a run can still leave: the job is drained when none is left.
ACTIVE_STATUSES = frozenset(s for s in Status if not s.is_terminal)


class Journal:
    """One JSON line per event, each flushed to the kernel as it is written."""

    def __init__(self, path: str, worker: str) -> None:
        self._file: TextIO = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        self._worker = worker

    def write(self, event: str, **fields: Any) -> None:
        fields = {k: _plain(v) for k, v in fields.items()}
        line = json.dumps({"ev": event, "w": self._worker, "t": time.time(), **fields})
        self._file.write(line + "\n")

    def close(self) -> None:
        self._file.close()


def _plain(value: Any) -> Any:
    return value.timestamp() if isinstance(value, datetime) else value


class Worker:
    """Claims, works, heartbeats and reaps, journalling every outcome (see the module)."""

    def __init__(self, store: Store, args: argparse.Namespace, journal: Journal) -> None:
        self.store = store
        self.args = args
        self.journal = journal
        self.id: str = args.worker_id
        self.jobs = {args.job: DEFAULT_LIFECYCLE}
        self.held: dict[str, Claim] = {}
        self.rng = random.Random(f"{args.worker_id}-{os.getpid()}")
        self.drained = False

    # -- claim and work ---------------------------------------------------------

    async def claim_loop(self, tg: TaskGroup) -> None:
        args = self.args
        idle_since: float | None = None
        while True:
            free = args.slots - len(self.held)
            claims: tuple[Claim, ...] = ()
            if free > 0:
                try:
                    claims = await self.store.claim(
                        self.id, self.jobs, limit=min(free, args.limit), lease=args.lease
                    )
                except StoreError as exc:
                    # An ambiguous claim (committed, then failed) leaves a run that
                    # nobody heartbeats: the reapers recover it once its lease lapses.
                    self.crash_if_injected(exc)
                    self.journal.write("claim_error", error=repr(exc))
            for claim in claims:
                run = claim.run
                self.journal.write(
                    "claim",
                    run=run.id,
                    attempt=run.attempt,
                    fence=claim.fence,
                    exp=claim.expires_at,
                    labels=dict(run.labels),
                )
                self.held[run.id] = claim
                tg.start_soon(self.work, claim)
            if claims:
                idle_since = None
                continue
            if not self.held:
                now = time.monotonic()
                idle_since = idle_since or now
                # Checking for the end costs a query: only when idle for a while.
                if now - idle_since > args.idle_check and await self._no_active_runs():
                    self.drained = True
                    tg.cancel_scope.cancel()
                    return
            await anyio.sleep(args.poll)

    async def _no_active_runs(self) -> bool:
        try:
            counts = await self.store.count_runs(
                RunQuery(job=self.args.job, status=ACTIVE_STATUSES)
            )
        except StoreError:
            return False
        return not any(counts.values())

    async def work(self, claim: Claim) -> None:
        args = self.args
        try:
            # Long runs are picked by the run, not at random: every test run has them.
            number = claim.run.params.get("i")
            long = args.long_every > 0 and number is not None and number % args.long_every == 0
            ms = args.long_ms if long else self.rng.uniform(args.work_min, args.work_max)
            await anyio.sleep(ms / 1000)
            while args.finish_file and not os.path.exists(args.finish_file):
                await anyio.sleep(0.02)
            run = claim.run
            if run.attempt < args.fail_attempts:
                await self.fail_and_requeue(claim)
            else:
                await self.complete(claim)
        finally:
            self.held.pop(claim.run.id, None)

    async def complete(self, claim: Claim) -> None:
        run = claim.run
        done = DEFAULT_LIFECYCLE.transition(run, Status.SUCCEEDED, at=await self.store.now())
        fields = {"run": run.id, "attempt": run.attempt, "fence": claim.fence}
        self.journal.write("completing", **fields)
        for _ in range(5):
            try:
                await self.store.update_run(done, expected_version=run.version, claim=claim)
            except (LeaseLost, ConcurrentUpdate) as exc:
                self.journal.write("refused", error=type(exc).__name__, **fields)
                return
            except StoreError as exc:
                # Ambiguous: it may have committed. Read it back to decide, as a
                # runtime must (an injected after_commit failure lands here).
                self.crash_if_injected(exc)
                self.journal.write("complete_error", error=repr(exc), **fields)
                if await self._committed(done):
                    self.journal.write("done", ambiguous=True, **fields)
                    return
                continue
            self.journal.write("done", **fields)
            return
        self.journal.write("gave_up", **fields)

    def crash_if_injected(self, exc: StoreError) -> None:
        """With ``--die-on-failpoint``, SIGKILL this process when a failpoint fired.

        An ``after_commit`` failpoint then stands for a crash in the worst place: the
        write is committed, and the worker dies before it learns so.
        """
        if self.args.die_on_failpoint and isinstance(exc, FailpointError):
            self.journal.write("crash", error=repr(exc))
            os.kill(os.getpid(), signal.SIGKILL)

    async def _committed(self, wanted: Run) -> bool:
        for _ in range(20):
            try:
                stored = await self.store.get_run(wanted.id)
            except StoreError:
                await anyio.sleep(0.05)
                continue
            return stored.version >= wanted.version and stored.status is wanted.status
        return False

    async def fail_and_requeue(self, claim: Claim) -> None:
        """End this attempt as failed and put the run back in the queue (a retry)."""
        run = claim.run
        fields = {"run": run.id, "attempt": run.attempt, "fence": claim.fence}
        now = await self.store.now()
        error = ErrorInfo(kind="error", type="Planned", message="first attempt fails")
        retrying = DEFAULT_LIFECYCLE.transition(
            run, Status.RETRYING, at=now, error=error, due_at=now
        )
        try:
            stored = await self.store.update_run(
                retrying, expected_version=run.version, claim=claim
            )
        except (LeaseLost, ConcurrentUpdate) as exc:
            self.journal.write("refused", error=type(exc).__name__, **fields)
            return
        self.journal.write("failed", **fields)
        await self.requeue(stored)

    async def requeue(self, run: Run) -> None:
        queued = DEFAULT_LIFECYCLE.transition(run, Status.QUEUED, at=await self.store.now())
        try:
            await self.store.update_run(queued, expected_version=run.version)
        except ConcurrentUpdate:
            return  # another reaper requeued it first
        except StoreError as exc:
            # Left RETRYING and due: the next pass of any reaper requeues it.
            self.journal.write("requeue_error", run=run.id, error=repr(exc))
            return
        self.journal.write("requeue", run=run.id, attempt=run.attempt)

    # -- leases -----------------------------------------------------------------

    async def heartbeat_loop(self) -> None:
        while True:
            await anyio.sleep(self.args.lease / 3)
            for run_id, claim in list(self.held.items()):
                try:
                    expiry = await self.store.heartbeat(claim, lease=self.args.lease)
                except LeaseLost:
                    self.journal.write("hb_lost", run=run_id, fence=claim.fence)
                    continue
                except StoreError as exc:
                    self.journal.write("hb_error", run=run_id, error=repr(exc))
                    continue
                self.journal.write("hb", run=run_id, fence=claim.fence, exp=expiry)

    async def reaper_loop(self) -> None:
        while True:
            try:
                await self.reap()
            except StoreError as exc:
                self.journal.write("reap_error", error=repr(exc))
            await anyio.sleep(self.args.reap_interval)

    async def reap(self) -> None:
        for run in await self.store.abandoned():
            if run.job != self.args.job:
                continue
            now = await self.store.now()
            error = ErrorInfo(kind="abandoned", type="LeaseLapsed", message="lease lapsed")
            retrying = DEFAULT_LIFECYCLE.transition(
                run, Status.RETRYING, at=now, error=error, due_at=now
            )
            try:
                await self.store.update_run(
                    retrying, expected_version=run.version, only_if_lapsed=True
                )
            except ConcurrentUpdate:
                continue  # heartbeated or reaped meanwhile
            self.journal.write("reaped", run=run.id, attempt=run.attempt)
        for run in await self.store.due({Status.RETRYING}):
            if run.job == self.args.job:
                await self.requeue(run)


# -- the stale worker ---------------------------------------------------------


async def stale(store: Store, args: argparse.Namespace, journal: Journal) -> None:
    """Claim one run, then after a long stop retry every kind of worker write."""
    jobs = {args.job: DEFAULT_LIFECYCLE}
    claims: tuple[Claim, ...] = ()
    while not claims:
        claims = await store.claim(args.worker_id, jobs, limit=1, lease=args.lease)
        await anyio.sleep(0 if claims else args.poll)
    claim = claims[0]
    run = claim.run
    journal.write("claim", run=run.id, attempt=run.attempt, fence=claim.fence, exp=claim.expires_at)
    # The same writes succeed while the claim holds: the refusals later are the
    # store's judgement of the lost lease, not of a malformed write.
    results, errors = await _worker_writes(store, claim, "before")
    journal.write("ready", run=run.id, results=results, errors=errors)
    while not os.path.exists(args.resume_file):
        await anyio.sleep(0.02)
    results, errors = await _worker_writes(store, claim, "after", complete=True)
    journal.write("stale_writes", run=run.id, results=results, errors=errors)


async def _worker_writes(
    store: Store, claim: Claim, tag: str, *, complete: bool = False
) -> tuple[Mapping[str, str], Mapping[str, str]]:
    """Try each kind of worker write with *claim*: the outcome of each, and its error."""
    run = claim.run
    now = await store.now()
    writes: dict[str, Any] = {
        "heartbeat": lambda: store.heartbeat(claim, lease=1.0),
        "save_item": lambda: store.save_item(
            Item(run_id=run.id, key=f"item-{tag}", status=Status.SUCCEEDED), claim=claim
        ),
        "append_logs": lambda: store.append_logs(
            [LogLine(run_id=run.id, seq=0, at=now, message=f"log-{tag}")], claim=claim
        ),
    }
    if complete:
        done = DEFAULT_LIFECYCLE.transition(run, Status.SUCCEEDED, at=now)
        writes["update_run"] = lambda: store.update_run(
            done, expected_version=run.version, claim=claim
        )
    results: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, write in writes.items():
        try:
            await write()
        except Exception as exc:
            results[name] = type(exc).__name__
            errors[name] = repr(exc)
        else:
            results[name] = "ok"
    return results, errors


# -- the creator ----------------------------------------------------------------

SLOT_BASE = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
"""The first cron slot the creators fire (any fixed moment: the slots are only keys)."""


async def create(store: Store, args: argparse.Namespace, journal: Journal) -> None:
    """Submit the same keyed runs and fire the same cron slots as every other creator."""
    rng = random.Random(args.worker_id)
    work = [("key", i) for i in range(args.keys)] + [("slot", i) for i in range(args.keys)]
    rng.shuffle(work)
    for what, i in work:
        now = await store.now()
        if what == "key":
            run = Run.create(
                job=args.job, at=now, idempotency_key=f"k{i}", params={"by": args.worker_id}
            )
        else:
            run = Run.create(
                job=args.job,
                at=now,
                trigger=Trigger.SCHEDULED,
                scheduled_for=SLOT_BASE + timedelta(minutes=i),
                params={"by": args.worker_id},
            )
        stored = await store.create_run(run)
        journal.write("created", what=what, i=i, run=stored.id, mine=stored.id == run.id)


# -- entry point --------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--worker-id", required=True)
    p.add_argument("--job", required=True)
    p.add_argument("--out", required=True, help="directory of the journals")
    p.add_argument("--mode", choices=("drain", "stale", "create"), default="drain")
    p.add_argument("--keys", type=int, default=50, help="create mode: keys and cron slots")
    p.add_argument("--lease", type=float, default=1.0, help="seconds")
    p.add_argument("--reap-interval", type=float, default=0.5, help="seconds")
    p.add_argument("--limit", type=int, default=2, help="claim batch size")
    p.add_argument("--slots", type=int, default=2, help="runs held at once")
    p.add_argument("--work-min", type=float, default=20, help="ms")
    p.add_argument("--work-max", type=float, default=60, help="ms")
    p.add_argument(
        "--long-every", type=int, default=0, help="runs whose params i is a multiple are long"
    )
    p.add_argument("--long-ms", type=float, default=0.0, help="work of a long run, ms")
    p.add_argument("--fail-attempts", type=int, default=1, help="attempts below this fail")
    p.add_argument("--poll", type=float, default=0.05, help="idle claim poll, seconds")
    p.add_argument(
        "--idle-check", type=float, default=0.3, help="seconds idle before checking for the end"
    )
    p.add_argument("--start-file", default="", help="wait for this file before claiming")
    p.add_argument("--finish-file", default="", help="wait for this file before ending a run")
    p.add_argument("--resume-file", default="", help="stale mode: wait for this file")
    p.add_argument("--die-on-failpoint", action="store_true", help="SIGKILL self when one fires")
    p.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    return p.parse_args(argv)


async def amain(args: argparse.Namespace) -> int:
    journal = Journal(os.path.join(args.out, f"{args.worker_id}.jsonl"), args.worker_id)
    journal.write("start", pid=os.getpid())
    try:
        async with open_store(args.url) as store:
            journal.write("open")
            # Processes start one by one; a common start signal makes them race.
            while args.start_file and not os.path.exists(args.start_file):
                await anyio.sleep(0.005)
            if args.mode == "stale":
                await stale(store, args, journal)
                return 0
            if args.mode == "create":
                await create(store, args, journal)
                return 0
            worker = Worker(store, args, journal)
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.heartbeat_loop)
                tg.start_soon(worker.reaper_loop)
                tg.start_soon(worker.claim_loop, tg)
            journal.write("exit", drained=worker.drained)
            return 0
    finally:
        journal.close()


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    return anyio.run(amain, args, backend=args.backend)


if __name__ == "__main__":
    sys.exit(main())
