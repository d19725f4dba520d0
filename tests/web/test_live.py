"""Live pages: one reader of the store feeds every client; reconnects miss nothing."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest

import runlife
from runlife.web import monitor
from runlife.web._hub import Hub, Message

pytestmark = pytest.mark.anyio


@runlife.job(name="chatty")
async def chatty(ctx: runlife.RunContext, lines: int = 5) -> None:
    for n in range(lines):
        ctx.log.info(f"line {n} <script>x</script>")
        await anyio.sleep(0.05)


def frames(body: str) -> list[dict[str, str]]:
    out = []
    for block in body.split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in block.splitlines()
            if ": " in line and not line.startswith(":")
        )
        if "data" in fields:
            out.append(fields)
    return out


async def test_events_stream_and_reconnect(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/live.db"
    async with runlife.AsyncRuntime(jobs=[chatty], store=url, poll=0.1) as rt:
        app = monitor(rt)
        app.stream_lifetime = 1.5
        async with (
            app.lifespan(),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            async with anyio.create_task_group() as tg:
                got: list[str] = []

                async def listen() -> None:
                    got.append((await c.get("/events")).text)

                tg.start_soon(listen)
                await anyio.sleep(0.2)
                run = await rt.submit(chatty, params={"lines": 2})
                await rt.wait(run.id, timeout=10)
            events = [
                json.loads(f["data"]) | {"id": f["id"]}
                for f in frames(got[0])
                if f.get("event") == "run"
            ]
            statuses = [e["status"] for e in events if e["kind"] == "transition"]
            assert statuses == ["QUEUED", "RUNNING", "SUCCEEDED"]
            assert all(
                f'id="run-{run.id}"' in e["row"] for e in events if e["kind"] == "transition"
            )
            assert {e["kind"] for e in events} <= {"transition", "item"}  # logs have their own feed
            assert all("<script>" not in e["row"] for e in events)
            # reconnecting with the first event's id gives the rest, once each
            again = (await c.get("/events", headers={"last-event-id": events[0]["id"]})).text
            replay = [f["id"] for f in frames(again) if f.get("event") == "run"]
            assert replay == [e["id"] for e in events[1:]]
            # the log stream of a finished run gives its lines, then ends
            log = (await c.get(f"/runs/{run.id}/log/stream")).text
            lines = [json.loads(f["data"]) for f in frames(log) if f.get("event") == "line"]
            assert [line["message"] for line in lines] == [
                "line 0 <script>x</script>",
                "line 1 <script>x</script>",
            ]
            assert "event: end" in log
            bad = await c.get("/events?after=abc")
            assert bad.status_code == 400


async def test_follow_a_live_log_while_lines_arrive(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/follow.db"
    async with runlife.AsyncRuntime(jobs=[chatty], store=url, poll=0.1) as rt:
        app = monitor(rt)
        async with (
            app.lifespan(),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            run = await rt.submit(chatty, params={"lines": 8})
            bodies = await _together(c, f"/runs/{run.id}/log/stream", 3)
            for body in bodies:
                seqs = [
                    json.loads(f["data"])["seq"] for f in frames(body) if f.get("event") == "line"
                ]
                assert seqs == list(range(1, 9))
            assert app.hub is not None
            assert not app.hub._tails


async def _together(c: httpx.AsyncClient, path: str, n: int) -> list[str]:
    out: list[str] = []

    async def one() -> None:
        out.append((await c.get(path)).text)

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return out


async def test_a_slow_subscriber_does_not_hold_back_the_others() -> None:
    async def describe(event: object) -> dict[str, object]:
        return {}

    hub = Hub(None, describe)  # type: ignore[arg-type]
    slow = hub.subscribe(None)
    fast = hub.subscribe(None)
    got = []
    for seq in range(1, 20_000):
        hub.publish(Message(seq, {"n": seq}))
        got.append((await fast.receive()).seq)
    assert got == list(range(1, 20_000))
    assert hub.subscribers == 1  # the slow one was dropped, not waited for
    # it reconnects from what it handled: too far behind the kept events, it is told to reload
    again = hub.subscribe(3)
    assert (await again.receive()).data == {"reset": True}
    recent = hub.subscribe(19_990)
    assert [(await recent.receive()).seq for _ in range(9)] == list(range(19_991, 20_000))
    for stream in (slow, fast, again, recent):
        hub.unsubscribe(stream)
    assert hub.subscribers == 0


async def test_many_live_clients_cost_one_store_reader(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/many.db"
    async with runlife.AsyncRuntime(jobs=[chatty], store=url, poll=0.2) as rt:
        calls = 0
        read = rt.store.events

        async def counted(*args: object, **kwargs: object) -> object:
            nonlocal calls
            calls += 1
            return await read(*args, **kwargs)  # type: ignore[arg-type]

        rt.store.events = counted  # type: ignore[method-assign]
        app = monitor(rt)
        app.stream_lifetime = 1.0
        async with (
            app.lifespan(),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            calls = 0
            await _together(c, "/events", 1)
            alone = calls
            calls = 0
            await _together(c, "/events", 50)
            many = calls
    assert many <= alone + 2, (alone, many)


async def test_a_page_connecting_late_gets_what_happened_since_it_was_read(
    tmp_path: object,
) -> None:
    url = f"sqlite:///{tmp_path}/late.db"
    async with runlife.AsyncRuntime(jobs=[chatty], store=url, poll=0.1) as rt:
        await rt.wait((await rt.submit(chatty, params={"lines": 0})).id, timeout=10)
        app = monitor(rt)
        app.stream_lifetime = 0.5
        async with app.lifespan():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                page = (await c.get("/")).text
                cursor = page.split('data-after="', 1)[1].split('"', 1)[0]
                assert cursor.isdigit()  # the store's events before the page was read
                run = await rt.submit(chatty, params={"lines": 0})
                await rt.wait(run.id, timeout=10)
                with anyio.fail_after(10):
                    while app.hub is None or app.hub.cursor == int(cursor):
                        await anyio.sleep(0.05)
                    await anyio.sleep(0.3)
                body = (await c.get(f"/events?after={cursor}")).text
    moves = [json.loads(f["data"])["status"] for f in frames(body) if f.get("event") == "run"]
    assert moves == ["QUEUED", "RUNNING", "SUCCEEDED"]
