"""Shared test configuration: hypothesis profiles and the async backends."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# The session's PostgreSQL server: RUNLIFE_PG_DSN, or a throwaway one started on
# first use (the tests that need it fail loudly if it cannot start; never skip).
from pgserver import postgres_dsn  # noqa: F401 - a fixture, used by name

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci",
    max_examples=200,
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
