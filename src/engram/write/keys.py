"""Write path, offline key expansion: what a memory is *found by*, as opposed to what it *returns*.

A verbatim turn is returned as it was said, but indexed under more than its own words:

- lexical keys: the text of the turns around it in the same ``add`` call
  (an answer such as "Street Fighter!" is found by the question that preceded it);
- its vector: the embedding of ``"Speaker: text"`` mixed with the embeddings of its neighbours,
  ``unit(v + sum(w ** distance * v_neighbour))``, so dense search also sees the exchange around the
  turn (no extra embedding: each turn is embedded once).

Neighbours are the memories of one batch in the same scope at most ``CONTEXT_TURNS`` places away; a
memory added alone has none. Only what is indexed changes: the text returned and the episodes cited
stay exactly the turn's own.

Measured on LoCoMo (docs/BENCHMARKS.md, "Retrieval ablations"): the context keys and the vector mix
are the two largest single gains of the offline read path."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from engram.embed.base import Embedder, normalize_rows
from engram.models import MemoryItem, MemoryStatus

#: Weight of each adjacent neighbour's vector in a memory's stored vector (fitted on LoCoMo, checked
#: leave-one-out); a neighbour at distance d weighs ``NEIGHBOUR_VECTOR_WEIGHT ** d``.
NEIGHBOUR_VECTOR_WEIGHT = 0.5
#: How many turns on each side count as context.
CONTEXT_TURNS = 3
#: Characters of each neighbour's text kept in the lexical keys.
MAX_NEIGHBOUR_KEY_CHARS = 500


def speaker_of(memory: MemoryItem) -> str | None:
    """The name of who said a memory's text (its first source's name), if known."""
    return next((source.name for source in memory.sources if source.name), None)


def embedding_text(memory: MemoryItem) -> str:
    """The text embedded for a memory: ``"Speaker: text"``, the speaker being its source's name, else its
    role (every turn carries a label, so that a label does not favour unlabelled turns), unless the text
    already starts with it. Memories without sources are embedded as they are."""
    source = memory.sources[0] if memory.sources else None
    label = speaker_of(memory) or (source.role if source else None)
    text = memory.memory
    if not label or text.startswith(f"{label}:"):
        return text
    return f"{label}: {text}"


def neighbours(memories: Sequence[MemoryItem], width: int | None = None,
               excluded: Collection[str] = ()) -> list[list[tuple[int, int]]]:
    """For each memory, ``(batch position, distance)`` of the memories of the same scope at most
    ``width`` (default ``CONTEXT_TURNS``) places before or after it, nearest first; memories whose id
    is in ``excluded`` are nobody's neighbour."""
    width = CONTEXT_TURNS if width is None else width
    found: list[list[tuple[int, int]]] = []
    for index, memory in enumerate(memories):
        window = range(max(0, index - width), min(len(memories), index + width + 1))
        near = [(other, abs(other - index)) for other in window
                if other != index and memories[other].scope == memory.scope and memories[other].id not in excluded]
        found.append(sorted(near, key=lambda pair: (pair[1], pair[0])))
    return found


def with_context_keys(memories: Sequence[MemoryItem], excluded: Collection[str] = ()) -> list[MemoryItem]:
    """Copies of ``memories`` whose ``index_keys`` also hold the text of their neighbours (not of those
    whose id is in ``excluded``)."""
    expanded = []
    for memory, near in zip(memories, neighbours(memories, excluded=excluded), strict=True):
        context = [memories[i].memory[:MAX_NEIGHBOUR_KEY_CHARS] for i, _ in sorted(near)]
        keys = "\n".join(part for part in (memory.index_keys, *context) if part)
        expanded.append(memory.model_copy(update={"index_keys": keys}))
    return expanded


def mix_neighbour_vectors(vectors: np.ndarray, near: Sequence[Sequence[tuple[int, int]]],
                          weight: float = NEIGHBOUR_VECTOR_WEIGHT) -> np.ndarray:
    """``unit(v_i + sum(weight ** distance * v_neighbour))`` per row; rows without neighbours stay as they are."""
    mixed = np.array(vectors, dtype=np.float32, copy=True)
    for row, pairs in enumerate(near):
        for neighbour, distance in pairs:
            mixed[row] += weight ** distance * vectors[neighbour]
    return normalize_rows(mixed)


def turn_embeddings(memories: Sequence[MemoryItem], embedder: Embedder) -> np.ndarray:
    """Each memory's ``embedding_text`` embedded, one row per memory (before any neighbour mixing)."""
    if not memories:
        return np.empty((0, 0), dtype=np.float32)
    return embedder.embed([embedding_text(memory) for memory in memories])


def mixed_vectors(memories: Sequence[MemoryItem], turns: np.ndarray,
                  excluded: Collection[str] = ()) -> dict[str, np.ndarray]:
    """The stored vector of each memory: its row of ``turns`` mixed with its neighbours' rows (not with
    those of memories whose id is in ``excluded``)."""
    if not memories:
        return {}
    mixed = mix_neighbour_vectors(turns, neighbours(memories, excluded=excluded), NEIGHBOUR_VECTOR_WEIGHT)
    return {memory.id: mixed[index] for index, memory in enumerate(memories)}


def without_quarantined_context(memories: Sequence[MemoryItem], vectors: dict[str, np.ndarray],
                                turns: np.ndarray) -> tuple[list[MemoryItem], dict[str, np.ndarray]]:
    """Keys and vectors rebuilt (from the batch's ``turns``, no new embedding) so that no quarantined
    memory of the batch lends its text to a neighbour; the verbatim memories' keys are only context,
    so they are rebuilt from scratch. Returns the inputs unchanged when nothing was quarantined."""
    held = {memory.id for memory in memories if memory.status == MemoryStatus.QUARANTINED.value}
    if not held:
        return list(memories), vectors
    rekeyed = with_context_keys([memory.model_copy(update={"index_keys": ""}) for memory in memories], held)
    return rekeyed, mixed_vectors(rekeyed, turns, held)
