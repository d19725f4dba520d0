"""Workflows: validation, trigger rules, the resolver, explain, outcome and exports."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from runlife import Status
from runlife._core.graph import (
    Resolver,
    TriggerRule,
    Workflow,
)
from runlife.exceptions import (
    DependencyCycle,
    InvalidCompletion,
    InvalidWorkflow,
    NodeNotFound,
)

S = Status
R = TriggerRule


@attrs.frozen
class Job:
    """Stands for the runtime's job: anything with a ``name``."""

    name: str


# -- construction and bad input ---------------------------------------------------


def test_nodes_may_be_jobs_or_names_and_keep_what_was_given() -> None:
    invoice = Job("Generate_Invoice")
    wf = Workflow("billing", {invoice: [], "Send_Email_Invoice": [invoice]})
    assert wf.nodes == ("Generate_Invoice", "Send_Email_Invoice")
    assert wf.jobs["Generate_Invoice"] is invoice
    assert wf.jobs["Send_Email_Invoice"] == "Send_Email_Invoice"
    assert wf.edges == (("Generate_Invoice", "Send_Email_Invoice"),)
    assert "Generate_Invoice" in wf
    assert len(wf) == 2
    assert repr(wf) == "<Workflow 'billing': 2 nodes, 1 edges>"


def test_rules_accept_jobs_and_airflow_spelling() -> None:
    cleanup = Job("cleanup")
    wf = Workflow("w", {"load": [], cleanup: ["load"]}, rules={cleanup: "all_done"})
    assert wf.rule("cleanup") is R.ALL_DONE
    assert wf.rule("load") is R.ALL_SUCCEEDED
    assert wf.rules == {"cleanup": R.ALL_DONE}


def test_a_node_given_twice_as_job_and_name_is_refused_by_name() -> None:
    with pytest.raises(InvalidWorkflow, match="lists node 'extract' twice") as caught:
        Workflow("w", {Job("extract"): [], "extract": []})
    assert caught.value.node == "extract"


def test_an_unknown_upstream_is_refused_naming_it_and_its_node() -> None:
    with pytest.raises(InvalidWorkflow, match="'load' depends on 'transfrom'") as caught:
        Workflow("etl", {"transform": [], "load": ["transfrom"]})
    assert caught.value.node == "transfrom"
    assert isinstance(caught.value, ValueError)


def test_a_rule_for_an_absent_node_is_refused_naming_it() -> None:
    with pytest.raises(InvalidWorkflow, match="rule for 'cleanp'") as caught:
        Workflow("w", {"a": [], "cleanup": ["a"]}, rules={"cleanp": R.ALL_DONE})
    assert caught.value.node == "cleanp"


def test_a_rule_that_is_not_a_trigger_rule_is_refused_listing_the_rules() -> None:
    with pytest.raises(InvalidWorkflow, match=r"'sometimes', not a trigger rule.*ALL_DONE"):
        Workflow("w", {"a": [], "b": ["a"]}, rules={"b": "sometimes"})


def test_an_upstream_listed_twice_is_refused() -> None:
    with pytest.raises(InvalidWorkflow, match="'b' lists upstream 'a' twice"):
        Workflow("w", {"a": [], "b": ["a", Job("a")]})


def test_upstream_given_as_a_bare_string_is_refused_with_the_fix() -> None:
    with pytest.raises(InvalidWorkflow, match=r"must be a list, not the str 'a'; write \['a'\]"):
        Workflow("w", {"a": [], "b": "a"})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("name", "graph", "message"),
    [
        ("w", {}, "has no nodes"),
        ("", {"a": []}, "non-empty str"),
        ("w", {"": []}, "must not be empty"),
        ("w", {42: []}, "neither a node name"),
        ("w", {Job(7): []}, "neither a node name"),  # type: ignore[arg-type]
    ],
)
def test_malformed_workflows_are_refused(
    name: str, graph: dict[object, list[str]], message: str
) -> None:
    with pytest.raises(InvalidWorkflow, match=message):
        Workflow(name, graph)  # type: ignore[arg-type]


def test_a_self_loop_is_a_cycle_of_one() -> None:
    with pytest.raises(DependencyCycle, match="cycle: a -> a") as caught:
        Workflow("w", {"a": ["a"]})
    assert caught.value.cycle == ("a",)
    assert isinstance(caught.value, InvalidWorkflow)


def test_a_cycle_is_named_in_dependency_order() -> None:
    graph = {"start": [], "a": ["start", "c"], "b": ["a"], "c": ["b"], "end": ["c"]}
    with pytest.raises(DependencyCycle) as caught:
        Workflow("loop", graph)
    cycle = caught.value.cycle
    assert sorted(cycle) == ["a", "b", "c"]
    # Each node of the cycle is an upstream of the next one.
    for upstream, node in zip(cycle, cycle[1:] + cycle[:1], strict=True):
        assert upstream in graph[node]
    assert caught.value.node in cycle
    assert "workflow 'loop' has a dependency cycle" in str(caught.value)


def test_a_cycle_behind_a_node_that_reaches_none_is_still_found() -> None:
    """A node stuck downstream of a cycle is not on it; the cycle is still named."""
    with pytest.raises(DependencyCycle) as caught:
        Workflow("w", {"n0": ["n1"], "n1": ["n2"], "n2": ["n1"]})
    assert sorted(caught.value.cycle) == ["n1", "n2"]


# -- structure ----------------------------------------------------------------------


def test_order_roots_and_levels() -> None:
    wf = Workflow("w", {"d": ["b", "c"], "c": ["a"], "b": ["a"], "a": [], "e": []})
    assert wf.roots == ("a", "e")
    order = wf.order
    assert order.index("a") < order.index("b") < order.index("d")
    assert order.index("c") < order.index("d")
    assert wf.levels == (("a", "e"), ("c", "b"), ("d",)) or wf.levels == (
        ("a", "e"),
        ("b", "c"),
        ("d",),
    )
    assert wf.nodes == ("d", "c", "b", "a", "e")


def test_lineage_answers_why_a_dashboard_is_stale() -> None:
    wf = Workflow(
        "stackless",
        {
            "source_sync": [],
            "transformation_model": ["source_sync"],
            "semantic_model": ["transformation_model"],
            "dashboard_refresh": ["semantic_model"],
            "scheduled_export": ["dashboard_refresh"],
            "other_source": [],
        },
    )
    assert wf.upstream("dashboard_refresh") == (
        "source_sync",
        "transformation_model",
        "semantic_model",
    )
    assert wf.downstream("source_sync") == (
        "transformation_model",
        "semantic_model",
        "dashboard_refresh",
        "scheduled_export",
    )
    assert wf.upstream("dashboard_refresh", transitive=False) == ("semantic_model",)
    assert wf.downstream("other_source") == ()
    with pytest.raises(NodeNotFound, match="dashbord"):
        wf.upstream("dashbord")


def test_critical_path_and_bottleneck() -> None:
    wf = Workflow("w", {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "lone": []})
    path = wf.critical_path({"a": 60, "b": timedelta(minutes=10), "c": 30, "d": 5, "lone": 700})
    assert path.nodes == ("lone",)
    assert path.duration == timedelta(seconds=700)
    path = wf.critical_path({"a": 60, "b": 600, "c": 30, "d": 5})
    assert (path.nodes, path.bottleneck) == (("a", "b", "d"), "b")
    assert path.duration == timedelta(seconds=665)
    with pytest.raises(NodeNotFound):
        wf.critical_path({"nope": 1})
    with pytest.raises(InvalidWorkflow, match="negative"):
        wf.critical_path({"a": -1})


# -- trigger rules: the truth tables -------------------------------------------------

# How an upstream node ends, and how to make it end so:
#   S: SUCCEEDED, F: FAILED, C: CANCELLED, K: SKIPPED by the host (plain skip),
#   Fs: skipped because its own upstream FAILED (Airflow's upstream_failed),
#   Cs: skipped because its own upstream was CANCELLED, P: still running.
OUTCOMES = ("S", "F", "C", "K", "Fs", "Cs", "P")


def _setup(
    rule: TriggerRule, outcomes: tuple[str, ...]
) -> tuple[Resolver, set[str], dict[str, str]]:
    """A target node with *rule* whose upstream nodes u0, u1... end as *outcomes*.

    Each upstream u<i> has a parent p<i>. Returns the resolver after the upstream
    outcomes were applied, the nodes ever made ready, and each skipped node's class.
    """
    graph: dict[str, list[str]] = {}
    for i in range(len(outcomes)):
        graph[f"p{i}"] = []
        graph[f"u{i}"] = [f"p{i}"]
    graph["target"] = [f"u{i}" for i in range(len(outcomes))]
    resolver = Workflow("table", graph, rules={"target": rule}).resolver()
    ready = set(resolver.initial.ready)
    skipped: dict[str, str] = {}

    def complete(node: str, status: Status) -> None:
        step = resolver.complete(node, status)
        assert not ready & set(step.ready), "a node became ready twice"
        ready.update(step.ready)
        skipped.update({s.node: s.counts_as for s in step.skipped})

    parent = {"S": S.SUCCEEDED, "F": S.SUCCEEDED, "C": S.SUCCEEDED, "K": S.SUCCEEDED,
              "Fs": S.FAILED, "Cs": S.CANCELLED, "P": S.SUCCEEDED}  # fmt: skip
    own = {"S": S.SUCCEEDED, "F": S.FAILED, "C": S.CANCELLED, "K": S.SKIPPED}
    for i, outcome in enumerate(outcomes):
        complete(f"p{i}", parent[outcome])
        if outcome in own:
            complete(f"u{i}", own[outcome])
    return resolver, ready, skipped


def verdict(rule: TriggerRule, *outcomes: str) -> str:
    """What the resolver did with the target: ready, waiting, or skip:<counts as>."""
    resolver, ready, skipped = _setup(rule, outcomes)
    if "target" in skipped:
        result = f"skip:{skipped['target']}"
    elif "target" in ready:
        result = "ready"
    else:
        result = "waiting"
    # explain agrees with the resolver on the same statuses.
    statuses = dict(resolver.statuses)
    said = resolver.workflow.explain("target", {k: v for k, v in statuses.items() if k != "target"})
    if result == "waiting":
        # Waiting, or doomed but waiting for its other upstream nodes to finish.
        assert said.verdict in ("waiting", "impossible"), (said, result)
    else:
        assert said.verdict == {"ready": "ready"}.get(result, "impossible"), (said, result)
    return result


G, W = "ready", "waiting"
sF, sC, sK = "skip:failed", "skip:cancelled", "skip:skipped"

# One upstream node:       S    F    C    K    Fs   Cs   P
SINGLE = {
    R.ALL_SUCCEEDED: (G, sF, sC, sK, sF, sC, W),
    R.ALL_DONE: (G, G, G, G, G, G, W),
    R.ALL_FAILED: (sK, G, sK, sK, G, sK, W),
    R.ANY_SUCCEEDED: (G, sF, sC, sK, sF, sC, W),
    R.ANY_FAILED: (sK, G, sK, sK, G, sK, W),
    R.NONE_FAILED: (G, sF, sC, G, sF, sC, W),
    R.NONE_SKIPPED: (G, G, G, sK, G, G, W),
    R.ALWAYS: (G, G, G, G, G, G, G),
}

PAIRS = (("S", "F"), ("S", "K"), ("F", "K"), ("S", "P"), ("F", "P"), ("K", "P"), ("C", "K"),
         ("Fs", "S"), ("F", "F"))  # fmt: skip
# Two upstream nodes:
PAIR = {
    R.ALL_SUCCEEDED: (sF, sK, sF, W, sF, W, sC, sF, sF),
    R.ALL_DONE: (G, G, G, W, W, W, G, G, G),
    R.ALL_FAILED: (sK, sK, sK, sK, W, sK, sK, sK, G),
    R.ANY_SUCCEEDED: (G, G, sF, G, W, W, sC, G, sF),
    R.ANY_FAILED: (G, sK, G, W, G, W, sK, G, G),
    R.NONE_FAILED: (sF, G, sF, W, sF, W, sC, sF, sF),
    R.NONE_SKIPPED: (G, sK, sK, W, W, sK, sK, G, G),
    R.ALWAYS: (G, G, G, G, G, G, G, G, G),
}


@pytest.mark.parametrize("rule", list(R))
@pytest.mark.parametrize("index", range(len(OUTCOMES)))
def test_truth_table_one_upstream(rule: TriggerRule, index: int) -> None:
    assert verdict(rule, OUTCOMES[index]) == SINGLE[rule][index]


@pytest.mark.parametrize("rule", list(R))
@pytest.mark.parametrize("index", range(len(PAIRS)))
def test_truth_table_two_upstreams(rule: TriggerRule, index: int) -> None:
    first, second = PAIRS[index]
    assert verdict(rule, first, second) == PAIR[rule][index]
    # The order in which upstream nodes finish never changes the verdict.
    assert verdict(rule, second, first) == PAIR[rule][index]


def test_every_rule_lets_a_root_run_at_once() -> None:
    wf = Workflow("w", {r.value: [] for r in R}, rules={r.value: r for r in R})
    assert set(wf.resolver().initial.ready) == {r.value for r in R}


def test_always_runs_without_waiting_for_its_upstream() -> None:
    wf = Workflow("w", {"a": [], "audit": ["a"]}, rules={"audit": R.ALWAYS})
    resolver = wf.resolver()
    assert resolver.initial.ready == ("a", "audit")
    assert resolver.complete("a", S.FAILED).ready == ()


# -- the seed case and skip reasons --------------------------------------------------


def test_seed_case_email_waits_on_invoice_then_is_skipped_naming_it() -> None:
    wf = Workflow("billing", {"Generate_Invoice": [], "Send_Email_Invoice": ["Generate_Invoice"]})
    resolver = wf.resolver()
    assert resolver.initial.ready == ("Generate_Invoice",)

    why = wf.explain("Send_Email_Invoice", {"Generate_Invoice": S.RUNNING})
    assert why.verdict == "waiting"
    assert why.waiting_on == ("Generate_Invoice",)
    assert why.upstream == (("Generate_Invoice", S.RUNNING),)
    assert why.text == "Send_Email_Invoice is waiting on Generate_Invoice (RUNNING)"

    step = resolver.complete("Generate_Invoice", S.FAILED)
    assert step.ready == ()
    (skip,) = step.skipped
    assert (skip.node, skip.upstream, skip.upstream_status) == (
        "Send_Email_Invoice",
        "Generate_Invoice",
        S.FAILED,
    )
    assert skip.reason == "upstream Generate_Invoice FAILED"
    assert resolver.statuses == {"Generate_Invoice": S.FAILED, "Send_Email_Invoice": S.SKIPPED}
    assert resolver.finished

    after = wf.explain("Send_Email_Invoice", resolver.statuses)
    assert after.verdict == "finished"
    assert after.text == "Send_Email_Invoice was SKIPPED: upstream Generate_Invoice FAILED"


def test_skips_propagate_downstream_naming_the_nearest_upstream() -> None:
    wf = Workflow("w", {"a": [], "b": ["a"], "c": ["b"], "d": ["c"], "side": []})
    resolver = wf.resolver()
    step = resolver.complete("a", S.FAILED)
    assert [(s.node, s.reason) for s in step.skipped] == [
        ("b", "upstream a FAILED"),
        ("c", "upstream b SKIPPED"),
        ("d", "upstream c SKIPPED"),
    ]
    assert all(s.counts_as == "failed" for s in step.skipped)
    assert resolver.ready == {"side"}
    assert not resolver.finished


def test_a_failure_handler_runs_after_an_upstream_failed_chain() -> None:
    """A -> B -> alert(ANY_FAILED): B is skipped because A failed, so it counts as
    failed, and the alert runs (as Airflow's upstream_failed would)."""
    wf = Workflow("w", {"a": [], "b": ["a"], "alert": ["b"]}, rules={"alert": R.ANY_FAILED})
    resolver = wf.resolver()
    step = resolver.complete("a", S.FAILED)
    assert step.ready == ("alert",)
    assert [s.node for s in step.skipped] == ["b"]


def test_a_rule_skip_reason_says_what_the_rule_needed() -> None:
    wf = Workflow("w", {"a": [], "on_fail": ["a"]}, rules={"on_fail": R.ALL_FAILED})
    (skip,) = wf.resolver().complete("a", S.SUCCEEDED).skipped
    assert skip.reason == "upstream a SUCCEEDED; ALL_FAILED needs every upstream node to fail"
    assert skip.counts_as == "skipped"


def test_a_join_after_a_skip_names_the_worst_upstream() -> None:
    wf = Workflow("w", {"a": [], "b": [], "join": ["a", "b"]})
    resolver = wf.resolver()
    assert resolver.complete("a", S.SKIPPED).skipped == ()  # still waits on b
    (skip,) = resolver.complete("b", S.CANCELLED).skipped
    assert (skip.upstream, skip.counts_as) == ("b", "cancelled")


# -- resolver misuse -----------------------------------------------------------------


def test_completing_an_unknown_node_is_refused() -> None:
    with pytest.raises(NodeNotFound, match="'nope'"):
        Workflow("w", {"a": []}).resolver().complete("nope", S.SUCCEEDED)


@pytest.mark.parametrize("status", [S.RUNNING, S.PENDING, "DONE", None])
def test_completing_with_a_status_that_is_not_terminal_is_refused(status: object) -> None:
    with pytest.raises(InvalidCompletion, match="use a terminal status"):
        Workflow("w", {"a": []}).resolver().complete("a", status)  # type: ignore[arg-type]


def test_completing_a_node_that_is_not_ready_is_refused_saying_why() -> None:
    resolver = Workflow("w", {"a": [], "b": ["a"]}).resolver()
    with pytest.raises(
        InvalidCompletion, match=r"'b' .* is not ready: b is waiting on a \(QUEUED\)"
    ):
        resolver.complete("b", S.SUCCEEDED)


def test_completing_a_node_twice_or_a_skipped_node_is_refused() -> None:
    resolver = Workflow("w", {"a": [], "b": ["a"]}).resolver()
    resolver.complete("a", "FAILED")
    with pytest.raises(InvalidCompletion, match=r"'a' .* already finished \(FAILED\)"):
        resolver.complete("a", S.SUCCEEDED)
    with pytest.raises(InvalidCompletion, match=r"'b' .* already finished \(SKIPPED\)"):
        resolver.complete("b", S.SUCCEEDED)


def test_cancel_cancels_what_has_not_started_and_leaves_ready_nodes_to_finish() -> None:
    wf = Workflow("w", {"a": [], "b": ["a"], "c": ["b"], "cleanup": ["c"]},
                  rules={"cleanup": R.ALL_DONE})  # fmt: skip
    resolver = wf.resolver()
    assert resolver.cancel() == ("b", "c", "cleanup")
    assert resolver.ready == {"a"}
    assert resolver.complete("a", S.CANCELLED) == type(resolver.initial)()
    assert resolver.finished
    assert resolver.outcome().status is S.CANCELLED


# -- explain -------------------------------------------------------------------------


def test_explain_ready_active_impossible_and_unknown() -> None:
    wf = Workflow("w", {"a": [], "b": [], "join": ["a", "b"]}, rules={"join": R.ANY_SUCCEEDED})
    assert wf.explain("a").verdict == "ready"
    assert wf.explain("a").text == "a is ready to run: its rule ALL_SUCCEEDED is met"
    assert wf.explain("a", {"a": "RUNNING"}).text == "a is RUNNING"
    assert wf.explain("a", {"a": "RUNNING"}).verdict == "active"
    waiting = wf.explain("join", {"a": S.FAILED, "b": S.QUEUED})
    assert waiting.text == "join is waiting on b (QUEUED) (rule ANY_SUCCEEDED)"
    stuck = wf.explain("join", {"a": S.FAILED, "b": S.SKIPPED})
    assert stuck.verdict == "impossible"
    assert stuck.blocked_by == (("a", S.FAILED),)
    assert (
        stuck.text == "join cannot run: upstream a FAILED (rule ANY_SUCCEEDED); it will be skipped"
    )
    assert str(stuck) == stuck.text
    with pytest.raises(NodeNotFound):
        wf.explain("nope")
    with pytest.raises(NodeNotFound):
        wf.explain("a", {"nope": S.FAILED})
    with pytest.raises(ValueError, match="'DONE'"):
        wf.explain("a", {"a": "DONE"})


def test_explain_says_a_join_after_a_skip_cannot_run_before_it_is_skipped() -> None:
    wf = Workflow("w", {"a": [], "b": [], "join": ["a", "b"]})
    why = wf.explain("join", {"a": S.SKIPPED, "b": S.RUNNING})
    assert (why.verdict, why.blocked_by, why.waiting_on) == (
        "impossible",
        (("a", S.SKIPPED),),
        ("b",),
    )
    assert (
        why.text
        == "join cannot run: upstream a SKIPPED; it will be skipped once b (RUNNING) finishes"
    )
    assert wf.explain("join", {"a": S.SUCCEEDED, "b": S.RUNNING}).verdict == "waiting"


def test_explain_a_skipped_chain_counts_the_skip_as_the_failure_behind_it() -> None:
    wf = Workflow("w", {"a": [], "b": ["a"], "c": ["b"], "alert": ["c"]},
                  rules={"alert": R.ALL_FAILED})  # fmt: skip
    why = wf.explain("alert", {"a": S.FAILED, "b": S.SKIPPED, "c": S.SKIPPED})
    assert why.verdict == "ready"


def test_resolver_explain_counts_ready_nodes_as_queued() -> None:
    resolver = Workflow("w", {"a": [], "b": ["a"]}).resolver()
    assert resolver.explain("b").waiting_on == ("a",)
    assert resolver.explain("a").status is S.QUEUED


# -- outcome -------------------------------------------------------------------------


ETL = {"extract": [], "load": ["extract"], "alert": ["extract"], "cleanup": ["load"]}
ETL_RULES = {"alert": R.ANY_FAILED, "cleanup": R.ALL_DONE}


@pytest.mark.parametrize(
    ("statuses", "expected", "reason"),
    [
        ({"extract": "SUCCEEDED", "load": "SUCCEEDED", "alert": "SKIPPED", "cleanup": "SUCCEEDED"},
         S.SUCCEEDED, "succeeded"),
        ({"extract": "FAILED", "load": "SKIPPED", "alert": "SUCCEEDED", "cleanup": "SUCCEEDED"},
         S.SUCCEEDED, "succeeded; failures handled: extract"),
        ({"extract": "FAILED", "load": "SKIPPED", "alert": "FAILED", "cleanup": "SUCCEEDED"},
         S.FAILED, "failed: extract, alert"),
        ({"extract": "SUCCEEDED", "load": "FAILED", "alert": "SKIPPED", "cleanup": "SUCCEEDED"},
         S.FAILED, "failed: load"),
        ({"extract": "SUCCEEDED", "load": "CANCELLED", "alert": "SKIPPED", "cleanup": "SUCCEEDED"},
         S.CANCELLED, "cancelled: load"),
        ({"extract": "SUCCEEDED", "load": "CANCELLED", "alert": "SKIPPED", "cleanup": "FAILED"},
         S.FAILED, "failed: cleanup"),
        ({"extract": "SUCCEEDED", "load": "RUNNING"}, None, "unfinished: load, alert, cleanup"),
    ],
)  # fmt: skip
def test_workflow_outcome(statuses: dict[str, str], expected: Status | None, reason: str) -> None:
    outcome = Workflow("etl", ETL, rules=ETL_RULES).outcome(statuses)  # type: ignore[arg-type]
    assert outcome.status is expected
    assert outcome.reason == reason


def test_an_all_done_cleanup_does_not_hide_a_failure() -> None:
    """Airflow judges a DAG run by its leaves, so a succeeding ALL_DONE cleanup makes
    a failed run look green; here only a failure handler tolerates a failure."""
    outcome = Workflow("etl", ETL, rules=ETL_RULES).outcome(
        {"extract": "SUCCEEDED", "load": "FAILED", "alert": "SKIPPED", "cleanup": "SUCCEEDED"}
    )
    assert (outcome.status, outcome.failed, outcome.tolerated) == (S.FAILED, ("load",), ())


# -- exports -------------------------------------------------------------------------


BILLING = Workflow("billing", {"Generate_Invoice": [], "Send_Email_Invoice": ["Generate_Invoice"]})


def test_mermaid_without_statuses_is_the_bare_graph() -> None:
    assert BILLING.to_mermaid(direction="TD") == (
        'flowchart TD\n    n0["Generate_Invoice"]\n    n1["Send_Email_Invoice"]\n    n0 --> n1'
    )


def test_mermaid_overlay_marks_the_running_node() -> None:
    text = BILLING.to_mermaid({"Generate_Invoice": S.RUNNING})
    assert '    n0["▶ Generate_Invoice"]:::running' in text
    assert '    n1["Send_Email_Invoice"]:::pending' in text
    assert "classDef running fill:#d0ebff,stroke:#1864ab,color:#212529,stroke-width:3px" in text
    assert "classDef pending" in text
    assert "classDef failed" not in text
    # running= marks a node without a statuses mapping.
    assert ":::running" in BILLING.to_mermaid(running=["Generate_Invoice"])


def test_exports_escape_awkward_names() -> None:
    wf = Workflow('say "hi"', {'a "quoted" \\ node': [], "b": ['a "quoted" \\ node']})
    assert '["a #quot;quoted#quot; \\ node"]' in wf.to_mermaid()
    dot = wf.to_dot({"b": S.SKIPPED})
    assert dot.startswith('digraph "say \\"hi\\"" {')
    assert '"a \\"quoted\\" \\\\ node" -> "b";' in dot
    assert 'label="b\\nSKIPPED"' in dot
    assert 'style="rounded,filled,dashed"' in dot


def test_dot_overlay_colours_each_status() -> None:
    dot = BILLING.to_dot({"Generate_Invoice": S.FAILED, "Send_Email_Invoice": S.SKIPPED})
    assert '"Generate_Invoice" [label="Generate_Invoice\\nFAILED", fillcolor="#ffe3e3"' in dot
    assert dot.endswith("}")


def test_text_form_for_terminals() -> None:
    wf = Workflow("etl", ETL, rules=ETL_RULES)
    assert wf.to_text({"extract": "SUCCEEDED", "load": "RUNNING"}) == "\n".join(
        [
            "workflow etl: 4 nodes, 3 edges",
            "level 0",
            "    extract  SUCCEEDED",
            "level 1",
            "  ▶ load     RUNNING    <- extract",
            "    alert    PENDING    [ANY_FAILED]  <- extract",
            "level 2",
            "    cleanup  PENDING    [ALL_DONE]  <- load",
        ]
    )
    assert wf.to_text().splitlines()[2] == "    extract"


def test_running_marks_only_unfinished_nodes_in_an_overlay() -> None:
    text = BILLING.to_text({"Generate_Invoice": S.SUCCEEDED}, running="Generate_Invoice")
    assert "  ▶ Generate_Invoice    SUCCEEDED" in text
