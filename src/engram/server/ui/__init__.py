"""The web inspector: see, search, explain and correct what an agent remembers.

``create_ui_app`` builds the pages (mounted at ``/ui`` by ``engram serve``, behind API keys);
``create_local_app`` serves them alone for ``engram ui`` (loopback, no key)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route

from engram.memory import Memory
from engram.server.ui.app import create_ui_app


def create_local_app(memory: Memory) -> Starlette:
    """The inspector alone, in local mode, at ``/ui`` (``/`` redirects there)."""

    async def home(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=307)

    return Starlette(routes=[Route("/", home), Mount("/ui", app=create_ui_app(memory))])


__all__ = ["create_local_app", "create_ui_app"]
