"""``runlife cancel``, ``retry``, ``rerun``, ``resume`` and ``signal``."""

from __future__ import annotations

from typing import Any

from runlife._cli import args as values
from runlife._cli.app import Command, Context, common
from runlife._core.run import Run

__all__ = ("add",)

_AGAIN = {
    "retry": "try a FAILED or CANCELLED run again, now, as a new run (trigger RETRY)",
    "rerun": "run a finished run again from scratch, as a new run (trigger RERUN)",
    "resume": "resume a FAILED or CANCELLED run as a new run that skips what succeeded "
    "(trigger RESUME)",
}


def add(commands: Any) -> None:
    """Add the action commands to the parser."""
    cancel = commands.add_parser(
        "cancel",
        help="cancel a run, whichever process holds it",
        description="Cancel a run. A PENDING, QUEUED, RETRYING or WAITING run ends "
        "CANCELLED at once; a RUNNING run gets a stored cancel request that the process "
        "holding it honours within one heartbeat. The command waits for the end "
        "(--wait seconds, 60 by default; 0: do not wait).",
    )
    common(cancel)
    cancel.add_argument("run", metavar="RUN", help="the run's id")
    cancel.add_argument("--reason", help="why (recorded with the run)")
    cancel.add_argument(
        "--wait", type=float, default=60.0, metavar="SECONDS", help="how long to wait (60)"
    )
    cancel.set_defaults(cmd=Command(handler=_cancel))
    for verb, text in _AGAIN.items():
        parser = commands.add_parser(verb, help=text, description=text[0].upper() + text[1:] + ".")
        common(parser)
        parser.add_argument("run", metavar="RUN", help="the run's id")
        parser.set_defaults(cmd=Command(handler=_again), verb=verb)
    signal = commands.add_parser(
        "signal",
        help="send a signal to a run (wakes a run WAITING for it)",
        description="Send signal NAME to a run, with a JSON payload: a run WAITING for it "
        "resumes; a later wait for it returns at once.",
    )
    common(signal)
    signal.add_argument("run", metavar="RUN", help="the run's id")
    signal.add_argument("name", metavar="NAME", help="the signal's name")
    signal.add_argument(
        "--payload", type=values.payload, metavar="JSON", help="its payload, as JSON"
    )
    signal.set_defaults(cmd=Command(handler=_signal))


def _said(run: Run) -> str:
    text = f"run {run.id} ({run.job}) is {run.status.value}"
    if run.error is not None and run.error.message:
        text += f": {run.error.message}"
    return text


async def _cancel(ctx: Context) -> int:
    rt, out, a = ctx.rt, ctx.out, ctx.args
    run = await rt.cancel(a.run, a.reason, wait=False)
    if not run.is_terminal and a.wait > 0:
        try:
            run = await rt.wait(run.id, timeout=a.wait)
        except TimeoutError:
            run = await rt.get_run(run.id)
    if out.as_json:
        out.json(run)
    elif run.is_terminal:
        out.text(_said(run))
    else:
        out.text(
            f"cancel requested: run {run.id} ({run.job}) is still {run.status.value}; the "
            "process holding it stops it at its next heartbeat (or a reaper, once its lease "
            "lapses)"
        )
    return 0


async def _again(ctx: Context) -> int:
    rt, out, a = ctx.rt, ctx.out, ctx.args
    verb = {"retry": rt.retry, "rerun": rt.rerun, "resume": rt.resume}[a.verb]
    new = await verb(a.run)
    if out.as_json:
        out.json(new)
    else:
        out.text(f"{a.verb}: new run {new.id} ({new.job}) is {new.status.value}, parent {a.run}")
    return 0


async def _signal(ctx: Context) -> int:
    a = ctx.args
    await ctx.rt.signal(a.run, a.name, a.payload)
    if ctx.out.as_json:
        ctx.out.json({"run_id": a.run, "signal": a.name, "payload": a.payload})
    else:
        ctx.out.text(f"sent signal {a.name!r} to run {a.run}")
    return 0
