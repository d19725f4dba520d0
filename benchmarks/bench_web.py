"""The monitor page at scale: server time of its pages over 1,000,000 runs in SQLite.

Server time: each request goes straight through the ASGI app (no HTTP client).

1. The runs page with a filter (status and label), a page of 50, summary cards included.
2. A 500-line page of a 1,000,000-line log (``/runs/{id}/log``).
3. Live clients: store reads of events in a few poll intervals with 1 and with 50
   clients connected (one reader feeds them all).

The fixtures are the SQLite benchmark's (written straight into fresh files).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import anyio
import httpx

from benchmarks._harness import Report
from benchmarks.bench_sqlite import _build_log, _build_runs
from runlife.web import Monitor, monitor

RUNS_TARGET_MS = 50.0
LOG_TARGET_MS = 20.0
POLL = 0.2


async def _served(app: Monitor, path: str) -> tuple[int, bytes]:
    """One GET straight through the ASGI app: the server's time, no client's."""
    target, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": target, "raw_path": target.encode(), "root_path": "",
        "query_string": query.encode(), "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 1), "server": ("bench", 80),
    }  # fmt: skip
    status, body = 0, []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])  # type: ignore[call-overload]
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))  # type: ignore[arg-type]

    await app(scope, receive, send)  # type: ignore[arg-type]
    return status, b"".join(body)


async def _median_ms(app: Monitor, path: str, repeat: int = 21) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        status, body = await _served(app, path)
        times.append(time.perf_counter() - start)
        assert status == 200, (path, status, body[:300])
    times.sort()
    return times[len(times) // 2] * 1000


async def _pages(runs_db: Path, log_db: Path, run_id: str) -> tuple[float, float, float]:
    app = monitor(f"sqlite:///{runs_db}")
    path = "/?status=FAILED&label=site=dc3"
    async with app.lifespan():
        # The summary cards are counted by a task of the monitor; the first page
        # of a range waits for them at most a second. Time that count, then pages.
        start = time.perf_counter()
        while b"counted" not in (await _served(app, path))[1]:
            await anyio.sleep(0.05)
        t_count = time.perf_counter() - start
        t_runs = await _median_ms(app, path)
    app = monitor(f"sqlite:///{log_db}")
    async with app.lifespan():
        t_log = await _median_ms(app, f"/runs/{run_id}/log?after=250000")
    return t_runs, t_log, t_count


async def _clients(db: Path) -> tuple[int, int]:
    app = monitor(f"sqlite:///{db}", poll=POLL)
    app.stream_lifetime = 10 * POLL
    async with app.lifespan():
        assert app.runtime is not None
        store = app.runtime.store
        read = store.events
        calls = 0

        async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            return await read(*args, **kwargs)

        store.events = counted  # type: ignore[method-assign]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
            counts = []
            for n in (1, 50):
                calls = 0
                async with anyio.create_task_group() as tg:
                    for _ in range(n):
                        tg.start_soon(c.get, "/events")
                counts.append(calls)
    return counts[0], counts[1]


def run(report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="runlife-bench-web-") as tmp:
        root = Path(tmp)
        _build_runs(root / "runs.db")
        run_id, search_id = (
            "01900000-0000-7000-8000-00000000000a",
            "01900000-0000-7000-8000-00000000000b",
        )
        _build_log(root / "log.db", run_id, search_id)
        t_runs, t_log, t_count = anyio.run(_pages, root / "runs.db", root / "log.db", run_id)
        report.figure(
            "runs page, status + label filter, 50 of 1,000,000 runs (median)",
            t_runs, "ms", target=f"<= {RUNS_TARGET_MS:g} ms", ok=t_runs <= RUNS_TARGET_MS,
        )  # fmt: skip
        report.figure(
            "  the summary cards' first count (a task of the monitor)",
            t_count, "s", target="reference: pages show the last count meanwhile", ok=True,
        )  # fmt: skip
        report.figure(
            "500-line page of a 1,000,000-line log (median)",
            t_log, "ms", target=f"<= {LOG_TARGET_MS:g} ms", ok=t_log <= LOG_TARGET_MS,
        )  # fmt: skip
        alone, many = anyio.run(_clients, root / "runs.db")
        report.figure(
            f"store event reads in {10 * POLL:g} s: 50 live clients beside 1 ({alone})",
            many, "reads", target=f"<= {alone + 1} (one reader)", ok=many <= alone + 1,
        )  # fmt: skip
