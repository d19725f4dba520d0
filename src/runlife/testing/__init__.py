"""Tools for testing code that uses runlife, and for testing runlife plugins.

* `VirtualClock`: a `runlife.abc.Clock` in virtual time with autojump, so a
  17-minute retry timeline runs in milliseconds. Needs nothing beyond runlife.
* `StoreContract`: the conformance suite every store passes; subclass it as
  ``TestMyStore`` and give it a ``store`` fixture.
* `runlife.testing.strategies`: hypothesis strategies for lifecycles, runs,
  retry policies, cron expressions and workflows.

`StoreContract` and `strategies` need the ``testing`` extra (``pip install
runlife[testing]``: hypothesis and pytest); without it, importing them raises
`ImportError` saying so. Every name here is imported on first use, so importing
this package (as runlife's pytest plugin does) costs next to nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runlife.testing import strategies
    from runlife.testing._clock import VirtualClock
    from runlife.testing._contract import StoreContract
    from runlife.testing._executor_contract import ExecutorContract
    from runlife.testing._immediate import immediate
    from runlife.testing._lifecycle_machine import LifecycleMachine
    from runlife.testing._runtime_machine import InjectedFault, RuntimeMachine

__all__ = (
    "ExecutorContract",
    "InjectedFault",
    "LifecycleMachine",
    "RuntimeMachine",
    "StoreContract",
    "VirtualClock",
    "immediate",
    "strategies",
)

# name -> (module that defines it, attribute or None for the module itself, needs extra)
_LAZY: dict[str, tuple[str, str | None, bool]] = {
    "ExecutorContract": ("runlife.testing._executor_contract", "ExecutorContract", True),
    "InjectedFault": ("runlife.testing._runtime_machine", "InjectedFault", True),
    "LifecycleMachine": ("runlife.testing._lifecycle_machine", "LifecycleMachine", True),
    "RuntimeMachine": ("runlife.testing._runtime_machine", "RuntimeMachine", True),
    "StoreContract": ("runlife.testing._contract", "StoreContract", True),
    "VirtualClock": ("runlife.testing._clock", "VirtualClock", False),
    "immediate": ("runlife.testing._immediate", "immediate", False),
    "strategies": ("runlife.testing.strategies", None, True),
}
_EXTRA = ("hypothesis", "pytest")


def __getattr__(name: str) -> Any:
    try:
        module_name, attr, needs_extra = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    if needs_extra:
        for requirement in _EXTRA:
            try:
                importlib.import_module(requirement)
            except ImportError as exc:
                raise ImportError(
                    f"runlife.testing.{name} needs {requirement}, which is not installed: "
                    f"install runlife[testing] (pip install 'runlife[testing]')",
                    name=requirement,
                ) from exc
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
