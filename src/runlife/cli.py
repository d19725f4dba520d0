"""The ``runlife`` command (console script and ``python -m runlife``).

Operators' commands over any store URL (``runs``, ``show``, ``items``, ``logs``,
``graph``, ``explain``, ``jobs``, ``pause``, ``unpause``, ``cancel``, ``retry``,
``rerun``, ``resume``, ``signal``, ``purge``, ``watch``, ``summary``), each with
``--store URL`` and ``--json``; ``runlife worker MODULE[:ATTR]`` runs a host's
jobs; ``runlife demo`` records a night of runs in SQLite. See docs/cli.md.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ("main",)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``runlife`` command with *argv* (the process's arguments by default).

    Returns the exit status: 0 on success (``runlife`` alone prints its help), 1
    when ``watch`` saw its run end other than SUCCEEDED, 2 for an error of use (one
    line on stderr naming what was wrong and what is accepted, no traceback).
    """
    from runlife._cli.app import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
