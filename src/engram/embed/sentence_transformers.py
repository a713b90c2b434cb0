"""An optional embedder on sentence-transformers (needs torch): ``pip install 'engramdb[sentence-transformers]'``."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from engram.embed._validation import as_text_list, require_number
from engram.embed.base import Embedder, normalize_rows
from engram.errors import ConfigurationError, EmbeddingError

INSTALL_HINT = "pip install 'engramdb[sentence-transformers]'"


class SentenceTransformerEmbedder(Embedder):
    """Vectors from a sentence-transformers model, given as a local directory or a model name.

    A model name not yet in the local cache is downloaded by sentence-transformers from its hub;
    pass a directory to stay offline. The model loads on first use (``dim`` included), once.
    ``query_prompt`` is prepended to search queries for models trained with one (e5, bge...).
    """

    def __init__(
        self,
        model: str = "sentence-transformers/all-MiniLM-L6-v2",
        *,
        device: str | None = None,
        batch_size: int = 32,
        query_prompt: str | None = None,
        name: str | None = None,
    ) -> None:
        if importlib.util.find_spec("sentence_transformers") is None:
            raise ConfigurationError("sentence-transformers is not installed", field="provider", hint=INSTALL_HINT)
        if not model or not isinstance(model, str):
            raise ConfigurationError("a model name or directory is required", field="model")
        require_number(batch_size, "batch_size", minimum=1)
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.query_prompt = query_prompt
        self.name = f"st:{name or model}"
        self._model: Any = None
        self._dim: int | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:  # type: ignore[override]
        """The model's sentence-embedding dimension (loads the model)."""
        self._loaded()
        assert self._dim is not None
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as unit-length float32 rows."""
        return self._encode(as_text_list(texts), prompt=None)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed a search query, with ``query_prompt`` in front when one is set."""
        return self._encode(as_text_list([text]), prompt=self.query_prompt)[0]

    def _encode(self, items: list[str], *, prompt: str | None) -> np.ndarray:
        model = self._loaded()
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            vectors = model.encode(
                items, batch_size=self.batch_size, prompt=prompt, convert_to_numpy=True, show_progress_bar=False
            )
        except Exception as exc:  # torch and transformers raise many untyped errors
            raise EmbeddingError(f"sentence-transformers failed: {exc}", field="texts") from exc
        return normalize_rows(vectors)

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise ConfigurationError(
                        f"cannot import sentence-transformers: {exc}", field="provider", hint=INSTALL_HINT
                    ) from exc
                try:
                    model = SentenceTransformer(self.model, device=self.device)
                except Exception as exc:  # missing directory, no network, corrupt weights...
                    raise ConfigurationError(
                        f"cannot load sentence-transformers model {self.model!r}: {exc}",
                        field="model",
                        hint="pass a local model directory, or a name already in the HuggingFace cache",
                    ) from exc
                read_dimension = (
                    getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
                )
                dim = read_dimension()
                if not dim:
                    raise ConfigurationError("the model does not report its embedding dimension", field="model")
                self._dim = int(dim)
                self._model = model
            return self._model
