"""runlife.hooks.webhook: a failed run (or one that succeeded with warnings) is
POSTed as JSON to an HTTP endpoint, with retries and a timeout; an endpoint that
fails or hangs is logged and never changes a run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

import runlife
import runlife.hooks
from runlife import AsyncRuntime, InvalidPolicy, RunContext, Status

pytestmark = pytest.mark.anyio


class Endpoint:
    """A local HTTP server in a thread: records each POST, and answers each with the
    next of *answers* (a status, or ``"hang"``: no answer until the test ends)."""

    def __init__(self, answers: list[int | str]) -> None:
        self.answers = answers
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.release = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                endpoint.bodies.append(json.loads(self.rfile.read(length)))
                endpoint.headers.append(dict(self.headers))
                answer = endpoint.answers.pop(0) if endpoint.answers else 200
                if answer == "hang":
                    endpoint.release.wait(10)
                    return
                assert isinstance(answer, int)
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/ops"


@contextmanager
def serving(answers: list[int | str]) -> Iterator[Endpoint]:
    endpoint = Endpoint(answers)
    thread = threading.Thread(target=endpoint.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        endpoint.release.set()
        endpoint.server.shutdown()
        endpoint.server.server_close()
        thread.join(5)


@runlife.job
async def backup(ctx: RunContext, site: str) -> None:
    raise ConnectionRefusedError(f"no route to {site}")


@runlife.job
async def report(ctx: RunContext) -> str:
    ctx.log.warning("dashboard stale", dashboard="capacity")
    return "sent"


@runlife.job
async def fine(ctx: RunContext) -> str:
    return "ok"


async def test_a_failed_run_and_a_warned_one_are_posted_with_what_an_escalation_needs() -> None:
    with serving([]) as endpoint, anyio.fail_after(20):
        hook = runlife.hooks.webhook(endpoint.url, headers={"Authorization": "Bearer t0ken"})
        async with AsyncRuntime(
            jobs=[backup, report, fine], store="memory://", hooks=[hook], worker_id="w1"
        ) as rt:
            failed = await rt.wait(
                (await rt.submit(backup, {"site": "dc1"}, labels={"site": "dc1"})).id
            )
            warned = await rt.wait((await rt.submit(report)).id)
            await rt.wait((await rt.submit(fine)).id)
        # Leaving the runtime delivers the hooks' queue first.
    assert failed.error is not None
    assert failed.started_at is not None
    assert failed.ended_at is not None
    assert endpoint.bodies == [
        {
            "event": "failure",
            "run_id": failed.id,
            "job": "backup",
            "status": "FAILED",
            "error": {
                "kind": "error",
                "type": "ConnectionRefusedError",
                "message": "no route to dc1",
            },
            "labels": {"site": "dc1"},
            "created_at": failed.created_at.isoformat(),
            "started_at": failed.started_at.isoformat(),
            "ended_at": failed.ended_at.isoformat(),
            "attempts": 1,
            "worker": "w1",
            "warnings": [],
            "trigger": "ADHOC",
            "parent_id": None,
            "root_id": failed.root_id,
        },
        {
            **endpoint.bodies[1],
            "event": "warning",
            "run_id": warned.id,
            "job": "report",
            "status": "SUCCEEDED",
            "error": None,
            "warnings": ["attempt 1 logged 1 warning"],
        },
    ]
    assert endpoint.headers[0]["Authorization"] == "Bearer t0ken"
    assert endpoint.headers[0]["Content-Type"] == "application/json"


async def test_a_500_is_tried_again_and_the_second_try_lands() -> None:
    with serving([500, 200]) as endpoint, anyio.fail_after(20), capture_logs() as logs:
        hook = runlife.hooks.Webhook(endpoint.url, backoff=0.05)
        async with AsyncRuntime(jobs=[backup], store="memory://", hooks=[hook]) as rt:
            run = await rt.wait((await rt.submit(backup, {"site": "dc2"})).id)
    assert [b["run_id"] for b in endpoint.bodies] == [run.id, run.id]
    assert [entry for entry in logs if entry["event"] == "webhook failed"] == []


async def test_a_4xx_is_not_tried_again_and_is_logged() -> None:
    with serving([404]) as endpoint, anyio.fail_after(20), capture_logs() as logs:
        hook = runlife.hooks.Webhook(endpoint.url, backoff=0.05)
        async with AsyncRuntime(jobs=[backup], store="memory://", hooks=[hook]) as rt:
            run = await rt.wait((await rt.submit(backup, {"site": "dc2"})).id)
    assert len(endpoint.bodies) == 1
    failures = [entry for entry in logs if entry["event"] == "webhook failed"]
    assert [(f["run_id"], f["tries"], f["error"]) for f in failures] == [
        (run.id, 1, "HTTP 404 Not Found")
    ]


async def test_a_hanging_endpoint_is_cut_at_the_timeout_logged_and_the_run_is_unaffected() -> None:
    with serving(["hang", "hang"]) as endpoint, anyio.fail_after(20), capture_logs() as logs:
        hook = runlife.hooks.Webhook(endpoint.url, timeout=0.2, retries=1, backoff=0.05)
        async with AsyncRuntime(jobs=[backup, fine], store="memory://", hooks=[hook]) as rt:
            run = await rt.wait((await rt.submit(backup, {"site": "dc3"})).id)
            # The runtime goes on running runs while the hook waits.
            after = await rt.wait((await rt.submit(fine)).id)
            stored = await rt.get_run(run.id)
    assert len(endpoint.bodies) == 2
    failures = [entry for entry in logs if entry["event"] == "webhook failed"]
    assert len(failures) == 1
    assert failures[0]["run_id"] == run.id
    assert failures[0]["tries"] == 2
    assert "timed out" in failures[0]["error"]
    assert stored.status is Status.FAILED
    assert stored.version == run.version
    assert after.status is Status.SUCCEEDED


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"url": "ftp://example.net/x"}, "url"),
        ({"url": ""}, "url"),
        ({"url": "http://x", "timeout": 0}, "timeout"),
        ({"url": "http://x", "retries": -1}, "retries"),
        ({"url": "http://x", "headers": {"X": 1}}, "headers"),
    ],
)
def test_bad_arguments_are_refused_naming_them(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        runlife.hooks.webhook(**kwargs)
    assert caught.value.field == field
