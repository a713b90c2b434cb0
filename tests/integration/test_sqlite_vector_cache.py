"""The SQLite store's cached scope vectors follow writes: this connection's writes patch the cached
scope in place (no reload), other connections' and processes' writes invalidate it, a rolled-back
transaction leaves nothing behind, and a patched scope (with or without its IVF index) searches exactly
as a store freshly loaded from the file does."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from engram.models import MemoryItem, MemoryStatus, Scope
from engram.store.base import ChangeSet, ListQuery
from engram.store.sqlite import SQLiteStore
from engram.store.sqlite_vectors import PATCH_SELECT

SCOPE = ListQuery(scope=Scope(user_id="u"), limit=10)


def unit_rows(count: int, seed: int, dim: int = 24) -> np.ndarray:
    """Unit vectors around 12 fixed centres (the cluster structure an IVF index relies on)."""
    centres = np.random.default_rng(0).standard_normal((12, dim))
    rng = np.random.default_rng(seed)
    rows = centres[rng.integers(12, size=count)] + 0.4 * rng.standard_normal((count, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def add(store: SQLiteStore, count: int, seed: int, user: str = "u") -> list[MemoryItem]:
    memories = [MemoryItem(memory=f"{user} note {seed}-{i}", user_id=user, hash=f"h{seed}-{i}") for i in range(count)]
    store.apply(ChangeSet(memories=memories, vectors=dict(zip((m.id for m in memories), unit_rows(count, seed),
                                                              strict=True))))
    return memories


def top(store: SQLiteStore, vector: np.ndarray, query: ListQuery = SCOPE) -> list[str]:
    return [c.memory_id for c in store.vector_search(vector, query)]


def test_writes_patch_the_cached_scope_without_a_reload(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    try:
        memories = add(store, 50, 1)
        add(store, 5, 2, user="other")
        probe = unit_rows(1, 9)[0]
        top(store, probe)
        cached = store._scope_vectors(SCOPE)

        added = MemoryItem(memory="new", user_id="u", hash="new")
        store.apply(ChangeSet(memories=[added], vectors={added.id: probe}))
        assert top(store, probe)[0] == added.id

        moved, doomed = memories[3], memories[4]
        store.apply(ChangeSet(memories=[moved], vectors={moved.id: -probe}, delete_memories=[doomed.id]))
        found = top(store, -probe, ListQuery(scope=Scope(user_id="u"), limit=60))
        assert found[0] == moved.id and found[-1] == added.id and doomed.id not in found

        quarantined = memories[5].model_copy(update={"status": MemoryStatus.QUARANTINED.value})
        closed = memories[6].model_copy(update={"valid_to": memories[6].created_at})
        store.apply(ChangeSet(memories=[quarantined, closed]))
        everything = top(store, probe, ListQuery(scope=Scope(user_id="u"), limit=100))
        assert quarantined.id not in everything and closed.id in everything
        current = top(store, probe, ListQuery(scope=Scope(user_id="u"), limit=100, include_invalid=False))
        assert closed.id not in current and len(current) == 48

        assert store._scope_vectors(SCOPE) is cached
        assert not np.any(cached.matrix[[row for row, alive in enumerate(cached.alive[:cached.size]) if not alive]])
        fresh = SQLiteStore(db_path)
        try:
            for query in unit_rows(10, 5):
                assert top(store, query) == top(fresh, query)
        finally:
            fresh.close()
    finally:
        store.close()


def test_a_rolled_back_write_leaves_the_cache(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    try:
        add(store, 20, 1)
        probe = unit_rows(1, 9)[0]
        before = top(store, probe)
        ghost = MemoryItem(memory="ghost", user_id="u", hash="ghost")
        with pytest.raises(RuntimeError), store.locked(Scope(user_id="u")):
            store.apply(ChangeSet(memories=[ghost], vectors={ghost.id: probe}))
            assert top(store, probe)[0] == ghost.id
            raise RuntimeError("abort")
        assert top(store, probe) == before
    finally:
        store.close()


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from engram.models import MemoryItem
    from engram.store.base import ChangeSet
    from engram.store.sqlite import SQLiteStore
    path, delete = sys.argv[1], sys.argv[2]
    vector = np.asarray([float(x) for x in sys.argv[3].split(",")], dtype=np.float32)
    store = SQLiteStore(path)
    added = MemoryItem(memory="from elsewhere", user_id="u", hash="elsewhere")
    store.apply(ChangeSet(memories=[added], vectors={added.id: vector}, delete_memories=[delete]))
    print(added.id)
    store.close()
""")


def test_another_process_writing_invalidates_the_cache(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    try:
        memories = add(store, 20, 1)
        probe = unit_rows(1, 9)[0]
        doomed = top(store, probe)[0]
        done = subprocess.run([sys.executable, "-c", WRITER, str(db_path), doomed, ",".join(map(str, probe))],
                              capture_output=True, text=True, timeout=120, check=True)
        added = done.stdout.strip()
        found = top(store, probe, ListQuery(scope=Scope(user_id="u"), limit=30))
        assert found[0] == added and doomed not in found and len(found) == len(memories)
    finally:
        store.close()


def test_patched_index_searches_as_a_fresh_load(db_path: Path) -> None:
    indexed = SQLiteStore(db_path, ann_min_vectors=300)
    try:
        memories = add(indexed, 600, 1)
        queries = unit_rows(20, 7)
        top(indexed, queries[0])
        assert indexed._scope_vectors(SCOPE).lists is not None
        rng = np.random.default_rng(3)
        for round_number in range(4):
            changed = [memories[i] for i in rng.choice(len(memories), 30, replace=False)]
            vectors = dict(zip((m.id for m in changed), unit_rows(30, 100 + round_number), strict=True))
            doomed = [m.id for m in changed[:5]]
            indexed.apply(ChangeSet(memories=changed[5:], vectors=vectors, delete_memories=doomed))
            memories = [m for m in memories if m.id not in doomed] + add(indexed, 20, 200 + round_number)
            fresh = SQLiteStore(db_path, ann_min_vectors=10**9)
            try:
                exact = [top(fresh, q) for q in queries]
            finally:
                fresh.close()
            patched = indexed._scope_vectors(SCOPE)
            assert [[i for i, _ in patched.search(q, 10, now=None, exact=True)] for q in queries] == exact
            overlap = [len(set(top(indexed, q)) & set(wanted)) / 10 for q, wanted in zip(queries, exact, strict=True)]
            assert np.mean(overlap) >= 0.9
        assert indexed._scope_vectors(SCOPE).size > indexed._scope_vectors(SCOPE).indexed
    finally:
        indexed.close()


def test_a_scope_cached_while_empty_takes_its_first_rows(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    try:
        probe = unit_rows(1, 9)[0]
        assert top(store, probe) == []
        first = add(store, 3, 1)
        assert sorted(top(store, probe)) == sorted(m.id for m in first)
    finally:
        store.close()


def test_patching_many_ids_looks_each_up_by_key_not_through_the_scope(tmp_path: Path) -> None:
    """A batch's ids are read by primary key: the scope's ``user_id`` index (a walk over the whole scope)
    is not used, however many ids a write touched."""
    store = SQLiteStore(tmp_path / "plan.db")
    try:
        ids = json.dumps([f"id-{number}" for number in range(200)])
        plan = [row[3] for row in store._connection.execute(
            f"EXPLAIN QUERY PLAN {PATCH_SELECT}(m.user_id = ? AND m.status = 'active')", [ids, "u"])]
    finally:
        store.close()
    assert any("sqlite_autoindex_memories_1 (id=?)" in step for step in plan), plan
    assert not any("memories_user" in step for step in plan), plan


def test_a_scope_loads_in_rowid_order_whatever_index_sqlite_walks(db_path: Path) -> None:
    """The scope is read through the user's (user_id, created_at) index; rows created in the reverse of
    their insertion order still load in rowid order, with their own vectors and validity."""
    store = SQLiteStore(db_path)
    try:
        memories = [MemoryItem(memory=f"note {i}", user_id="u", hash=f"h{i}",
                               created_at=datetime(2024, 1, 30 - i, tzinfo=UTC)) for i in range(20)]
        vectors = unit_rows(20, seed=3)
        store.apply(ChangeSet(memories=memories, vectors=dict(zip((m.id for m in memories), vectors, strict=True))))
        loaded = store._scope_vectors(SCOPE)
        assert loaded.ids == [m.id for m in memories]
        assert np.array_equal(loaded.matrix[:20], vectors)
        assert top(store, vectors[7])[0] == memories[7].id
    finally:
        store.close()


def test_stored_vectors_are_read_from_the_cached_scope_and_stay_current(db_path: Path) -> None:
    store = SQLiteStore(db_path, ann_min_vectors=20)
    other = SQLiteStore(db_path)
    try:
        memories = add(store, 60, 1)
        outside = add(store, 3, 2, user="other")
        ids = [m.id for m in memories + outside]
        from_file = store.get_vectors(ids)
        top(store, unit_rows(1, 9)[0])  # loads and indexes the scope's vectors
        assert store._vectors.held(store._connection, ids).keys() == {m.id for m in memories}
        cached = store.get_vectors(ids)
        assert cached.keys() == from_file.keys()
        assert all(np.array_equal(cached[i], from_file[i]) for i in ids)

        cached[memories[0].id][:] = 0.0  # a copy: the cache is untouched
        assert np.array_equal(store.get_vectors([memories[0].id])[memories[0].id], from_file[memories[0].id])

        changed, deleted = memories[1], memories[2]
        other.apply(ChangeSet(memories=[changed], vectors={changed.id: -from_file[changed.id]},
                              delete_memories=[deleted.id]))
        current = store.get_vectors([changed.id, deleted.id])
        assert list(current) == [changed.id] and np.array_equal(current[changed.id], -from_file[changed.id])
    finally:
        store.close()
        other.close()
