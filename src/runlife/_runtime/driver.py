"""The workflow driver: runs each node of a workflow run once its upstream nodes allow.

* **Holding.** A workflow run is a run whose job is a workflow. It is QUEUED when
  submitted, and a driver claims it as a worker claims a job's run (QUEUED ->
  RUNNING, one attempt, a lease the driver renews): one driver at a time holds it,
  and one driver holds at most a thousand. A driver drives the workflows of its
  runtime and those whose record (saved with the workflow's graph by the runtime
  that has it) it finds in the store: when it starts, every five minutes, and
  whenever its runtime reads one.
* **Children.** A node gets its run, a *child* (trigger UPSTREAM, ``workflow_run_id``
  the workflow run, idempotency key ``"<workflow run id>/<node>"``), when its rule
  decides: QUEUED (or started at once, for a ``queued=False`` job) when it may run,
  SKIPPED when it never can, the reason naming the upstream node's run and its
  status. The children a step decides are created together, concurrently, so that
  the SQL stores group them into shared transactions. Their jobs' quotas do not
  refuse them (as they do not refuse a schedule's runs).
* **Following.** The driver follows the store's events: a child that ended is
  completed in the workflow's `Resolver`, whose answer (what became ready, what
  must be skipped) costs work proportional to the node's out-degree.
* **Ending.** Once every node finished, the workflow run ends as
  `Workflow.outcome` judges: FAILED when a node failed that no failure handler
  (an ``ANY_FAILED``/``ALL_FAILED`` node that succeeded) took care of, else
  CANCELLED when a node was cancelled, else SUCCEEDED. Its result counts the
  nodes by status.
* **Resuming.** A driver that claims a workflow run reads its children and starts
  its resolver from their statuses (`Workflow.resolver`), then creates what is
  missing. Idempotency keys make a child that was created already (by a driver
  that was lost, or is still running somewhere) come back rather than twice. When
  its runtime stops, a driver hands its workflow runs back (QUEUED, no budget
  spent); when it is lost, their leases lapse and the reaper does it.
* **Cancelling.** A cancelled workflow run has its live children cancelled, by
  whoever cancels it and again by its driver when it sees the cancellation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final, Protocol, TypeVar

import anyio
import anyio.abc
import attrs
import structlog

from runlife._core.graph import Resolver, RunGraph, SkippedNode, Workflow
from runlife._core.ids import new_id
from runlife._core.lifecycle import Lifecycle
from runlife._core.policy import Retry, decide_failure
from runlife._core.queries import Claim, RunQuery
from runlife._core.records import ErrorInfo
from runlife._core.run import Run
from runlife._core.spec import JobSpec
from runlife._core.status import ACTIVE, Status, Trigger
from runlife._core.values import MAX_PAGE, check_json
from runlife._runtime.guard import StoreGuard
from runlife._runtime.job import Job
from runlife._runtime.jobs import JobBook, apply_decision, to_cancelled, to_queue
from runlife._runtime.wake import Pulse, nap
from runlife.abc import Clock
from runlife.exceptions import (
    Conflict,
    InvalidCompletion,
    InvalidPolicy,
    InvalidTransition,
    InvalidValue,
    LeaseLost,
    RunlifeError,
)

__all__ = ("DRIVER_RETRY", "Driver", "workflow_spec", "workflows_by_name")

DRIVER_RETRY: Final = Retry(max_attempts=100, delay=0)
"""A workflow run's retry policy: each attempt is one driver's hold; a lost driver
(its lease lapsed) costs one, a runtime that stops costs none."""

_MAX_HELD: Final = 1000
_LOOK_EVERY: Final = 300.0
_EVENTS: Final = 1000
_CREATING: Final = 64
_STOPPING: Final = 1.0

T = TypeVar("T")
NewRun = Callable[..., Run]
Create = Callable[[Run, JobSpec], Awaitable[Run]]


class Cancel(Protocol):
    """The runtime's cancel of one run (for *by*, because of *reason*)."""

    async def __call__(
        self, run_id: str, reason: str | None, *, by: str | None = None, wait: bool = True
    ) -> Run: ...


def workflow_spec(workflow: Workflow) -> JobSpec:
    """The spec a workflow's record holds: its graph, and `DRIVER_RETRY`."""
    return JobSpec(workflow=workflow, retry=DRIVER_RETRY)


def workflows_by_name(
    workflows: Iterable[Workflow], jobs: Mapping[str, Job]
) -> tuple[dict[str, Workflow], dict[str, Job]]:
    """The workflows by name, and the jobs their nodes give as `Job` values that
    *jobs* lacks (a runtime runs those too).

    Raises:
        InvalidPolicy: not an iterable of workflows (a job given instead, say); two
            workflows with one name; a workflow named as a job; a node that is a
            workflow, or a job other than the runtime's job of that name.
    """
    if isinstance(workflows, Workflow | Job):
        raise InvalidPolicy(
            "workflows", workflows, "an iterable of Workflow values: workflows=[workflow]"
        )
    out: dict[str, Workflow] = {}
    for wf in workflows:
        if isinstance(wf, Job):
            raise InvalidPolicy(
                "workflows", wf.name, "Workflow values; a job goes in jobs=[...], not workflows"
            )
        if not isinstance(wf, Workflow):
            raise InvalidPolicy("workflows", wf, "Workflow values")
        if wf.name in out and out[wf.name] != wf:
            raise InvalidPolicy("workflows", wf.name, "workflows with distinct names")
        if wf.name in jobs:
            raise InvalidPolicy(
                "workflows", wf.name, "a name that no job of the runtime has (a job has it)"
            )
        out[wf.name] = wf
    extra: dict[str, Job] = {}
    for wf in out.values():
        for node, ref in wf.jobs.items():
            if node in out:
                raise InvalidPolicy(
                    "workflows",
                    wf.name,
                    f"nodes that are jobs; node {node!r} is a workflow, and a workflow "
                    "cannot run inside another",
                )
            if not isinstance(ref, Job):
                continue
            known = jobs.get(node) or extra.get(node)
            if known is not None and known != ref:
                raise InvalidPolicy(
                    "workflows",
                    wf.name,
                    f"nodes that are the runtime's jobs; node {node!r} is another job "
                    f"than the job {node!r} of the runtime",
                )
            if node not in jobs:
                extra[node] = ref
    return out, extra


class _Drive:
    """One workflow run this driver holds, from its claim to its last write."""

    __slots__ = ("children", "claim", "lost", "ready", "resolver", "run", "skipped", "spec")

    def __init__(self, claim: Claim, spec: JobSpec, resolver: Resolver) -> None:
        self.claim = claim
        self.run = claim.run
        self.spec = spec
        self.resolver = resolver
        self.children: dict[str, str] = {}
        """Each node that has a run, and its run's id."""
        self.ready: list[str] = []
        """Nodes that may run and have no run yet."""
        self.skipped: list[SkippedNode] = []
        """Nodes skipped that have no run yet."""
        self.lost = False

    @property
    def workflow(self) -> Workflow:
        return self.resolver.workflow


class Driver:
    """Drives workflow runs (see the module docstring).

    Args:
        guard: the store.
        clock: the runtime's clock.
        book: the jobs and workflows, own and stored (a workflow is known by its spec).
        workflows: the runtime's workflows by name.
        worker_id: the owner name of its claims.
        new_run: the runtime's maker of a new run (as ``submit`` makes it).
        create: the runtime's creator of a new run (claims a ``queued=False`` job's
            run at once when the runtime has the job).
        cancel: the runtime's cancel of one run.
        lease: the lease of each claim, in seconds.
        poll: seconds of clock time between two looks at the store.
        grace: seconds it tries (at least one) to hand its workflow runs back
            when it stops, should the store be unavailable.
        changed: pulsed after each write of a run in this runtime (it wakes on it
            while it holds workflow runs: a child may have ended), and by it after
            each write of a workflow run.
        claimable: pulsed when a run may have become claimable in this runtime (a
            workflow run, perhaps).
        store_changed: pulsed when the store may have changed.

    >>> import anyio, runlife
    >>> @runlife.job
    ... async def extract(ctx):
    ...     return 3
    >>> @runlife.job
    ... async def load(ctx):
    ...     return "loaded"
    >>> etl = runlife.Workflow("etl", {extract: [], load: [extract]})
    >>> async def main():
    ...     async with runlife.AsyncRuntime(workflows=[etl], store="memory://") as rt:
    ...         run = await rt.wait((await rt.submit(etl)).id)
    ...         return run, await rt.graph(run.id)
    >>> run, graph = anyio.run(main)
    >>> run.status, run.result
    (<Status.SUCCEEDED: 'SUCCEEDED'>, {'nodes': 2, 'succeeded': 2})
    >>> sorted(graph.statuses.items())
    [('extract', <Status.SUCCEEDED: 'SUCCEEDED'>), ('load', <Status.SUCCEEDED: 'SUCCEEDED'>)]
    """

    def __init__(
        self,
        *,
        guard: StoreGuard,
        clock: Clock,
        book: JobBook,
        workflows: Mapping[str, Workflow],
        worker_id: str,
        new_run: NewRun,
        create: Create,
        cancel: Cancel,
        lease: float = 30,
        poll: float = 5,
        grace: float = 10,
        changed: Pulse | None = None,
        claimable: Pulse | None = None,
        store_changed: Pulse | None = None,
    ) -> None:
        self.guard = guard
        self.clock = clock
        self.book = book
        self.workflows = dict(workflows)
        self.worker_id = worker_id
        self.lease = lease
        self.poll = poll
        self.grace = grace
        self.changed = changed or Pulse()
        self.claimable = claimable or Pulse()
        self.store_changed = store_changed or Pulse()
        self.pulse = Pulse()
        """Pulse it when the driver has something to do at once (a workflow run was
        created in its runtime; its heartbeat lost a run)."""
        self._new_run = new_run
        self._create = create
        self._cancel = cancel
        self._drives: dict[str, _Drive] = {}
        self._child: dict[str, tuple[_Drive, str]] = {}
        self._dirty: dict[str, _Drive] = {}
        self._cursor: int | None = None
        self._made = 0
        """How many runs it created: each one pulsed `claimable` once."""
        self._names: set[str] = set(self.workflows)
        self._lifecycles: dict[str, Lifecycle] = {}
        self._looked: datetime | None = None
        self._log = structlog.get_logger("runlife.driver").bind(worker=worker_id)

    @property
    def held(self) -> frozenset[str]:
        """The ids of the workflow runs this driver holds."""
        return frozenset(self._drives)

    # -- serving -------------------------------------------------------------------

    async def serve(self) -> None:
        """Drive workflow runs until cancelled; then hand back those it holds."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._heartbeat_loop)
                claimed: tuple[int, int, int, int] | None = None
                claimed_at = self.clock.now()
                while True:
                    seen = (
                        self.pulse.count,
                        self.claimable.count,
                        self.store_changed.count,
                        self._made,
                    )
                    outcomes = self.changed.count
                    now = self.clock.now()
                    claim, later = self._claim_now(seen, claimed, claimed_at, now)
                    try:
                        await self.tick(claim=claim)
                    except RunlifeError as exc:
                        self._log.error("driving workflow runs failed", error=str(exc))
                    else:
                        if claim:
                            claimed, claimed_at = seen, now
                    await self._nap(seen, outcomes, later)
        finally:
            with anyio.CancelScope(shield=True):
                await self._release()

    async def tick(self, *, claim: bool = True) -> None:
        """Claim workflow runs (unless *claim* is false), follow their children,
        create the children that are due and end the runs whose nodes all finished."""
        await self._look_for_workflows()
        # The children first: the next run of a workflow waits on this.
        await self._follow()
        await self._act()
        if claim:
            await self._claim()
            await self._act()

    def _claim_now(
        self,
        seen: tuple[int, int, int, int],
        claimed: tuple[int, int, int, int] | None,
        claimed_at: datetime,
        now: datetime,
    ) -> tuple[bool, datetime | None]:
        """Whether to claim workflow runs now, and if not, when a hint is due.

        At once after its own pulse (a workflow run created in this runtime), after
        a run became claimable in this runtime (other than the children it made
        itself), and once per poll; after a hint that the store changed (any write
        is one), at most every tenth of the poll, so that following a busy workflow
        does not cost a claim per step.
        """
        if claimed is None or seen[0] != claimed[0]:
            return True, None
        if now >= claimed_at + timedelta(seconds=self.poll):
            return True, None
        if seen[1] - claimed[1] > seen[3] - claimed[3]:
            return True, None  # claimable runs that are not its own children
        if seen[2] == claimed[2]:
            return False, None
        due = claimed_at + timedelta(seconds=self.poll / 10)
        return (True, None) if now >= due else (False, due)

    async def _nap(
        self, seen: tuple[int, int, int, int], outcomes: int, until: datetime | None
    ) -> None:
        """Wait for a reason to look again: its own pulse, a run that may be
        claimable, the poll (or *until*), and while it holds workflow runs any run's
        outcome in this runtime (a child's, perhaps). The runs it created since
        *seen* pulsed `claimable` and `changed` once each: not a reason."""
        latest = self.clock.now() + timedelta(seconds=self.poll)
        made = self._made - seen[3]
        pulses = [
            (self.pulse, seen[0]),
            (self.claimable, seen[1] + made),
            (self.store_changed, seen[2]),
        ]
        if self._drives:
            pulses.append((self.changed, outcomes + made))
        await nap(self.clock, latest if until is None else min(until, latest), pulses=pulses)

    async def _heartbeat_loop(self) -> None:
        while True:
            await self.clock.sleep(self.lease / 3)
            for drive in list(self._drives.values()):
                if drive.lost:
                    continue
                try:
                    await self.guard.heartbeat(drive.claim, lease=self.lease)
                except LeaseLost:
                    drive.lost = True
                    self._dirty[drive.run.id] = drive
                    self.pulse.pulse()
                except RunlifeError as exc:
                    self._log.error("heartbeat failed", run_id=drive.run.id, error=str(exc))
            await self._take_cancel_requests()

    async def _take_cancel_requests(self) -> None:
        """Cancel the held workflow runs another process asked to cancel."""
        held = [d.run.id for d in self._drives.values() if not d.lost]
        if not held:
            return
        try:
            requests = await self.guard.cancel_requests(held)
        except RunlifeError as exc:
            self._log.error("reading cancel requests failed", error=str(exc))
            return
        for run_id, request in requests.items():
            self._log.info("cancel requested; cancelling the workflow run", run_id=run_id)
            await self.cancel(run_id, request.message, by=request.by, reason=request.reason)

    async def cancel(self, run_id: str, message: str, *, by: str, reason: str | None) -> Run | None:
        """Cancel workflow run *run_id* if this driver holds it (its CANCELLED move
        and error say *message*), then its live children (for *by*, because of
        *reason*); None if it is not held here."""
        drive = self._drives.get(run_id)
        if drive is None or drive.lost:
            return None
        run = drive.run
        moved = to_cancelled(run, drive.spec.lifecycle, at=self.clock.now(), message=message)
        try:
            stored = await self.guard.update_run(
                moved, expected_version=run.version, claim=drive.claim
            )
        except Conflict:
            drive.lost = True
            await self._lose(drive)
            return None
        self._drop(drive)
        self.changed.pulse()
        await self.cancel_children(run_id, children_reason(run_id, reason), by=by)
        return stored

    # -- holding -------------------------------------------------------------------

    async def _look_for_workflows(self) -> None:
        """Learn the workflows stored by other processes: when it starts, then every
        `_LOOK_EVERY` seconds (listing every job's record is not cheap)."""
        now = self.clock.now()
        if self._looked is not None and now < self._looked + timedelta(seconds=_LOOK_EVERY):
            return
        self._looked = now
        for record in await self.guard.list_jobs():
            if record.name not in self._names and record.spec.get("workflow"):
                await self.book.spec_or_none(record.name)  # a workflow: the book tells
        self._names.update(self.book.workflows)

    async def _claim(self) -> None:
        if len(self._names) < len(self.book.workflows):
            self._names.update(self.book.workflows)  # read by another service meanwhile
        while self._names and len(self._drives) < _MAX_HELD:
            limit = min(_MAX_HELD - len(self._drives), 100)
            lifecycles = self._lifecycles
            if len(lifecycles) != len(self._names):
                for name in self._names:
                    lifecycles[name] = (await self.book.spec(name)).lifecycle
            # A claim that lands is adopted, even when the driver is stopped
            # meanwhile (it then hands the runs back), unless that takes longer
            # than a shutdown's grace: then their leases lapse and a reaper frees them.
            claims: tuple[Claim, ...] = ()
            limit_at = self.clock.now() + timedelta(seconds=max(self.grace, _STOPPING))
            with anyio.CancelScope(shield=True), self.clock.move_on_at(limit_at) as scope:
                claims = await self.guard.claim(
                    self.worker_id, lifecycles, limit=limit, lease=self.lease
                )
                for claim in claims:
                    await self._adopt(claim)
            if scope.cancelled_caught:
                self._log.warning(
                    "claimed workflow runs not adopted in time; their leases will lapse"
                )
                return
            if len(claims) < limit:
                return

    async def _adopt(self, claim: Claim) -> None:
        run = claim.run
        spec = await self.book.spec(run.job)
        workflow = self.workflows.get(run.job) or spec.workflow
        assert workflow is not None
        if self._cursor is None:
            # Follow the events from this claim on: what happened before it is in
            # the children read below.
            self._cursor = await self._head(run.id)
        children: dict[str, Run] = {}
        for child in await self._children(run.id):
            if child.job in workflow and child.job not in children:
                children[child.job] = child
        drive = _Drive(claim, spec, workflow.resolver({n: c.status for n, c in children.items()}))
        self._drives[run.id] = drive
        for node, child in children.items():
            drive.children[node] = child.id
            self._child[child.id] = (drive, node)
        if children:
            self._log.info(
                "resuming a workflow run", run_id=run.id, workflow=run.job, children=len(children)
            )
        start = drive.resolver.initial
        drive.ready.extend(node for node in start.ready if node not in drive.children)
        drive.skipped.extend(skip for skip in start.skipped if skip.node not in drive.children)
        self._dirty[run.id] = drive

    async def _head(self, run_id: str) -> int | None:
        """The seq of the run's latest event."""
        latest = None
        while True:
            events = await self.guard.events(after=latest, run_id=run_id, limit=_EVENTS)
            if events:
                latest = events[-1].seq
            if len(events) < _EVENTS:
                return latest

    async def _children(self, run_id: str) -> list[Run]:
        out: list[Run] = []
        cursor = None
        while True:
            page = await self.guard.list_runs(
                RunQuery(workflow_run_id=run_id, limit=MAX_PAGE, cursor=cursor)
            )
            out.extend(page.runs)
            cursor = page.next_cursor
            if cursor is None:
                # Oldest first: of two runs of one node, the first is its child.
                out.reverse()
                return out

    # -- following -----------------------------------------------------------------

    async def _follow(self) -> None:
        """Complete the children that ended since the last look, from the events."""
        if not self._drives:
            self._cursor = None
            return
        while True:
            events = await self.guard.events(after=self._cursor, limit=_EVENTS)
            for event in events:
                self._cursor = event.seq
                if event.kind != "transition" or not event.status.is_terminal:
                    continue
                hit = self._child.get(event.run_id)
                if hit is not None:
                    self._ended(hit[0], hit[1], event.status)
                    continue
                drive = self._drives.get(event.run_id)
                if drive is not None:
                    # Ended by another writer (cancelled): not this driver's any more.
                    drive.lost = True
                    self._dirty[event.run_id] = drive
            if len(events) < _EVENTS:
                return

    def _ended(self, drive: _Drive, node: str, status: Status) -> None:
        resolver = drive.resolver
        if resolver.status(node) is not None:
            return  # known already (read with the children, or skipped by this driver)
        try:
            step = resolver.complete(node, status)
        except InvalidCompletion as exc:
            self._log.error(
                "a child ended that its workflow did not expect to run",
                run_id=drive.run.id,
                node=node,
                error=str(exc),
            )
            return
        drive.ready.extend(step.ready)
        drive.skipped.extend(step.skipped)
        self._dirty[drive.run.id] = drive

    # -- acting --------------------------------------------------------------------

    async def _act(self) -> None:
        while self._dirty:
            dirty, self._dirty = self._dirty, {}
            for drive in dirty.values():
                if drive.lost:
                    await self._lose(drive)
            live = [d for d in dirty.values() if not d.lost]
            await self._start([d for d in live if d.ready or d.skipped])
            for drive in live:
                if (
                    drive.resolver.finished
                    and not (drive.lost or drive.ready or drive.skipped)
                    and drive.run.id in self._drives
                ):
                    await self._end(drive)

    async def _start(self, drives: list[_Drive]) -> None:
        """Create the children the drives' resolvers decided, all together."""
        todo: list[tuple[_Drive, str, Run, JobSpec]] = []
        now = self.clock.now()
        for drive in drives:
            ready, skipped = drive.ready, drive.skipped
            drive.ready, drive.skipped = [], []
            # Each new child's id is chosen first, so that a skip's reason can name
            # the run of an upstream node skipped in the same step.
            planned = {node: new_id() for node in ready if node not in drive.children}
            planned.update((s.node, new_id()) for s in skipped if s.node not in drive.children)
            for node in ready:
                if node in planned:
                    made = await self._child_run(drive, node, now, None, planned)
                    if made is not None:
                        todo.append((drive, node, *made))
            for skip in skipped:
                if skip.node in planned:
                    made = await self._child_run(drive, skip.node, now, skip, planned)
                    if made is not None:
                        todo.append((drive, skip.node, *made))
        if not todo:
            return
        stored: list[Run | None] = [None] * len(todo)

        async def create(i: int) -> None:
            drive, node, run, spec = todo[i]
            try:
                stored[i] = made = await self._create(run, spec)
                if made.id == run.id:
                    self._made += 1
            except RunlifeError as exc:
                self._log.error(
                    "could not create a node's run", run_id=drive.run.id, node=node, error=str(exc)
                )

        await _each(range(len(todo)), create)
        for (drive, node, _, _), child in zip(todo, stored, strict=True):
            if child is None or drive.run.id not in self._drives:
                continue
            drive.children[node] = child.id
            self._child[child.id] = (drive, node)
            if child.is_terminal:
                # Created, and ended, by another driver of this workflow run (one
                # that lost it), or a skip of this one.
                self._ended(drive, node, child.status)

    async def _child_run(
        self,
        drive: _Drive,
        node: str,
        now: datetime,
        skip: SkippedNode | None,
        planned: Mapping[str, str],
    ) -> tuple[Run, JobSpec] | None:
        """The run of *node*, made as ``submit`` makes one: QUEUED (or due now, for
        a ``queued=False`` job), or SKIPPED for *skip*."""
        spec = await self.book.spec_or_none(node)
        if spec is None:
            return None  # its spec cannot be read here (logged): the node waits
        parent = drive.run
        job = self.book.get(node)
        labels = {**(job.labels if job is not None else {}), **parent.labels}
        params = parent.params.get(node) or {}
        key = f"{parent.id}/{node}"
        if skip is None:
            run: Run = self._new_run(
                node,
                spec,
                None,  # checked when the workflow run was submitted
                now=now,
                params=params,
                labels=labels,
                idempotency_key=key,
                priority=parent.priority,
                trigger=Trigger.UPSTREAM,
                workflow_run_id=parent.id,
                id=planned[node],
            )
            return run, spec
        run = Run.create(
            id=planned[node],
            job=node,
            at=now,
            trigger=Trigger.UPSTREAM,
            params=params,
            labels=labels,
            lifecycle=spec.lifecycle,
            workflow_run_id=parent.id,
            idempotency_key=key,
            priority=parent.priority,
        )
        upstream = drive.children.get(skip.upstream) or planned.get(skip.upstream)
        reason = skip.reason if upstream is None else skip.naming(upstream)
        try:
            moved = spec.lifecycle.transition(run, Status.SKIPPED, at=now, reason=reason)
        except InvalidTransition:
            # A lifecycle without SKIPPED: the node's run is cancelled instead.
            error = ErrorInfo(kind="cancelled", type="Skipped", message=reason)
            try:
                moved = spec.lifecycle.transition(
                    run, Status.CANCELLED, at=now, reason=reason, error=error
                )
            except InvalidTransition:
                self._log.error("a skipped node's lifecycle can neither skip nor cancel", node=node)
                return None
        return attrs.evolve(moved, version=0), spec

    async def _end(self, drive: _Drive) -> None:
        """Write the workflow run's outcome and let it go."""
        outcome = drive.resolver.outcome()
        counts: dict[str, int] = {"nodes": len(drive.workflow)}
        for status in drive.resolver.statuses.values():
            key = status.lower()
            counts[key] = counts.get(key, 0) + 1
        run = attrs.evolve(drive.run, result=counts)
        lifecycle = drive.spec.lifecycle
        now = self.clock.now()
        reason = f"workflow {outcome.reason}"
        if outcome.status is Status.SUCCEEDED:
            moved = lifecycle.transition(run, Status.SUCCEEDED, at=now, reason=reason)
        else:
            failed = outcome.status is Status.FAILED
            nodes = outcome.failed if failed else outcome.cancelled
            named = ", ".join(f"{n} (run {drive.children.get(n, 'none')})" for n in nodes)
            error = (
                ErrorInfo(kind="error", type="WorkflowFailed", message=f"failed: {named}")
                if failed
                else ErrorInfo(kind="cancelled", type="Cancelled", message=f"cancelled: {named}")
            )
            assert outcome.status is not None
            moved = lifecycle.transition(run, outcome.status, at=now, reason=reason, error=error)
        try:
            await self.guard.update_run(moved, expected_version=run.version, claim=drive.claim)
        except Conflict:
            # Cancelled meanwhile (or reaped, when this driver was too slow): the
            # other writer's outcome stands.
            self._log.warning("a workflow run changed under its driver", run_id=run.id)
            drive.lost = True
            await self._lose(drive)
            return
        self._drop(drive)
        self.changed.pulse()

    async def _lose(self, drive: _Drive) -> None:
        """The workflow run is not this driver's any more: let it go, and if it was
        cancelled, cancel its children."""
        if drive.run.id not in self._drives:
            return
        self._drop(drive)
        run = await self.guard.get_run(drive.run.id)
        if run.status is Status.CANCELLED:
            await self.cancel_children(run.id, _cancelled_reason(run), by=self.worker_id)

    def _drop(self, drive: _Drive) -> None:
        self._drives.pop(drive.run.id, None)
        self._dirty.pop(drive.run.id, None)
        for child in drive.children.values():
            self._child.pop(child, None)
        if not self._drives:
            self._cursor = None

    async def cancel_children(self, run_id: str, reason: str, *, by: str) -> int:
        """Cancel the live children of workflow run *run_id* (for *by*, because of
        *reason*); returns how many."""
        tried: set[str] = set()

        async def cancel(child: str) -> None:
            try:
                await self._cancel(child, reason, by=by)
            except RunlifeError as exc:
                self._log.error("could not cancel a node's run", run_id=child, error=str(exc))

        while True:
            page = await self.guard.list_runs(
                RunQuery(workflow_run_id=run_id, status=ACTIVE, limit=MAX_PAGE)
            )
            new = [run.id for run in page.runs if run.id not in tried]
            if not new:
                return len(tried)
            tried.update(new)
            await _each(new, cancel)

    async def _release(self) -> None:
        """Hand the held workflow runs back (QUEUED, for any driver), as a worker
        that stops hands back its attempts: interrupted, no budget spent."""
        drives = [d for d in self._drives.values() if not d.lost]
        if not drives:
            return
        seconds = max(self.grace, _STOPPING)
        with self.clock.move_on_at(self.clock.now() + timedelta(seconds=seconds)):
            for drive in drives:
                run, spec = drive.run, drive.spec
                now = self.clock.now()
                why = "its driver's runtime shut down"
                error = ErrorInfo(kind="interrupted", type="Interrupted", message=why)
                decision = decide_failure(
                    run, error, at=now, retry=spec.retry, timeout=spec.timeout
                )
                moved = apply_decision(decision, run, spec.lifecycle)
                if moved.status is Status.RETRYING:
                    moved = to_queue(moved, spec, at=now, reason=f"requeued: {why}")
                try:
                    await self.guard.update_run(
                        moved, expected_version=run.version, claim=drive.claim
                    )
                except RunlifeError:
                    continue
                self._drop(drive)

    # -- questions -----------------------------------------------------------------

    async def workflow_of(self, name: str) -> Workflow | None:
        """The workflow called *name*, or None if *name* is a job's (`JobNotFound`
        when nobody knows it)."""
        own = self.workflows.get(name)
        if own is not None:
            return own
        return (await self.book.spec(name)).workflow

    async def check_params(
        self, workflow: Workflow, params: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The params of a run of *workflow*: each node's params, by node, checked
        against its job's signature when this runtime has the job, and as JSON.

        Raises:
            InvalidValue: *params* is not a mapping of node to mapping, names a node
                the workflow does not have, or a node's params do not fit its job
                (``field`` is ``"params.<node>.<param>"``).
            JobNotFound: a node's job is known neither here nor in the store.
            NotSerializable: a value is not JSON.
        """
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise InvalidValue(
                "params", params, f"a mapping of each node of workflow {workflow.name!r} "
                "to its params, such as {'load': {'day': '2026-03-10'}}"
            )  # fmt: skip
        out: dict[str, Any] = {}
        for node, given in params.items():
            if not isinstance(node, str) or node not in workflow:
                raise InvalidValue(
                    f"params[{node!r}]",
                    given,
                    f"params keyed by node; workflow {workflow.name!r} has the nodes "
                    f"{', '.join(workflow.nodes)}",
                )
            if given is not None and not isinstance(given, Mapping):
                raise InvalidValue(
                    f"params.{node}", given, f"a mapping of the params of node {node!r}"
                )
        for node in workflow.nodes:
            await self.book.spec(node)  # JobNotFound for a node nobody can run
            given = params.get(node)
            job = self.book.get(node)
            if job is not None:
                try:
                    checked = job.check_params(given)
                except InvalidValue as exc:
                    raise InvalidValue(f"params.{node}.{exc.field.removeprefix('params.')}",
                                       exc.value, exc.expected) from None  # fmt: skip
            else:
                checked = dict(given or {})
                check_json(checked, f"params.{node}")
            if checked:
                out[node] = checked
        return out

    async def graph(self, run: Run) -> RunGraph:
        """The graph of workflow run *run*, with its children's statuses.

        Raises:
            InvalidValue: *run* is not a workflow run.
        """
        workflow = await self.workflow_of(run.job)
        if workflow is None:
            hint = ""
            if run.workflow_run_id is not None:
                hint = f"; it is node {run.job!r} of workflow run {run.workflow_run_id}"
            raise InvalidValue(
                "run_id",
                run.id,
                f"the id of a workflow run; run {run.id} is a run of job {run.job!r}{hint}",
            )
        runs: dict[str, str] = {}
        statuses: dict[str, Status] = {}
        for child in await self._children(run.id):
            if child.job in workflow and child.job not in runs:
                runs[child.job] = child.id
                statuses[child.job] = child.status
        absent = Status.CANCELLED if run.is_terminal else Status.PENDING
        for node in workflow.nodes:
            statuses.setdefault(node, absent)
        return RunGraph(
            workflow=workflow, run_id=run.id, status=run.status, statuses=statuses, runs=runs
        )


async def _each(items: Iterable[T], fn: Callable[[T], Awaitable[None]]) -> None:
    """``fn(item)`` for each item, a few at a time (the SQL stores write what a few
    tasks write at once in one transaction)."""
    pending = list(items)
    if len(pending) == 1:
        await fn(pending[0])
        return
    feed = iter(pending)

    async def work() -> None:
        for item in feed:
            await fn(item)

    async with anyio.create_task_group() as tg:
        for _ in range(min(_CREATING, len(pending))):
            tg.start_soon(work)


def children_reason(run_id: str, reason: str | None) -> str:
    """Why the children of a cancelled workflow run are cancelled."""
    return f"workflow run {run_id} cancelled" + ("" if reason is None else f": {reason}")


def _cancelled_reason(run: Run) -> str:
    why = run.error.message if run.error is not None and run.error.message else "cancelled"
    return children_reason(run.id, why)
