"""The monitor page: runs, run detail with its log, jobs and workflow graphs, live.

A host mounts it in its own web app (extra ``runlife[web]``: Starlette, Jinja2,
uvicorn); ``runlife serve --store URL`` runs it alone. Pages are rendered on the
server and read without JavaScript; a little plain JavaScript adds live updates
(server-sent events), log search stepping, follow mode and graph zoom.

>>> from runlife.web import monitor
>>> app = monitor("memory://", title="Ops")
>>> app.title
'Ops'
"""

from __future__ import annotations

from runlife import AsyncRuntime
from runlife.abc import Store
from runlife.web._app import ACTIONS, Authorize, Monitor

__all__ = ("ACTIONS", "Authorize", "Monitor", "allow_all", "monitor", "serve")


def monitor(
    store_or_runtime: AsyncRuntime | Store | str,
    *,
    authorize: Authorize | None = None,
    base_path: str = "",
    title: str = "runlife monitor",
    show_values: bool = False,
    poll: float = 1.0,
) -> Monitor:
    """The monitor page over a store (a URL or a `Store`) or a running `AsyncRuntime`,
    as an ASGI app.

    Args:
        store_or_runtime: where the runs are. A URL or a store is opened by the
            app's lifespan (read and act only: it runs no jobs); a runtime the host
            runs is used as it is.
        authorize: ``authorize(request, action, target) -> bool`` (or an awaitable
            of it): whether *request* may do *action* (one of `ACTIONS`) on *target*
            (a run id; a job's name for ``pause`` and ``unpause``). None: no actions,
            the pages only read. Every POST also needs the page's CSRF token.
        base_path: the path the app is mounted under when the server does not say
            (ASGI ``root_path`` is used otherwise), such as ``"/monitor"``.
        title: the pages' title.
        show_values: show runs' params and results (hidden by default: they may
            hold what operators should not see).
        poll: seconds between reads of the store for live updates, when the app
            opens the store itself (a runtime given keeps its own ``poll``).

    Raises:
        InvalidValue: a *store_or_runtime* or *base_path* it cannot use.

    Mounted in a Starlette app, the monitor's lifespan must run with the host's::

        mon = monitor("sqlite:///runs.db")
        app = Starlette(routes=[Mount("/monitor", app=mon)], lifespan=mon.lifespan)
    """
    return Monitor(
        store_or_runtime,
        authorize=authorize,
        base_path=base_path,
        title=title,
        show_values=show_values,
        poll=poll,
    )


def allow_all(request: object, action: str, target: str) -> bool:
    """An `Authorize` that allows every action: for ``runlife serve --allow-actions``
    on a machine of one's own, never on a shared server."""
    return True


def serve(
    store_url: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    allow_actions: bool = False,
    title: str = "runlife monitor",
) -> None:
    """Run the monitor over *store_url* with uvicorn until interrupted (blocking).

    It binds 127.0.0.1 unless told otherwise: the page shows every run of the store
    to whoever reaches it. *allow_actions* lets anyone who reaches it cancel, retry,
    rerun, resume, signal and pause (each POST still needs the page's CSRF token).
    """
    import uvicorn

    app = monitor(store_url, authorize=allow_all if allow_actions else None, title=title)
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
