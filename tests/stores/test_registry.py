"""open_store: URLs to stores, built in and registered through entry points."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import runlife.stores
from runlife.exceptions import InvalidPolicy, InvalidValue, UnknownStore
from runlife.stores import MemoryStore, open_store
from runlife.stores._registry import ENTRY_POINT_GROUP, sqlite_path


def test_memory_url_gives_a_memory_store() -> None:
    """memory:// opens a fresh MemoryStore each time."""
    first, second = open_store("memory://"), open_store("memory://")
    assert isinstance(first, MemoryStore)
    assert first is not second
    assert first.url == "memory://"


def test_memory_url_takes_no_path() -> None:
    """A memory URL with a path is refused, naming the URL."""
    with pytest.raises(InvalidPolicy, match="memory://x"):
        open_store("memory://x")


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///runs.db", "runs.db"),
        ("sqlite:///data/runs.db", "data/runs.db"),
        ("sqlite:////var/lib/app/runs.db", "/var/lib/app/runs.db"),
        ("sqlite:///my%20runs.db", "my runs.db"),
        ("sqlite:runs.db", "runs.db"),
        ("sqlite:data/runs.db", "data/runs.db"),
        ("sqlite:/abs/runs.db", "/abs/runs.db"),
    ],
)
def test_sqlite_paths_read_like_sqlalchemy(url: str, path: str) -> None:
    """Three slashes then a relative path, four for an absolute one; ``sqlite:`` then
    a path names that path."""
    assert sqlite_path(url) == path


@pytest.mark.parametrize(
    "url",
    ["sqlite://host/runs.db", "sqlite:///runs.db?mode=ro", "sqlite://", "sqlite:///",
     "sqlite:///%00.db"],
)  # fmt: skip
def test_sqlite_urls_with_host_or_options_are_refused(url: str) -> None:
    """A host, query options, no path or a NUL in a sqlite URL are refused, not
    silently dropped or misread."""
    with pytest.raises(InvalidValue, match="sqlite"):
        open_store(url)


def test_sqlite_url_gives_an_unopened_sqlite_store(tmp_path: Path) -> None:
    """sqlite:/// gives a SQLiteStore on that path; nothing is created until first use."""
    db = tmp_path / "runs.db"
    store = open_store(f"sqlite:///{db}")
    assert type(store).__name__ == "SQLiteStore"
    assert isinstance(store, runlife.stores.SQLiteStore)
    assert store.url == f"sqlite:///{db}"
    assert not db.exists()


def test_relative_sqlite_path_is_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:///runs.db names runs.db in the working directory."""
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///runs.db")
    assert os.fspath(store.path) == "runs.db"  # type: ignore[attr-defined]


def test_sqlite_memory_url_points_to_the_memory_store() -> None:
    """SQLiteStore keeps files only: sqlite:///:memory: is refused with the advice to
    use memory://."""
    with pytest.raises(InvalidValue, match="MemoryStore"):
        open_store("sqlite:///:memory:")


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "POSTGRESQL"])
def test_postgres_url_gives_an_unconnected_store(scheme: str) -> None:
    """postgresql:// and postgres:// give a PostgresStore without connecting (the
    host does not exist) and without the password in its url."""
    store = open_store(f"{scheme}://app:secret@db.invalid:5432/runs")
    assert type(store).__name__ == "PostgresStore"
    assert "secret" not in store.url
    assert "db.invalid" in store.url


def test_unknown_scheme_lists_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown scheme raises UnknownStore (a ValueError) listing every scheme."""
    monkeypatch.setattr(importlib.metadata, "entry_points", _entry_points({}))
    with pytest.raises(UnknownStore) as info:
        open_store("redis://localhost/0")
    assert isinstance(info.value, ValueError)
    assert info.value.known == ("memory", "postgres", "postgresql", "sqlite")
    assert "redis://localhost/0" in str(info.value)
    assert "memory, postgres, postgresql, sqlite" in str(info.value)
    with pytest.raises(UnknownStore):
        open_store("runs.db")


class _Point:
    """A stand-in for an entry point (name and load())."""

    def __init__(self, name: str, target: Any) -> None:
        self.name = name
        self.target = target
        self.loaded = False

    def load(self) -> Any:
        self.loaded = True
        return self.target


def _entry_points(points: dict[str, Any]) -> Any:
    def entry_points(*, group: str) -> list[_Point]:
        assert group == ENTRY_POINT_GROUP
        return [_Point(name, target) for name, target in points.items()]

    return entry_points


def test_third_party_scheme_from_an_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scheme registered in the runlife.stores group is opened by its factory,
    called with the whole URL, and listed among the known schemes."""
    made: list[str] = []

    def factory(url: str) -> MemoryStore:
        made.append(url)
        return MemoryStore()

    monkeypatch.setattr(importlib.metadata, "entry_points", _entry_points({"redis": factory}))
    store = open_store("redis://localhost/0")
    assert isinstance(store, MemoryStore)
    assert made == ["redis://localhost/0"]
    with pytest.raises(UnknownStore) as info:
        open_store("mongo://x")
    assert "redis" in info.value.known


def test_built_in_schemes_cannot_be_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin registering "memory" does not replace the built-in store."""

    def factory(url: str) -> Any:
        raise AssertionError("the plugin must not be called")

    monkeypatch.setattr(importlib.metadata, "entry_points", _entry_points({"memory": factory}))
    assert isinstance(open_store("memory://"), MemoryStore)


def test_open_store_is_synchronous_and_lazy() -> None:
    """open_store returns at once without an event loop; the store opens on first use."""
    store = open_store("memory://")
    assert not hasattr(store, "__await__")
    assert repr(store) == "<MemoryStore 0 runs>"


@pytest.mark.anyio
async def test_opened_store_connects_on_first_use(tmp_path: Path) -> None:
    """A store from open_store works under async with, and on first use without it."""
    async with open_store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        assert (await store.list_jobs()) == ()
    assert (tmp_path / "runs.db").exists()
    other = open_store("memory://")
    try:
        assert (await other.list_jobs()) == ()
    finally:
        await other.aclose()


def test_postgres_store_is_imported_lazily() -> None:
    """runlife.stores imports without psycopg: PostgresStore loads on first access."""
    assert "PostgresStore" in runlife.stores.__all__
    assert "PostgresStore" in dir(runlife.stores)
    with pytest.raises(AttributeError, match="NoSuchStore"):
        runlife.stores.NoSuchStore  # noqa: B018


def test_stores_import_without_psycopg() -> None:
    """With psycopg missing, runlife.stores still imports and works for memory and
    SQLite; only a postgresql:// URL fails, saying what to install."""
    code = (
        "import sys; sys.modules['psycopg'] = None; sys.modules['psycopg_pool'] = None\n"
        "from runlife.stores import open_store, MemoryStore\n"
        "open_store('memory://')\n"
        "try:\n"
        "    open_store('postgresql://db.invalid/x')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.startswith("StoreError")
    assert "runlife[postgres]" in out
