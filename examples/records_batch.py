"""A batch over many records, with a plan limit: is the run moving, how long is it
taking, and which records failed?

A campaign job sends a welcome message to each of 250 contacts, as items of its
run (``ctx.map``, eight at a time); contacts whose phone number is invalid fail,
and the run goes on. The plan allows 2 runs a month (`Quota`): the third start is
refused with the plan limit, saying when it frees up. Read from the store: the
runs (progress, status, duration), a page of records, the failed records.
A completed run can still contain failed records: look at the counts, not only
the status.

Run it with ``python examples/records_batch.py``. Virtual time, memory store.
"""

from __future__ import annotations

from datetime import UTC, datetime

import anyio

import runlife
from runlife import Limits, Quota, QuotaExceeded, Status
from runlife.stores import MemoryStore
from runlife.testing import VirtualClock

clock = VirtualClock(start=datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
CONTACTS = [f"contact-{n:03d}" for n in range(1, 251)]
INVALID = {"contact-017", "contact-088", "contact-123", "contact-201"}


@runlife.job(limits=Limits(quota=Quota(max_runs=2, per="month")))
async def welcome_campaign(ctx: runlife.RunContext, contacts: list[str]) -> dict[str, int]:
    async def send(contact: str) -> dict[str, str]:
        await clock.sleep(2.5)  # the messaging provider's answer
        if contact in INVALID:
            raise ValueError(f"invalid phone number for {contact}")
        return {"message": "delivered"}

    sent = await ctx.map(send, contacts, concurrency=8)
    return {"delivered": len(sent)}


def counts(run: runlife.Run) -> str:
    p = run.progress
    return f"{p.succeeded + p.failed}/{p.total} done, {p.failed} failed"


async def main() -> None:
    store = MemoryStore(clock=clock)
    async with runlife.AsyncRuntime(jobs=[welcome_campaign], store=store, clock=clock) as rt:
        run = await rt.submit(welcome_campaign, {"contacts": CONTACTS})
        await clock.sleep(30)
        moving = await rt.get_run(run.id)
        print(f"After 30 s: {moving.status}, {counts(moving)}")
        run = await rt.wait(run.id)
        print(f"Ended: {run.status} in {run.duration}, {counts(run)}")
        print(f"  warning: {run.warnings[0]}")

        print("\nRecords, page 1 of the run (10 per page):")
        page = await rt.items(run.id, limit=10)
        for item in page[:3]:
            print(f"  {item.key}  {item.status}  {item.output}")
        print(f"  ... next page after {page[-1].key}")

        print("\nFailed records:")
        for item in await rt.items(run.id, status=Status.FAILED):
            assert item.error is not None
            print(f"  {item.key}  {item.error.type}: {item.error.message}")

        await rt.wait((await rt.submit(welcome_campaign, {"contacts": CONTACTS[:10]})).id)
        try:
            await rt.submit(welcome_campaign, {"contacts": CONTACTS[:10]})
        except QuotaExceeded as limit:
            print(f"\nPLAN_LIMIT on start: {limit}")


if __name__ == "__main__":
    anyio.run(main)
