"""The codec's JSON texts written out directly: the same text as encoding the
JSON forms, for every run and every text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from runlife import ErrorInfo, Run
from runlife._core import codec
from runlife._core.records import Attempt, Transition
from runlife.testing.strategies import lifecycles, runs, texts

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)

_moments = st.integers(-(10**12), 10**12).map(lambda us: T0 + timedelta(microseconds=us))
_errors = st.builds(
    ErrorInfo,
    kind=texts().filter(bool),
    type=texts(),
    message=st.text(max_size=30),
    traceback=st.none() | st.text(max_size=30),
)


@st.composite
def _attempts(draw: st.DrawFn) -> tuple[Attempt, ...]:
    out = []
    for number in range(1, draw(st.integers(0, 4)) + 1):
        started = draw(_moments)
        ended = draw(
            st.none() | st.just(started + timedelta(microseconds=draw(st.integers(0, 10**12))))
        )
        out.append(
            Attempt(
                number=number,
                started_at=started,
                ended_at=ended,
                outcome=draw(st.none() | texts()),
                error=draw(st.none() | _errors),
            )
        )
    return tuple(out)


_transitions = st.builds(
    Transition,
    from_=st.sampled_from(("PENDING", "QUEUED")) | texts().filter(bool),
    to=texts().filter(bool),
    at=_moments,
    reason=st.none() | st.text(max_size=30),
)


@given(_attempts())
def test_attempts_text_is_their_json(attempts: tuple[Attempt, ...]) -> None:
    """`attempts_text` writes what encoding `attempts_to_json` gives, quotes and
    control characters included."""
    assert codec.attempts_text(attempts) == codec.raw_dumps(codec.attempts_to_json(attempts))


@given(st.lists(_transitions, max_size=4))
def test_history_text_is_its_json(history: list[Transition]) -> None:
    """`history_text` writes what encoding each `transition_to_json` gives."""
    expected = codec.raw_dumps([codec.transition_to_json(t) for t in history])
    assert codec.history_text(history) == expected


@given(runs(lifecycle=lifecycles()))
def test_texts_of_runs(run: Run) -> None:
    """The attempts and history of runs of any lifecycle, as the strategies walk them."""
    assert codec.attempts_text(run.attempts) == codec.raw_dumps(
        codec.attempts_to_json(run.attempts)
    )
    expected = codec.raw_dumps([codec.transition_to_json(t) for t in run.history])
    assert codec.history_text(run.history) == expected
