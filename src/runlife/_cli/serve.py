"""``runlife serve``: the monitor page over a store, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from runlife._cli import args as values
from runlife._cli.app import Command, UsageError, common, store_url

__all__ = ("add",)


def add(commands: Any) -> None:
    """Add ``serve`` to the ``runlife`` command's subcommands."""
    parser = commands.add_parser(
        "serve",
        help="run the monitor page over a store (needs runlife[web])",
        description="Run the monitor page (runs, run detail and log, jobs, workflow "
        "graphs, live) over the store. It listens on 127.0.0.1 unless --host says "
        "otherwise: whoever reaches it reads every run of the store. Actions (cancel, "
        "retry, rerun, resume, signal, pause) are off unless --allow-actions.",
    )
    common(parser, json=False)
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port", type=values.positive_int, default=8000, help="the port to listen on (8000)"
    )
    parser.add_argument(
        "--allow-actions",
        action="store_true",
        help="let whoever reaches the page cancel, retry, rerun, resume, signal and pause "
        "(each POST still needs the page's CSRF token)",
    )
    parser.set_defaults(cmd=Command(plain=_serve))


def _serve(args: argparse.Namespace) -> int:
    url = store_url(args)
    try:
        from runlife.web import serve
    except ImportError as exc:
        raise UsageError(
            f"runlife serve needs the web extra: pip install 'runlife[web]' ({exc})"
        ) from None
    actions = "actions allowed" if args.allow_actions else "read only: no actions"
    print(f"runlife monitor on http://{args.host}:{args.port}/ ({actions}); Ctrl-C stops it")
    if args.host == "127.0.0.1":
        print("listening on 127.0.0.1 only: use --host to listen elsewhere")
    sys.stdout.flush()
    serve(url, args.host, args.port, allow_actions=args.allow_actions)
    return 0
