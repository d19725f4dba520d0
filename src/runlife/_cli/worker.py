"""``runlife worker MODULE[:ATTR]``: run a host's jobs over a store until stopped.

*MODULE* is imported (the current directory first on the path, as for ``python
-m``); *ATTR* names, in it, a `Job`, a `Workflow`, or a list or tuple of them
(a dotted path reaches into objects: ``app:registry.jobs``). Without *ATTR*,
every `Job` and `Workflow` bound at the module's top level is run. The worker
runs an `AsyncRuntime` over them until SIGTERM or SIGINT (Ctrl-C), then stops
gracefully: running attempts get ``--grace`` seconds, then are interrupted and
requeued without spending their retry budget.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from typing import Any

import anyio

from runlife._cli import args as values
from runlife._cli.app import Command, UsageError, common, store_url
from runlife._core.graph import Workflow
from runlife._runtime.job import Job
from runlife._runtime.runtime import AsyncRuntime

__all__ = ("add", "load")

_FORM = (
    "MODULE or MODULE:ATTR, MODULE importable from the current directory, ATTR a Job, "
    "a Workflow, or a list or tuple of them"
)


def add(commands: Any) -> None:
    """Add ``runlife worker`` to the parser."""
    worker = commands.add_parser(
        "worker",
        help="run a host's jobs over a store until SIGTERM or Ctrl-C",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    common(worker, json=False)
    worker.add_argument("target", metavar="MODULE[:ATTR]", help="where the jobs are")
    worker.add_argument(
        "--concurrency", type=values.positive_int, default=16, metavar="N",
        help="runs at once (16)",
    )  # fmt: skip
    worker.add_argument("--worker-id", metavar="ID", help="the owner name of its claims")
    worker.add_argument(
        "--lease", type=float, default=30.0, metavar="SECONDS", help="claim lease (30)"
    )
    worker.add_argument(
        "--grace", type=float, default=10.0, metavar="SECONDS",
        help="time running attempts get to end when it stops (10)",
    )  # fmt: skip
    worker.add_argument(
        "--poll", type=float, default=5.0, metavar="SECONDS",
        help="longest wait between two looks at the store for others' work (5)",
    )  # fmt: skip
    worker.add_argument(
        "--executor", choices=("thread", "process"), default="thread",
        help="where sync job functions run (thread)",
    )  # fmt: skip
    worker.set_defaults(cmd=Command(plain=_worker))


def load(target: str) -> tuple[list[Job], list[Workflow]]:
    """The jobs and workflows that *target* (``MODULE[:ATTR]``) names.

    Raises:
        UsageError: the module cannot be imported, the attribute is missing, or it
            is not a job, a workflow or a list or tuple of them.
    """
    name, _, attr = target.partition(":")
    if not name or (_ and not attr):
        raise UsageError(f"{target!r} is not a place to find jobs: expected {_FORM}")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise UsageError(f"cannot import module {name!r} ({exc}): expected {_FORM}") from None
    if not attr:
        found: Any = [v for v in vars(module).values() if isinstance(v, Job | Workflow)]
    else:
        found = module
        for part in attr.split("."):
            try:
                found = getattr(found, part)
            except AttributeError:
                raise UsageError(
                    f"module {name!r} has no attribute {attr!r}: expected {_FORM}"
                ) from None
    if isinstance(found, Job | Workflow):
        found = [found]
    if not isinstance(found, list | tuple) or not all(isinstance(v, Job | Workflow) for v in found):
        raise UsageError(f"{target!r} is {type(found).__name__}, not jobs: expected {_FORM}")
    if not found:
        raise UsageError(f"{target!r} holds no Job or Workflow: expected {_FORM}")
    jobs = [v for v in found if isinstance(v, Job)]
    workflows = [v for v in found if isinstance(v, Workflow)]
    return jobs, workflows


def _worker(args: argparse.Namespace) -> int:
    url = store_url(args, creates=True)
    jobs, workflows = load(args.target)
    rt = AsyncRuntime(
        jobs=jobs,
        workflows=workflows,
        store=url,
        concurrency=args.concurrency,
        worker_id=args.worker_id,
        lease=args.lease,
        grace=args.grace,
        poll=args.poll,
        executor=args.executor,
    )
    anyio.run(_serve, rt)
    return 0


async def _serve(rt: AsyncRuntime) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
        async with rt:
            names = ", ".join(sorted(rt.jobs) + [f"{w} (workflow)" for w in sorted(rt.workflows)])
            print(
                f"runlife worker {rt.worker_id} serving {names} over {rt.store.url} "
                f"(concurrency {rt.concurrency}); stop with SIGTERM or Ctrl-C",
                file=sys.stderr,
                flush=True,
            )
            async for number in received:
                print(
                    f"runlife worker {rt.worker_id}: {signal.Signals(number).name}, stopping "
                    f"(running attempts get {rt.grace:g} s)",
                    file=sys.stderr,
                    flush=True,
                )
                break
    print(f"runlife worker {rt.worker_id}: stopped", file=sys.stderr, flush=True)
