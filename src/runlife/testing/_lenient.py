"""What runlife's state machines add to their hypothesis settings: no deadline and no
too-slow health check, whatever the host's ``@settings`` say, because their steps do
real work (a store's writes, a runtime's moves) that hypothesis would count as
drawing data."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

__all__ = ("LenientMachine",)


def lenient(base: settings) -> settings:
    """*base* without a deadline and without the too-slow health check."""
    checks = {*base.suppress_health_check, HealthCheck.too_slow}
    return settings(base, deadline=None, suppress_health_check=sorted(checks, key=str))


class LenientMachine(RuleBasedStateMachine):
    """A state machine whose ``TestCase`` runs with `lenient` settings."""

    @classmethod
    @lru_cache
    def _to_test_case(cls) -> Any:
        case = super()._to_test_case()
        machine = cls

        def runTest(self: Any) -> None:
            run_state_machine_as_test(machine, settings=lenient(self.settings))

        runTest.is_hypothesis_test = True  # type: ignore[attr-defined]
        runTest._hypothesis_state_machine_class = machine  # type: ignore[attr-defined]
        setattr(case, "runTest", runTest)  # noqa: B010 - a method of a generated class
        return case
