"""The fake OpenAI server with a script for ``/v1/embeddings`` too: queued replies (errors, broken
JSON, slow answers, hand-made bodies) are served first, then the usual deterministic vectors."""

from __future__ import annotations

import json
from collections import deque
from http.server import BaseHTTPRequestHandler

from support.fake_openai import FakeOpenAIServer, RecordedRequest, Reply


class EmbeddingServer(FakeOpenAIServer):
    """A real HTTP server on 127.0.0.1 whose embeddings endpoint can be scripted reply by reply."""

    def __init__(self, *, embedding_dim: int = 16) -> None:
        super().__init__(embedding_dim=embedding_dim)
        self._embedding_replies: deque[Reply] = deque()
        self._httpd.RequestHandlerClass = _scripted_handler(self._httpd.RequestHandlerClass, self)

    def queue_embeddings(self, *replies: Reply) -> None:
        """Append replies; each embeddings request consumes the first one left."""
        with self._lock:
            self._embedding_replies.extend(replies)

    def reset(self) -> None:
        """Forget the scripts (chat and embeddings) and the recorded requests."""
        super().reset()
        with self._lock:
            self._embedding_replies.clear()

    def next_embedding_reply(self) -> Reply | None:
        with self._lock:
            return self._embedding_replies.popleft() if self._embedding_replies else None

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path.endswith("/embeddings")]


def _scripted_handler(base: type[BaseHTTPRequestHandler], server: EmbeddingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(base):  # type: ignore[valid-type,misc]
        def do_POST(self) -> None:
            reply = server.next_embedding_reply() if self.path.endswith("/embeddings") else None
            if reply is None:
                super().do_POST()
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            server._record(RecordedRequest("POST", self.path, body, dict(self.headers.items())))
            if reply.delay_s and server._stopping.wait(reply.delay_s):
                return
            payload = reply.raw_body if reply.raw_body is not None else (reply.content or "")
            self._send(reply.status, payload, reply.headers)

    return Handler
