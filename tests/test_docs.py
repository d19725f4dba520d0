"""The README and the docs pages say what the code does: their examples run, and the
lifecycle page's tables and diagram are the lifecycle's own.

Every ```python block of README.md and docs/*.md runs, top to bottom, in one namespace
per file (a later block may use what an earlier one defined); top-level ``await`` and
``async with`` are allowed and run on anyio (asyncio). A block that cannot run
yet says so on the line just above it, with its reason: ``<!-- not-executed: why -->``.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import anyio
import pytest

from runlife import CANONICAL_MOVES, DEFAULT_LIFECYCLE, Status

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(path: Path, lang: str) -> list[tuple[int, str, bool]]:
    """The fenced blocks of *lang* in *path*: (line number, code, executed?)."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(r"^```([\w{}-]*)[^\n]*\n(.*?)^```[ \t]*$", text, re.M | re.S):
        if match.group(1) != lang:
            continue
        line = text.count("\n", 0, match.start()) + 1
        previous = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        found.append((line, match.group(2), not previous.startswith("<!-- not-executed:")))
    return found


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each python block of the page runs without error, in order (in a scratch
    directory, so that the files an example makes, a SQLite store say, go there)."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": f"docs_{path.stem}"}
    for line, code, executed in blocks(path, "python"):
        if not executed:
            continue
        # Top-level await is allowed, as in a notebook: async examples run on anyio.
        compiled = compile(
            code, f"{path.relative_to(ROOT)}:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        outcome = eval(compiled, namespace)
        if inspect.iscoroutine(outcome):
            anyio.run(_wait, outcome)


async def _wait(coroutine: Coroutine[Any, Any, Any]) -> None:
    await coroutine


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    """The README opens with two shell commands: the demo and the test suite; .ci/run
    runs the test command (each of its steps) for CI."""
    sh = blocks(ROOT / "README.md", "sh")
    assert len(sh) == 2
    demo, tests = (code.strip() for _, code, _ in sh)
    assert demo.endswith("runlife demo")
    assert tests.endswith("pytest -n auto")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for step in (part.strip() for part in tests.split("&&")):
        assert step in ci, f".ci/run does not run the README's {step!r}"
    intro = (ROOT / "README.md").read_text(encoding="utf-8").split("```")[0]
    assert intro.count(". ") + intro.count(".\n") >= 3


def lifecycle_page() -> str:
    return (ROOT / "docs" / "lifecycle.md").read_text(encoding="utf-8")


def test_lifecycle_page_diagram_is_default_lifecycle() -> None:
    """The page's first state diagram is DEFAULT_LIFECYCLE.to_mermaid(), word for word."""
    diagrams = [code for _, code, _ in blocks(ROOT / "docs" / "lifecycle.md", "mermaid")]
    assert diagrams[0].strip() == DEFAULT_LIFECYCLE.to_mermaid()


def test_lifecycle_page_custom_diagram_is_its_example() -> None:
    """The custom lifecycle's diagram is the to_mermaid() of the page's own example."""
    page = ROOT / "docs" / "lifecycle.md"
    namespace: dict[str, Any] = {}
    for _, code, _ in blocks(page, "python"):
        exec(code, namespace)
    diagrams = [code for _, code, _ in blocks(page, "mermaid")]
    assert diagrams[1].strip() == namespace["tasks"].to_mermaid()


def test_lifecycle_page_status_table() -> None:
    """The statuses table lists every status once, with the right terminal column."""
    rows = re.findall(r"^\| `(\w+)` \| [^|]+ \| (yes|no) \|$", lifecycle_page(), re.M)
    assert [name for name, _ in rows] == [s.value for s in Status]
    for name, terminal in rows:
        assert Status(name).is_terminal == (terminal == "yes")


def test_lifecycle_page_transition_table() -> None:
    """The page's transition table is CANONICAL_MOVES."""
    text = next(code for _, code, _ in blocks(ROOT / "docs" / "lifecycle.md", "text"))
    table: dict[Status, set[Status]] = {}
    for line in text.strip().splitlines():
        source, targets = (part.strip() for part in line.split("->"))
        if source == "terminal":
            assert targets == "nothing, ever"
            continue
        table[Status(source)] = {Status(t.strip()) for t in targets.split("|")}
    assert table == {s: set(m) for s, m in CANONICAL_MOVES.items() if m}
