"""Bad input: refused at the edge with an error that names it, and nothing touched.

Non-JSON params or results are refused before anything is written. A database
runlife must not use (a corrupt file, another application's SQLite file, a
schema written by a newer runlife) is refused with `SchemaMismatch` and left
byte for byte as it was: a store never "repairs" what it does not understand.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import attrs
import psycopg  # noqa: TID251 - the test tampers with the database behind the store's back
import pytest
from harness import with_store

from runlife import (
    DEFAULT_LIFECYCLE,
    JobRecord,
    NotSerializable,
    Run,
    RunNotFound,
    RunQuery,
    SchemaMismatch,
    Status,
    StoreError,
)
from runlife.abc import Store
from runlife.stores import open_store
from runlife.stores._postgres import SCHEMA_VERSION as PG_SCHEMA_VERSION
from runlife.stores._sqlite import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION

JOB = "bad"


def test_non_json_params_are_refused_at_create_naming_the_field(store_url: str) -> None:
    with pytest.raises(NotSerializable, match=r"params\['when'\]") as caught:
        Run.create(job=JOB, at=datetime.now(UTC), params={"when": datetime.now(UTC)})
    assert caught.value.field == "params['when']"

    # A run built by hand skips Run.create's check; the store checks again.
    good = Run.create(job=JOB, at=datetime.now(UTC), params={"ok": 1})
    bad = attrs.evolve(good, params={"devices": ["r1", {"r2"}]})

    async def main(store: Store) -> None:
        with pytest.raises(NotSerializable, match="params") as refused:
            await store.create_run(bad)
        assert "devices" in refused.value.field
        with pytest.raises(RunNotFound):
            await store.get_run(bad.id)
        assert (await store.list_runs(RunQuery(job=JOB))).runs == ()
        assert await store.events() == ()

    with_store(store_url, main)


def test_a_non_json_result_is_refused_and_the_run_left_as_it_was(store_url: str) -> None:
    async def main(store: Store) -> None:
        await store.save_job(JobRecord(name=JOB))
        run = Run.create(job=JOB, at=await store.now(), initial=Status.QUEUED)
        await store.create_run(run)
        [claim] = await store.claim("w", {JOB: DEFAULT_LIFECYCLE}, limit=1, lease=30)
        done = DEFAULT_LIFECYCLE.transition(claim.run, Status.SUCCEEDED, at=await store.now())
        with pytest.raises(NotSerializable, match="result"):
            await store.update_run(
                attrs.evolve(done, result={"n": float("nan")}),
                expected_version=claim.run.version,
                claim=claim,
            )
        stored = await store.get_run(run.id)
        assert (stored.status, stored.version) == (Status.RUNNING, claim.run.version)

    with_store(store_url, main)


# -- SQLite files runlife must not use -----------------------------------------------


def _snapshot(directory: Path) -> dict[str, str]:
    """Every file of *directory* with the hash of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


def _refused_untouched(path: Path, match: str) -> SchemaMismatch:
    """Opening *path* as a store is refused, and no file of its directory changed."""
    before = _snapshot(path.parent)

    async def main(store: Store) -> None:
        await store.list_runs(RunQuery())

    with pytest.raises(SchemaMismatch, match=match) as refused:
        with_store(f"sqlite:///{path}", main)
    assert _snapshot(path.parent) == before
    return refused.value


def test_a_corrupt_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    path.write_bytes(os.urandom(64 * 1024))
    _refused_untouched(path, "not a usable SQLite database")


def test_another_applications_sqlite_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.close()
    error = _refused_untouched(path, "another application")
    assert "users" in str(error)


def test_a_schema_from_a_newer_runlife_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with_store(f"sqlite:///{path}", lambda store: store.save_job(JobRecord(name=JOB)))
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO runlife_schema (version, applied_at) VALUES (?, 0)",
            (SQLITE_SCHEMA_VERSION + 1,),
        )
    conn.close()
    error = _refused_untouched(path, "newer")
    assert str(SQLITE_SCHEMA_VERSION + 1) in str(error)


def test_a_runlife_file_damaged_inside_fails_as_a_store_error(tmp_path: Path) -> None:
    """Damage past the header is found on read: a StoreError, never a raw sqlite3 error."""
    path = tmp_path / "runs.db"

    async def fill(store: Store) -> None:
        await store.save_job(JobRecord(name=JOB))
        for i in range(200):
            run = Run.create(job=JOB, at=await store.now(), params={"pad": "x" * 200, "i": i})
            await store.create_run(run)

    with_store(f"sqlite:///{path}", fill)
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 8 * page, "the file is too small to damage past its schema pages"
    data[4 * page :] = b"\xa5" * (len(data) - 4 * page)
    path.write_bytes(bytes(data))
    before = _snapshot(tmp_path)

    async def read(store: Store) -> None:
        await store.list_runs(RunQuery(job=JOB, limit=500))
        await store.count_runs(RunQuery(job=JOB))

    with pytest.raises(StoreError):
        with_store(f"sqlite:///{path}", read)
    assert _snapshot(tmp_path) == before


# -- PostgreSQL databases runlife must not use ----------------------------------------


def _tables(url: str) -> dict[str, list[tuple[object, ...]]]:
    """The contents of every table of the public schema, for a before/after check."""
    with psycopg.connect(url) as conn:
        names = [
            n
            for (n,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}


@pytest.mark.postgres
def test_a_postgres_schema_from_a_newer_runlife_is_refused_and_left_untouched(
    pg_url: str,
) -> None:
    with_store(pg_url, lambda store: store.save_job(JobRecord(name=JOB)))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO runlife_schema (version) VALUES (%s)", (PG_SCHEMA_VERSION + 1,))
    before = _tables(pg_url)
    with pytest.raises(SchemaMismatch, match="newer"):
        with_store(pg_url, lambda store: store.list_jobs())
    assert _tables(pg_url) == before


@pytest.mark.postgres
def test_a_postgres_database_with_foreign_runlife_tables_is_refused(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE runlife_runs (id text PRIMARY KEY, note text)")
        conn.execute("INSERT INTO runlife_runs VALUES ('x', 'not made by runlife')")
    before = _tables(pg_url)
    with pytest.raises(SchemaMismatch, match="runlife_runs"):
        with_store(pg_url, lambda store: store.list_jobs())
    assert _tables(pg_url) == before


def test_open_store_names_the_known_schemes() -> None:
    with pytest.raises(ValueError, match="known schemes: memory, postgres, postgresql, sqlite"):
        open_store("mysql://localhost/runs")
