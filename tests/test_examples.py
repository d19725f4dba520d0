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
