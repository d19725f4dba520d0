"""The ``runlife`` command: help, version, and the demo as a console script (the
demo itself: tests/test_demo.py; the operators' commands: tests/cli/)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import runlife
from runlife.cli import main


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`runlife --version` names the installed version; no command prints help (exit 0)."""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"runlife {version('runlife')}"
    assert main([]) == 0
    assert "demo" in capsys.readouterr().out


def test_console_script_runs_the_demo(tmp_path: Path) -> None:
    """The installed `runlife` script runs the demo as a separate process, keeping
    its store in the current directory."""
    script = Path(sys.executable).with_name("runlife")
    # This runlife first, then the test's own path (absolute: the script runs elsewhere).
    paths = [Path(runlife.__file__).parents[1], *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(Path(p).resolve()) for p in paths if p)}
    done = subprocess.run(
        [script, "demo"], capture_output=True, text=True, check=False, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "The store is kept at runlife-demo.db" in done.stdout
    assert (tmp_path / "runlife-demo.db").stat().st_size > 0
