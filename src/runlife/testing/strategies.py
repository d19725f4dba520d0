"""Hypothesis strategies for runlife values: lifecycles, transition walks, runs,
retry policies, timeouts, limits, schedules, workflows (DAGs) and whole job specs.

Use them in your own property-based tests, for instance to check that code which
reads runs copes with any lifecycle a host may declare:

>>> from hypothesis import given
>>> from runlife.testing import strategies as rls
>>> @given(rls.runs(lifecycle=rls.lifecycles()))
... def test_reads_any_run(run):
...     assert run.version == len(run.history)
>>> test_reads_any_run()
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import attrs
from hypothesis import strategies as st

from runlife._core.lifecycle import (
    CANONICAL_MOVES,
    DEFAULT_LIFECYCLE,
    Lifecycle,
    reachable,
    shortest_ways,
)
from runlife._core.records import ErrorInfo, ItemCounts
from runlife._core.run import Run
from runlife._core.spec import JobSpec
from runlife._core.status import TERMINAL, Status, Trigger
from runlife.testing._graph_strategies import dags
from runlife.testing._policy_strategies import (
    cron_expressions,
    crons,
    every_schedules,
    limits,
    nasty_crons,
    quotas,
    retries,
    schedules,
    timeouts,
)

__all__ = (
    "cron_expressions",
    "crons",
    "dags",
    "every_schedules",
    "invalid_steps",
    "job_specs",
    "json_values",
    "lifecycles",
    "limits",
    "nasty_crons",
    "quotas",
    "retries",
    "runs",
    "schedules",
    "statuses",
    "texts",
    "timeouts",
    "transition_walks",
)


def texts(*, max_size: int = 20) -> st.SearchStrategy[str]:
    """Text every store keeps: any character that encodes as UTF-8, but NUL.

    >>> from hypothesis import given
    >>> @given(texts())
    ... def test_encodes(text):
    ...     assert chr(0) not in text.encode("utf-8").decode("utf-8")
    >>> test_encodes()
    """
    return st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=max_size)


def json_values(*, max_leaves: int = 12) -> st.SearchStrategy[object]:
    """JSON values every store keeps exactly: text without NUL, 64-bit integers,
    finite floats, booleans, None, and lists and str-keyed dicts of them.

    >>> from hypothesis import given
    >>> from runlife._core.values import check_json
    >>> @given(json_values())
    ... def test_storable(value):
    ...     check_json(value, "params")
    >>> test_storable()
    """
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False), texts(),
    )  # fmt: skip
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts(), inner, max_size=4),
        max_leaves=max_leaves,
    )


# Names that collide with status names are in the pool on purpose: a custom state
# called "FAILED" may stand for another status, and code must not confuse the two.
_NAME_POOL = (
    *(status.value for status in Status),
    "IDLE",
    "ACTIVE",
    "TRIGGER",
    "STARTED",
    "SUCCESS",
    "TERMINATED",
    "PAUSED",
    "DONE",
)
_names = st.one_of(
    st.sampled_from(_NAME_POOL), st.from_regex(r"[A-Z][A-Z0-9_]{0,7}", fullmatch=True)
)
_EPOCH = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
_LIVE = frozenset({Status.RUNNING, Status.WAITING})
_ITEM_STATUSES = (Status.PENDING, Status.RUNNING, Status.SUCCEEDED, Status.FAILED, Status.SKIPPED)
_errors = st.builds(
    ErrorInfo,
    kind=st.sampled_from(("error", "timeout", "abandoned", "interrupted")),
    type=st.sampled_from(("ConnectionError", "ValueError", "TimeoutError")),
    message=st.text(max_size=20),
)


def _can_move(status_of: Mapping[str, Status], source: str, target: str) -> bool:
    src, dst = status_of[source], status_of[target]
    if source == target or src in TERMINAL:
        return False
    return src is dst or dst in CANONICAL_MOVES[src]


def _reverse(edges: Mapping[str, set[str]]) -> dict[str, set[str]]:
    back: dict[str, set[str]] = {state: set() for state in edges}
    for source, targets in edges.items():
        for target in targets:
            back[target].add(source)
    return back


@st.composite
def lifecycles(draw: st.DrawFn, *, max_states: int = 12) -> Lifecycle:
    """Valid custom lifecycles: named states mapped onto canonical statuses.

    Moves go within one status or along a canonical move; every state is reachable
    from the initial state (of status PENDING or QUEUED) and every state can reach
    a terminal one, and every QUEUED state has a way to RUNNING (a move to its
    entry state, or a walk through other QUEUED states). Entry states and state
    order vary, state names may collide with status names, and the ways between
    statuses are declared with ``paths=`` where they must be (two shortest ways)
    and sometimes where they need not be (ending in any state of the status).

    >>> from hypothesis import given
    >>> @given(lifecycles())
    ... def test_every_state_can_end(lc):
    ...     assert lc.terminal_states
    >>> test_every_state_can_end()
    """
    names = draw(st.lists(_names, min_size=2, max_size=max_states, unique=True))
    status_of: dict[str, Status] = {name: draw(st.sampled_from(Status)) for name in names}
    starters = [name for name in names if status_of[name] in (Status.PENDING, Status.QUEUED)]
    if not starters:
        status_of[names[0]] = draw(st.sampled_from((Status.PENDING, Status.QUEUED)))
        starters = [names[0]]
    initial = draw(st.sampled_from(starters))
    if not any(status in TERMINAL for status in status_of.values()):
        # CANCELLED follows every non-terminal status, so the initial state can end.
        status_of[next(n for n in names if n != initial)] = Status.CANCELLED

    possible = {a: {b for b in names if _can_move(status_of, a, b)} for a in names}
    ends = {name for name in names if status_of[name] in TERMINAL}
    keep = reachable({initial}, possible) & reachable(ends, _reverse(possible))
    if initial not in keep:
        cancel = draw(_names.filter(lambda n: n not in status_of))
        status_of[cancel] = Status.CANCELLED
        possible[cancel] = set()
        possible[initial].add(cancel)
        keep = reachable({initial}, possible) & reachable(ends | {cancel}, _reverse(possible))
    possible = {a: possible[a] & keep for a in keep}

    edges: dict[str, set[str]] = {
        a: {b for b in sorted(possible[a]) if draw(st.booleans())} for a in sorted(keep)
    }
    # Repair reachability, then the ability to end, with edges from `possible`;
    # both repairs always find an edge because `keep` is valid under `possible`.
    reached = reachable({initial}, edges)
    while reached != keep:
        source, target = next(
            (a, b) for a in sorted(reached) for b in sorted(possible[a]) if b not in reached
        )
        edges[source].add(target)
        reached = reachable({initial}, edges)
    terminal = {state for state in keep if status_of[state] in TERMINAL}
    ending = reachable(terminal, _reverse(edges))
    while ending != keep:
        source, target = next(
            (a, b) for a in sorted(keep - ending) for b in sorted(possible[a]) if b in ending
        )
        edges[source].add(target)
        ending = reachable(terminal, _reverse(edges))

    order = draw(st.permutations(sorted(keep)))
    states = {name: status_of[name] for name in order}
    entries: dict[Status | str, str] = {}
    for status in set(states.values()):
        if draw(st.booleans()):
            entries[status] = draw(st.sampled_from([n for n in order if states[n] is status]))
    entry: dict[Status, str] = {}
    for state in order:
        entry.setdefault(states[state], state)
    for named, state in entries.items():
        entry[Status(named)] = state
    running = entry.get(Status.RUNNING)
    if running is not None:
        # Workers claim a queued run by walking it to RUNNING's entry state.
        for state in order:
            if states[state] is Status.QUEUED and (
                not shortest_ways(states, edges, state, Status.RUNNING, running, limit=1)
                or draw(st.booleans())
            ):
                edges[state].add(running)
    paths: dict[str, dict[Status | str, list[str]]] = {}
    for state in order:
        for status in sorted(CANONICAL_MOVES[states[state]] & entry.keys()):
            if entry[status] in edges[state] and not draw(st.booleans()):
                continue
            shortest = shortest_ways(states, edges, state, status, entry[status], limit=4)
            if len(shortest) < 2 and draw(st.booleans()):
                # A way need not end in the entry state when it is declared.
                shortest = [
                    way
                    for end in order
                    if states[end] is status
                    for way in shortest_ways(states, edges, state, status, end, limit=2)
                ]
            elif len(shortest) < 2:
                continue
            if shortest:
                paths.setdefault(state, {})[status] = list(draw(st.sampled_from(shortest)))
    name = draw(st.sampled_from(("custom", "tasks", "deploy")))
    return Lifecycle(
        name,
        states,
        {source: sorted(targets) for source, targets in edges.items() if targets},
        initial=initial,
        entries=entries,
        paths=paths,
    )


@st.composite
def transition_walks(
    draw: st.DrawFn,
    lifecycle: Lifecycle | st.SearchStrategy[Lifecycle] | None = None,
    *,
    max_steps: int = 12,
) -> tuple[Lifecycle, tuple[str, ...]]:
    """A lifecycle and a walk through it: allowed states, in order, from its initial state.

    The walk may stop anywhere (or at a terminal state, where it must stop).
    *lifecycle* is `DEFAULT_LIFECYCLE` unless given (a lifecycle or a strategy).

    >>> from hypothesis import given
    >>> @given(transition_walks(lifecycles()))
    ... def test_walk_replays(walk):
    ...     lc, states = walk
    ...     assert all(b in lc.allowed(a) for a, b in zip((lc.initial, *states), states))
    >>> test_walk_replays()
    """
    lc = _lifecycle(draw, lifecycle)
    state = lc.initial
    walk: list[str] = []
    for _ in range(draw(st.integers(0, max_steps))):
        allowed = lc.allowed(state)
        if not allowed:
            break
        state = draw(st.sampled_from(sorted(allowed)))
        walk.append(state)
    return lc, tuple(walk)


@st.composite
def runs(
    draw: st.DrawFn,
    lifecycle: Lifecycle | st.SearchStrategy[Lifecycle] | None = None,
    *,
    max_steps: int = 12,
) -> Run:
    """Runs at any point of their life: created, then moved along a random walk.

    Moments start at 2026-03-10 02:00 UTC and go forward by whole seconds; params
    and labels are small JSON values. An attempt that ends may carry an error; a run
    that has had attempts carries item counts and warnings, and a result if it
    succeeded.

    >>> from hypothesis import given
    >>> @given(runs(lifecycle=lifecycles()))
    ... def test_attempts_are_numbered(run):
    ...     assert [a.number for a in run.attempts] == list(range(1, len(run.attempts) + 1))
    >>> test_attempts_are_numbered()
    """
    lc, walk = draw(transition_walks(_lifecycle(draw, lifecycle), max_steps=max_steps))
    at = _EPOCH + timedelta(seconds=draw(st.integers(0, 86_400)))
    run = Run.create(
        job=draw(st.sampled_from(("nightly_backup", "promote", "refresh_dashboard"))),
        at=at,
        trigger=draw(st.sampled_from(Trigger)),
        lifecycle=lc,
        params=draw(st.dictionaries(st.sampled_from(("devices", "limit")), st.integers(0, 9))),
        labels=draw(
            st.dictionaries(
                st.sampled_from(("site", "device")), st.sampled_from(("dc1", "core-rtr-01"))
            )
        ),
    )
    for state in walk:
        at += timedelta(seconds=draw(st.integers(0, 600)))
        leaving_live = run.status in _LIVE and lc.status_of(state) not in _LIVE
        error = draw(st.none() | _errors) if leaving_live else None
        run = lc.transition(run, state, at=at, error=error)
    if run.attempts:
        # What a run carries once it has worked: item counts, warnings, a result.
        counts = draw(st.lists(st.sampled_from(_ITEM_STATUSES), max_size=6))
        run = attrs.evolve(
            run,
            progress=ItemCounts.of(counts),
            warnings=tuple(draw(st.lists(texts(max_size=12).filter(bool), max_size=2))),
            result=draw(st.none() | json_values(max_leaves=3))
            if run.status is Status.SUCCEEDED
            else None,
        )
    return run


def statuses(*, terminal: bool | None = None) -> st.SearchStrategy[Status]:
    """Canonical statuses: all, or only the terminal ones (``terminal=True``) or
    only the others (``terminal=False``).

    >>> from hypothesis import given
    >>> @given(statuses(terminal=True))
    ... def test_terminal_has_no_move(status):
    ...     assert not CANONICAL_MOVES[status]
    >>> test_terminal_has_no_move()
    """
    members = [s for s in Status if terminal is None or (s in TERMINAL) == terminal]
    return st.sampled_from(members)


@st.composite
def invalid_steps(
    draw: st.DrawFn,
    lifecycle: Lifecycle | st.SearchStrategy[Lifecycle] | None = None,
    *,
    max_steps: int = 12,
) -> tuple[Lifecycle, Run, str]:
    """A lifecycle, a run at any point of its life in it, and a state or status the
    run may not move to from there (`Lifecycle.transition` raises
    `InvalidTransition`). Terminal runs are drawn too: nothing leaves them.

    >>> from hypothesis import given
    >>> from runlife import InvalidTransition
    >>> @given(invalid_steps(lifecycles()))
    ... def test_refused(step):
    ...     lc, run, target = step
    ...     try:
    ...         lc.transition(run, target, at=run.created_at)
    ...     except InvalidTransition:
    ...         return
    ...     raise AssertionError(f"{run.state} -> {target} was accepted")
    >>> test_refused()
    """
    lc = _lifecycle(draw, lifecycle)
    run = draw(runs(lc, max_steps=max_steps))
    allowed = lc.allowed(run.state)
    outside = [s for s in lc.states if s not in allowed]
    outside += [s.value for s in Status if s.value not in lc.states and not lc.path(run.state, s)]
    return lc, run, draw(st.sampled_from(sorted(set(outside))))


def job_specs() -> st.SearchStrategy[JobSpec]:
    """Whole job specs: every policy varies, with a custom lifecycle or the default,
    a schedule or none, a workflow or none, and policy fields set while the job ran
    (``declared``) or none.

    >>> from hypothesis import given
    >>> @given(job_specs())
    ... def test_spec_reads_back(spec):
    ...     assert JobSpec.from_spec(spec.to_spec()) == spec
    >>> test_spec_reads_back()
    """
    return st.builds(
        JobSpec,
        lifecycle=st.just(DEFAULT_LIFECYCLE) | lifecycles(),
        retry=retries(),
        timeout=timeouts(),
        schedule=st.none() | schedules(),
        limits=limits(),
        items_fail_run=st.none() | st.just(0) | st.floats(0, 1),
        queued=st.booleans(),
        workflow=st.none() | dags(max_nodes=6),
        declared=st.fixed_dictionaries(
            {},
            optional={
                "retry": retries(),
                "timeout": timeouts(),
                "limits": limits(),
                "items_fail_run": st.none() | st.floats(0, 1),
            },
        ),
    )


def _lifecycle(
    draw: st.DrawFn, lifecycle: Lifecycle | st.SearchStrategy[Lifecycle] | None
) -> Lifecycle:
    if lifecycle is None:
        return DEFAULT_LIFECYCLE
    if isinstance(lifecycle, Lifecycle):
        return lifecycle
    return draw(lifecycle)
