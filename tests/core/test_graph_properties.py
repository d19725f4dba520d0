"""Property tests of workflows: the resolver against a from-scratch reference,
lineage and critical paths against brute force, cycles against networkx."""

from __future__ import annotations

import itertools

import networkx as nx  # noqa: TID251 - an independent oracle for the tests
from hypothesis import given
from hypothesis import strategies as st

from runlife import Status
from runlife._core.graph import Resolver, TriggerRule, Workflow
from runlife.exceptions import DependencyCycle
from runlife.testing._graph_strategies import dags

S = Status
R = TriggerRule

# The classes an outcome counts as, and their precedence when a node is skipped for
# several reasons at once (failed before cancelled before skipped), as docs say.
CLASS = {S.SUCCEEDED: "S", S.FAILED: "F", S.CANCELLED: "C", S.SKIPPED: "K"}
PRECEDENCE = ("F", "C", "K")


def reference_verdict(rule: TriggerRule, outcomes: list[str | None]) -> str:
    """The rule table of docs/workflows.md, read literally: "GO", "WAIT" or the
    class the node is skipped as. *outcomes* are upstream classes (None: unfinished)."""
    if rule is R.ALWAYS or not outcomes:
        return "GO"
    done = [o for o in outcomes if o is not None]
    all_done = len(done) == len(outcomes)
    worst = next((c for c in PRECEDENCE if c in done), "S")
    if rule is R.ALL_SUCCEEDED:
        if "F" in done:
            return "F"
        return ("GO" if worst == "S" else worst) if all_done else "WAIT"
    if rule is R.ALL_DONE:
        return "GO" if all_done else "WAIT"
    if rule is R.ALL_FAILED:
        if any(o != "F" for o in done):
            return "K"
        return "GO" if all_done else "WAIT"
    if rule is R.ANY_SUCCEEDED:
        if "S" in done:
            return "GO"
        return worst if all_done else "WAIT"
    if rule is R.ANY_FAILED:
        if "F" in done:
            return "GO"
        return "K" if all_done else "WAIT"
    if rule is R.NONE_FAILED:
        if "F" in done:
            return "F"
        if not all_done:
            return "WAIT"
        return "C" if "C" in done else "GO"
    assert rule is R.NONE_SKIPPED
    if "K" in done:
        return "K"
    return "GO" if all_done else "WAIT"


def reference(wf: Workflow, ran: dict[str, Status]) -> tuple[set[str], dict[str, str]]:
    """From scratch: the nodes ready (not yet completed) and the nodes skipped (with
    the class each counts as), given the terminal statuses of the nodes that ran."""
    classes = {node: CLASS[status] for node, status in ran.items()}
    go: set[str] = set()
    skipped: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for node in wf.nodes:
            if node in classes or node in go:
                continue
            ups = wf.upstream(node, transitive=False)
            said = reference_verdict(wf.rule(node), [classes.get(u) for u in ups])
            if said == "GO":
                go.add(node)
                changed = True
            elif said != "WAIT":
                classes[node] = skipped[node] = said
                changed = True
    return go - set(ran), skipped


TERMINAL = st.sampled_from([S.SUCCEEDED, S.SUCCEEDED, S.FAILED, S.CANCELLED, S.SKIPPED])


@given(dags(max_nodes=14), st.data())
def test_resolver_agrees_with_a_from_scratch_reference(wf: Workflow, data: st.DataObject) -> None:
    resolver = wf.resolver()
    ever_ready = list(resolver.initial.ready)
    skipped: dict[str, str] = {}
    ran: dict[str, Status] = {}
    while resolver.ready:
        expected_ready, expected_skipped = reference(wf, ran)
        assert resolver.ready == expected_ready
        assert skipped == {n: {"F": "failed", "C": "cancelled", "K": "skipped"}[c]
                           for n, c in expected_skipped.items()}  # fmt: skip

        node = data.draw(st.sampled_from(sorted(resolver.ready)), label="complete")
        status = data.draw(TERMINAL, label="as")
        step = resolver.complete(node, status)
        ran[node] = status
        ever_ready.extend(step.ready)
        for skip in step.skipped:
            assert skip.node not in skipped
            skipped[skip.node] = skip.counts_as
            # The reason names a direct upstream node, with the status it has.
            assert skip.upstream in wf.upstream(skip.node, transitive=False)
            assert resolver.statuses[skip.upstream] is skip.upstream_status
            assert skip.reason.startswith(f"upstream {skip.upstream} {skip.upstream_status}")

    assert len(ever_ready) == len(set(ever_ready)), "a node became ready twice"
    assert resolver.finished
    assert set(resolver.statuses) == set(wf.nodes)
    assert all(s.is_terminal for s in resolver.statuses.values())
    assert set(ever_ready) == set(ran)
    assert resolver.outcome().status in (S.SUCCEEDED, S.FAILED, S.CANCELLED)


def _advance(resolver: Resolver, data: st.DataObject, steps: int) -> None:
    for _ in range(steps):
        if not resolver.ready:
            return
        node = data.draw(st.sampled_from(sorted(resolver.ready)), label="complete")
        resolver.complete(node, data.draw(TERMINAL, label="as"))


@given(dags(max_nodes=14), st.data())
def test_a_resumed_resolver_goes_on_as_the_one_it_resumes(
    wf: Workflow, data: st.DataObject
) -> None:
    """A resolver resumed from what a store would hold of a run under way (the nodes
    that ran, some ready nodes started, the skips recorded or lost in a crash) agrees
    with the resolver that followed the run from scratch, then and until the end."""
    original = wf.resolver()
    _advance(original, data, data.draw(st.integers(0, len(wf)), label="steps"))
    statuses: dict[str, Status] = dict(original.statuses)
    skips_lost = data.draw(st.booleans(), label="skips lost")
    if skips_lost:
        for node in original.skipped:
            del statuses[node]
    ready = sorted(original.ready)
    if ready:
        started = data.draw(st.sets(st.sampled_from(ready)), label="started")
        active = st.sampled_from([S.QUEUED, S.RUNNING, S.RETRYING, S.WAITING, S.PENDING])
        statuses.update({node: data.draw(active, label=node) for node in started})

    resumed = wf.resolver(statuses)
    assert resumed.ready == original.ready
    assert resumed.initial.ready == tuple(n for n in wf.order if n in original.ready)
    assert resumed.statuses == original.statuses
    assert resumed.finished == original.finished
    counts = {node: skip.counts_as for node, skip in original.skipped.items()}
    assert {n: s.counts_as for n, s in resumed.skipped.items()} == counts
    assert {s.node: s.counts_as for s in resumed.initial.skipped} == (counts if skips_lost else {})
    order = {node: i for i, node in enumerate(wf.order)}
    assert [order[s.node] for s in resumed.initial.skipped] == sorted(
        order[s.node] for s in resumed.initial.skipped
    )
    for skip in resumed.skipped.values():
        assert skip.upstream in wf.upstream(skip.node, transitive=False)
        assert resumed.statuses[skip.upstream] is skip.upstream_status
        assert skip.reason.startswith(f"upstream {skip.upstream} {skip.upstream_status}")

    while original.ready:
        node = data.draw(st.sampled_from(sorted(original.ready)), label="then complete")
        status = data.draw(TERMINAL, label="as")
        expected, got = original.complete(node, status), resumed.complete(node, status)
        assert got.ready == expected.ready
        assert [(s.node, s.counts_as) for s in got.skipped] == [
            (s.node, s.counts_as) for s in expected.skipped
        ]
    assert resumed.finished
    assert resumed.statuses == original.statuses
    assert resumed.outcome() == original.outcome()


@given(dags(max_nodes=14), st.data())
def test_explain_agrees_with_the_resolver(wf: Workflow, data: st.DataObject) -> None:
    resolver = wf.resolver()
    while resolver.ready:
        node = data.draw(st.sampled_from(sorted(resolver.ready)))
        resolver.complete(node, data.draw(TERMINAL))
        statuses = resolver.statuses
        for other in wf.nodes:
            if other in statuses:
                continue
            said = wf.explain(other, statuses)
            if other in resolver.ready:
                assert said.verdict == "ready", other
            else:
                assert said.verdict in ("waiting", "impossible"), other
                # An impossible node still waits only when the resolver does too.
                assert said.waiting_on, other


@given(dags(max_nodes=14))
def test_a_node_runs_only_once_its_rule_allows_it(wf: Workflow) -> None:
    """With every run succeeding, a node (other than ALWAYS and ANY_SUCCEEDED, which
    need not wait for all) starts only after each of its upstream nodes finished."""
    resolver = wf.resolver()
    queue = list(resolver.initial.ready)
    finished: set[str] = set()
    while queue:
        node = queue.pop(0)
        if wf.rule(node) not in (R.ALWAYS, R.ANY_SUCCEEDED):
            assert set(wf.upstream(node, transitive=False)) <= finished
        step = resolver.complete(node, S.SUCCEEDED)
        queue.extend(step.ready)
        finished.add(node)
        finished.update(skip.node for skip in step.skipped)
    assert resolver.finished


@given(dags(max_nodes=14, rules=False))
def test_with_default_rules_and_no_failure_every_node_succeeds(wf: Workflow) -> None:
    resolver = wf.resolver()
    queue = list(resolver.initial.ready)
    while queue:
        step = resolver.complete(queue.pop(), S.SUCCEEDED)
        assert step.skipped == ()
        queue.extend(step.ready)
    assert resolver.outcome().status is S.SUCCEEDED
    assert set(resolver.statuses) == set(wf.nodes)


def _nx(wf: Workflow) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(wf.nodes)
    graph.add_edges_from(wf.edges)
    return graph


@given(dags(max_nodes=16, rules=False))
def test_structure_matches_networkx(wf: Workflow) -> None:
    graph = _nx(wf)
    position = {node: i for i, node in enumerate(wf.order)}
    assert set(position) == set(wf.nodes)
    for upstream, node in wf.edges:
        assert position[upstream] < position[node]
    levels = wf.levels
    assert set(levels[0]) == set(wf.roots) == {n for n in wf.nodes if not graph.in_degree(n)}
    level = {node: depth for depth, group in enumerate(levels) for node in group}
    for node in wf.nodes:
        longest = max((len(p) - 1 for r in levels[0] for p in nx.all_simple_paths(graph, r, node)),
                      default=0)  # fmt: skip
        assert level[node] == longest
        assert set(wf.upstream(node)) == nx.ancestors(graph, node)
        assert set(wf.downstream(node)) == nx.descendants(graph, node)
        assert [position[n] for n in wf.upstream(node)] == sorted(
            position[n] for n in wf.upstream(node)
        )


@given(dags(max_nodes=10, rules=False), st.data())
def test_critical_path_is_the_longest_chain(wf: Workflow, data: st.DataObject) -> None:
    durations = {n: data.draw(st.integers(0, 100), label=n) for n in wf.nodes}
    path = wf.critical_path(durations)
    graph = _nx(wf)
    chains = [[n] for n in wf.nodes] + [
        p for a, b in itertools.permutations(wf.nodes, 2) for p in nx.all_simple_paths(graph, a, b)
    ]
    best = max(sum(durations[n] for n in chain) for chain in chains)
    assert path.duration.total_seconds() == best
    assert sum(durations[n] for n in path.nodes) == best
    assert all(graph.has_edge(a, b) for a, b in itertools.pairwise(path.nodes))
    assert durations[path.bottleneck] == max(durations[n] for n in path.nodes)


@given(st.integers(1, 8).flatmap(
    lambda n: st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=14)
    .map(lambda edges: (n, edges))
))  # fmt: skip
def test_a_graph_is_accepted_exactly_when_it_is_acyclic(
    spec: tuple[int, list[tuple[int, int]]],
) -> None:
    n, pairs = spec
    edges = set(pairs)
    graph = {f"n{v}": [f"n{u}" for u in range(n) if (u, v) in edges] for v in range(n)}
    oracle = nx.DiGraph()
    oracle.add_nodes_from(graph)
    oracle.add_edges_from((u, v) for v, ups in graph.items() for u in ups)
    try:
        Workflow("w", graph)
    except DependencyCycle as caught:
        assert not nx.is_directed_acyclic_graph(oracle)
        cycle = caught.cycle
        assert len(set(cycle)) == len(cycle)
        for upstream, node in zip(cycle, cycle[1:] + cycle[:1], strict=True):
            assert oracle.has_edge(upstream, node)
    else:
        assert nx.is_directed_acyclic_graph(oracle)


@given(dags(max_nodes=12), st.data())
def test_exports_have_one_line_per_node_and_edge(wf: Workflow, data: st.DataObject) -> None:
    statuses = {n: data.draw(st.sampled_from(list(Status)), label=n) for n in wf.nodes}
    edges = len(wf.edges)
    mermaid = wf.to_mermaid(statuses).splitlines()
    assert sum('["' in line for line in mermaid) == len(wf)
    assert sum(" --> " in line for line in mermaid) == edges
    for status in set(statuses.values()):
        assert any(line.startswith(f"    classDef {status.lower()} ") for line in mermaid)
    dot = wf.to_dot(statuses).splitlines()
    assert sum(line.count(" -> ") >= 1 and line.endswith('";') and "[" not in line
               for line in dot) >= edges  # fmt: skip
    text = wf.to_text(statuses).splitlines()
    assert len(text) == 1 + len(wf.levels) + len(wf)
