"""Every script in examples/ runs to completion."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))

# What each example must print, beyond exiting 0; a new example needs an entry.
EXPECTED = {
    "lifecycle_walk.py": [
        "SUCCEEDED (state SUCCEEDED), version 6",
        "attempt 1: timeout after 0:05:00",
        "refused: run ",
        "cannot move from SUCCEEDED to RUNNING",
        "TRIGGER   -> STARTED",
        "'IDLE' (PENDING) -> 'DONE' (SUCCEEDED) is not a canonical move",
    ],
    "mop_vlan.py": [
        "Execution: Deploy VLAN 100 - DC1 Access Switches",
        "Current Device: acc-sw-01.dc1 (10.1.2.1)",
        "  [>] Change (in progress - 1 of 4 steps completed)",
        "      Step 6: acc-sw-01.dc1 conf t / interface range Gi1/0/1-24  [running]",
        "  [ ] Rollback (standby)",
        "Status: completed",
        "Status: failed: change failed on acc-sw-02.dc1 (acc-sw-02.dc1/conf t / interface"
        " range Gi1/0/1-24: % Invalid input detected at '^' marker); rolled back",
        "  [-] Post-Check (not run - 0 of 4 steps)",
        "  [x] Rollback (completed - 2 of 2 steps passed)",
        "      Step 14: acc-sw-02.dc1 no vlan 100 / revert ports          [passed] 2.5s",
    ],
    "postgres_workers.py": [
        "40 runs, 40 SUCCEEDED",
        "  worker-1: ",
        "  worker-4: ",
        "each run ran once: True",
        "at most 2 runs of a site at once: True",
    ],
    "pool_executor.py": ["6 passed"],
    "web_monitor.py": [
        "runs page: 200 failed run listed: True",
        "run page: 200 links under /monitor: True",
        "downloaded log has the error: True",
        "retry: 303 RETRY",
        "retry without the operator role: 403",
    ],
    "process_jobs.py": [
        "count_primes: SUCCEEDED, 9592 primes below 100000",
        "spin: FAILED (timeout): attempt 1 exceeded its timeout of 1 s",
    ],
    "records_batch.py": [
        "After 30 s: RUNNING, 88/250 done, 2 failed",
        "Ended: SUCCEEDED in 0:01:20, 250/250 done, 4 failed",
        "warning: 4 of 250 items failed: contact-017, contact-088, contact-123, contact-201",
        "  ... next page after contact-010",
        "  contact-201  ValueError: invalid phone number for contact-201",
        "PLAN_LIMIT on start: job 'welcome_campaign' is over its quota (at most 2 runs per"
        " calendar month (UTC)); it frees up at 2026-04-01T00:00:00+00:00",
    ],
    "recurring_monitor.py": [
        "refresh_model           10:10     FAILED     5.0m   07:15         11:10",
        "refresh_dashboard       10:30     SUCCEEDED  2.0m   10:32         11:30",
        "  refresh_model           FAILED: warehouse login failed: credentials expired",
        "First failing upstream: refresh_model (last success 07:15)",
        "refresh_model failed 3 times: 08:10, 09:10, 10:10",
    ],
    "retry_timeline.py": [
        "asyncio: attempts at 02:00:00, 02:06:00, 02:12:00; FAILED at 02:17:00 (timeout)",
        "trio: attempts at 02:00:00, 02:06:00, 02:12:00; FAILED at 02:17:00 (timeout)",
        "next scheduled fire: 2026-03-11 02:00 UTC",
    ],
    "runs_lifecycle.py": [
        "  promote ADHOC     SUCCEEDED      PENDING -> RUNNING -> SUCCEEDED",
        "  profile ADHOC     SUCCEEDED  (!) PENDING -> QUEUED -> RUNNING -> SUCCEEDED",
        "  scan    RESUME    SUCCEEDED",
        "  scan    RERUN     SUCCEEDED",
        "Profile succeeded with a warning: 1 of 4 items failed: events",
        "  results: orders SKIPPED, customers SKIPPED, invoices SUCCEEDED, events SUCCEEDED",
        ", which this run resumes",
        "Sync aborted: cancelled by dana: wrong source",
    ],
    "sync_host.py": [
        "acme: SUCCEEDED after 1 attempt(s), 5 pages, acme-report.pdf",
        "globex: SUCCEEDED after 2 attempt(s), 3 pages, globex-report.pdf",
        "slow_reindex: CANCELLED, cancelled by ops: maintenance window over",
        "globex's attempt 1: error, ConnectionError: printer service unavailable",
    ],
    "testing_jobs.py": ["FAILED at 02:17 after 3 attempts", "4 passed"],
    "stale_dashboard.py": [
        "feeds the dashboard: sync_source, refresh_model, publish_semantic_model",
        "refresh_dashboard is waiting on publish_semantic_model (PENDING)",
        "skipped refresh_dashboard: upstream publish_semantic_model SKIPPED",
        "ready now: ('notify_on_failure',)",
        "bottleneck refresh_model",
        'n1["refresh_model"]:::failed',
    ],
    "task_runs.py": [
        "Send_Email_Invoice is waiting on Generate_Invoice (RUNNING)",
        "Generate_Invoice    upstream  FAILED      09:00:00  40s   IDLE -> ACTIVE -> TRIGGER ->"
        " STARTED -> RUNNING -> FAILED",
        "Rotate_Logs         [ADHOC]   SUCCESS",
        "Send_Email_Invoice is TERMINATED: upstream Generate_Invoice (run ",
        "  line 2 [log] ERROR template 'invoice-v2' not found",
        "of job Generate_Invoice: FAILED",
    ],
}
# Examples that need a PostgreSQL database: given a fresh schema of the test server.
POSTGRES = {"postgres_workers.py"}


def test_examples_exist_and_are_known() -> None:
    """There are examples, and each one says what it must print."""
    assert EXAMPLES
    assert {path.name for path in EXAMPLES} == set(EXPECTED)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, id=p.name, marks=[pytest.mark.postgres] if p.name in POSTGRES else [])
        for p in EXAMPLES
    ],
)
def test_example_runs(path: Path, request: pytest.FixtureRequest) -> None:
    """The example exits 0 and prints what it promises."""
    env = dict(os.environ)
    if path.name in POSTGRES:
        env["RUNLIFE_PG_URL"] = request.getfixturevalue("pg_url")
    proc = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    for text in EXPECTED.get(path.name, ()):
        assert text in proc.stdout, f"{path.name} did not print {text!r}"


def test_the_json_store_plugin_package_registers_its_scheme_and_passes_the_contract(
    tmp_path: Path,
) -> None:
    """examples/jsonstore, installed (pip, into a directory of its own), is found by
    its ``json`` URL scheme through the ``runlife.stores`` entry points, and its tests
    pass: StoreContract, and runs that outlive a close."""
    package = tmp_path / "jsonstore"  # a copy: building leaves files beside the sources
    shutil.copytree(
        Path(__file__).parent.parent / "examples" / "jsonstore",
        package,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         str(package)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *sys.path])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", os.devnull,
         "--rootdir", str(package), str(package / "tests")],
        capture_output=True, text=True, timeout=300, check=False, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" in proc.stdout, proc.stdout
    assert "failed" not in proc.stdout, proc.stdout
