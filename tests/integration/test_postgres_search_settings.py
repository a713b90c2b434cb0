"""PostgreSQL search settings and reads touched by issue 14: ``hnsw_ef_search`` is validated and used,
the one-statement lexical query ranks as BM25 over the scope only, binary vector reads round-trip."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pytest

from engram.errors import ConfigurationError
from engram.models import MemoryItem, Scope
from engram.store.base import ChangeSet, ListQuery

if TYPE_CHECKING:
    from engram.store.postgres import PostgresStore

PG_URL = os.environ.get("ENGRAM_TEST_PG_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="ENGRAM_TEST_PG_URL is not set")


def test_ef_search_is_validated_and_used(schema_url: str) -> None:
    from engram.store.postgres import HNSW_EF_SEARCH, PostgresStore

    with pytest.raises(ConfigurationError) as error:
        PostgresStore(schema_url, hnsw_ef_search=0)
    assert error.value.field == "hnsw_ef_search"
    store = PostgresStore(schema_url, hnsw_ef_search=7)
    try:
        assert PostgresStore.__init__.__kwdefaults__["hnsw_ef_search"] == HNSW_EF_SEARCH
        rng = np.random.default_rng(2)
        vectors = rng.standard_normal((30, 8)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        memories = [MemoryItem(memory=f"fact {i}", user_id="u", hash=f"h{i}") for i in range(30)]
        store.apply(ChangeSet(memories=memories, vectors={m.id: v for m, v in zip(memories, vectors, strict=True)}))
        found = store.vector_search(vectors[3], ListQuery(scope=Scope(user_id="u"), limit=5))
        assert found[0].memory_id == memories[3].id and found[0].score == pytest.approx(1.0, abs=1e-5)
        stored = store.get_vectors([memories[4].id])[memories[4].id]
        assert stored.dtype == np.float32 and np.array_equal(stored, vectors[4])
    finally:
        store.close()


def test_lexical_statistics_come_from_the_scope_only(schema_url: str) -> None:
    from engram.store.postgres import PostgresStore

    store = PostgresStore(schema_url)
    try:
        mine = [MemoryItem(memory=text, user_id="a", hash=text) for text in
                ("the blue notebook", "a red notebook", "blue skies today", "nothing here")]
        others = [MemoryItem(memory=f"blue thing {i}", user_id="b", hash=f"b{i}") for i in range(50)]
        store.apply(ChangeSet(memories=mine))
        query = ListQuery(scope=Scope(user_id="a"), limit=10, include_invalid=False)
        before = store.lexical_search(["blue", "notebook"], query)
        store.apply(ChangeSet(memories=others))
        after = store.lexical_search(["blue", "notebook"], query)
        assert [c.memory_id for c in after] == [c.memory_id for c in before]
        assert [c.score for c in after] == pytest.approx([c.score for c in before])
        assert after[0].memory_id == mine[0].id
        assert {c.memory_id for c in after} == {m.id for m in mine[:3]}
        assert store.lexical_search(["zzz"], query) == []
    finally:
        store.close()


def _index_options(store: PostgresStore) -> list[str]:
    with store._pool.connection() as connection:
        row = connection.execute("SELECT reloptions FROM pg_class WHERE oid = to_regclass('vectors_hnsw')").fetchone()
    return sorted(row[0]) if row else []


def test_hnsw_graph_is_a_validated_config_setting_used_for_the_index(
        schema_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from engram.config import HNSW_GRAPH, EngramConfig
    from engram.providers import open_store
    from engram.store.postgres import PostgresStore

    assert (EngramConfig().hnsw_m, EngramConfig().hnsw_ef_construction) == HNSW_GRAPH == (16, 64)
    for name, bad in (("hnsw_m", "1"), ("hnsw_m", "101"), ("hnsw_ef_construction", "3"),
                      ("hnsw_ef_construction", "lots")):
        monkeypatch.setenv(f"ENGRAM_{name.upper()}", bad)
        with pytest.raises(ConfigurationError) as error:
            EngramConfig()
        assert error.value.field == name
        monkeypatch.delenv(f"ENGRAM_{name.upper()}")
    with pytest.raises(ConfigurationError) as error:
        PostgresStore(schema_url, hnsw_graph=(24, 40))
    assert error.value.field == "hnsw_ef_construction"
    monkeypatch.setenv("ENGRAM_HNSW_M", "8")
    monkeypatch.setenv("ENGRAM_HNSW_EF_CONSTRUCTION", "40")
    store = open_store(EngramConfig(url=schema_url))
    assert isinstance(store, PostgresStore)
    try:
        assert store.hnsw_graph == (8, 40)
        memory = MemoryItem(memory="a fact", user_id="u", hash="h")
        store.apply(ChangeSet(memories=[memory], vectors={memory.id: np.ones(4, dtype=np.float32) / 2}))
        assert _index_options(store) == ["ef_construction=40", "m=8"]
    finally:
        store.close()
