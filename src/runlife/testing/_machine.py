"""The hypothesis state machine of the store contract: a store against a reference model.

The machine's rules are synchronous (hypothesis drives them); they run in a worker
thread and call the async store on the test's event loop through
``anyio.from_thread.run``, so one machine serves asyncio and trio alike. Each
example works under job names of its own and cancels and purges its runs when it
ends, so one store serves every example without leaking state between them.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from runlife._core.lifecycle import DEFAULT_LIFECYCLE
from runlife._core.queries import Claim, JobRecord, LogQuery, RunQuery
from runlife._core.records import Item, ItemCounts, LogLine
from runlife._core.run import Run
from runlife._core.spec import JobSpec
from runlife._core.status import ACTIVE, TERMINAL, Status
from runlife.abc import Store
from runlife.exceptions import ConcurrentUpdate, LeaseLost

__all__ = ("run_machine",)

T = TypeVar("T")
LC = DEFAULT_LIFECYCLE
_LIVE = frozenset({Status.RUNNING, Status.WAITING})
_SPEC = JobSpec().to_spec()
# JSON integers a store keeps: 64 bits.
_ints = st.integers(-(2**63), 2**63 - 1)
# Text a store keeps: UTF-8 without NUL.
_chars = st.characters(codec="utf-8", exclude_characters="\x00")
_FAR = datetime(9999, 1, 1, tzinfo=UTC)
_examples = itertools.count()
_run_specs = st.fixed_dictionaries(
    {
        "job": st.integers(0, 1),
        "queued": st.booleans(),
        "priority": st.integers(0, 2),
        "when": st.integers(0, 3),
        "key": st.none() | st.sampled_from(["k1", "k2"]),
        "device": st.none() | st.sampled_from(["r1", "r2"]),
        "due": st.booleans(),
    }
)


# How a transition's write expects the run's item counts: not at all, as stored, or
# otherwise (refused).
_COUNTS: Final = ("none", "current", "other")


@attrs.define
class _Expected:
    """What the model says the store holds for one run."""

    run: Run
    owner: str | None = None
    fence: int = 0
    items: dict[str, Item] = attrs.Factory(dict)
    logs: list[LogLine] = attrs.Factory(list)
    signals: dict[str, Any] = attrs.Factory(dict)

    def progress(self) -> ItemCounts:
        return ItemCounts.of(item.status for item in self.items.values())


async def run_machine(store: Store, *, examples: int, steps: int) -> None:
    """Run the store state machine against *store*: *examples* random sequences of
    at most *steps* operations each."""
    base = (await store.now()) - timedelta(days=1)
    machine = _machine_for(store, base)
    config = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    await anyio.to_thread.run_sync(
        functools.partial(run_state_machine_as_test, machine, settings=config)
    )


def _machine_for(store: Store, base: datetime) -> type[RuleBasedStateMachine]:
    def call(fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        return anyio.from_thread.run(functools.partial(fn, *args, **kwargs))

    def refused(
        exc: type[Exception], fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, **kw: Any
    ) -> None:
        try:
            call(fn, *args, **kw)
        except exc:
            return
        raise AssertionError(f"{fn.__name__} should have raised {exc.__name__}")

    class StoreMachine(RuleBasedStateMachine):
        """Random operations on the store, each checked against the model."""

        def __init__(self) -> None:
            super().__init__()
            prefix = f"m{next(_examples)}"
            self.jobs = (f"{prefix}-a", f"{prefix}-b")
            self.model: dict[str, _Expected] = {}
            self.keys: dict[tuple[str, str], str] = {}
            self.records: dict[str, JobRecord] = {}
            self.claims: list[Claim] = []
            self.tick = 0

        # -- helpers ---------------------------------------------------------

        def moment(self) -> datetime:
            self.tick += 1
            return base + timedelta(seconds=self.tick, microseconds=self.tick)

        def expected(self, run_id: str) -> Run:
            e = self.model[run_id]
            return attrs.evolve(e.run, progress=e.progress())

        def pick(self, data: st.DataObject, statuses: frozenset[Status] | None = None) -> str:
            choices = sorted(
                rid for rid, e in self.model.items() if statuses is None or e.run.status in statuses
            )
            return data.draw(st.sampled_from(choices))

        def has(self, statuses: frozenset[Status] | None = None) -> bool:
            return any(statuses is None or e.run.status in statuses for e in self.model.values())

        def holds(self, claim: Claim) -> bool:
            e = self.model.get(claim.run_id)
            return e is not None and (e.owner, e.fence) == (claim.owner, claim.fence)

        def hold(self, claim: Claim, run: Run) -> None:
            e = self.model[claim.run_id]
            assert claim.run == run
            assert claim.fence == e.fence + 1
            e.run, e.owner, e.fence = run, claim.owner, claim.fence
            self.claims.append(claim)

        def claim_for(self, data: st.DataObject, run_id: str) -> Claim | None:
            mine = [c for c in self.claims if c.run_id == run_id]
            return data.draw(st.none() | st.sampled_from(mine)) if mine else None

        # -- jobs ------------------------------------------------------------

        @initialize(
            limit=st.none() | st.integers(1, 2),
            per_device=st.none() | st.integers(1, 2),
        )
        def save_job(self, limit: int | None, per_device: int | None) -> None:
            name = self.jobs[0]
            per_label = {} if per_device is None else {"device": per_device}
            job = JobRecord(name=name, spec=_SPEC, max_concurrency=limit, per_label=per_label)
            stored = call(store.save_job, job)
            assert (stored.name, stored.max_concurrency, stored.per_label, stored.spec) == (
                name,
                limit,
                per_label,
                _SPEC,
            )
            self.records[name] = stored

        # -- runs ------------------------------------------------------------

        @rule(specs=st.lists(_run_specs, min_size=1, max_size=4))
        def create(self, specs: list[dict[str, Any]]) -> None:
            for spec in specs:
                self.create_one(**spec)

        def create_one(
            self,
            job: int,
            queued: bool,
            priority: int,
            when: int,
            key: str | None,
            device: str | None,
            due: bool,
        ) -> None:
            run = Run.create(
                job=self.jobs[job],
                at=base + timedelta(seconds=when),
                initial=Status.QUEUED if queued else Status.PENDING,
                priority=priority,
                idempotency_key=key,
                labels={} if device is None else {"device": device, "site": "dc1"},
                params={"n": when, "devices": [device]},
                scheduled_for=base + timedelta(seconds=when) if due else None,
            )
            got = call(store.create_run, run)
            existing = None if key is None else self.keys.get((run.job, key))
            if existing is not None:
                assert got == self.expected(existing)
                return
            assert got == run
            self.model[run.id] = _Expected(run=got)
            if key is not None:
                self.keys[(run.job, key)] = run.id

        @precondition(lambda self: self.has(ACTIVE))
        @rule(data=st.data(), odds=st.integers(0, 4), counts=st.sampled_from(_COUNTS))
        def transition(self, data: st.DataObject, odds: int, counts: str) -> None:
            stale = odds == 0  # one write in five comes with a stale version
            run_id = self.pick(data, ACTIVE)
            e = self.model[run_id]
            current = self.expected(run_id)
            target = data.draw(st.sampled_from(sorted(LC.allowed(current.state))))
            nxt = LC.transition(current, target, at=self.moment(), reason=f"to {target}")
            claim = self.claim_for(data, run_id)
            expected_version = current.version - 1 if stale else current.version
            # Some writes expect the run's item counts: as they are, or as they were
            # before one more item failed.
            progress = e.progress()
            expected = {
                "none": None,
                "current": progress,
                "other": attrs.evolve(
                    progress, total=progress.total + 1, failed=progress.failed + 1
                ),
            }[counts]
            write = functools.partial(
                store.update_run,
                nxt,
                expected_version=expected_version,
                claim=claim,
                expected_progress=expected,
            )
            if claim is not None and not self.holds(claim):
                refused(LeaseLost, write)
                return
            if stale or counts == "other":
                refused(ConcurrentUpdate, write)
                return
            got = call(write)
            assert got == nxt
            e.run = nxt
            if nxt.status not in _LIVE:
                e.owner = None

        @precondition(lambda self: self.has(frozenset({Status.QUEUED})))
        @rule(
            jobs=st.sets(st.integers(0, 1), min_size=1),
            limit=st.integers(1, 3),
            worker=st.sampled_from(["w1", "w2"]),
        )
        def claim(self, jobs: set[int], limit: int, worker: str) -> None:
            names = {self.jobs[j]: LC for j in sorted(jobs)}
            queued = sorted(
                (
                    e.run
                    for e in self.model.values()
                    if e.run.job in names and e.run.status is Status.QUEUED
                ),
                key=lambda r: (-r.priority, r.created_at, r.id),
            )
            want: list[str] = []
            live = {
                name: [
                    e.run
                    for e in self.model.values()
                    if e.run.job == name and e.run.status in _LIVE
                ]
                for name in names
            }
            for run in queued:
                if len(want) >= limit:
                    break
                if self.fits(run, live[run.job]):
                    want.append(run.id)
                    live[run.job].append(run)
            claims = call(store.claim, worker, names, limit=limit, lease=3600.0)
            assert [c.run_id for c in claims] == want
            for c in claims:
                expected = LC.transition(
                    self.expected(c.run_id),
                    Status.RUNNING,
                    at=c.run.history[-1].at,
                    reason=f"claimed by {worker}",
                )
                assert c.owner == worker
                self.hold(c, expected)

        def fits(self, run: Run, live: list[Run]) -> bool:
            job = self.records.get(run.job)
            if job is None:
                return True
            if job.max_concurrency is not None and len(live) >= job.max_concurrency:
                return False
            for label, cap in job.per_label.items():
                value = run.labels.get(label)
                if value is not None and sum(r.labels.get(label) == value for r in live) >= cap:
                    return False
            return True

        @precondition(lambda self: bool(self.model))
        @rule(data=st.data(), worker=st.sampled_from(["w1", "w2"]))
        def claim_run(self, data: st.DataObject, worker: str) -> None:
            run_id = self.pick(data)
            current = self.expected(run_id)
            if current.status not in (Status.PENDING, Status.QUEUED):
                refused(ConcurrentUpdate, store.claim_run, run_id, worker, LC, lease=3600.0)
                return
            c = call(store.claim_run, run_id, worker, LC, lease=3600.0)
            expected = LC.transition(
                current, Status.RUNNING, at=c.run.history[-1].at, reason=f"claimed by {worker}"
            )
            assert c.owner == worker
            self.hold(c, expected)

        @precondition(lambda self: bool(self.claims))
        @rule(data=st.data())
        def heartbeat(self, data: st.DataObject) -> None:
            claim = data.draw(st.sampled_from(self.claims))
            if not self.holds(claim):
                refused(LeaseLost, store.heartbeat, claim, lease=3600.0)
                return
            before = call(store.now)
            expires = call(store.heartbeat, claim, lease=3600.0)
            assert expires >= before + timedelta(seconds=3600)

        # -- items, logs, signals --------------------------------------------

        @precondition(lambda self: bool(self.model))
        @rule(
            data=st.data(),
            updates=st.lists(
                st.tuples(
                    st.sampled_from(["x", "y", "z"]),
                    st.sampled_from(list(Status)),
                    st.none() | _ints | st.lists(st.text(_chars, max_size=3), max_size=2),
                ),
                min_size=1,
                max_size=4,
            ),
            at_once=st.booleans(),
        )
        def save_item(
            self, data: st.DataObject, updates: list[tuple[str, Status, Any]], at_once: bool
        ) -> None:
            run_id = self.pick(data)
            claim = self.claim_for(data, run_id)
            items = [
                Item(run_id=run_id, key=key, status=status, output=output, attempts=1)
                for key, status, output in updates
            ]
            if at_once:  # one save_items call: all of them, or none with a stale claim
                if claim is not None and not self.holds(claim):
                    refused(LeaseLost, store.save_items, items, claim=claim)
                    return
                assert call(store.save_items, items, claim=claim) == tuple(items)
                for item in items:
                    self.model[run_id].items[item.key] = item
                return
            for item in items:
                if claim is not None and not self.holds(claim):
                    refused(LeaseLost, store.save_item, item, claim=claim)
                    continue
                got = call(store.save_item, item, claim=claim)
                assert got == item
                self.model[run_id].items[item.key] = item

        @precondition(lambda self: bool(self.model))
        @rule(
            data=st.data(),
            messages=st.lists(
                st.sampled_from(["Alpha one", "beta", "ALPHA two"]), min_size=1, max_size=4
            ),
            stream=st.sampled_from(["log", "stdout"]),
        )
        def append_logs(
            self, data: st.DataObject, messages: list[str], stream: Literal["log", "stdout"]
        ) -> None:
            run_ids = [self.pick(data) for _ in messages]
            lines = [
                LogLine(
                    run_id=rid, seq=0, at=self.moment(), message=m, stream=stream, fields={"i": i}
                )
                for i, (rid, m) in enumerate(zip(run_ids, messages, strict=True))
            ]
            got = call(store.append_logs, lines)
            want = []
            for line in lines:
                logs = self.model[line.run_id].logs
                stored = attrs.evolve(line, seq=len(logs) + 1)
                logs.append(stored)
                want.append(stored)
            assert list(got) == want

        @precondition(lambda self: bool(self.model))
        @rule(data=st.data(), name=st.sampled_from(["go", "stop"]), payload=_ints)
        def send_signal(self, data: st.DataObject, name: str, payload: int) -> None:
            run_id = self.pick(data)
            call(store.send_signal, run_id, name, {"v": payload})
            self.model[run_id].signals[name] = {"v": payload}

        @precondition(lambda self: self.has(TERMINAL))
        @rule(data=st.data())
        def purge(self, data: st.DataObject) -> None:
            ends = sorted({e.run.ended_at for e in self.model.values() if e.run.ended_at})
            cutoffs = [base, _FAR, *ends, *(t + timedelta(microseconds=1) for t in ends)]
            cutoff = data.draw(st.sampled_from(cutoffs))
            doomed = [
                rid
                for rid, e in self.model.items()
                if e.run.ended_at is not None and e.run.ended_at < cutoff
            ]
            assert call(store.purge, older_than=cutoff, batch=2) == len(doomed)
            for rid in doomed:
                run = self.model.pop(rid).run
                if run.idempotency_key is not None:
                    del self.keys[(run.job, run.idempotency_key)]

        # -- reads -----------------------------------------------------------

        @precondition(lambda self: bool(self.model))
        @rule(
            job=st.none() | st.integers(0, 1),
            statuses=st.sets(st.sampled_from(list(Status)), max_size=3),
            device=st.none() | st.sampled_from(["r1", "r2"]),
            text=st.none() | st.sampled_from(["R1", "-b", "nothing"]),
            limit=st.integers(1, 4),
        )
        def query(
            self,
            job: int | None,
            statuses: set[Status],
            device: str | None,
            text: str | None,
            limit: int,
        ) -> None:
            name = None if job is None else self.jobs[job]
            labels = {} if device is None else {"device": device}
            base_query = RunQuery(
                job=name, status=frozenset(statuses), labels=labels, text=text, limit=limit
            )

            def matches(run: Run) -> bool:
                found = [run.job, *run.labels.values()]
                return (
                    (name is None or run.job == name)
                    and (not statuses or run.status in statuses)
                    and all(run.labels.get(k) == v for k, v in labels.items())
                    and (text is None or any(text.lower() in f.lower() for f in found))
                )

            want = sorted(
                (e.run for e in self.model.values() if matches(e.run)),
                key=lambda r: (r.created_at, r.id),
                reverse=True,
            )
            seen: list[Run] = []
            cursor = None
            while True:
                page = call(store.list_runs, attrs.evolve(base_query, cursor=cursor))
                assert len(page.runs) <= limit
                seen.extend(page.runs)
                cursor = page.next_cursor
                if cursor is None:
                    break
                assert len(page.runs) == limit
            assert [r.id for r in seen] == [r.id for r in want]
            counts: dict[Status, int] = {}
            for run in want:
                counts[run.status] = counts.get(run.status, 0) + 1
            assert dict(call(store.count_runs, base_query)) == counts

        @precondition(lambda self: bool(self.model))
        @rule(data=st.data(), page=st.integers(1, 3))
        def read_run(self, data: st.DataObject, page: int) -> None:
            run_id = self.pick(data)
            e = self.model[run_id]
            assert call(store.get_run, run_id) == self.expected(run_id)
            assert list(call(store.items, run_id)) == list(e.items.values())
            status = data.draw(st.sampled_from(list(Status)))
            assert list(call(store.items, run_id, status)) == [
                i for i in e.items.values() if i.status == status
            ]
            paged: list[Item] = []
            after = None
            while True:
                got_items = call(store.items, run_id, after=after, limit=page)
                paged.extend(got_items)
                if len(got_items) < page:
                    break
                after = got_items[-1].key
            assert paged == list(e.items.values())
            lines: list[LogLine] = []
            cursor = None
            while True:
                got = call(store.logs, LogQuery(run_id=run_id, limit=page, cursor=cursor))
                lines.extend(got.lines)
                cursor = got.next_cursor
                if cursor is None:
                    break
            assert lines == e.logs
            stdout = call(store.logs, LogQuery(run_id=run_id, stream="stdout"))
            assert list(stdout.lines) == [line for line in e.logs if line.stream == "stdout"]
            found = call(store.search_logs, run_id, "alpha")
            assert list(found) == [line for line in e.logs if "alpha" in line.message.lower()]
            assert call(store.signals, run_id) == e.signals
            events = call(store.events, run_id=run_id)
            moves = [ev.transition for ev in events if ev.kind == "transition"]
            assert moves == list(e.run.history)
            items = [ev.item.key for ev in events if ev.kind == "item" and ev.item is not None]
            assert set(items) == set(e.items)

        @invariant()
        def lists_agree(self) -> None:
            for job in self.jobs:
                mine = sorted(
                    (rid for rid, e in self.model.items() if e.run.job == job),
                    key=lambda rid: (self.model[rid].run.created_at, rid),
                    reverse=True,
                )
                page = call(store.list_runs, RunQuery(job=job, limit=1000))
                assert list(page.runs) == [self.expected(rid) for rid in mine]
                counts: dict[Status, int] = {}
                for rid in mine:
                    status = self.model[rid].run.status
                    counts[status] = counts.get(status, 0) + 1
                assert dict(call(store.count_runs, RunQuery(job=job))) == counts
            due = [r.id for r in call(store.due, ACTIVE, limit=10_000) if r.id in self.model]
            assert due == sorted(
                (rid for rid, e in self.model.items() if e.run.status in ACTIVE and e.run.due_at),
                key=lambda rid: (self.model[rid].run.due_at, rid),
            )
            lost = {r.id for r in call(store.abandoned, limit=10_000)} & set(self.model)
            assert lost == {
                rid for rid, e in self.model.items() if e.run.status in _LIVE and e.owner is None
            }

        def teardown(self) -> None:
            # Leave the store empty of this example's runs for the next one.
            for rid, e in self.model.items():
                if e.run.status in ACTIVE:
                    run = call(store.get_run, rid)
                    done = LC.transition(run, Status.CANCELLED, at=self.moment())
                    call(store.update_run, done, expected_version=run.version)
            call(store.purge, older_than=_FAR)

    return StoreMachine
