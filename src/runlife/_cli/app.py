"""The ``runlife`` command: its parser, how it opens the store, and its errors.

Each command group adds its subcommands with `Command` handlers (`runs`, `logs`,
`jobs`, `act`, `worker`, and the demo here). An operator's command runs over an
`AsyncRuntime` opened with ``serve=False`` on ``--store``: it reads and acts,
and never runs a job. Every error a person can cause (an unknown run, a store
that cannot be reached, a bad filter value) ends the command with one line on
stderr that names what was wrong and what is accepted, and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn

import anyio
import attrs

from runlife._cli.render import Output
from runlife._runtime.runtime import AsyncRuntime
from runlife.exceptions import InvalidValue, RunlifeError, RunNotFound, StoreError
from runlife.stores._registry import sqlite_path

__all__ = ("DEFAULT_STORE", "STORE_ENV", "Command", "Context", "build_parser", "main")

STORE_ENV = "RUNLIFE_STORE"
"""The environment variable that names the store when ``--store`` is not given."""

DEFAULT_STORE = "sqlite:///runlife.db"
"""The store when neither ``--store`` nor ``RUNLIFE_STORE`` names one: runlife.db
in the current directory."""


@attrs.frozen
class Context:
    """What an operator's command handler gets: its arguments, the runtime over
    the store, and the output."""

    args: argparse.Namespace
    rt: AsyncRuntime
    out: Output


Handler = Callable[[Context], Awaitable[int]]


@attrs.frozen
class Command:
    """How a subcommand runs: *handler* over an operators' runtime, or, for
    *plain* commands (the worker, the demo), a function of the arguments."""

    handler: Handler | None = None
    plain: Callable[[argparse.Namespace], int] | None = None
    creates_store: bool = False


class UsageError(RunlifeError):
    """A command line that cannot be run, said in one line."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _version() -> str:
    try:
        return version("runlife")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def common(parser: argparse.ArgumentParser, *, json: bool = True) -> None:
    """Add ``--store`` (and ``--json``) to a subcommand."""
    parser.add_argument(
        "--store",
        metavar="URL",
        help=f"the store: sqlite:///path.db, postgresql://... or memory:// "
        f"(default: ${STORE_ENV}, else {DEFAULT_STORE})",
    )
    if json:
        parser.add_argument(
            "--json", action="store_true", help="print the JSON form instead of a table"
        )


def build_parser() -> argparse.ArgumentParser:
    """The ``runlife`` command's parser, with every subcommand."""
    from runlife._cli import act, jobs, logs, runs, serve, worker

    parser = _Parser(
        prog="runlife",
        description="The whole life of background work: lifecycles, retries, schedules, "
        "graphs, progress, logs and durable storage. The commands read and act on any "
        "runlife store; `runlife worker` runs a host's jobs over one.",
    )
    parser.add_argument("--version", action="version", version=f"runlife {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    runs.add(commands)
    logs.add(commands)
    jobs.add(commands)
    act.add(commands)
    worker.add(commands)
    serve.add(commands)
    _add_demo(commands)
    return parser


def _add_demo(commands: Any) -> None:
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
    demo.set_defaults(cmd=Command(plain=_demo))


def _demo(args: argparse.Namespace) -> int:
    from runlife._demo import run_demo

    status = run_demo(sys.stdout, args.db)
    sys.stdout.flush()
    return status


def store_url(args: argparse.Namespace, *, creates: bool = False) -> str:
    """The store URL of the command: ``--store``, ``$RUNLIFE_STORE``, or the default.

    A SQLite path must not be a directory; unless the command *creates* the store
    (the worker), the file must exist, so that a command run in the wrong
    directory says so rather than reading a new, empty store.

    Raises:
        UsageError: naming the URL and what is accepted.
    """
    url: str = args.store or os.environ.get(STORE_ENV) or DEFAULT_STORE
    if url[:7].lower() != "sqlite:":
        return url
    try:
        path = Path(sqlite_path(url))
    except InvalidValue as exc:
        raise UsageError(f"--store {url!r} is not a SQLite URL: expected {exc.expected}") from None
    if path.is_dir():
        raise UsageError(
            f"--store {url!r}: {str(path)!r} is a directory: expected a SQLite file, "
            f"such as sqlite:///{path / 'runlife.db'}"
        )
    if not creates and not path.exists():
        where = "--store" if args.store else (STORE_ENV if os.environ.get(STORE_ENV) else "default")
        raise UsageError(
            f"no runlife store at {str(path)!r} ({where} {url!r}; the file does not exist): "
            f"expected the store a runtime writes: --store sqlite:///path/runs.db, "
            f"--store postgresql://..., or ${STORE_ENV}"
        )
    if not creates and not path.is_file():
        raise UsageError(f"--store {url!r}: {str(path)!r} is not a file: expected a SQLite file")
    return url


async def _operate(handler: Handler, args: argparse.Namespace, out: Output) -> int:
    url = store_url(args)
    try:
        rt = AsyncRuntime(store=url, serve=False, worker_id=_operator(), poll=1)
        async with rt:
            return await handler(Context(args=args, rt=rt, out=out))
    except StoreError as exc:
        raise StoreError(f"the store {url!r} cannot be used: {_one_line(exc)}") from None


def _operator() -> str:
    """Who the operator's actions are recorded as: ``runlife:<user>@<host>``."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment
        user = "unknown"
    return f"runlife:{user}@{socket.gethostname()}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    cause = exc.__cause__
    said = " ".join(str(cause).split()) if cause is not None else ""
    if said and said not in text:
        text += f" ({said})"
    if isinstance(exc, RunNotFound):
        text += ": expected the id of a run, as `runlife runs` lists them"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``runlife`` command with *argv* (the process's arguments by default).

    Returns the exit status: 0 on success, 1 when the command's answer is "no"
    (a run that ended badly for ``watch``), 2 for an error of use (one line on
    stderr, no traceback).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, or an error of use already said
        return stop.code if isinstance(stop.code, int) else 2
    command: Command | None = getattr(args, "cmd", None)
    if command is None:
        parser.print_help(sys.stdout)
        return 0
    try:
        if command.plain is not None:
            return command.plain(args)
        assert command.handler is not None
        out = Output(as_json=bool(getattr(args, "json", False)))
        return anyio.run(_operate, command.handler, args, out)
    except BrokenPipeError:
        # The reader went away (`runlife runs | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    except RunlifeError as exc:
        name = f"runlife {args.command}"
        print(f"{name}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
