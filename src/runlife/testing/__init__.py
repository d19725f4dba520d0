"""Tools for testing code that uses runlife, and for testing runlife plugins.

Needs the ``testing`` extra (``pip install runlife[testing]``).
"""

from __future__ import annotations

__all__ = ()
