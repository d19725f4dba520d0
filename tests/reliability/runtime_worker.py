"""A whole `AsyncRuntime` as a real process, for the reliability tests of the runtime.

Where ``worker.py`` drives a store through its port, this runs the runtime itself
over a store URL, and writes what happens, one JSON line per event, to
``<out>/<worker id>.jsonl`` (line-buffered, as ``worker.py`` does).

Modes:

``hold``    submit one run of the job ``long`` (an async function that sleeps until
            it is cancelled), journal ``submitted`` and, from inside the job,
            ``started`` and (when its attempt is cancelled) ``stopped``; wait until
            the run is terminal, journal ``exit`` with its status, and exit 0.
``cancel``  cancel the run ``--run`` (``--reason``, ``--by``), waiting for the end,
            and journal ``cancelled`` with the run's status, error message and how
            long the call took.

Run as ``python tests/reliability/runtime_worker.py --url URL --worker-id ID --job JOB
--out DIR --mode hold|cancel``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, TextIO

import anyio

import runlife
from runlife import AsyncRuntime, RunContext


class Journal:
    """One JSON line per event, each reaching the kernel as it is written."""

    def __init__(self, path: str, worker: str) -> None:
        self._file: TextIO = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        self._worker = worker

    def write(self, event: str, **fields: Any) -> None:
        line = json.dumps({"ev": event, "w": self._worker, "t": time.time(), **fields})
        self._file.write(line + "\n")

    def close(self) -> None:
        self._file.close()


async def hold(args: argparse.Namespace, journal: Journal) -> None:
    @runlife.job(name=args.job)
    async def long(ctx: RunContext) -> None:
        journal.write("started", run=ctx.run_id, pid=os.getpid())
        try:
            await anyio.sleep_forever()
        finally:
            journal.write("stopped", run=ctx.run_id)

    async with AsyncRuntime(
        jobs=[long], store=args.url, lease=args.lease, worker_id=args.worker_id
    ) as rt:
        run = await rt.submit(long)
        journal.write("submitted", run=run.id)
        done = await rt.wait(run.id)
    journal.write("exit", run=done.id, status=str(done.status))


async def cancel(args: argparse.Namespace, journal: Journal) -> None:
    async with AsyncRuntime(
        store=args.url, lease=args.lease, worker_id=args.worker_id, poll=0.1
    ) as rt:
        started = time.monotonic()
        run = await rt.cancel(args.run, args.reason, by=args.by)
        took = time.monotonic() - started
    message = run.error.message if run.error is not None else None
    journal.write("cancelled", run=run.id, status=str(run.status), message=message, took=took)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--worker-id", required=True)
    p.add_argument("--job", required=True)
    p.add_argument("--out", required=True, help="directory of the journals")
    p.add_argument("--mode", choices=("hold", "cancel"), required=True)
    p.add_argument("--lease", type=float, default=1.5, help="seconds")
    p.add_argument("--run", default="", help="cancel mode: the run to cancel")
    p.add_argument("--reason", default=None, help="cancel mode: why")
    p.add_argument("--by", default=None, help="cancel mode: who asks")
    p.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    return p.parse_args(argv)


async def amain(args: argparse.Namespace) -> int:
    journal = Journal(os.path.join(args.out, f"{args.worker_id}.jsonl"), args.worker_id)
    journal.write("start", pid=os.getpid())
    try:
        await (hold if args.mode == "hold" else cancel)(args, journal)
        return 0
    finally:
        journal.close()


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    return anyio.run(amain, args, backend=args.backend)


if __name__ == "__main__":
    sys.exit(main())
