"""A real browser (Chromium, through Playwright) against ``runlife serve``.

It fails, never skips, when the browser cannot start: ``.ci/setup.sh dev``
installs Debian's chromium and Playwright.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from playwright.sync_api import ConsoleMessage, sync_playwright

import runlife

pytestmark = pytest.mark.slow

ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@runlife.job(name="edge_health")
def edge_health(ctx: runlife.RunContext) -> None:
    print("edge-sw-01: ok")
    for n in range(3):
        print(f"ERROR edge-sw-03: attempt {n} timed out", file=sys.stderr)
    raise RuntimeError("edge-sw-03: no route to host")


@runlife.job(name="nightly_backup")
def nightly_backup(ctx: runlife.RunContext) -> str:
    print("all saved")
    return "ok"


@runlife.job(name="stream_config")
async def stream_config(ctx: runlife.RunContext, lines: int = 12) -> None:
    for n in range(lines):
        ctx.log.info(f"pushing block {n}")
        await anyio.sleep(0.4)


@runlife.job(name="Generate_Invoice")
def generate_invoice(ctx: runlife.RunContext) -> None:
    raise RuntimeError("no invoice")


@runlife.job(name="Send_Email_Invoice")
def send_email(ctx: runlife.RunContext) -> None:
    return None


BILLING = runlife.Workflow("billing", {generate_invoice: [], send_email: [generate_invoice]})


@runlife.job(name="long_sync")
async def long_sync(ctx: runlife.RunContext) -> None:
    await anyio.sleep(3600)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, runlife.Runtime]]:
    """``runlife serve --allow-actions`` over a SQLite store that a runtime of this
    process fills and keeps working on."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    jobs = [edge_health, nightly_backup, stream_config, long_sync]
    with runlife.Runtime(jobs=jobs, workflows=[BILLING], store=url, poll=0.2, grace=0.5) as rt:
        rt.wait(rt.submit(BILLING).id, timeout=30)
        rt.wait(rt.submit(nightly_backup).id, timeout=30)
        rt.wait(rt.submit(edge_health).id, timeout=30)
        port = _free_port()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runlife",
                "serve",
                "--store",
                url,
                "--port",
                str(port),
                "--allow-actions",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            "runlife serve did not start: "
                            + (server.stdout.read() if server.stdout else "")
                        ) from None
                    time.sleep(0.1)
            yield f"http://127.0.0.1:{port}", rt
        finally:
            server.terminate()
            out, _ = server.communicate(timeout=10)
            assert "listening on 127.0.0.1 only" in out
            assert "Traceback" not in out, out


def test_an_operator_in_a_browser(served: tuple[str, runlife.Runtime], tmp_path: Path) -> None:
    base, rt = served
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        try:
            page = browser.new_page(accept_downloads=True)
            page.on("console", console)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            shot = lambda name: page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)  # noqa: E731

            page.goto(base + "/")
            page.wait_for_selector("#live[data-state=live]")
            shot("runs")
            page.select_option("select[name=status]", "FAILED")
            page.click(".filters button[type=submit]")
            page.wait_for_url("**status=FAILED**")
            page.fill("input[name=job]", "edge_health")
            page.click(".filters button[type=submit]")
            page.wait_for_url("**job=edge_health**")
            assert page.locator("#runs tbody tr").count() == 1
            assert page.locator("#runs tbody tr .status .badge").inner_text() == "FAILED"
            page.click("#runs tbody tr td.job a")
            page.wait_for_selector(".timeline")
            stands = page.locator(".timeline .tl").evaluate_all(
                "els => els.map(e => [e.querySelector('.state').textContent, e.dataset.stand])"
            )
            assert stands == [
                ["PENDING", "done"],
                ["QUEUED", "done"],
                ["RUNNING", "done"],
                ["FAILED", "failed"],
            ]
            shot("failed-run")

            page.click("#tab-stderr")
            page.wait_for_url("**stream=stderr**")
            assert page.locator("#lines .line").count() == 3
            page.fill("#search", "ERROR")
            page.press("#search", "Enter")
            page.wait_for_selector("#counter:has-text('1/3')")
            page.click("#next")
            assert page.inner_text("#counter") == "2/3"
            page.click("#next")
            page.click("#next")
            assert page.inner_text("#counter") == "1/3"
            page.click("#prev")
            assert page.inner_text("#counter") == "3/3"
            assert page.locator("mark.hit.current").count() == 1
            shot("search")

            with page.expect_download() as download:
                page.click("#download")
            text = Path(download.value.path()).read_text()
            assert text.count("ERROR edge-sw-03") == 3
            assert "edge-sw-01: ok" in text

            # the workflow's graph: zoom, recenter, a node leads to its run
            workflow = rt.list_runs(job="billing").runs[0]
            page.goto(f"{base}/runs/{workflow.id}/graph")
            whole = page.get_attribute("#graph", "viewBox")
            assert page.locator(".node.mark-failed").count() == 1
            assert page.locator(".node.mark-blocked").count() == 1
            page.click("#zoom-in")
            assert page.get_attribute("#graph", "viewBox") != whole
            page.click("#recenter")
            assert page.get_attribute("#graph", "viewBox") == whole
            shot("graph")
            page.click("a.node[data-node=Generate_Invoice]")
            page.wait_for_selector(".details h1 .job:has-text('Generate_Invoice')")

            # a live run's log, followed while its lines arrive
            live = rt.submit(stream_config)
            page.goto(f"{base}/runs/{live.id}")
            page.wait_for_selector("#live[data-state=live]")
            # (the page's CSP forbids eval: wait on elements, not on expressions)
            page.locator("#lines .line").nth(2).wait_for(timeout=20_000)
            first = page.locator("#lines .line").count()
            page.locator("#lines .line").nth(11).wait_for(timeout=30_000)
            assert first < 12
            assert page.locator("#lines .line").last.inner_text().endswith("pushing block 11")
            page.wait_for_selector("#live-part[data-status=SUCCEEDED]", timeout=20_000)
            shot("followed")

            # cancel a running run and watch it turn CANCELLED without a reload
            running = rt.submit(long_sync)
            deadline = time.monotonic() + 20
            while rt.get_run(running.id).status is not runlife.Status.RUNNING:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            page.goto(f"{base}/runs/{running.id}")
            page.wait_for_selector("#live[data-state=live]")
            page.evaluate("window.__same_page = true")
            page.click("button.action-cancel")
            page.wait_for_selector(".details .badge[data-status=CANCELLED]", timeout=20_000)
            assert page.evaluate("window.__same_page") is True
            shot("cancelled")
            assert rt.get_run(running.id).status is runlife.Status.CANCELLED

            # the read-only pages without JavaScript
            plain = browser.new_context(java_script_enabled=False).new_page()
            plain.goto(base + "/?status=FAILED&job=edge_health")
            assert plain.locator("#runs tbody tr").count() == 1
            plain.click("#runs tbody tr td.job a")
            assert plain.locator(".timeline .tl").count() == 4
            plain.click("#tab-stderr")
            assert plain.locator("#lines .line").count() == 3
            plain.goto(base + "/jobs")
            assert plain.locator("#jobs tbody tr").count() == 7  # four jobs, a workflow of two
            plain.screenshot(path=str(tmp_path / "no-js.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
