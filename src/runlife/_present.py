"""How runlife shows a run to a person: durations, progress, the lifecycle chain.

Pure functions over core values, shared by every face (the ``runlife`` command, the
monitor page, the demo), so that a run reads the same wherever an operator looks.

>>> from datetime import timedelta
>>> human_duration(timedelta(minutes=3, seconds=46))
'3m 46s'
>>> progress_text(ItemCounts(total=4, succeeded=3, failed=1))
'4/4, 1 failed'
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Literal

import attrs

from runlife._core.claiming import claimed_by
from runlife._core.humane import human_duration, moment_text
from runlife._core.lifecycle import Lifecycle
from runlife._core.records import ItemCounts
from runlife._core.run import Run
from runlife._core.schedule import Cron, Every
from runlife._core.status import Status

__all__ = (
    "ChainStep",
    "StepState",
    "chain_text",
    "human_duration",
    "lifecycle_chain",
    "moment_text",
    "progress_text",
    "schedule_text",
    "worker_text",
)


def schedule_text(schedule: Cron | Every | None) -> str:
    """A schedule as the jobs tables show it: ``"0 2 * * *"`` (with its zone when not
    UTC), ``"every 5m"``, ``"-"``.

    >>> schedule_text(Cron("0 2 * * *", tz="Europe/Paris")), schedule_text(Every(300))
    ('0 2 * * * (Europe/Paris)', 'every 5m')
    """
    if schedule is None:
        return "-"
    if isinstance(schedule, Cron):
        return schedule.expr if schedule.tz == "UTC" else f"{schedule.expr} ({schedule.tz})"
    return f"every {human_duration(schedule.seconds)}"


def worker_text(run: Run) -> str:
    """The worker whose claim started *run*'s last attempt, as its history records
    it; ``"-"`` for a run never claimed.

    >>> from datetime import UTC, datetime
    >>> from runlife import DEFAULT_LIFECYCLE as lc
    >>> at = datetime(2026, 3, 10, 2, tzinfo=UTC)
    >>> run = lc.transition(Run.create(job="backup", at=at), Status.QUEUED, at=at)
    >>> worker_text(run), worker_text(lc.transition(run, Status.RUNNING, at=at,
    ...                                             reason="claimed by w1"))
    ('-', 'w1')
    """
    return claimed_by(run) or "-"


def progress_text(counts: ItemCounts | None) -> str:
    """Items done of the total, and how many failed: ``"3/40"``, ``"4/4, 1 failed"``.

    Done means ended (succeeded, failed or skipped). A run without items shows ``"-"``.

    >>> progress_text(ItemCounts(total=40, succeeded=3, running=1, pending=36))
    '3/40'
    >>> progress_text(ItemCounts())
    '-'
    """
    if counts is None or counts.total == 0:
        return "-"
    done = counts.succeeded + counts.failed + counts.skipped
    text = f"{done}/{counts.total}"
    if counts.failed:
        text += f", {counts.failed} failed"
    return text


StepState = Literal["done", "current", "failed", "future"]
"""Where a state of the chain stands for the run: passed, now, failed in, or ahead."""


@attrs.frozen
class ChainStep:
    """One state of a run's lifecycle chain (its name, a plain string), with when the
    run entered it."""

    state: str
    status: Status
    stand: StepState
    entered_at: datetime | None = None


def lifecycle_chain(run: Run, lifecycle: Lifecycle) -> tuple[ChainStep, ...]:
    """The chain of states a person reads for *run*: where it has been, where it is.

    The states the run passed through (from its history, each with when it entered
    it), then its current state, then, while it is active, the way on to success
    through *lifecycle*. A run that ended failed or cancelled marks its last state
    ``"failed"``; a run that succeeded marks it ``"done"``.

    >>> from datetime import UTC, datetime
    >>> from runlife import DEFAULT_LIFECYCLE as lc
    >>> run = lc.transition(Run.create(job="backup", at=datetime(2026, 3, 10, tzinfo=UTC)),
    ...                     Status.QUEUED, at=datetime(2026, 3, 10, tzinfo=UTC))
    >>> [(s.state, s.stand) for s in lifecycle_chain(run, lc)]
    [('PENDING', 'done'), ('QUEUED', 'current'), ('RUNNING', 'future'), ('SUCCEEDED', 'future')]
    """
    return tuple(_chain(run, lifecycle))


def _chain(run: Run, lifecycle: Lifecycle) -> Iterator[ChainStep]:
    passed: list[tuple[str, datetime | None]] = []
    for move in run.history:
        if not passed:
            passed.append((move.from_, run.created_at))
        # A retried run walks RUNNING -> RETRYING -> QUEUED -> RUNNING again: a state
        # entered again erases the loop since its first visit, so the chain reads
        # PENDING > QUEUED > RUNNING, each at the last time the run entered it.
        seen = next((i for i, step in enumerate(passed) if step[0] == move.to), len(passed))
        del passed[seen:]
        passed.append((move.to, move.at))
    if not passed:
        passed.append((run.state, run.created_at))
    *before, (current, entered) = passed
    for state, at in before:
        yield ChainStep(_name(state), lifecycle.status_of(state), "done", at)
    status = lifecycle.status_of(current)
    if status.is_terminal:
        stand: StepState = "done" if status is Status.SUCCEEDED else "failed"
        yield ChainStep(_name(current), status, stand, entered)
        return
    yield ChainStep(_name(current), status, "current", entered)
    # The way on, one status at a time, along the canonical order of a run's life;
    # a run waiting or retrying rejoins it where its lifecycle lets it.
    here = current
    after = _AHEAD.index(status) + 1 if status in _AHEAD else 1
    for target in _AHEAD[after:]:
        way = lifecycle.path(here, target)
        for state in way:
            yield ChainStep(_name(state), lifecycle.status_of(state), "future")
        if way:
            here = way[-1]


def chain_text(steps: tuple[ChainStep, ...], *, arrow: str = " → ") -> str:
    """The chain as plain text, the current state in brackets (a face that has
    bold shows it bold instead).

    >>> from datetime import UTC, datetime
    >>> from runlife import DEFAULT_LIFECYCLE as lc
    >>> run = Run.create(job="backup", at=datetime(2026, 3, 10, tzinfo=UTC), initial="QUEUED")
    >>> chain_text(lifecycle_chain(run, lc))
    '[QUEUED] → RUNNING → SUCCEEDED'
    """
    return arrow.join(f"[{s.state}]" if s.stand == "current" else s.state for s in steps)


def _name(state: str) -> str:
    return state.value if isinstance(state, Status) else state


_AHEAD = (Status.PENDING, Status.QUEUED, Status.RUNNING, Status.SUCCEEDED)
