"""The ``runlife`` command: help, version and the demo on the SQLite store (the
operators' commands are tested in tests/cli/)."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import anyio
import pytest

from runlife import RunQuery, Status
from runlife.cli import main
from runlife.stores import SQLiteStore


def section(out: str, title: str) -> str:
    """The block of the demo's output that starts with *title*."""
    start = out.index(title)
    end = out.find("\n\n", start)
    return out[start : end if end != -1 else None]


def table_rows(out: str) -> dict[str, list[str]]:
    """The runs table's rows by job, split on runs of 2+ spaces."""
    lines = section(out, "What ran").splitlines()[1:]
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines]
    assert rows[0][:4] == ["RUN", "JOB", "STATUS", "TRIGGER"]
    return {row[1].split()[0]: row for row in rows[1:]}


@pytest.fixture
def demo_out(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    assert main(["demo", "--db", str(tmp_path / "night.db")]) == 0
    return capsys.readouterr().out


def test_demo_lists_the_night_newest_first(demo_out: str) -> None:
    """`runlife demo` prints each stored run: status, start, end, duration, attempts,
    item progress and error, newest first."""
    rows = table_rows(demo_out)
    assert list(rows) == [
        "edge_health_check",
        "promote",
        "refresh_dashboard",
        "edge_backup",
        "nightly_backup",
    ]
    assert rows["nightly_backup"][2:9] == [
        "SUCCEEDED", "SCHEDULED", "02:00:01", "02:03:47", "3m 46s", "1", "4/4 ok",
    ]  # fmt: skip
    assert rows["edge_backup"][2:8] == [
        "FAILED", "SCHEDULED", "02:00:00", "02:17:00", "17m 00s", "3",
    ]  # fmt: skip
    assert rows["edge_backup"][9] == "timeout: attempt 3 exceeded its timeout of 300 s"
    assert rows["edge_health_check"][8:] == ["3/4 ok", "items: 1 of 4 items failed"]
    assert rows["refresh_dashboard"][2:8] == ["CANCELLED", "ADHOC", "-", "02:04:00", "-", "0"]
    assert rows["promote"][2] == "SUCCEEDED (SUCCESS)"
    assert "Summary  (store.count_runs): 1 cancelled, 2 failed, 2 succeeded" in demo_out


def test_demo_shows_which_records_failed(demo_out: str) -> None:
    """The failed device of the health check is named with its error."""
    failed = section(demo_out, "Which records failed?")
    assert "edge_health_check [site=branch2]: 1 of 4 items failed" in failed
    assert re.search(
        r"edge-sw-03\.branch2\s+FAILED\s+30s\s+timeout: Connection timed out after 30s", failed
    )
    devices = section(demo_out, "Device results of nightly_backup")
    assert re.search(r"core-rtr-01\.dc1\s+SUCCEEDED\s+45s\s+24,832 bytes", devices)


def test_demo_shows_the_nightly_retry_timeline(demo_out: str) -> None:
    """The retried backup lives the retry timeline: attempts at 02:00, 02:06 and 02:12, each cut
    at +300 s, FAILED at 02:17, and the next cron fire is unchanged."""
    why = demo_out[demo_out.index("Why did edge_backup") : demo_out.index("Its log")]
    attempts = re.findall(r"^\s+(\d)\s+(\S+)\s+(\S+)\s+5m 00s\s+timeout$", why, re.M)
    assert attempts == [
        ("1", "02:00:00", "02:05:00"),
        ("2", "02:06:00", "02:11:00"),
        ("3", "02:12:00", "02:17:00"),
    ]
    assert re.search(r"02:17:00\s+RUNNING\s+FAILED\s+attempt 3 of 3 failed", why)
    assert re.search(r"02:06:00\s+RETRYING\s+QUEUED\s+retry delay over", why)
    assert "next fire 2026-03-11 02:00 UTC" in why
    log = section(demo_out, "Its log")
    assert "store.search_logs('exceeded'): lines 2, 4, 6" in log


def test_demo_shows_the_custom_lifecycle(demo_out: str) -> None:
    """The custom run shows its own state names, STARTED entered by canonical RUNNING."""
    timeline = demo_out[demo_out.index("A custom lifecycle") :]
    moves = re.findall(r"^\s+\d\d:\d\d:\d\d\s+(\w+)\s+(\w+)", timeline, re.M)
    assert moves == [
        ("IDLE", "ACTIVE"),
        ("ACTIVE", "TRIGGER"),
        ("TRIGGER", "STARTED"),
        ("STARTED", "RUNNING"),
        ("RUNNING", "SUCCESS"),
    ]


def test_demo_keeps_a_real_sqlite_database(demo_out: str, tmp_path: Path) -> None:
    """With --db the night stays in a SQLite file that any store user can open."""

    async def read() -> dict[Status, int]:
        async with SQLiteStore(tmp_path / "night.db") as store:
            return dict(await store.count_runs(RunQuery()))

    assert anyio.run(read) == {Status.SUCCEEDED: 2, Status.FAILED: 2, Status.CANCELLED: 1}
    assert "The database is kept" in demo_out


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`runlife --version` names the installed version; no command prints help (exit 0)."""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"runlife {version('runlife')}"
    assert main([]) == 0
    assert "demo" in capsys.readouterr().out


def test_console_script_runs_the_demo() -> None:
    """The installed `runlife` script runs the demo as a separate process."""
    script = Path(sys.executable).with_name("runlife")
    done = subprocess.run([script, "demo"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "stored in SQLite at" in done.stdout
