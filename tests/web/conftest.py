"""Fixtures of the monitor page's tests: stores filled with runs worth looking at."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

import runlife
from runlife.web import monitor

HOSTILE = '"><img src=x onerror=alert(1)>'
SCRIPT = "<script>alert(1)</script>"
JS_URL = "javascript:alert(1)"


@pytest.fixture
def anyio_backend() -> str:
    """The monitor runs under uvicorn's asyncio; its tests do too."""
    return "asyncio"


@runlife.job(name="nightly_backup", schedule=runlife.Cron("0 2 * * *"))
async def nightly_backup(ctx: runlife.RunContext, devices: list[str] = ()) -> dict[str, int]:  # type: ignore[assignment]
    for device in devices:
        async with ctx.item(device) as item:
            item.log.info("backing up", host=device)
            if device.startswith("bad"):
                raise ConnectionError(f"{device}: {SCRIPT} timed out")
            item.output = {"bytes": 100}
    print(f"done {HOSTILE} {JS_URL}")
    return {"devices": len(devices)}


@runlife.job(name=f"check{HOSTILE}")
def health_check(ctx: runlife.RunContext) -> None:
    print("edge-sw-01: ok")
    for n in range(3):
        print(f"ERROR {n}: edge-sw-03 {SCRIPT} Connection timed out", file=sys.stderr)
    raise RuntimeError(f"edge-sw-03 {HOSTILE} no route to host")


@runlife.job(name="slow")
async def slow(ctx: runlife.RunContext) -> None:
    await anyio.sleep(3600)


@runlife.job(name="Generate_Invoice")
async def generate_invoice(ctx: runlife.RunContext) -> None:
    raise RuntimeError("no invoice")


@runlife.job(name="Send_Email_Invoice")
async def send_email(ctx: runlife.RunContext) -> None:
    return None


BILLING = runlife.Workflow("billing", {generate_invoice: [], send_email: [generate_invoice]})
JOBS = [nightly_backup, health_check, slow, generate_invoice, send_email]


class Filled:
    """What the fixture stored: the runs' ids by what they are."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ids: dict[str, str] = {}


async def fill(url: str) -> Filled:
    """A store with a succeeded-with-warnings backup, a failed check, a cancelled
    slow run and a failed workflow."""
    filled = Filled(url)
    async with runlife.AsyncRuntime(jobs=JOBS, workflows=[BILLING], store=url, poll=0.2) as rt:
        ok = await rt.submit(
            nightly_backup,
            params={"devices": ["core-rtr-01", "bad-rtr-02", HOSTILE]},
            labels={"site": SCRIPT},
        )
        bad = await rt.submit(health_check, labels={"site": "dc1"})
        wf = await rt.submit(BILLING)
        for run in (ok, bad, wf):
            await rt.wait(run.id, timeout=30)
        waiting = await rt.submit(slow, at=runlife.SystemClock().now().replace(year=2099))
        await rt.cancel(waiting.id, "not needed")
        filled.ids = {"backup": ok.id, "check": bad.id, "workflow": wf.id, "cancelled": waiting.id}
    return filled


@pytest.fixture
async def store(url: str) -> Filled:
    return await fill(url)


def allow(request: Any, action: str, target: str) -> bool:
    return request.headers.get("x-operator") == "yes"


@pytest.fixture
async def client(store: Filled) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of a monitor over the filled store, actions for "x-operator: yes"."""
    app = monitor(store.url, authorize=allow)
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c
