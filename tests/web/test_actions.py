"""Actions from the monitor: only where authorize allows, only with the CSRF token."""

from __future__ import annotations

import anyio
import httpx
import pytest

import runlife
from runlife.web import monitor

from .conftest import BILLING, JOBS, Filled, allow, slow

pytestmark = pytest.mark.anyio
OPERATOR = {"x-operator": "yes"}


async def token(client: httpx.AsyncClient) -> str:
    await client.get("/")
    return str(client.cookies["runlife_csrf"])


async def test_run_actions_through_the_runtime(store: Filled) -> None:
    async with runlife.AsyncRuntime(
        jobs=JOBS, workflows=[BILLING], store=store.url, poll=0.2
    ) as rt:
        app = monitor(rt, authorize=allow)
        async with app.lifespan():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                csrf = await token(c)
                running = await rt.submit(slow)
                with anyio.fail_after(10):
                    while (await rt.get_run(running.id)).status is not runlife.Status.RUNNING:
                        await anyio.sleep(0.05)
                page = (await c.get(f"/runs/{running.id}", headers=OPERATOR)).text
                assert f'action="/runs/{running.id}/cancel"' in page
                assert (
                    f'action="/runs/{running.id}/cancel"'
                    not in (await c.get(f"/runs/{running.id}")).text
                )

                # refused: not authorized, no token, a wrong token, another origin
                assert (
                    await c.post(f"/runs/{running.id}/cancel", data={"csrf": csrf})
                ).status_code == 403
                no_token = await c.post(f"/runs/{running.id}/cancel", headers=OPERATOR)
                assert no_token.status_code == 403
                assert "CSRF" in no_token.text
                wrong = await c.post(
                    f"/runs/{running.id}/cancel", data={"csrf": "x"}, headers=OPERATOR
                )
                assert wrong.status_code == 403
                other = await c.post(
                    f"/runs/{running.id}/cancel",
                    data={"csrf": csrf},
                    headers={**OPERATOR, "origin": "http://evil.example"},
                )
                assert other.status_code == 403
                assert (await rt.get_run(running.id)).status is runlife.Status.RUNNING

                done = await c.post(
                    f"/runs/{running.id}/cancel", data={"csrf": csrf}, headers=OPERATOR
                )
                assert done.status_code == 303
                assert done.headers["location"] == f"/runs/{running.id}"
                ended = await rt.wait(running.id, timeout=10)
                assert ended.status is runlife.Status.CANCELLED

                for verb, trigger in (("retry", "RETRY"), ("rerun", "RERUN")):
                    got = await c.post(
                        f"/runs/{store.ids['check']}/{verb}", data={"csrf": csrf}, headers=OPERATOR
                    )
                    assert got.status_code == 303
                    new = await rt.get_run(got.headers["location"].rsplit("/", 1)[1])
                    assert new.trigger.value == trigger
                    assert new.parent_id == store.ids["check"]
                refused = await c.post(
                    f"/runs/{store.ids['backup']}/retry", data={"csrf": csrf}, headers=OPERATOR
                )
                assert refused.status_code == 409
                assert "retry refused" in refused.text
                unknown = await c.post("/runs/nope/cancel", data={"csrf": csrf}, headers=OPERATOR)
                assert unknown.status_code == 404
                assert (
                    await c.post(f"/runs/{running.id}/explode", data={"csrf": csrf})
                ).status_code == 404


async def test_pause_and_unpause(client: httpx.AsyncClient, store: Filled) -> None:
    csrf = await token(client)
    page = (await client.get("/jobs", headers=OPERATOR)).text
    assert 'action="/jobs/nightly_backup/pause"' in page
    assert (await client.post("/jobs/nightly_backup/pause", data={"csrf": csrf})).status_code == 403
    got = await client.post("/jobs/nightly_backup/pause", data={"csrf": csrf}, headers=OPERATOR)
    assert got.status_code == 303
    page = (await client.get("/jobs", headers=OPERATOR)).text
    assert 'action="/jobs/nightly_backup/unpause"' in page
    assert "badge paused" in page
    got = await client.post("/jobs/nightly_backup/unpause", data={"csrf": csrf}, headers=OPERATOR)
    assert got.status_code == 303
    assert "badge paused" not in (await client.get("/jobs")).text
    missing = await client.post("/jobs/nope/pause", data={"csrf": csrf}, headers=OPERATOR)
    assert missing.status_code == 404


async def test_no_authorize_means_no_actions(store: Filled) -> None:
    app = monitor(store.url)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        csrf = await token(c)
        html = (await c.get(f"/runs/{store.ids['check']}", headers=OPERATOR)).text
        assert "/retry" not in html
        got = await c.post(
            f"/runs/{store.ids['check']}/retry", data={"csrf": csrf}, headers=OPERATOR
        )
        assert got.status_code == 403
