"""The REST API: ``create_app(memory, keys=...)`` builds a FastAPI app over one ``Memory``.

Routes mirror the Python API one to one and return exactly what ``Memory`` returns (the same
pydantic models, documented at ``/docs``). Every ``/v1`` request passes the guard (API key, rate
limit, body size); scope ids are then resolved from the caller's key (``engram.server.auth``).
Errors are problem-details JSON naming the same typed error classes as the Python API."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response

from engram import __version__
from engram.errors import ConfigurationError, EngramError, NotFoundError, StorageError, ValidationError
from engram.memory import Memory
from engram.models import AddResponse, AnswerResponse, HistoryEvent, MemoryItem, SearchResponse
from engram.server.auth import (
    FeatureUnavailableError,
    Principal,
    RateLimiter,
    owned_memory,
    require_admin,
    resolve_scope,
    scope_of,
    visible,
)
from engram.server.middleware import GuardMiddleware, Metrics, MetricsMiddleware, principal_of
from engram.server.problems import field_of, is_json_content_type, problem_response, unparsable_body
from engram.server.schemas import (
    AddRequest,
    AnswerRequest,
    DeleteAllResponse,
    DeleteResponse,
    Health,
    MemoryPage,
    Problem,
    ResetResponse,
    SearchRequest,
    UpdateRequest,
    UpdateResponse,
)
from engram.server.ui import create_ui_app
from engram.store.key_store import KeyStore

logger = logging.getLogger("engram.server")

PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description} for status, description in (
        (400, "a scope id is required"), (401, "missing, unknown or revoked API key"),
        (403, "outside the key's scope, or needs an admin key"), (404, "no such memory in the caller's scope"),
        (413, "request body too large"), (422, "invalid input (the field is named)"),
        (429, "rate limit exceeded (see Retry-After)"), (503, "storage unavailable, or no LLM for answers"))
}


@dataclass(frozen=True)
class ServerLimits:
    """Request body size (bytes), per-key rate limit (requests/s, 0 = off, and burst) and the
    largest page (``limit``) a list or search may ask for."""

    max_body_bytes: int = 1_048_576
    rate_per_second: float = 50.0
    burst: int = 100
    max_page_size: int = 1000

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1024:
            raise ConfigurationError("must be at least 1024", field="max_body_bytes")
        if self.max_page_size < 1:
            raise ConfigurationError("must be at least 1", field="max_page_size")


async def _caller(request: Request) -> Principal:
    return principal_of(request.state)


Caller = Annotated[Principal, Depends(_caller)]


def _filters_param(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON: {exc.msg}", field="filters") from None
    except RecursionError:
        raise ValidationError("nested too deeply", field="filters") from None
    if not isinstance(value, dict):
        raise ValidationError("must be a JSON object", field="filters")
    return value


def _add_memory_routes(router: APIRouter, memory: Memory, limits: ServerLimits) -> None:
    page_limit = Query(100, ge=1, le=limits.max_page_size, description="page size")

    def owned(principal: Principal, memory_id: str) -> dict[str, Any]:
        return owned_memory(memory, principal, memory_id)

    @router.post("/v1/memories", response_model=AddResponse, responses=PROBLEMS, tags=["memories"])
    def add(body: AddRequest, principal: Caller) -> Response:
        """Remember messages (``Memory.add``)."""
        scope = resolve_scope(principal, user_id=body.user_id, agent_id=body.agent_id, run_id=body.run_id,
                              filters=body.filters)
        return JSONResponse(memory.add(body.messages, **scope, metadata=body.metadata, timestamp=body.timestamp,
                                       infer=body.infer, filters=body.filters))

    @router.post("/v1/memories/search", response_model=SearchResponse, responses=PROBLEMS, tags=["memories"])
    def search(body: SearchRequest, principal: Caller) -> Response:
        """Memories relevant to a query, best first, with an abstention signal (``Memory.search``)."""
        if not 1 <= body.limit <= limits.max_page_size:
            raise ValidationError(f"must be an integer from 1 to {limits.max_page_size}", field="limit")
        scope = resolve_scope(principal, user_id=body.user_id, agent_id=body.agent_id, run_id=body.run_id,
                              filters=body.filters)
        return JSONResponse(memory.search(body.query, **scope, filters=body.filters, limit=body.limit,
                                          reference_date=body.reference_date, threshold=body.threshold,
                                          explain=body.explain, include_archived=body.include_archived))

    @router.get("/v1/memories", response_model=MemoryPage, responses=PROBLEMS, tags=["memories"])
    def get_all(principal: Caller, user_id: str | None = None, agent_id: str | None = None,
                run_id: str | None = None,
                filters: Annotated[str | None, Query(description="filters as a JSON object")] = None,
                limit: int = page_limit, offset: Annotated[int, Query(ge=0)] = 0,
                include_archived: bool = False) -> Response:
        """One page of a scope's memories, newest first, with the total (``Memory.get_all``)."""
        parsed = _filters_param(filters)
        scope = resolve_scope(principal, user_id=user_id, agent_id=agent_id, run_id=run_id, filters=parsed)
        return JSONResponse(memory.get_all(**scope, filters=parsed, limit=limit, offset=offset,
                                           include_archived=include_archived))

    @router.delete("/v1/memories", response_model=DeleteAllResponse, responses=PROBLEMS, tags=["memories"])
    def delete_all(principal: Caller, user_id: str | None = None, agent_id: str | None = None,
                   run_id: str | None = None,
                   filters: Annotated[str | None, Query(description="filters as a JSON object")] = None) -> Response:
        """Delete every memory and episode of one scope, or only the memories that match ``filters``
        (``Memory.delete_all``)."""
        parsed = _filters_param(filters)
        scope = resolve_scope(principal, user_id=user_id, agent_id=agent_id, run_id=run_id, filters=parsed)
        return JSONResponse(memory.delete_all(**scope, filters=parsed))

    @router.get("/v1/memories/{memory_id}", response_model=MemoryItem, responses=PROBLEMS, tags=["memories"])
    def get(memory_id: str, principal: Caller) -> Response:
        """One memory (``Memory.get``)."""
        return JSONResponse(owned(principal, memory_id))

    @router.put("/v1/memories/{memory_id}", response_model=UpdateResponse, responses=PROBLEMS, tags=["memories"])
    def update(memory_id: str, body: UpdateRequest, principal: Caller) -> Response:
        """Replace a memory's text; the old text stays in its history (``Memory.update``)."""
        owned(principal, memory_id)
        return JSONResponse(memory.update(memory_id, body.text, metadata=body.metadata))

    @router.delete("/v1/memories/{memory_id}", response_model=DeleteResponse, responses=PROBLEMS, tags=["memories"])
    def delete(memory_id: str, principal: Caller) -> Response:
        """Delete a memory everywhere it lives (``Memory.delete``)."""
        owned(principal, memory_id)
        return JSONResponse(memory.delete(memory_id))

    @router.get("/v1/memories/{memory_id}/history", response_model=list[HistoryEvent], responses=PROBLEMS,
                tags=["memories"])
    def history(memory_id: str, principal: Caller) -> Response:
        """Every change to a memory, oldest first, also after deletion (``Memory.history``).

        For a non-admin key, a memory with no history in its scope is not found (404)."""
        events = memory.history(memory_id)
        if not principal.admin and not all(visible(principal, scope_of(e)) for e in events):
            raise NotFoundError(f"no memory with id {memory_id!r}", field="memory_id")
        return JSONResponse(events)

    @router.post("/v1/reset", response_model=ResetResponse, responses=PROBLEMS, tags=["admin"])
    def reset(principal: Caller) -> Response:
        """Remove everything, for every scope (admin keys only)."""
        require_admin(principal, "reset")
        memory.reset()
        return JSONResponse({"message": "Memory reset successfully!"})

    @router.post("/v1/answer", response_model=AnswerResponse, responses=PROBLEMS, tags=["answer"])
    def answer(body: AnswerRequest, principal: Caller) -> Response:
        """Answer a question from the scope's memories, citing them, or abstain (``Memory.answer``).

        Needs an LLM on the server (``ENGRAM_LLM_BASE_URL``, ``ENGRAM_LLM_MODEL``): 503 otherwise."""
        if memory.llm is None:
            raise FeatureUnavailableError("no LLM is configured on the server", field="llm",
                                          hint="start it with ENGRAM_LLM_BASE_URL and ENGRAM_LLM_MODEL set")
        if not 1 <= body.limit <= limits.max_page_size:
            raise ValidationError(f"must be an integer from 1 to {limits.max_page_size}", field="limit")
        scope = resolve_scope(principal, user_id=body.user_id, agent_id=body.agent_id, run_id=body.run_id,
                              filters=body.filters)
        return JSONResponse(memory.answer(body.question, **scope, filters=body.filters, limit=body.limit,
                                          reference_date=body.reference_date))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(EngramError)
    async def engram_error(request: Request, error: EngramError) -> Response:
        if isinstance(error, StorageError):
            logger.error("storage error on %s %s: %s", request.method, request.url.path, error)
            error = StorageError("the memory store is unavailable; try again later",
                                 hint="the server log has the details")
        return problem_response(error, instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, error: RequestValidationError) -> Response:
        found = [{"field": field_of(item.get("loc", ())), "message": str(item.get("msg", "invalid")),
                  "type": str(item.get("type", ""))} for item in error.errors()]
        first = found[0] if found else {"field": "body", "message": "invalid request"}
        detail = "; ".join(f"{item['field']}: {item['message']}" for item in found[:5]) or first["message"]
        hint = None
        if first["field"] == "body" and not is_json_content_type(request.headers.get("content-type")):
            hint = "send the body as JSON with the header Content-Type: application/json"
        return problem_response(ValidationError(detail, field=first["field"], hint=hint), instance=request.url.path,
                                errors=found)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 404:
            known: EngramError = NotFoundError(f"no route {request.url.path}", field="path")
        elif error.status_code == 400:
            known = unparsable_body(error.__cause__)
        else:
            known = EngramError(str(error.detail))
            known.http_status = error.status_code
        return problem_response(known, instance=request.url.path, status=error.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(EngramError("internal server error", hint="see the server log"),
                                instance=request.url.path)


def create_app(memory: Memory, *, keys: KeyStore | None = None, auth: bool = True,
               limits: ServerLimits | None = None) -> FastAPI:
    """The FastAPI app serving ``memory``. With ``auth`` (the default) every ``/v1`` request needs
    a key from ``keys``; ``auth=False`` is for loopback development only (see ``check_bind``). The web
    inspector is mounted at ``/ui`` (browser sessions opened with the same keys)."""
    if auth and keys is None:
        raise ConfigurationError("authentication needs a key store", field="keys",
                                 hint="pass keys=open_key_store(...), or auth=False on loopback only")
    limits = limits or ServerLimits()
    metrics = Metrics()
    app = FastAPI(title="Engram", version=__version__, summary="Long-term memory for LLM agents.",
                  description="Every /v1 route needs `Authorization: Bearer <key>` or `X-API-Key`. Errors are "
                              "RFC 9457 problem details whose `error` names the Python API's error class.")
    app.state.memory = memory
    app.state.keys = keys
    app.state.metrics = metrics
    from engram.server.learning_routes import add_learning_routes  # it imports this module's Caller

    _add_memory_routes(app.router, memory, limits)
    add_learning_routes(app.router, memory, PROBLEMS)
    backend = type(memory.store).__name__.removesuffix("Store").lower()

    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def healthz() -> Health:
        """Liveness: the server is up (no authentication)."""
        return Health(status="ok", version=__version__, backend=backend, auth=auth, llm=memory.llm is not None)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"])
    async def prometheus() -> PlainTextResponse:
        """Request counters and latency histograms in the Prometheus text format."""
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    app.mount("/ui", create_ui_app(memory, keys=keys if auth else None), name="ui")
    _install_error_handlers(app)
    app.add_middleware(GuardMiddleware, keys=keys if auth else None,
                       limiter=RateLimiter(limits.rate_per_second, limits.burst),
                       max_body_bytes=limits.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=lambda: app.router.routes)
    return app
