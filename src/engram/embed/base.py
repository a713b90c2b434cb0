"""The embedder interface: text in, unit-length float32 vectors out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    #: A stable identifier of model + settings; stores refuse vectors from a different one.
    name: str
    dim: int

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as an array of shape ``(len(texts), dim)``, rows of unit length."""

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one search query (models with query instructions override this)."""
        return self.embed([text])[0]

    @property
    def signature(self) -> str:
        return f"{self.name}:{self.dim}"


class WrappingEmbedder(Embedder):
    """An embedder in front of another (``inner``): same name and dimension, so the same vectors."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self.inner.dim


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Scale each row to unit length (zero rows stay zero), as float32."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms
