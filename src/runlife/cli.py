"""The ``runlife`` command.

For now it has one subcommand, ``runlife demo``, which drives a few runs through the
pure lifecycle and prints them; the commands that read a store come with the
runtime.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

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
    commands.add_parser(
        "demo",
        help="drive a few runs through the lifecycle and print them",
        description="Drive four runs through the pure lifecycle (a backup that succeeds, "
        "one retried on timeouts until it fails, one cancelled while queued and one "
        "with a custom lifecycle) and print them as a table and as timelines.",
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
            run_demo(sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader went away (`runlife demo | head`): stop quietly, as Unix tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        return 0
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
