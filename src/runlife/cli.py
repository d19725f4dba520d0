"""The ``runlife`` command.

For now it has one subcommand, ``runlife demo``, which records a night of runs into
the embedded default store (SQLite) and prints what the store answers; the commands
that read any store come with the runtime.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ("main",)


def _version() -> str:
    try:
        return version("runlife")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runlife",
        description="The whole life of background work: lifecycles, retries, schedules, "
        "graphs, progress, logs and durable storage.",
    )
    parser.add_argument("--version", action="version", version=f"runlife {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="record a night of runs in SQLite and print what the store answers",
        description="Record a night of runs in the SQLite store (a backup of four devices, "
        "one retried on timeouts until it fails, a health check with a failed device, "
        "one cancelled while queued and one with a custom lifecycle), then answer the "
        "operators' questions from the store: what ran, which records failed, why a run "
        "failed, what its log says.",
    )
    demo.add_argument(
        "--db",
        type=Path,
        metavar="PATH",
        help="keep the SQLite database at PATH (replaced if it exists); "
        "by default a temporary file is used and removed",
    )
    serve = commands.add_parser(
        "serve",
        help="run the monitor page over a store (needs runlife[web])",
        description="Run the monitor page (runs, run detail and log, jobs, workflow "
        "graphs, live) over the store at URL. It listens on 127.0.0.1 unless --host "
        "says otherwise: anyone who reaches it reads every run of the store.",
    )
    serve.add_argument("--store", required=True, metavar="URL", help="the store's URL")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    serve.add_argument(
        "--allow-actions",
        action="store_true",
        help="let whoever reaches the page cancel, retry, rerun, resume, signal and pause",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``runlife`` command with *argv* (the process's arguments by default).

    Returns the exit status: 0 on success, 2 for a usage error.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from runlife._demo import run_demo

        try:
            run_demo(sys.stdout, args.db)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader went away (`runlife demo | head`): stop quietly, as Unix tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        return 0
    if args.command == "serve":
        return _serve(args)
    parser.print_help(sys.stderr)
    return 2


def _serve(args: argparse.Namespace) -> int:
    try:
        from runlife.web import serve
    except ImportError as exc:
        print(
            f"runlife serve needs the web extra (pip install 'runlife[web]'): {exc}",
            file=sys.stderr,
        )
        return 2
    where = f"http://{args.host}:{args.port}/"
    actions = "actions allowed" if args.allow_actions else "read only"
    print(f"runlife monitor on {where} ({actions}); Ctrl-C stops it", flush=True)
    if args.host == "127.0.0.1":
        print("listening on 127.0.0.1 only: use --host to listen elsewhere", flush=True)
    serve(args.store, args.host, args.port, allow_actions=args.allow_actions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
