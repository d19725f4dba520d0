"""Lifecycles: validated tables of named states, their statuses and their moves.

A lifecycle is data. Each named state maps onto one canonical `Status`; moves between
states of different statuses must be moves the canonical table allows, so that every
store and the runtime can reason in canonical statuses whatever the host calls its
states. Moves between states of one status are the host's own (``ctx.set_state``).

When a run is moved to a status its state has no direct move to, it walks: through
states of its status, then of the target status, along the lifecycle's one way
there (the only shortest way to the target's entry state, or the way the lifecycle
declares with ``paths=``), and each step is recorded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from runlife._core.convert import aware
from runlife._core.fast import compile_maker
from runlife._core.records import Attempt, ErrorInfo, Transition
from runlife._core.status import TERMINAL, Status
from runlife.exceptions import InvalidLifecycle, InvalidTransition

if TYPE_CHECKING:
    from runlife._core.run import Run

__all__ = ("CANONICAL_MOVES", "DEFAULT_LIFECYCLE", "Lifecycle", "shortest_ways")

S = Status
CANONICAL_MOVES: Mapping[Status, frozenset[Status]] = {
    S.PENDING: frozenset({S.QUEUED, S.RUNNING, S.SKIPPED, S.CANCELLED}),
    S.QUEUED: frozenset({S.RUNNING, S.CANCELLED}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED, S.RETRYING, S.WAITING}),
    S.RETRYING: frozenset({S.QUEUED, S.CANCELLED, S.FAILED}),
    S.WAITING: frozenset({S.RUNNING, S.RETRYING, S.CANCELLED, S.FAILED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.SKIPPED: frozenset(),
}
"""The moves between canonical statuses: the only moves a lifecycle may make from
one status to another."""

_LIVE = frozenset({S.RUNNING, S.WAITING})  # an attempt is open in these
# A run created in a live status would have no attempt and no start time.
_STARTS = frozenset({S.PENDING, S.QUEUED})
_OUTCOME = {S.SUCCEEDED: "succeeded", S.CANCELLED: "cancelled"}
_transition = compile_maker(Transition)
_attempt = compile_maker(Attempt)


class Lifecycle:
    """A validated table of named states, each mapped onto a canonical `Status`.

    Args:
        name: what to call it in messages and docs.
        states: each state's name and the canonical status it stands for, in order;
            the first state of each status is that status's *entry* state (the one
            the runtime enters when it moves a run to that status) unless
            *entries* says otherwise.
        transitions: for each state, the states it may move to. A state left out
            has no exits (it must then be terminal).
        initial: the state new runs start in; by default the entry state of
            ``PENDING`` (or the first state, if no state is pending).
        entries: overrides of the entry state per status.
        paths: for a state, the way a run in it takes when moved to a status (see
            `path`): ``{state: {status: [state, ...]}}``, the states after *state*
            in order. Needed where the entry state of that status is not a move
            of *state* and several shortest ways lead there; given elsewhere, it
            replaces the way the lifecycle would take.

    Raises:
        InvalidLifecycle: naming the state at fault, when a state maps onto an
            unknown status, a move names an unknown state, a move between statuses
            is not a canonical one, a state is unreachable from *initial*, a
            non-terminal state cannot reach a terminal one, a terminal state has
            an exit, a QUEUED state has no way to RUNNING, two shortest ways lead
            from a state to a status and *paths* does not say which, or a path of
            *paths* is not a way (see `path`).

    >>> lc = Lifecycle(
    ...     "tasks",
    ...     {"IDLE": "PENDING", "TRIGGER": "QUEUED", "STARTED": "RUNNING",
    ...      "RUNNING": "RUNNING", "SUCCESS": "SUCCEEDED", "FAILED": "FAILED",
    ...      "TERMINATED": "CANCELLED"},
    ...     {"IDLE": ["TRIGGER"], "TRIGGER": ["STARTED", "TERMINATED"],
    ...      "STARTED": ["RUNNING", "FAILED", "TERMINATED"],
    ...      "RUNNING": ["SUCCESS", "FAILED", "TERMINATED"]},
    ... )
    >>> lc.entry(Status.RUNNING), lc.status_of("RUNNING")
    ('STARTED', <Status.RUNNING: 'RUNNING'>)
    >>> sorted(lc.allowed("STARTED"))
    ['FAILED', 'RUNNING', 'TERMINATED']
    >>> lc.path("STARTED", Status.SUCCEEDED)  # no direct move: the one way there
    ('RUNNING', 'SUCCESS')
    """

    __slots__ = (
        "_declared",
        "_entries",
        "_moves",
        "_status",
        "_ways",
        "initial",
        "name",
        "states",
    )

    name: str
    states: tuple[str, ...]
    initial: str
    _status: dict[str, Status]
    _moves: dict[str, frozenset[str]]
    _entries: dict[Status, str]
    _declared: dict[str, dict[Status, tuple[str, ...]]]
    _ways: dict[str, dict[Status, tuple[str, ...]]]

    def __init__(
        self,
        name: str,
        states: Mapping[str, Status | str],
        transitions: Mapping[str, Iterable[str]],
        *,
        initial: str | None = None,
        entries: Mapping[Status | str, str] | None = None,
        paths: Mapping[str, Mapping[Status | str, Iterable[str]]] | None = None,
    ) -> None:
        self.name = name
        self._status = {}
        for state, status in states.items():
            if not isinstance(state, str) or not state:
                raise InvalidLifecycle(
                    f"lifecycle {name!r}: state names must be non-empty strings, got {state!r}",
                    state=str(state),
                )
            try:
                self._status[state] = Status(status)
            except ValueError:
                raise InvalidLifecycle(
                    f"lifecycle {name!r}: state {state!r} maps onto unknown status "
                    f"{status!r}; statuses: {', '.join(Status)}",
                    state=state,
                ) from None
        if not self._status:
            raise InvalidLifecycle(f"lifecycle {name!r} has no states")
        self.states = tuple(self._status)

        self._moves = {state: frozenset() for state in self.states}
        for source, targets in transitions.items():
            if source not in self._status:
                raise InvalidLifecycle(
                    f"lifecycle {name!r}: transitions name unknown state {source!r}",
                    state=source,
                )
            if isinstance(targets, str):
                raise InvalidLifecycle(
                    f"lifecycle {name!r}: the moves of {source!r} must be a collection of "
                    f"state names, not the string {targets!r}",
                    state=source,
                )
            targets = frozenset(targets)
            for target in targets:
                self._check_move(source, target)
            self._moves[source] = targets

        self._entries = {}
        for state, status in self._status.items():
            self._entries.setdefault(status, state)
        for status_name, state in (entries or {}).items():
            try:
                status = Status(status_name)
            except ValueError:
                raise InvalidLifecycle(
                    f"lifecycle {name!r}: entry state {state!r} is given for unknown "
                    f"status {status_name!r}; statuses: {', '.join(Status)}",
                    state=state,
                ) from None
            if self._status.get(state) is not status:
                raise InvalidLifecycle(
                    f"lifecycle {name!r}: entry state {state!r} for {status} "
                    f"must be a state of status {status}",
                    state=state,
                )
            self._entries[status] = state

        if initial is None:
            initial = self._entries.get(Status.PENDING, self.states[0])
        elif initial not in self._status:
            raise InvalidLifecycle(
                f"lifecycle {name!r}: initial state {initial!r} is not one of its states",
                state=initial,
            )
        if self._status[initial] not in _STARTS:
            raise InvalidLifecycle(
                f"lifecycle {name!r}: initial state {initial!r} is "
                f"{self._status[initial]}; a new run starts in a state of status "
                "PENDING or QUEUED (attempts begin by moving to RUNNING)",
                state=initial,
            )
        self.initial = initial
        self._declared = self._read_paths(paths or {})
        self._ways = self._find_ways()
        self._check_shape()

    def _check_move(self, source: str, target: str) -> None:
        if target not in self._status:
            raise InvalidLifecycle(
                f"lifecycle {self.name!r}: {source!r} moves to unknown state {target!r}",
                state=target,
            )
        src, dst = self._status[source], self._status[target]
        if src in TERMINAL:
            raise InvalidLifecycle(
                f"lifecycle {self.name!r}: terminal state {source!r} ({src}) "
                f"has an exit to {target!r}; terminal states have none",
                state=source,
            )
        if src is not dst and dst not in CANONICAL_MOVES[src]:
            allowed = ", ".join(sorted(CANONICAL_MOVES[src])) or "nothing"
            raise InvalidLifecycle(
                f"lifecycle {self.name!r}: {source!r} ({src}) -> {target!r} ({dst}) "
                f"is not a canonical move; {src} may move to {allowed}",
                state=source,
            )

    def _read_paths(
        self, paths: Mapping[str, Mapping[Status | str, Iterable[str]]]
    ) -> dict[str, dict[Status, tuple[str, ...]]]:
        declared: dict[str, dict[Status, tuple[str, ...]]] = {}
        for source, ways in paths.items():
            if source not in self._status:
                raise InvalidLifecycle(
                    f"lifecycle {self.name!r}: paths name unknown state {source!r}",
                    state=str(source),
                )
            if not isinstance(ways, Mapping):
                raise InvalidLifecycle(
                    f"lifecycle {self.name!r}: the paths of {source!r} must map a status "
                    f"to a list of states, not {ways!r}",
                    state=source,
                )
            for status_name, steps in ways.items():
                status = _as_status(status_name) if isinstance(status_name, str) else None
                if status is None:
                    raise InvalidLifecycle(
                        f"lifecycle {self.name!r}: a path of {source!r} is given for unknown "
                        f"status {status_name!r}; statuses: {', '.join(Status)}",
                        state=source,
                    )
                if isinstance(steps, str):
                    raise InvalidLifecycle(
                        f"lifecycle {self.name!r}: the path of {source!r} to {status} must be "
                        f"a list of state names, not the string {steps!r}",
                        state=source,
                    )
                way = tuple(steps)
                self._check_way(source, status, way)
                declared.setdefault(source, {})[status] = way
        return declared

    def _check_way(self, source: str, status: Status, way: tuple[str, ...]) -> None:
        """Refuse *way* as the path of *source* to *status* unless it is a way: moves
        of this lifecycle through states of the source's status, then of *status*."""
        here = self._status[source]
        where = f"lifecycle {self.name!r}: the path of {source!r} ({here}) to {status}"
        if status is here or status not in CANONICAL_MOVES[here]:
            raise InvalidLifecycle(
                f"{where} is not a way to another status: {here} moves to "
                f"{', '.join(sorted(CANONICAL_MOVES[here])) or 'nothing'}",
                state=source,
            )
        if not way:
            raise InvalidLifecycle(f"{where} is empty", state=source)
        seen, previous = {source}, source
        for step in way:
            if step not in self._status:
                raise InvalidLifecycle(f"{where} names unknown state {step!r}", state=source)
            if step not in self._moves[previous]:
                raise InvalidLifecycle(
                    f"{where} moves {previous!r} -> {step!r}, which is not one of its moves",
                    state=source,
                )
            at = self._status[step]
            if at is not status and (at is not here or self._status[previous] is status):
                raise InvalidLifecycle(
                    f"{where} passes through {step!r} ({at}); a path goes through states "
                    f"of {here}, then of {status}",
                    state=source,
                )
            if step in seen:
                raise InvalidLifecycle(f"{where} passes through {step!r} twice", state=source)
            seen.add(step)
            previous = step
        if self._status[previous] is not status:
            raise InvalidLifecycle(
                f"{where} ends in {previous!r} ({here}), not in a state of {status}",
                state=source,
            )

    def _find_ways(self) -> dict[str, dict[Status, tuple[str, ...]]]:
        """Each state's way to each status it may move to (see `path`)."""
        found: dict[str, dict[Status, tuple[str, ...]]] = {}
        for state in self.states:
            here = self._status[state]
            ways = found[state] = dict(self._declared.get(state, {}))
            for status in CANONICAL_MOVES[here]:
                entry = self._entries.get(status)
                if entry is None or status in ways:
                    continue
                if entry in self._moves[state]:
                    ways[status] = (entry,)
                    continue
                shortest = shortest_ways(self._status, self._moves, state, status, entry)
                if len(shortest) > 1:
                    first, second = (" -> ".join((state, *way)) for way in shortest)
                    raise InvalidLifecycle(
                        f"lifecycle {self.name!r}: {state!r} has two shortest ways to "
                        f"{status} ({entry!r}), {first} and {second}; say which with "
                        f"paths={{{state!r}: {{{str(status)!r}: [...]}}}}",
                        state=state,
                    )
                if shortest:
                    ways[status] = shortest[0]
        return found

    def _check_shape(self) -> None:
        reached = reachable([self.initial], self._moves)
        for state in self.states:
            if state not in reached:
                raise InvalidLifecycle(
                    f"lifecycle {self.name!r}: state {state!r} is unreachable "
                    f"from the initial state {self.initial!r}",
                    state=state,
                )
        # Reverse search from the terminal states: who can end?
        incoming: dict[str, list[str]] = {state: [] for state in self.states}
        for source, targets in self._moves.items():
            for target in targets:
                incoming[target].append(source)
        running = self._entries.get(S.RUNNING)
        if running is not None:
            for state in self.states:
                if self._status[state] is S.QUEUED and S.RUNNING not in self._ways[state]:
                    raise InvalidLifecycle(
                        f"lifecycle {self.name!r}: QUEUED state {state!r} has no way to "
                        f"{running!r}, the entry state of RUNNING, through QUEUED and "
                        "RUNNING states: a worker claims a queued run by moving it there",
                        state=state,
                    )
        can_end = reachable((s for s in self.states if self._status[s] in TERMINAL), incoming)
        for state in self.states:
            if state not in can_end:
                raise InvalidLifecycle(
                    f"lifecycle {self.name!r}: state {state!r} ({self._status[state]}) "
                    "cannot reach a terminal state",
                    state=state,
                )

    def __repr__(self) -> str:
        return f"<Lifecycle {self.name!r}: {' '.join(self.states)}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Lifecycle):
            return NotImplemented
        return (
            self.name,
            self._status,
            self._moves,
            self.initial,
            self._entries,
            self._declared,
        ) == (
            other.name,
            other._status,
            other._moves,
            other.initial,
            other._entries,
            other._declared,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.states))

    # -- questions -------------------------------------------------------------

    def allowed(self, state: str) -> frozenset[str]:
        """The states a run in *state* may move to (empty for terminal states)."""
        try:
            return self._moves[state]
        except KeyError:
            raise self._unknown(state) from None

    def status_of(self, state: str) -> Status:
        """The canonical status that *state* stands for."""
        try:
            return self._status[state]
        except KeyError:
            raise self._unknown(state) from None

    def entry(self, status: Status | str) -> str:
        """The state the runtime enters to put a run in *status*."""
        try:
            return self._entries[Status(status)]
        except (KeyError, ValueError):
            used = ", ".join(sorted(self._entries))
            raise InvalidLifecycle(
                f"lifecycle {self.name!r} has no state of status {str(status)!r}; it uses {used}",
                state=str(status),
            ) from None

    def resolve(self, target: Status | str) -> str:
        """The state named by *target*.

        A `Status` member stands for that status's entry state; a plain string is
        a state's name or, when no state has that name, a status's name. (The two
        differ only in a custom lifecycle that names a state like a status.)
        """
        if target.__class__ is not Status and target in self._status:
            return target
        return self.entry(target)

    def path(self, state: str, to: Status | str) -> tuple[str, ...]:
        """The states a run in *state* passes through, in order, when it is moved to
        *to*; empty when it cannot be.

        *to* is read as `transition` reads it. A state's name is reached by its
        own move only. A status is reached by the run's **way** there: the path
        declared for *state* with ``paths=``; else the entry state of that status
        when it is a move of *state*; else the only shortest way to that entry
        state through states of *state*'s status, then of the target status (the
        lifecycle refuses a table in which there are two). A status of the run's
        own status is reached only by a move to its entry state.

        Raises:
            InvalidLifecycle: *state* is not a state of this lifecycle.

        >>> DEFAULT_LIFECYCLE.path(Status.QUEUED, Status.RUNNING)
        (<Status.RUNNING: 'RUNNING'>,)
        >>> DEFAULT_LIFECYCLE.path(Status.QUEUED, Status.SUCCEEDED)
        ()
        """
        moves = self.allowed(state)
        if to.__class__ is not Status and to in self._status:
            return (to,) if to in moves else ()
        status = to if to.__class__ is Status else _as_status(to)
        if status is None:
            return ()
        way = self._ways[state].get(status)
        if way is not None:
            return way
        entry = self._entries.get(status)
        return (entry,) if entry is not None and entry in moves else ()

    @property
    def terminal_states(self) -> frozenset[str]:
        """The states whose status is terminal."""
        return frozenset(s for s in self.states if self._status[s] in TERMINAL)

    def replay(self, history: Sequence[Transition], initial: str | None = None) -> str:
        """Walk *history* from *initial* and return the state it ends in.

        Raises `InvalidTransition` at the first move that does not chain or is not
        allowed, so a replay also audits a stored history.
        """
        state = initial if initial is not None else (history[0].from_ if history else self.initial)
        for step in history:
            if step.from_ != state or step.to not in self.allowed(state):
                raise InvalidTransition("<replay>", state, step.to, self.allowed(state))
            state = step.to
        return state

    def to_mermaid(self) -> str:
        """The lifecycle as a Mermaid ``stateDiagram-v2``."""
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial}"]
        for state in self.states:
            for target in sorted(self._moves[state]):
                lines.append(f"    {state} --> {target}")
            if self._status[state] in TERMINAL:
                lines.append(f"    {state} --> [*]")
        return "\n".join(lines)

    # -- the move --------------------------------------------------------------

    def transition(
        self,
        run: Run,
        to: Status | str,
        *,
        at: datetime,
        reason: str | None = None,
        error: ErrorInfo | None = None,
        due_at: datetime | None = None,
    ) -> Run:
        """Return *run* moved to *to* at *at*.

        *to* is a state of this lifecycle or a canonical `Status`, which stands for
        that status's entry state (see `resolve`). A status the run's state has no
        direct move to is reached by the run's way there (see `path`): the run
        walks through each state of it, and each step is a move of its own, with
        *reason*, at *at* (*error* and *due_at* are those of the whole move).

        The old value is untouched. Each move is recorded in ``history``; entering
        a live status (RUNNING) from a waiting one starts a new `Attempt`, leaving
        the live statuses ends it with its outcome; ``queued_at`` is the latest
        entry into QUEUED, ``started_at`` the first entry into RUNNING, ``ended_at``
        the entry into a terminal status. ``due_at`` is set to *due_at* (each move
        says anew when the run is next due to move by itself). *error* is kept on
        the run (and on the attempt it ends); success clears the run's error. A
        moment earlier than the run's last move (or its creation) is taken as that
        moment, so history never goes backwards even between hosts whose clocks
        disagree a little. A naive *at* is read as UTC.

        Raises:
            InvalidTransition: the move is not allowed (or *to* is neither a state
                nor a status of this lifecycle); it names the run, both states and
                the allowed targets.
            InvalidLifecycle: ``run.state`` is not a state of this lifecycle.

        >>> from datetime import datetime, UTC
        >>> from runlife import DEFAULT_LIFECYCLE as lc, Run, Status
        >>> t0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
        >>> run = lc.transition(Run.create(job="backup", at=t0), Status.QUEUED, at=t0)
        >>> run.status, len(run.history)
        (<Status.QUEUED: 'QUEUED'>, 1)
        """
        source = run.state
        moves = self._moves.get(source)
        if moves is None:
            raise self._unknown(source)
        status: Status | None
        if to.__class__ is Status:
            status = to
        elif to in self._status:
            status = None  # a state's name: that state, by its own move
        else:
            status = _as_status(to)
        state: str | None = to if status is None and to in self._status else None
        if status is not None:
            way = self._ways[source].get(status)
            if way is None:
                state = self._entries.get(status)
            elif len(way) == 1:
                state = way[0]
            else:
                for step in way:
                    run = self._move(run, step, at, reason, error, due_at)
                return run
        if state is None or state not in moves:
            raise InvalidTransition(run.id, source, to if state is None else state, moves)
        return self._move(run, state, at, reason, error, due_at)

    def _move(
        self,
        run: Run,
        state: str,
        at: datetime,
        reason: str | None,
        error: ErrorInfo | None,
        due_at: datetime | None,
    ) -> Run:
        """*run* moved by one move of this lifecycle, to *state* (checked by the caller)."""
        source = run.state
        status = self._status[state]
        old = run.status

        if at.tzinfo is None:
            at = aware(at)
        history = run.history
        latest = history[-1].at if history else run.created_at
        if at < latest:
            at = latest
        history = (*history, _transition(source, state, at, reason))

        attempts = run.attempts
        queued_at, started_at, ended_at = run.queued_at, run.started_at, run.ended_at
        run_error = run.error if error is None else error
        if status is not old:
            if status is S.RUNNING and old not in _LIVE:
                attempts = (*attempts, _attempt(len(attempts) + 1, at, None, None, None))
                if started_at is None:
                    started_at = at
            elif old in _LIVE and status not in _LIVE and attempts:
                last = attempts[-1]
                outcome = _OUTCOME.get(status) or (error.kind if error else "failed")
                attempts = (
                    *attempts[:-1],
                    _attempt(last.number, last.started_at, at, outcome, error),
                )
            if status is S.QUEUED:
                queued_at = at
            elif status in TERMINAL:
                ended_at = at
            if status is S.SUCCEEDED:
                run_error = None
        return run._moved(
            status=status,
            state=state,
            history=history,
            attempts=attempts,
            queued_at=queued_at,
            started_at=started_at,
            ended_at=ended_at,
            due_at=due_at,
            error=run_error,
        )

    def _unknown(self, state: str) -> InvalidLifecycle:
        return InvalidLifecycle(
            f"state {state!r} is not a state of lifecycle {self.name!r}; "
            f"states: {', '.join(self.states)}",
            state=state,
        )

    # -- the spec form (see runlife._core.spec) --------------------------------

    def to_spec(self) -> dict[str, Any]:
        """This lifecycle as JSON: its states in order with their statuses, its
        moves, its initial state, the entry state of each status it uses, and the
        paths it declares (``{state: {status: [state, ...]}}``).

        >>> spec = DEFAULT_LIFECYCLE.to_spec()
        >>> spec["states"][:2], spec["transitions"]["QUEUED"], spec["initial"]
        ([{'name': 'PENDING', 'status': 'PENDING'}, {'name': 'QUEUED', 'status': 'QUEUED'}], ['CANCELLED', 'RUNNING'], 'PENDING')
        """  # noqa: E501
        status, moves, entries = self._status, self._moves, self._entries
        return {
            "name": self.name,
            "states": [{"name": str(s), "status": status[s].value} for s in self.states],
            "transitions": {
                str(s): sorted([str(t) for t in moves[s]]) for s in self.states if moves[s]
            },
            "initial": str(self.initial),
            "entries": {st.value: str(entries[st]) for st in Status if st in entries},
            "paths": {
                str(s): {st.value: [str(t) for t in ways[st]] for st in Status if st in ways}
                for s in self.states
                if (ways := self._declared.get(s))
            },
        }

    @classmethod
    def from_spec(cls, data: Mapping[str, Any], *, version: int | None = None) -> Lifecycle:
        """Read a lifecycle written by `to_spec`.

        The spec of `DEFAULT_LIFECYCLE` reads as `DEFAULT_LIFECYCLE` itself (whose
        states are the `Status` members), and so does any spec equal to it.
        *version* is the version of the job spec it is part of (the newest unless
        given): the lifecycles of version 1 have no ``"paths"``.

        Raises:
            InvalidPolicy: a missing or unknown key, or a value of the wrong type;
                ``field`` is its path (``"lifecycle.states[2].status"``).
            InvalidLifecycle: the table cannot work, as the constructor says (or
                it lists a state twice).

        >>> Lifecycle.from_spec(DEFAULT_LIFECYCLE.to_spec()) is DEFAULT_LIFECYCLE
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

        keys: tuple[str, ...] = ("name", "states", "transitions", "initial", "entries")
        if version is None or version >= _PATHS_SINCE:
            keys = (*keys, "paths")
        with under("lifecycle"):
            fields = read_object(data, keys, "a lifecycle spec")
            name = read_str(fields["name"], "name")
            states: dict[str, str] = {}
            listed = read_list(fields["states"], "states", "a list of {name, status} objects")
            for i, item in enumerate(listed):
                with under(f"states[{i}]"):
                    state = read_object(item, ("name", "status"), "a state")
                    state_name = read_str(state["name"], "name", "a state name")
                    status = read_str(state["status"], "status", "a status name")
                if state_name in states:
                    raise InvalidLifecycle(
                        f"lifecycle {name!r} lists state {state_name!r} twice", state=state_name
                    )
                states[state_name] = status
            moves = "an object of state name to the list of states it may move to"
            transitions = read_str_map(fields["transitions"], "transitions", moves)
            for source, targets in transitions.items():
                read_strs(targets, f"transitions[{source!r}]", "a list of state names")
            initial = read_str(fields["initial"], "initial", "a state name")
            entries = read_str_map(fields["entries"], "entries", "an object of status to state")
            for status_name, state_name in entries.items():
                read_str(state_name, f"entries[{status_name!r}]", "a state name")
            ways = "an object of state name to an object of status to a list of states"
            paths = read_str_map(fields.get("paths", {}), "paths", ways)
            for source, by_status in paths.items():
                field = f"paths[{source!r}]"
                for status_name, steps in read_str_map(by_status, field, ways).items():
                    read_strs(steps, f"{field}[{status_name!r}]", "a list of state names")
            lifecycle = cls(
                name, states, transitions, initial=initial, entries=entries, paths=paths
            )
        return DEFAULT_LIFECYCLE if lifecycle == DEFAULT_LIFECYCLE else lifecycle


def _as_status(name: str) -> Status | None:
    try:
        return Status(name)
    except ValueError:
        return None


def shortest_ways(
    status_of: Mapping[str, Status],
    moves: Mapping[str, Iterable[str]],
    source: str,
    status: Status,
    end: str,
    *,
    limit: int = 2,
) -> list[tuple[str, ...]]:
    """Up to *limit* of the shortest ways from *source* to *end* (a state of
    *status*): paths of *moves* through states of *source*'s status, then of
    *status*, without the source. Empty when there is none.

    >>> S = Status
    >>> status_of = {"Q": S.QUEUED, "A": S.QUEUED, "B": S.QUEUED, "R": S.RUNNING}
    >>> shortest_ways(status_of, {"Q": ["A", "B"], "A": ["R"], "B": ["R"], "R": []},
    ...               "Q", S.RUNNING, "R")
    [('A', 'R'), ('B', 'R')]
    """
    here = status_of[source]
    distance = {source: 0}
    queue = deque([source])
    while queue and end not in distance:
        state = queue.popleft()
        crossed = status_of[state] is status
        for nxt in sorted(moves[state]):
            at = status_of[nxt]
            if nxt not in distance and (at is status or (at is here and not crossed)):
                distance[nxt] = distance[state] + 1
                queue.append(nxt)
    if end not in distance:
        return []
    before: dict[str, list[str]] = {state: [] for state in distance}
    for state, d in distance.items():
        crossed = status_of[state] is status
        for nxt in sorted(moves[state]):
            at = status_of[nxt]
            if distance.get(nxt) == d + 1 and (at is status or (at is here and not crossed)):
                before[nxt].append(state)
    found: list[tuple[str, ...]] = []

    def back(state: str, tail: tuple[str, ...]) -> None:
        if state == source:
            found.append(tail)
            return
        for prev in before[state]:
            if len(found) >= limit:
                return
            back(prev, (state, *tail))

    back(end, ())
    return sorted(found)


def reachable(starts: Iterable[str], moves: Mapping[str, Iterable[str]]) -> set[str]:
    """The states reachable from *starts* (included) through *moves*."""
    seen = set(starts)
    queue = deque(seen)
    while queue:
        for nxt in moves[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


# The version of the job spec form whose lifecycles have "paths" (see runlife._core.spec).
_PATHS_SINCE = 2
_default_moves: dict[str, Iterable[str]] = dict(CANONICAL_MOVES.items())
DEFAULT_LIFECYCLE = Lifecycle("default", {s: s for s in Status}, _default_moves)
"""The canonical lifecycle: its states are the `Status` members themselves."""
