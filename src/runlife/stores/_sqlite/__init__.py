"""`SQLiteStore`, the embedded default store: one SQLite file in WAL mode.

Its parts, one concern each:

- ``store.py``: the class, every method of `runlife.abc.Store`;
- ``commit.py``: the group commit of the one writer connection;
- ``connections.py``: opening, lending and safely closing connections;
- ``schema.py``: the tables, their migrations and the checks of a file;
- ``rows.py``: each table's columns and how rows become records;
- ``sql.py``: the statements;
- ``errors.py``: the one mapping of the driver's errors.
"""

from __future__ import annotations

from runlife.stores._sqlite.schema import SCHEMA_VERSION
from runlife.stores._sqlite.store import SQLiteStore

__all__ = ("SCHEMA_VERSION", "SQLiteStore")
