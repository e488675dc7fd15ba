"""The Starlette application: one HTML page and one JSON endpoint per view, over a read-only store."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metaextract.ome import key_fields
from metaextract.store import Store, views
from metaextract.store.reports import status as step_status

HERE = Path(__file__).resolve().parent
#: No script, style or image from anywhere but this server, no inline script, no frames.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_WELL = re.compile(r"^(?:[A-Z]|A[A-F])\d{2}$")
#: Colour class per file status (the CSS knows them).
STATUS_CLASS = {"ok": "ok", "pending": "pending", "failed": "failed", "timeout": "failed", "unsupported": "failed"}


def spans(values: list[int]) -> str:
    """Sorted distinct integers as runs: ``[0, 1, 2, 5]`` → ``0–2, 5`` (a well's fields, Z, ...)."""
    out: list[str] = []
    ordered = sorted(set(values))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}\u2013{ordered[j]}")
        i = j + 1
    return ", ".join(out)


def _environment() -> jinja2.Environment:
    """The templates' environment, every template compiled now (not at a page's first request)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, auto_reload=False)
    env.filters["status_class"] = lambda s: STATUS_CLASS.get(str(s), "failed")
    env.filters["spans"] = spans
    for name in env.list_templates(extensions=["html"]):
        env.get_template(name)
    return env


def _grid(plate: dict[str, Any], selected: str) -> list[tuple[str, Markup]]:
    """The plate map's rows: (row label, its cells as markup). Built here rather than in the template: a
    1,536-well grid is most of the page, and this costs a fifth of what the template loop did. Every value
    that is not one of our own numbers is escaped."""
    wells = plate["wells"]
    rows = []
    for r in plate["row_labels"]:
        cells = []
        for c in plate["column_labels"]:
            label = r + c
            w = wells.get(label)
            if not w:
                cells.append('<td class="well empty"></td>')
                continue
            title = (f"{label}: {w['ok']:d} ok, {w['failed']:d} failed, {w['pending']:d} pending of {w['total']:d}"
                     + (f"; {w['fields']:d} fields \u00d7 {w['channels']:d} channels \u00d7 {w['z']:d} Z \u00d7 "
                        f"{w['t']:d} T, {w['planes']:d} planes" if w.get("planes") else ""))
            cls = f"well {escape(w['state'])}" + (" selected" if label == selected else "")
            cells.append(f'<td class="{cls}" id="well-{escape(label)}" title="{escape(title)}">'
                         f'<a href="?well={escape(label)}#well">{w["total"]:d}</a></td>')
        rows.append((r, Markup("".join(cells))))
    return rows


def _not_found(what: str) -> HTTPException:
    return HTTPException(404, f"no such {what}")


class Views:
    """The endpoints, bound to one store (sync functions: Starlette runs them in its thread pool)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.env = _environment()

    def page(self, name: str, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(**context))

    @staticmethod
    def _int(request: Request, key: str) -> int:
        value = request.path_params[key]
        return int(value)

    def _lookup(self, what: str, fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        try:
            return fn(self.store, *args)
        except views.NOT_FOUND:
            raise _not_found(what) from None

    # -- experiments ----------------------------------------------------------------------------------------
    def experiments(self, request: Request) -> Response:
        data = views.experiments_overview(self.store)
        if request.url.path.startswith("/api/"):
            return JSONResponse(data)
        return self.page("experiments.html", experiments=data)

    def experiment(self, request: Request) -> Response:
        data = self._lookup("experiment", views.experiment_view, f"#{self._int(request, 'exp')}")
        if request.url.path.startswith("/api/"):
            return JSONResponse(data)
        return self.page("experiment.html", exp=data)

    def experiment_status(self, request: Request) -> Response:
        """``EXP status --json``."""
        exp = self._int(request, "exp")
        return JSONResponse(self._lookup("experiment", lambda s, e: step_status(s, e), exp))

    def experiment_summary(self, request: Request) -> Response:
        """``EXP summary --format json`` (``?status=ok|failed|all``), streamed one file at a time."""
        from metaextract.store.results import check_status, open_experiment

        status = request.query_params.get("status", "all")
        try:
            check_status(status)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        exp = self._lookup("experiment", views.experiment_view, f"#{self._int(request, 'exp')}")
        results = open_experiment(int(exp["id"]), self.store)

        def body() -> Any:
            yield "["
            for i, f in enumerate(results.files(status)):
                yield ("," if i else "") + json.dumps(f.to_dict(), ensure_ascii=False)
            yield "]\n"

        from starlette.responses import StreamingResponse

        return StreamingResponse(body(), media_type="application/json")

    # -- plates ---------------------------------------------------------------------------------------------
    def plate(self, request: Request) -> Response:
        exp, pid = self._int(request, "exp"), self._int(request, "plate")
        if request.url.path.startswith("/api/"):
            return JSONResponse(self._lookup("plate", views.plate_map, f"#{exp}", pid))
        well = request.query_params.get("well", "").upper()
        if well and not _WELL.match(well):
            raise HTTPException(400, "a well is a row letter and a two-digit column (B03)")
        try:
            data, detail = views.plate_page(self.store, f"#{exp}", pid, well or None)
        except views.NOT_FOUND:
            raise _not_found("plate") from None
        return self.page("plate.html", plate=data, grid=_grid(data, well), well=detail, selected=well)

    def well(self, request: Request) -> Response:
        well = str(request.path_params["well"]).upper()
        if not _WELL.match(well):
            raise HTTPException(400, "a well is a row letter and a two-digit column (B03)")
        return JSONResponse(self._lookup("plate", views.well_files, f"#{self._int(request, 'exp')}",
                                         self._int(request, "plate"), well))

    # -- submissions ----------------------------------------------------------------------------------------
    def submission(self, request: Request) -> Response:
        data = self._lookup("submission", views.submission_progress, self._int(request, "sub"))
        if request.url.path.startswith("/api/"):
            return JSONResponse(data)
        return self.page("submission.html", sub=data)

    # -- files ----------------------------------------------------------------------------------------------
    def file(self, request: Request) -> Response:
        data = self._lookup("file", views.file_view, self._int(request, "file"))
        if request.url.path.startswith("/api/"):
            return JSONResponse(data)
        keys: dict[str, Any] = {}
        if data["omexml"]:
            try:
                keys = key_fields(data["omexml"])
            except Exception as exc:  # noqa: BLE001 - a stored document we cannot read: say so, show the rest
                keys = {"error": f"{type(exc).__name__}: {exc}"}
        return self.page("file.html", f=data, keys=keys)

    def omexml(self, request: Request) -> Response:
        """The stored OME-XML as a download (never rendered by the browser)."""
        data = self._lookup("file", views.file_view, self._int(request, "file"))
        if not data["omexml"]:
            raise _not_found("OME-XML (the file has none)")
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(data["name"])).name)[:100] or "file"
        return Response(data["omexml"], media_type="application/xml", headers={
            "Content-Disposition": f'attachment; filename="{data["id"]}-{stem}.ome.xml"'})


class SecurityHeaders:
    """ASGI middleware: every response says nosniff, the CSP above, no referrer, no framing, no caching."""

    HEADERS = [(b"x-content-type-options", b"nosniff"), (b"content-security-policy", CSP.encode()),
               (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"), (b"cache-control", b"no-store")]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in self.HEADERS}
                message["headers"] = [*[(k, v) for k, v in message.get("headers", []) if k.lower() not in names],
                                      *self.HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
    return PlainTextResponse(f"{exc.status_code}: {exc.detail}\n", status_code=exc.status_code)


def create_app(store: Store, *, warm: bool = True) -> Starlette:
    """The web application over ``store`` (open it with :func:`metaextract.store.views.open_read_only`);
    ``warm``: bring every plate's map up to date in the background as the server starts."""
    v = Views(store)
    routes = [
        Route("/", v.experiments),
        Route("/experiments/{exp:int}", v.experiment),
        Route("/experiments/{exp:int}/plates/{plate:int}", v.plate),
        Route("/submissions/{sub:int}", v.submission),
        Route("/files/{file:int}", v.file),
        Route("/files/{file:int}/omexml", v.omexml),
        Route("/api/experiments", v.experiments),
        Route("/api/experiments/{exp:int}", v.experiment),
        Route("/api/experiments/{exp:int}/status", v.experiment_status),
        Route("/api/experiments/{exp:int}/summary", v.experiment_summary),
        Route("/api/experiments/{exp:int}/plates/{plate:int}", v.plate),
        Route("/api/experiments/{exp:int}/plates/{plate:int}/wells/{well:str}", v.well),
        Route("/api/submissions/{sub:int}", v.submission),
        Route("/api/files/{file:int}", v.file),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error},
                     middleware=[Middleware(SecurityHeaders)], lifespan=_warming(store) if warm else None)


#: Seconds the server may wait, as it starts, for the plate maps to be warm before it answers.
WARM_FIRST = 5.0


def _warming(store: Store) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """A lifespan that brings every plate's caches up to date in a thread as the server starts
    (:func:`metaextract.store.views.warm`): the server answers when they are, or after
    :data:`WARM_FIRST` seconds while the thread goes on; it stops the thread when the server stops."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        stop = threading.Event()

        def run() -> None:
            try:
                views.warm(store, stop)
            except Exception as exc:  # noqa: BLE001 - a request then does the work itself; say why, go on
                print(f"metaextract serve: warming the plate maps stopped: {type(exc).__name__}: {exc}",
                      file=sys.stderr)

        thread = threading.Thread(target=run, name="metaextract-warm", daemon=True)
        thread.start()
        # the server answers once the plates are warm, or after WARM_FIRST seconds (then it goes on behind)
        await asyncio.get_running_loop().run_in_executor(None, thread.join, WARM_FIRST)
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)  # it ends after the plate at hand, before the store is closed

    return lifespan
