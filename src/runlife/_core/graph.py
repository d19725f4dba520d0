"""Workflows: validated dependency graphs of jobs, trigger rules and their resolution.

A `Workflow` is an immutable value: its constructor validates the graph and compiles
it once into integer adjacency arrays, which every later question reads. A
`Resolver` (from `Workflow.resolver`) is the one mutable object here: it follows one
workflow run, node by node, and says which nodes became ready and which can no
longer run, at a cost proportional to the finished node's out-degree.

How each upstream outcome counts for a trigger rule (docs/workflows.md has the table):
every finished node counts downstream as one of four *classes*: succeeded, failed,
cancelled or skipped. A node that ran counts as its status. A node the resolver
skipped counts as the class that broke its rule (Airflow's ``upstream_failed`` is a
skip that counts as failed), so that ``A (FAILED) -> B (skipped) -> C (ALL_FAILED)``
runs ``C`` as Airflow would.

networkx is imported lazily, only here, and only to name a cycle's nodes; none of
its types leaves this module.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal, Protocol, TypeAlias, TypeVar

import attrs

from runlife._core.convert import to_timedelta
from runlife._core.fast import compile_maker
from runlife._core.status import Status
from runlife.exceptions import (
    DependencyCycle,
    InvalidCompletion,
    InvalidWorkflow,
    NodeNotFound,
)

__all__ = (
    "CriticalPath",
    "Explanation",
    "Named",
    "NodeRef",
    "Resolution",
    "Resolver",
    "RunGraph",
    "SkippedNode",
    "TriggerRule",
    "Workflow",
    "WorkflowOutcome",
)


class Named(Protocol):
    """Anything that can stand for a node: a job, or any object with a ``name``."""

    @property
    def name(self) -> str: ...


NodeRef: TypeAlias = "str | Named"
"""A node given by name or by an object with a ``name`` (such as a job)."""


# Mapping is invariant in its keys: a type variable lets a dict keyed by str, by
# jobs, or by both be passed where keys may be either.
_GraphKey = TypeVar("_GraphKey", bound="str | Named")
_RuleKey = TypeVar("_RuleKey", bound="str | Named")


class TriggerRule(enum.StrEnum):
    """When a node may run, given how its direct upstream nodes ended.

    Each upstream node counts as *succeeded*, *failed* (it FAILED, or it was skipped
    because a failure upstream broke its rule: Airflow's ``upstream_failed``),
    *cancelled* (it was CANCELLED, or skipped because of a cancellation) or
    *skipped* (any other skip). A node without upstream nodes is ready at once,
    whatever its rule. docs/workflows.md has the full table.

    >>> TriggerRule("all_done")
    <TriggerRule.ALL_DONE: 'ALL_DONE'>
    """

    ALL_SUCCEEDED = "ALL_SUCCEEDED"
    """Every upstream node succeeded (the default; Airflow's ``all_success``)."""
    ALL_DONE = "ALL_DONE"
    """Every upstream node finished, however it ended (``all_done``)."""
    ALL_FAILED = "ALL_FAILED"
    """Every upstream node failed (``all_failed``)."""
    ANY_SUCCEEDED = "ANY_SUCCEEDED"
    """As soon as one upstream node succeeded (``one_success``)."""
    ANY_FAILED = "ANY_FAILED"
    """As soon as one upstream node failed (``one_failed``)."""
    NONE_FAILED = "NONE_FAILED"
    """Every upstream node finished, each succeeded or was skipped (``none_failed``)."""
    NONE_SKIPPED = "NONE_SKIPPED"
    """Every upstream node finished and none was skipped (``none_skipped``)."""
    ALWAYS = "ALWAYS"
    """At once, without waiting for upstream nodes (``always``)."""

    @classmethod
    def _missing_(cls, value: object) -> TriggerRule | None:
        # Airflow spells its rules in lower case; accept that spelling too.
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        return None


# Rule codes index this tuple; the resolver compares small ints on its hot path.
_RULES = tuple(TriggerRule)
_ALL_SUCCEEDED, _ALL_DONE, _ALL_FAILED, _ANY_SUCCEEDED = 0, 1, 2, 3
_ANY_FAILED, _NONE_FAILED, _NONE_SKIPPED, _ALWAYS = 4, 5, 6, 7
_RULE_CODE = {rule: code for code, rule in enumerate(_RULES)}

# Outcome classes. Among the ways of not succeeding, a higher code wins when a node
# is skipped for several of them: counting as failed keeps failure handlers firing.
_S, _K, _C, _F = 0, 1, 2, 3
_CLASS_OF_STATUS: dict[str, int] = {
    Status.SUCCEEDED: _S,
    Status.SKIPPED: _K,
    Status.CANCELLED: _C,
    Status.FAILED: _F,
}
_CLASS_NAME = {_S: "succeeded", _K: "skipped", _C: "cancelled", _F: "failed"}
_GO = -1
_WAIT = -2

# Node states inside a resolver.
_WAITING, _READY, _FINISHED = 0, 1, 2


def _decide(code: int, arriving: int, all_done: bool, worst: int) -> int:
    """The verdict on a node after one more upstream outcome (*arriving*) arrived.

    *worst* is the highest class among its finished upstream nodes (arriving
    included). Returns `_GO`, `_WAIT`, or the class the node is skipped as. Called
    only while the node is undecided, so each rule may act on the first outcome
    that decides it: the verdict is the same whatever order the outcomes arrive in.
    """
    if code == _ALL_SUCCEEDED:
        if arriving == _F:
            return _F
        if not all_done:
            return _WAIT
        return _GO if worst == _S else worst
    if code in (_ALL_DONE, _ALWAYS):
        return _GO if all_done else _WAIT
    if code == _ALL_FAILED:
        if arriving != _F:
            return _K
        return _GO if all_done else _WAIT
    if code == _ANY_SUCCEEDED:
        if arriving == _S:
            return _GO
        return worst if all_done else _WAIT
    if code == _ANY_FAILED:
        if arriving == _F:
            return _GO
        return _K if all_done else _WAIT
    if code == _NONE_FAILED:
        if arriving == _F:
            return _F
        if not all_done:
            return _WAIT
        return _C if worst == _C else _GO
    # _NONE_SKIPPED
    if arriving == _K:
        return _K
    return _GO if all_done else _WAIT


def _judge(code: int, classes: Sequence[int | None]) -> int:
    """The verdict on a node from its upstream classes (`None`: not finished)."""
    if code == _ALWAYS or not classes:
        return _GO
    verdict = _WAIT
    worst = _S
    # Folding the outcomes through _decide in any order gives the same verdict
    # (see _decide); finished ones first, so that "not finished" can only wait.
    finished = sorted((c for c in classes if c is not None), reverse=True)
    for done, cls in enumerate(finished, start=1):
        worst = max(worst, cls)
        verdict = _decide(code, cls, done == len(classes), worst)
        if verdict != _WAIT:
            return verdict
    return verdict


_NEEDS = {
    _ALL_SUCCEEDED: "every upstream node to succeed",
    _ALL_DONE: "every upstream node to finish",
    _ALL_FAILED: "every upstream node to fail",
    _ANY_SUCCEEDED: "one upstream node to succeed",
    _ANY_FAILED: "one upstream node to fail",
    _NONE_FAILED: "every upstream node to succeed or be skipped",
    _NONE_SKIPPED: "every upstream node to finish without being skipped",
    _ALWAYS: "nothing",
}


def _name_of(ref: object, workflow: str) -> str:
    if isinstance(ref, str):
        name = ref
    else:
        attr = getattr(ref, "name", None)
        if not isinstance(attr, str):
            raise InvalidWorkflow(
                f"workflow {workflow!r}: {ref!r} is neither a node name (str) nor an "
                "object with a str `name` (such as a job)"
            )
        name = attr
    if not name:
        raise InvalidWorkflow(f"workflow {workflow!r}: a node name must not be empty", node=name)
    return name


@attrs.frozen(kw_only=True)
class SkippedNode:
    """A node the resolver skipped because its trigger rule can no longer be met.

    Attributes:
        node: the skipped node.
        upstream: the upstream node whose outcome decided it.
        upstream_status: that node's status.
        counts_as: how the skipped node counts for its own downstream nodes:
            ``"failed"``, ``"cancelled"`` or ``"skipped"``.
        reason: for people, e.g. ``"upstream Generate_Invoice FAILED"``.
    """

    node: str
    upstream: str
    upstream_status: Status
    counts_as: Literal["failed", "cancelled", "skipped"]
    reason: str

    def naming(self, run_id: str) -> str:
        """The reason, naming the upstream node's run too (how a runtime records it).

        >>> skip = SkippedNode(node="b", upstream="a", upstream_status=Status.FAILED,
        ...                    counts_as="failed", reason="upstream a FAILED")
        >>> skip.naming("0190aa")
        'upstream a (run 0190aa) FAILED'
        """
        head = f"upstream {self.upstream} "
        return f"{head}(run {run_id}) {self.reason.removeprefix(head)}"


@attrs.frozen(kw_only=True)
class Resolution:
    """What one step of a `Resolver` decided.

    Attributes:
        ready: nodes that may now run, in the order they became ready.
        skipped: nodes that can no longer run (now SKIPPED), upstream first.
    """

    ready: tuple[str, ...] = ()
    skipped: tuple[SkippedNode, ...] = ()


# A resolver builds one of each per completion; skip attrs' keyword plumbing.
_resolution: Callable[..., Resolution] = compile_maker(Resolution)
_skipped_node: Callable[..., SkippedNode] = compile_maker(SkippedNode)


@attrs.frozen(kw_only=True)
class Explanation:
    """Why a node is, or is not, running: the answer to `Workflow.explain`.

    Attributes:
        node: the node asked about.
        status: its own status (PENDING when the statuses given did not name it).
        rule: its trigger rule.
        verdict: ``"waiting"`` (its rule waits on upstream nodes), ``"ready"`` (its
            rule is met; it waits only to be started), ``"impossible"`` (its rule can
            no longer be met: it will be skipped), ``"active"`` (it has started) or
            ``"finished"``. A node whose rule can no longer be met is ``"impossible"``
            even while the resolver still waits for its other upstream nodes (a skip
            caused by a skip or a cancellation waits for them; see the docs).
        upstream: each direct upstream node with its status, in topological order.
        waiting_on: the upstream nodes still unfinished (while waiting, or while an
            impossible node waits for them before it is skipped).
        blocked_by: the upstream nodes (with their statuses) whose outcome broke the
            rule, when the verdict is ``"impossible"`` or the node was skipped.
    """

    node: str
    status: Status
    rule: TriggerRule
    verdict: Literal["waiting", "ready", "impossible", "active", "finished"]
    upstream: tuple[tuple[str, Status], ...]
    waiting_on: tuple[str, ...]
    blocked_by: tuple[tuple[str, Status], ...]

    @property
    def text(self) -> str:
        """One readable sentence, e.g. ``Send_Email_Invoice is waiting on ...``."""
        rule = "" if self.rule is TriggerRule.ALL_SUCCEEDED else f" (rule {self.rule})"
        statuses = dict(self.upstream)
        if self.verdict == "waiting":
            on = ", ".join(f"{n} ({statuses[n]})" for n in self.waiting_on)
            return f"{self.node} is waiting on {on}{rule}"
        if self.verdict == "ready":
            return f"{self.node} is ready to run: its rule {self.rule} is met"
        blocked = ", ".join(f"upstream {n} {s}" for n, s in self.blocked_by)
        if self.verdict == "impossible":
            when = ""
            if self.waiting_on:
                on = ", ".join(f"{n} ({statuses[n]})" for n in self.waiting_on)
                when = f" once {on} {'finishes' if len(self.waiting_on) == 1 else 'finish'}"
            return f"{self.node} cannot run: {blocked}{rule}; it will be skipped{when}"
        if self.status is Status.SKIPPED and blocked:
            return f"{self.node} was SKIPPED: {blocked}{rule}"
        return f"{self.node} is {self.status}"

    def __str__(self) -> str:
        return self.text


@attrs.frozen(kw_only=True)
class CriticalPath:
    """The longest chain of dependent nodes, by duration.

    Attributes:
        nodes: the chain, upstream first.
        duration: the sum of its nodes' durations: no run of the workflow can end
            sooner than this after it starts, however much runs in parallel.
        bottleneck: the longest node on the chain (the first, on a tie).
    """

    nodes: tuple[str, ...]
    duration: timedelta
    bottleneck: str


@attrs.frozen(kw_only=True)
class WorkflowOutcome:
    """How a workflow run ended, judged from its nodes (see `Workflow.outcome`).

    Attributes:
        status: SUCCEEDED, FAILED or CANCELLED; `None` while a node is unfinished.
        failed: FAILED nodes that nothing in the workflow tolerated.
        tolerated: FAILED nodes that a succeeded ANY_FAILED/ALL_FAILED node handled.
        cancelled: CANCELLED nodes.
        unfinished: nodes not yet in a terminal status.
    """

    status: Status | None
    failed: tuple[str, ...] = ()
    tolerated: tuple[str, ...] = ()
    cancelled: tuple[str, ...] = ()
    unfinished: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        """Why the workflow run ended so, for people."""
        if self.status is None:
            return f"unfinished: {', '.join(self.unfinished)}"
        if self.status is Status.FAILED:
            return f"failed: {', '.join(self.failed)}"
        if self.status is Status.CANCELLED:
            return f"cancelled: {', '.join(self.cancelled)}"
        if self.tolerated:
            return f"succeeded; failures handled: {', '.join(self.tolerated)}"
        return "succeeded"


# Overlay colours per status: (fill, stroke), shared by the Mermaid and DOT exports.
_COLOURS = {
    Status.PENDING: ("#f1f3f5", "#868e96"),
    Status.QUEUED: ("#e7f5ff", "#1c7ed6"),
    Status.RUNNING: ("#d0ebff", "#1864ab"),
    Status.RETRYING: ("#fff4e6", "#e8590c"),
    Status.WAITING: ("#fff9db", "#f08c00"),
    Status.SUCCEEDED: ("#d3f9d8", "#2b8a3e"),
    Status.FAILED: ("#ffe3e3", "#c92a2a"),
    Status.CANCELLED: ("#dee2e6", "#495057"),
    Status.SKIPPED: ("#f8f9fa", "#adb5bd"),
}
_RUNNING_MARK = "▶"
_SPEC_KEYS = ("name", "nodes", "rules")
_SPEC_NODE_KEYS = ("name", "upstream")
_SPEC_NODES = "a list of nodes, each an object with the keys name, upstream"
_SPEC_RULES = "an object of node name to trigger rule name, such as 'ALL_DONE'"


class Workflow:
    """A named DAG of jobs, validated and compiled once; immutable.

    Args:
        name: the workflow's name.
        graph: each node (a job, or any object with a str ``name``, or a name) and
            the nodes it depends on (its *upstream* nodes). Every node must be a key,
            also those without upstream nodes (give them ``[]``).
        rules: the trigger rule of any node whose rule is not ``ALL_SUCCEEDED``
            (a `TriggerRule`, or its name in upper or lower case).

    Raises:
        InvalidWorkflow: naming the node (``.node``), when a node is given twice (even
            once as a job and once by name), an upstream node is not a key, a node
            lists the same upstream twice, a rule names an absent node or is not a
            trigger rule, or the graph is empty.
        DependencyCycle: naming the nodes of one cycle in order (``.cycle``), when a
            node depends on itself, directly or through others.

    >>> wf = Workflow("billing", {"Generate_Invoice": [],
    ...                           "Send_Email_Invoice": ["Generate_Invoice"]})
    >>> wf.order
    ('Generate_Invoice', 'Send_Email_Invoice')
    >>> Workflow("loop", {"a": ["b"], "b": ["a"]})
    Traceback (most recent call last):
    ...
    runlife.exceptions.DependencyCycle: workflow 'loop' has a dependency cycle: a -> b -> a
    """

    # A plain slotted class rather than attrs: the constructor validates and compiles,
    # and the compiled arrays are private, so no field would be a public one.
    __slots__ = (
        "_down",
        "_given",
        "_indeg",
        "_index",
        "_jobs",
        "_level",
        "_names",
        "_rule",
        "_up",
        "name",
    )

    name: str
    """The workflow's name."""

    def __init__(
        self,
        name: str,
        graph: Mapping[_GraphKey, Iterable[NodeRef]],
        *,
        rules: Mapping[_RuleKey, TriggerRule | str] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidWorkflow(f"a workflow's name must be a non-empty str, not {name!r}")
        self.name = name
        names: list[str] = []
        index: dict[str, int] = {}
        jobs: dict[str, NodeRef] = {}
        for ref in graph:
            node = _name_of(ref, name)
            if node in index:
                raise InvalidWorkflow(f"workflow {name!r} lists node {node!r} twice", node=node)
            index[node] = len(names)
            names.append(node)
            jobs[node] = ref
        if not names:
            raise InvalidWorkflow(f"workflow {name!r} has no nodes")

        n = len(names)
        up: list[list[int]] = []
        down: list[list[int]] = [[] for _ in range(n)]
        indeg = [0] * n
        get = index.get
        for v, refs in enumerate(graph.values()):
            if isinstance(refs, str):
                raise InvalidWorkflow(
                    f"workflow {name!r}: the upstream nodes of {names[v]!r} must be a list, "
                    f"not the str {refs!r}; write [{refs!r}]",
                    node=names[v],
                )
            ups: list[int] = []
            for up_ref in refs:
                u = get(up_ref) if type(up_ref) is str else get(_name_of(up_ref, name))
                if u is None:
                    missing = _name_of(up_ref, name)
                    raise InvalidWorkflow(
                        f"workflow {name!r}: node {names[v]!r} depends on {missing!r}, which "
                        "is not a node of the workflow (every node must be a key)",
                        node=missing,
                    )
                if u == v:
                    raise DependencyCycle(name, (names[v],))
                down[u].append(v)
                ups.append(u)
            if len(ups) > 1 and len(set(ups)) != len(ups):
                twice = next(u for i, u in enumerate(ups) if u in ups[:i])
                raise InvalidWorkflow(
                    f"workflow {name!r}: node {names[v]!r} lists upstream {names[twice]!r} twice",
                    node=names[twice],
                )
            up.append(ups)
            indeg[v] = len(ups)

        rule = bytearray(n)  # all _ALL_SUCCEEDED
        for rule_ref, value in (rules or {}).items():
            node = _name_of(rule_ref, name)
            v_or_none = get(node)
            if v_or_none is None:
                raise InvalidWorkflow(
                    f"workflow {name!r} has a rule for {node!r}, which is not a node of it",
                    node=node,
                )
            try:
                rule[v_or_none] = _RULE_CODE[TriggerRule(value)]
            except ValueError:
                raise InvalidWorkflow(
                    f"workflow {name!r}: the rule of {node!r} is {value!r}, not a trigger "
                    f"rule; use one of {', '.join(r.value for r in _RULES)}",
                    node=node,
                ) from None

        # Kahn's algorithm: the topological order, and a cycle check for free (the
        # order is short of nodes exactly when the graph has a cycle).
        remaining = indeg.copy()
        order = [v for v in range(n) if not remaining[v]]
        head = 0
        while head < len(order):
            for w in down[order[head]]:
                remaining[w] -= 1
                if not remaining[w]:
                    order.append(w)
            head += 1
        if len(order) < n:
            raise DependencyCycle(name, _find_cycle(names, down, remaining))

        # From here on a node's index is its topological position. On 100k-node
        # graphs the resolver's cost is mostly cache misses; laying the arrays, the
        # index ints and fresh copies of the names out in this order keeps what one
        # completion touches close together (per completion about 2.5x cheaper).
        pos = [0] * n
        for i, v in enumerate(order):
            pos[v] = i
        self._names: tuple[str, ...] = tuple([names[v].encode().decode() for v in order])
        self._index: dict[str, int] = {node: i for i, node in enumerate(self._names)}
        self._given: tuple[int, ...] = tuple(pos)
        self._jobs = jobs
        self._up: list[list[int]] = [sorted([pos[u] for u in up[v]]) for v in order]
        self._down: list[list[int]] = [sorted([pos[w] for w in down[v]]) for v in order]
        self._indeg: list[int] = [indeg[v] for v in order]
        self._rule = bytes([rule[v] for v in order])
        level = [0] * n
        for v, ups in enumerate(self._up):
            if ups:
                level[v] = 1 + max([level[u] for u in ups])
        self._level = level

    # -- structure ---------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        """Equal workflows have one name, nodes, dependencies and rules, whatever the
        order of their mappings and whether their nodes were given as jobs or names."""
        if not isinstance(other, Workflow):
            return NotImplemented
        if self is other:
            return True
        return (
            self.name == other.name
            and len(self._names) == len(other._names)
            and self._shape() == other._shape()
        )

    def __hash__(self) -> int:
        return hash((self.name, frozenset(self._names)))

    def _shape(self) -> dict[str, tuple[frozenset[str], int]]:
        names, rule = self._names, self._rule
        return {
            names[v]: (frozenset([names[u] for u in ups]), rule[v])
            for v, ups in enumerate(self._up)
        }

    def to_spec(self) -> dict[str, Any]:
        """This workflow as JSON: its nodes in the mapping's order, each with its
        upstream nodes (by name, in topological order), and the rules that are
        not ``ALL_SUCCEEDED``.

        >>> Workflow("billing", {"Generate_Invoice": [],
        ...                      "Send_Email_Invoice": ["Generate_Invoice"]},
        ...          rules={"Send_Email_Invoice": "ALL_DONE"}).to_spec()
        {'name': 'billing', 'nodes': [{'name': 'Generate_Invoice', 'upstream': []}, {'name': 'Send_Email_Invoice', 'upstream': ['Generate_Invoice']}], 'rules': {'Send_Email_Invoice': 'ALL_DONE'}}
        """  # noqa: E501
        names, up = self._names, self._up
        return {
            "name": self.name,
            "nodes": [
                {"name": names[v], "upstream": [names[u] for u in up[v]]} for v in self._given
            ],
            "rules": {names[v]: _RULES[code].value for v, code in enumerate(self._rule) if code},
        }

    @classmethod
    def from_spec(cls, data: Mapping[str, Any]) -> Workflow:
        """Read a workflow written by `to_spec` (its nodes are names, not jobs).

        Raises:
            InvalidPolicy: a missing or unknown key, or a value of the wrong type;
                ``field`` is its path (``"workflow.nodes[1].upstream"``).
            InvalidWorkflow: the graph cannot work, as the constructor says.

        >>> wf = Workflow("w", {"src": [], "model": ["src"], "dash": ["model"]})
        >>> Workflow.from_spec(wf.to_spec()) == wf
        True
        """
        from runlife._core.spec import (
            read_list,
            read_object,
            read_str,
            read_str_map,
            read_strs,
            under,
        )

        with under("workflow"):
            fields = read_object(data, _SPEC_KEYS, "a workflow spec")
            name = read_str(fields["name"], "name")
            nodes = read_list(fields["nodes"], "nodes", _SPEC_NODES)
            graph: dict[str, list[str]] = {}
            for i, node in enumerate(nodes):
                with under(f"nodes[{i}]"):
                    item = read_object(node, _SPEC_NODE_KEYS, "a workflow node")
                    node_name = read_str(item["name"], "name")
                    upstream = read_strs(item["upstream"], "upstream", "a list of node names")
                if node_name in graph:
                    raise InvalidWorkflow(
                        f"workflow {name!r} lists node {node_name!r} twice", node=node_name
                    )
                graph[node_name] = upstream
            rules: dict[str, str] = {}
            for node_name, rule in read_str_map(fields["rules"], "rules", _SPEC_RULES).items():
                rules[node_name] = read_str(rule, f"rules[{node_name!r}]", _SPEC_RULES)
            return Workflow(name, graph, rules=rules)

    def __repr__(self) -> str:
        edges = sum(self._indeg)
        return f"<Workflow {self.name!r}: {len(self._names)} nodes, {edges} edges>"

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, node: object) -> bool:
        return isinstance(node, str) and node in self._index

    @property
    def nodes(self) -> tuple[str, ...]:
        """The node names, in the order the mapping gave them."""
        names = self._names
        return tuple([names[i] for i in self._given])

    @property
    def jobs(self) -> Mapping[str, NodeRef]:
        """Each node's name and what the mapping gave for it (a job, or the name)."""
        return dict(self._jobs)

    @property
    def edges(self) -> tuple[tuple[str, str], ...]:
        """Every dependency as ``(upstream, node)``, in topological order."""
        names = self._names
        return tuple((names[u], names[v]) for v, ups in enumerate(self._up) for u in ups)

    @property
    def roots(self) -> tuple[str, ...]:
        """The nodes without upstream nodes, in the order the mapping gave them."""
        return tuple(self._names[v] for v, d in enumerate(self._indeg) if not d)

    @property
    def order(self) -> tuple[str, ...]:
        """A topological order: every node after all its upstream nodes."""
        return self._names

    @property
    def levels(self) -> tuple[tuple[str, ...], ...]:
        """The nodes by depth: level 0 are the roots, level k+1 depends on level k.

        A node's level is the length of the longest chain of upstream nodes before it,
        so every node of a level can run in parallel once the levels before it ran.

        >>> Workflow("w", {"a": [], "b": ["a"], "c": ["a", "b"], "d": []}).levels
        (('a', 'd'), ('b',), ('c',))
        """
        out: list[list[str]] = [[] for _ in range(max(self._level) + 1)]
        names, level = self._names, self._level
        for v, node in enumerate(names):
            out[level[v]].append(node)
        return tuple(tuple(group) for group in out)

    def rule(self, node: str) -> TriggerRule:
        """The trigger rule of *node*; raises `NodeNotFound` for an unknown node."""
        return _RULES[self._rule[self._i(node)]]

    @property
    def rules(self) -> Mapping[str, TriggerRule]:
        """The rule of every node whose rule is not ``ALL_SUCCEEDED``."""
        return {self._names[v]: _RULES[code] for v, code in enumerate(self._rule) if code}

    def _i(self, node: str) -> int:
        i = self._index.get(node)
        if i is None:
            raise NodeNotFound(self.name, node, self._names)
        return i

    # -- lineage -----------------------------------------------------------------

    def upstream(self, node: str, *, transitive: bool = True) -> tuple[str, ...]:
        """The nodes *node* depends on, in topological order (nearest last).

        With ``transitive=False`` only its direct upstream nodes.
        The answer to "why is this dashboard stale": everything that feeds it.

        >>> wf = Workflow("w", {"src": [], "model": ["src"], "dash": ["model"]})
        >>> wf.upstream("dash"), wf.upstream("dash", transitive=False)
        (('src', 'model'), ('model',))
        """
        return self._lineage(node, self._up, transitive)

    def downstream(self, node: str, *, transitive: bool = True) -> tuple[str, ...]:
        """The nodes that depend on *node*, in topological order (nearest first).

        With ``transitive=False`` only its direct downstream nodes.
        """
        return self._lineage(node, self._down, transitive)

    def _lineage(self, node: str, adjacency: list[list[int]], transitive: bool) -> tuple[str, ...]:
        start = self._i(node)
        names = self._names
        if not transitive:
            return tuple(names[v] for v in sorted(adjacency[start]))
        seen = {start}
        stack = [start]
        while stack:
            for w in adjacency[stack.pop()]:
                if w not in seen:
                    seen.add(w)
                    stack.append(w)
        seen.discard(start)
        return tuple([names[v] for v in sorted(seen)])

    def critical_path(self, durations: Mapping[str, float | timedelta]) -> CriticalPath:
        """The chain of dependent nodes with the longest total duration.

        Args:
            durations: each node's duration (seconds or a timedelta), e.g. from its
                last runs; a node left out counts as taking no time.

        Raises:
            NodeNotFound: a duration names a node the workflow does not have.

        >>> wf = Workflow("w", {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]})
        >>> path = wf.critical_path({"a": 60, "b": 600, "c": 30, "d": 5})
        >>> path.nodes, path.duration.total_seconds(), path.bottleneck
        (('a', 'b', 'd'), 665.0, 'b')
        """
        n = len(self._names)
        cost = [0.0] * n
        for node, value in durations.items():
            seconds = to_timedelta(value).total_seconds()
            if seconds < 0:
                raise InvalidWorkflow(
                    f"workflow {self.name!r}: the duration of {node!r} is negative ({value!r})",
                    node=node,
                )
            cost[self._i(node)] = seconds
        best = [0.0] * n
        via = [-1] * n
        up = self._up
        for v in range(n):
            longest, through = 0.0, -1
            for u in up[v]:
                if best[u] > longest or through < 0:
                    longest, through = best[u], u
            best[v] = longest + cost[v]
            via[v] = through
        end = max(range(n), key=best.__getitem__)
        chain = [end]
        while via[chain[-1]] >= 0:
            chain.append(via[chain[-1]])
        chain.reverse()
        names = self._names
        bottleneck = max(chain, key=cost.__getitem__)
        return CriticalPath(
            nodes=tuple(names[v] for v in chain),
            duration=timedelta(seconds=best[end]),
            bottleneck=names[bottleneck],
        )

    # -- statuses ----------------------------------------------------------------

    def _statuses(self, statuses: Mapping[str, Status | str] | None) -> list[Status]:
        out = [Status.PENDING] * len(self._names)
        for node, status in (statuses or {}).items():
            out[self._i(node)] = Status(status)
        return out

    def _class_of(self, v: int, status: list[Status], memo: dict[int, int]) -> int | None:
        """The class node *v* counts as downstream, or `None` while it is unfinished."""
        s = status[v]
        if s is not Status.SKIPPED:
            return _CLASS_OF_STATUS.get(s)
        if v in memo:
            return memo[v]
        # A skipped node counts as the class that broke its rule: classify its
        # skipped ancestors first, depth first without recursion (chains are long).
        up, rule = self._up, self._rule
        stack = [(v, False)]
        while stack:
            w, expanded = stack.pop()
            if w in memo:
                continue
            if not expanded:
                stack.append((w, True))
                stack.extend((u, False) for u in up[w] if status[u] is Status.SKIPPED)
                continue
            classes = [
                memo[u] if status[u] is Status.SKIPPED else _CLASS_OF_STATUS.get(status[u])
                for u in up[w]
            ]
            verdict = _judge(rule[w], classes)
            # Skipped by the host, or by a rule that still holds: a plain skip.
            memo[w] = verdict if verdict >= 0 else _K
        return memo[v]

    def explain(self, node: str, statuses: Mapping[str, Status | str] | None = None) -> Explanation:
        """Why *node* is not running (or is): its rule, and its upstream nodes' statuses.

        Args:
            node: the node asked about.
            statuses: the status of each node of the workflow run; a node left out
                counts as PENDING.

        Raises:
            NodeNotFound: *node*, or a node in *statuses*, is not in the workflow.

        >>> wf = Workflow("billing", {"Generate_Invoice": [],
        ...                           "Send_Email_Invoice": ["Generate_Invoice"]})
        >>> print(wf.explain("Send_Email_Invoice", {"Generate_Invoice": "RUNNING"}))
        Send_Email_Invoice is waiting on Generate_Invoice (RUNNING)
        """
        v = self._i(node)
        status = self._statuses(statuses)
        code = self._rule[v]
        names = self._names
        ups = self._up[v]
        memo: dict[int, int] = {}
        classes = [self._class_of(u, status, memo) for u in ups]
        verdict = _judge(code, classes)
        pending = [u for u, c in zip(ups, classes, strict=True) if c is None]
        doomed = verdict
        if verdict == _WAIT:
            # Still waiting, but perhaps in vain: no way the pending upstream nodes
            # can end (all succeeding, or all failing) would meet the rule.
            hopes = [_judge(code, [fill if c is None else c for c in classes]) for fill in (_S, _F)]
            if _GO not in hopes:
                doomed = hopes[0]
        upstream = tuple((names[u], status[u]) for u in ups)
        blocked: tuple[tuple[str, Status], ...] = ()
        if doomed >= 0:
            blocked = tuple(
                (names[u], status[u])
                for u, cls in zip(ups, classes, strict=True)
                if cls is not None and _blames(code, cls, doomed)
            )
        own = status[v]
        said: Literal["waiting", "ready", "impossible", "active", "finished"]
        if own.is_terminal:
            said = "finished"
        elif own is not Status.PENDING:
            said = "active"
        elif doomed >= 0:
            said = "impossible"
        elif verdict == _WAIT:
            said = "waiting"
        else:
            said = "ready"
        waiting_on = tuple(names[u] for u in pending) if said in ("waiting", "impossible") else ()
        return Explanation(
            node=node,
            status=own,
            rule=_RULES[code],
            verdict=said,
            upstream=upstream,
            waiting_on=waiting_on,
            blocked_by=blocked if own in (Status.PENDING, Status.SKIPPED) else (),
        )

    def outcome(self, statuses: Mapping[str, Status | str]) -> WorkflowOutcome:
        """How a workflow run ended, from the statuses of its nodes.

        FAILED when a node FAILED and the workflow did not tolerate it; a failure is
        tolerated when a direct downstream node with rule ``ANY_FAILED`` or
        ``ALL_FAILED`` (a handler declared to run *because* of failure) SUCCEEDED.
        Otherwise CANCELLED when a node was CANCELLED; otherwise SUCCEEDED (every
        node SUCCEEDED or was SKIPPED). `None` while a node is unfinished.

        >>> wf = Workflow("w", {"load": [], "alert": ["load"]},
        ...               rules={"alert": "ANY_FAILED"})
        >>> wf.outcome({"load": "FAILED", "alert": "SUCCEEDED"}).status
        <Status.SUCCEEDED: 'SUCCEEDED'>
        >>> wf.outcome({"load": "FAILED", "alert": "FAILED"}).reason
        'failed: load, alert'
        """
        status = self._statuses(statuses)
        names = self._names
        failed: list[str] = []
        tolerated: list[str] = []
        cancelled: list[str] = []
        unfinished: list[str] = []
        rule = self._rule
        for v, s in enumerate(status):
            if s is Status.FAILED:
                handled = any(
                    rule[w] in (_ANY_FAILED, _ALL_FAILED) and status[w] is Status.SUCCEEDED
                    for w in self._down[v]
                )
                (tolerated if handled else failed).append(names[v])
            elif s is Status.CANCELLED:
                cancelled.append(names[v])
            elif not s.is_terminal:
                unfinished.append(names[v])
        result: Status | None
        if unfinished:
            result = None
        elif failed:
            result = Status.FAILED
        elif cancelled:
            result = Status.CANCELLED
        else:
            result = Status.SUCCEEDED
        return WorkflowOutcome(
            status=result,
            failed=tuple(failed),
            tolerated=tuple(tolerated),
            cancelled=tuple(cancelled),
            unfinished=tuple(unfinished),
        )

    def resolver(self, statuses: Mapping[str, Status | str] | None = None) -> Resolver:
        """A `Resolver` that follows one run of this workflow: a fresh one, or, with
        *statuses*, one that starts from what is known of a run under way (see
        `Resolver`).

        >>> wf = Workflow("w", {"a": [], "b": ["a"], "c": ["b"]})
        >>> r = wf.resolver({"a": Status.FAILED})
        >>> r.initial.ready, [s.node for s in r.initial.skipped]
        ((), ['b', 'c'])
        """
        return Resolver(self, statuses)

    # -- export ------------------------------------------------------------------

    def _overlay(
        self, statuses: Mapping[str, Status | str] | None, running: str | Iterable[str]
    ) -> tuple[list[Status] | None, set[int]]:
        status = self._statuses(statuses) if statuses is not None else None
        marked = {self._i(running)} if isinstance(running, str) else {self._i(r) for r in running}
        if status is not None:
            marked.update(v for v, s in enumerate(status) if s is Status.RUNNING)
            for v in marked:
                if not status[v].is_terminal:
                    status[v] = Status.RUNNING
        return status, marked

    def to_mermaid(
        self,
        statuses: Mapping[str, Status | str] | None = None,
        *,
        running: str | Iterable[str] = (),
        direction: Literal["LR", "TD"] = "LR",
    ) -> str:
        """A Mermaid flowchart of the workflow, with an optional status overlay.

        Args:
            statuses: each node's status; each node then gets the class of its status
                (``succeeded``, ``failed``, ...) with its colours.
            running: node(s) to mark as running (``▶`` and a thick border); nodes
                whose status is RUNNING are marked too.
            direction: ``LR`` (left to right) or ``TD`` (top down).

        >>> wf = Workflow("billing", {"Generate_Invoice": [],
        ...                           "Send_Email_Invoice": ["Generate_Invoice"]})
        >>> print(wf.to_mermaid({"Generate_Invoice": "FAILED",
        ...                      "Send_Email_Invoice": "SKIPPED"}))
        flowchart LR
            n0["Generate_Invoice"]:::failed
            n1["Send_Email_Invoice"]:::skipped
            n0 --> n1
            classDef failed fill:#ffe3e3,stroke:#c92a2a,color:#212529
            classDef skipped fill:#f8f9fa,stroke:#adb5bd,color:#212529,stroke-dasharray:4 3
        """
        status, marked = self._overlay(statuses, running)
        lines = [f"flowchart {direction}"]
        for v, node in enumerate(self._names):
            label = node.replace('"', "#quot;")
            if v in marked:
                label = f"{_RUNNING_MARK} {label}"
            css = ""
            if status is not None:
                css = f":::{status[v].lower()}"
            elif v in marked:
                css = ":::running"
            lines.append(f'    n{v}["{label}"]{css}')
        for v, ups in enumerate(self._up):
            lines.extend(f"    n{u} --> n{v}" for u in ups)
        used = set(status) if status is not None else set()
        if marked:
            used.add(Status.RUNNING)
        for s in Status:
            if s in used:
                fill, stroke = _COLOURS[s]
                extra = ""
                if s is Status.RUNNING:
                    extra = ",stroke-width:3px"
                elif s is Status.SKIPPED:
                    extra = ",stroke-dasharray:4 3"
                lines.append(
                    f"    classDef {s.lower()} fill:{fill},stroke:{stroke},color:#212529{extra}"
                )
        return "\n".join(lines)

    def to_dot(
        self,
        statuses: Mapping[str, Status | str] | None = None,
        *,
        running: str | Iterable[str] = (),
        direction: Literal["LR", "TB"] = "LR",
    ) -> str:
        """A Graphviz DOT digraph of the workflow, with an optional status overlay.

        Each node is filled with its status's colour and labelled with its status;
        running nodes get ``▶`` and a thick border; SKIPPED nodes are dashed.

        >>> wf = Workflow("billing", {"Generate_Invoice": [],
        ...                           "Send_Email_Invoice": ["Generate_Invoice"]})
        >>> print(wf.to_dot(running="Generate_Invoice"))
        digraph "billing" {
            rankdir=LR;
            node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica"];
            "Generate_Invoice" [label="▶ Generate_Invoice", penwidth=3];
            "Send_Email_Invoice";
            "Generate_Invoice" -> "Send_Email_Invoice";
        }
        """
        status, marked = self._overlay(statuses, running)
        lines = [
            f"digraph {_dot_quote(self.name)} {{",
            f"    rankdir={direction};",
            '    node [shape=box, style="rounded,filled", fillcolor="#ffffff", '
            'fontname="Helvetica"];',
        ]
        for v, node in enumerate(self._names):
            attrs_: list[str] = []
            label = f"{_RUNNING_MARK} {node}" if v in marked else node
            if status is not None:
                fill, stroke = _COLOURS[status[v]]
                attrs_.append(f"label={_dot_quote(label + chr(10) + status[v])}")
                attrs_.append(f'fillcolor="{fill}", color="{stroke}"')
                if status[v] is Status.SKIPPED:
                    attrs_.append('style="rounded,filled,dashed"')
            elif v in marked:
                attrs_.append(f"label={_dot_quote(label)}")
            if v in marked:
                attrs_.append("penwidth=3")
            suffix = f" [{', '.join(attrs_)}]" if attrs_ else ""
            lines.append(f"    {_dot_quote(node)}{suffix};")
        names = self._names
        for v, ups in enumerate(self._up):
            lines.extend(f"    {_dot_quote(names[u])} -> {_dot_quote(names[v])};" for u in ups)
        lines.append("}")
        return "\n".join(lines)

    def to_text(
        self,
        statuses: Mapping[str, Status | str] | None = None,
        *,
        running: str | Iterable[str] = (),
    ) -> str:
        """The workflow as plain text for a terminal: its levels, each node's status,
        rule (when not the default) and upstream nodes; ``▶`` marks running nodes.

        >>> wf = Workflow("billing", {"Generate_Invoice": [],
        ...                           "Send_Email_Invoice": ["Generate_Invoice"]})
        >>> print(wf.to_text({"Generate_Invoice": "RUNNING"}))
        workflow billing: 2 nodes, 1 edge
        level 0
          ▶ Generate_Invoice    RUNNING
        level 1
            Send_Email_Invoice  PENDING  <- Generate_Invoice
        """
        status, marked = self._overlay(statuses, running)
        names = self._names
        edges = sum(self._indeg)
        lines = [
            f"workflow {self.name}: {len(names)} node{'s' * (len(names) != 1)}, "
            f"{edges} edge{'s' * (edges != 1)}"
        ]
        width = max(len(node) for node in names)
        by_level: list[list[int]] = [[] for _ in range(max(self._level) + 1)]
        for v, depth in enumerate(self._level):
            by_level[depth].append(v)
        for depth, group in enumerate(by_level):
            lines.append(f"level {depth}")
            for v in group:
                mark = _RUNNING_MARK if v in marked else " "
                line = f"  {mark} {names[v]:<{width}}"
                if status is not None:
                    line += f"  {status[v]:<9}"
                if self._rule[v]:
                    line += f"  [{_RULES[self._rule[v]]}]"
                if self._up[v]:
                    line += "  <- " + ", ".join(names[u] for u in self._up[v])
                lines.append(line.rstrip())
        return "\n".join(lines)


def _blames(code: int, cls: int, verdict: int) -> bool:
    """Whether an upstream outcome of class *cls* is one that broke the rule."""
    if code == _ALL_FAILED:
        return cls != _F
    if code == _NONE_SKIPPED:
        return cls == _K
    if code == _ANY_FAILED:
        # Decided only once every upstream node finished without failing: all count.
        return True
    # The other rules are skipped as their worst upstream outcome.
    return cls == verdict


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _find_cycle(names: Sequence[str], down: list[list[int]], remaining: list[int]) -> list[str]:
    """One cycle among the nodes Kahn's algorithm could not order, in dependency order."""
    import networkx as nx  # noqa: TID251 - lazily, and only to name a cycle

    graph = nx.DiGraph()
    stuck = [v for v, d in enumerate(remaining) if d]
    graph.add_edges_from((u, w) for u in stuck for w in down[u] if remaining[w])
    # Every stuck node is on a cycle or downstream of one, and not every one of them
    # reaches a cycle: let networkx search from all of them.
    edges = nx.find_cycle(graph)
    return [names[u] for u, _ in edges]


class Resolver:
    """Follows one run of a workflow: which nodes may run now, which never will.

    The one mutable object of the graph core. `initial` holds the nodes ready at the
    start (the roots, and ``ALWAYS`` nodes); then report each started node's terminal
    status with `complete`, which returns the nodes that became ready and those that
    became impossible (SKIPPED, with a reason), propagated downstream. Each call costs
    work proportional to the out-degree of the nodes it finishes; no node is ever
    ready twice. Not thread-safe: one driver owns it.

    **Resuming.** Given *statuses* (what is stored of a run under way, say after its
    driver was lost), the resolver starts where that run is, as if the terminal ones
    had been completed one by one: a node with a terminal status has finished (a
    SKIPPED one counts as the outcome that broke its rule, or as skipped), a node
    with another status except PENDING has started (it is ready until completed,
    whatever its upstream nodes say), and a node left out or PENDING has not.
    `initial` then holds every node that is ready (started or not) and every node
    that must be skipped now but is not SKIPPED in *statuses*. Resuming costs one
    pass over the nodes and edges. Where several upstream nodes could be named in a
    skip's reason (two failed, say), a resumed resolver names the first in
    topological order, which may not be the first that failed.

    >>> wf = Workflow("billing", {"Generate_Invoice": [],
    ...                           "Send_Email_Invoice": ["Generate_Invoice"]})
    >>> r = wf.resolver()
    >>> r.initial.ready
    ('Generate_Invoice',)
    >>> step = r.complete("Generate_Invoice", Status.FAILED)
    >>> step.ready, [s.reason for s in step.skipped]
    ((), ['upstream Generate_Invoice FAILED'])
    >>> r.finished, r.outcome().status
    (True, <Status.FAILED: 'FAILED'>)
    """

    __slots__ = (
        "_culprit",
        "_finished",
        "_klass",
        "_left",
        "_ready",
        "_skips",
        "_state",
        "_status",
        "_wf",
        "_worst",
        "initial",
    )

    initial: Resolution
    """The nodes ready at the start: the roots and the ``ALWAYS`` nodes."""

    def __init__(
        self, workflow: Workflow, statuses: Mapping[str, Status | str] | None = None
    ) -> None:
        self._wf = workflow
        n = len(workflow._names)
        self._state = bytearray(n)
        self._klass = bytearray(n)
        self._worst = bytearray(n)
        # Upstream nodes each node still waits for: one countdown per node.
        self._left = workflow._indeg.copy()
        self._culprit = [-1] * n
        self._status: list[Status | None] = [None] * n
        self._skips: dict[str, SkippedNode] = {}
        self._finished = 0
        if statuses:
            self.initial = self._resume(statuses)
            return
        rule, indeg = workflow._rule, workflow._indeg
        ready = [v for v in range(n) if not indeg[v] or rule[v] == _ALWAYS]
        for v in ready:
            self._state[v] = _READY
        self._ready = set(ready)
        names = workflow._names
        self.initial = Resolution(ready=tuple(names[v] for v in ready))

    def _resume(self, statuses: Mapping[str, Status | str]) -> Resolution:
        """Start from *statuses* (see the class docstring): one pass in topological
        order, each node judged from its upstream nodes' classes by `_judge`, which
        folds them as `complete` would have, in any order."""
        wf = self._wf
        names, up, rule = wf._names, wf._up, wf._rule
        given: dict[int, Status] = {}
        for node, value in statuses.items():
            v = wf._i(node)
            try:
                given[v] = Status(value)
            except ValueError:
                raise InvalidCompletion(
                    f"cannot resume node {node!r} of workflow {wf.name!r} with {value!r}: "
                    "use a status"
                ) from None
        state, klasses, worst, left, culprit = (
            self._state,
            self._klass,
            self._worst,
            self._left,
            self._culprit,
        )
        ready: list[int] = []
        skipped: list[SkippedNode] = []
        for v in range(len(names)):
            ups = up[v]
            code = rule[v]
            classes = [klasses[u] if state[u] == _FINISHED else None for u in ups]
            verdict = _judge(code, classes)
            status = given.get(v)
            if status is not None and status.is_terminal:
                if status is Status.SKIPPED:
                    if verdict >= 0:
                        self._skips[names[v]] = self._skip(v, verdict)
                    klass = verdict if verdict >= 0 else _K
                else:
                    klass = _CLASS_OF_STATUS[status]
                self._finish(v, status, klass)
            elif verdict == _GO or (status is not None and status is not Status.PENDING):
                state[v] = _READY
                ready.append(v)
            elif verdict == _WAIT:
                finished = [(c, u) for c, u in zip(classes, ups, strict=True) if c is not None]
                left[v] = len(ups) - len(finished)
                if finished:
                    worst[v] = max(c for c, _ in finished)
                    if worst[v]:
                        culprit[v] = next(u for c, u in finished if c == worst[v])
            else:
                skip = self._skip(v, verdict)
                self._skips[names[v]] = skip
                skipped.append(skip)
                self._finish(v, Status.SKIPPED, verdict)
        self._ready = set(ready)
        return Resolution(ready=tuple(names[v] for v in ready), skipped=tuple(skipped))

    def _finish(self, v: int, status: Status, klass: int) -> None:
        self._state[v] = _FINISHED
        self._status[v] = status
        self._klass[v] = klass
        self._finished += 1

    def _skip(self, v: int, verdict: int) -> SkippedNode:
        """The record of skipping *v* as class *verdict*, judged from its finished
        upstream nodes: it names the first whose outcome broke the rule."""
        code = self._wf._rule[v]
        blame = next(
            u
            for u in self._wf._up[v]
            if self._state[u] == _FINISHED and _blames(code, self._klass[u], verdict)
        )
        return self._skip_record(v, blame, verdict)

    def _skip_record(self, v: int, blame: int, verdict: int) -> SkippedNode:
        names, code = self._wf._names, self._wf._rule[v]
        up_status = self._status[blame]
        assert up_status is not None
        reason = f"upstream {names[blame]} {up_status}"
        if code:
            reason += f"; {_RULES[code]} needs {_NEEDS[code]}"
        return _skipped_node(names[v], names[blame], up_status, _CLASS_NAME[verdict], reason)

    @property
    def workflow(self) -> Workflow:
        """The workflow this resolver follows."""
        return self._wf

    @property
    def ready(self) -> frozenset[str]:
        """The nodes that became ready and are not completed yet."""
        names = self._wf._names
        return frozenset(names[v] for v in self._ready)

    @property
    def finished(self) -> bool:
        """Whether every node has a terminal status."""
        return self._finished == len(self._state)

    def status(self, node: str) -> Status | None:
        """The terminal status of *node* (completed or skipped), or None while it is
        unfinished; raises `NodeNotFound`. Costs a lookup, not a copy of `statuses`."""
        return self._status[self._wf._i(node)]

    def is_ready(self, node: str) -> bool:
        """Whether *node* is ready and not completed yet; raises `NodeNotFound`."""
        return self._state[self._wf._i(node)] == _READY

    @property
    def statuses(self) -> Mapping[str, Status]:
        """The terminal status of each finished node (completed or skipped)."""
        names = self._wf._names
        return {names[v]: s for v, s in enumerate(self._status) if s is not None}

    @property
    def skipped(self) -> Mapping[str, SkippedNode]:
        """Each node the resolver skipped, with why."""
        return dict(self._skips)

    def outcome(self) -> WorkflowOutcome:
        """The workflow run's outcome so far (see `Workflow.outcome`)."""
        return self._wf.outcome(self.statuses)

    def explain(self, node: str) -> Explanation:
        """`Workflow.explain` for *node*, from what this resolver knows.

        Nodes that are ready but not completed count as QUEUED.
        """
        names = self._wf._names
        current: dict[str, Status] = {names[v]: Status.QUEUED for v in self._ready}
        current.update(self.statuses)
        return self._wf.explain(node, current)

    def complete(self, node: str, status: Status | str) -> Resolution:
        """Record that the ready node *node* ended with *status*; say what follows.

        Args:
            node: a node that is ready and not completed yet.
            status: its terminal status: SUCCEEDED, FAILED, CANCELLED, or SKIPPED
                (when the host skipped it; it then counts as skipped).

        Returns:
            The nodes that became ready and those now skipped, transitively.

        Raises:
            NodeNotFound: *node* is not in the workflow.
            InvalidCompletion: *status* is not terminal, or *node* is not ready (it waits on
                upstream nodes) or was already completed or skipped.
        """
        wf = self._wf
        v = wf._index.get(node)
        if v is None:
            raise NodeNotFound(wf.name, node, wf._names)
        klass = _CLASS_OF_STATUS.get(status) if isinstance(status, str) else None
        if klass is None:
            raise InvalidCompletion(
                f"cannot complete node {node!r} of workflow {wf.name!r} with {status!r}: "
                "use a terminal status (SUCCEEDED, FAILED, CANCELLED or SKIPPED)"
            )
        if self._state[v] != _READY:
            raise InvalidCompletion(self._refusal(v))
        status = Status(status)
        self._ready.discard(v)
        self._state[v] = _FINISHED
        self._status[v] = status
        self._klass[v] = klass
        self._finished += 1

        names, down, rule = wf._names, wf._down, wf._rule
        state, klasses, worst, left, culprit = (
            self._state,
            self._klass,
            self._worst,
            self._left,
            self._culprit,
        )
        statuses = self._status
        ready: list[str] = []
        skipped: list[SkippedNode] = []
        queue = [v]
        head = 0
        # Breadth first, so that `skipped` lists upstream nodes first.
        while head < len(queue):
            u = queue[head]
            head += 1
            cu = klasses[u]
            for w in down[u]:
                if state[w]:
                    continue
                waits = left[w] - 1
                left[w] = waits
                if cu > worst[w]:
                    worst[w] = cu
                    culprit[w] = u
                code = rule[w]
                # The default rule inline: most nodes have it, and it is the hot path.
                if code == _ALL_SUCCEEDED and cu != _F:
                    if waits:
                        continue
                    verdict = _GO if worst[w] == _S else worst[w]
                else:
                    verdict = _decide(code, cu, not waits, worst[w])
                if verdict == _WAIT:
                    continue
                if verdict == _GO:
                    state[w] = _READY
                    self._ready.add(w)
                    ready.append(names[w])
                    continue
                blame = culprit[w] if code in _BLAME_WORST else u
                skip = self._skip_record(w, blame, verdict)
                skipped.append(skip)
                self._skips[names[w]] = skip
                state[w] = _FINISHED
                statuses[w] = Status.SKIPPED
                klasses[w] = verdict
                self._finished += 1
                queue.append(w)
        return _resolution(tuple(ready), tuple(skipped))

    def cancel(self) -> tuple[str, ...]:
        """Cancel the rest of the run: every node not yet ready becomes CANCELLED.

        Returns those nodes. Nodes already ready stay so: the driver cancels their
        runs and reports them with `complete` as usual (that then readies nothing).
        """
        names = self._wf._names
        out = []
        for v, s in enumerate(self._state):
            if s == _WAITING:
                self._state[v] = _FINISHED
                self._status[v] = Status.CANCELLED
                self._klass[v] = _C
                self._finished += 1
                out.append(names[v])
        return tuple(out)

    def _refusal(self, v: int) -> str:
        wf = self._wf
        node = wf._names[v]
        status = self._status[v]
        if status is not None:
            return (
                f"node {node!r} of workflow {wf.name!r} already finished ({status}); "
                "a node is completed once"
            )
        return f"node {node!r} of workflow {wf.name!r} is not ready: {self.explain(node).text}"


# Rules decided when all upstream nodes finished, or by the worst of them: their skip
# names the worst upstream outcome rather than the last one to arrive.
_BLAME_WORST = frozenset({_ALL_SUCCEEDED, _ANY_SUCCEEDED, _NONE_FAILED})


@attrs.frozen(kw_only=True)
class RunGraph:
    """One workflow run's graph: the workflow, with the status of each node's run.

    What ``AsyncRuntime.graph(run_id)`` returns, to draw (`to_mermaid`, `to_dot`,
    `to_text`, with the statuses overlaid) and to question (`explain`, `outcome`).

    Attributes:
        workflow: the workflow, as its run is driven.
        run_id: the workflow run's id.
        status: the workflow run's own status.
        statuses: every node's status: its run's, PENDING for a node that has no run
            yet, CANCELLED for a node that never got one in a workflow run that ended.
        runs: the id of each node's run, for the nodes that have one.

    >>> wf = Workflow("billing", {"Generate_Invoice": [],
    ...                           "Send_Email_Invoice": ["Generate_Invoice"]})
    >>> graph = RunGraph(workflow=wf, run_id="r1", status=Status.RUNNING,
    ...                  statuses={"Generate_Invoice": Status.RUNNING,
    ...                            "Send_Email_Invoice": Status.PENDING},
    ...                  runs={"Generate_Invoice": "r2"})
    >>> print(graph.explain("Send_Email_Invoice"))
    Send_Email_Invoice is waiting on Generate_Invoice (RUNNING)
    """

    workflow: Workflow
    run_id: str
    status: Status
    statuses: Mapping[str, Status]
    runs: Mapping[str, str]

    def explain(self, node: str) -> Explanation:
        """Why *node* is, or is not, running in this run (`Workflow.explain`)."""
        return self.workflow.explain(node, self.statuses)

    def outcome(self) -> WorkflowOutcome:
        """How this run ended, or that it has not (`Workflow.outcome`)."""
        return self.workflow.outcome(self.statuses)

    def to_mermaid(self, *, direction: Literal["LR", "TD"] = "LR") -> str:
        """A Mermaid flowchart of this run (`Workflow.to_mermaid`)."""
        return self.workflow.to_mermaid(self.statuses, direction=direction)

    def to_dot(self, *, direction: Literal["LR", "TB"] = "LR") -> str:
        """A Graphviz DOT digraph of this run (`Workflow.to_dot`)."""
        return self.workflow.to_dot(self.statuses, direction=direction)

    def to_text(self) -> str:
        """This run as plain text for a terminal (`Workflow.to_text`)."""
        return self.workflow.to_text(self.statuses)
