"""How a run reads to a person: one form for durations, progress and the chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runlife import DEFAULT_LIFECYCLE, ItemCounts, Run, Status
from runlife._present import human_duration, lifecycle_chain, progress_text

T0 = datetime(2026, 3, 10, 14, 15, tzinfo=UTC)


def walk(*statuses: Status) -> Run:
    run = Run.create(job="edge_health_check", at=T0)
    for second, status in enumerate(statuses, 1):
        run = DEFAULT_LIFECYCLE.transition(run, status, at=T0 + timedelta(seconds=second))
    return run


def chain(run: Run) -> list[tuple[str, str]]:
    return [(step.state, step.stand) for step in lifecycle_chain(run, DEFAULT_LIFECYCLE)]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0ms"), (0.0004, "0ms"), (0.999, "999ms"), (1, "1s"), (60, "1m"), (226, "3m 46s"),
     (3600, "1h"), (3660, "1h 1m"), (3599.9, "59m 59s"), (90061, "1d 1h"), (-5, "-5s")],
)  # fmt: skip
def test_durations_read_in_their_two_largest_units(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text
    assert human_duration(timedelta(seconds=seconds)) == text


def test_progress_counts_ended_items_and_names_the_failed() -> None:
    assert progress_text(ItemCounts(total=4, succeeded=2, skipped=1, failed=1)) == "4/4, 1 failed"
    assert progress_text(ItemCounts(total=40, running=2, pending=38)) == "0/40"
    assert progress_text(None) == "-"


def test_a_retried_run_reads_as_one_pass_through_its_life() -> None:
    run = walk(Status.QUEUED, Status.RUNNING, Status.RETRYING, Status.QUEUED, Status.RUNNING)
    assert chain(run) == [
        ("PENDING", "done"), ("QUEUED", "done"), ("RUNNING", "current"), ("SUCCEEDED", "future"),
    ]  # fmt: skip
    steps = lifecycle_chain(run, DEFAULT_LIFECYCLE)
    assert [step.entered_at for step in steps[1:3]] == [
        T0 + timedelta(seconds=4),
        T0 + timedelta(seconds=5),
    ]


def test_a_run_retrying_or_waiting_shows_its_way_back() -> None:
    retrying = walk(Status.QUEUED, Status.RUNNING, Status.RETRYING)
    assert chain(retrying)[3:] == [
        ("RETRYING", "current"),
        ("QUEUED", "future"),
        ("RUNNING", "future"),
        ("SUCCEEDED", "future"),
    ]
    waiting = walk(Status.QUEUED, Status.RUNNING, Status.WAITING)
    assert chain(waiting)[3:] == [
        ("WAITING", "current"),
        ("RUNNING", "future"),
        ("SUCCEEDED", "future"),
    ]


@pytest.mark.parametrize(
    ("end", "stand"),
    [(Status.SUCCEEDED, "done"), (Status.FAILED, "failed"), (Status.CANCELLED, "failed")],
)
def test_an_ended_run_marks_its_last_state(end: Status, stand: str) -> None:
    assert chain(walk(Status.QUEUED, Status.RUNNING, end))[-1] == (end.value, stand)
