"""Random walks through lifecycles keep the lifecycle's invariants.

One state machine, run over DEFAULT_LIFECYCLE and over randomly generated valid
custom lifecycles: terminal states are never left, attempts only increase,
replaying the history gives the state, time never goes backwards, the version
counts the moves, a duration exists only once the run is over, and a refused
move leaves the run untouched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from runlife import (
    DEFAULT_LIFECYCLE,
    ErrorInfo,
    InvalidTransition,
    Lifecycle,
    Run,
    Status,
)
from runlife.testing.strategies import lifecycles

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
LIVE = {Status.RUNNING, Status.WAITING}
errors = st.one_of(
    st.none(),
    st.builds(
        ErrorInfo, kind=st.sampled_from(("error", "timeout", "abandoned")), message=st.text()
    ),
)


def snapshot(run: Run) -> tuple[object, ...]:
    return tuple(getattr(run, f.name) for f in attrs.fields(Run))


class LifecycleWalk(RuleBasedStateMachine):
    """Moves one run at random through its lifecycle, checking after every step."""

    lifecycle_strategy: st.SearchStrategy[Lifecycle] = st.just(DEFAULT_LIFECYCLE)

    def __init__(self) -> None:
        super().__init__()
        self.lc = DEFAULT_LIFECYCLE
        self.run = Run.create(job="placeholder", at=T0)
        self.start = self.run.state
        self.attempts_seen = 0

    @initialize(data=st.data(), offset=st.integers(0, 86_400))
    def create(self, data: st.DataObject, offset: int) -> None:
        self.lc = data.draw(self.lifecycle_strategy, label="lifecycle")
        starts = [
            s for s in self.lc.states if self.lc.status_of(s) in (Status.PENDING, Status.QUEUED)
        ]
        initial = data.draw(st.sampled_from([None, *starts]), label="initial")
        self.run = Run.create(
            job="nightly_backup", at=T0 + timedelta(seconds=offset), lifecycle=self.lc,
            initial=initial,
        )  # fmt: skip
        self.start = self.run.state
        assert self.start == (self.lc.initial if initial is None else initial)

    def _latest(self) -> datetime:
        return self.run.history[-1].at if self.run.history else self.run.created_at

    def _moved(self, new: Run, target: str, at: datetime, before: tuple[object, ...]) -> None:
        assert snapshot(self.run) == before, "the old run value was changed"
        assert new.state == target
        assert new.history[-1].to == target
        assert new.history[-1].at == max(at, self._latest())
        assert len(new.attempts) >= len(self.run.attempts)
        self.attempts_seen = max(self.attempts_seen, len(new.attempts))
        self.run = new

    @precondition(lambda self: not self.run.is_terminal)
    @rule(
        data=st.data(),
        step=st.integers(-120, 3_600),
        reason=st.one_of(st.none(), st.text(max_size=20)),
        error=errors,
    )
    def move_to_state(
        self, data: st.DataObject, step: int, reason: str | None, error: ErrorInfo | None
    ) -> None:
        """Move to an allowed state by its name."""
        target = data.draw(st.sampled_from(sorted(self.lc.allowed(self.run.state))))
        at = self._latest() + timedelta(seconds=step)
        before = snapshot(self.run)
        new = self.lc.transition(self.run, target, at=at, reason=reason, error=error)
        assert new.history[-1].reason == reason
        self._moved(new, target, at, before)

    def _status_targets(self) -> list[Status]:
        return [s for s in Status if self.lc.path(self.run.state, s)]

    @precondition(lambda self: bool(self._status_targets()))
    @rule(data=st.data(), step=st.integers(0, 600))
    def move_to_status(self, data: st.DataObject, step: int) -> None:
        """Move by canonical status, as the runtime does: along the run's way there,
        each step recorded."""
        status = data.draw(st.sampled_from(self._status_targets()))
        way = self.lc.path(self.run.state, status)
        at = self._latest() + timedelta(seconds=step)
        before, known = snapshot(self.run), len(self.run.history)
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
        before = snapshot(self.run)
        with pytest.raises(InvalidTransition) as info:
            self.lc.transition(self.run, target, at=self._latest() + timedelta(seconds=1))
        assert info.value.run_id == self.run.id
        assert info.value.from_ == self.run.state
        assert info.value.allowed == allowed
        assert snapshot(self.run) == before

    # -- invariants ---------------------------------------------------------------

    @invariant()
    def status_matches_state(self) -> None:
        assert self.run.status is self.lc.status_of(self.run.state)

    @invariant()
    def replay_yields_state(self) -> None:
        assert self.lc.replay(self.run.history, self.start) == self.run.state
        if self.run.history:
            assert self.run.history[0].from_ == self.start

    @invariant()
    def version_counts_moves(self) -> None:
        assert self.run.version == len(self.run.history)

    @invariant()
    def time_never_goes_backwards(self) -> None:
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
        assert is_open == (self.run.status in LIVE)
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
            assert run.duration == run.ended_at - run.started_at >= timedelta(0)

    @invariant()
    def terminal_has_no_exit(self) -> None:
        assert bool(self.lc.allowed(self.run.state)) != self.run.is_terminal

    @invariant()
    def queued_at_is_latest_entry_into_queued(self) -> None:
        status_of = self.lc.status_of
        entries = [
            t.at
            for t in self.run.history
            if status_of(t.to) is Status.QUEUED and status_of(t.from_) is not Status.QUEUED
        ]
        started_queued = status_of(self.start) is Status.QUEUED
        expected = entries[-1] if entries else (self.run.created_at if started_queued else None)
        assert self.run.queued_at == expected


LifecycleWalk.TestCase.settings = settings(LifecycleWalk.TestCase.settings, stateful_step_count=40)
TestDefaultLifecycleWalk = LifecycleWalk.TestCase


class CustomLifecycleWalk(LifecycleWalk):
    """The same walk over randomly generated valid custom lifecycles."""

    lifecycle_strategy = lifecycles()


CustomLifecycleWalk.TestCase.settings = settings(
    CustomLifecycleWalk.TestCase.settings, stateful_step_count=40
)
TestCustomLifecycleWalk = CustomLifecycleWalk.TestCase
