"""A workflow drawn as SVG: nodes laid out by levels, left to right, with statuses.

Pure: it returns a layout (positions, edges, marks); the template draws it.

>>> from runlife import Workflow
>>> wf = Workflow("billing", {"Generate_Invoice": [], "Send_Email_Invoice": ["Generate_Invoice"]})
>>> shape = layout(wf, {"Generate_Invoice": "FAILED"}, {})
>>> [(n.name, n.x, n.status, n.mark) for n in shape.nodes]
[('Generate_Invoice', 20, 'FAILED', 'failed'), ('Send_Email_Invoice', 240, 'PENDING', 'blocked')]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs

from runlife import Status, Workflow

__all__ = ("GraphShape", "Node", "layout")

WIDTH: Final = 180
HEIGHT: Final = 44
_DX: Final = 220
_DY: Final = 70
_PAD: Final = 20
_BAD: Final = frozenset({Status.FAILED, Status.CANCELLED, Status.SKIPPED})
_FAILED: Final = frozenset({Status.FAILED, Status.CANCELLED})


@attrs.frozen
class Node:
    """One node: where it is drawn, its status, its run, why it waits, and its mark
    (``"failed"`` for a failed node, ``"blocked"`` for one held by a failed upstream)."""

    name: str
    x: int
    y: int
    status: str
    run_id: str | None
    why: str
    mark: str


@attrs.frozen
class GraphShape:
    """The drawing: nodes, edges as ``(x1, y1, x2, y2, marked)``, and its size."""

    nodes: tuple[Node, ...]
    edges: tuple[tuple[int, int, int, int, bool], ...]
    width: int
    height: int


def layout(
    workflow: Workflow, statuses: Mapping[str, Status | str], runs: Mapping[str, str]
) -> GraphShape:
    """*workflow* laid out by levels (roots first), with each node's status and run."""
    status = {name: Status(statuses.get(name, Status.PENDING)) for name in workflow.nodes}
    where: dict[str, tuple[int, int]] = {}
    for level, names in enumerate(workflow.levels):
        for row, name in enumerate(names):
            where[name] = (_PAD + level * _DX, _PAD + row * _DY)
    nodes = []
    for name in workflow.nodes:
        why = workflow.explain(name, status)
        if status[name] in _FAILED:
            mark = "failed"
        elif why.blocked_by or any(status[up] in _BAD for up, _ in why.upstream):
            mark = "blocked"
        else:
            mark = ""
        x, y = where[name]
        nodes.append(Node(name, x, y, status[name].value, runs.get(name), why.text, mark))
    edges = []
    for up, down in workflow.edges:
        (x1, y1), (x2, y2) = where[up], where[down]
        edges.append((x1 + WIDTH, y1 + HEIGHT // 2, x2, y2 + HEIGHT // 2, status[up] in _BAD))
    levels = max(len(workflow.levels), 1)
    rows = max((len(names) for names in workflow.levels), default=1)
    return GraphShape(
        nodes=tuple(nodes),
        edges=tuple(edges),
        width=2 * _PAD + (levels - 1) * _DX + WIDTH,
        height=2 * _PAD + (rows - 1) * _DY + HEIGHT,
    )
