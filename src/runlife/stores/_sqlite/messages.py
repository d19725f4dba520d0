"""The messages of log lines, each distinct one of a run stored once.

A line names its message by id (``logs.mid``, a row of ``log_messages``), and the
full-text index holds the messages, not the lines: most logs repeat a few
messages (the values are in the fields), and the index is the dearest part of
storing a line.

`MessageIds` finds the id of each message of a batch: the writer remembers the
ids it wrote (at most `KEPT` of them, of messages up to `LONGEST_KEPT` long),
checks those it reuses against the file in one statement (a batch rolled back, a
purge, or another process may have changed what it remembers), and stores the
others, indexing them with one statement. A message it does not remember is
stored again: two rows of one text cost some room, never a wrong line (a line
reads its own row).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Final

from runlife.stores._sqlite import sql

__all__ = ("KEPT", "LONGEST_KEPT", "MessageIds")

KEPT: Final = 16_384
"""The message ids a writer remembers at most (it forgets them all past that)."""
LONGEST_KEPT: Final = 1024
"""The longest message a writer remembers (longer ones seldom repeat, and the
memory of `KEPT` of them stays small)."""


class MessageIds:
    """The ids of the messages of log lines (see the module); used by the writer
    thread only, inside its write transaction."""

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], int] = {}

    def ids(
        self, conn: sqlite3.Connection, wanted: Iterable[tuple[str, str]]
    ) -> dict[str, dict[str, int]]:
        """The id of each ``(run id, message)`` of *wanted* (distinct), by run id
        then message, storing those not stored yet."""
        known = self._known
        out: dict[str, dict[str, int]] = {}
        guessed: dict[int, tuple[str, str]] = {}
        missing: list[tuple[str, str]] = []
        for key in wanted:
            mid = known.get(key)
            if mid is None:
                missing.append(key)
            else:
                guessed[mid] = key
        if guessed:
            found = conn.execute(sql.MESSAGES_IN, (json.dumps(list(guessed)),))
            for mid, run_id, message in found:
                if guessed.get(mid) == (run_id, message):
                    out.setdefault(run_id, {})[message] = mid
                    del guessed[mid]
            for key in guessed.values():  # not as remembered: stored anew
                del known[key]
                missing.append(key)
        if missing:
            (last,) = conn.execute(sql.LAST_MID).fetchone()
            rows = [(last + n, run_id, message) for n, (run_id, message) in enumerate(missing, 1)]
            conn.executemany(sql.INSERT_MESSAGE, rows)
            conn.execute(sql.INDEX_MESSAGES, (last, last + len(rows)))
            if len(known) + len(rows) > KEPT:
                known.clear()
            for mid, run_id, message in rows:
                out.setdefault(run_id, {})[message] = mid
            known.update(
                ((run_id, message), mid)
                for mid, run_id, message in rows[:KEPT]
                if len(message) <= LONGEST_KEPT
            )
        return out
