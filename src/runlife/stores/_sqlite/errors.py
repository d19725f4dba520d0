"""The one place where the SQLite driver's errors become runlife's.

Every exception that leaves the store goes through `translate`: runlife's own
errors pass as they are, anything the driver raised becomes a `StoreError`
chained to it (``raise ... from``). Besides ``sqlite3.Error``, the driver raises
plain ``OverflowError``, ``UnicodeEncodeError`` and ``ValueError`` when it cannot
bind a value; the store's admission refuses such values first, and this keeps
them from reaching a caller all the same.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from runlife.exceptions import RunlifeError, StoreError

__all__ = ("BUSY_CODES", "is_busy", "translate")

BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_DRIVER: Final = (sqlite3.Error, OverflowError, UnicodeError, ValueError)


def is_busy(exc: BaseException) -> bool:
    """Whether *exc* says that another connection holds a lock (worth waiting out)."""
    return (
        isinstance(exc, sqlite3.OperationalError)
        and (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in BUSY_CODES
    )


def translate(exc: BaseException, path: str, doing: str = "") -> BaseException:
    """The exception a caller sees for *exc*, raised while *doing* on the database
    at *path*: runlife's errors and cancellations as they are, the driver's as a
    chained `StoreError` that names the file.

    >>> translate(sqlite3.OperationalError("disk I/O error"), "runs.db")
    StoreError("SQLite error on 'runs.db': disk I/O error")
    """
    if isinstance(exc, RunlifeError) or not isinstance(exc, Exception):
        return exc
    if not isinstance(exc, _DRIVER):
        return exc
    where = f"SQLite error on {path!r}" + (f" ({doing})" if doing else "")
    error = StoreError(f"{where}: {exc}")
    error.__cause__ = exc
    return error
