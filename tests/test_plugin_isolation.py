"""Installing runlife breaks no one's tests: its pytest plugin loads with nothing but
pytest and runlife, imports nothing it does not need until a fixture is used, and
`runlife.testing` gives `VirtualClock` without hypothesis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

# What loading the plugin must not import: the testing extra, the contract suite,
# the SQL stores and their drivers.
NOT_AT_LOAD = (
    "hypothesis",
    "runlife.testing._contract",
    "runlife.testing._machine",
    "runlife.testing._lifecycle_machine",
    "runlife.testing._runtime_machine",
    "runlife.testing._executor_contract",
    "runlife._runtime",
    "anyio",
    "runlife.testing.strategies",
    "runlife.stores._sqlite",
    "runlife.stores._postgres",
    "sqlite3",
    "psycopg",
)

CHECK_IMPORTS = """
import sys
import pytest
import runlife.testing._plugin
names = sys.argv[1:]
print(sorted(m for m in sys.modules if any(m == n or m.startswith(n + ".") for n in names)))
"""

CHECK_TESTING = """
from runlife.testing import VirtualClock
print("VirtualClock", VirtualClock().now().isoformat())
for name in ("strategies", "StoreContract"):
    try:
        exec(f"from runlife.testing import {name}")
    except ImportError as exc:
        print(name, "ImportError:", exc)
    else:
        print(name, "imported")
"""

TRIVIAL_TEST = """
def test_arithmetic():
    assert 1 + 1 == 2
"""

FIXTURES_TEST = """
import pytest


def test_clock(runlife_clock):
    assert runlife_clock.pending == 0


@pytest.mark.anyio
async def test_store(runlife_store, runlife_clock):
    assert await runlife_store.now() == runlife_clock.now()
"""


def clean_env(venv: Path | None = None) -> dict[str, str]:
    """The environment minus what would leak this test session into a child one."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "PYTHON", "COV_", "HYPOTHESIS_")) and k != "VIRTUAL_ENV"
    }
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(
    *args: str | Path, cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_loading_the_plugin_imports_neither_hypothesis_nor_the_contract_nor_a_driver(
    tmp_path: Path,
) -> None:
    """In this (full) environment, loading the plugin leaves hypothesis, the contract
    suite, the strategies and the SQL stores' modules unimported."""
    env = {**clean_env(), "PYTHONPATH": os.pathsep.join(sys.path)}  # this runlife
    proc = run(sys.executable, "-c", CHECK_IMPORTS, *NOT_AT_LOAD, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def fresh_venv(venv: Path, *requirements: str) -> Path:
    """A venv at *venv* (no system site-packages) with *requirements* installed
    from the package index, ``.`` meaning this checkout."""
    env = clean_env()
    made = run(sys.executable, "-m", "venv", venv, cwd=ROOT, env=env)
    assert made.returncode == 0, made.stderr
    wanted = [str(ROOT) + r[1:] if r.startswith(".") else r for r in requirements]
    installed = run(
        venv / "bin" / "python", "-m", "pip", "install", "--quiet", *wanted,
        cwd=ROOT, env=env, timeout=600,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    return venv


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with runlife, pytest and trio, and no hypothesis: what a project
    gets from ``pip install runlife pytest`` (trio only because
    examples/retry_timeline.py runs on both backends)."""
    return fresh_venv(tmp_path_factory.mktemp("bare") / "venv", ".[trio]", "pytest")


@pytest.mark.slow
def test_the_bare_venv_has_no_hypothesis(bare_venv: Path, tmp_path: Path) -> None:
    """The setup is what it claims: hypothesis cannot be imported there."""
    proc = run(
        bare_venv / "bin" / "python",
        "-c",
        "import hypothesis",
        cwd=tmp_path,
        env=clean_env(bare_venv),
    )
    assert proc.returncode != 0
    assert "No module named 'hypothesis'" in proc.stderr


@pytest.mark.slow
def test_a_foreign_project_passes_with_the_plugin_loaded(bare_venv: Path, tmp_path: Path) -> None:
    """A project that knows nothing of runlife runs its one test, exit 0, with the
    runlife plugin loaded; and the plugin's fixtures work there without hypothesis."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "test_trivial.py").write_text(TRIVIAL_TEST, encoding="utf-8")
    env = clean_env(bare_venv)
    python = bare_venv / "bin" / "python"
    proc = run(python, "-m", "pytest", "test_trivial.py", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
    plugins = next(line for line in proc.stdout.splitlines() if line.startswith("plugins:"))
    assert "runlife-" in plugins

    (tmp_path / "test_fixtures.py").write_text(FIXTURES_TEST, encoding="utf-8")
    proc = run(python, "-m", "pytest", "-v", "test_fixtures.py", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_fixtures.py::test_clock PASSED" in proc.stdout
    assert "test_fixtures.py::test_store[asyncio] PASSED" in proc.stdout


@pytest.mark.slow
def test_virtual_clock_imports_without_hypothesis_and_the_rest_says_what_to_install(
    bare_venv: Path, tmp_path: Path
) -> None:
    """`VirtualClock` imports; `strategies` and `StoreContract` raise ImportError
    naming the ``runlife[testing]`` extra."""
    proc = run(
        bare_venv / "bin" / "python", "-c", CHECK_TESTING, cwd=tmp_path, env=clean_env(bare_venv)
    )
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["VirtualClock"].startswith("20")
    for name in ("strategies", "StoreContract"):
        assert lines[name].startswith("ImportError:"), lines[name]
        assert "runlife[testing]" in lines[name]


@pytest.mark.slow
def test_the_retry_timeline_example_runs_without_hypothesis(
    bare_venv: Path, tmp_path: Path
) -> None:
    """examples/retry_timeline.py needs only runlife (and trio for its second run)."""
    script = ROOT / "examples" / "retry_timeline.py"
    proc = run(bare_venv / "bin" / "python", script, cwd=tmp_path, env=clean_env(bare_venv))
    assert proc.returncode == 0, proc.stderr
    for backend in ("asyncio", "trio"):
        assert f"{backend}: attempts at 02:00:00, 02:06:00, 02:12:00; FAILED at 02:17:00" in (
            proc.stdout
        )


IMPORT_TIMES = """
import pytest
import runlife.testing._plugin
"""


def import_micros(*modules: str) -> dict[str, int]:
    """The cumulative import time, in µs, of each of *modules* in one fresh process
    that imports pytest and then the plugin (``python -X importtime``)."""
    env = {**clean_env(), "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = run(sys.executable, "-X", "importtime", "-c", IMPORT_TIMES, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    took: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            _, cumulative, name = line.split("|")
            if name.strip() in modules:
                took[name.strip()] = int(cumulative)
    assert set(took) == set(modules), proc.stderr[-2000:]
    return took


def test_the_plugin_adds_next_to_nothing_to_collection() -> None:
    """A project that never uses runlife pays for the plugin once, at load: its
    import, a small fraction of pytest's own (measured on an idle machine: 1.1 ms
    against 225 ms; the best of three processes, so that a busy machine's noise
    falls on both alike). It adds no hook that runs per module, per test or per
    collected item, and no autouse fixture: nothing that grows with the project."""
    plugin = pytest_itself = float("inf")
    for _ in range(3):
        took = import_micros("pytest", "runlife.testing._plugin")
        plugin = min(plugin, took["runlife.testing._plugin"])
        pytest_itself = min(pytest_itself, took["pytest"])
    print(f"import: {plugin} µs for runlife's plugin, {pytest_itself} µs for pytest")
    assert plugin < 0.1 * pytest_itself

    import runlife.testing._plugin as module

    hooks = sorted(name for name in vars(module) if name.startswith("pytest_"))
    assert hooks == ["pytest_addoption", "pytest_configure"]
    assert "autouse" not in Path(module.__file__ or "").read_text(encoding="utf-8")
