"""A small LRU cache of query vectors in front of any embedder (agents repeat the same queries)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from engram.embed._validation import require_number
from engram.embed.base import Embedder, WrappingEmbedder


class CachedEmbedder(WrappingEmbedder):
    """Wraps ``inner``: ``embed_query`` results are kept for the last ``max_entries`` distinct queries.

    ``embed`` (documents) passes straight through. Returned vectors are copies, so a caller that
    modifies one cannot corrupt the cache. Safe to share between threads.
    """

    def __init__(self, inner: Embedder, max_entries: int = 256) -> None:
        require_number(max_entries, "max_entries", minimum=1)
        super().__init__(inner)
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents with the inner embedder (not cached)."""
        return self.inner.embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        """The inner embedder's query vector, from the cache when this query was seen recently."""
        with self._lock:
            cached = self._entries.get(text)
            if cached is not None:
                self._entries.move_to_end(text)
                self.hits += 1
                return cached.copy()
            self.misses += 1
        vector = np.array(self.inner.embed_query(text), dtype=np.float32)
        with self._lock:
            self._entries[text] = vector
            self._entries.move_to_end(text)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return vector.copy()

    def clear(self) -> None:
        """Forget every cached query."""
        with self._lock:
            self._entries.clear()
