"""Engram: long-term memory for LLM agents. Embedded and offline by default, mem0-compatible API.

The public names are imported on first use, so that ``import engram`` (and the ``engram`` command)
stays fast; ``from engram import Memory`` works as usual."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from engram import errors

if TYPE_CHECKING:
    from engram.async_memory import AsyncMemory
    from engram.client import Client
    from engram.config import EmbedderConfig, EngramConfig, LLMConfig
    from engram.memory import Memory
    from engram.models import (
        AddResponse,
        Episode,
        HistoryEvent,
        MemoryItem,
        Scope,
        SearchHit,
        SearchResponse,
        SourceRef,
    )
    from engram.read.recipes import RECIPES, RetrievalRecipe

__version__ = "0.2.0"

_LAZY: dict[str, str] = {
    "Client": "engram.client",
    "EmbedderConfig": "engram.config", "EngramConfig": "engram.config", "LLMConfig": "engram.config",
    "AsyncMemory": "engram.async_memory", "Memory": "engram.memory",
    "AddResponse": "engram.models", "Episode": "engram.models", "HistoryEvent": "engram.models",
    "MemoryItem": "engram.models", "Scope": "engram.models", "SearchHit": "engram.models",
    "SearchResponse": "engram.models", "SourceRef": "engram.models",
    "RECIPES": "engram.read.recipes", "RetrievalRecipe": "engram.read.recipes",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engram' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "RECIPES",
    "AddResponse",
    "AsyncMemory",
    "Client",
    "EmbedderConfig",
    "EngramConfig",
    "Episode",
    "HistoryEvent",
    "LLMConfig",
    "Memory",
    "MemoryItem",
    "RetrievalRecipe",
    "Scope",
    "SearchHit",
    "SearchResponse",
    "SourceRef",
    "__version__",
    "errors",
]
