"""An embedder for any OpenAI-compatible ``POST {base_url}/embeddings`` endpoint (OpenAI, vLLM,
llama.cpp server, Ollama, LiteLLM, TEI...), over httpx with retries and batching."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from engram.embed._validation import as_text_list, require_number
from engram.embed.base import Embedder, normalize_rows
from engram.errors import ConfigurationError, EmbeddingError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 30.0
STATUS_HINTS = {
    400: "the server rejected the request: check the model name, dimensions and input length",
    401: "check api_key (ENGRAM_EMBED_API_KEY or OPENAI_API_KEY)",
    403: "the api_key is not allowed to use this model",
    404: "check base_url (it should end in /v1) and the model name",
    413: "the batch is too large: lower batch_size",
    429: "rate limited: lower the request rate or raise max_retries",
}


class EmbeddingHTTPError(EmbeddingError):
    """The embeddings endpoint failed; ``status_code`` is the HTTP status, or None without a reply."""

    def __init__(self, message: str, *, status_code: int | None, hint: str | None = None) -> None:
        self.status_code = status_code
        super().__init__(message, field="embedder", hint=hint)


class OpenAIEmbedder(Embedder):
    """Vectors from an OpenAI-compatible embeddings API.

    ``dimensions`` is sent to the server (models such as text-embedding-3 shorten their vectors);
    without it the dimension is learnt from the first reply, with one probe request if ``dim`` is read
    before anything was embedded. 429, 5xx and timeouts are retried ``max_retries`` times with
    exponential backoff (honouring ``Retry-After``); other failures raise :class:`EmbeddingHTTPError`.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        dimensions: int | None = None,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        batch_size: int = 256,
        name: str | None = None,
    ) -> None:
        if not model or not isinstance(model, str):
            raise ConfigurationError("a model name is required", field="model")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"must be an http(s) URL, got {base_url!r}", field="base_url")
        if dimensions is not None:
            require_number(dimensions, "dimensions", minimum=1)
        require_number(batch_size, "batch_size", minimum=1)
        require_number(max_retries, "max_retries", minimum=0)
        require_number(backoff, "backoff", minimum=0, integer=False)
        require_number(timeout, "timeout", minimum=0.001, integer=False)
        self.model = model
        self.url = base_url.rstrip("/") + "/embeddings"
        self.dimensions = dimensions
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.batch_size = batch_size
        self.name = f"openai:{name or model}"
        self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._dim: int | None = dimensions
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:  # type: ignore[override]
        """The vector dimension; unknown until the first reply, so reading it early sends one probe."""
        if self._dim is None:
            self.embed(["dimension probe"])
        assert self._dim is not None
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` in requests of at most ``batch_size`` inputs; rows are L2-normalised."""
        items = as_text_list(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        batches = [
            self._embed_batch(items[start : start + self.batch_size]) for start in range(0, len(items), self.batch_size)
        ]
        return np.concatenate(batches)

    def close(self) -> None:
        """Close the HTTP connection pool (a later call opens a new one)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        payload: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.dimensions is not None:
            payload["dimensions"] = self.dimensions
        vectors = _parse_reply(self._post(payload), expected=len(texts))
        with self._lock:
            if self._dim is None:
                self._dim = vectors.shape[1]
        if vectors.shape[1] != self._dim:
            raise EmbeddingHTTPError(
                f"the server returned {vectors.shape[1]}-d vectors, expected {self._dim}",
                status_code=200,
                hint="the model behind base_url changed, or it ignores the dimensions parameter",
            )
        return normalize_rows(vectors)

    def _post(self, payload: dict[str, Any]) -> Any:
        client = self._http()
        failure: EmbeddingHTTPError | None = None
        retry_after: str | None = None
        for attempt in range(1, self.max_retries + 2):
            if failure is not None:
                time.sleep(self._delay(attempt - 2, retry_after))
            try:
                response = client.post(self.url, json=payload)
            except httpx.TransportError as exc:
                timed_out = isinstance(exc, httpx.TimeoutException)
                detail = f"timed out after {self.timeout} s" if timed_out else f"cannot reach the server: {exc!r}"
                failure = self._failure(detail, None, "check base_url, or raise timeout", attempt)
                failure.__cause__ = exc
                retry_after = None
                continue
            if response.status_code == 200:
                try:
                    return response.json()
                except ValueError as exc:
                    hint = "is base_url an OpenAI-compatible embeddings API?"
                    raise self._failure("the reply is not JSON", 200, hint, attempt) from exc
            hint = STATUS_HINTS.get(response.status_code, "the server failed; retry later")
            failure = self._failure(
                f"HTTP {response.status_code}: {response.text[:300]}", response.status_code, hint, attempt
            )
            if response.status_code not in RETRYABLE_STATUSES:
                raise failure
            retry_after = response.headers.get("retry-after")
        assert failure is not None
        raise failure

    def _failure(self, detail: str, status_code: int | None, hint: str, attempts: int) -> EmbeddingHTTPError:
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        message = f"embedding request to {self.url} failed after {tries}: {detail}"
        return EmbeddingHTTPError(message, status_code=status_code, hint=hint)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), MAX_RETRY_AFTER_S)
            except ValueError:
                pass
        return min(self.backoff * (2**attempt) * (0.5 + random.random() / 2), MAX_RETRY_AFTER_S)

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
                self._client = httpx.Client(timeout=self.timeout, headers=headers)
            return self._client


def _parse_reply(body: Any, *, expected: int) -> np.ndarray:
    """The ``data[*].embedding`` rows of an embeddings reply, ordered by ``index``."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or len(data) != expected:
        found = len(data) if isinstance(data, list) else "no"
        raise EmbeddingHTTPError(
            f"malformed reply: expected {expected} embeddings in 'data', found {found}",
            status_code=200,
            hint="is base_url an OpenAI-compatible embeddings API?",
        )
    try:
        rows = sorted(data, key=lambda row: int(row.get("index", 0)))
        vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise EmbeddingHTTPError(
            f"malformed reply: {exc!r}", status_code=200, hint="each item needs a numeric 'embedding' list"
        ) from exc
    if vectors.ndim != 2 or vectors.shape[1] == 0 or not np.isfinite(vectors).all():
        raise EmbeddingHTTPError(
            "malformed reply: embeddings are empty, ragged or not finite",
            status_code=200,
            hint="each item needs a numeric 'embedding' list",
        )
    return vectors
