"""docs/workflows.md shows what the code does: its diagram and text are the outputs of
its own example (its python blocks run in tests/test_docs.py)."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import anyio

import runlife
from runlife._core.graph import TriggerRule

PAGE = Path(__file__).parent.parent.parent / "docs" / "workflows.md"


def _blocks(lang: str) -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    return [m.group(1) for m in re.finditer(rf"^```{lang}\n(.*?)^```$", text, re.M | re.S)]


def _run_page() -> dict[str, Any]:
    namespace: dict[str, Any] = {"print": lambda *_: None}
    for code in _blocks("python"):
        # The runtime's part of the page awaits at the top level, as test_docs allows.
        compiled = compile(code, str(PAGE), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        outcome = eval(compiled, namespace)
        if inspect.iscoroutine(outcome):
            anyio.run(_wait, outcome)
    return namespace


async def _wait(coroutine: Coroutine[Any, Any, Any]) -> None:
    await coroutine


def test_page_diagram_and_text_are_the_examples_own() -> None:
    page = _run_page()
    billing, resolver = page["billing"], page["resolver"]
    (diagram,) = _blocks("mermaid")
    assert diagram.strip() == billing.to_mermaid(resolver.statuses)
    text = _blocks("text")[0]
    assert text.strip() == billing.to_text({"Generate_Invoice": runlife.Status.RUNNING})


def test_page_table_lists_every_rule_once() -> None:
    text = PAGE.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([A-Z_]+)`", text, re.M)
    assert rows == [rule.value for rule in TriggerRule]
