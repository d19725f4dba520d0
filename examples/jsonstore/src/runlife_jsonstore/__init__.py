"""An example runlife store plugin: every run, item, log line and event kept in one
JSON file: ``json:///relative/runs.json`` or ``json:////absolute/runs.json``.

It is small because it does not reimplement the store rules: it is runlife's
`MemoryStore` (claims, leases, limits, queries, all of it), started from the
file's snapshot (``MemoryStore(snapshot=...)``, read when the store is made,
which ``open_store(url)`` does) and writing ``MemoryStore.snapshot()`` back to
the file after every change (its ``on_change`` callback) and when it closes.
Only runlife's public API is used.

Each write rewrites the whole file (to a temporary file beside it, then
``os.replace``: a reader sees the old file or the new one, never half of one), so
it suits small stores. One process at a time may use a file: a store for demos,
tests and single-process tools, not for a fleet.

The package registers the ``json`` scheme in the ``runlife.stores`` entry-point
group (see its pyproject.toml), so ``runlife.stores.open_store("json:///runs.json")``
and ``AsyncRuntime(store="json:///runs.json")`` find it, and its tests certify it
with ``runlife.testing.StoreContract``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from runlife.stores import MemoryStore

__all__ = ("JSONFileStore", "open_json_store")


def open_json_store(url: str) -> JSONFileStore:
    """The ``runlife.stores`` entry point: a `JSONFileStore` for a ``json:`` URL."""
    # As SQLAlchemy spells file URLs: json:///relative.json, json:////absolute.json.
    path = url.partition(":")[2]
    if path.startswith("//"):
        path = path[2:]
        path = path[1:] if path.startswith("/") else path
    if not path:
        raise ValueError(
            f"url={url!r} is invalid: expected json:///relative.json or json:////absolute.json"
        )
    return JSONFileStore(path)


class JSONFileStore(MemoryStore):
    """A `MemoryStore` kept in a JSON file: started from it, saved after each change.

    >>> import anyio, tempfile
    >>> from datetime import datetime, UTC
    >>> from runlife import Run
    >>> path = Path(tempfile.mkdtemp()) / "runs.json"
    >>> async def main():
    ...     async with JSONFileStore(path) as store:
    ...         run = await store.create_run(Run.create(job="backup", at=datetime.now(UTC)))
    ...     async with JSONFileStore(path) as again:
    ...         return await again.get_run(run.id) == run
    >>> anyio.run(main)
    True
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        saved = None
        if self.path.exists():
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        super().__init__(snapshot=saved, on_change=self.save)
        self.url = f"json:///{self.path}"

    def __repr__(self) -> str:
        return f"<JSONFileStore {self.path}>"

    def save(self) -> None:
        """Write the store's snapshot to its file, atomically."""
        text = json.dumps(self.snapshot(), separators=(",", ":"), ensure_ascii=False)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, self.path)

    async def aclose(self) -> None:
        """Close the store, then save it one last time (a lease's last heartbeat)."""
        await super().aclose()
        self.save()
