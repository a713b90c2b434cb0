"""Read-time supersession on a ranking a test chooses (``engram.read.replaced.settle_read_time``)."""

from __future__ import annotations

from datetime import UTC, datetime

from engram import Memory
from engram.models import Scope
from engram.read.fuse import Fused
from engram.read.query import build_query
from engram.read.replaced import settle_read_time


def settled(memory: Memory, user_id: str, question: str, ids: list[str]) -> list[str]:
    """``ids`` ranked in that order (scores 1.0, 0.9, ...), after read-time supersession for ``question``
    asked on 2024-09-01 in ``user_id``'s scope."""
    query = build_query(question, scope=Scope(user_id=user_id), node=None, limit=10, threshold=None,
                        reference_date=datetime(2024, 9, 1, tzinfo=UTC))
    ranked = [Fused(memory_id, 1.0 - 0.1 * position, {}) for position, memory_id in enumerate(ids)]
    return [item.memory_id for item in settle_read_time(memory.store, ranked, memory.store.get_memories(ids), query,
                                                       memory.embedder.signature)]
