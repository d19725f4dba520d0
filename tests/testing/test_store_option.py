"""``pytest --runlife-store URL`` runs the same tests on SQLite or PostgreSQL (in
fresh pytest processes: the option is the command line's)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from test_plugin_isolation import clean_env, run

PROJECT_TEST = """
import pytest

import runlife
from runlife import Retry, Status


@runlife.job(retry=Retry(max_attempts=2, delay=30))
async def flaky(ctx):
    if ctx.attempt == 1:
        raise ConnectionError("unreachable")
    return ctx.attempt


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.runlife(jobs=[flaky])
async def test_on_the_chosen_store(runlife_immediate, runlife_runtime):
    # A SQL store judges when a retry is due by its own clock: without
    # runlife_immediate, the 30 s delay would pass in real time there.
    run = await runlife_runtime.wait((await runlife_runtime.submit(flaky)).id)
    assert (run.status, run.result) == (Status.SUCCEEDED, 2)
    print("STORE", type(runlife_runtime.store).__name__)
"""


def run_project(tmp_path: Path, *flags: str) -> str:
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "test_project.py").write_text(PROJECT_TEST, encoding="utf-8")
    env = {**clean_env(), "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = run(
        sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *flags,
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_memory_by_default(tmp_path: Path) -> None:
    assert "STORE MemoryStore" in run_project(tmp_path)


def test_sqlite_by_option(tmp_path: Path) -> None:
    out = run_project(tmp_path, "--runlife-store", "sqlite:///{tmp}/runs.db")
    assert "STORE SQLiteStore" in out


@pytest.mark.postgres
def test_postgresql_by_option(tmp_path: Path, pg_url: str) -> None:
    out = run_project(tmp_path, "--runlife-store", pg_url)
    assert "STORE PostgresStore" in out
