"""The monitor's ASGI application: pages, live streams and actions over a runtime."""

from __future__ import annotations

import hmac
import inspect
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import anyio
import anyio.abc
import jinja2
import structlog
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from runlife import (
    DEFAULT_LIFECYCLE,
    AsyncRuntime,
    Event,
    InvalidValue,
    JobSpec,
    Lifecycle,
    LogLine,
    NotFound,
    Run,
    RunlifeError,
    Runtime,
    Status,
    Summary,
    Trigger,
)
from runlife._present import (
    human_duration,
    lifecycle_chain,
    moment_text,
    progress_text,
    schedule_text,
    worker_text,
)
from runlife.abc import Store
from runlife.web._graph import HEIGHT, WIDTH, layout
from runlife.web._hub import Hub, Message
from runlife.web._query import RANGES, BadParam, RunsFilter, runs_filter

__all__ = ("ACTIONS", "Authorize", "Monitor")

Authorize = Callable[[Request, str, str], "bool | Awaitable[bool]"]
"""``authorize(request, action, target)``: may this request do *action* (``"cancel"``,
``"retry"``, ``"rerun"``, ``"resume"``, ``"signal"``, ``"pause"``, ``"unpause"``)
on *target* (a run id, or a job's name for pause and unpause)?"""

RUN_ACTIONS: Final = ("cancel", "retry", "rerun", "resume", "signal")
JOB_ACTIONS: Final = ("pause", "unpause")
ACTIONS: Final = RUN_ACTIONS + JOB_ACTIONS
_HERE: Final = Path(__file__).parent
_CSRF_COOKIE: Final = "runlife_csrf"
_PAGE: Final = 50
_LOG_PAGE: Final = 500
_ITEMS_PAGE: Final = 50
_SPEC_AGE: Final = 30.0
_HEARTBEAT: Final = 15.0
_SUMMARY_AGE: Final = 5.0
_SUMMARY_WAIT: Final = 1.0
_log = structlog.get_logger("runlife.web")


class Monitor:
    """The monitor page as an ASGI app; made by `runlife.web.monitor`."""

    def __init__(
        self,
        source: AsyncRuntime | Store | str,
        *,
        authorize: Authorize | None = None,
        base_path: str = "",
        title: str = "runlife monitor",
        show_values: bool = False,
        poll: float = 1.0,
        stream_lifetime: float = 300.0,
    ) -> None:
        if isinstance(source, Runtime):
            # Its AsyncRuntime lives on an event loop of its own thread, not the server's.
            raise InvalidValue(
                "store_or_runtime",
                source,
                "an AsyncRuntime, a Store or a store URL (a blocking Runtime runs on a loop "
                "of its own: give the monitor its store URL)",
            )
        if not isinstance(source, AsyncRuntime | str) and not hasattr(source, "list_runs"):
            raise InvalidValue("store_or_runtime", source, "an AsyncRuntime, a Store or a URL")
        if base_path and (not base_path.startswith("/") or base_path.endswith("/")):
            raise InvalidValue("base_path", base_path, "'' or a path such as '/monitor'")
        self.source = source
        self.authorize = authorize
        self.base_path = base_path
        self.title = title
        self.show_values = show_values
        self.poll = poll
        self.stream_lifetime = stream_lifetime
        self.runtime: AsyncRuntime | None = source if isinstance(source, AsyncRuntime) else None
        self.hub: Hub | None = None
        self._specs: dict[str, tuple[float, JobSpec | None]] = {}
        self._log_counts: dict[str, dict[str, int]] = {}
        self._summaries: dict[Any, tuple[float, Summary, datetime]] = {}
        self._counting: dict[Any, anyio.Event] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters.update(dur=human_duration, when=moment_text, qs=quote)
        self.templates.globals.update(render_lines=render_lines, schedule_text=schedule_text)
        routes = [
            Route("/", self.runs_page),
            Route("/runs/{run_id}", self.run_page),
            Route("/runs/{run_id}/live", self.run_fragment),
            Route("/runs/{run_id}/log.txt", self.log_download),
            Route("/runs/{run_id}/log", self.log_page),
            Route("/runs/{run_id}/log/stream", self.log_stream),
            Route("/runs/{run_id}/graph", self.graph_page),
            Route("/runs/{run_id}/{action}", self.run_action, methods=["POST"]),
            Route("/jobs", self.jobs_page),
            Route("/jobs/{name}/{action}", self.job_action, methods=["POST"]),
            Route("/events", self.event_stream),
        ]
        self.app = Starlette(
            routes=routes,
            lifespan=self.lifespan,
            exception_handlers={
                HTTPException: self._http_error,
                Exception: self._server_error,
            },
        )
        self.app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    @asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """Open the store (for a URL or a store), start the live hub; close them after.

        Give it to the host's app when the monitor is mounted:
        ``Starlette(routes=[Mount("/monitor", app=mon)], lifespan=mon.lifespan)``.
        """
        own = not isinstance(self.source, AsyncRuntime)
        try:
            async with AsyncExitStack() as stack:
                if own:
                    runtime = AsyncRuntime(store=self.source, serve=False, poll=self.poll)  # type: ignore[arg-type]
                    self.runtime = await stack.enter_async_context(runtime)
                assert self.runtime is not None
                self.hub = hub = Hub(self.runtime, self._describe)
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    tg.start_soon(hub.run, tg)
                    await hub.started.wait()
                    try:
                        yield
                    finally:
                        tg.cancel_scope.cancel()
                        hub.close()
        finally:
            self.hub = self._tg = None
            self._summaries.clear()
            self._specs.clear()
            if own:
                self.runtime = None

    # -- helpers ---------------------------------------------------------------------

    def _rt(self) -> AsyncRuntime:
        if self.runtime is None:
            raise HTTPException(
                503,
                "the monitor is not started: run its lifespan "
                "(Starlette(..., lifespan=monitor.lifespan)) or give it a running AsyncRuntime",
            )
        return self.runtime

    def _base(self, request: Request) -> str:
        return self.base_path or str(request.scope.get("root_path", "")).rstrip("/")

    async def _spec(self, job: str) -> JobSpec | None:
        now = time.monotonic()
        cached = self._specs.get(job)
        if cached is not None and now - cached[0] < _SPEC_AGE:
            return cached[1]
        try:
            record = await self._rt().store.get_job(job)
            spec: JobSpec | None = JobSpec.from_spec(record.spec)
        except (NotFound, RunlifeError, ValueError):
            spec = None
        self._specs[job] = (now, spec)
        return spec

    async def _lifecycle(self, job: str) -> Lifecycle:
        spec = await self._spec(job)
        return spec.lifecycle if spec is not None else DEFAULT_LIFECYCLE

    async def _row(self, run: Run, now: datetime) -> dict[str, Any]:
        chain = lifecycle_chain(run, await self._lifecycle(run.job))
        return {
            "run": run,
            "chain": chain,
            "progress": progress_text(run.progress),
            "worker": worker_text(run),
            "duration": human_duration(run.duration if run.ended_at else run.elapsed(now))
            if run.started_at
            else "-",
            "trigger_at": run.scheduled_for or run.created_at,
        }

    def _render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        token = request.cookies.get(_CSRF_COOKIE) or secrets.token_urlsafe(32)
        page = self.templates.get_template(name).render(
            base=self._base(request),
            title=self.title,
            csrf=token,
            request_path=request.url.path,
            statuses=[s.value for s in Status],
            triggers=[t.value for t in Trigger],
            ranges=[*RANGES, "custom"],
            **context,
        )
        response = HTMLResponse(page, status_code=status)
        if request.cookies.get(_CSRF_COOKIE) != token:
            response.set_cookie(
                _CSRF_COOKIE,
                token,
                httponly=True,
                samesite="strict",
                path=self._base(request) or "/",
            )
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    async def _can(self, request: Request, action: str, target: str) -> bool:
        if self.authorize is None:
            return False
        allowed = self.authorize(request, action, target)
        if inspect.isawaitable(allowed):
            allowed = await allowed
        return allowed is True

    async def _allowed(self, request: Request, target: str, actions: tuple[str, ...]) -> set[str]:
        return {a for a in actions if await self._can(request, a, target)}

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return self._render(request, "error.html", exc.status_code, message=exc.detail)

    async def _server_error(self, request: Request, exc: Exception) -> Response:
        # Never a traceback: the page says what kind of failure, the host's log the rest.
        message = f"the monitor could not answer ({type(exc).__name__})"
        return self._render(request, "error.html", 500, message=message)

    async def _describe(self, event: Event) -> dict[str, Any]:
        data: dict[str, Any] = {
            "run": event.run_id,
            "kind": event.kind,
            "status": event.status.value,
            "terminal": event.status.is_terminal,
        }
        run = await self._rt().get_run(event.run_id)
        row = await self._row(run, datetime.now(UTC))
        data["row"] = self.templates.get_template("_row.html").render(base=self.base_path, **row)
        return data

    # -- pages -----------------------------------------------------------------------

    async def runs_page(self, request: Request) -> Response:
        rt = self._rt()
        now = datetime.now(UTC)
        params = {k: request.query_params.getlist(k) for k in request.query_params}
        try:
            wanted = runs_filter(params, now=now)
        except BadParam as exc:
            raise HTTPException(400, str(exc)) from None
        try:
            page = await rt.list_runs(
                job=wanted.job,
                status=wanted.status or None,
                trigger=wanted.trigger or None,
                labels=wanted.labels,
                since=wanted.since,
                until=wanted.until,
                text=wanted.text,
                limit=_PAGE,
                cursor=wanted.cursor,
            )
            summary, counted_at = await self._summary(wanted)
        except InvalidValue as exc:
            raise HTTPException(400, str(exc)) from None
        rows = [await self._row(run, now) for run in page.runs]
        return self._render(
            request,
            "runs.html",
            rows=rows,
            wanted=wanted,
            next_cursor=page.next_cursor,
            summary=summary,
            counted_at=counted_at,
            cursor=self._cursor(),
        )

    async def _summary(self, wanted: RunsFilter) -> tuple[Summary | None, datetime | None]:
        """The summary cards of *wanted*'s time range, and when they were counted.

        The cards count the whole store, which takes long in a big one: they are
        counted by a task of the monitor, at most every few seconds for all pages,
        and a page shows the last count rather than wait for a new one (the first
        page of a range waits a little, then says the count is under way).
        """
        key = (wanted.range, wanted.since if wanted.range == "custom" else None, wanted.until)
        entry = self._summaries.get(key)
        if entry is not None and time.monotonic() - entry[0] < _SUMMARY_AGE:
            return entry[1], entry[2]
        if self._tg is None:  # no lifespan: count now
            summary = await self._rt().summary(since=wanted.since, until=wanted.until)
            return summary, datetime.now(UTC)
        counting = self._counting.get(key)
        if counting is None:
            counting = self._counting[key] = anyio.Event()
            self._tg.start_soon(self._count, key, wanted.since, wanted.until, counting)
        if entry is None:
            with anyio.move_on_after(_SUMMARY_WAIT):
                await counting.wait()
            entry = self._summaries.get(key)
        return (entry[1], entry[2]) if entry is not None else (None, None)

    async def _count(
        self, key: Any, since: datetime | None, until: datetime | None, done: anyio.Event
    ) -> None:
        try:
            summary = await self._rt().summary(since=since, until=until)
            if len(self._summaries) > 100:
                self._summaries.clear()
            self._summaries[key] = (time.monotonic(), summary, datetime.now(UTC))
        except Exception as exc:  # the store is away: the next page asks again
            _log.warning("the monitor could not count the runs", error=str(exc))
        finally:
            self._counting.pop(key, None)
            done.set()

    def _cursor(self) -> str:
        return "" if self.hub is None or self.hub.cursor is None else str(self.hub.cursor)

    async def _run_context(self, request: Request, run_id: str) -> dict[str, Any]:
        rt = self._rt()
        try:
            run = await rt.get_run(run_id)
        except NotFound:
            raise HTTPException(404, f"no run {run_id!r} in this store") from None
        now = datetime.now(UTC)
        row = await self._row(run, now)
        why = None
        if not run.is_terminal:
            try:
                why = await rt.explain(run_id)
            except RunlifeError:
                why = None
        allowed = await self._allowed(request, run.id, RUN_ACTIONS)
        spec = await self._spec(run.job)
        is_workflow = spec is not None and spec.workflow is not None
        return {"now": now, "why": why, "allowed": allowed, "is_workflow": is_workflow, **row}

    async def run_page(self, request: Request) -> Response:
        rt = self._rt()
        run_id = request.path_params["run_id"]
        context = await self._run_context(request, run_id)
        run: Run = context["run"]
        q = request.query_params
        stream = q.get("stream") or None
        if stream not in (None, "log", "stdout", "stderr"):
            raise HTTPException(
                400, f"stream={stream!r} is invalid: expected log, stdout or stderr"
            )
        search = (q.get("search") or "").strip()
        if len(search) > 200:
            raise HTTPException(400, "search is invalid: expected at most 200 characters")
        after: str | int | None = q.get("after") or None
        if isinstance(after, str) and after.isdigit() and len(after) < 19:
            after = int(after)  # a line's seq, as the list of matches links it
        try:
            page = await rt.logs(run_id, stream=stream, after=after, limit=_LOG_PAGE)
            items_after = q.get("items_after") or None
            failed = await rt.items(run_id, Status.FAILED, limit=_ITEMS_PAGE)
            items = await rt.items(run_id, after=items_after, limit=_ITEMS_PAGE + 1)
        except InvalidValue as exc:
            raise HTTPException(400, str(exc)) from None
        more_items = len(items) > _ITEMS_PAGE
        items = items[:_ITEMS_PAGE]
        phases: dict[str, list[Any]] = {}
        for item in items:
            phases.setdefault(item.phase or "", []).append(item)
        standby = bool(phases) and "" not in phases and "rollback" not in phases
        matches: tuple[Any, ...] = ()
        if search:
            found = await rt.search_logs(run_id, search)
            matches = tuple(line for line in found if stream is None or line.stream == stream)
        children = await rt.list_runs(parent_id=run.id, limit=20)
        return self._render(
            request,
            "run.html",
            **context,
            lines=page.lines,
            next_log=page.next_cursor,
            stream=stream,
            counts=await self._counts(run),
            search=search,
            matches=matches,
            highlight=_highlighter(search),
            failed=failed,
            phases=phases,
            standby=standby,
            more_items=items[-1].key if more_items and items else None,
            children=children.runs,
            show_values=self.show_values,
            values=_values(run) if self.show_values else None,
            cursor=self._cursor(),
            mode="calm" if q.get("mode") == "calm" else "live",
        )

    async def run_fragment(self, request: Request) -> Response:
        """The parts of a run's page that change while it runs, for live pages."""
        context = await self._run_context(request, request.path_params["run_id"])
        return self._render(request, "_live.html", **context)

    async def _counts(self, run: Run) -> dict[str, int]:
        cached = self._log_counts.get(run.id)
        if cached is not None:
            return cached
        counts = {"all": 0, "log": 0, "stdout": 0, "stderr": 0}
        rt = self._rt()
        after: str | None = None
        while True:
            page = await rt.logs(run.id, after=after, limit=100_000)
            for line in page.lines:
                counts[line.stream] += 1
            counts["all"] += len(page.lines)
            if page.next_cursor is None:
                break
            after = page.next_cursor
        if run.is_terminal:  # a terminal run's log is frozen
            if len(self._log_counts) > 10_000:
                self._log_counts.clear()
            self._log_counts[run.id] = counts
        return counts

    async def log_page(self, request: Request) -> Response:
        """A page of 500 lines of a run's log alone (``?stream=``, ``?after=``)."""
        q = request.query_params
        stream = q.get("stream") or None
        after: str | int | None = q.get("after") or None
        if isinstance(after, str) and after.isdigit() and len(after) < 19:
            after = int(after)
        run_id = request.path_params["run_id"]
        try:
            page = await self._rt().logs(run_id, stream=stream, after=after, limit=_LOG_PAGE)
        except NotFound:
            raise HTTPException(404, f"no run {run_id!r} in this store") from None
        except InvalidValue as exc:
            raise HTTPException(400, str(exc)) from None
        html = render_lines(page.lines, _highlighter(q.get("search") or ""))
        headers = {"X-Next-Cursor": page.next_cursor or ""}
        return HTMLResponse(html, headers=headers)

    async def log_download(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            text = await self._rt().export_logs(run_id)
        except NotFound:
            raise HTTPException(404, f"no run {run_id!r} in this store") from None
        name = "".join(c for c in run_id if c.isalnum() or c in "-_")
        return PlainTextResponse(
            text,
            headers={"Content-Disposition": f'attachment; filename="run-{name}.log"'},
        )

    async def graph_page(self, request: Request) -> Response:
        rt = self._rt()
        run_id = request.path_params["run_id"]
        try:
            graph = await rt.graph(run_id)
        except NotFound:
            raise HTTPException(404, f"no run {run_id!r} in this store") from None
        except InvalidValue as exc:
            raise HTTPException(400, str(exc)) from None
        shape = layout(graph.workflow, graph.statuses, graph.runs)
        return self._render(
            request, "graph.html", graph=graph, shape=shape, node_w=WIDTH, node_h=HEIGHT
        )

    async def jobs_page(self, request: Request) -> Response:
        rt = self._rt()
        rows = await rt.list_jobs()
        allowed = {row.name: await self._allowed(request, row.name, JOB_ACTIONS) for row in rows}
        return self._render(request, "jobs.html", jobs=rows, allowed=allowed)

    # -- actions ---------------------------------------------------------------------

    async def _check_post(self, request: Request) -> Mapping[str, Any]:
        form = await request.form()
        cookie = request.cookies.get(_CSRF_COOKIE, "")
        sent = str(form.get("csrf", ""))
        if not cookie or not hmac.compare_digest(cookie, sent):
            raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page")
        origin = request.headers.get("origin")
        if origin and origin != "null":
            expected = f"{request.url.scheme}://{request.url.netloc}"
            if origin != expected:
                raise HTTPException(403, f"a POST from {origin} is refused")
        return form

    async def run_action(self, request: Request) -> Response:
        rt = self._rt()
        run_id, action = request.path_params["run_id"], request.path_params["action"]
        if action not in RUN_ACTIONS:
            raise HTTPException(
                404, f"no action {action!r}: expected one of {', '.join(RUN_ACTIONS)}"
            )
        form = await self._check_post(request)
        if not await self._can(request, action, run_id):
            raise HTTPException(403, f"{action} is not allowed here")
        base = self._base(request)
        try:
            if action == "cancel":
                await rt.cancel(
                    run_id, str(form.get("reason") or "cancelled from the monitor"), wait=False
                )
                target = run_id
            elif action == "signal":
                name = str(form.get("name", "")).strip()
                if not name:
                    raise HTTPException(400, "name is invalid: expected the signal's name")
                await rt.signal(run_id, name)
                target = run_id
            else:
                verb = {"retry": rt.retry, "rerun": rt.rerun, "resume": rt.resume}[action]
                target = (await verb(run_id)).id
        except NotFound:
            raise HTTPException(404, f"no run {run_id!r} in this store") from None
        except (InvalidValue, RunlifeError) as exc:
            raise HTTPException(409, f"{action} refused: {exc}") from None
        return RedirectResponse(f"{base}/runs/{quote(target)}", status_code=303)

    async def job_action(self, request: Request) -> Response:
        rt = self._rt()
        name, action = request.path_params["name"], request.path_params["action"]
        if action not in JOB_ACTIONS:
            raise HTTPException(404, f"no action {action!r}: expected pause or unpause")
        await self._check_post(request)
        if not await self._can(request, action, name):
            raise HTTPException(403, f"{action} is not allowed here")
        try:
            await (rt.pause if action == "pause" else rt.unpause)(name)
        except NotFound:
            raise HTTPException(404, f"no job {name!r} in this store") from None
        return RedirectResponse(f"{self._base(request)}/jobs", status_code=303)

    # -- live streams ----------------------------------------------------------------

    def _hub(self) -> Hub:
        if self.hub is None:
            raise HTTPException(503, "live updates need the monitor's lifespan to run")
        return self.hub

    async def event_stream(self, request: Request) -> Response:
        hub = self._hub()
        after = _seq(request.headers.get("last-event-id") or request.query_params.get("after"))
        run_filter = request.query_params.get("run") or None
        receive = hub.subscribe(after)

        async def body() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            try:
                with anyio.move_on_after(self.stream_lifetime):
                    async with receive:
                        while True:
                            with anyio.move_on_after(_HEARTBEAT) as beat:
                                message: Message = await receive.receive()
                            if beat.cancelled_caught:
                                yield ": still here\n\n"
                                continue
                            if message.data.get("reset"):
                                yield "event: reset\ndata: {}\n\n"
                                return
                            if run_filter and message.data.get("run") != run_filter:
                                yield f"id: {message.seq}\n\n"
                                continue
                            data = json.dumps(message.data)
                            yield f"id: {message.seq}\nevent: run\ndata: {data}\n\n"
            except anyio.EndOfStream:
                return
            finally:
                hub.unsubscribe(receive)

        return _sse(body())

    async def log_stream(self, request: Request) -> Response:
        hub = self._hub()
        run_id = request.path_params["run_id"]
        try:
            await self._rt().get_run(run_id)
        except NotFound:
            raise HTTPException(404, f"no run {run_id!r} in this store") from None
        after = _seq(request.headers.get("last-event-id") or request.query_params.get("after")) or 0

        async def body() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            with anyio.move_on_after(self.stream_lifetime):
                async for line in hub.log_lines(run_id, after):
                    data = {
                        "seq": line.seq,
                        "at": f"{line.at:%H:%M:%S}",
                        "stream": line.stream,
                        "level": line.level,
                        "item": line.item,
                        "message": line.message,
                    }
                    yield f"id: {line.seq}\nevent: line\ndata: {json.dumps(data)}\n\n"
                yield "event: end\ndata: {}\n\n"

        return _sse(body())


def _sse(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _seq(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise HTTPException(400, f"after={value!r} is invalid: expected an event's seq")
    return int(value)


def _highlighter(search: str) -> Callable[[str], Markup]:
    """Escape a log line and mark where *search* occurs in it (ignoring case)."""
    needle = search.lower()

    if not needle:
        return escape

    def mark(text: str) -> Markup:
        out, lower, i = [], text.lower(), 0
        while (j := lower.find(needle, i)) >= 0:
            out.append(Markup.escape(text[i:j]))
            out.append(Markup('<mark class="hit">%s</mark>') % text[j : j + len(needle)])
            i = j + len(needle)
        out.append(Markup.escape(text[i:]))
        return Markup("").join(out)

    return mark


_STREAMS: Final = frozenset({"log", "stdout", "stderr"})


def render_lines(lines: Iterable[LogLine], mark: Callable[[str], Markup]) -> Markup:
    """Log lines as the viewer shows them, escaped, with *mark*'s highlights.

    Written out here rather than in a template: a page of 500 lines is the page
    that must come fastest.
    """
    out = []
    for line in lines:
        stream = line.stream if line.stream in _STREAMS else "log"
        level = escape(line.level)
        item = f'<span class="i">[{escape(line.item)}]</span> ' if line.item else ""
        out.append(
            f'<span class="line stream-{stream} level-{level}" data-seq="{line.seq}">'
            f'<span class="ln">{line.seq}</span> <span class="t">{line.at:%H:%M:%S}</span> '
            f'<span class="s">{stream}</span> {item}{mark(line.message)}</span>\n'
        )
    return Markup("".join(out))  # noqa: S704 - every value in it was escaped above


def _values(run: Run) -> dict[str, str]:
    return {
        "params": json.dumps(dict(run.params), indent=2, default=str),
        "result": json.dumps(run.result, indent=2, default=str),
    }


def filter_query(wanted: RunsFilter, **changes: str | None) -> str:
    return wanted.query(**changes)
