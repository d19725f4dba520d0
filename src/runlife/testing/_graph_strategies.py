"""Hypothesis strategies for workflows (re-exported by `runlife.testing.strategies`)."""

from __future__ import annotations

from hypothesis import strategies as st

from runlife._core.graph import TriggerRule, Workflow

__all__ = ("dags",)

# Names a renderer or a parser could trip on sit beside plain ones on purpose: quotes,
# spaces, arrows, non-ASCII, and names that read like statuses.
_PREFIXES = ("job", "Generate_Invoice", "FAILED", 'say "hi"', "a -> b", "sync ü", "n{1}")


@st.composite
def dags(
    draw: st.DrawFn,
    *,
    min_nodes: int = 1,
    max_nodes: int = 12,
    max_upstream: int = 4,
    rules: bool = True,
) -> Workflow:
    """Random valid workflows: DAGs whose mapping order and names hide their order.

    Args:
        min_nodes, max_nodes: bounds on the number of nodes.
        max_upstream: the most upstream nodes one node may have.
        rules: draw a random trigger rule for some nodes (else all ``ALL_SUCCEEDED``).

    >>> from hypothesis import given
    >>> @given(dags(max_nodes=6))
    ... def test_order_is_topological(wf):
    ...     seen = set()
    ...     for node in wf.order:
    ...         assert set(wf.upstream(node, transitive=False)) <= seen
    ...         seen.add(node)
    >>> test_order_is_topological()
    """
    n = draw(st.integers(min_value=min_nodes, max_value=max_nodes))
    prefixes = draw(st.lists(st.sampled_from(_PREFIXES), min_size=n, max_size=n))
    # Node i may depend only on nodes before it: acyclic by construction. The mapping
    # is then given in a shuffled order, so nothing may rely on it being sorted.
    names = [f"{prefix}{i}" for i, prefix in enumerate(prefixes)]
    graph: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        upstream = (
            draw(st.lists(st.sampled_from(names[:i]), max_size=max_upstream, unique=True))
            if i
            else []
        )
        graph[name] = upstream
    order = draw(st.permutations(names))
    chosen: dict[str, TriggerRule] = {}
    if rules:
        for name in names:
            rule = draw(st.one_of(st.just(TriggerRule.ALL_SUCCEEDED), st.sampled_from(TriggerRule)))
            if rule is not TriggerRule.ALL_SUCCEEDED:
                chosen[name] = rule
    return Workflow(
        draw(st.sampled_from(("wf", "nightly billing", 'the "main" one'))),
        {name: graph[name] for name in order},
        rules=chosen,
    )
