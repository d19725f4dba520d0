"""Embedding runlife in a host that is not async: a thread-based service.

The host is plain threads (here a pool of request handlers, as a WSGI server or a
Django view would be); it never sees an event loop. `runlife.Runtime` is the
blocking twin of `AsyncRuntime`: ``with Runtime(...)`` starts the runtime on a loop
in a thread of its own, and every verb (``submit``, ``wait``, ``get_run``,
``items``, ``cancel``, ``logs``...) blocks the calling thread until it is done, from
any number of threads at once. The job functions are plain functions too: they run
in the runtime's worker threads, their items through ``with ctx.item(key)``.

Run it with ``python examples/sync_host.py``. Real time (about a second), memory
store; use ``store="sqlite:///runs.db"`` to keep the runs.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import runlife
from runlife import Retry


@runlife.job(retry=Retry(max_attempts=2, delay=0.05))
def export_report(ctx: runlife.RunContext, customer: str, pages: int) -> str:
    for page in range(1, pages + 1):
        with ctx.item(f"page-{page}"):
            time.sleep(0.02)  # render the page
    if customer == "globex" and ctx.attempt == 1:
        raise ConnectionError("printer service unavailable")
    return f"{customer}-report.pdf"


@runlife.job
def slow_reindex(ctx: runlife.RunContext) -> None:
    while not ctx.cancelled:  # a thread is told through ctx.cancelled
        time.sleep(0.01)


def handle_request(rt: runlife.Runtime, customer: str, pages: int) -> str:
    """A request handler of the host: start the export, wait for it, answer."""
    run = rt.submit(export_report, {"customer": customer, "pages": pages})
    done = rt.wait(run.id, timeout=30)
    return (f"{customer}: {done.status} after {done.attempt} attempt(s), "
            f"{done.progress.succeeded} pages, {done.result}")  # fmt: skip


def main() -> None:
    with runlife.Runtime(jobs=[export_report, slow_reindex], store="memory://") as rt:
        with ThreadPoolExecutor(max_workers=3) as handlers:
            requests = [("acme", 5), ("globex", 3), ("initech", 4)]
            answers = handlers.map(lambda r: handle_request(rt, *r), requests)
            for answer in answers:
                print(answer)

        reindex = rt.submit(slow_reindex)
        time.sleep(0.2)
        stopped = rt.cancel(reindex.id, "maintenance window over", by="ops")
        assert stopped.error is not None
        # The run is CANCELLED at once; its thread ends at its next look at ctx.cancelled.
        print(f"slow_reindex: {stopped.status}, {stopped.error.message.split(';')[0]}")
        runs = rt.list_runs(job=export_report).runs
        (globex,) = [run for run in runs if run.params["customer"] == "globex"]
        first = globex.attempts[0]
        assert first.error is not None
        print(f"globex's attempt 1: {first.outcome}, {first.error.type}: {first.error.message}")


if __name__ == "__main__":
    main()
