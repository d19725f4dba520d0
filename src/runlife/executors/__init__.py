"""Executors: where the function of an attempt runs, and whether it can be cut.

==================  =========================  ==========================
executor            runs                       can interrupt
==================  =========================  ==========================
`AsyncExecutor`     async functions, on the    yes: cancelled at its next
                    runtime's event loop       await
`ThreadExecutor`    sync functions, in worker  no: recorded as still
                    threads                    running
`ProcessExecutor`   functions importable by    yes: SIGTERM, then SIGKILL
                    name, in child processes   after a grace
==================  =========================  ==========================

A job names its executor (``@runlife.job(executor="process")``) or leaves it to
its function: async functions run on the loop, sync ones on the runtime's thread
executor. A custom executor implements `runlife.abc.Executor`.
"""

from __future__ import annotations

from runlife.executors._async import AsyncExecutor
from runlife.executors._process import ProcessExecutor
from runlife.executors._thread import ThreadExecutor

__all__ = ("AsyncExecutor", "ProcessExecutor", "ThreadExecutor")

AsyncExecutor.__module__ = __name__
ProcessExecutor.__module__ = __name__
ThreadExecutor.__module__ = __name__
