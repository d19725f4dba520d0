"""Procedures: phases of steps over targets, a rollback on standby, cancel and resume.

The operators' case: deploying VLAN 100 on the access switches of DC1, a pre-check,
a change and a post-check on each switch, and a rollback that undoes the change on
every switch it reached when one of them refuses it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest

import runlife
from runlife import AsyncRuntime, Item, Phase, Procedure, ProcedureFailed, RunContext, Status
from runlife.exceptions import InvalidValue
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

from .conftest import at

pytestmark = pytest.mark.anyio

S = Status
SWITCHES = ["dsw-01", "dsw-02", "dsw-03", "dsw-04"]


class Lab:
    """Switches in virtual time: each step takes its seconds, and records who ran it."""

    def __init__(self, clock: VirtualClock, *, refuse: str | None = None) -> None:
        self.clock = clock
        self.refuse = refuse  # the switch that refuses the change
        self.undo_fails: set[str] = set()
        self.calls: list[str] = []
        self.running = 0
        self.most = 0

    def step(self, name: str, seconds: float, output: Any = None) -> Any:
        async def run(target: str) -> Any:
            self.calls.append(f"{target}/{name}")
            self.running += 1
            self.most = max(self.most, self.running)
            try:
                await self.clock.sleep(seconds)
            finally:
                self.running -= 1
            if name == "vlan 100" and target == self.refuse:
                raise ConnectionError("% VLAN 100 conflicts with an existing VLAN")
            if name == "revert" and target in self.undo_fails:
                raise TimeoutError("no answer")
            return output

        return run

    def procedure(self, *, parallel: int = 1) -> Procedure:
        return Procedure(
            [
                Phase(
                    "pre-check",
                    {
                        "show vlan": self.step("show vlan", 1.2, {"vlans": 12}),
                        "show trunk": self.step("show trunk", 1.8),
                    },
                ),
                Phase(
                    "change",
                    {"vlan 100": self.step("vlan 100", 2.1), "ports": self.step("ports", 3)},
                    parallel=parallel,
                ),
                Phase("post-check", {"verify": self.step("verify", 1)}),
            ],
            rollback=Phase("rollback", {"revert": self.step("revert", 2)}),
        )


def deploy_job(procedure: Procedure) -> runlife.Job:
    @runlife.job
    async def deploy_vlan(ctx: RunContext, targets: list[str]) -> dict[str, Any]:
        return await procedure.run(ctx, targets)

    return deploy_vlan


def statuses(items: tuple[Item, ...]) -> list[tuple[str, Status]]:
    return [(i.key, i.status) for i in items]


async def test_all_phases_pass(clock: VirtualClock, store: MemoryStore) -> None:
    """Every step of every phase is an item of its phase, with its output and
    duration; the targets go one after the other; the rollback stays on standby."""
    lab = Lab(clock)
    procedure = lab.procedure()
    job = deploy_job(procedure)
    async with AsyncRuntime(jobs=[job], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(job, {"targets": SWITCHES[:2]})).id)
        items = await rt.items(run.id)
        rollback = await rt.items(run.id, phase="rollback")

    assert run.status is S.SUCCEEDED
    assert run.result == {item.key: item.output for item in items}
    assert run.result["dsw-01/show vlan"] == {"vlans": 12}
    assert [(i.phase, i.key, i.duration.total_seconds()) for i in items if i.duration] == [
        ("pre-check", "dsw-01/show vlan", 1.2),
        ("pre-check", "dsw-01/show trunk", 1.8),
        ("pre-check", "dsw-02/show vlan", 1.2),
        ("pre-check", "dsw-02/show trunk", 1.8),
        ("change", "dsw-01/vlan 100", 2.1),
        ("change", "dsw-01/ports", 3),
        ("change", "dsw-02/vlan 100", 2.1),
        ("change", "dsw-02/ports", 3),
        ("post-check", "dsw-01/verify", 1),
        ("post-check", "dsw-02/verify", 1),
    ]
    assert {i.status for i in items} == {S.SUCCEEDED}
    assert rollback == ()
    assert run.progress.done == run.progress.total == 10
    assert procedure.keys(SWITCHES[:1]) == {
        "pre-check": ("dsw-01/show vlan", "dsw-01/show trunk"),
        "change": ("dsw-01/vlan 100", "dsw-01/ports"),
        "post-check": ("dsw-01/verify",),
        "rollback": ("dsw-01/revert",),
    }


async def test_all_items_are_declared_pending_up_front(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """Before its first step ends, the run's progress counts every step of every
    phase, and the rollback's none."""
    lab = Lab(clock)
    job = deploy_job(lab.procedure())
    async with AsyncRuntime(jobs=[job], store=store, clock=clock) as rt:
        run = await rt.submit(job, {"targets": SWITCHES})
        await clock.sleep(0.5)
        early = (await rt.get_run(run.id)).progress
        await rt.wait(run.id)

    assert (early.total, early.running, early.pending) == (20, 1, 19)


async def test_a_failed_change_rolls_back_the_targets_it_reached(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """dsw-03 refuses VLAN 100: its next step and dsw-04's change are not run, the
    post-check is not run, the rollback undoes dsw-01, dsw-02 and dsw-03 (in that
    order, under phase "rollback"), and the run ends FAILED saying so."""
    lab = Lab(clock, refuse="dsw-03")
    job = deploy_job(lab.procedure())
    async with AsyncRuntime(jobs=[job], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(job, {"targets": SWITCHES})).id)
        change = await rt.items(run.id, phase="change")
        post = await rt.items(run.id, phase="post-check")
        rollback = await rt.items(run.id, phase="rollback")

    assert run.status is S.FAILED
    assert run.error is not None
    assert (run.error.type, run.error.message) == (
        "ProcedureFailed",
        "change failed on dsw-03 (dsw-03/vlan 100: % VLAN 100 conflicts with an existing"
        " VLAN); rolled back",
    )
    assert run.attempt == 1
    assert statuses(change) == [
        ("dsw-01/vlan 100", S.SUCCEEDED),
        ("dsw-01/ports", S.SUCCEEDED),
        ("dsw-02/vlan 100", S.SUCCEEDED),
        ("dsw-02/ports", S.SUCCEEDED),
        ("dsw-03/vlan 100", S.FAILED),
        ("dsw-03/ports", S.SKIPPED),
        ("dsw-04/vlan 100", S.SKIPPED),
        ("dsw-04/ports", S.SKIPPED),
    ]
    assert change[5].reason == "not run: dsw-03/vlan 100 failed"
    assert change[6].reason == "not run: change failed"
    assert {i.status for i in post} == {S.SKIPPED}
    assert post[0].reason == "not run: change failed"
    assert statuses(rollback) == [
        ("dsw-01/revert", S.SUCCEEDED),
        ("dsw-02/revert", S.SUCCEEDED),
        ("dsw-03/revert", S.SUCCEEDED),
    ]
    # The rollback starts once the change is over: 4 x 3 s of pre-check, then
    # 2 x 5.1 s of change and dsw-03's 2.1 s.
    assert [i.started_at for i in rollback] == [at(24.3), at(26.3), at(28.3)]
    assert [c for c in lab.calls if c.startswith("dsw-04")] == [
        "dsw-04/show vlan",
        "dsw-04/show trunk",
    ]
    counts = Counter(i.status for i in await _items(store, run.id))
    assert counts == Counter({S.SUCCEEDED: 15, S.FAILED: 1, S.SKIPPED: 7})


async def _items(store: MemoryStore, run_id: str) -> tuple[Item, ...]:
    return await store.items(run_id)


async def test_a_rollback_that_fails_says_where(clock: VirtualClock, store: MemoryStore) -> None:
    """The rollback goes on over every target it has; the run's message names the
    targets it could not undo."""
    lab = Lab(clock, refuse="dsw-02")
    lab.undo_fails.add("dsw-01")
    job = deploy_job(lab.procedure())
    async with AsyncRuntime(jobs=[job], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(job, {"targets": SWITCHES})).id)
        rollback = await rt.items(run.id, phase="rollback")

    assert run.error is not None
    assert run.error.message.endswith("; rollback failed on dsw-01")
    assert statuses(rollback) == [("dsw-01/revert", S.FAILED), ("dsw-02/revert", S.SUCCEEDED)]


async def test_a_failed_post_check_rolls_back_every_changed_target_once(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """A failure after the change (in a phase after ``rollback_from``) undoes the
    change on every target it reached, each once."""
    lab = Lab(clock)

    async def verify(target: str) -> None:
        if target == "dsw-02":
            raise AssertionError("VLAN 100 not active on Gi1/0/1")

    procedure = Procedure(
        [Phase("change", lab.step("vlan 100", 2)), Phase("post-check", verify)],
        rollback=Phase("rollback", lab.step("revert", 1)),
    )
    job = deploy_job(procedure)
    async with AsyncRuntime(jobs=[job], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(job, {"targets": SWITCHES[:3]})).id)
        rollback = await rt.items(run.id, phase="rollback")

    assert run.error is not None
    assert run.error.message == (
        "post-check failed on dsw-02 (dsw-02/post-check: VLAN 100 not active on Gi1/0/1);"
        " rolled back"
    )
    assert [i.key for i in rollback] == ["dsw-01/rollback", "dsw-02/rollback", "dsw-03/rollback"]


async def test_a_failed_pre_check_changes_nothing(clock: VirtualClock, store: MemoryStore) -> None:
    """A failure before the change stops the procedure with nothing to roll back."""
    lab = Lab(clock)

    async def unreachable(target: str) -> None:
        if target == "dsw-02":
            raise TimeoutError("Connection timed out after 30s - no route to host")
        if target == "dsw-03":
            raise TimeoutError

    procedure = Procedure(
        [Phase("pre-check", unreachable), Phase("change", lab.step("vlan 100", 2))],
        rollback=Phase("rollback", lab.step("revert", 1)),
    )
    job = deploy_job(procedure)
    async with AsyncRuntime(jobs=[job], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(job, {"targets": SWITCHES[:3]})).id)
        items = await rt.items(run.id)
        run3 = await rt.wait((await rt.submit(job, {"targets": ["dsw-03"]})).id)

    assert run3.error is not None
    assert run3.error.message == "pre-check failed on dsw-03 (dsw-03/pre-check: TimeoutError)"
    assert run.error is not None
    assert run.error.message == (
        "pre-check failed on dsw-02 (dsw-02/pre-check: Connection timed out after 30s"
        " - no route to host)"
    )
    assert statuses(items) == [
        ("dsw-01/pre-check", S.SUCCEEDED),
        ("dsw-02/pre-check", S.FAILED),
        ("dsw-03/pre-check", S.SKIPPED),
        ("dsw-01/change", S.SKIPPED),
        ("dsw-02/change", S.SKIPPED),
        ("dsw-03/change", S.SKIPPED),
    ]
    assert lab.calls == []


async def test_a_parallel_phase_honours_its_limit(clock: VirtualClock, store: MemoryStore) -> None:
    """parallel=2: at most two switches take the change at once, in waves."""
    lab = Lab(clock)
    procedure = Procedure([Phase("change", lab.step("push", 10), parallel=2)])
    job = deploy_job(procedure)
    targets = [f"acc-sw-{n:02d}" for n in range(1, 6)]
    async with AsyncRuntime(jobs=[job], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(job, {"targets": targets})).id)
        change = await rt.items(run.id, phase="change")

    assert run.status is S.SUCCEEDED
    assert lab.most == 2
    assert [i.started_at for i in change] == [at(0), at(0), at(10), at(10), at(20)]
    assert run.ended_at == at(30)


async def test_a_failure_in_a_parallel_phase_lets_the_steps_in_flight_finish(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """The switch in flight beside the failing one finishes its change; no new one
    starts; both are rolled back."""
    lab = Lab(clock, refuse="dsw-02")
    procedure = Procedure(
        [
            Phase(
                "change",
                {"vlan 100": lab.step("vlan 100", 2), "ports": lab.step("ports", 3)},
                parallel=2,
            )
        ],
        rollback=Phase("rollback", lab.step("revert", 1), parallel=2),
    )
    job = deploy_job(procedure)
    async with AsyncRuntime(jobs=[job], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(job, {"targets": SWITCHES})).id)
        change = await rt.items(run.id, phase="change")
        rollback = await rt.items(run.id, phase="rollback")

    assert statuses(change) == [
        ("dsw-01/vlan 100", S.SUCCEEDED),
        ("dsw-01/ports", S.SUCCEEDED),
        ("dsw-02/vlan 100", S.FAILED),
        ("dsw-02/ports", S.SKIPPED),
        ("dsw-03/vlan 100", S.SKIPPED),
        ("dsw-03/ports", S.SKIPPED),
        ("dsw-04/vlan 100", S.SKIPPED),
        ("dsw-04/ports", S.SKIPPED),
    ]
    assert sorted((i.key, i.started_at) for i in rollback) == [
        ("dsw-01/rollback", at(5)),
        ("dsw-02/rollback", at(5)),
    ]


async def test_cancelling_stops_at_the_current_step_without_rollback(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """An operator's cancel during dsw-02's change: that step is CANCELLED, the ones
    after it stay PENDING, and nothing is rolled back."""
    lab = Lab(clock)
    pushing = anyio.Event()

    async def push(target: str) -> None:
        if target == "dsw-02":
            pushing.set()
            await anyio.sleep_forever()
        await clock.sleep(2)

    procedure = Procedure(
        [Phase("pre-check", lab.step("show vlan", 1)), Phase("change", push)],
        rollback=Phase("rollback", lab.step("revert", 1)),
    )
    job = deploy_job(procedure)
    async with AsyncRuntime(jobs=[job], store=store, clock=clock) as rt:
        run = await rt.submit(job, {"targets": SWITCHES[:3]})
        await pushing.wait()
        run = await rt.cancel(run.id, "operator stopped the MOP")
        change = await rt.items(run.id, phase="change")
        rollback = await rt.items(run.id, phase="rollback")

    assert run.status is S.CANCELLED
    assert statuses(change) == [
        ("dsw-01/change", S.SUCCEEDED),
        ("dsw-02/change", S.CANCELLED),
        ("dsw-03/change", S.PENDING),
    ]
    assert rollback == ()
    assert "dsw-01/revert" not in lab.calls


async def test_a_resumed_procedure_does_only_the_steps_left(
    clock: VirtualClock, store: MemoryStore
) -> None:
    """Resuming a cancelled procedure skips the steps that succeeded and does the
    rest."""
    lab = Lab(clock)
    hang = {"dsw-02"}
    pushing = anyio.Event()

    async def push(target: str) -> str:
        if target in hang:
            pushing.set()
            await anyio.sleep_forever()
        return f"pushed {target}"

    job = deploy_job(
        Procedure([Phase("pre-check", lab.step("show vlan", 1)), Phase("change", push)])
    )
    async with AsyncRuntime(jobs=[job], store=store, clock=clock) as rt:
        first = await rt.submit(job, {"targets": SWITCHES[:3]})
        await pushing.wait()
        await rt.cancel(first.id, "maintenance window over")
        hang.clear()
        resumed = await rt.wait((await rt.resume(first.id)).id)
        items = await rt.items(resumed.id)

    assert resumed.status is S.SUCCEEDED
    assert statuses(items) == [
        ("dsw-01/pre-check", S.SKIPPED),
        ("dsw-02/pre-check", S.SKIPPED),
        ("dsw-03/pre-check", S.SKIPPED),
        ("dsw-01/change", S.SKIPPED),
        ("dsw-02/change", S.SUCCEEDED),
        ("dsw-03/change", S.SUCCEEDED),
    ]
    assert resumed.result["dsw-01/change"] == "pushed dsw-01"
    assert lab.calls == ["dsw-01/show vlan", "dsw-02/show vlan", "dsw-03/show vlan"]


async def test_a_step_output_that_is_not_json_fails_the_step(
    clock: VirtualClock, store: MemoryStore
) -> None:
    async def push(target: str) -> object:
        return object()

    job = deploy_job(Procedure([Phase("change", push)]))
    async with AsyncRuntime(jobs=[job], store=store, clock=clock) as rt:
        run = await rt.wait((await rt.submit(job, {"targets": ["dsw-01"]})).id)
        (item,) = await rt.items(run.id)

    assert (item.status, item.error.type if item.error else None) == (S.FAILED, "NotSerializable")
    assert run.status is S.FAILED


async def noop(target: str) -> None:
    return None


@pytest.mark.parametrize(
    ("make", "field", "value"),
    [
        (lambda: Phase("", noop), "name", ""),
        (lambda: Phase("change", noop, parallel=0), "parallel", 0),
        (lambda: Phase("change", {}), "steps", {}),
        (lambda: Phase("change", {"push": 3}), "steps['push']", 3),
        (lambda: Procedure([]), "phases", ()),
        (lambda: Procedure([Phase("a", noop), Phase("a", noop)]), "phases", "a"),
        (
            lambda: Procedure([Phase("push", noop)], rollback=Phase("undo", noop)),
            "rollback_from",
            "change",
        ),
        (lambda: Procedure([Phase("change", noop)]).keys(["a", "a"]), "targets[1]", "a"),
        (lambda: Procedure([Phase("change", noop)]).keys("dsw-01"), "targets", "dsw-01"),
    ],
)
def test_invalid_procedures_are_refused_naming_the_field(make: Any, field: str, value: Any) -> None:
    with pytest.raises(InvalidValue) as caught:
        make()
    assert (caught.value.field, caught.value.value) == (field, value)


def test_procedure_failed_is_a_runlife_error() -> None:
    error = ProcedureFailed(
        "change failed on dsw-03",
        phase="change",
        targets=("dsw-03",),
        rolled_back=(),
        rollback_failed=(),
    )
    assert isinstance(error, runlife.RunlifeError)
    assert (error.phase, error.targets) == ("change", ("dsw-03",))
