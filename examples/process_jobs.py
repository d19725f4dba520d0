"""Jobs in child processes: a timeout that really stops pure CPU work.

``count_primes`` runs in a child process and sends its result back as JSON.
``spin`` never awaits, never sleeps and never looks at ``ctx.cancelled``: on the
event loop it would block everything, in a thread it could never be stopped. In a
child process its timeout ends it: the child gets SIGTERM at the deadline, and the
run ends once the child is gone.

The jobs are functions of this script, so each child imports the script (under
the name ``__mp_main__``, as multiprocessing does): its ``if __name__ ==
"__main__":`` block runs only here.

Run it with ``python examples/process_jobs.py``.
"""

from __future__ import annotations

import os
import time

import anyio

import runlife


@runlife.job(executor="process")
def count_primes(ctx: runlife.RunContext, below: int) -> dict[str, int]:
    sieve = bytearray([1]) * below
    sieve[:2] = b"\x00\x00"
    for n in range(2, int(below**0.5) + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytearray(len(range(n * n, below, n)))
    ctx.log.info("sieved", below=below, pid=os.getpid())
    return {"primes": sum(sieve), "pid": os.getpid()}


@runlife.job(executor="process", timeout=runlife.Timeout(attempt=1))
def spin(ctx: runlife.RunContext) -> None:
    while True:
        pass


async def main() -> None:
    async with runlife.AsyncRuntime(jobs=[count_primes, spin], store="memory://") as rt:
        counted = await rt.wait((await rt.submit(count_primes, params={"below": 100_000})).id)
        started = time.monotonic()
        stuck = await rt.wait((await rt.submit(spin)).id)
        took = time.monotonic() - started
    assert counted.result is not None
    assert counted.result["pid"] != os.getpid()
    print(f"count_primes: {counted.status}, {counted.result['primes']} primes below 100000")
    assert stuck.error is not None
    print(f"spin: {stuck.status} ({stuck.error.kind}): {stuck.error.message}")
    print(f"spin was stopped {took:.1f} s after its submit")


if __name__ == "__main__":
    anyio.run(main)
