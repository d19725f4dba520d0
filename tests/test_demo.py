"""`runlife demo`: a day of jobs run by the runtime on SQLite, in virtual time, kept."""

from __future__ import annotations

import contextlib
import io
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from runlife import Item, JobRecord, Run, RunQuery, Status
from runlife.cli import main
from runlife.stores import SQLiteStore

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f-]*")  # a run id, or its start


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 3, 10, hour, minute, second, tzinfo=UTC)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One run of the demo: its store file and what it printed."""
    path = tmp_path_factory.mktemp("demo") / "day.db"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["demo", "--db", str(path)]) == 0
    return path, buffer.getvalue()


def stored(path: Path) -> tuple[dict[str, Run], dict[str, tuple[Item, ...]]]:
    """The day's runs by job, and the items of each run."""

    async def read() -> tuple[dict[str, Run], dict[str, tuple[Item, ...]]]:
        async with SQLiteStore(path) as store:
            runs = (await store.list_runs(RunQuery(limit=50))).runs
            return {r.job: r for r in runs}, {r.job: await store.items(r.id) for r in runs}

    return anyio.run(read)


def test_the_backup_succeeds_warning_of_the_unreachable_device(
    day: tuple[Path, str],
) -> None:
    """Fired by its cron at 02:00, three of four devices backed up, one warned of."""
    runs, items = stored(day[0])
    backup = runs["nightly_backup"]
    assert (backup.status, backup.trigger, backup.started_at) == (
        Status.SUCCEEDED, "SCHEDULED", at(2, 0),
    )  # fmt: skip
    assert (backup.progress.succeeded, backup.progress.failed) == (3, 1)
    assert backup.warnings == ("1 of 4 items failed: dist-sw-02.dc1",)
    failed = [i for i in items["nightly_backup"] if i.status is Status.FAILED]
    assert [i.key for i in failed] == ["dist-sw-02.dc1"]
    assert "notify: nightly_backup warned: 1 of 4 items failed" in day[1]


def test_the_health_check_times_out_and_retries_on_the_timeline(day: tuple[Path, str]) -> None:
    """edge-sw-03.branch2: attempt 1 at 14:15:00, attempt 2 at 14:15:30, each cut at
    30 s; one failed device of four fails the run."""
    runs, items = stored(day[0])
    check = runs["edge_health_check"]
    assert (check.status, check.started_at, check.ended_at) == (
        Status.FAILED,
        at(14, 15),
        at(14, 16),
    )
    assert check.error is not None
    assert check.error.message == "1 of 4 items failed: edge-sw-03.branch2"
    edge = {i.key: i for i in items["edge_health_check"]}
    bad = edge["edge-sw-03.branch2"]
    assert (bad.status, bad.attempts, bad.started_at, bad.ended_at) == (
        Status.FAILED, 2, at(14, 15), at(14, 16),
    )  # fmt: skip
    assert bad.error.kind == "timeout"
    assert re.search(r"14:15:30\s+edge-sw-03\.branch2\s+RETRYING", day[1])
    assert sum(i.status is Status.SUCCEEDED for i in edge.values()) == 3


def test_the_invoice_fails_and_the_email_is_skipped(day: tuple[Path, str]) -> None:
    runs, _ = stored(day[0])
    invoice, email, flow = runs["generate_invoice"], runs["send_email_invoice"], runs["billing"]
    assert (invoice.status, email.status, flow.status) == (
        Status.FAILED, Status.SKIPPED, Status.FAILED,
    )  # fmt: skip
    assert email.workflow_run_id == invoice.workflow_run_id == flow.id
    assert email.history[-1].reason is not None
    assert invoice.id in email.history[-1].reason


def test_the_procedure_runs_its_phases(day: tuple[Path, str]) -> None:
    runs, items = stored(day[0])
    assert runs["deploy_vlan_100"].status is Status.SUCCEEDED
    phases = [(i.phase, i.status) for i in items["deploy_vlan_100"]]
    assert [p for p, _ in phases] == ["pre-check"] * 2 + ["change"] * 2 + ["post-check"] * 2
    assert {s for _, s in phases} == {Status.SUCCEEDED}


def test_the_approval_is_waited_for_then_sent(day: tuple[Path, str]) -> None:
    """WAITING from 02:10 until bob's signal ten minutes later."""
    runs, _ = stored(day[0])
    change = runs["apply_firewall_policy"]
    assert change.status is Status.SUCCEEDED
    assert change.result == "fw-2026-03 applied, approved by bob"
    moves = [(m.to, m.at) for m in change.history]
    assert (Status.WAITING, at(2, 10)) in moves
    assert [to for to, _ in moves].count(Status.RUNNING) == 2


def test_the_cancelled_run_says_who_cancelled_it(day: tuple[Path, str]) -> None:
    runs, _ = stored(day[0])
    inventory = runs["resync_inventory"]
    assert inventory.status is Status.CANCELLED
    assert inventory.error is not None
    assert inventory.error.message.startswith("cancelled by alice: ")
    assert inventory.progress.succeeded == 10


def test_the_output_fits_80_columns_and_ends_with_the_commands(day: tuple[Path, str]) -> None:
    path, out = day
    # The store's path is the host's (a deep temporary directory here): not the demo's.
    assert max(len(line) for line in out.replace(str(path), "day.db").splitlines()) <= 80
    runs, _ = stored(path)
    tail = out[out.index("The store is kept at") :]
    assert f"runlife runs --store sqlite:///{path}" in tail
    assert f"runlife show {runs['edge_health_check'].id} \\\n      --store sqlite:///{path}" in tail
    assert f"runlife logs {runs['nightly_backup'].id} \\" in tail
    table = out[out.index("The day's runs") : out.index("The store is kept")]
    by_id = {line.split()[0]: line for line in table.splitlines()[2:] if line.strip()}
    assert len(by_id) == len(runs) == 8
    for run in runs.values():  # the runs table of `runlife runs`: id, job, status...
        assert by_id[run.id].split()[2] == run.status.value


def test_the_printed_commands_work_on_the_kept_store(
    day: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`runlife runs` prints the very table the demo ended with; `show` and `logs`
    read the runs the demo names."""
    path, out = day
    runs, _ = stored(path)
    url = f"sqlite:///{path}"
    assert main(["runs", "--store", url]) == 0
    table = out[out.index("The day's runs") : out.index("The store is kept")]
    listed = capsys.readouterr().out
    assert listed.strip()
    assert listed.strip() in table
    assert main(["show", runs["edge_health_check"].id, "--store", url]) == 0
    shown = capsys.readouterr().out
    assert "2026-03-10 14:16:00" in shown
    assert "edge-sw-03" in shown
    assert main(["logs", runs["nightly_backup"].id, "--store", url]) == 0
    assert "config saved (24,832 bytes)" in capsys.readouterr().out


def test_the_day_is_the_same_on_every_run(
    day: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Run again (by default into ./runlife-demo.db), the output is the same but for
    the run ids and the path; a second run replaces the demo's own store."""
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    first = capsys.readouterr().out
    assert main(["demo"]) == 0
    again = capsys.readouterr().out
    assert (tmp_path / "runlife-demo.db").exists()

    def plain(text: str) -> list[str]:
        """The day's moves and its runs table, run ids left out."""
        text = UUID.sub("<id>", text[text.index("\n\n") : text.index("The store is kept")])
        lines = [re.sub(r"^[0-9a-f]{6}  ", "<run>  ", line) for line in text.splitlines()]
        # A notification is told by a hook's own task: its place among the moves may vary.
        notes = sorted(line for line in lines if line.startswith("  notify: "))
        return [line for line in lines if not line.startswith("  notify: ")] + notes

    assert plain(first) == plain(again) == plain(day[1])
    assert len(stored(tmp_path / "runlife-demo.db")[0]) == 8


def test_refuses_a_file_that_is_not_a_runlife_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("my notes\n")
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    for path in (notes, other):
        before = path.read_bytes()
        assert main(["demo", "--db", str(path)]) == 2
        err = capsys.readouterr()
        assert err.out == ""
        assert err.err.count("\n") == 1
        assert "is not a runlife store" in err.err
        assert path.read_bytes() == before


def test_refuses_a_runlife_store_of_other_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "prod.db"

    async def create() -> None:
        async with SQLiteStore(path) as store:
            await store.save_job(JobRecord(name="billing_export"))

    anyio.run(create)
    assert main(["demo", "--db", str(path)]) == 2
    err = capsys.readouterr().err
    assert "runlife store with other jobs (billing_export)" in err
    assert [j.name for j in anyio.run(_jobs, path)] == ["billing_export"]


async def _jobs(path: Path) -> tuple[JobRecord, ...]:
    async with SQLiteStore(path) as store:
        return await store.list_jobs()
