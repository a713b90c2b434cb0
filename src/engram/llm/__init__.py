"""LLM access: the :class:`LLM` interface, an OpenAI-compatible HTTP client and (optional) a
local llama.cpp model. Heavy or optional backends are imported lazily: the HTTP client (and httpx)
on first use of ``OpenAICompatLLM``, so that importing ``engram.llm.prompts`` stays cheap."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from engram.llm.base import (
    LLM,
    Completion,
    LLMRequestError,
    LLMResult,
    Message,
    Usage,
    UsageLog,
    UsageSummary,
)
from engram.llm.jsonparse import JSONParseError, parse_json_object

if TYPE_CHECKING:
    from engram.llm.openai_compat import OpenAICompatLLM, StructuredMode

_LAZY_EXPORTS = {"OpenAICompatLLM": "engram.llm.openai_compat", "StructuredMode": "engram.llm.openai_compat"}


def __getattr__(name: str) -> Any:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engram.llm' has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = [
    "LLM",
    "Completion",
    "JSONParseError",
    "LLMRequestError",
    "LLMResult",
    "Message",
    "OpenAICompatLLM",
    "StructuredMode",
    "Usage",
    "UsageLog",
    "UsageSummary",
    "parse_json_object",
]
