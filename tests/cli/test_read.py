"""The read commands, end to end through ``main(argv)`` over a SQLite store that a
real runtime filled: runs, show, items, logs, graph, explain, jobs, summary."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import Filled


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# -- runs ----------------------------------------------------------------------------


def test_runs_fit_80_columns_one_line_per_run(sqlite_filled: Filled, run_cli: Any) -> None:
    """At 80 columns every row is one line of at most 80 characters, with the full
    run id, the job, the status (a warning mark for a run with warnings) and the
    progress; the less needed columns are dropped."""
    done = run_cli("runs", "--store", sqlite_filled.url, columns=80)
    assert done.code == 0, done.err
    rows = lines(done.out)
    assert all(len(row) <= 80 for row in rows), rows
    assert rows[0].split() == ["ID", "JOB", "STATUS", "PROGRESS", "DURATION"]
    assert len(rows) == 1 + 7
    by_id = {row.split()[0]: row for row in rows[1:]}
    backup = by_id[sqlite_filled.ids["backup"]]
    assert "SUCCEEDED ⚠" in backup
    assert "3/3, 1" in backup
    assert "QUEUED" in by_id[sqlite_filled.ids["queued"]]


def test_wide_runs_show_trigger_lifecycle_chain_and_times(
    sqlite_filled: Filled, run_cli: Any
) -> None:
    done = run_cli("runs", "--store", sqlite_filled.url, "--job", "nightly_backup", columns=220)
    header, row = lines(done.out)
    assert header.split() == [
        "ID", "JOB", "TRIGGER", "LIFECYCLE", "STATUS", "PROGRESS", "STARTED", "ENDED", "DURATION",
    ]  # fmt: skip
    assert "PENDING > QUEUED > RUNNING > SUCCEEDED" in row
    assert "ADHOC" in row
    assert "3/3, 1 failed" in row
    assert re.search(r"\d\d-\d\d \d\d:\d\d:\d\d", row)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--status", "failed"], {"failed"}),
        (["--status", "QUEUED", "--status", "FAILED"], {"failed", "queued"}),
        (["--job", "chatty"], {"chatty", "queued"}),
        (["--label", "site=dc1"], {"backup", "queued"}),
        (["--label", "site=dc1", "--label", "kind=backup"], {"backup"}),
        (["--trigger", "adhoc", "--search", "edge"], {"failed"}),
        (["--since", "1h"], {"backup", "failed", "chatty", "workflow", "queued"}),
        (["--until", "2000-01-01"], set()),
    ],
)
def test_runs_filters(
    sqlite_filled: Filled, run_cli: Any, argv: list[str], expected: set[str]
) -> None:
    done = run_cli("runs", "--store", sqlite_filled.url, "--json", *argv)
    assert done.code == 0, done.err
    ids = {run["id"] for run in done.json()["runs"]}
    named = {name for name, run_id in sqlite_filled.ids.items() if run_id in ids}
    assert named == expected
    assert len(ids - set(sqlite_filled.ids.values())) == (2 if "--since" in argv else 0)


def test_runs_pages_by_cursor(sqlite_filled: Filled, run_cli: Any) -> None:
    first = run_cli("runs", "--store", sqlite_filled.url, "--limit", "4", "--json").json()
    assert len(first["runs"]) == 4
    second = run_cli(
        "runs", "--store", sqlite_filled.url, "--json", "--cursor", first["next_cursor"]
    ).json()
    assert len(second["runs"]) == 3
    assert second["next_cursor"] is None
    table = run_cli("runs", "--store", sqlite_filled.url, "--limit", "4")
    assert f"more: --cursor {first['next_cursor']}" in table.out


def test_runs_json_form_follows_the_run(sqlite_filled: Filled, run_cli: Any) -> None:
    (run,) = run_cli("runs", "--store", sqlite_filled.url, "--json", "--status", "FAILED").json()[
        "runs"
    ]
    assert run["job"] == "edge_backup"
    assert run["status"] == "FAILED"
    assert run["labels"] == {"site": "branch2"}
    assert run["error"]["kind"] == "error"
    assert run["error"]["message"] == "device did not answer"
    assert [a["number"] for a in run["attempts"]] == [1, 2]
    assert run["history"][-1]["to"] == "FAILED"
    assert isinstance(run["duration"], float)
    assert run["created_at"].endswith("+00:00")


# -- show and items --------------------------------------------------------------------


def test_show_has_details_timeline_attempts_items_failed_first_and_phases(
    sqlite_filled: Filled, run_cli: Any
) -> None:
    run_id = sqlite_filled.ids["backup"]
    done = run_cli("show", run_id, "--store", sqlite_filled.url, columns=100)
    assert done.code == 0, done.err
    out = done.out
    assert all(len(line) <= 100 for line in out.splitlines())
    assert out.startswith(f"run {run_id}  nightly_backup")
    assert re.search(r"status\s+SUCCEEDED ⚠", out)
    assert re.search(r"labels\s+kind=backup, site=dc1", out)
    timeline = out[out.index("lifecycle timeline") : out.index("attempts\n")]
    assert [m.split()[2:4] for m in lines(timeline)[2:]] == [
        ["PENDING", "QUEUED"],
        ["QUEUED", "RUNNING"],
        ["RUNNING", "SUCCEEDED"],
    ]
    items = lines(out[out.index("items (") : out.index("phases")])
    assert items[0] == "items (3/3, 1 failed; failed first)"
    assert items[2].startswith("edge-sw-03")
    assert "FAILED" in items[2]
    assert "error: Connection timed out" in items[2]
    assert re.search(r"backup\s+3/3, 1 failed", out)
    assert "warnings" in out


def test_show_names_lineage_of_a_workflow_run(sqlite_filled: Filled, run_cli: Any) -> None:
    out = run_cli("show", sqlite_filled.ids["workflow"], "--store", sqlite_filled.url).out
    lineage = out[out.index("lineage") :]
    assert re.search(r"node\s+\S+\s+Generate_Invoice\s+SUCCEEDED", lineage)
    assert re.search(r"node\s+\S+\s+Send_Email_Invoice\s+SUCCEEDED", lineage)
    data = run_cli("show", sqlite_filled.ids["workflow"], "--store", sqlite_filled.url, "--json")
    assert {r["job"] for r in data.json()["workflow_children"]} == {
        "Generate_Invoice",
        "Send_Email_Invoice",
    }


def test_items_filter_by_status_and_phase(sqlite_filled: Filled, run_cli: Any) -> None:
    run_id = sqlite_filled.ids["backup"]
    failed = run_cli("items", run_id, "--store", sqlite_filled.url, "--status", "failed")
    rows = lines(failed.out)
    assert [row.split()[0] for row in rows[1:]] == ["edge-sw-03"]
    data = run_cli("items", run_id, "--store", sqlite_filled.url, "--phase", "backup", "--json")
    assert [i["key"] for i in data.json()["items"]] == ["core-rtr-01", "edge-sw-03", "dist-sw-01"]
    none = run_cli("items", run_id, "--store", sqlite_filled.url, "--phase", "nope")
    assert none.out.strip() == "no items match"


# -- logs ----------------------------------------------------------------------------


def test_logs_whole_filtered_searched_and_paged(
    sqlite_filled: Filled, run_cli: Any, tmp_path: Path
) -> None:
    url = sqlite_filled.url
    backup = sqlite_filled.ids["backup"]
    whole = run_cli("logs", backup, "--store", url).out
    assert whole.startswith(f"run {backup} of job nightly_backup: SUCCEEDED")
    assert "[core-rtr-01] backing up host=core-rtr-01" in whole
    stdout = lines(run_cli("logs", backup, "--store", url, "--stream", "stdout").out)
    assert len(stdout) == 1
    assert stdout[0].endswith("stdout info     backup done")
    item = lines(run_cli("logs", backup, "--store", url, "--item", "edge-sw-03").out)
    assert item
    assert all("[edge-sw-03]" in line for line in item)
    info = lines(run_cli("logs", backup, "--store", url, "--level", "INFO").out)
    assert len(info) == 4
    assert all(" info " in line for line in info)
    assert not run_cli("logs", backup, "--store", url, "--level", "error").out
    chatty = sqlite_filled.ids["chatty"]
    found = lines(run_cli("logs", chatty, "--store", url, "--search", "LINE 59").out)
    assert [line.split()[-1] for line in found] == ["59", *map(str, range(590, 600))]
    page1 = lines(run_cli("logs", chatty, "--store", url, "--page", "1").out)
    page2 = lines(run_cli("logs", chatty, "--store", url, "--page", "2").out)
    assert (len(page1), len(page2)) == (500, 100)
    assert page2[0].endswith("line 501")
    jsonl = run_cli("logs", chatty, "--store", url, "--page", "2", "--format", "jsonl").out
    assert jsonl.count("\n") == 100
    assert '"message":"line 600"' in jsonl
    target = tmp_path / "chatty.log"
    written = run_cli("logs", chatty, "--store", url, "--output", str(target))
    assert written.out == ""
    assert f"to {target}" in written.err
    assert target.read_text().count("\n") == 600 + 4  # the header, a blank line, 600 lines


def test_logs_follow_ends_with_a_finished_run(sqlite_filled: Filled, run_cli: Any) -> None:
    followed = run_cli("logs", sqlite_filled.ids["chatty"], "--store", sqlite_filled.url, "-f")
    assert followed.code == 0
    assert len(lines(followed.out)) == 600


# -- graph, explain ------------------------------------------------------------------


def test_graph_in_each_format_with_statuses(sqlite_filled: Filled, run_cli: Any) -> None:
    run_id, url = sqlite_filled.ids["workflow"], sqlite_filled.url
    text = run_cli("graph", run_id, "--store", url).out
    assert text.startswith("workflow billing: 2 nodes, 1 edge")
    assert re.search(r"Send_Email_Invoice\s+SUCCEEDED\s+<- Generate_Invoice", text)
    assert "flowchart" in run_cli("graph", run_id, "--store", url, "--format", "mermaid").out
    assert "digraph" in run_cli("graph", run_id, "--store", url, "--format", "dot").out
    data = run_cli("graph", run_id, "--store", url, "--json").json()
    assert data["statuses"] == {"Generate_Invoice": "SUCCEEDED", "Send_Email_Invoice": "SUCCEEDED"}
    not_a_workflow = run_cli("graph", sqlite_filled.ids["chatty"], "--store", url)
    assert not_a_workflow.code == 2
    assert "expected the id of a workflow run" in not_a_workflow.err


def test_explain_says_why(sqlite_filled: Filled, run_cli: Any) -> None:
    url = sqlite_filled.url
    queued = run_cli("explain", sqlite_filled.ids["queued"], "--store", url)
    assert queued.code == 0
    assert "is queued since" in queued.out
    assert "it waits for a worker to claim it" in queued.out
    failed = run_cli("explain", sqlite_filled.ids["failed"], "--store", url, "--json").json()
    assert failed["why"] == "finished"
    assert failed["message"].endswith("device did not answer")


# -- jobs, summary -------------------------------------------------------------------


def test_jobs_lists_each_job_with_schedule_and_outcomes(
    sqlite_filled: Filled, run_cli: Any
) -> None:
    done = run_cli("jobs", "--store", sqlite_filled.url, columns=120)
    rows = {row.split()[0]: row for row in lines(done.out)[1:]}
    assert set(rows) == {
        "billing", "chatty", "edge_backup", "nightly_backup", "Generate_Invoice",
        "Send_Email_Invoice",
    }  # fmt: skip
    assert "0 2 * * *" in rows["nightly_backup"]
    assert "(workflow)" in rows["billing"]
    data = {
        j["name"]: j for j in run_cli("jobs", "--store", sqlite_filled.url, "--json").json()["jobs"]
    }
    assert data["nightly_backup"]["schedule"]["expr"] == "0 2 * * *"
    assert data["nightly_backup"]["next_fire"].endswith("T02:00:00+00:00")
    assert data["edge_backup"]["last_failure"]["id"] == sqlite_filled.ids["failed"]
    assert data["chatty"]["last_success"]["id"] == sqlite_filled.ids["chatty"]
    assert data["chatty"]["queued"] == 1
    narrow = run_cli("jobs", "--store", sqlite_filled.url, columns=60)
    assert all(len(line) <= 60 for line in narrow.out.splitlines())


def test_summary_counts_the_day(sqlite_filled: Filled, run_cli: Any) -> None:
    done = run_cli("summary", "--store", sqlite_filled.url)
    assert done.code == 0, done.err
    assert re.match(r"7 runs created since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(UTC\)", done.out)
    assert "QUEUED 1  SUCCEEDED 5  FAILED 1" in done.out
    assert "nothing overdue or stalled" in done.out
    data = run_cli("summary", "--store", sqlite_filled.url, "--json").json()
    assert data["counts"] == {"QUEUED": 1, "SUCCEEDED": 5, "FAILED": 1}
    assert data["stalled"] == []
    old = run_cli("summary", "--store", sqlite_filled.url, "--until", "2000-01-01", "--since", "2w")
    assert old.code == 2
    assert "until" in old.err


@pytest.mark.parametrize("columns", [50, 64, 80, 100, 132, 200])
def test_every_table_fits_its_width(sqlite_filled: Filled, run_cli: Any, columns: int) -> None:
    """runs, items, jobs and show print no line wider than the terminal, and one
    line per row, whatever its width."""
    url, backup = sqlite_filled.url, sqlite_filled.ids["backup"]
    for argv, rows in (
        (["runs"], 1 + 7),
        (["items", backup], 1 + 3),
        (["jobs"], 1 + 6),
        (["show", backup], None),
    ):
        out = run_cli(*argv, "--store", url, columns=columns).out
        assert all(len(line) <= columns for line in out.splitlines()), (argv, out)
        if rows is not None:
            assert len(lines(out)) == rows, (argv, out)
