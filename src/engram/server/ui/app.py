"""The inspector as an ASGI app: ``create_ui_app(memory, keys=...)``, mounted at ``/ui``.

With a key store, pages need a browser session opened with an API key (``engram serve``); without
one the app is in local mode (``engram ui`` on 127.0.0.1): no key, loopback hosts only. Pages are
Jinja2 templates with autoescaping on (memory text is attacker-controlled and only ever shown as
text); every state-changing form is a POST carrying a CSRF token. Memory calls run in worker threads."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from engram import __version__
from engram.errors import AuthenticationError, EngramError, PayloadTooLargeError, StorageError
from engram.memory import Memory
from engram.server.auth import owned_memory
from engram.server.ui import actions, pages
from engram.server.ui.actions import NOTICES, PREFIX, Confirm, Form, link
from engram.server.ui.session import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    LoginRequired,
    Sessions,
    Viewer,
    check_csrf,
    check_local_host,
    check_origin,
    local_viewer,
)
from engram.store.key_store import KeyStore

logger = logging.getLogger("engram.server.ui")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
MAX_FORM_BYTES = 1_048_576
Build = Callable[[Viewer], dict[str, Any]]


class Inspector:
    """Renders pages and runs form actions for one ``Memory``."""

    def __init__(self, memory: Memory, keys: KeyStore | None) -> None:
        self.memory = memory
        self.sessions = Sessions(keys) if keys is not None else None
        self.local_csrf = secrets.token_urlsafe(32)
        self.templates = Environment(loader=PackageLoader("engram.server.ui", "templates"),
                                     autoescape=select_autoescape(default=True, default_for_string=True))
        self.templates.globals.update(link=link, version=__version__, trust_levels=pages.TRUST_LEVELS,
                                      statuses=pages.STATUSES)

    @property
    def local(self) -> bool:
        return self.sessions is None

    async def viewer(self, request: Request) -> Viewer:
        if self.sessions is None:
            check_local_host(request.headers.get("host", ""))
            return local_viewer(self.local_csrf)
        sessions = self.sessions
        return await anyio.to_thread.run_sync(sessions.viewer, request.cookies.get(SESSION_COOKIE))

    def render(self, template: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
        html = self.templates.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def context(self, request: Request, viewer: Viewer | None) -> dict[str, Any]:
        done = request.query_params.get("done", "")
        return {"viewer": viewer, "local": self.local, "notice": NOTICES.get(done), "path": request.url.path,
                "feedback_enabled": pages.supports(self.memory, "feedback"),
                "as_of_enabled": pages.supports(self.memory, "search", "as_of")}

    def error(self, request: Request, viewer: Viewer | None, error: EngramError) -> HTMLResponse:
        if isinstance(error, StorageError):
            logger.error("storage error on %s %s: %s", request.method, request.url.path, error)
            error = StorageError("the memory store is unavailable; try again later")
        return self.render("error.html", {**self.context(request, viewer), "error": error},
                           status=error.http_status)

    async def page(self, request: Request, template: str, build: Build) -> Response:
        """Render ``template`` with what ``build`` gathers for the viewer (in a worker thread)."""
        viewer: Viewer | None = None
        try:
            viewer = await self.viewer(request)
            gathered = await anyio.to_thread.run_sync(build, viewer)
        except LoginRequired:
            return self.to_login(request)
        except EngramError as error:
            return self.error(request, viewer, error)
        return self.render(template, {**self.context(request, viewer), **gathered})

    async def act(self, request: Request, perform: Callable[[Viewer, Form], str | Confirm]) -> Response:
        """Run a form action after the CSRF and origin checks; redirect (303) or show a confirmation."""
        viewer: Viewer | None = None
        try:
            viewer = await self.viewer(request)
            form = await _form(request)
            check_origin(dict(request.headers))
            check_csrf(viewer.csrf, actions.first(form, "csrf"))
            outcome = await anyio.to_thread.run_sync(perform, viewer, form)
        except LoginRequired:
            return self.to_login(request)
        except EngramError as error:
            return self.error(request, viewer, error)
        if isinstance(outcome, Confirm):
            return self.render(outcome.template, {**self.context(request, viewer), **outcome.context})
        return RedirectResponse(outcome, status_code=303, headers=SECURITY_HEADERS)

    def to_login(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(link("/login", next=target if request.method == "GET" else None), status_code=303,
                                headers=SECURITY_HEADERS)

    def login_page(self, request: Request, next_url: str, *, failed: bool = False) -> Response:
        """The login form, with a fresh login CSRF token in a cookie (a cross-site form cannot send it)."""
        token = secrets.token_urlsafe(24)
        response = self.render("login.html", {**self.context(request, None), "login_csrf": token,
                                              "next": next_url, "failed": failed}, status=401 if failed else 200)
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path=COOKIE_PATH,
                            secure=request.url.scheme == "https")
        return response

    async def login_form(self, request: Request) -> Response:
        if self.local:
            return RedirectResponse(link("/"), status_code=303)
        return self.login_page(request, _safe_next(request.query_params.get("next")))

    async def login(self, request: Request) -> Response:
        if self.sessions is None:
            return RedirectResponse(link("/"), status_code=303)
        sessions = self.sessions
        next_url = link("/")
        try:
            form = await _form(request)
            next_url = _safe_next(actions.first(form, "next"))
            check_origin(dict(request.headers))
            check_csrf(request.cookies.get(LOGIN_COOKIE, ""), actions.first(form, "login_csrf"))
            session_id, _ = await anyio.to_thread.run_sync(sessions.login, actions.first(form, "key"))
        except AuthenticationError:
            return self.login_page(request, next_url, failed=True)
        except EngramError as error:
            return self.error(request, None, error)
        response = RedirectResponse(next_url, status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="strict", path=COOKIE_PATH,
                            secure=request.url.scheme == "https")
        response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
        return response

    async def logout(self, request: Request) -> Response:
        def forget(viewer: Viewer, form: Form) -> str:
            if self.sessions is not None:
                self.sessions.logout(viewer.session_id)
            return link("/login")
        response: Response = await self.act(request, forget)
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response


async def _form(request: Request) -> Form:
    """The urlencoded form of a POST (at most ``MAX_FORM_BYTES``: the local mode has no body limit before it)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLargeError(f"the form is larger than {MAX_FORM_BYTES} bytes", field="body")
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def _safe_next(target: str | None) -> str:
    """Where to go after login: only a path inside the inspector (no open redirect)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return link("/")


def _routes(ui: Inspector) -> list[Route | Mount]:
    memory = ui.memory

    def params(request: Request) -> dict[str, str]:
        return dict(request.query_params)

    async def scopes(request: Request) -> Response:
        return await ui.page(request, "scopes.html",
                             lambda viewer: {"scopes": pages.scopes_page(memory, viewer.principal)})

    async def timeline(request: Request) -> Response:
        def build(viewer: Viewer) -> dict[str, Any]:
            scope = pages.chosen_scope(viewer.principal, params(request))
            filters = pages.TimelineFilters.from_params(params(request))
            return {"scope": scope, "filters": filters, "entries": pages.timeline_page(memory, scope, filters)}
        return await ui.page(request, "timeline.html", build)

    async def memory_view(request: Request) -> Response:
        memory_id = request.path_params["memory_id"]
        return await ui.page(request, "memory.html",
                             lambda viewer: {"view": pages.memory_page(memory, viewer.principal, memory_id)})

    async def delete_form(request: Request) -> Response:
        memory_id = request.path_params["memory_id"]
        return await ui.page(request, "confirm_delete.html",
                             lambda viewer: {"item": owned_memory(memory, viewer.principal, memory_id)})

    async def search(request: Request) -> Response:
        def build(viewer: Viewer) -> dict[str, Any]:
            scope = pages.chosen_scope(viewer.principal, params(request))
            query = params(request)
            found = pages.search_page(memory, scope, query) if query.get("q", "").strip() else None
            return {"scope": scope, "query": query, "found": found}
        return await ui.page(request, "search.html", build)

    async def quarantine(request: Request) -> Response:
        def build(viewer: Viewer) -> dict[str, Any]:
            scope = {name: params(request).get(name) for name in ("user_id", "agent_id", "run_id")}
            return {"records": pages.quarantine_page(memory, viewer.principal, params(request)), "scope": scope}
        return await ui.page(request, "quarantine.html", build)

    async def stats(request: Request) -> Response:
        def build(viewer: Viewer) -> dict[str, Any]:
            scope = pages.chosen_scope(viewer.principal, params(request))
            return {"scope": scope, "stats": pages.stats_page(memory, scope)}
        return await ui.page(request, "stats.html", build)

    def on_memory(action: Callable[[Memory, Any, str, Form], str]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            memory_id = request.path_params["memory_id"]
            return await ui.act(request, lambda viewer, form: action(memory, viewer.principal, memory_id, form))
        return endpoint

    async def quarantine_action(request: Request) -> Response:
        return await ui.act(request, lambda viewer, form: actions.quarantine(memory, viewer.principal, form))

    static = StaticFiles(directory=Path(__file__).parent / "static")
    return [
        Route("/", scopes), Route("/scope", timeline), Route("/search", search), Route("/stats", stats),
        Route("/quarantine", quarantine), Route("/quarantine", quarantine_action, methods=["POST"]),
        Route("/memory/{memory_id}", memory_view),
        Route("/memory/{memory_id}/edit", on_memory(actions.edit), methods=["POST"]),
        Route("/memory/{memory_id}/delete", delete_form),
        Route("/memory/{memory_id}/delete", on_memory(actions.delete), methods=["POST"]),
        Route("/memory/{memory_id}/feedback", on_memory(actions.feedback), methods=["POST"]),
        Route("/login", ui.login_form), Route("/login", ui.login, methods=["POST"]),
        Route("/logout", ui.logout, methods=["POST"]),
        Mount("/static", app=static, name="static"),
    ]


def create_ui_app(memory: Memory, *, keys: KeyStore | None = None) -> Starlette:
    """The inspector over ``memory``: behind browser sessions for ``keys``, or in local mode (no key,
    loopback only) when ``keys`` is None. Mount it at ``/ui``."""
    ui = Inspector(memory, keys)
    app = Starlette(routes=_routes(ui))

    async def not_found(request: Request, error: Exception) -> Response:
        return ui.render("error.html", {**ui.context(request, None),
                                        "error": EngramError("no such page", field="path")}, status=404)

    app.add_exception_handler(404, not_found)
    return app
