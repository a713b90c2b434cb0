"""What makes two turns a pair to compare for supersession, at write time and at read time alike: the
same speaker, and the same topic (own-embedding similarity)."""

from __future__ import annotations

from engram.models import MemoryItem

#: Least similarity (own embeddings) of two turns on the same topic; pairs below it are never compared
#: unless they state the same attribute.
MIN_SIMILARITY = 0.35


def speaker_key(memory: MemoryItem) -> str:
    """Who said a memory, for "same speaker": its source's name, else its writer's kind."""
    return (memory.speaker or memory.writer.split(":", 1)[0] or "user").strip().lower()
