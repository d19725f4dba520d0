"""`RuntimeMachine`: a hypothesis state machine over a whole `AsyncRuntime`, in virtual time.

Hypothesis drives state machines synchronously; a runtime lives on an event loop.
The machine bridges the two with anyio's blocking portal: each example starts an
event loop in a thread of its own (``anyio.from_thread.start_blocking_portal``),
enters the store and the runtime there as context managers held by portal tasks
(so their task groups live across steps), and runs each step as one call into
that loop. The clock is a `VirtualClock` without autojump: time moves only when a
rule moves it (`VirtualClock.run_for`, deadline by deadline), and every step ends
with `VirtualClock.settle`, so the invariants look at a runtime that has done all
it can do at that moment.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import anyio
import anyio.from_thread
import attrs
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from runlife._core.lifecycle import Lifecycle
from runlife._core.queries import RunQuery
from runlife._core.run import Run
from runlife._core.status import TERMINAL, Status
from runlife._runtime.job import Job
from runlife._runtime.runtime import AsyncRuntime
from runlife.abc import Store
from runlife.exceptions import QuotaExceeded
from runlife.stores import open_store
from runlife.testing._clock import VirtualClock
from runlife.testing._lenient import LenientMachine
from runlife.testing._on_clock import on_clock

__all__ = ("InjectedFault", "RuntimeMachine")

T = TypeVar("T")
_LIVE = frozenset({Status.RUNNING, Status.WAITING})
_SECOND = timedelta(seconds=1)
_FAULTS = ("fail", "hang")


class InjectedFault(Exception):
    """The error a `RuntimeMachine` makes a job's attempt raise (``fail_next``)."""


class _Lowest:
    """A jitter draw at its lowest: the shortest delay a retry policy may give."""

    @staticmethod
    def random() -> float:
        return 0.0


def _waited(run: Run, lc: Lifecycle) -> timedelta:
    """How long the run's open attempt has spent WAITING (for signals)."""
    if not run.attempts:
        return timedelta(0)
    start, waited, since = run.attempts[-1].started_at, timedelta(0), None
    for move in run.history:
        if move.at < start:
            continue
        if lc.status_of(move.to) is Status.WAITING and since is None:
            since = move.at
        elif lc.status_of(move.to) is not Status.WAITING and since is not None:
            waited += move.at - since
            since = None
    return waited


class RuntimeMachine(LenientMachine):
    """Random operations on a whole `AsyncRuntime` in virtual time, checked after
    every step.

    Subclass it with your jobs and run its ``TestCase``::

        class BackupMachine(RuntimeMachine):
            jobs = [nightly_backup]
            params = {"nightly_backup": st.fixed_dictionaries({"site": st.sampled_from(["dc1"])})}

        TestBackupMachine = BackupMachine.TestCase

    Rules: submit a run of a job (params drawn from ``params[job name]``, ``{}``
    unless given), cancel one, send it a signal (names from ``signals``), move the
    clock forward (up to ``max_advance`` seconds, deadline by deadline), make the
    next attempt of a job fail (`InjectedFault`) or hang until it is cut (async
    jobs only: a hung thread would stop virtual time), crash the runtime (closed
    with an error, so without grace) and start another on the same store.

    Invariants, after every step: no run is lost (each one submitted is in the
    store, and none is live without a live claim), none completed twice (one
    terminal move at most, a terminal run never changes again, the job's function
    returned at most once for it), every history replays through its lifecycle,
    no attempt outlives its timeouts and no retry came before its delay (both to
    the clock's second), and no job's concurrency, per-label or quota limits are
    exceeded.

    Its ``TestCase`` runs without a deadline and without hypothesis's too-slow
    health check, whatever the ``@settings`` on the subclass (its steps do real
    work); set ``max_examples`` and ``stateful_step_count`` there.

    Class attributes to set:

    - jobs: the `Job` values (from ``@runlife.job``); not ``executor="process"``,
      whose functions the machine cannot wrap.
    - params: a hypothesis strategy of params per job name.
    - store_url: ``"memory://"`` (the default) or any store URL; ``{tmp}`` in it
      is replaced by a fresh temporary directory per example
      (``"sqlite:///{tmp}/runs.db"``). Override `make_store` for anything else.
    - backend: ``"asyncio"`` or ``"trio"``.
    - signals: the signal names the ``signal`` rule sends.
    - max_advance: the most seconds one ``advance`` step moves the clock.
    - runtime_options: keyword arguments for each `AsyncRuntime` (``lease``,
      ``concurrency``, ...).

    The clock starts at the current time, to the second. The memory and SQLite
    stores tell time by the machine's clock. PostgreSQL stamps claims and judges
    when a queued run is due by the database's own clock (starting at the current
    second keeps both in step), so there a retry comes only once its delay has
    passed in real time: the invariants still hold, fewer retries happen.

    Attributes a subclass's own rules and invariants may use: ``clock``, ``store``,
    ``runtime`` and ``call(fn, *args)`` to run a coroutine function on the
    machine's event loop.
    """

    jobs: ClassVar[Sequence[Job]] = ()
    params: ClassVar[Mapping[str, st.SearchStrategy[Mapping[str, Any]]]] = {}
    store_url: ClassVar[str] = "memory://"
    backend: ClassVar[str] = "asyncio"
    signals: ClassVar[Sequence[str]] = ("go",)
    max_advance: ClassVar[int] = 900
    runtime_options: ClassVar[Mapping[str, Any]] = {}

    def __init__(self) -> None:
        super().__init__()
        if not self.jobs:
            raise TypeError(f"{type(self).__name__}.jobs is empty: give the jobs to run")
        self._stack = ExitStack()
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise

    def _open(self) -> None:
        self.portal = self._stack.enter_context(
            anyio.from_thread.start_blocking_portal(self.backend)
        )
        start = datetime.now(UTC).replace(microsecond=0)
        self.clock = VirtualClock(start=start, autojump=False)
        self.faults: dict[str, deque[str]] = {job.name: deque() for job in self.jobs}
        self.returned: Counter[str] = Counter()
        self.wrapped = [self._wrap(job) for job in self.jobs]
        self.specs = {job.name: job.spec for job in self.jobs}
        self.store = self.make_store()
        self._stack.enter_context(self._hold(self.store))
        self.submitted: dict[str, str] = {}
        self.ended: dict[str, Run] = {}
        self.generation = 0
        self._runtime_cm: AbstractContextManager[AsyncRuntime] | None = None
        self._start_runtime()

    def make_store(self) -> Store:
        """The store of this example (not yet entered), from ``store_url``."""
        url = self.store_url
        if "{tmp}" in url:
            tmp = tempfile.mkdtemp(prefix="runlife-machine-")
            self._stack.callback(shutil.rmtree, tmp, ignore_errors=True)
            url = url.replace("{tmp}", tmp)
        return on_clock(open_store(url), self.clock)

    # -- the bridge to the event loop --------------------------------------------

    def call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the machine's event loop, then let the
        runtime settle; return what *fn* returned."""

        async def step() -> T:
            result = await fn(*args, **kwargs)
            await self.clock.settle()
            return result

        return self.portal.call(step)

    def _hold(self, cm: Any) -> AbstractContextManager[Any]:
        return self.portal.wrap_async_context_manager(cm)

    def _start_runtime(self) -> None:
        self.generation += 1
        runtime = AsyncRuntime(
            jobs=self.wrapped,
            store=self.store,
            clock=self.clock,
            worker_id=f"runtime-{self.generation}",
            **self.runtime_options,
        )
        cm = self._hold(runtime)
        self.runtime = cm.__enter__()
        self._runtime_cm = cm
        self.call(self.clock.settle)

    def _stop_runtime(self, crash: bool) -> None:
        cm, self._runtime_cm = self._runtime_cm, None
        if cm is None:
            return
        if crash:
            error = RuntimeError("the host crashed")
            cm.__exit__(RuntimeError, error, None)
        else:
            cm.__exit__(None, None, None)

    def _wrap(self, job: Job) -> Job:
        fn, name, machine = job.fn, job.name, self

        def fault() -> str | None:
            queue = machine.faults[name]
            return queue.popleft() if queue else None

        if job.is_async:

            @functools.wraps(fn)
            async def run_async(ctx: Any, *args: Any, **kwargs: Any) -> Any:
                planned = fault()
                if planned == "fail":
                    raise InjectedFault(f"{name}: failed on purpose")
                if planned == "hang":
                    await anyio.sleep_forever()
                result = await fn(ctx, *args, **kwargs)
                machine.returned[ctx.run_id] += 1
                return result

            return attrs.evolve(job, fn=run_async)

        @functools.wraps(fn)
        def run_sync(ctx: Any, *args: Any, **kwargs: Any) -> Any:
            if fault() == "fail":
                raise InjectedFault(f"{name}: failed on purpose")
            result = fn(ctx, *args, **kwargs)
            machine.returned[ctx.run_id] += 1
            return result

        return attrs.evolve(job, fn=run_sync)

    def teardown(self) -> None:
        try:
            self._stop_runtime(crash=True)
        finally:
            self._stack.close()

    # -- reading ----------------------------------------------------------------

    def runs(self) -> dict[str, Run]:
        """Every run of the machine's jobs in the store, by id."""

        async def read() -> dict[str, Run]:
            found: dict[str, Run] = {}
            for name in self.specs:
                page = await self.store.list_runs(RunQuery(job=name, limit=1000))
                found.update((run.id, run) for run in page.runs)
            return found

        return self.portal.call(read)

    def _live_ids(self) -> list[str]:
        return sorted(rid for rid in self.submitted if rid not in self.ended)

    # -- rules ------------------------------------------------------------------

    @rule(data=st.data())
    def submit(self, data: st.DataObject) -> None:
        """Submit a run of one of the jobs."""
        job = data.draw(st.sampled_from(self.wrapped), label="job")
        params = data.draw(self.params.get(job.name, st.just({})), label="params")
        try:
            run = self.call(self.runtime.submit, job, dict(params))
        except QuotaExceeded:
            return  # the quota said no: the limits invariant checks it was right to
        self.submitted[run.id] = job.name

    @rule(data=st.data(), kind=st.sampled_from(_FAULTS))
    def fault_next(self, data: st.DataObject, kind: str) -> None:
        """Make the next attempt of a job fail, or hang (async jobs) until it is cut."""
        jobs = [j for j in self.wrapped if kind == "fail" or j.is_async]
        if jobs:
            job = data.draw(st.sampled_from(jobs), label="job")
            self.faults[job.name].append(kind)

    @precondition(lambda self: bool(self._live_ids()))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """Cancel a run that has not ended; once settled, it has ended."""
        run_id = data.draw(st.sampled_from(self._live_ids()), label="run")
        self.call(self.runtime.cancel, run_id, "by the machine", wait=False)
        run = self.portal.call(self.store.get_run, run_id)
        assert run.is_terminal, f"run {run_id} is {run.state} after its cancel settled"

    @precondition(lambda self: bool(self._live_ids()))
    @rule(data=st.data(), payload=st.integers(-(2**31), 2**31))
    def signal(self, data: st.DataObject, payload: int) -> None:
        """Send a signal to a run that has not ended."""
        run_id = data.draw(st.sampled_from(self._live_ids()), label="run")
        name = data.draw(st.sampled_from(list(self.signals)), label="signal")
        self.call(self.runtime.signal, run_id, name, {"value": payload})

    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        """Move the clock forward: to a moment that matters (the next timer, a run's
        due time or timeout, just past one), or by some seconds."""
        now = self.clock.now()
        moments = [m for m in self._moments() if m > now]
        gaps = sorted({(m - now).total_seconds() for m in moments} | {1.0})
        choices: st.SearchStrategy[float] = st.integers(1, self.max_advance)
        if gaps:
            choices = st.sampled_from(gaps) | st.sampled_from(gaps).map(lambda g: g + 1) | choices
        seconds = data.draw(choices, label="seconds")
        self.call(self.clock.run_for, seconds)

    def _moments(self) -> list[datetime]:
        found = [] if self.clock.next_deadline is None else [self.clock.next_deadline]
        for run in self.runs().values():
            if run.is_terminal:
                continue
            if run.due_at is not None:
                found.append(run.due_at)
            deadline = self.specs[run.job].timeout.next_deadline(run)
            if deadline is not None:
                found.append(deadline.at)
        return found

    @rule()
    def crash(self) -> None:
        """Close the runtime without grace, as a host that fails does, and start
        another (another worker id) on the same store."""
        self._stop_runtime(crash=True)
        self._start_runtime()

    # -- invariants -------------------------------------------------------------

    @invariant()
    def nothing_is_lost_or_done_twice(self) -> None:
        runs = self.runs()
        lost = [rid for rid in self.submitted if rid not in runs]
        assert not lost, f"submitted runs missing from the store: {lost}"
        abandoned = {r.id for r in self.portal.call(self.store.abandoned)} & set(runs)
        assert not abandoned, f"live runs without a live claim: {sorted(abandoned)}"
        for rid, run in runs.items():
            spec = self.specs[run.job]
            lc = spec.lifecycle
            if run.history:
                assert lc.replay(run.history, run.history[0].from_) == run.state
            ends = [t for t in run.history if lc.status_of(t.to) in TERMINAL]
            assert len(ends) <= (1 if run.is_terminal else 0), f"run {rid} ended {len(ends)} times"
            assert self.returned[rid] <= 1, f"run {rid}'s function returned {self.returned[rid]}"
            if rid in self.ended:
                assert run == self.ended[rid], f"run {rid} changed after it ended"
            elif run.is_terminal:
                self.ended[rid] = run
                self.submitted.setdefault(rid, run.job)

    @invariant()
    def timeouts_and_retry_delays_are_honoured(self) -> None:
        now = self.clock.now()
        for rid, run in self.runs().items():
            spec = self.specs[run.job]
            if run.status is Status.RUNNING:
                # The heartbeat limit counts from a beat the store does not keep: not
                # checked here; the attempt limit is pushed back by the time waited.
                timeout = attrs.evolve(spec.timeout, heartbeat=None)
                deadline = timeout.next_deadline(run, waited=_waited(run, spec.lifecycle))
                assert deadline is None or now <= deadline.at + _SECOND, (
                    f"run {rid} is still RUNNING at {now:%H:%M:%S}, past its {deadline.kind} "
                    f"deadline {deadline.at:%H:%M:%S}"
                )
            limit = spec.timeout.attempt
            spent = 0
            for prev, nxt in zip(run.attempts, run.attempts[1:], strict=False):
                if prev.outcome != "interrupted":
                    spent += 1
                assert prev.ended_at is not None
                if limit is not None and prev.outcome == "timeout":
                    took = prev.ended_at - prev.started_at
                    assert took <= limit + _SECOND, (
                        f"run {rid}: attempt {prev.number} ran {took} before it was cut, "
                        f"past its attempt deadline ({limit} after its start)"
                    )
                if prev.error is None:
                    continue
                delay = spec.retry.next_delay(spent, prev.error, rng=_Lowest())
                if delay is not None:
                    gap = nxt.started_at - prev.ended_at
                    assert gap >= timedelta(seconds=delay) - _SECOND, (
                        f"run {rid}: attempt {nxt.number} started {gap} after attempt "
                        f"{prev.number} failed; its retry delay is {delay:g} s"
                    )

    @invariant()
    def every_live_run_can_move_on(self) -> None:
        """A run that has not ended is queued, due at a moment, waiting for a
        signal, or running (held: see ``nothing_is_lost_or_done_twice``)."""
        for rid, run in self.runs().items():
            if run.status in (Status.PENDING, Status.RETRYING):
                assert run.due_at is not None, f"run {rid} is {run.state} and due at no time"

    @invariant()
    def limits_are_not_exceeded(self) -> None:
        live: dict[str, list[Run]] = {name: [] for name in self.specs}
        created: dict[str, list[Run]] = {name: [] for name in self.specs}
        for run in self.runs().values():
            created[run.job].append(run)
            if run.status in _LIVE:
                live[run.job].append(run)
        now = self.clock.now()
        for name, spec in self.specs.items():
            limits = spec.limits
            running = live[name]
            if limits.max_concurrency is not None:
                assert len(running) <= limits.max_concurrency, (
                    f"{len(running)} runs of {name} live at once; its limit is "
                    f"{limits.max_concurrency}"
                )
            for label, cap in limits.per_label.items():
                seen = Counter(r.labels[label] for r in running if label in r.labels)
                assert all(n <= cap for n in seen.values()), f"{name} {label}: {seen} > {cap}"
            quota = limits.quota
            if quota is not None:
                since = quota.window_start(now)
                count = sum(r.created_at >= since for r in created[name])
                assert count <= quota.max_runs, f"{count} runs of {name} since {since}"
