"""ASGI middleware: Prometheus metrics for every request, and the guard in front of ``/v1``
(API key, per-key rate limit, request body size). Both are plain ASGI, so they add microseconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio.to_thread
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engram.errors import EngramError
from engram.server.auth import (
    AuthenticationError,
    PayloadTooLargeError,
    Principal,
    RateLimiter,
    authenticate,
    credentials,
)
from engram.server.problems import problem_response
from engram.store.key_store import KeyStore

LATENCY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "unmatched"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LOOSE_CONTENT_TYPES = frozenset({b"", b"application/x-www-form-urlencoded", b"text/plain"})
_Labels = tuple[str, str, str]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Request counters and latency histograms by method, route template and status."""

    def __init__(self, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.buckets = tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._requests: dict[_Labels, int] = {}
        self._latency: dict[_Labels, list[float]] = {}
        self._in_progress = 0

    def started(self) -> None:
        with self._lock:
            self._in_progress += 1

    def finished(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        labels = (method, route, str(status))
        with self._lock:
            self._in_progress -= 1
            self._requests[labels] = self._requests.get(labels, 0) + 1
            counts = self._latency.setdefault(labels, [0.0] * (len(self.buckets) + 1))
            for index, bound in enumerate(self.buckets):
                if seconds <= bound:
                    counts[index] += 1
            counts[-1] += seconds

    def render(self) -> str:
        """Everything in the Prometheus text exposition format (version 0.0.4)."""
        with self._lock:
            requests = dict(self._requests)
            latency = {labels: list(values) for labels, values in self._latency.items()}
            in_progress = self._in_progress
        lines = ["# HELP engram_http_requests_total HTTP requests handled, by method, route and status.",
                 "# TYPE engram_http_requests_total counter"]
        for labels, count in sorted(requests.items()):
            lines.append(f"engram_http_requests_total{{{self._labels(labels)}}} {count}")
        lines += ["# HELP engram_http_request_duration_seconds Time to handle an HTTP request.",
                  "# TYPE engram_http_request_duration_seconds histogram"]
        for labels, values in sorted(latency.items()):
            base = self._labels(labels)
            for bound, cumulative in zip(self.buckets, values, strict=False):
                lines.append(f'engram_http_request_duration_seconds_bucket{{{base},le="{bound:g}"}} {cumulative:g}')
            lines.append(f'engram_http_request_duration_seconds_bucket{{{base},le="+Inf"}} {requests[labels]}')
            lines.append(f"engram_http_request_duration_seconds_sum{{{base}}} {values[-1]:.6f}")
            lines.append(f"engram_http_request_duration_seconds_count{{{base}}} {requests[labels]}")
        lines += ["# HELP engram_http_requests_in_progress HTTP requests being handled now.",
                  "# TYPE engram_http_requests_in_progress gauge",
                  f"engram_http_requests_in_progress {in_progress}"]
        return "\n".join(lines) + "\n"

    @staticmethod
    def _labels(labels: _Labels) -> str:
        method, route, status = labels
        return f'method="{_escape(method)}",route="{_escape(route)}",status="{status}"'


class MetricsMiddleware:
    """Times every HTTP request and records it under its route template (never the raw path)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        began = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.started()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self.metrics.finished(scope["method"], self._route(scope), status, time.perf_counter() - began)

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            for candidate in self.routes():
                match, _ = candidate.matches(scope)
                if match is not Match.NONE:
                    route = candidate
                    break
        path = getattr(route, "path", None)
        return path if isinstance(path, str) else UNMATCHED_ROUTE


class GuardMiddleware:
    """In front of the app: bounds every request body, and for paths under ``protected`` checks the
    API key (in a worker thread: the key store is blocking) and the caller's rate limit. The caller
    ends up in ``request.state.principal``. Refusals are problem-details responses."""

    def __init__(self, app: ASGIApp, *, keys: KeyStore | None, limiter: RateLimiter, max_body_bytes: int,
                 protected: str = "/v1") -> None:
        self.app = app
        self.keys = keys
        self.limiter = limiter
        self.max_body_bytes = max_body_bytes
        self.protected = protected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            if scope["path"] == self.protected or scope["path"].startswith(self.protected + "/"):
                principal = await self._principal(scope)
                client = scope.get("client")
                self.limiter.check(principal.key_id or f"client:{client[0] if client else '-'}")
                scope.setdefault("state", {})["principal"] = principal
            if scope["method"] in _BODY_METHODS:
                receive = await self._bounded(scope, receive)
                scope = _json_by_default(scope)
        except EngramError as error:
            await problem_response(error, instance=scope["path"])(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _principal(self, scope: Scope) -> Principal:
        if self.keys is None:
            return Principal.anonymous()
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        return await anyio.to_thread.run_sync(authenticate, self.keys, credentials(headers))

    async def _bounded(self, scope: Scope, receive: Receive) -> Receive:
        """Read the whole body (at most ``max_body_bytes``) and hand it on; 413 beyond that."""
        too_large = PayloadTooLargeError(f"request body is larger than {self.max_body_bytes} bytes", field="body",
                                         hint="split the request (e.g. fewer messages per add)")
        for name, value in scope["headers"]:
            if name.lower() == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                raise too_large
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                raise too_large
            if not message.get("more_body", False):
                break
        body = b"".join(message.get("body", b"") for message in messages if message["type"] == "http.request")
        replay: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
        replay += [message for message in messages if message["type"] != "http.request"]

        async def replaying_receive() -> Message:
            return replay.pop(0) if replay else await receive()

        return replaying_receive


def _json_by_default(scope: Scope) -> Scope:
    """Read the body as JSON (every body this API takes is JSON) when it comes without a content type
    or with the ones ``curl -d`` and browsers send by default (form-urlencoded, text/plain), provided
    the request carries an API key header: a browser cannot send such a request to another site
    without a CORS preflight, which this server does not answer, so this opens no cross-site request
    forgery. Without a key header (``--no-auth`` servers) the content type must say JSON."""
    headers = [(name.lower(), value) for name, value in scope["headers"]]
    names = {name for name, _ in headers}
    if not names & {b"authorization", b"x-api-key"}:
        return scope
    media = next((value.split(b";", 1)[0].strip().lower() for name, value in headers if name == b"content-type"),
                 b"")
    if media not in _LOOSE_CONTENT_TYPES:
        return scope
    kept = [(name, value) for name, value in scope["headers"] if name.lower() != b"content-type"]
    return {**scope, "headers": [*kept, (b"content-type", b"application/json")]}


def principal_of(state: Any) -> Principal:
    """The caller the guard stored on ``request.state``; refused when the guard did not run."""
    principal = getattr(state, "principal", None)
    if not isinstance(principal, Principal):
        raise AuthenticationError("no authenticated caller for this request", field="authorization")
    return principal
