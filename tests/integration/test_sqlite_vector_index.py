"""The SQLite store's IVF index (used from ``ann_min_vectors`` vectors in a scope) against the exact scan
on the same file: same results, consistent after deletes and updates, rebuilt when missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engram.models import MemoryItem, Scope
from engram.store.base import ChangeSet, ListQuery
from engram.store.sqlite import SQLiteStore


def unit_rows(count: int, seed: int, dim: int = 24) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((12, dim))
    rows = centres[rng.integers(12, size=count)] + 0.4 * rng.standard_normal((count, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def fill(store: SQLiteStore, count: int) -> list[MemoryItem]:
    memories = [MemoryItem(memory=f"note {i}", user_id="u", hash=f"h{i}") for i in range(count)]
    store.apply(ChangeSet(memories=memories, vectors=dict(zip((m.id for m in memories), unit_rows(count, 1),
                                                              strict=True))))
    return memories


def ranked(store: SQLiteStore, vector: np.ndarray) -> list[str]:
    return [c.memory_id for c in store.vector_search(vector, ListQuery(scope=Scope(user_id="u"), limit=10))]


def test_index_matches_exact_search_and_follows_writes(tmp_path: Path) -> None:
    path = tmp_path / "ann.db"
    indexed, exact = SQLiteStore(path, ann_min_vectors=500), SQLiteStore(path, ann_min_vectors=10**9)
    try:
        memories = fill(indexed, 2000)
        queries = unit_rows(30, 7)
        assert [ranked(indexed, q) for q in queries] == [ranked(exact, q) for q in queries]
        assert indexed._scope_vectors(ListQuery(scope=Scope(user_id="u"))).lists is not None

        target = memories[5]
        nearest = ranked(indexed, queries[0])[0]
        moved = np.asarray(queries[0], dtype=np.float32)
        indexed.apply(ChangeSet(memories=[target], vectors={target.id: moved}, delete_memories=[nearest]))
        after = ranked(indexed, queries[0])
        assert after[0] == target.id and nearest not in after
        assert [ranked(indexed, q) for q in queries] == [ranked(exact, q) for q in queries]
    finally:
        indexed.close()
        exact.close()


def test_index_is_rebuilt_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "ann.db"
    store = SQLiteStore(path, ann_min_vectors=500)
    fill(store, 1000)
    query = unit_rows(1, 3)[0]
    before = ranked(store, query)
    store.close()
    reopened = SQLiteStore(path, ann_min_vectors=500)
    try:
        assert len(reopened._vectors) == 0
        assert ranked(reopened, query) == before
        assert reopened._scope_vectors(ListQuery(scope=Scope(user_id="u"))).lists is not None
    finally:
        reopened.close()
