"""Every script in examples/ runs to completion."""

from __future__ import annotations

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
    "retry_timeline.py": [
        "asyncio: attempts at 02:00:00, 02:06:00, 02:12:00; FAILED at 02:17:00 (timeout)",
        "trio: attempts at 02:00:00, 02:06:00, 02:12:00; FAILED at 02:17:00 (timeout)",
        "next scheduled fire: 2026-03-11 02:00 UTC",
    ],
    "stale_dashboard.py": [
        "feeds the dashboard: sync_source, refresh_model, publish_semantic_model",
        "refresh_dashboard is waiting on publish_semantic_model (PENDING)",
        "skipped refresh_dashboard: upstream publish_semantic_model SKIPPED",
        "ready now: ('notify_on_failure',)",
        "bottleneck refresh_model",
        'n1["refresh_model"]:::failed',
    ],
}


def test_examples_exist_and_are_known() -> None:
    """There are examples, and each one says what it must print."""
    assert EXAMPLES
    assert {path.name for path in EXAMPLES} == set(EXPECTED)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path: Path) -> None:
    """The example exits 0 and prints what it promises."""
    proc = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    for text in EXPECTED.get(path.name, ()):
        assert text in proc.stdout, f"{path.name} did not print {text!r}"
