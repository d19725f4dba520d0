"""The monitor's pages over SQLite and PostgreSQL: what each shows, filters, errors."""

from __future__ import annotations

import re

import httpx
import pytest

import runlife

from .conftest import HOSTILE, JS_URL, SCRIPT, Filled

pytestmark = pytest.mark.anyio


def unescaped(html: str) -> list[str]:
    """Hostile strings that reached the page as markup."""
    return [bad for bad in (SCRIPT, HOSTILE, "<img src=x") if bad in html]


async def test_runs_page_shows_every_column(client: httpx.AsyncClient, store: Filled) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    html = page.text
    row = re.search(rf'<tr id="run-{store.ids["backup"]}".*?</tr>', html, re.S)
    assert row is not None
    cells = row.group(0)
    assert "nightly_backup" in cells
    assert "site=&lt;script&gt;alert(1)&lt;/script&gt;" in cells
    assert '<span class="badge adhoc">ADHOC</span>' in cells
    assert "<b>SUCCEEDED</b>" not in cells  # a terminal state is marked done, not current
    assert 'class="step step-done">SUCCEEDED' in cells
    assert "&#9888;" in cells  # succeeded with warnings: one item failed
    assert "3/3, 1 failed" in cells
    worker = re.search(r'<td class="worker mono">([^<]+)</td>', cells)
    assert worker is not None
    assert worker.group(1) not in ("", "-")  # the runtime whose claim started it
    assert f'href="/runs/{store.ids["backup"]}#log"' in cells
    # summary cards count by status, and stalled / past timeout
    assert re.search(
        r'<span class="n">3</span> FAILED', html
    )  # the check, the invoice, its workflow
    assert "stalled" in html
    assert "past timeout" in html
    assert not unescaped(html)
    assert 'data-state="connecting"' in html  # live by default


async def test_runs_filters(client: httpx.AsyncClient, store: Filled) -> None:
    failed = (await client.get("/?status=FAILED")).text
    assert store.ids["check"] in failed
    assert store.ids["backup"] not in failed
    by_job = (await client.get("/", params={"job": "nightly_backup"})).text
    assert store.ids["backup"] in by_job
    assert store.ids["check"] not in by_job
    by_label = (await client.get("/?label=site=dc1")).text
    assert store.ids["check"] in by_label
    assert store.ids["backup"] not in by_label
    scheduled = (await client.get("/?trigger=SCHEDULED")).text
    assert "No runs match." in scheduled
    text = (await client.get("/", params={"q": "Generate"})).text
    assert "Generate_Invoice" in text
    assert store.ids["backup"] not in text
    for span in ("6h", "12h", "24h", "3d", "7d"):
        assert store.ids["backup"] in (await client.get(f"/?range={span}")).text
    old = await client.get("/?range=custom&since=2001-01-01T00:00&until=2001-01-02T00:00")
    assert "No runs match." in old.text
    calm = (await client.get("/?mode=calm")).text
    assert 'id="refresh"' in calm
    assert 'id="live"' not in calm


async def test_runs_pagination_by_cursor(client: httpx.AsyncClient, store: Filled) -> None:
    first = (await client.get("/")).text
    assert 'id="older"' not in first  # fewer than a page
    bad = await client.get("/?cursor=garbage")
    assert bad.status_code == 400
    assert "cursor" in bad.text
    assert "Traceback" not in bad.text


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("status=DONE", "status"),
        ("trigger=CRON", "trigger"),
        ("range=2w", "range"),
        ("label=nokey", "label"),
        ("range=custom&since=yesterday", "since"),
        ("mode=fast", "mode"),
        ("colour=red", "colour"),
    ],
)
async def test_a_bad_filter_is_a_400_naming_it(
    client: httpx.AsyncClient, query: str, named: str
) -> None:
    page = await client.get(f"/?{query}")
    assert page.status_code == 400
    assert f"{named}=" in page.text
    assert "Traceback" not in page.text


async def test_unknown_run_is_404(client: httpx.AsyncClient) -> None:
    for path in ("/runs/nope", "/runs/nope/log.txt", "/runs/nope/graph", "/runs/nope/live"):
        page = await client.get(path)
        assert page.status_code == 404, path
        assert "nope" in page.text
        assert "Traceback" not in page.text


async def test_failed_run_detail(client: httpx.AsyncClient, store: Filled) -> None:
    html = (await client.get(f"/runs/{store.ids['check']}")).text
    assert not unescaped(html)
    assert "RuntimeError" in html
    assert "no route to host" in html
    # the timeline: done states, the failed one red, none current
    stands = re.findall(
        r'class="tl tl-(\w+)[^"]*" data-stand="\w+"><span class="dot"[^>]*></span>'
        r'<span class="state">(\w+)',
        html,
    )
    assert stands == [
        ("done", "PENDING"),
        ("done", "QUEUED"),
        ("done", "RUNNING"),
        ("failed", "FAILED"),
    ]
    assert "Attempts" in html
    assert "edge-sw-03" in html
    # the log viewer: tabs with counts, stderr, search
    assert re.search(r'id="tab-stderr"[^>]*>stderr <span class="count">3</span>', html)
    assert re.search(r'id="tab-stdout"[^>]*>stdout <span class="count">1</span>', html)
    stderr = (await client.get(f"/runs/{store.ids['check']}?stream=stderr&search=ERROR")).text
    assert "edge-sw-01: ok" not in stderr
    assert (
        stderr.count('<mark class="hit">ERROR</mark>') == 6
    )  # three lines, and the list of matches
    assert "3 matches" in stderr
    assert 'href="/runs/' in stderr
    assert "/log.txt" in stderr


async def test_succeeded_run_detail_items_and_values(
    client: httpx.AsyncClient, store: Filled
) -> None:
    html = (await client.get(f"/runs/{store.ids['backup']}")).text
    assert not unescaped(html)
    failed_items = html.index("failed-items")
    assert failed_items < html.index("bad-rtr-02", failed_items) < html.index("<h3>All items")
    assert "Warnings" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html  # the hostile item key
    assert "core-rtr-01" in html
    assert '"devices"' not in html
    assert JS_URL in html
    assert f'href="{JS_URL}' not in html


async def test_values_are_shown_when_opted_in(store: Filled) -> None:
    from runlife.web import monitor

    app = monitor(store.url, show_values=True)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        html = (await c.get(f"/runs/{store.ids['backup']}")).text
    assert "&#34;devices&#34;" in html
    assert "&lt;script&gt;" not in html.split("Params")[0][-10:]


async def test_log_download_is_the_export(client: httpx.AsyncClient, store: Filled) -> None:
    got = await client.get(f"/runs/{store.ids['check']}/log.txt")
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/plain")
    assert "attachment" in got.headers["content-disposition"]
    assert got.text.count("ERROR") == 3
    assert "edge-sw-01: ok" in got.text


async def test_log_pages_of_500(client: httpx.AsyncClient, store: Filled) -> None:
    html = (await client.get(f"/runs/{store.ids['check']}?after=2")).text
    assert html.count('class="line ') == 2  # lines 3 and 4
    bad = await client.get(f"/runs/{store.ids['check']}?stream=sideways")
    assert bad.status_code == 400
    assert "stream=" in bad.text


async def test_jobs_page(client: httpx.AsyncClient, store: Filled) -> None:
    html = (await client.get("/jobs")).text
    assert "nightly_backup" in html
    assert "0 2 * * *" in html
    assert 'class="badge workflow"' in html
    assert not unescaped(html)
    assert "/pause" not in html  # no actions without the operator header


async def test_workflow_graph(client: httpx.AsyncClient, store: Filled) -> None:
    html = (await client.get(f"/runs/{store.ids['workflow']}/graph")).text
    assert "<svg" in html
    assert 'data-node="Generate_Invoice"' in html
    assert "node-failed mark-failed" in html
    assert "node-skipped mark-blocked" in html  # held back by its failed upstream
    assert 'id="recenter"' in html
    assert "Why is it not running" in html
    not_workflow = await client.get(f"/runs/{store.ids['check']}/graph")
    assert not_workflow.status_code == 400


@pytest.mark.postgres
async def test_no_page_shows_the_store_password(postgres_dsn: str) -> None:
    from runlife.web import monitor

    url = postgres_dsn.replace("runlife@", "runlife:s3cret-pw@", 1)  # trust auth ignores it
    assert "s3cret-pw" in url
    app = monitor(url)
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            for path in (
                "/",
                "/jobs",
                "/runs/x",
                "/?status=BAD",
                "/runs/x/log.txt",
                "/events?after=x",
            ):
                text = (await c.get(path)).text
                assert "s3cret" not in text
                assert "postgresql://" not in text


async def test_monitor_refuses_what_it_cannot_use() -> None:
    import runlife
    from runlife.web import monitor

    with pytest.raises(runlife.InvalidValue) as bad:
        monitor(runlife.Runtime(store="memory://"))  # not started: it is only looked at
    assert "store URL" in str(bad.value)
    with pytest.raises(runlife.InvalidValue, match="store_or_runtime"):
        monitor(42)  # type: ignore[arg-type]
    with pytest.raises(runlife.InvalidValue, match="base_path"):
        monitor("memory://", base_path="monitor/")


@runlife.job(name="mop")
async def mop(ctx: runlife.RunContext) -> None:
    for phase, count in (("pre-check", 30), ("change", 30)):
        for n in range(count):
            async with ctx.item(f"{phase}-{n:02d}", phase=phase) as item:
                if phase == "change" and n == 29:
                    raise RuntimeError("port busy")
                item.output = n


async def test_items_by_phase_failed_first_and_paged(tmp_path: object) -> None:
    from runlife.web import monitor

    async with runlife.AsyncRuntime(jobs=[mop], store=f"sqlite:///{tmp_path}/mop.db") as rt:
        run = await rt.wait((await rt.submit(mop)).id, timeout=30)
        app = monitor(rt)
        async with app.lifespan():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                first = (await c.get(f"/runs/{run.id}")).text
                failed = first.index("failed-items")
                assert failed < first.index("change-29", failed) < first.index("<h3>Pre-check")
                assert "<h3>Pre-check</h3>" in first
                assert "<h3>Change</h3>" in first
                assert "standby" in first  # the rollback phase was never used
                assert "change-20" not in first  # beyond the first 50 items
                more = re.search(r'href="\?items_after=([^"#]+)#items"', first)
                assert more is not None
                assert more.group(1) == "change-19"
                second = (await c.get(f"/runs/{run.id}?items_after={more.group(1)}")).text
                assert "change-20" in second
                assert "pre-check-00" not in second
                assert "items_after=" not in second


async def test_stalled_and_overdue_runs_are_named_on_the_runs_page(
    client: httpx.AsyncClient, store: Filled, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from runlife import Deadline, Overdue, Summary
    from runlife.web import Monitor

    rt = runlife.AsyncRuntime(store=store.url, serve=False)
    async with rt:
        stalled = await rt.get_run(store.ids["check"])
        late = await rt.get_run(store.ids["backup"])
    now = datetime.now(UTC)
    deadline = Deadline(kind="run", at=now - timedelta(minutes=3), limit=timedelta(minutes=5))
    summary = Summary(at=now, stalled=(stalled,), overdue=(Overdue(run=late, deadline=deadline),))

    async def fake(self: Monitor, wanted: object) -> tuple[Summary, datetime]:
        return summary, now

    monkeypatch.setattr(Monitor, "_summary", fake)
    page = (await client.get("/")).text
    attention = page.split('class="attention"', 1)[1].split("</ul>", 1)[0]
    assert f'href="/runs/{stalled.id}"' in attention
    assert "past its run limit of 5m" in attention
    assert f'href="/runs/{late.id}"' in attention
    assert re.search(r'<span class="n">1</span> stalled', page)


async def test_without_its_lifespan_the_monitor_says_what_is_missing(store: Filled) -> None:
    from runlife.web import monitor

    app = monitor(store.url)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        page = await c.get("/")
        assert page.status_code == 503
        assert "lifespan" in page.text
        for _ in range(2):  # it opens the store again each time its lifespan runs
            async with app.lifespan():
                assert (await c.get("/")).status_code == 200
            assert (await c.get("/")).status_code == 503
