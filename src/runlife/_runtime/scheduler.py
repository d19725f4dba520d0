"""The scheduler: fires each job's `Cron` or `Every` schedule, once per slot.

For each of its runtime's scheduled jobs it reads the job's record and asks the
schedule which fire times are due (`Schedule.due`, which applies ``catch_up``
and ``grace``) since the record's ``last_scheduled_for``: the latest slot fired
by any process, or, for a schedule that never fired, the moment a runtime first
saved the job. Each due slot becomes a run with trigger SCHEDULED and
``scheduled_for`` set to the slot. The store creates one run per
``(job, scheduled_for)``, so any number of runtimes fire each slot once.

A paused job (``rt.pause(job)``) fires nothing; its slots pass. When it is
unpaused, its ``catch_up`` policy decides about the slots it missed, as after
an outage: ``"latest"`` fires the latest once, ``"all"`` each, ``"none"`` none.
A run's outcome never touches the schedule.

It sleeps on the clock until the earliest next fire time, waking at least every
``poll`` seconds to see pauses and fires made elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import structlog

from runlife._core.immediate import is_immediate
from runlife._core.run import Run
from runlife._core.status import Trigger
from runlife._runtime.guard import StoreGuard
from runlife._runtime.job import Job
from runlife._runtime.jobs import to_queue
from runlife._runtime.wake import Pulse, nap
from runlife._runtime.worker import Worker
from runlife.abc import Clock
from runlife.exceptions import Conflict, JobNotFound, RunlifeError

__all__ = ("Scheduler",)


class Scheduler:
    """Fires schedules (see the module docstring).

    Args:
        guard: the store.
        clock: the runtime's clock.
        jobs: the runtime's jobs; those with a schedule are fired.
        worker: told when a fired run is claimable, and given the fired runs of
            ``queued=False`` jobs.
        lease: the lease of such a claim.
        poll: the longest wait, in clock seconds, between two looks at the records.
        since: where a schedule without a stored fire starts from (now, unless given).
        changed: pulsed after each fired run.

    >>> import anyio, runlife
    >>> from datetime import datetime, UTC
    >>> from runlife.stores import MemoryStore
    >>> from runlife.testing import VirtualClock
    >>> @runlife.job(schedule=runlife.Cron("*/5 * * * *"))
    ... async def sample(ctx):
    ...     return None
    >>> clock = VirtualClock(start=datetime(2026, 3, 10, 2, 3, tzinfo=UTC))
    >>> store = MemoryStore(clock=clock)
    >>> guard = StoreGuard(store, clock)
    >>> jobs = {"sample": sample}
    >>> scheduler = Scheduler(guard=guard, clock=clock, jobs=jobs,
    ...                       worker=Worker(guard=guard, clock=clock, jobs=jobs, worker_id="w1"))
    >>> async def main():
    ...     await store.save_job(sample.to_record())
    ...     clock.advance(180)  # 02:06
    ...     nxt = await scheduler.tick()
    ...     page = await store.list_runs(runlife.RunQuery(job="sample"))
    ...     return [f"{r.scheduled_for:%H:%M}" for r in page.runs], f"{nxt:%H:%M}"
    >>> anyio.run(main)
    (['02:05'], '02:10')
    """

    def __init__(
        self,
        *,
        guard: StoreGuard,
        clock: Clock,
        jobs: Mapping[str, Job],
        worker: Worker,
        lease: float = 30,
        poll: float = 5,
        since: datetime | None = None,
        changed: Pulse | None = None,
    ) -> None:
        self.guard = guard
        self.clock = clock
        self.jobs = {name: job for name, job in jobs.items() if job.spec.schedule is not None}
        self.worker = worker
        self.lease = lease
        self.poll = poll
        self.since = since if since is not None else clock.now()
        self.changed = changed or Pulse()
        self.pulse = Pulse()
        """Pulse it when a job's record changed here (paused or unpaused)."""
        self._log = structlog.get_logger("runlife.scheduler")
        self._early = is_immediate()

    async def serve(self) -> None:
        """Fire schedules until cancelled."""
        if not self.jobs:
            return
        while True:
            seen = self.pulse.count
            until = self.clock.now() + timedelta(seconds=self.poll)
            try:
                nxt = await self.tick()
            except RunlifeError as exc:
                self._log.error("firing schedules failed", error=str(exc))
                nxt = None
            if nxt is not None and nxt < until:
                until = nxt
            await nap(self.clock, until, pulses=[(self.pulse, seen)])

    async def tick(self) -> datetime | None:
        """Fire every due slot now; returns the earliest next fire time of the
        jobs that are not paused (None if all are)."""
        earliest: datetime | None = None
        for name, job in self.jobs.items():
            schedule = job.spec.schedule
            assert schedule is not None
            try:
                record = await self.guard.get_job(name)
            except JobNotFound:
                continue  # purged while running: saved again when a runtime starts
            if record.paused:
                continue
            now = self.clock.now()
            last = record.last_scheduled_for or self.since
            if self._early:  # runlife.testing.immediate(): the next slot, now
                early = schedule.next_after(last)
                if early > now:
                    await self._fire(job, early, now)
                    last = early
            for fire in schedule.due(last, now):
                await self._fire(job, fire, now)
                last = max(last, fire)
            nxt = schedule.next_after(max(last, now))
            if earliest is None or nxt < earliest:
                earliest = nxt
        self._early = False
        return earliest

    async def _fire(self, job: Job, fire: datetime, now: datetime) -> None:
        spec = job.spec
        run = Run.create(
            job=job.name,
            at=now,
            trigger=Trigger.SCHEDULED,
            scheduled_for=fire,
            labels=job.labels,
            lifecycle=spec.lifecycle,
        )
        if spec.queued:
            run = to_queue(
                run, spec, at=now, reason=f"fired by its schedule for {fire.isoformat()}", new=True
            )
        stored = await self.guard.create_run(run)
        if stored.id != run.id:
            return  # another runtime fired this slot
        if not spec.queued:
            try:
                claim = await self.guard.claim_run(
                    stored.id, self.worker.worker_id, spec.lifecycle, lease=self.lease
                )
            except Conflict:
                pass  # the mover (its start time is due) claimed it first
            else:
                self.worker.adopt(claim)
        else:
            self.worker.claimable.pulse()
        self.changed.pulse()
