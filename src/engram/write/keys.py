"""Write path, embedding text: what is embedded for a memory (``"Speaker: text"`` for a turn), one row per
memory; ``embedding_input`` is the one rule every path that embeds a stored memory follows.

How a turn is also found by its conversation (context keys, neighbour-mixed vectors) is
``engram.write.context``."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future

import numpy as np

from engram._threads import ForkSafePool
from engram.embed.base import Embedder
from engram.learning.experience import EXPERIENCE_KIND
from engram.models import MemoryItem


def embedding_text(memory: MemoryItem) -> str:
    """The text embedded for a memory: ``"Speaker: text"``, the speaker being its source's name, else its
    role (every turn carries a label, so that a label does not favour unlabelled turns), unless the text
    already starts with it. Memories without sources are embedded as they are."""
    source = memory.sources[0] if memory.sources else None
    label = memory.speaker or (source.role if source else None)
    text = memory.memory
    if not label or text.startswith(f"{label}:"):
        return text
    return f"{label}: {text}"


def embedding_input(memory: MemoryItem) -> str:
    """The text embedded for a stored memory on every path (add, update, import, reembed): ``embedding_text``
    for a turn, the task for an experience, the text itself for facts and other kinds."""
    if memory.is_turn:
        return embedding_text(memory)
    task = memory.metadata.get("task")
    if memory.kind == EXPERIENCE_KIND and isinstance(task, str):
        return task
    return memory.memory


def turn_embeddings(memories: Sequence[MemoryItem], embedder: Embedder) -> np.ndarray:
    """Each memory's ``embedding_text`` embedded, one row per memory (before any neighbour mixing)."""
    if not memories:
        return np.empty((0, 0), dtype=np.float32)
    return embedder.embed([embedding_text(memory) for memory in memories])


#: Most ``add`` calls of one process embedding on background threads at once (threads are made as adds
#: need them; a further concurrent add waits for one).
BACKGROUND_EMBEDDERS = 32
_WORKERS = ForkSafePool(BACKGROUND_EMBEDDERS, "engram-add-embed")  # embed an add's turns while it screens them


def turn_embeddings_soon(memories: Sequence[MemoryItem], embedder: Embedder) -> Future[np.ndarray]:
    """``turn_embeddings`` started on a background thread: the model (onnxruntime, or an HTTP call) runs
    without the GIL, so the caller's own work of the same ``add`` runs beside it on another core."""
    texts = [embedding_text(memory) for memory in memories]
    return _WORKERS.get().submit(embedder.embed, texts)
