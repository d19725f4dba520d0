"""Every module of runlife imports on its own, first: no import cycle hides behind
the order in which other modules happen to be imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).parent.parent / "src"

CHECK = """
import importlib, pkgutil, sys
import runlife
modules = pkgutil.walk_packages(runlife.__path__, "runlife.")
names = sorted(m.name for m in modules if not m.name.endswith("__main__"))
failed = []
for name in names:
    for loaded in [m for m in sys.modules if m == "runlife" or m.startswith("runlife.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print(len(names))
print("\\n".join(failed))
"""


def test_every_module_imports_first() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, cwd=SRC
    )
    assert proc.returncode == 0, proc.stderr
    count, *failed = proc.stdout.strip().split("\n")
    assert int(count) > 100
    assert [line for line in failed if line] == []
