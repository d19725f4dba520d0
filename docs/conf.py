"""Sphinx configuration: MyST pages, furo theme, Mermaid diagrams, autodoc of the public API."""

from __future__ import annotations

import re
from importlib.metadata import version as _version
from pathlib import Path
from typing import Any

project = "runlife"
author = "The runlife maintainers"
copyright = "2026, the runlife maintainers"
release = _version("runlife")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinxcontrib.mermaid",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# ```mermaid fences render here and on GitHub alike.
myst_fence_as_directive = ["mermaid"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# `Name` in docstrings is a cross-reference where Sphinx can resolve it.
default_role = "py:obj"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = "runlife"


def _check_lifecycle_diagram(app: Any) -> None:
    """Fail the build (a warning, under -W) if the lifecycle page's diagram drifted from
    `DEFAULT_LIFECYCLE.to_mermaid()`; tests/test_docs.py checks the same."""
    from sphinx.util import logging

    from runlife import DEFAULT_LIFECYCLE

    page = Path(app.srcdir, "lifecycle.md").read_text(encoding="utf-8")
    found = re.search(r"```mermaid\n(.*?)\n```", page, re.S)
    if found is None or found.group(1).strip() != DEFAULT_LIFECYCLE.to_mermaid().strip():
        logging.getLogger(__name__).warning(
            "docs/lifecycle.md: the state diagram differs from DEFAULT_LIFECYCLE.to_mermaid()"
        )


def setup(app: Any) -> None:
    app.connect("builder-inited", _check_lifecycle_diagram)
