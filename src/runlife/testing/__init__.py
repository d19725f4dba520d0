"""Tools for testing code that uses runlife, and for testing runlife plugins.

Needs the ``testing`` extra (``pip install runlife[testing]``).

* `VirtualClock`: a `runlife.abc.Clock` in virtual time with autojump, so a
  17-minute retry timeline runs in milliseconds.
* `StoreContract`: the conformance suite every store passes; subclass it as
  ``TestMyStore`` and give it a ``store`` fixture.
* `runlife.testing.strategies`: hypothesis strategies for lifecycles, runs,
  retry policies, cron expressions and workflows.
"""

from __future__ import annotations

from runlife.testing import strategies
from runlife.testing._clock import VirtualClock
from runlife.testing._contract import StoreContract

__all__ = ("StoreContract", "VirtualClock", "strategies")
