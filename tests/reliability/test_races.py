"""Races: worker processes claim from one pool at the same moment.

Claiming must be one atomic step: however many processes claim at once, each
attempt of each run goes to exactly one of them, and a job's concurrency limits
(``max_concurrency`` and ``per_label``) hold across all of them.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from harness import Workers, all_runs, check_history, journal, kind, seed, wait_for

from runlife import JobRecord, Status

# SQLite has one writer at a time however many processes; PostgreSQL is where many
# claimers really overlap, so it gets twice the processes.
CLAIMERS = {"sqlite": 4, "postgres": 8}


def _race(url: str, job: str, workers: Workers, tmp_path: Path, *options: str) -> list[str]:
    """Start the claimers, wait until every one is connected, then fire them at once."""
    go = tmp_path / "go"
    names = [f"c{i}" for i in range(CLAIMERS[kind(url)])]
    for i, name in enumerate(names):
        # Half the claimers run on trio: PostgresStore must work there too (psycopg's
        # async API is asyncio-only, so on trio it takes another path).
        backend = ("asyncio", "trio")[i % 2]
        workers.start(url, name, job, "--start-file", str(go), "--backend", backend, *options)

    def all_open() -> bool:
        opened = {e["w"] for e in journal(workers.out) if e["ev"] == "open"}
        for name in names:
            if name not in opened and workers.procs[name].poll() is not None:
                pytest.fail(f"{name} exited before the race: {workers.stderr(name)}")
        return opened == set(names)

    wait_for(all_open, 60, "every claimer to connect")
    go.touch()
    workers.wait_all(timeout=60)
    workers.check_exits()
    return names


@pytest.mark.slow
def test_each_attempt_is_claimed_by_exactly_one_process(
    store_url: str, workers: Workers, tmp_path: Path
) -> None:
    job = "race"
    ids = seed(store_url, job, 200)
    # Every first attempt fails and is requeued, so each run is raced for twice;
    # a long lease keeps the reapers out of it (this test is about claiming).
    names = _race(
        store_url, job, workers, tmp_path,
        "--fail-attempts", "2", "--lease", "30", "--slots", "4", "--limit", "4",
        "--work-min", "0", "--work-max", "5", "--poll", "0.01",
    )  # fmt: skip

    runs = all_runs(store_url, job)
    events = journal(workers.out)
    claims: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["ev"] == "claim":
            claims[(e["run"], e["attempt"])].append(e)

    assert set(runs) == set(ids)
    assert [e for e in events if e["ev"].endswith("_error")] == []
    doubles = {k: [c["w"] for c in v] for k, v in claims.items() if len(v) > 1}
    assert not doubles, f"attempts claimed by several processes: {doubles}"
    # Nothing was killed, so every claim is in a journal: exactly two per run.
    assert set(claims) == {(r, a) for r in ids for a in (1, 2)}
    for run in runs.values():
        assert run.status is Status.SUCCEEDED
        assert [a.outcome for a in run.attempts] == ["error", "succeeded"]
        check_history(run)
        assert sum(t.to == Status.RUNNING for t in run.history) == 2
        fences = [claims[(run.id, n)][0]["fence"] for n in (1, 2)]
        assert fences[0] < fences[1], (run.id, fences)
    per_worker = Counter(c[0]["w"] for c in claims.values())
    print(f"\nrace figures: store={kind(store_url)} claims per process={dict(per_worker)}")
    # Every process took part, so the claims really did race.
    assert set(per_worker) == set(names)


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals that share a moment (touching ends do not overlap)."""
    # At equal times an end sorts before a start: a run that ended as another
    # started was not running alongside it.
    points = sorted(
        itertools.chain(((s, 1) for s, _ in intervals), ((e, -1) for _, e in intervals))
    )
    running = peak = 0
    for _, step in points:
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.slow
def test_concurrency_limits_hold_under_concurrent_claimers(
    store_url: str, workers: Workers, tmp_path: Path
) -> None:
    job = "limited"
    devices = ("dev-a", "dev-b", "dev-c", "dev-d")
    record = JobRecord(name=job, max_concurrency=2, per_label={"device": 1})
    ids = seed(
        store_url, job, 60, labels=lambda i: {"device": devices[i % len(devices)]}, record=record
    )
    _race(
        store_url, job, workers, tmp_path,
        "--lease", "30", "--slots", "2", "--limit", "2",
        "--work-min", "30", "--work-max", "60", "--poll", "0.01",
    )  # fmt: skip

    runs = all_runs(store_url, job)
    assert Counter(r.status for r in runs.values()) == {Status.SUCCEEDED: len(ids)}
    events = journal(workers.out)
    assert [e for e in events if e["ev"].endswith("_error")] == []
    claimed = {e["run"]: e for e in events if e["ev"] == "claim"}
    ending = {e["run"]: e for e in events if e["ev"] == "completing"}
    assert set(claimed) == set(ending) == set(ids)
    # From "the claim returned" to "the completion was sent": inside the time the
    # store held the run, so an overlap here is an overlap in the store too.
    held = {r: (claimed[r]["t"], ending[r]["t"]) for r in ids}
    total = _max_overlap(list(held.values()))
    by_device = {
        d: _max_overlap([held[r] for r in ids if runs[r].labels["device"] == d]) for d in devices
    }
    print(f"\nlimits figures: store={kind(store_url)} peak={total} per device={by_device}")
    assert total <= 2, f"{total} runs of a job with max_concurrency=2 ran at once"
    assert max(by_device.values()) <= 1, f"per_label device=1 broken: {by_device}"
    # The limit was reached, so the test did push against it.
    assert total == 2


@pytest.mark.slow
def test_concurrent_keyed_submits_and_cron_fires_create_each_run_once(
    store_url: str, workers: Workers, tmp_path: Path
) -> None:
    """Every process submits the same idempotency keys and fires the same cron slots."""
    job = "keyed"
    keys = 40
    seed(store_url, job, 0)
    names = _race(store_url, job, workers, tmp_path, "--mode", "create", "--keys", str(keys))

    created: dict[tuple[str, int], set[str]] = defaultdict(set)
    winners: Counter[tuple[str, int]] = Counter()
    for e in journal(workers.out):
        if e["ev"] == "created":
            created[(e["what"], e["i"])].add(e["run"])
            winners[(e["what"], e["i"])] += e["mine"]
    assert len(created) == 2 * keys
    # Every process got the same run back for a key or a slot, and exactly one of
    # them is the process whose run was stored.
    assert {k: v for k, v in created.items() if len(v) != 1} == {}
    assert set(winners.values()) == {1}
    runs = all_runs(store_url, job)
    assert set(runs) == {run_id for ids in created.values() for run_id in ids}
    scheduled = [r for r in runs.values() if r.trigger == "SCHEDULED"]
    assert len(scheduled) == keys
    assert len({r.scheduled_for for r in scheduled}) == keys
    assert len({r.idempotency_key for r in runs.values() if r.idempotency_key}) == keys
    print(
        f"\ncreate figures: store={kind(store_url)} processes={len(names)} "
        f"keyed submits={len(names) * keys * 2} runs stored={len(runs)}"
    )
