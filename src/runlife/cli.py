"""The ``runlife`` command.

For now it has one subcommand, ``runlife demo``, which runs a day of jobs through the
runtime on the embedded default store (SQLite), in virtual time, and keeps the file.
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
        help="run a day of background work on SQLite, in virtual time, and list it",
        description="Run a day of a network team's jobs through the runtime on the SQLite "
        "store, in virtual time (a few seconds): a nightly backup with an unreachable "
        "device, a health check that times out and retries, an invoice workflow whose "
        "email is skipped, a method of procedure in phases, a run waiting for an approval, "
        "and a run cancelled by an operator. Each move is printed as it is stored; then the "
        "runs, and the commands that inspect the kept store.",
    )
    demo.add_argument(
        "--db",
        type=Path,
        metavar="PATH",
        help="the SQLite file to keep the day in (default: ./runlife-demo.db); a store "
        "of an earlier demo there is replaced, any other file is refused",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``runlife`` command with *argv* (the process's arguments by default).

    Returns the exit status: 0 on success, 2 for a usage error (or a refused path).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from runlife._demo import run_demo

        try:
            status = run_demo(sys.stdout, args.db)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader went away (`runlife demo | head`): stop quietly, as Unix tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        return status
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
