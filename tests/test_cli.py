"""The ``runlife`` command: help, version and the demo."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from runlife import DEFAULT_LIFECYCLE, Status
from runlife._demo import PROMOTE_LIFECYCLE, demo_runs
from runlife.cli import main


def table_rows(out: str) -> dict[str, list[str]]:
    """The demo table's rows by job name and status (split on runs of 2+ spaces)."""
    lines = out.split("\n\n")[1].splitlines()
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines]
    assert rows[0][:4] == ["RUN", "JOB", "STATUS", "TRIGGER"]
    return {f"{row[1]} {row[2]}": row for row in rows[1:]}


def test_demo_prints_the_runs_table(capsys: pytest.CaptureFixture[str]) -> None:
    """`runlife demo` prints each run's status, start, end, duration, attempts and error."""
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert set(rows) == {
        "nightly_backup SUCCEEDED",
        "nightly_backup FAILED",
        "refresh_dashboard CANCELLED",
        "promote SUCCEEDED (SUCCESS)",
    }
    assert rows["nightly_backup SUCCEEDED"][3:8] == [
        "SCHEDULED",
        "02:00:01",
        "02:03:13",
        "3m 12s",
        "1",
    ]
    failed = rows["nightly_backup FAILED"]
    assert failed[4:8] == ["02:00:00", "02:17:00", "17m 00s", "3"]
    assert failed[8] == "timeout: attempt 3 timed out after 300 s"
    assert rows["refresh_dashboard CANCELLED"][4:8] == ["-", "02:04:00", "-", "0"]
    assert rows["promote SUCCEEDED (SUCCESS)"][4:8] == ["02:21:00", "02:25:30", "4m 30s", "1"]


def test_demo_prints_the_design_retry_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    """The retried run's timeline is DESIGN.md's: attempts at 02:00, 02:06 and 02:12,
    each cut at +300 s, FAILED at 02:17."""
    main(["demo"])
    out = capsys.readouterr().out
    timeline = out.split("Lifecycle timeline of run ")[1]
    assert "(nightly_backup, FAILED)" in timeline.splitlines()[0]
    attempts = re.findall(r"^\s+(\d)\s+(\S+)\s+(\S+)\s+5m 00s\s+timeout$", timeline, re.M)
    assert attempts == [
        ("1", "02:00:00", "02:05:00"),
        ("2", "02:06:00", "02:11:00"),
        ("3", "02:12:00", "02:17:00"),
    ]
    assert re.search(r"02:17:00\s+RUNNING\s+FAILED\s+timed out; 3 of 3 attempts spent", timeline)
    assert re.search(r"02:06:00\s+RETRYING\s+QUEUED\s+retry delay over", timeline)


def test_demo_prints_the_custom_lifecycle_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    """The custom run shows its own state names, STARTED entered by canonical RUNNING."""
    main(["demo"])
    out = capsys.readouterr().out
    timeline = out.split("Lifecycle timeline of run ")[2]
    moves = re.findall(r"^\s+\d\d:\d\d:\d\d\s+(\w+)\s+(\w+)", timeline, re.M)
    assert moves == [
        ("IDLE", "ACTIVE"),
        ("ACTIVE", "TRIGGER"),
        ("TRIGGER", "STARTED"),
        ("STARTED", "RUNNING"),
        ("RUNNING", "SUCCESS"),
    ]


def test_demo_runs_replay() -> None:
    """Every demo run is a real lifecycle value: its history replays to its state."""
    runs = demo_runs()
    lifecycles = [DEFAULT_LIFECYCLE] * 3 + [PROMOTE_LIFECYCLE]
    for run, lc in zip(runs, lifecycles, strict=True):
        assert lc.replay(run.history, lc.initial) == run.state
        assert run.is_terminal
    assert runs[1].status is Status.FAILED
    assert runs[1].error is not None
    assert runs[1].error.kind == "timeout"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`runlife --version` prints the installed version and exits 0."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"runlife {version('runlife')}"


def test_help_lists_demo(capsys: pytest.CaptureFixture[str]) -> None:
    """`runlife --help` describes the command and lists the demo."""
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: runlife")
    assert "demo" in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a command, the help goes to stderr and the exit status is 2."""
    assert main([]) == 2
    assert "usage: runlife" in capsys.readouterr().err


def test_unknown_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown command exits 2 naming the valid choices."""
    with pytest.raises(SystemExit) as info:
        main(["nope"])
    assert info.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [[str(Path(sys.executable).with_name("runlife"))], [sys.executable, "-m", "runlife.cli"]],
    ids=["console-script", "python-m"],
)
def test_installed_command_runs_the_demo(command: list[str]) -> None:
    """The installed `runlife` console script (and `python -m runlife.cli`) run the demo."""
    proc = subprocess.run(
        [*command, "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "nightly_backup" in proc.stdout
