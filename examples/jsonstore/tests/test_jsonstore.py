"""The JSON-file store passes runlife's StoreContract, is found by its URL scheme,
and keeps its runs across a close and an open."""

from __future__ import annotations

from pathlib import Path

import pytest
from runlife_jsonstore import JSONFileStore

import runlife
from runlife import AsyncRuntime, RunContext, Status
from runlife.stores import open_store
from runlife.testing import StoreContract


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class TestJSONFileStore(StoreContract):
    machine_examples = 10

    @pytest.fixture
    async def store(self, tmp_path: Path):
        async with open_store(f"json:///{tmp_path}/runs.json") as store:
            yield store


def test_the_scheme_is_registered(tmp_path: Path) -> None:
    store = open_store(f"json:///{tmp_path}/runs.json")
    assert isinstance(store, JSONFileStore)
    assert store.path == tmp_path / "runs.json"


@runlife.job
async def count_devices(ctx: RunContext, site: str) -> int:
    async with ctx.item("core-rtr-01") as item:
        item.output = {"ok": True}
    ctx.log.info("counted", site=site)
    return 42


@pytest.mark.anyio
async def test_runs_items_and_logs_outlive_the_store(tmp_path: Path) -> None:
    url = f"json:///{tmp_path}/runs.json"
    async with AsyncRuntime(jobs=[count_devices], store=url) as rt:
        run = await rt.wait((await rt.submit(count_devices, {"site": "dc1"})).id)
    async with AsyncRuntime(jobs=[count_devices], store=url) as rt:
        again = await rt.get_run(run.id)
        items = await rt.items(run.id)
        logs = await rt.logs(run.id)
    assert again == run
    assert (again.status, again.result) == (Status.SUCCEEDED, 42)
    assert [i.key for i in items] == ["core-rtr-01"]
    assert any(line.message == "counted" for line in logs.lines)
