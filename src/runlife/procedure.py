"""Procedures: ordered phases of steps over targets, with a rollback on standby.

A method of procedure (MOP) such as "Deploy VLAN 100 - DC1 Access Switches" is a
pre-check, a change and a post-check, each a few steps run on every target, and a
rollback kept on standby for when the change goes wrong. `Procedure` runs one
inside a job: every step on every target is an item of the run (key
``"<target>/<step>"``, its phase the phase's name), so progress, per-phase counts
(``rt.items(run_id, phase="change")``), outputs, durations and resume work as for
any items (see ``docs/items.md``).

* **Order.** The phases run one after the other. In a phase, each target does the
  phase's steps in order; the targets go one at a time (``parallel=1``, the
  default: sequential) or at most ``parallel`` at once.
* **A failed step.** The target's later steps are not run, no new target starts in
  that phase (those in flight finish their steps) and no later phase runs. Every
  step not run is recorded SKIPPED, its reason naming the failure.
* **Rollback.** When the failure is in the ``rollback_from`` phase (``"change"``
  by default) or a later one, the rollback phase runs on every target that phase
  (or a later one) reached, failed ones included, in the order they were
  reached; its steps are items of phase ``"rollback"`` (its name). Until then it
  is on *standby*: its items are not declared, so a run that needed no rollback
  has none and its progress is complete; `Procedure.keys` lists them.
* **Outcome.** All steps passed: `Procedure.run` returns the outputs by key. A
  failure raises `ProcedureFailed` once the rollback is over, so the run ends
  FAILED with a message such as ``"change failed on dsw-03 (dsw-03/push: port
  busy); rolled back"`` (``"...; rollback failed on dsw-03"`` when undoing did not
  work everywhere). A job with a `Retry` policy retries it unless told not to
  (``give_up_on=(ProcedureFailed,)``).
* **Cancelling** stops at the current step: it is recorded CANCELLED, the steps
  after it stay PENDING and nothing is rolled back by itself, as operators
  expect: commands already sent stay sent; run the rollback yourself if needed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import anyio
import attrs

from runlife._core.values import check_json, check_names, check_text
from runlife._runtime.context import RunContext
from runlife.exceptions import InvalidValue, RunlifeError

__all__ = ("Phase", "Procedure", "ProcedureFailed", "Step")

Step = Callable[[str], Awaitable[Any]]
"""A step: an async function of the target that returns the step's output (JSON)."""

_LIMIT: Final = 3  # failed targets named by a message


def _check_steps(value: Any, phase: str) -> tuple[tuple[str, Step], ...]:
    if callable(value):
        return ((phase, value),)  # one step, named as its phase
    if not isinstance(value, Mapping) or not value:
        raise InvalidValue(
            "steps",
            value,
            "an async function, or a non-empty dict of step names to async functions",
        )
    steps: list[tuple[str, Step]] = []
    for name, fn in value.items():
        check_text("steps key", name, empty=False)
        if not callable(fn):
            raise InvalidValue(f"steps[{name!r}]", fn, "an async function of the target")
        steps.append((name, fn))
    return tuple(steps)


def _check_parallel(_: Any, attribute: Any, value: Any) -> None:
    if value.__class__ is not int or value < 1:
        raise InvalidValue("parallel", value, "an int of at least 1 (1: sequential)")


@attrs.frozen(init=False)
class Phase:
    """One phase of a `Procedure`: its steps, run on each target, in order.

    Args:
        name: the phase's name, and the phase of its items (``"pre-check"``).
        steps: an async function of the target (one step, named as the phase), or a
            dict of step names to such functions, run in its order.
        parallel: how many targets at once (1, the default: one after the other).

    Raises:
        InvalidValue: a name is empty or not text, a step is not callable, or
            *parallel* is not a positive int.

    >>> async def show_vlan(target): return {"vlans": 12}
    >>> Phase("pre-check", {"show vlan brief": show_vlan}, parallel=2).step_names
    ('show vlan brief',)
    >>> Phase("change", show_vlan).step_names
    ('change',)
    """

    name: str
    steps: tuple[tuple[str, Step], ...]
    parallel: int = attrs.field(validator=_check_parallel)

    def __init__(self, name: str, steps: Step | Mapping[str, Step], *, parallel: int = 1) -> None:
        check_text("name", name, empty=False)
        self.__attrs_init__(name, _check_steps(steps, name), parallel)

    @property
    def step_names(self) -> tuple[str, ...]:
        """The names of the phase's steps, in order."""
        return tuple(name for name, _ in self.steps)

    def keys(self, targets: Iterable[str]) -> tuple[str, ...]:
        """The item keys of this phase over *targets*: ``"<target>/<step>"``."""
        return tuple(f"{t}/{s}" for t in targets for s in self.step_names)


class ProcedureFailed(RunlifeError):
    """A step of a `Procedure` failed; raised by `Procedure.run` after any rollback.

    Attributes:
        phase: the phase that failed.
        targets: the targets it failed on, in order.
        rolled_back: the targets the rollback phase ran on (empty: no rollback).
        rollback_failed: the targets whose rollback failed.
    """

    def __init__(
        self,
        message: str,
        *,
        phase: str,
        targets: tuple[str, ...],
        rolled_back: tuple[str, ...],
        rollback_failed: tuple[str, ...],
    ) -> None:
        super().__init__(message)
        self.phase = phase
        self.targets = targets
        self.rolled_back = rolled_back
        self.rollback_failed = rollback_failed


@attrs.define
class _Failure:
    phase: str
    targets: list[str] = attrs.Factory(list)
    first: str = ""  # "<key>: <error>" of the first failed step


def _phases(phases: Iterable[Phase]) -> tuple[Phase, ...]:
    return tuple(phases)


@attrs.frozen
class Procedure:
    """Ordered phases of steps over targets, with a rollback on standby (see the module).

    Args:
        phases: the phases, in order (distinct names).
        rollback: the phase that undoes the change, run when a step fails in the
            *rollback_from* phase or a later one; None: no rollback.
        rollback_from: the first phase whose failure calls for the rollback.

    Raises:
        InvalidValue: no phases, a name given twice, or *rollback_from* naming no phase.

    >>> import anyio, runlife
    >>> from runlife import Phase, Procedure
    >>> async def check(target): return {"ok": True}
    >>> async def push(target):
    ...     if target == "dsw-03":
    ...         raise ConnectionError("port busy")
    >>> async def undo(target): return None
    >>> mop = Procedure([Phase("pre-check", check), Phase("change", push)],
    ...                 rollback=Phase("rollback", undo))
    >>> @runlife.job
    ... async def deploy(ctx, targets):
    ...     return await mop.run(ctx, targets)
    >>> async def main():
    ...     async with runlife.AsyncRuntime(jobs=[deploy], store="memory://") as rt:
    ...         run = await rt.wait((await rt.submit(deploy, {"targets": ["dsw-01", "dsw-03"]})).id)
    ...         return run, await rt.items(run.id, phase="rollback")
    >>> run, undone = anyio.run(main)
    >>> run.status.value, run.error.message
    ('FAILED', 'change failed on dsw-03 (dsw-03/change: port busy); rolled back')
    >>> [i.key for i in undone]
    ['dsw-01/rollback', 'dsw-03/rollback']
    """

    phases: tuple[Phase, ...] = attrs.field(converter=_phases)
    rollback: Phase | None = None
    rollback_from: str = "change"

    def __attrs_post_init__(self) -> None:
        if not self.phases or not all(isinstance(p, Phase) for p in self.phases):
            raise InvalidValue("phases", self.phases, "a non-empty list of Phase")
        names = [p.name for p in self.phases]
        if self.rollback is not None:
            if not isinstance(self.rollback, Phase):
                raise InvalidValue("rollback", self.rollback, "a Phase, or None")
            names.append(self.rollback.name)
            if self.rollback_from not in names[:-1]:
                raise InvalidValue("rollback_from", self.rollback_from, f"one of {names[:-1]}")
        for index, name in enumerate(names):
            if name in names[:index]:
                raise InvalidValue("phases", name, "phases of distinct names")

    def keys(self, targets: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The item keys of each phase over *targets*, by phase name, the rollback's
        (on standby until a failure calls for it) last."""
        listed = _check_targets(targets)
        phases = (*self.phases, *(() if self.rollback is None else (self.rollback,)))
        return {p.name: p.keys(listed) for p in phases}

    async def run(self, ctx: RunContext, targets: Iterable[str]) -> dict[str, Any]:
        """Run the procedure on *targets* inside an async job; the outputs by item key.

        Declares every step of its phases PENDING up front (the rollback's stay on
        standby), then runs them as the module says.

        Raises:
            ProcedureFailed: a step failed (after the rollback, if one ran).
            InvalidValue: a target is empty, not text or given twice.
        """
        listed = _check_targets(targets)
        for phase in self.phases:
            await ctx.items(phase.keys(listed), phase=phase.name)
        outputs: dict[str, Any] = {}
        reached: list[str] = []
        changing = False  # whether the phases so far change the targets
        failure: _Failure | None = None
        for phase in self.phases:
            changing = changing or phase.name == self.rollback_from
            if failure is not None:
                await _skip(ctx, phase, listed, f"not run: {failure.phase} failed")
                continue
            failure = await _run_phase(ctx, phase, listed, outputs, reached if changing else None)
        if failure is None:
            return outputs
        message = f"{failure.phase} failed on {_named(failure.targets)} ({failure.first})"
        undo = self.rollback
        rolled: tuple[str, ...] = ()
        bad: tuple[str, ...] = ()
        if undo is not None and reached:  # the failure is in a phase that changes
            rolled = tuple(reached)
            undone = await _run_phase(ctx, undo, rolled, outputs, None, go_on=True)
            bad = tuple(undone.targets) if undone is not None else ()
            message += f"; rollback failed on {_named(list(bad))}" if bad else "; rolled back"
        raise ProcedureFailed(
            message,
            phase=failure.phase,
            targets=tuple(failure.targets),
            rolled_back=rolled,
            rollback_failed=bad,
        )


async def _run_phase(
    ctx: RunContext,
    phase: Phase,
    targets: Sequence[str],
    outputs: dict[str, Any],
    reached: list[str] | None,
    *,
    go_on: bool = False,
) -> _Failure | None:
    """Run *phase* on *targets*; its failure, if any. Targets are appended to
    *reached* as they start. Unless *go_on*, a failure starts no new target."""
    failure = _Failure(phase.name)
    slots = anyio.Semaphore(phase.parallel)

    async def on(target: str) -> None:
        try:
            for index, (step, fn) in enumerate(phase.steps):
                key = f"{target}/{step}"
                error: Exception | None = None
                async with ctx.item(key, phase=phase.name) as item:
                    if item.skipped:
                        outputs[key] = item.output
                        continue
                    try:
                        output = await fn(target)
                        if output is not None:  # not JSON: the step failed
                            check_json(output, f"item {key!r} output")
                        item.output = output
                    except Exception as exc:
                        error = exc
                        raise
                if error is not None:
                    if not failure.targets:
                        failure.first = f"{key}: {str(error) or type(error).__name__}"
                    failure.targets.append(target)
                    rest = phase.steps[index + 1 :]
                    await _skip_steps(ctx, phase.name, target, rest, f"not run: {key} failed")
                    return
                outputs[key] = item.output
        finally:
            slots.release()

    # The targets start in their order (a slot each), whatever the event loop's
    # scheduling order; after a failure, unless *go_on*, the rest are not run.
    async with anyio.create_task_group() as tg:
        for index, target in enumerate(targets):
            await slots.acquire()
            if failure.targets and not go_on:
                slots.release()
                await _skip(ctx, phase, targets[index:], f"not run: {phase.name} failed")
                break
            if reached is not None and target not in reached:
                reached.append(target)
            tg.start_soon(on, target)
    if not failure.targets:
        return None
    order = {target: index for index, target in enumerate(targets)}
    failure.targets.sort(key=order.__getitem__)
    return failure


async def _skip(ctx: RunContext, phase: Phase, targets: Sequence[str], reason: str) -> None:
    for target in targets:
        await _skip_target(ctx, phase, target, reason)


async def _skip_target(ctx: RunContext, phase: Phase, target: str, reason: str) -> None:
    await _skip_steps(ctx, phase.name, target, phase.steps, reason)


async def _skip_steps(
    ctx: RunContext, phase: str, target: str, steps: Iterable[tuple[str, Step]], reason: str
) -> None:
    for step, _ in steps:
        async with ctx.item(f"{target}/{step}", phase=phase) as item:
            if not item.skipped:
                item.skip(reason)


def _named(targets: Sequence[str]) -> str:
    shown = ", ".join(targets[:_LIMIT])
    more = len(targets) - _LIMIT
    return f"{shown} and {more} more" if more > 0 else shown


def _check_targets(targets: Iterable[str]) -> tuple[str, ...]:
    return check_names("targets", targets, each="target names")
