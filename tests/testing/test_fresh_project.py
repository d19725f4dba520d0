"""A project outside this repository, in a venv of its own with ``runlife[testing]``
installed from this worktree, uses the fixtures and the machines as docs/testing.md
shows them."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_plugin_isolation import clean_env, fresh_venv, run

PROJECT_TEST = """
import pytest
from hypothesis import settings
from hypothesis import strategies as st

import runlife
from runlife import Lifecycle, Limits, Retry, Status, Timeout
from runlife.testing import LifecycleMachine, RuntimeMachine, immediate


@runlife.job(retry=Retry(max_attempts=3, delay=60), timeout=Timeout(attempt=300))
async def nightly_backup(ctx, site):
    if ctx.attempt < 2:
        raise ConnectionError(f"{site} unreachable")
    return {"site": site}


@pytest.mark.anyio
@pytest.mark.runlife(jobs=[nightly_backup])
async def test_backup_succeeds_on_its_second_attempt(runlife_runtime, runlife_clock):
    start = runlife_clock.now()
    run = await runlife_runtime.submit(nightly_backup, {"site": "dc1"})
    run = await runlife_runtime.wait(run.id)
    assert run.status is Status.SUCCEEDED
    assert (run.attempts[1].started_at - start).total_seconds() == 60


@pytest.mark.anyio
async def test_immediate(runlife_immediate):
    async with runlife.AsyncRuntime(jobs=[nightly_backup], store="memory://") as rt:
        run = await rt.wait((await rt.submit(nightly_backup, {"site": "dc2"})).id, timeout=5)
    assert run.attempt == 2


PROMOTE = Lifecycle(
    "promote",
    {"IDLE": "PENDING", "ACTIVE": "PENDING", "TRIGGER": "QUEUED", "STARTED": "RUNNING",
     "RUNNING": "RUNNING", "SUCCESS": "SUCCEEDED", "FAILED": "FAILED", "TERMINATED": "CANCELLED"},
    {"IDLE": ["ACTIVE", "TERMINATED"], "ACTIVE": ["TRIGGER", "TERMINATED"],
     "TRIGGER": ["STARTED", "TERMINATED"], "STARTED": ["RUNNING", "FAILED", "TERMINATED"],
     "RUNNING": ["SUCCESS", "FAILED", "TERMINATED"]},
)


@settings(max_examples=10)
class PromoteLifecycle(LifecycleMachine):
    lifecycle = PROMOTE
    store_url = "sqlite:///{tmp}/runs.db"


@settings(max_examples=5, stateful_step_count=15, deadline=None)
class BackupMachine(RuntimeMachine):
    jobs = (nightly_backup,)
    params = {"nightly_backup": st.fixed_dictionaries({"site": st.sampled_from(["dc1", "dc2"])})}


TestPromoteLifecycle = PromoteLifecycle.TestCase
TestBackupMachine = BackupMachine.TestCase
"""


@pytest.fixture(scope="module")
def testing_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with ``runlife[testing]`` from this checkout: what a project
    gets from ``pip install 'runlife[testing]'``."""
    return fresh_venv(tmp_path_factory.mktemp("testing") / "venv", ".[testing]")


@pytest.mark.slow
def test_a_fresh_project_uses_the_fixtures_and_the_machines(
    testing_venv: Path, tmp_path: Path
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "ops"\nversion = "0"\n', encoding="utf-8"
    )
    (tmp_path / "test_ops.py").write_text(PROJECT_TEST, encoding="utf-8")
    proc = run(
        testing_venv / "bin" / "python",
        *("-m", "pytest", "-q", "-p", "no:cacheprovider", "test_ops.py"),
        cwd=tmp_path,
        env=clean_env(testing_venv),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout, proc.stdout
