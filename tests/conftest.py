"""Shared test configuration: hypothesis profiles and the async backends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# The session's PostgreSQL server: RUNLIFE_PG_DSN, or a throwaway one started on
# first use (the tests that need it fail loudly if it cannot start; never skip).
from pgserver import fresh_schema, postgres_dsn  # noqa: F401 - a fixture, used by name

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci",
    max_examples=120,  # more than "dev", and the whole suite within CI's time on 2 cores
    deadline=2000,  # ms: a noisy 2-core machine must not fail a correct test
    suppress_health_check=(HealthCheck.too_slow,),
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Every async test runs under asyncio and under trio."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def pg_url(postgres_dsn: str) -> Iterator[str]:  # noqa: F811 - the fixture, by name
    """A store URL on a fresh, empty schema of the session's PostgreSQL server."""
    with fresh_schema(postgres_dsn) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh store: a SQLite file, and a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    return str(request.getfixturevalue("pg_url"))
