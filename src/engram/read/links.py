"""Read path, step 3b: follow supersession links between ranked candidates.

When a stale memory matches a question about the present ("Where do I live now?" matches "I live in
Berlin" better than "We finally moved to Lisbon"), the memory that replaced it answers the question:
the current end of its ``superseded_by`` chain (valid at the question's moment) takes the stale one's
relevance if that is higher than its own, joining the candidates if needed; ``build_hits`` then weighs
the stale one down. A question about what came before ("Where did I live before Lisbon?") follows the
links backwards: what a matching memory replaced takes its relevance, and the matching one is weighed
down as the stale one would be. Other past questions rank memories as they are."""

from __future__ import annotations

from collections.abc import Sequence

from engram.models import MemoryItem
from engram.read.fuse import Fused
from engram.read.query import SearchQuery
from engram.store.base import Store

#: Longest chain of replacements followed (A replaced by B replaced by C ...).
MAX_HOPS = 5


def _valid_at(memory: MemoryItem, query: SearchQuery) -> bool:
    return memory.began_at <= query.moment and (memory.valid_to is None or memory.valid_to > query.moment)


def follow_links(store: Store, fused: Sequence[Fused], memories: Sequence[MemoryItem],
                 query: SearchQuery) -> tuple[list[Fused], list[MemoryItem], set[str]]:
    """The ranking with relevance passed along supersession links for ``query``'s tense, the memories
    (with any that joined), and the ids of the memories a ``before`` question asks past."""
    by_id = {memory.id: memory for memory in memories}
    scores = {item.memory_id: item for item in fused}
    passed_over: set[str] = set()
    if query.tense not in ("present", "before"):
        return list(fused), list(memories), passed_over
    for item in list(fused):
        memory = by_id.get(item.memory_id)
        if memory is None:
            continue
        if query.tense == "present":
            if memory.valid_to is None or memory.valid_to > query.moment:
                continue
            targets = _current_successor(store, memory, by_id, query)
        else:
            targets = _fetch(store, memory.supersedes, by_id)
            if targets:
                passed_over.add(memory.id)
        for target in targets:
            current = scores.get(target.id)
            if current is None or current.score < item.score:
                scores[target.id] = Fused(target.id, item.score, {**(current.components if current else {}),
                                                                  "inherited": 1.0})
    ranked = sorted(scores.values(), key=lambda entry: -entry.score)
    return ranked, list(by_id.values()), passed_over


def _fetch(store: Store, ids: list[str], by_id: dict[str, MemoryItem]) -> list[MemoryItem]:
    missing = [memory_id for memory_id in ids if memory_id not in by_id]
    for memory in store.get_memories(missing):
        by_id[memory.id] = memory
    return [by_id[memory_id] for memory_id in ids if memory_id in by_id]


def _current_successor(store: Store, memory: MemoryItem, by_id: dict[str, MemoryItem],
                       query: SearchQuery) -> list[MemoryItem]:
    """The memory that replaced ``memory`` and is valid at the question's moment, following the chain."""
    current = memory
    for _ in range(MAX_HOPS):
        successor_id = current.metadata.get("superseded_by")
        found = _fetch(store, [successor_id], by_id) if isinstance(successor_id, str) else []
        if not found:
            return []
        current = found[0]
        if _valid_at(current, query):
            return [current]
    return []

