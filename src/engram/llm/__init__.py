"""LLM access: the :class:`LLM` interface, an OpenAI-compatible HTTP client and (optional) a
local llama.cpp model. Heavy or optional backends are imported lazily."""

from __future__ import annotations

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
from engram.llm.openai_compat import OpenAICompatLLM, StructuredMode

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
