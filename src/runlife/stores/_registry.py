"""`open_store`: a store from a URL, built-in or registered by a plugin."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from runlife.exceptions import InvalidPolicy, StoreError, UnknownStore

if TYPE_CHECKING:
    from runlife.abc import Store

__all__ = ("BUILTIN_SCHEMES", "ENTRY_POINT_GROUP", "open_store")

ENTRY_POINT_GROUP = "runlife.stores"
"""The entry-point group where third-party stores register a URL scheme."""

BUILTIN_SCHEMES = ("memory", "postgres", "postgresql", "sqlite")


def _memory(url: str) -> Store:
    from runlife.stores._memory import MemoryStore

    rest = url.partition(":")[2]
    if rest not in ("", "//", "///"):
        raise InvalidPolicy("url", url, "memory:// (a memory store takes no path or options)")
    return MemoryStore()


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:`` URL, read as SQLAlchemy does.

    Three slashes then a relative path, four for an absolute one; ``:memory:``
    (or nothing) for an in-memory database. Percent-escapes are decoded.

    >>> sqlite_path("sqlite:///runs.db"), sqlite_path("sqlite:////var/lib/runs.db")
    ('runs.db', '/var/lib/runs.db')
    >>> sqlite_path("sqlite:///:memory:"), sqlite_path("sqlite://")
    (':memory:', ':memory:')
    """
    parts = urlsplit(url)
    if parts.netloc or parts.query or parts.fragment:
        raise InvalidPolicy(
            "url", url, "sqlite:///relative/path.db or sqlite:////absolute/path.db (no host, "
            "no query options: pass options to SQLiteStore)"
        )  # fmt: skip
    path = unquote(parts.path)
    if path in ("", "/"):
        return ":memory:"
    # urlsplit keeps the slash that separates the (empty) host from the path.
    return path[1:]


def _sqlite(url: str) -> Store:
    from runlife.stores._sqlite import SQLiteStore

    return SQLiteStore(sqlite_path(url))


def _postgres(url: str) -> Store:
    try:
        from runlife.stores._postgres import PostgresStore
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] not in {"psycopg", "psycopg_pool"}:
            raise  # a bug of ours, not a missing extra: do not disguise it
        raise StoreError(
            f"{url.partition(':')[0]}:// needs psycopg 3: pip install 'runlife[postgres]'"
        ) from exc
    return PostgresStore(url)


_BUILTIN: dict[str, Callable[[str], Store]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgresql": _postgres,
    "postgres": _postgres,
}


def _plugins() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name.lower(): ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def open_store(url: str) -> Store:
    """The store for *url*, not yet connected (it connects on ``async with`` or first use).

    Built-in schemes: ``memory://``, ``sqlite:///relative.db`` and
    ``sqlite:////absolute.db`` (``sqlite:///:memory:`` too), ``postgresql://`` and
    ``postgres://`` (a libpq URL, passed to `PostgresStore` as is). Any other
    scheme is looked up in the ``runlife.stores`` entry-point group: an entry point
    named after the scheme names a factory called with the whole URL. Built-in
    schemes cannot be overridden by a plugin.

    Raises:
        UnknownStore: no store has the URL's scheme; the error lists the known ones.
        InvalidPolicy: a built-in scheme's URL is malformed.
        StoreError: the store's driver is not installed.

    >>> open_store("memory://")
    <MemoryStore 0 runs>
    >>> open_store("nosuch://x")
    Traceback (most recent call last):
    ...
    runlife.exceptions.UnknownStore: no store for URL 'nosuch://x'; known schemes: memory, ...
    """
    if not isinstance(url, str):
        raise InvalidPolicy("url", url, "a store URL such as sqlite:///runs.db")
    scheme, colon, _ = url.partition(":")
    scheme = scheme.lower()
    if colon and scheme in _BUILTIN:
        return _BUILTIN[scheme](url)
    plugins = _plugins()
    if colon and scheme in plugins:
        factory = plugins[scheme].load()
        return factory(url)  # type: ignore[no-any-return]
    raise UnknownStore(url, {*_BUILTIN, *plugins})
