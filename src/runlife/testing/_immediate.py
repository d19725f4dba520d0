"""`runlife.testing.immediate`: re-exported from the core, where the switch lives."""

from __future__ import annotations

from runlife._core.immediate import immediate

__all__ = ("immediate",)
