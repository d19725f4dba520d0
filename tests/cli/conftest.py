"""The ``runlife`` command's tests: stores filled by a real runtime, on SQLite and
PostgreSQL, and the helpers that run the command through ``main(argv)`` or as a
separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import anyio
import attrs
import pytest

import runlife
from runlife import AsyncRuntime, Cron, Retry, RunContext, Status, Workflow
from runlife.cli import main


@runlife.job(schedule=Cron("0 2 * * *"), labels={"kind": "backup"})
async def nightly_backup(ctx: RunContext, devices: tuple[str, ...] = ()) -> dict[str, int]:
    for device in devices:
        async with ctx.item(device, phase="backup") as item:
            item.log.info("backing up", host=device)
            if device == "edge-sw-03":
                raise ConnectionError("Connection timed out after 30s - no route to host")
            item.output = {"bytes": 24_832}
    print("backup done")
    return {"devices": len(devices)}


@runlife.job(retry=Retry(max_attempts=2, delay=0))
async def edge_backup(ctx: RunContext) -> None:
    ctx.log.error("device did not answer", attempt=ctx.attempt)
    raise TimeoutError("device did not answer")


@runlife.job
async def chatty(ctx: RunContext) -> None:
    for n in range(1, 601):
        print(f"line {n}")


@runlife.job(name="Generate_Invoice")
async def generate_invoice(ctx: RunContext) -> str:
    return "invoice"


@runlife.job(name="Send_Email_Invoice")
async def send_email_invoice(ctx: RunContext) -> str:
    return "sent"


BILLING = Workflow("billing", {generate_invoice: [], send_email_invoice: [generate_invoice]})
JOBS = [nightly_backup, edge_backup, chatty]


@attrs.frozen
class Filled:
    """A store filled by `fill`, and the ids of its runs by name."""

    url: str
    ids: dict[str, str]


async def fill(url: str) -> Filled:
    """Run a small night of work into the store at *url* with a real runtime."""
    ids: dict[str, str] = {}
    async with AsyncRuntime(jobs=JOBS, workflows=[BILLING], store=url, poll=0.2) as rt:
        backup = await rt.submit(
            nightly_backup,
            {"devices": ["core-rtr-01", "edge-sw-03", "dist-sw-01"]},
            labels={"site": "dc1"},
        )
        failed = await rt.submit(edge_backup, labels={"site": "branch2"})
        loud = await rt.submit(chatty)
        flow = await rt.submit(BILLING)
        for name, run in (("backup", backup), ("failed", failed), ("chatty", loud)):
            ids[name] = (await rt.wait(run.id, timeout=30)).id
        ids["workflow"] = (await rt.wait(flow.id, timeout=30)).id
    async with AsyncRuntime(store=url, serve=False) as ops:
        # Waits in QUEUED: no runtime runs it now.
        ids["queued"] = (await ops.submit("chatty", labels={"site": "dc1"})).id
    return Filled(url=url, ids=ids)


@pytest.fixture(scope="module")
def sqlite_filled(tmp_path_factory: pytest.TempPathFactory) -> Filled:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'runs.db'}"
    return anyio.run(fill, url)


@attrs.frozen
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """``run_cli(*argv, columns=80, FORCE_COLOR="1")``: the command through
    ``main(argv)``, its exit status and what it wrote, at a terminal width of
    *columns*, with ``FORCE_COLOR`` and ``NO_COLOR`` only as given."""

    def call(*argv: str, columns: int = 80, **env: str) -> Result:
        monkeypatch.setenv("COLUMNS", str(columns))
        for name in ("FORCE_COLOR", "NO_COLOR"):
            if name in env:
                monkeypatch.setenv(name, env[name])
            else:
                monkeypatch.delenv(name, raising=False)
        capsys.readouterr()
        code = main(list(argv))
        done = capsys.readouterr()
        return Result(code, done.out, done.err)

    return call


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a ``runlife`` child process: this process's import path."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.update(extra)
    return env


def runlife_process(*argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``python -m runlife ARGV`` in a process of its own."""
    kwargs.setdefault("env", child_env())
    return subprocess.run(
        [sys.executable, "-m", "runlife", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        **kwargs,
    )


__all__ = ["Filled", "Result", "Status", "child_env", "fill", "runlife_process"]
