"""What the driver's failures become: `StoreError`, chained to the driver's error.

`store_error` is the one place where psycopg's exceptions (and the builtin
errors its adapters raise) are turned into runlife's; no other psycopg type ever
reaches a caller of the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import psycopg  # noqa: TID251 - the PostgreSQL store is where psycopg lives

from runlife.exceptions import StoreError

if TYPE_CHECKING:
    from runlife.stores._postgres.connection import Target

__all__ = ("DRIVER_ERRORS", "store_error")

DRIVER_ERRORS: Final = (psycopg.Error, OSError, OverflowError, UnicodeError, ValueError)
"""What a call into psycopg may raise besides runlife's own errors (adapters raise
builtin errors for values they cannot send, the socket layer `OSError`)."""


def store_error(exc: BaseException, target: Target, *, connecting: bool = False) -> StoreError:
    """The `StoreError` to raise ``from`` *exc*, a failure of the driver.

    *connecting*: the failure was opening a connection; the message then says what
    was tried (host, port, database, user; never the password) and for how long.
    """
    if connecting or isinstance(exc, psycopg.errors.ConnectionTimeout):
        return StoreError(
            f"cannot connect to PostgreSQL at {target.describe()} "
            f"(connect_timeout={target.connect_timeout:g} s): {_text(exc)}"
        )
    return StoreError(f"{target.url}: {type(exc).__name__}: {_text(exc)}")


def _text(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__
