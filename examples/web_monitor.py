"""The monitor page mounted in a host's own Starlette app, under /monitor.

The host's runtime runs its jobs; the monitor reads the same runtime, and lets
people whose request says they are operators cancel and retry. Here a client
calls the app in-process (no server): a real host runs it with uvicorn.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

import runlife
from runlife.web import monitor


@runlife.job(retry=runlife.Retry(max_attempts=2, delay=0))
def edge_health(ctx: runlife.RunContext) -> None:
    print("edge-sw-01: ok")
    print("ERROR edge-sw-03: Connection timed out after 30s", file=__import__("sys").stderr)
    raise ConnectionError("edge-sw-03: no route to host")


def operators_only(request: Request, action: str, target: str) -> bool:
    # A real host asks its own session or identity provider here.
    return request.headers.get("x-role") == "operator"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'runs.db'}"
        async with runlife.AsyncRuntime(jobs=[edge_health], store=url) as rt:
            mon = monitor(rt, authorize=operators_only, title="NOC monitor")
            app = Starlette(
                routes=[
                    Route("/", lambda r: PlainTextResponse("host home")),
                    Mount("/monitor", app=mon),
                ],
                lifespan=mon.lifespan,
            )
            run = await rt.wait((await rt.submit(edge_health)).id)
            async with mon.lifespan(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://host") as client:
                    page = await client.get("/monitor/?status=FAILED")
                    print("runs page:", page.status_code, "failed run listed:", run.id in page.text)
                    detail = await client.get(f"/monitor/runs/{run.id}?stream=stderr&search=ERROR")
                    print(
                        "run page:",
                        detail.status_code,
                        "links under /monitor:",
                        f'href="/monitor/runs/{run.id}/log.txt"' in detail.text,
                    )
                    log = await client.get(f"/monitor/runs/{run.id}/log.txt")
                    print("downloaded log has the error:", "ERROR edge-sw-03" in log.text)
                    token = client.cookies["runlife_csrf"]
                    retried = await client.post(
                        f"/monitor/runs/{run.id}/retry",
                        data={"csrf": token},
                        headers={"x-role": "operator"},
                    )
                    new_id = retried.headers["location"].rsplit("/", 1)[1]
                    print("retry:", retried.status_code, (await rt.get_run(new_id)).trigger)
                    refused = await client.post(
                        f"/monitor/runs/{run.id}/retry", data={"csrf": token}
                    )
                    print("retry without the operator role:", refused.status_code)


if __name__ == "__main__":
    anyio.run(main)
