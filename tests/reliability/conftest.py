"""Fixtures of the reliability tests: fresh stores and the worker processes of a test.

Every process a test starts is killed and reaped when the test ends, pass or fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg  # noqa: TID251 - tests create databases, which no store API does
import pytest
from harness import Hosts, Workers

# tests/ is on sys.path (rootdir-style layout), so the store tests' session
# PostgreSQL server fixture can be shared from there.


def _fresh_database(dsn: str) -> tuple[str, str]:
    """Create an empty database on *dsn*'s server; return its URL and its name."""
    name = f"rl_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}")), name


def _drop_database(dsn: str, name: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        # FORCE: the backend of a SIGKILLed worker may not have noticed yet.
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(postgres_dsn: str) -> Iterator[str]:
    """A store URL on a fresh, empty PostgreSQL database, dropped afterwards."""
    url, name = _fresh_database(postgres_dsn)
    try:
        yield url
    finally:
        _drop_database(postgres_dsn, name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh store: an SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """The worker processes of one test: all killed and reaped when it ends."""
    out = tmp_path / "journals"
    out.mkdir()
    group = Workers(out)
    try:
        yield group
    finally:
        group.close()


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Hosts]:
    """The runtime host processes of one test: all killed and reaped when it ends."""
    out = tmp_path / "hosts"
    out.mkdir()
    group = Hosts(out)
    try:
        yield group
    finally:
        group.close()
