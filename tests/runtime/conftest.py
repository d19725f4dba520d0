"""Runtime tests live in virtual time: a VirtualClock at 2026-03-10 02:00 UTC and a
MemoryStore that tells its time, under asyncio and trio."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg  # noqa: TID251 - the PostgreSQL cases make a schema of their own
import pytest

from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 plus *seconds*."""
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=T0)


@pytest.fixture
async def store(clock: VirtualClock) -> AsyncIterator[MemoryStore]:
    async with MemoryStore(clock=clock) as store:
        yield store


# -- real stores, for tests of several processes or runtime objects over one store ----


@pytest.fixture
def pg_url(postgres_dsn: str) -> Iterator[str]:
    """A fresh schema on the session's PostgreSQL server, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in postgres_dsn else "?"
    try:
        yield f"{postgres_dsn}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh store: a SQLite file, and a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    found: str = request.getfixturevalue("pg_url")
    return found
