"""A real OpenAI-compatible HTTP server for tests, scripted reply by reply.

In-process (pytest)::

    def test_x(fake_openai):                      # fixture defined below
        fake_openai.queue(Reply.json({"facts": []}), Reply.error(429, retry_after=0))
        llm = OpenAICompatLLM(base_url=fake_openai.url, model="fake")
        ...
        assert fake_openai.chat_calls == 2

Another process: ``python -m tests.support.fake_openai --port 0`` prints ``READY <base_url>``;
script it over HTTP with ``POST /_control/queue`` (``{"replies": [Reply.to_dict()...]}``),
``POST /_control/default`` (one reply used when the queue is empty), ``GET /_control/requests``
and ``POST /_control/reset``.

Endpoints: ``POST /v1/chat/completions`` (the next scripted reply), ``POST /v1/embeddings``
(deterministic hash-based unit vectors, ``dim`` configurable) and ``GET /v1/models``. With no
reply scripted it answers 418, which clients do not retry, so a missing script fails loudly."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Reply:
    """One scripted answer to a chat request."""

    status: int = 200
    content: str | None = ""
    reasoning: str | None = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: str | None = None
    prompt_tokens: int = 11
    completion_tokens: int = 7

    @classmethod
    def json(cls, payload: Any, **options: Any) -> Reply:
        """A 200 whose content is ``payload`` serialised as JSON."""
        return cls(content=json.dumps(payload), **options)

    @classmethod
    def text(cls, content: str, **options: Any) -> Reply:
        """A 200 whose content is ``content`` verbatim (prose, fences, broken JSON...)."""
        return cls(content=content, **options)

    @classmethod
    def error(cls, status: int, message: str = "scripted error", *,
              retry_after: str | float | None = None) -> Reply:
        """An OpenAI-style error body with ``status`` (and a ``Retry-After`` header if given)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}})
        return cls(status=status, headers=headers, raw_body=body)

    @classmethod
    def timeout(cls, delay_s: float) -> Reply:
        """A reply held back ``delay_s`` seconds (longer than the client's timeout)."""
        return cls(content="{}", delay_s=delay_s)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


class FakeOpenAIServer:
    """The server and its script. ``responder``, when set, answers chat requests instead of the queue."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, embedding_dim: int = 64) -> None:
        self.embedding_dim = embedding_dim
        self.requests: list[RecordedRequest] = []
        self.responder: Callable[[dict[str, Any]], Reply] | None = None
        self.default: Reply | None = None
        self.max_in_flight = 0
        self._in_flight = 0
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL to give clients, ending in ``/v1``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def queue(self, *replies: Reply) -> None:
        """Append replies; each chat request consumes the first one left."""
        with self._lock:
            self._replies.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self.requests.clear()
            self.responder = None
            self.default = None
            self.max_in_flight = 0

    @property
    def pending(self) -> int:
        """Scripted replies not consumed yet."""
        with self._lock:
            return len(self._replies)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path.endswith("/chat/completions")]

    @property
    def chat_calls(self) -> int:
        return len(self.chat_requests)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _next_reply(self, body: dict[str, Any]) -> Reply | None:
        if self.responder is not None:
            return self.responder(body)
        with self._lock:
            return self._replies.popleft() if self._replies else self.default


def embedding_for(text: str, dim: int) -> list[float]:
    """The deterministic unit vector the server returns for ``text``."""
    values: list[float] = []
    counter = 0
    while len(values) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend(byte / 127.5 - 1.0 for byte in digest)
        counter += 1
    values = values[:dim]
    norm = math.sqrt(sum(value * value for value in values)) or 1.0
    return [value / norm for value in values]


def _chat_body(reply: Reply, request: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.reasoning is not None:
        message["reasoning_content"] = reply.reasoning
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": request.get("model", "fake"),
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                  "total_tokens": reply.prompt_tokens + reply.completion_tokens},
    }


def _handler_for(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

        def do_GET(self) -> None:
            if self.path.endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
            elif self.path == "/_control/requests":
                self._send(200, {"requests": [asdict(request) for request in list(server.requests)]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._send(400, {"error": {"message": "body is not JSON"}})
                return
            if self.path.startswith("/_control/"):
                self._control(body)
                return
            server._record(RecordedRequest("POST", self.path, body, dict(self.headers.items())))
            if self.path.endswith("/chat/completions"):
                self._chat(body)
            elif self.path.endswith("/embeddings"):
                texts = body.get("input", [])
                texts = [texts] if isinstance(texts, str) else texts
                data = [{"object": "embedding", "index": index,
                         "embedding": embedding_for(text, server.embedding_dim)} for index, text in enumerate(texts)]
                self._send(200, {"object": "list", "data": data, "model": body.get("model", "fake"),
                                 "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)}})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def _chat(self, body: dict[str, Any]) -> None:
            server._enter()
            try:
                reply = server._next_reply(body)
                if reply is None:
                    self._send(418, {"error": {"message": "fake server: no scripted reply left"}})
                    return
                if reply.delay_s and server._stopping.wait(reply.delay_s):
                    return
                payload = reply.raw_body if reply.raw_body is not None else json.dumps(_chat_body(reply, body))
                self._send(reply.status, payload, reply.headers)
            finally:
                server._leave()

        def _control(self, body: dict[str, Any]) -> None:
            if self.path == "/_control/queue":
                server.queue(*(Reply(**item) for item in body.get("replies", [])))
            elif self.path == "/_control/default":
                server.default = Reply(**body) if body else None
            elif self.path == "/_control/reset":
                server.reset()
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            self._send(200, {"ok": True, "pending": server.pending})

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A started server, stopped after the test."""
    server = FakeOpenAIServer().start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the server in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--default-json", help="a JSON payload every chat request answers with")
    options = parser.parse_args(argv)
    server = FakeOpenAIServer(options.host, options.port, embedding_dim=options.embedding_dim)
    if options.default_json:
        server.default = Reply(content=options.default_json)
    print(f"READY {server.url}", flush=True)
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])
