"""Task runs with the host's own lifecycle, ADHOC runs, and a dependency graph.

The tasks walk IDLE -> ACTIVE -> TRIGGER -> STARTED -> RUNNING -> SUCCESS | FAILED |
TERMINATED: a custom `Lifecycle` whose states each map onto a canonical status, so
the runtime queues, claims, retries and cancels them as any run, while the store and
the operators read the host's own names. Generate_Invoice -> Send_Email_Invoice is a
`Workflow`: while the invoice runs, the graph says the email waits on it; when the
invoice fails, the email is skipped (TERMINATED here: the lifecycle has no skipped
state), naming why. One task is run ADHOC, from an
operator's console. Then the Task Runs table (lifecycle chain, trigger badge,
times), the failed run's log searched for "ERROR", and the log as a download.

Run it with ``python examples/task_runs.py``. Virtual time, memory store.
"""

from __future__ import annotations

from datetime import UTC, datetime

import anyio

import runlife
from runlife import Lifecycle, Status, Workflow
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

TASKS = Lifecycle(
    "tasks",
    {
        "IDLE": Status.PENDING,
        "ACTIVE": Status.PENDING,
        "TRIGGER": Status.QUEUED,
        "STARTED": Status.RUNNING,
        "RUNNING": Status.RUNNING,
        "SUCCESS": Status.SUCCEEDED,
        "FAILED": Status.FAILED,
        "TERMINATED": Status.CANCELLED,
    },
    {
        "IDLE": ["ACTIVE", "TERMINATED"],
        "ACTIVE": ["TRIGGER", "TERMINATED"],
        "TRIGGER": ["STARTED", "TERMINATED"],
        "STARTED": ["RUNNING", "FAILED", "TERMINATED"],
        "RUNNING": ["SUCCESS", "FAILED", "TERMINATED"],
    },
)
clock = VirtualClock(start=datetime(2026, 3, 10, 9, 0, tzinfo=UTC))


@runlife.job(name="Generate_Invoice", lifecycle=TASKS)
async def generate_invoice(ctx: runlife.RunContext, customer: str = "ACME") -> str:
    await ctx.set_state("RUNNING")  # the agent took it: STARTED -> RUNNING
    print(f"rendering invoice for {customer}")
    await clock.sleep(40)
    ctx.log.error("ERROR template 'invoice-v2' not found", customer=customer)
    raise FileNotFoundError("template 'invoice-v2' not found")


@runlife.job(name="Send_Email_Invoice", lifecycle=TASKS)
async def send_email_invoice(ctx: runlife.RunContext) -> None:
    await ctx.set_state("RUNNING")


@runlife.job(name="Rotate_Logs", lifecycle=TASKS)
async def rotate_logs(ctx: runlife.RunContext) -> None:
    await ctx.set_state("RUNNING")
    await clock.sleep(5)


billing = Workflow("billing", {generate_invoice: [], send_email_invoice: [generate_invoice]})


def chain(run: runlife.Run) -> str:
    """The lifecycle chain of a run, as the Task Runs page shows it."""
    return " -> ".join([run.history[0].from_, *(str(t.to) for t in run.history)])


async def main() -> None:
    store = MemoryStore(clock=clock)
    async with runlife.AsyncRuntime(
        jobs=[rotate_logs], workflows=[billing], store=store, clock=clock
    ) as rt:
        flow = await rt.submit(billing)
        await clock.sleep(10)
        graph = await rt.graph(flow.id)
        print(graph.explain("Send_Email_Invoice").text)
        await rt.wait(flow.id)
        print((await rt.graph(flow.id)).to_text())
        await rt.wait((await rt.submit(rotate_logs)).id)  # from the Adhoc Tasks console

        print(f"\n{'TASK':<20}{'TRIGGER':<10}{'STATE':<12}{'STARTED':<10}{'TOOK':<6}LIFECYCLE")
        for run in reversed((await rt.list_runs()).runs):
            if run.job == billing.name:
                continue
            badge = "[ADHOC]" if run.trigger == "ADHOC" else run.trigger.lower()
            started = f"{run.started_at:%H:%M:%S}" if run.started_at else "-"
            took = f"{run.duration.total_seconds():.0f}s" if run.duration else "-"
            print(f"{run.job:<20}{badge:<10}{run.state:<12}{started:<10}{took:<6}{chain(run)}")

        (email,) = (await rt.list_runs(job="Send_Email_Invoice")).runs
        print(f"\n{email.job} is {email.state}: {email.history[-1].reason}")
        print("  (this lifecycle has no state for SKIPPED: a skip ends the task TERMINATED)")

        (failed,) = (await rt.list_runs(job="Generate_Invoice", status=Status.FAILED)).runs
        print(f"\nWhy did {failed.job} fail? Its log, searched for ERROR:")
        for line in await rt.search_logs(failed.id, "ERROR"):
            print(f"  line {line.seq} [{line.stream}] {line.message}")
        download = await rt.export_logs(failed.id)
        print(f"Download ({len(download.splitlines())} lines of text), first line:")
        print(f"  {download.splitlines()[0]}")


if __name__ == "__main__":
    anyio.run(main)
