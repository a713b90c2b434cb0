"""An LLM client for any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM, Ollama,
llama.cpp server, LM Studio...), synchronous; async callers run it in a thread.

Transport failures (timeouts, connection errors, 429, 5xx) are retried with exponential backoff
and jitter, honouring ``Retry-After``. Structured output degrades by itself: JSON-schema
``response_format``, then ``json_object``, then a plain prompt with the schema spelled out, each
step taken once when the server answers 400 about ``response_format``; likewise ``max_tokens``
becomes ``max_completion_tokens`` and ``temperature`` is dropped for servers (reasoning models)
that refuse them."""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import httpx

from engram.errors import ConfigurationError, ValidationError
from engram.llm.base import LLM, Completion, LLMRequestError, Message, Usage, schema_instructions
from engram.llm.jsonparse import strip_thinking

_RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_FORMAT_ERROR_WORDS = ("response_format", "json_schema", "json_object", "structured", "grammar")


class StructuredMode(StrEnum):
    """How the client asks for JSON, strongest first."""

    JSON_SCHEMA = "json_schema"
    JSON_OBJECT = "json_object"
    PROMPT = "prompt"


_DOWNGRADE = {StructuredMode.JSON_SCHEMA: StructuredMode.JSON_OBJECT,
              StructuredMode.JSON_OBJECT: StructuredMode.PROMPT}


class OpenAICompatLLM(LLM):
    """Chat completions over HTTP. ``base_url`` ends before ``/chat/completions`` (e.g.
    ``http://localhost:11434/v1``). The API key is sent as a bearer token and never logged."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        max_attempts: int = 3,
        max_concurrency: int = 4,
        temperature: float = 0.0,
        max_tokens: int | None = 2048,
        structured: StructuredMode | str = StructuredMode.JSON_SCHEMA,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(max_attempts=max_attempts)
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"not an http(s) URL: {base_url!r}", field="llm.base_url",
                                     hint="e.g. http://localhost:11434/v1")
        if not model:
            raise ConfigurationError("a model name is required", field="llm.model")
        for field_name, value in (("llm.timeout_s", timeout_s), ("llm.max_concurrency", max_concurrency)):
            if value <= 0:
                raise ValidationError("must be positive", field=field_name)
        if max_retries < 0:
            raise ValidationError("must not be negative", field="llm.max_retries")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.structured = StructuredMode(structured)
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.extra_body = dict(extra_body or {})
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._mode_lock = threading.Lock()
        self._token_parameter = "max_tokens"
        self._send_temperature = True
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def __repr__(self) -> str:
        return (f"OpenAICompatLLM(base_url={self.base_url!r}, model={self.model!r}, "
                f"structured={self.structured.value!r})")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def _complete(self, messages: Sequence[Message], schema: dict[str, Any] | None, name: str) -> Completion:
        requests = 0
        while True:
            mode = self.structured
            body = self._body(messages, schema, name, mode)
            response, used = self._post(body)
            requests += used
            if schema is not None and mode is not StructuredMode.PROMPT and _rejects_format(response):
                self._downgrade(mode)
                continue
            if response.status_code == 400 and self._adapt_parameters(response.text.lower()):
                continue
            if response.status_code != 200:
                status = response.status_code
                raise LLMRequestError(f"the server answered HTTP {status}: {_error_text(response)}",
                                      requests=requests, hint=_hint_for(status))
            return _completion(response, requests)

    def _body(self, messages: Sequence[Message], schema: dict[str, Any] | None, name: str,
              mode: StructuredMode) -> dict[str, Any]:
        chat = [dict(message) for message in messages]
        body: dict[str, Any] = {"model": self.model}
        if self._send_temperature:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body[self._token_parameter] = self.max_tokens
        body.update(self.extra_body)
        if schema is not None:
            if mode is StructuredMode.JSON_SCHEMA:
                body["response_format"] = {"type": "json_schema",
                                           "json_schema": {"name": name, "schema": schema, "strict": False}}
            else:
                if mode is StructuredMode.JSON_OBJECT:
                    body["response_format"] = {"type": "json_object"}
                chat = _append_to_system(chat, schema_instructions(schema))
        body["messages"] = chat
        return body

    def _adapt_parameters(self, error: str) -> bool:
        """Drop or rename a parameter the server refused (reasoning models refuse ``max_tokens``
        and ``temperature``); each change is made at most once, so the caller's loop ends."""
        with self._mode_lock:
            if "max_completion_tokens" in error and self._token_parameter == "max_tokens" and self.max_tokens:
                self._token_parameter = "max_completion_tokens"
                return True
            if "temperature" in error and "support" in error and self._send_temperature:
                self._send_temperature = False
                return True
        return False

    def _downgrade(self, rejected: StructuredMode) -> None:
        with self._mode_lock:
            if self.structured is rejected:
                self.structured = _DOWNGRADE[rejected]

    def _post(self, body: dict[str, Any]) -> tuple[httpx.Response, int]:
        """POST with retries on transient failures; returns the last response and the request count."""
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                with self._slots:
                    response = self._client.post("/chat/completions", json=body)
            except httpx.TimeoutException:
                problem = f"no reply within {self.timeout_s:g} s"
            except httpx.TransportError as error:
                problem = f"could not reach {self.base_url}: {type(error).__name__}"
            else:
                if response.status_code not in _RETRY_STATUSES:
                    return response, attempt
                problem = f"HTTP {response.status_code}: {_error_text(response)}"
                retry_after = _retry_after_s(response)
            if attempt > self.max_retries:
                raise LLMRequestError(f"{problem} (gave up after {attempt} requests)", requests=attempt,
                                      hint="raise llm.timeout_s or llm.max_retries, or check the server")
            time.sleep(self._backoff_s(attempt, retry_after))

    def _backoff_s(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max_s)
        delay = self.backoff_base_s * 2 ** (attempt - 1)
        return min(delay * (0.5 + random.random() / 2), self.backoff_max_s)


def _append_to_system(chat: list[Message], text: str) -> list[Message]:
    if chat and chat[0].get("role") == "system":
        return [{**chat[0], "content": f"{chat[0]['content']}\n\n{text}"}, *chat[1:]]
    return [{"role": "system", "content": text}, *chat]


def _rejects_format(response: httpx.Response) -> bool:
    if response.status_code not in (400, 422, 501):
        return False
    text = response.text.lower()
    return any(word in text for word in _FORMAT_ERROR_WORDS)


def _completion(response: httpx.Response, requests: int) -> Completion:
    try:
        payload = response.json()
        message = payload["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LLMRequestError(f"not a chat completion reply: {response.text[:200]!r}", requests=requests,
                              hint="is base_url an OpenAI-compatible /v1 endpoint?") from None
    content = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
    if not isinstance(content, str):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    token_counts = payload.get("usage") or {}
    usage = Usage(prompt_tokens=int(token_counts.get("prompt_tokens") or 0),
                  completion_tokens=int(token_counts.get("completion_tokens") or 0))
    return Completion(content=strip_thinking(content), reasoning=str(reasoning), usage=usage,
                      requests=requests)


def _retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:200]
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", error))[:200]
    return str(error or payload)[:200]


def _hint_for(status: int) -> str | None:
    return {401: "check llm.api_key (ENGRAM_LLM_API_KEY)", 403: "check llm.api_key permissions",
            404: "check llm.base_url and llm.model"}.get(status)

