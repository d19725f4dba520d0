"""`open_store`: a store from a URL, built-in or registered by a plugin."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote

from runlife._core.values import is_text
from runlife.exceptions import InvalidPolicy, InvalidValue, StoreError, UnknownStore

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


_SQLITE_FORMS: Final = (
    "sqlite:///relative/path.db or sqlite:////absolute/path.db (as SQLAlchemy reads them), "
    "or sqlite:relative/path.db or sqlite:/absolute/path.db: a file path, percent-escaped, "
    "without host, query options or fragment (pass options to SQLiteStore)"
)


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:`` URL.

    Two forms are read, and nothing else:

    - SQLAlchemy's: ``sqlite://`` then ``/`` then the path, so three slashes
      before a relative path and four before an absolute one;
    - the path right after ``sqlite:``, relative or absolute (one slash).

    Percent-escapes are decoded (``%20`` for a space, ``%3F`` for ``?``).

    Raises:
        ~runlife.exceptions.InvalidValue: naming the URL and the accepted forms,
            for a URL with a host, query options or a fragment, without a path,
            with a path that is a directory, holds a NUL character or is not UTF-8
            once decoded, or for ``:memory:`` (SQLite's in-memory database lives
            inside one connection, and `SQLiteStore` has several: use
            ``memory://``, the `MemoryStore`).

    >>> sqlite_path("sqlite:///runs.db"), sqlite_path("sqlite:////var/lib/runs.db")
    ('runs.db', '/var/lib/runs.db')
    >>> sqlite_path("sqlite:data/runs.db"), sqlite_path("sqlite:/var/lib/runs.db")
    ('data/runs.db', '/var/lib/runs.db')
    >>> sqlite_path("sqlite:///my%20runs.db")
    'my runs.db'
    >>> sqlite_path("sqlite:///")
    Traceback (most recent call last):
    ...
    runlife.exceptions.InvalidValue: url='sqlite:///' is invalid: expected sqlite:///relative...
    """
    if not isinstance(url, str) or url[:7].lower() != "sqlite:":
        raise InvalidValue("url", url, _SQLITE_FORMS)
    rest = url[7:]
    if rest.startswith("//"):
        host, slash, rest = rest[2:].partition("/")
        if host:
            raise InvalidValue("url", url, _SQLITE_FORMS)
        if not slash:
            rest = ""
    try:
        path = unquote(rest, errors="strict")
    except UnicodeDecodeError:
        raise InvalidValue("url", url, _SQLITE_FORMS) from None
    if ":memory:" in path:
        raise InvalidValue(
            "url",
            url,
            "a file: SQLite's :memory: database lives inside one connection and "
            "SQLiteStore has several; use memory:// (MemoryStore) for a store in memory",
        )
    if "?" in rest or "#" in rest:
        raise InvalidValue("url", url, _SQLITE_FORMS)
    if not path or path.endswith("/") or not is_text(path) or path[:5].lower() == "file:":
        raise InvalidValue("url", url, _SQLITE_FORMS)
    return path


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

    Built-in schemes: ``memory://``; ``sqlite:///relative.db`` and
    ``sqlite:////absolute.db``, or ``sqlite:relative.db`` and ``sqlite:/absolute.db``
    (a file: see `sqlite_path`; for a store in memory use ``memory://``);
    ``postgresql://`` and ``postgres://`` (a libpq URL, passed to `PostgresStore`
    as is). Any other
    scheme is looked up in the ``runlife.stores`` entry-point group: an entry point
    named after the scheme names a factory called with the whole URL. Built-in
    schemes cannot be overridden by a plugin.

    Raises:
        UnknownStore: no store has the URL's scheme; the error lists the known ones.
        ~runlife.exceptions.InvalidValue: a built-in scheme's URL is malformed (it
            names the URL and the accepted forms).
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
