"""runlife's pytest plugin (registered through the ``pytest11`` entry point).

pytest loads it in every project whose environment has runlife, including projects
that never use it and environments without the ``testing`` extra. So it imports
nothing but pytest when it loads: each fixture imports what it needs in its body,
when a test first asks for it.

Fixtures:

* ``runlife_clock``: a fresh `runlife.testing.VirtualClock` (autojump on), for
  tests that live in virtual time. It starts at 2026-01-01 UTC on a memory store,
  and at the current second on any other (whose own clock stamps claims).
* ``runlife_store``: an open, empty store, closed after the test: a
  `runlife.stores.MemoryStore` on ``runlife_clock``'s time unless
  ``--runlife-store URL`` or the marker's ``store=`` names another (``{tmp}`` in
  the URL is the test's temporary directory). Async: ask for it from an anyio
  test (``@pytest.mark.anyio``).
* ``runlife_jobs``: the jobs of ``runlife_runtime``: the marker's ``jobs=``, or
  none; override it in a ``conftest.py`` to give a whole directory its jobs.
* ``runlife_runtime``: an `runlife.AsyncRuntime` of ``runlife_jobs`` over
  ``runlife_store`` and ``runlife_clock``, entered for the test and closed after.
* ``runlife_immediate``: retry delays and schedules without waits for the test
  (see `runlife.testing.immediate`), for tests in real time.

The marker: ``@pytest.mark.runlife(jobs=[...], store="sqlite:///{tmp}/runs.db")``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from runlife import AsyncRuntime, Job
    from runlife.abc import Store
    from runlife.testing import VirtualClock

_MARKER = "runlife"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("runlife")
    group.addoption(
        "--runlife-store",
        metavar="URL",
        default=None,
        help="store URL for the runlife_store and runlife_runtime fixtures "
        "(default memory://; {tmp} is the test's temporary directory)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "runlife(jobs=[...], store=URL): the jobs of the runlife_runtime fixture, "
        "and the store URL of runlife_store",
    )


def _marker_kwarg(request: pytest.FixtureRequest, name: str) -> Any:
    marker = request.node.get_closest_marker(_MARKER)
    return None if marker is None else marker.kwargs.get(name)


def _store_url(request: pytest.FixtureRequest) -> str:
    url = _marker_kwarg(request, "store") or request.config.getoption("--runlife-store")
    return url or "memory://"


@pytest.fixture
def runlife_clock(request: pytest.FixtureRequest) -> VirtualClock:
    """A fresh `VirtualClock` with autojump: at its default start on a memory
    store, at the current second on any other."""
    from runlife.testing._clock import VirtualClock

    if _store_url(request).lower().startswith("memory:"):
        return VirtualClock()
    from datetime import UTC, datetime

    return VirtualClock(start=datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def runlife_store(
    request: pytest.FixtureRequest,
    runlife_clock: VirtualClock,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Store]:
    """An open, empty store: `MemoryStore`, or the one ``--runlife-store`` or the
    marker's ``store=`` names; memory and SQLite on ``runlife_clock``'s time."""
    from runlife.stores import open_store
    from runlife.testing._on_clock import on_clock

    url = _store_url(request)
    if "{tmp}" in url:
        url = url.replace("{tmp}", str(tmp_path_factory.mktemp("runlife")))
    async with on_clock(open_store(url), runlife_clock) as store:
        yield store


@pytest.fixture
def runlife_jobs(request: pytest.FixtureRequest) -> Sequence[Job]:
    """The jobs of ``runlife_runtime``: the marker's ``jobs=``, or none."""
    return tuple(_marker_kwarg(request, "jobs") or ())


@pytest.fixture
async def runlife_runtime(
    runlife_store: Store, runlife_clock: VirtualClock, runlife_jobs: Sequence[Job]
) -> AsyncIterator[AsyncRuntime]:
    """An `AsyncRuntime` of ``runlife_jobs`` over ``runlife_store`` and
    ``runlife_clock``, entered for the test and closed after it."""
    from runlife import AsyncRuntime

    async with AsyncRuntime(jobs=runlife_jobs, store=runlife_store, clock=runlife_clock) as rt:
        yield rt


@pytest.fixture
def runlife_immediate() -> Iterator[None]:
    """Retry delays and schedules without waits, for this test."""
    from runlife.testing._immediate import immediate

    with immediate():
        yield
