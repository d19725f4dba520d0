"""Executors: where the function of an attempt runs, and whether it can be cut.

==================  =========================  =================
executor            runs                       can interrupt
==================  =========================  =================
`AsyncExecutor`     async functions, on the    yes: cancelled at
                    runtime's event loop       its next await
`ThreadExecutor`    sync functions, in worker  no: recorded as
                    threads                    still running
==================  =========================  =================

A job names its executor (``@runlife.job(executor="thread")``) or leaves it to
its function: async functions run on the loop, sync ones on the runtime's thread
executor. A custom executor implements `runlife.abc.Executor`.
"""

from __future__ import annotations

from runlife.executors._async import AsyncExecutor
from runlife.executors._thread import ThreadExecutor

__all__ = ("AsyncExecutor", "ThreadExecutor")

AsyncExecutor.__module__ = __name__
ThreadExecutor.__module__ = __name__
