"""The LLM interface: chat completions that return text or one validated JSON object, with
token usage and latency reported for every call.

Implementations provide one transport method, :meth:`LLM._complete`; the shared
:meth:`LLM.complete_json` adds the tolerant parser and a bounded repair-and-retry loop, so every
backend fails the same way: an :class:`~engram.errors.LLMError`, never partial garbage."""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pydantic

from engram.errors import LLMError, ValidationError
from engram.llm.jsonparse import JSONParseError, parse_json_object

#: One chat message: ``{"role": "system" | "user" | "assistant", "content": "..."}``.
Message = dict[str, str]
ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)

_REPAIR_ECHO_CHARS = 2000


class LLMRequestError(LLMError):
    """A transport gave up; ``requests`` says how many HTTP requests it made."""

    def __init__(self, message: str, *, requests: int, hint: str | None = None) -> None:
        super().__init__(message, field="llm", hint=hint)
        self.requests = requests


@dataclass
class Usage:
    """Tokens reported by the model server (0 when the server does not report them)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Completion:
    """What a transport returns for one successful request."""

    content: str
    reasoning: str = ""
    usage: Usage = field(default_factory=Usage)
    requests: int = 1


@dataclass
class LLMResult:
    """The outcome of one logical call.

    ``data`` is the parsed JSON object (``None`` for text calls); ``attempts`` counts model
    replies asked for (1 + repairs); ``requests`` counts HTTP requests including transport
    retries; ``usage`` and ``latency_ms`` cover all of them."""

    name: str
    text: str
    data: dict[str, Any] | None = None
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0
    attempts: int = 1
    requests: int = 1


@dataclass
class UsageSummary:
    """Totals over the calls recorded in a :class:`UsageLog`."""

    calls: int = 0
    failed_calls: int = 0
    attempts: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    by_name: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for ``add``/``search`` reports."""
        return {
            "calls": self.calls,
            "failed_calls": self.failed_calls,
            "attempts": self.attempts,
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_ms": round(self.latency_ms, 1),
            "by_name": dict(self.by_name),
        }


class UsageLog:
    """Accumulates calls, tokens and latency; thread-safe. Create one per ``add``/``search``
    and pass it as ``usage=`` to the pipeline steps, or read an LLM's lifetime ``usage``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._summary = UsageSummary()

    def record(self, name: str, usage: Usage, latency_ms: float, *, attempts: int, requests: int,
               failed: bool = False) -> None:
        """Add one logical call (successful or not) to the totals."""
        with self._lock:
            summary = self._summary
            summary.calls += 1
            summary.failed_calls += int(failed)
            summary.attempts += attempts
            summary.requests += requests
            summary.prompt_tokens += usage.prompt_tokens
            summary.completion_tokens += usage.completion_tokens
            summary.latency_ms += latency_ms
            summary.by_name[name] = summary.by_name.get(name, 0) + 1

    def summary(self) -> UsageSummary:
        """A copy of the totals so far."""
        with self._lock:
            current = self._summary
            return UsageSummary(**{**current.__dict__, "by_name": dict(current.by_name)})


class LLM(ABC):
    """A chat model. Subclasses implement :meth:`_complete`; everything else is shared."""

    #: How many replies one ``complete_json`` call may ask for (1 + repairs) before failing.
    max_attempts: int = 3

    def __init__(self, *, max_attempts: int = 3) -> None:
        if max_attempts < 1:
            raise ValidationError("must be at least 1", field="llm.max_attempts")
        self.max_attempts = max_attempts
        self.usage = UsageLog()

    @abstractmethod
    def _complete(self, messages: Sequence[Message], schema: dict[str, Any] | None, name: str) -> Completion:
        """Send one chat request (retrying transport failures) and return the reply.

        ``schema`` is the JSON schema the reply must match (``None`` for free text); a
        transport that cannot enforce it must still ask for JSON. Raises ``LLMError``."""

    def complete_text(self, messages: Sequence[Message], *, name: str = "text",
                      usage: UsageLog | None = None) -> LLMResult:
        """A free-text reply (reasoning text is never taken as the answer). An empty reply is
        re-asked like unparseable JSON."""

        def accept(completion: Completion) -> tuple[str, None]:
            text = completion.content.strip()
            if not text:
                raise JSONParseError("the reply was empty")
            return text, None

        return self._run(messages, None, name, accept, usage)

    def complete_json(self, messages: Sequence[Message], schema: dict[str, Any], *, name: str,
                      check: Callable[[dict[str, Any]], object] | None = None,
                      usage: UsageLog | None = None) -> LLMResult:
        """One JSON object matching ``schema``, parsed tolerantly.

        ``check`` may reject a parsed object by raising ``ValueError`` (pydantic's
        ``ValidationError`` included); unparseable or rejected replies are re-asked with the
        error appended, at most ``max_attempts`` replies in all, then ``LLMError`` is raised."""

        def accept(completion: Completion) -> tuple[str, dict[str, Any]]:
            data = _parse_reply(completion)
            if check is not None:
                check(data)
            return completion.content, data

        return self._run(messages, schema, name, accept, usage)

    def complete_model(self, messages: Sequence[Message], output: type[ModelT], *, name: str,
                       usage: UsageLog | None = None) -> tuple[ModelT, LLMResult]:
        """Like :meth:`complete_json`, validated into the pydantic model ``output``."""
        result = self.complete_json(messages, output.model_json_schema(), name=name,
                                    check=output.model_validate, usage=usage)
        assert result.data is not None
        return output.model_validate(result.data), result

    def _run(self, messages: Sequence[Message], schema: dict[str, Any] | None, name: str,
             accept: Callable[[Completion], tuple[str, dict[str, Any] | None]],
             usage: UsageLog | None) -> LLMResult:
        conversation = [dict(message) for message in messages]
        total = Usage()
        requests = 0
        started = time.perf_counter()
        last_error = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                completion = self._complete(conversation, schema, name)
            except LLMError as error:
                requests += error.requests if isinstance(error, LLMRequestError) else 1
                self._record(usage, name, total, started, attempt, requests, failed=True)
                raise
            total.add(completion.usage)
            requests += completion.requests
            try:
                text, data = accept(completion)
            except (JSONParseError, ValueError) as error:
                last_error = _describe(error)
                conversation += _repair_messages(completion, last_error, schema is not None)
                continue
            result = LLMResult(name=name, text=text, data=data, usage=total, attempts=attempt,
                               requests=requests, latency_ms=(time.perf_counter() - started) * 1000)
            self._record(usage, name, total, started, attempt, requests, failed=False)
            return result
        self._record(usage, name, total, started, self.max_attempts, requests, failed=True)
        raise LLMError(f"{name}: no usable reply after {self.max_attempts} attempts; last problem: "
                       f"{last_error}", field="llm", hint="check the model name, or use a stronger model")

    def _record(self, usage: UsageLog | None, name: str, total: Usage, started: float, attempts: int,
                requests: int, *, failed: bool) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        for log in (self.usage, usage):
            if log is not None:
                log.record(name, total, latency_ms, attempts=attempts, requests=requests, failed=failed)


def _parse_reply(completion: Completion) -> dict[str, Any]:
    """The JSON object in the answer; reasoning text is used only when the answer is empty."""
    if completion.content.strip():
        return parse_json_object(completion.content)
    if completion.reasoning.strip():
        return parse_json_object(completion.reasoning)
    raise JSONParseError("the reply was empty")


def _describe(error: Exception) -> str:
    if isinstance(error, pydantic.ValidationError):
        problems = [f"{'.'.join(str(part) for part in item['loc']) or '(root)'}: {item['msg']}"
                    for item in error.errors()[:5]]
        return "the JSON did not match the schema: " + "; ".join(problems)
    return str(error)


def _repair_messages(completion: Completion, error: str, wants_json: bool) -> list[Message]:
    previous = completion.content.strip() or "(empty)"
    request = ("Reply again with only one JSON object that matches the requested format: no prose, "
               "no code fences." if wants_json else "Reply again with a non-empty answer.")
    return [
        {"role": "assistant", "content": previous[:_REPAIR_ECHO_CHARS]},
        {"role": "user", "content": f"Your previous reply could not be used ({error}). {request}"},
    ]


def schema_instructions(schema: dict[str, Any]) -> str:
    """A prompt suffix describing ``schema``, for servers that cannot enforce it."""
    return ("Reply with exactly one JSON object (no prose, no code fences) that matches this JSON schema:\n"
            + json.dumps(schema, separators=(",", ":")))
