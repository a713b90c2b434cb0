"""Engram: long-term memory for LLM agents. Embedded and offline by default, mem0-compatible API."""

from engram import errors
from engram.client import Client
from engram.config import EmbedderConfig, EngramConfig, LLMConfig
from engram.memory import AsyncMemory, Memory
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

__version__ = "0.1.0"

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
