"""`PostgresStore`: the Store protocol on PostgreSQL, for many processes on many machines.

The parts, one concern each:

============================  ============================================================
``store.py``                  the class: each method admits its arguments, runs a transaction
``transactions.py``           the transactions, written once for asyncio and for trio
``sql.py``                    the statement text
``rows.py``                   rows <-> records, every table's columns named once
``schema.py``                 the tables, their migrations, the schema checks
``connection.py``             the URL, the pools, the drivers that run a transaction
``../_batching.py``           group commit of concurrent creates and updates, batched reads
``cache.py``                  the runs last written or read, for the successor check
``errors.py``                 what a driver error becomes
============================  ============================================================
"""

from __future__ import annotations

from runlife.stores._postgres.schema import SCHEMA_VERSION
from runlife.stores._postgres.store import PostgresStore

__all__ = ("SCHEMA_VERSION", "PostgresStore")
