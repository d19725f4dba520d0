"""What an operator asks of a store, answered from values read out of it.

Three questions, each a pure function over what the runtime read (`summarize`,
`job_overview`, `explain_run`) and a frozen value to show (`Summary`,
`JobOverview`, `RunExplanation`): how is the work doing, how is each job doing,
and why is this run not running. The runtime's ``summary``, ``list_jobs``
and ``explain`` verbs read the store and call these; the ``runlife`` command and the
monitor page show what they return. Nothing here does I/O: ``now`` is a
parameter.

>>> from datetime import UTC, datetime
>>> from runlife import DEFAULT_LIFECYCLE as lc, Run, Status
>>> t0 = datetime(2026, 3, 10, 2, tzinfo=UTC)
>>> run = Run.create(job="nightly_backup", at=t0, initial=Status.QUEUED)
>>> why = explain_run(run, now=t0, spec=JobSpec())
>>> why.why, why.message.split(": ", 1)[1]
('queued', 'capacity is free, it waits for a worker to claim it')
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

import attrs

from runlife._core.graph import Explanation, RunGraph
from runlife._core.humane import moment_text
from runlife._core.lifecycle import Lifecycle
from runlife._core.policy import Deadline
from runlife._core.queries import CancelRequest, JobRecord
from runlife._core.run import Run
from runlife._core.schedule import Cron, Every
from runlife._core.spec import JobSpec
from runlife._core.status import Status

__all__ = (
    "JobOverview",
    "Overdue",
    "RunExplanation",
    "Summary",
    "WhyKind",
    "explain_run",
    "job_overview",
    "next_fire",
    "overdue_deadline",
    "summarize",
    "waiting_reason",
    "waited_signal",
)

_HELD = frozenset({Status.RUNNING, Status.WAITING})


def _at(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment_text(moment)} UTC"


# -- waiting for a signal ----------------------------------------------------------

_WAITING = re.compile(r"""^waiting for signal ('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


def waiting_reason(name: str, limit: timedelta | None) -> str:
    """The reason of a run's move into WAITING for signal *name* (with its timeout).

    >>> waiting_reason("approved", timedelta(hours=1))
    "waiting for signal 'approved' (timeout 3600 s)"
    """
    why = f"waiting for signal {name!r}"
    if limit is not None:
        why += f" (timeout {limit.total_seconds():g} s)"
    return why


def waited_signal(run: Run) -> str | None:
    """The signal a WAITING *run* waits for, read from its last move (None if its
    last move is not a `waiting_reason`).

    >>> from datetime import UTC, datetime
    >>> from runlife import DEFAULT_LIFECYCLE as lc
    >>> t0 = datetime(2026, 3, 10, 2, tzinfo=UTC)
    >>> run = lc.transition(Run.create(job="deploy", at=t0, initial=Status.QUEUED),
    ...                     Status.RUNNING, at=t0)
    >>> waited_signal(lc.transition(run, Status.WAITING, at=t0,
    ...                             reason=waiting_reason("approved", None)))
    'approved'
    """
    if run.status is not Status.WAITING or not run.history:
        return None
    found = _WAITING.match(run.history[-1].reason or "")
    if found is None:
        return None
    name = ast.literal_eval(found.group(1))  # the repr of a str, as waiting_reason wrote it
    return name if isinstance(name, str) else None


# -- time limits -------------------------------------------------------------------


def overdue_deadline(run: Run, spec: JobSpec, now: datetime) -> Deadline | None:
    """The time limit of its job (*spec*) that *run* is past at *now*, if one is: its
    attempt (the time it spent WAITING aside), its whole run, or its wait in QUEUED.

    A runtime cuts a run at its deadline, so a run past one is a run nobody is
    cutting: its worker hangs or is lost, or no runtime has its job. Heartbeat
    silence is not judged here (a lapsed lease is: see `Summary.stalled`).

    >>> from datetime import UTC, datetime
    >>> from runlife import DEFAULT_LIFECYCLE as lc, Timeout
    >>> t0 = datetime(2026, 3, 10, 2, tzinfo=UTC)
    >>> run = lc.transition(Run.create(job="backup", at=t0, initial=Status.QUEUED),
    ...                     Status.RUNNING, at=t0)
    >>> spec = JobSpec(timeout=Timeout(attempt=300))
    >>> overdue_deadline(run, spec, t0 + timedelta(minutes=6)).kind
    'attempt'
    >>> overdue_deadline(run, spec, t0 + timedelta(minutes=4)) is None
    True
    """
    for deadline in spec.timeout.deadlines(run, waited=_waited(run, spec.lifecycle)):
        if deadline.kind != "heartbeat" and deadline.at <= now:
            return deadline
    return None


def _waited(run: Run, lifecycle: Lifecycle) -> timedelta:
    """How long the current attempt of *run* has spent WAITING (its attempt clock
    stands still meanwhile), from its history."""
    if not run.attempts:
        return timedelta(0)
    start = run.attempts[-1].started_at
    waited = timedelta(0)
    since: datetime | None = None
    for move in run.history:
        if move.at < start:
            continue
        if lifecycle.status_of(move.to) is Status.WAITING:
            since = move.at if since is None else since
        elif since is not None:
            waited += move.at - since
            since = None
    return waited


# -- the summary -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Overdue:
    """An active run past one of its time limits, and that limit."""

    run: Run
    deadline: Deadline


@attrs.frozen(kw_only=True)
class Summary:
    """How the work in a store is doing: what ``AsyncRuntime.summary`` returns.

    Attributes:
        at: the moment the summary was made.
        since, until: the window of ``counts`` (runs created in it; None: open).
        counts: how many runs created in the window are in each status (statuses
            with none are left out).
        oldest_running: the RUNNING (or WAITING) run that started first, if any.
        overdue: active runs past a time limit of their job (`overdue_deadline`),
            the most overdue first.
        stalled: RUNNING or WAITING runs whose lease lapsed by store time: their
            worker is presumed lost until a reaper ends or retries them.

    The last three are about the store now, whatever the window.
    """

    at: datetime
    since: datetime | None = None
    until: datetime | None = None
    counts: Mapping[Status, int] = attrs.field(factory=dict)
    oldest_running: Run | None = None
    overdue: tuple[Overdue, ...] = ()
    stalled: tuple[Run, ...] = ()

    @property
    def total(self) -> int:
        """How many runs were created in the window."""
        return sum(self.counts.values())

    @property
    def healthy(self) -> bool:
        """Whether no run is overdue or stalled."""
        return not self.overdue and not self.stalled


def summarize(
    *,
    at: datetime,
    counts: Mapping[Status, int],
    active: Iterable[Run],
    specs: Mapping[str, JobSpec],
    stalled: Iterable[Run] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> Summary:
    """The `Summary` of a store at *at*, from what was read of it.

    Args:
        counts: the runs created in the window, by status.
        active: the store's active runs (RUNNING, WAITING, QUEUED, RETRYING).
        specs: the policy of each job (a job left out has no time limits).
        stalled: the live runs whose lease lapsed by store time.

    >>> from datetime import UTC, datetime
    >>> from runlife import DEFAULT_LIFECYCLE as lc, Timeout
    >>> t0 = datetime(2026, 3, 10, 2, tzinfo=UTC)
    >>> run = lc.transition(Run.create(job="backup", at=t0, initial=Status.QUEUED),
    ...                     Status.RUNNING, at=t0)
    >>> s = summarize(at=t0 + timedelta(minutes=6), counts={Status.RUNNING: 1}, active=[run],
    ...               specs={"backup": JobSpec(timeout=Timeout(attempt=300))})
    >>> s.total, s.oldest_running.id == run.id, [o.deadline.kind for o in s.overdue]
    (1, True, ['attempt'])
    """
    runs = list(active)
    held = [run for run in runs if run.status in _HELD and run.started_at is not None]
    oldest = min(held, key=lambda run: (run.started_at, run.id), default=None)
    overdue: list[Overdue] = []
    for run in runs:
        spec = specs.get(run.job)
        if spec is None:
            continue
        deadline = overdue_deadline(run, spec, at)
        if deadline is not None:
            overdue.append(Overdue(run=run, deadline=deadline))
    overdue.sort(key=lambda o: (o.deadline.at, o.run.id))
    return Summary(
        at=at,
        since=since,
        until=until,
        counts={status: counts[status] for status in Status if counts.get(status)},
        oldest_running=oldest,
        overdue=tuple(overdue),
        stalled=tuple(sorted(stalled, key=lambda run: run.id)),
    )


# -- jobs --------------------------------------------------------------------------


def next_fire(
    schedule: Cron | Every | None,
    *,
    last: datetime | None,
    paused: bool,
    now: datetime,
) -> datetime | None:
    """When a schedule fires next: the first slot after *now* (or after *last*, the
    latest slot fired, if later); None for a paused job or one without a schedule.

    A run's outcome never moves it.

    >>> from datetime import UTC, datetime
    >>> t0 = datetime(2026, 3, 10, 2, 17, tzinfo=UTC)
    >>> next_fire(Cron("0 2 * * *"), last=t0.replace(minute=0), paused=False, now=t0)
    datetime.datetime(2026, 3, 11, 2, 0, tzinfo=datetime.timezone.utc)
    """
    if schedule is None or paused:
        return None
    return schedule.next_after(now if last is None else max(last, now))


@attrs.frozen(kw_only=True)
class JobOverview:
    """One job (or workflow) of a store, as ``AsyncRuntime.list_jobs`` lists it.

    Attributes:
        name: the job's name.
        workflow: whether it is a workflow.
        schedule: its `Cron` or `Every`, None for a job run only when submitted.
        next_fire: when its schedule fires next (None: paused, or no schedule).
        paused: whether its schedule is paused.
        last_success: its newest SUCCEEDED run.
        last_failure: its newest FAILED run.
        running: how many of its runs are RUNNING or WAITING now.
        queued: how many wait in QUEUED.
        readable: False when its stored spec cannot be read by this runlife
            (a newer one wrote it): schedule and next fire are then unknown.
    """

    name: str
    workflow: bool = False
    schedule: Cron | Every | None = None
    next_fire: datetime | None = None
    paused: bool = False
    last_success: Run | None = None
    last_failure: Run | None = None
    running: int = 0
    queued: int = 0
    readable: bool = True


def job_overview(
    record: JobRecord,
    spec: JobSpec | None,
    *,
    now: datetime,
    last_success: Run | None = None,
    last_failure: Run | None = None,
    running: int = 0,
    queued: int = 0,
) -> JobOverview:
    """The `JobOverview` of the job of *record* (its *spec* parsed; None when it
    cannot be read here).

    >>> from datetime import UTC, datetime
    >>> t0 = datetime(2026, 3, 10, 2, 17, tzinfo=UTC)
    >>> spec = JobSpec(schedule=Cron("0 2 * * *"))
    >>> row = job_overview(JobRecord(name="nightly_backup", spec=spec.to_spec(),
    ...                              last_scheduled_for=t0.replace(minute=0)), spec, now=t0)
    >>> f"{row.next_fire:%Y-%m-%d %H:%M}", row.paused
    ('2026-03-11 02:00', False)
    """
    schedule = None if spec is None else spec.schedule
    return JobOverview(
        name=record.name,
        workflow=spec is not None and spec.workflow is not None,
        schedule=schedule,
        next_fire=next_fire(
            schedule, last=record.last_scheduled_for, paused=record.paused, now=now
        ),
        paused=record.paused,
        last_success=last_success,
        last_failure=last_failure,
        running=running,
        queued=queued,
        readable=spec is not None,
    )


# -- why a run is not running ------------------------------------------------------

WhyKind = Literal[
    "finished",
    "running",
    "cancelling",
    "stalled",
    "waiting",
    "retrying",
    "scheduled",
    "upstream",
    "limit",
    "queued",
    "pending",
]
"""What keeps a run where it is (`RunExplanation.why`).

``finished`` it ended; ``running`` an attempt runs; ``cancelling`` it runs with a
cancel request standing; ``stalled`` its lease lapsed (its worker is presumed
lost); ``waiting`` it waits for a signal; ``retrying`` it waits out a retry
delay; ``scheduled`` it starts later; ``upstream`` a workflow node whose upstream
nodes have not allowed it yet; ``limit`` its job's concurrency limit is full;
``queued`` it waits for a worker with capacity free; ``pending`` none of these.
"""


@attrs.frozen(kw_only=True)
class RunExplanation:
    """Why a run is where it is: what ``AsyncRuntime.explain`` returns.

    Attributes:
        run_id, job, status, state: the run.
        why: what keeps it there (`WhyKind`).
        message: one sentence for a person, naming the run, the cause and when
            it moves on.
        since: when it entered its current state.
        until: when it moves on by itself, if it does (a retry delay's end, a
            start time).
        upstream: for a workflow node, each upstream node with its status.
        blocked_by: for a workflow node, the upstream nodes holding it back (or
            whose outcome means it will be skipped).
        limit: for ``why == "limit"``, which limit is full (``"max_concurrency"``
            or ``"per_label[device]"``).
        signal: for ``why == "waiting"``, the signal it waits for.
        nodes: for an active workflow run, why each node that has no run yet is
            not running (`Explanation`, in topological order); ``message`` ends
            with them and with the nodes running.
    """

    run_id: str
    job: str
    status: Status
    state: str
    why: WhyKind
    message: str
    since: datetime | None = None
    until: datetime | None = None
    upstream: tuple[tuple[str, Status], ...] = ()
    blocked_by: tuple[tuple[str, Status], ...] = ()
    limit: str | None = None
    signal: str | None = None
    nodes: tuple[Explanation, ...] = ()

    def __str__(self) -> str:
        return self.message


def explain_run(
    run: Run,
    *,
    now: datetime,
    spec: JobSpec,
    node: Explanation | None = None,
    live: int = 0,
    live_by_label: Mapping[str, int] | None = None,
    signals: Mapping[str, Any] | None = None,
    stalled: bool = False,
    cancel: CancelRequest | None = None,
    graph: RunGraph | None = None,
) -> RunExplanation:
    """Why *run* is not running (or that it is), from what was read of the store.

    Args:
        now: the moment of the answer.
        spec: the policy of the run's job.
        node: for a run that is a workflow node, `Workflow.explain` of its node
            in its workflow run.
        live: how many runs of its job are RUNNING or WAITING.
        live_by_label: for each label key of its job's ``per_label`` limit, how
            many live runs of its job have the run's value of that label.
        signals: the signals delivered to the run.
        stalled: whether its lease lapsed by store time.
        cancel: the cancel request standing for it, if any.
        graph: for a workflow run, its graph with its nodes' statuses.

    >>> from datetime import UTC, datetime
    >>> from runlife import Limits, Run
    >>> t0 = datetime(2026, 3, 10, 2, tzinfo=UTC)
    >>> run = Run.create(job="sync", at=t0, initial=Status.QUEUED)
    >>> why = explain_run(run, now=t0, spec=JobSpec(limits=Limits(max_concurrency=2)), live=2)
    >>> why.why, why.limit
    ('limit', 'max_concurrency')
    >>> print(why.message.split(": ", 1)[1])
    job 'sync' is at its max_concurrency of 2 (2 runs running)
    """
    told = _explain(
        run,
        now=now,
        spec=spec,
        node=node,
        live=live,
        live_by_label=live_by_label or {},
        signals=signals or {},
        stalled=stalled,
        cancel=cancel,
    )
    if graph is None or run.is_terminal:
        return told
    statuses = graph.statuses
    order = graph.workflow.order
    unstarted = [n for n in order if n not in graph.runs and statuses[n] is Status.PENDING]
    nodes = tuple(graph.explain(n) for n in unstarted)
    running = [n for n in order if n in graph.runs and not statuses[n].is_terminal]
    parts = [told.message]
    if running:
        parts.append("running: " + ", ".join(f"{n} ({statuses[n]})" for n in running))
    parts.extend(node.text for node in nodes)
    return attrs.evolve(told, message="; ".join(parts), nodes=nodes)


def _explain(
    run: Run,
    *,
    now: datetime,
    spec: JobSpec,
    node: Explanation | None,
    live: int,
    live_by_label: Mapping[str, int],
    signals: Mapping[str, Any],
    stalled: bool,
    cancel: CancelRequest | None,
) -> RunExplanation:
    since = run.history[-1].at if run.history else run.created_at

    def said(why: WhyKind, message: str, **more: Any) -> RunExplanation:
        return RunExplanation(
            run_id=run.id,
            job=run.job,
            status=run.status,
            state=run.state,
            since=since,
            why=why,
            message=message,
            **more,
        )

    name = f"run {run.id} ({run.job})"
    status = run.status
    if status.is_terminal:
        how = f"{name} is not running: it ended {status} at {_at(run.ended_at or since)}"
        if run.error is not None and run.error.message:
            how += f": {run.error.message}"
        return said(why="finished", message=how)
    if status in _HELD and stalled:
        how = (
            f"{name} is {status}, but its lease lapsed by store time: its worker is presumed "
            "lost, and the reaper of any live runtime will end or retry it"
        )
        return said(why="stalled", message=how)
    if cancel is not None and status in _HELD:
        how = (
            f"{name} is {status} with a cancel request by {cancel.by} since "
            f"{_at(cancel.at)}: the process holding it stops it within one heartbeat"
        )
        return said(why="cancelling", message=how)
    if status is Status.WAITING:
        signal = waited_signal(run)
        what = "a signal" if signal is None else f"signal {signal!r}"
        how = f"{name} is waiting for {what} since {_at(since)}"
        if signal is not None and signal in signals:
            how += "; it was sent, and the run resumes at its next look"
        else:
            how += f"; send it with `runlife signal {run.id} {signal or 'NAME'}`"
        return said(why="waiting", message=how, signal=signal)
    if status is Status.RUNNING:
        attempt = run.attempts[-1] if run.attempts else None
        how = f"{name} is running"
        if attempt is not None:
            how += f": attempt {attempt.number} started at {_at(attempt.started_at)}"
        return said(why="running", message=how)
    if status is Status.RETRYING:
        last = run.attempts[-1] if run.attempts else None
        how = f"{name} is retrying"
        if last is not None:
            how += f": attempt {last.number} failed"
            if last.error is not None and last.error.message:
                how += f" ({last.error.kind}: {last.error.message})"
        how += f"; attempt {run.attempt + 1} is due at {_at(run.due_at)}"
        return said(why="retrying", message=how, until=run.due_at)
    if status is Status.PENDING:
        if node is not None and node.verdict in ("waiting", "impossible"):
            how = f"{name} is PENDING in workflow run {run.workflow_run_id}: {node.text}"
            return said(
                why="upstream",
                message=how,
                upstream=node.upstream,
                blocked_by=node.blocked_by
                or tuple((n, dict(node.upstream)[n]) for n in node.waiting_on),
            )
        if run.due_at is not None and run.due_at > now:
            how = f"{name} is scheduled for later: it starts at {_at(run.due_at)}"
            return said(why="scheduled", message=how, until=run.due_at)
        how = (
            f"{name} is PENDING and due since {_at(run.due_at or since)}: the mover of a "
            "live runtime queues (or starts) it"
        )
        return said(why="pending", message=how, until=run.due_at)
    # QUEUED: capacity first, then a worker.
    limits = spec.limits
    if limits.max_concurrency is not None and live >= limits.max_concurrency:
        how = (
            f"{name} is queued: job {run.job!r} is at its max_concurrency of "
            f"{limits.max_concurrency} ({live} run{'s' * (live != 1)} running)"
        )
        return said(why="limit", message=how, limit="max_concurrency")
    for key, cap in limits.per_label.items():
        value = run.labels.get(key)
        count = live_by_label.get(key, 0)
        if value is not None and count >= cap:
            how = (
                f"{name} is queued: job {run.job!r} runs at most {cap} at once per "
                f"{key!r} label, and {key}={value} has {count} running"
            )
            return said(why="limit", message=how, limit=f"per_label[{key}]")
    how = (
        f"{name} is queued since {_at(since)}: capacity is free, it waits for a worker to claim it"
    )
    return said(why="queued", message=how)
