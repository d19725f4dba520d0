"""The built-in stores and `open_store`, which picks one from a URL.

=================  ===============================  ==========================================
store              URL                              for
=================  ===============================  ==========================================
`MemoryStore`      ``memory://``                    tests and scripts
`SQLiteStore`      ``sqlite:///runs.db``            one process, durable: the default
`PostgresStore`    ``postgresql://user@host/db``    many processes on many machines
=================  ===============================  ==========================================

`PostgresStore` needs the ``postgres`` extra (psycopg 3); it is imported only when
it is first used, so this package imports without psycopg. Third-party stores
register a URL scheme in the ``runlife.stores`` entry-point group (see
`open_store`). The protocol every store implements is `runlife.abc.Store`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runlife.stores._memory import MemoryStore
from runlife.stores._registry import ENTRY_POINT_GROUP, open_store

if TYPE_CHECKING:
    from runlife.stores._postgres import PostgresStore
    from runlife.stores._sqlite import SQLiteStore

__all__ = ("ENTRY_POINT_GROUP", "MemoryStore", "PostgresStore", "SQLiteStore", "open_store")

# Imported on first access: PostgresStore needs psycopg, an optional extra.
_LAZY = {
    "PostgresStore": "runlife.stores._postgres",
    "SQLiteStore": "runlife.stores._sqlite",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
