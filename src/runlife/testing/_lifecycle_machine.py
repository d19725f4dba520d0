"""`LifecycleMachine`: a hypothesis state machine that walks one run through a lifecycle.

A host subclasses it with its own lifecycle (a `Lifecycle` or a strategy of them),
and optionally a store, and runs its ``TestCase``. With a store, each move is
written there as the runtime writes it (compare-and-set on the version) and read
back; the machine reaches the async store through anyio's blocking portal, an
event loop in a thread of its own per example.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import anyio.from_thread
import attrs
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from runlife._core.lifecycle import DEFAULT_LIFECYCLE, Lifecycle
from runlife._core.queries import JobRecord
from runlife._core.records import ErrorInfo
from runlife._core.run import Run
from runlife._core.spec import JobSpec
from runlife._core.status import Status
from runlife.abc import Store
from runlife.exceptions import InvalidTransition
from runlife.stores import open_store
from runlife.testing._lenient import LenientMachine

__all__ = ("LifecycleMachine",)

T = TypeVar("T")
_T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
_LIVE = frozenset({Status.RUNNING, Status.WAITING})
# Text every store keeps (UTF-8 without NUL), so that a move is refused by no store.
_texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
_errors = st.none() | st.builds(
    ErrorInfo, kind=st.sampled_from(("error", "timeout", "abandoned")), message=_texts
)


def _snapshot(run: Run) -> tuple[object, ...]:
    return tuple(getattr(run, f.name) for f in attrs.fields(Run))


class LifecycleMachine(LenientMachine):
    """Moves one run at random through a lifecycle, checking it after every step.

    Subclass it with your lifecycle and run its ``TestCase``::

        class DeployLifecycle(LifecycleMachine):
            lifecycle = DEPLOY   # a Lifecycle, or a strategy of them
            store_url = "memory://"   # optional: each move also goes through a store

        TestDeployLifecycle = DeployLifecycle.TestCase

    Rules: move to an allowed state by name, move to a status along the
    lifecycle's way there (as the runtime does), and try a move the lifecycle
    does not allow. Checked after every step: no illegal move is accepted (it
    raises `InvalidTransition` and leaves the run as it was), a terminal state
    has no way out, replaying the history gives the state, attempts only
    increase (numbered 1, 2, ...; one open while RUNNING or WAITING, none else),
    timestamps never go back, the version counts the moves, and a duration
    exists only once the run has ended. With a store (``store_url``, or override
    `make_store`), the store holds the run exactly as the machine has it, and
    its ``transition`` events are the run's history.

    Its ``TestCase`` runs without a deadline and without hypothesis's too-slow
    health check, whatever the ``@settings`` on the subclass (its steps do real
    work); set ``max_examples`` and ``stateful_step_count`` there.

    Class attributes to set:

    - lifecycle: the `Lifecycle` (or a hypothesis strategy of them) to walk;
      `DEFAULT_LIFECYCLE` unless set.
    - store_url: a store URL, or None (the default) for no store; ``{tmp}`` in
      it is replaced by a fresh temporary directory per example.
    - backend: the event loop of the store: ``"asyncio"`` or ``"trio"``.
    """

    lifecycle: ClassVar[Lifecycle | st.SearchStrategy[Lifecycle]] = DEFAULT_LIFECYCLE
    store_url: ClassVar[str | None] = None
    backend: ClassVar[str] = "asyncio"

    def __init__(self) -> None:
        super().__init__()
        self.lc = DEFAULT_LIFECYCLE
        self.run = Run.create(job="placeholder", at=_T0)
        self.start = self.run.state
        self.attempts_seen = 0
        self.store: Store | None = None
        self._stack = ExitStack()
        self._portal: anyio.from_thread.BlockingPortal | None = None
        try:
            store = self.make_store()
            if store is not None:
                self._portal = self._stack.enter_context(
                    anyio.from_thread.start_blocking_portal(self.backend)
                )
                self._stack.enter_context(self._portal.wrap_async_context_manager(store))
                self.store = store
        except BaseException:
            self._stack.close()
            raise

    def make_store(self) -> Store | None:
        """The store of this example (not yet entered), or None: from ``store_url``."""
        url = self.store_url
        if url is None:
            return None
        if "{tmp}" in url:
            import shutil
            import tempfile

            tmp = tempfile.mkdtemp(prefix="runlife-lifecycle-")
            self._stack.callback(shutil.rmtree, tmp, ignore_errors=True)
            url = url.replace("{tmp}", tmp)
        return open_store(url)

    def call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the store's event loop."""
        assert self._portal is not None, "this machine has no store"
        result: T = self._portal.call(functools.partial(fn, *args, **kwargs))
        return result

    def teardown(self) -> None:
        self._stack.close()

    # -- helpers ------------------------------------------------------------------

    def _latest(self) -> datetime:
        return self.run.history[-1].at if self.run.history else self.run.created_at

    def _moved(self, new: Run, target: str, at: datetime, before: tuple[object, ...]) -> None:
        assert _snapshot(self.run) == before, "the old run value was changed"
        assert new.state == target
        assert new.history[-1].to == target
        assert new.history[-1].at == max(at, self._latest())
        assert len(new.attempts) >= len(self.run.attempts)
        if self.store is not None:
            stored = self.call(self.store.update_run, new, expected_version=self.run.version)
            assert stored == new, "the store did not keep the run as written"
        self.attempts_seen = max(self.attempts_seen, len(new.attempts))
        self.run = new

    def _status_targets(self) -> list[Status]:
        return [s for s in Status if self.lc.path(self.run.state, s)]

    # -- rules --------------------------------------------------------------------

    @initialize(data=st.data(), offset=st.integers(0, 86_400))
    def create(self, data: st.DataObject, offset: int) -> None:
        """Create the run, in the lifecycle's initial state or another start state."""
        lc = self.lifecycle
        self.lc = lc if isinstance(lc, Lifecycle) else data.draw(lc, label="lifecycle")
        starts = [
            s for s in self.lc.states if self.lc.status_of(s) in (Status.PENDING, Status.QUEUED)
        ]
        initial = data.draw(st.sampled_from([None, *starts]), label="initial")
        self.run = Run.create(
            job="lifecycle_machine",
            at=_T0 + timedelta(seconds=offset),
            lifecycle=self.lc,
            initial=initial,
        )
        self.start = self.run.state
        assert self.start == (self.lc.initial if initial is None else initial)
        if self.store is not None:
            spec = JobSpec(lifecycle=self.lc).to_spec()
            self.call(self.store.save_job, JobRecord(name=self.run.job, spec=spec))
            assert self.call(self.store.create_run, self.run) == self.run

    @precondition(lambda self: not self.run.is_terminal)
    @rule(
        data=st.data(),
        step=st.integers(-120, 3_600),
        reason=st.none() | _texts,
        error=_errors,
    )
    def move_to_state(
        self, data: st.DataObject, step: int, reason: str | None, error: ErrorInfo | None
    ) -> None:
        """Move to an allowed state by its name (a step back in time is kept in order)."""
        target = data.draw(st.sampled_from(sorted(self.lc.allowed(self.run.state))))
        at = self._latest() + timedelta(seconds=step)
        before = _snapshot(self.run)
        new = self.lc.transition(self.run, target, at=at, reason=reason, error=error)
        assert new.history[-1].reason == reason
        self._moved(new, target, at, before)

    @precondition(lambda self: bool(self._status_targets()))
    @rule(data=st.data(), step=st.integers(0, 600))
    def move_to_status(self, data: st.DataObject, step: int) -> None:
        """Move by canonical status, as the runtime does: along the way there."""
        status = data.draw(st.sampled_from(self._status_targets()))
        way = self.lc.path(self.run.state, status)
        at = self._latest() + timedelta(seconds=step)
        before, known = _snapshot(self.run), len(self.run.history)
        new = self.lc.transition(self.run, status, at=at)
        assert new.status is status
        assert tuple(t.to for t in new.history[known:]) == way
        self._moved(new, way[-1], at, before)

    @rule(data=st.data())
    def refused_move(self, data: st.DataObject) -> None:
        """A move the lifecycle does not allow raises and leaves the run untouched."""
        allowed = self.lc.allowed(self.run.state)
        outside: list[str] = [s for s in self.lc.states if s not in allowed]
        outside += [s for s in Status if not self.lc.path(self.run.state, s)]
        target = data.draw(st.sampled_from(outside))
        before = _snapshot(self.run)
        refused: InvalidTransition | None = None
        try:
            self.lc.transition(self.run, target, at=self._latest() + timedelta(seconds=1))
        except InvalidTransition as exc:
            refused = exc
        assert refused is not None, f"{self.run.state} -> {target} was accepted"
        assert refused.run_id == self.run.id
        assert refused.from_ == self.run.state
        assert refused.allowed == allowed
        assert _snapshot(self.run) == before

    # -- invariants ---------------------------------------------------------------

    @invariant()
    def status_matches_state(self) -> None:
        assert self.run.status is self.lc.status_of(self.run.state)

    @invariant()
    def history_replays(self) -> None:
        assert self.lc.replay(self.run.history, self.start) == self.run.state
        if self.run.history:
            assert self.run.history[0].from_ == self.start

    @invariant()
    def version_counts_moves(self) -> None:
        assert self.run.version == len(self.run.history)

    @invariant()
    def timestamps_never_go_back(self) -> None:
        moments = [self.run.created_at, *(t.at for t in self.run.history)]
        assert moments == sorted(moments)
        assert all(m.tzinfo is not None for m in moments)

    @invariant()
    def attempts_only_increase(self) -> None:
        attempts = self.run.attempts
        assert len(attempts) == self.attempts_seen
        assert [a.number for a in attempts] == list(range(1, len(attempts) + 1))
        assert all(a.ended_at is not None and a.outcome is not None for a in attempts[:-1])
        is_open = bool(attempts) and attempts[-1].ended_at is None
        assert is_open == (self.run.status in _LIVE)
        for attempt in attempts:
            assert attempt.ended_at is None or attempt.started_at <= attempt.ended_at
        assert self.run.started_at == (attempts[0].started_at if attempts else None)

    @invariant()
    def duration_only_when_over(self) -> None:
        run = self.run
        assert (run.ended_at is not None) == run.is_terminal
        if not run.is_terminal or run.started_at is None:
            assert run.duration is None
        else:
            assert run.ended_at is not None
            assert run.duration == run.ended_at - run.started_at >= timedelta(0)

    @invariant()
    def terminal_is_immutable(self) -> None:
        assert bool(self.lc.allowed(self.run.state)) != self.run.is_terminal

    @invariant()
    def store_agrees(self) -> None:
        if self.store is None:
            return
        assert self.call(self.store.get_run, self.run.id) == self.run
        events = self.call(self.store.events, run_id=self.run.id)
        moves = [event.transition for event in events if event.kind == "transition"]
        assert moves == list(self.run.history)
