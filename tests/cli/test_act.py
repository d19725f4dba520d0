"""The action commands, errors of use, colours, and the command as a process:
``python -m runlife``, and ``runlife worker`` holding a run that ``runlife cancel``
from another process cancels, on SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from runlife import AsyncRuntime, Status, Trigger

from .conftest import Filled, child_env, fill, runlife_process


@pytest.fixture
def filled(tmp_path: Path) -> Filled:
    return anyio.run(fill, f"sqlite:///{tmp_path / 'runs.db'}")


def status_of(url: str, run_id: str) -> Status:
    async def read() -> Status:
        async with AsyncRuntime(store=url, serve=False) as ops:
            return (await ops.get_run(run_id)).status

    return anyio.run(read)


# -- acting ----------------------------------------------------------------------------


def test_cancel_retry_rerun_resume_signal_pause_purge(filled: Filled, run_cli: Any) -> None:
    url, ids = filled.url, filled.ids
    cancelled = run_cli("cancel", ids["queued"], "--store", url, "--reason", "not tonight")
    assert cancelled.code == 0, cancelled.err
    assert cancelled.out.startswith(f"run {ids['queued']} (chatty) is CANCELLED: cancelled by ")
    assert cancelled.out.rstrip().endswith(": not tonight")
    retried = run_cli("retry", ids["failed"], "--store", url, "--json").json()
    assert (retried["trigger"], retried["parent_id"], retried["status"]) == (
        "RETRY", ids["failed"], "QUEUED",
    )  # fmt: skip
    rerun = run_cli("rerun", ids["backup"], "--store", url)
    assert rerun.out.startswith("rerun: new run ")
    assert f"parent {ids['backup']}" in rerun.out
    resumed = run_cli("resume", ids["queued"], "--store", url, "--json").json()
    assert resumed["trigger"] == Trigger.RESUME.value
    not_failed = run_cli("retry", ids["backup"], "--store", url)
    assert not_failed.code == 2
    assert "expected the id of a FAILED or CANCELLED run" in not_failed.err
    sent = run_cli(
        "signal", ids["queued"], "approved", "--store", url, "--payload", '{"by": "ana"}'
    )
    assert sent.out.strip() == f"sent signal 'approved' to run {ids['queued']}"
    assert run_cli("pause", "nightly_backup", "--store", url).out.startswith("paused")
    jobs = run_cli("jobs", "--store", url, "--json").json()["jobs"]
    assert [j["paused"] for j in jobs if j["name"] == "nightly_backup"] == [True]
    assert run_cli("unpause", "nightly_backup", "--store", url).out.startswith("unpaused")
    dry = run_cli("purge", "--older-than", "0s", "--dry-run", "--store", url)
    assert dry.out.startswith("would delete 7 finished runs ended before")
    assert run_cli("runs", "--store", url, "--json", "--limit", "100").json()["runs"]
    done = run_cli("purge", "--older-than", "0s", "--store", url, "--json").json()
    assert done["deleted"] == 7
    left = run_cli("runs", "--store", url, "--json").json()["runs"]
    assert {run["status"] for run in left} == {"QUEUED"}


def test_watch_a_finished_run_exits_by_its_outcome(filled: Filled, run_cli: Any) -> None:
    ok = run_cli("watch", filled.ids["backup"], "--store", filled.url)
    assert ok.code == 0
    assert "SUCCEEDED" in ok.out
    assert "took" in ok.out
    bad = run_cli("watch", filled.ids["failed"], "--store", filled.url, "--json")
    assert bad.code == 1
    assert bad.json()["status"] == "FAILED"


# -- errors of use -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["show", "no-such-run"], "no run with id 'no-such-run': expected the id of a run"),
        (["runs", "--since", "yesterday"], "argument --since: 'yesterday' is not a time"),
        (["runs", "--status", "DONE"], "expected one of PENDING, QUEUED"),
        (["runs", "--label", "site"], "expected KEY=VALUE"),
        (["runs", "--limit", "0"], "expected an integer >= 1"),
        (["signal", "RUN", "go", "--payload", "{bad"], "is not JSON"),
        (["purge", "--older-than", "soon"], "expected a span such as 30m"),
        (["pause", "nobody"], "no job named 'nobody'; known jobs: Generate_Invoice"),
        (["runs", "--store", "nosuch://x"], "no store for URL 'nosuch://x'; known schemes"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    filled: Filled, run_cli: Any, argv: list[str], said: str
) -> None:
    store = [] if "--store" in argv else ["--store", filled.url]
    done = run_cli(*argv, *store)
    assert done.code == 2
    assert said in done.err
    assert len(done.err.strip().splitlines()) == 1, done.err
    assert "Traceback" not in done.err


def test_store_errors_name_the_store(tmp_path: Path, run_cli: Any) -> None:
    missing = run_cli("runs", "--store", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.code == 2
    assert "the file does not exist" in missing.err
    assert not (tmp_path / "none.db").exists()
    folder = run_cli("runs", "--store", f"sqlite:///{tmp_path}")
    assert folder.code == 2
    assert "is a directory: expected a SQLite file" in folder.err
    unreachable = run_cli("runs", "--store", "postgresql://runlife@127.0.0.1:1/runlife")
    assert unreachable.code == 2
    assert "the store 'postgresql://runlife@127.0.0.1:1/runlife' cannot be used" in unreachable.err
    assert len(unreachable.err.strip().splitlines()) == 1
    output = run_cli("logs", "RUN", "--output", str(tmp_path), "--store", "memory://")
    assert output.code == 2
    assert "is a directory: expected a file path to write" in output.err


def test_the_store_comes_from_the_environment(
    filled: Filled, run_cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RUNLIFE_STORE", filled.url)
    assert len(run_cli("runs", "--json").json()["runs"]) == 7
    monkeypatch.delenv("RUNLIFE_STORE")
    monkeypatch.chdir(tmp_path)
    done = run_cli("runs")
    assert done.code == 2
    assert "no runlife store at 'runlife.db' (default 'sqlite:///runlife.db'" in done.err


def test_no_command_prints_help(run_cli: Any) -> None:
    done = run_cli()
    assert done.code == 0
    for command in ("runs", "show", "logs", "worker", "summary", "watch", "demo"):
        assert command in done.out


# -- colours and processes -------------------------------------------------------------


def test_colours_only_for_a_terminal_and_never_with_no_color(filled: Filled, run_cli: Any) -> None:
    """A pipe gets plain text; FORCE_COLOR (a terminal, for rich) gets colours and the
    chain's current state in bold; NO_COLOR wins over it."""
    argv = ("runs", "--store", filled.url)
    plain = run_cli(*argv)
    assert plain.code == 0, plain.err
    assert "\x1b[" not in plain.out
    coloured = run_cli(*argv, columns=200, FORCE_COLOR="1")
    assert "\x1b[" in coloured.out
    assert "\x1b[1;34mQUEUED" in coloured.out or "\x1b[1;36mQUEUED" in coloured.out
    calm = run_cli(*argv, columns=200, FORCE_COLOR="1", NO_COLOR="1")
    assert "\x1b[3" not in calm.out  # no colour (bold alone may stay)


WORKER_MODULE = textwrap.dedent(
    """
    import anyio
    import runlife

    @runlife.job
    async def sync_devices(ctx, site="dc1"):
        ctx.log.info("syncing", site=site)
        await anyio.sleep_forever()

    @runlife.job
    async def ping(ctx):
        return "pong"

    JOBS = [sync_devices, ping]
    """
)


def start_worker(tmp_path: Path, url: str) -> subprocess.Popen[str]:
    (tmp_path / "hostjobs.py").write_text(WORKER_MODULE)
    return subprocess.Popen(
        [sys.executable, "-m", "runlife", "worker", "hostjobs:JOBS", "--store", url,
         "--lease", "3", "--poll", "0.5", "--concurrency", "4", "--worker-id", "host-1"],
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


async def until_status(url: str, run_id: str, wanted: Status, seconds: float = 30) -> None:
    async with AsyncRuntime(store=url, serve=False, poll=0.1) as ops:
        with anyio.fail_after(seconds):
            while (await ops.get_run(run_id)).status is not wanted:
                await anyio.sleep(0.05)


async def submit_when_served(url: str, job: str) -> str:
    """Submit *job* once the worker saved its record."""
    with anyio.fail_after(30):
        while True:
            try:
                async with AsyncRuntime(store=url, serve=False) as ops:
                    return (await ops.submit(job)).id
            except Exception:  # the store or the job's record is not there yet
                await anyio.sleep(0.1)


@pytest.mark.slow
def test_cancel_from_the_command_reaches_a_run_held_by_a_worker_process(
    url: str, tmp_path: Path, run_cli: Any
) -> None:
    """`runlife worker` in its own process runs a run; `runlife cancel` (this
    process) stores a request that the worker honours within one heartbeat round
    (lease 3 s: 1 s); the run ends CANCELLED, its attempt stopped. SIGTERM then
    stops the worker gracefully, exit 0."""
    worker = start_worker(tmp_path, url)
    try:
        run_id = anyio.run(submit_when_served, url, "sync_devices")
        anyio.run(until_status, url, run_id, Status.RUNNING)
        shown = run_cli("show", run_id, "--store", url, columns=120)
        assert "RUNNING" in shown.out
        assert "claimed by host-1" in shown.out
        started = time.monotonic()
        done = run_cli("cancel", run_id, "--store", url, "--reason", "wrong site")
        took = time.monotonic() - started
        assert done.code == 0, done.err
        assert f"run {run_id} (sync_devices) is CANCELLED: cancelled by runlife:" in done.out
        assert took < 10
        assert status_of(url, run_id) is Status.CANCELLED
        # `runlife watch` follows a run held by the worker until it ends.
        watched_id = anyio.run(submit_when_served, url, "sync_devices")
        anyio.run(until_status, url, watched_id, Status.RUNNING)
        watch = subprocess.Popen(
            [sys.executable, "-m", "runlife", "watch", watched_id, "--store", url],
            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert watch.stdout is not None
        first = watch.stdout.readline()
        assert f"{watched_id}  sync_devices  RUNNING" in first
        assert run_cli("cancel", watched_id, "--store", url).code == 0
        rest, _ = watch.communicate(timeout=30)
        assert watch.returncode == 1
        assert f"{watched_id}  sync_devices  CANCELLED" in rest
        ping = anyio.run(submit_when_served, url, "ping")
        anyio.run(until_status, url, ping, Status.SUCCEEDED)
        runs = run_cli("runs", "--store", url, "--json").json()["runs"]
        assert sorted((r["job"], r["status"]) for r in runs) == [
            ("ping", "SUCCEEDED"),
            ("sync_devices", "CANCELLED"),
            ("sync_devices", "CANCELLED"),
        ]
    finally:
        worker.send_signal(signal.SIGTERM)
        _out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "runlife worker host-1 serving ping, sync_devices over" in err
    assert "SIGTERM, stopping" in err
    assert err.rstrip().endswith("runlife worker host-1: stopped")


def test_worker_refuses_what_is_not_jobs(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "notjobs.py").write_text("JOBS = 3\n")
    monkeypatch.chdir(tmp_path)
    store = ["--store", f"sqlite:///{tmp_path / 'w.db'}"]
    absent = run_cli("worker", "no_such_module_here", *store)
    assert absent.code == 2
    assert "cannot import module 'no_such_module_here'" in absent.err
    wrong = run_cli("worker", "notjobs:JOBS", *store)
    assert wrong.code == 2
    assert "'notjobs:JOBS' is int, not jobs: expected MODULE or MODULE:ATTR" in wrong.err
    missing = run_cli("worker", "notjobs:OTHER", *store)
    assert "module 'notjobs' has no attribute 'OTHER'" in missing.err


def test_worker_finds_a_modules_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MODULE alone: every Job and Workflow at its top level; MODULE:ATTR: a list, a
    tuple, one Job or one Workflow, by a dotted path."""
    from runlife._cli.worker import load

    (tmp_path / "hostflows.py").write_text(
        WORKER_MODULE
        + "FLOW = runlife.Workflow('nightly', {ping: []})\n"
        + "class registry:\n    jobs = (ping,)\n"
    )
    monkeypatch.chdir(tmp_path)
    jobs, flows = load("hostflows")
    assert [j.name for j in jobs] == ["sync_devices", "ping"]
    assert [w.name for w in flows] == ["nightly"]
    assert [j.name for j in load("hostflows:registry.jobs")[0]] == ["ping"]
    assert load("hostflows:FLOW")[1][0].name == "nightly"
    assert [j.name for j in load("hostflows:ping")[0]] == ["ping"]


def test_python_dash_m_runlife_runs_the_command(filled: Filled) -> None:
    done = runlife_process("runs", "--store", filled.url, "--status", "FAILED", "--json")
    assert done.returncode == 0, done.stderr
    assert '"job": "edge_backup"' in done.stdout
    bad = runlife_process("show", "nope", "--store", filled.url)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "runlife show: error: no run with id 'nope': expected the id of a run, as "
        "`runlife runs` lists them"
    )


def test_without_rich_json_still_works_and_tables_say_what_to_install(
    filled: Filled, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "rich" or m.startswith("rich.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "rich", None)  # import rich now fails
    assert len(run_cli("runs", "--store", filled.url, "--json").json()["runs"]) == 7
    table = run_cli("runs", "--store", filled.url)
    assert table.code == 2
    assert table.err.strip() == (
        "runlife runs: error: the runlife command's tables need the 'rich' package: "
        "pip install 'runlife[cli]' (or use --json)"
    )
