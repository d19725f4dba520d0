"""Fast construction of frozen attrs records on the hot path of a transition.

A transition builds a `Run` (24 fields), a `Transition` and sometimes an `Attempt`.
Through attrs' generated ``__init__`` (or ``attrs.evolve``) every field costs an
``object.__setattr__`` call plus keyword plumbing; setting the slots through their
member descriptors costs half as much. The functions here are generated once from
the classes' own field lists and trust their arguments: they are for values the
core has already checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

__all__ = ("compile_copier", "compile_maker")


def _namespace(cls: type) -> dict[str, Any]:
    ns: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    for field in attrs.fields(cls):
        ns[f"_set_{field.name}"] = cls.__dict__[field.name].__set__
    return ns


def compile_maker(cls: type) -> Callable[..., Any]:
    """A positional constructor of *cls* (fields in declaration order, all required)."""
    names = [field.name for field in attrs.fields(cls)]
    body = [f"def make({', '.join(names)}):", "    new = _new(_cls)"]
    body += [f"    _set_{name}(new, {name})" for name in names]
    body.append("    return new")
    ns = _namespace(cls)
    exec("\n".join(body), ns)  # noqa: S102 - generated from the class's own field names
    return ns["make"]  # type: ignore[no-any-return]


def compile_copier(
    cls: type, changed: Iterable[str], derived: Mapping[str, str] | None = None
) -> Callable[..., Any]:
    """A copier ``copy(self, *, <changed>)``: fields in *changed* take the given
    values, fields in *derived* take an expression of ``self``, the rest are copied."""
    changed = tuple(changed)
    derived = derived or {}
    body = [f"def copy(self, *, {', '.join(changed)}):", "    new = _new(_cls)"]
    for field in attrs.fields(cls):
        name = field.name
        value = name if name in changed else derived.get(name, f"self.{name}")
        body.append(f"    _set_{name}(new, {value})")
    body.append("    return new")
    ns = _namespace(cls)
    exec("\n".join(body), ns)  # noqa: S102 - generated from the class's own field names
    return ns["copy"]  # type: ignore[no-any-return]
