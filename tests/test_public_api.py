"""The public surface: complete `__all__`, documented names, and a pure core."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest

import runlife
import runlife.abc
import runlife.cli
import runlife.exceptions
import runlife.executors
import runlife.hooks
import runlife.testing.strategies

PUBLIC_MODULES = [
    runlife,
    runlife.abc,
    runlife.exceptions,
    runlife.executors,
    runlife.hooks,
    runlife.cli,
    runlife.testing.strategies,
]


def defined_public_names(module: types.ModuleType) -> set[str]:
    """The public names a module is responsible for exporting.

    The package `runlife` is a facade: every public name it binds is a re-export. Any
    other module exports the classes and functions it defines itself (not the ones it
    imports to use).
    """
    names = set()
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, types.ModuleType) or name == "annotations":
            continue
        if module is runlife or getattr(value, "__module__", None) == module.__name__:
            names.add(name)
    return names


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_is_complete_and_exists(module: types.ModuleType) -> None:
    """__all__ is a tuple without duplicates; it lists every public name the module
    defines (for `runlife`, every public name it binds), and every name in it exists."""
    exported = module.__all__
    assert isinstance(exported, tuple)
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name}"
    missing = defined_public_names(module) - set(exported)
    assert not missing, f"public names not in {module.__name__}.__all__: {sorted(missing)}"


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_is_sorted_constants_first(module: types.ModuleType) -> None:
    """__all__ lists UPPER_CASE constants first, then the other names, each group sorted."""
    exported = list(module.__all__)
    constants = [n for n in exported if n.isupper()]
    others = [n for n in exported if not n.isupper()]
    assert exported == constants + others
    assert constants == sorted(constants)
    assert others == sorted(others)


def public_objects() -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    for module in PUBLIC_MODULES:
        assert module.__doc__, f"{module.__name__} has no docstring"
        for name in module.__all__:
            value = getattr(module, name)
            seen.append((f"{module.__name__}.{name}", value))
            if inspect.isclass(value):
                for attr, member in vars(value).items():
                    if attr.startswith("_") or not callable_or_property(member):
                        continue
                    seen.append((f"{module.__name__}.{name}.{attr}", member))
    return seen


def callable_or_property(member: object) -> bool:
    return isinstance(member, property | classmethod | staticmethod | types.FunctionType)


def docstring_of(name: str, value: Any) -> str | None:
    if isinstance(value, classmethod | staticmethod):
        value = value.__func__
    if name.rsplit(".", 1)[-1].isupper() or typing.get_origin(value) is not None:
        # Constants and type aliases (``Literal[...]``) are documented where they are
        # defined (and in the docs); their values carry no docstring of their own.
        return "constant or alias"
    return inspect.getdoc(value)


@pytest.mark.parametrize(("name", "value"), public_objects(), ids=[n for n, _ in public_objects()])
def test_public_names_have_docstrings(name: str, value: Any) -> None:
    """Every public name, and every public method or property of a public class, says
    what it is in at least one line."""
    doc = docstring_of(name, value)
    assert doc, f"{name} has no docstring"
    assert doc.strip().splitlines()[0].strip(), f"{name}'s docstring has no summary line"


def test_errors_share_one_root_and_their_builtins() -> None:
    """Every exception derives from RunlifeError, mixing in the builtin whose meaning it has."""
    exc = runlife.exceptions
    for name in exc.__all__:
        assert issubclass(getattr(exc, name), exc.RunlifeError)
    assert issubclass(exc.InvalidTransition, ValueError)
    assert issubclass(exc.InvalidLifecycle, ValueError)
    assert issubclass(exc.InvalidWorkflow, ValueError)
    assert issubclass(exc.DependencyCycle, exc.InvalidWorkflow)
    assert issubclass(exc.InvalidPolicy, ValueError)
    assert issubclass(exc.RunNotFound, LookupError)
    assert issubclass(exc.JobNotFound, LookupError)
    assert issubclass(exc.NotSerializable, TypeError)
    assert issubclass(exc.UnknownStore, ValueError)
    for name in exc.__all__:
        assert name in (exc.__doc__ or ""), f"the tree in runlife.exceptions misses {name}"


# Import the core modules without running runlife/__init__ (which loads the clock,
# and with it anyio), so that only what the core itself imports is seen.
PURE_IMPORT = """
import importlib, importlib.util, json, pkgutil, sys, types
spec = importlib.util.find_spec("runlife")
package = types.ModuleType("runlife")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["runlife"] = package
for name in sys.argv[1:]:
    importlib.import_module("runlife._core." + name)
lifecycle = sorted(sys.modules)
core = importlib.import_module("runlife._core")
for info in pkgutil.iter_modules(core.__path__):
    importlib.import_module("runlife._core." + info.name)
print(json.dumps({"lifecycle": lifecycle, "core": sorted(sys.modules)}))
"""
LIFECYCLE_CORE = ["status", "records", "run", "lifecycle", "ids", "convert", "fast", "queries"]
IMPURE = {"anyio", "trio", "asyncio", "psycopg", "sqlite3", "networkx", "croniter"}
WRAPPED = {"networkx": "graph.py", "croniter": "schedule.py"}
CORE_DIR = Path(runlife.__file__).parent / "_core"


def top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_nothing_impure() -> None:
    """The lifecycle core loads none of anyio, asyncio, a store, networkx or croniter;
    the rest of the core loads no async library and no store."""
    out = subprocess.run(
        [sys.executable, "-c", PURE_IMPORT, *LIFECYCLE_CORE],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    loaded = json.loads(out)
    lifecycle = {name.split(".")[0] for name in loaded["lifecycle"]}
    assert "runlife._core.lifecycle" in loaded["lifecycle"]
    assert not lifecycle & IMPURE, sorted(lifecycle & IMPURE)
    core = {name.split(".")[0] for name in loaded["core"]}
    assert not (core & IMPURE) - set(WRAPPED), sorted(core & IMPURE)
    assert not [m for m in loaded["core"] if m.startswith(("runlife.stores", "runlife._clock"))]


@pytest.mark.parametrize("path", sorted(CORE_DIR.glob("*.py")), ids=lambda p: p.name)
def test_wrapped_libraries_stay_in_their_module(path: Path) -> None:
    """networkx is imported only by the graph module, croniter only by the schedule module."""
    for library in top_level_imports(path) & set(WRAPPED):
        assert path.name == WRAPPED[library], f"{path.name} imports {library}"
