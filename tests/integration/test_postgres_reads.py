"""PostgreSQL reads reworked for issue 14 (item 4), on the real server (``ENGRAM_TEST_PG_URL``): memories
with their sources in one statement, turns around a span in one, vector searches that send their
settings in the same round trip, BM25 scored from the two full-text indexes (migration 3), pooled
connections checked only after sitting idle, and ``hnsw_ef_search`` as an ``EngramConfig`` setting."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from engram.errors import ConfigurationError, ValidationError
from engram.models import Episode, MemoryItem, Scope
from engram.store.base import ChangeSet, ListQuery
from engram.write.verbatim import source_ref

PG_URL = os.environ.get("ENGRAM_TEST_PG_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="ENGRAM_TEST_PG_URL is not set")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _turns(count: int, user: str = "u") -> tuple[list[Episode], list[MemoryItem]]:
    episodes = [Episode(user_id=user, role="user", content=f"turn {i}", occurred_at=T0 + timedelta(minutes=i),
                        hash=f"e{user}{i}") for i in range(count)]
    memories = [MemoryItem(memory=e.content, user_id=user, valid_from=e.occurred_at, hash=e.hash,
                           sources=[source_ref(e)]) for e in episodes]
    return episodes, memories


def test_memories_come_with_their_sources_in_order(schema_url: str) -> None:
    from engram.store.postgres import PostgresStore

    store = PostgresStore(schema_url)
    try:
        episodes, turns = _turns(3)
        merged = MemoryItem(memory="a fact from two turns", kind="fact", user_id="u", hash="m",
                            sources=[source_ref(episodes[2]), source_ref(episodes[0])])
        store.apply(ChangeSet(episodes=episodes, memories=[*turns, merged]))
        [found] = store.get_memories([merged.id])
        assert [s.id for s in found.sources] == [episodes[2].id, episodes[0].id]
        assert found.sources[0].occurred_at == episodes[2].occurred_at
        assert store.get_memories([turns[1].id, "missing", turns[0].id]) == [
            store.get_memories([turns[1].id])[0], store.get_memories([turns[0].id])[0]]
        citing = store.memories_citing([episodes[0].id])
        assert [m.id for m in citing] == [turns[0].id, merged.id]
        assert [m.id for m in store.memories_citing([episodes[0].id], kind="episode")] == [turns[0].id]
        listed = store.list_memories(ListQuery(scope=Scope(user_id="u"), limit=10))
        assert {m.id: len(m.sources) for m in listed}[merged.id] == 2
    finally:
        store.close()


def test_turns_around_reads_before_span_and_after_in_event_order(schema_url: str) -> None:
    from engram.store.postgres import PostgresStore

    store = PostgresStore(schema_url)
    try:
        episodes, turns = _turns(12)
        other_episodes, other = _turns(5, user="someone-else")
        store.apply(ChangeSet(episodes=[*episodes, *other_episodes], memories=[*turns, *other]))
        around = store.turns_around(turns[5].id, turns[7].id, 2)
        assert [m.id for m in around] == [t.id for t in turns[3:10]]
        assert around[0].sources[0].id == episodes[3].id
        assert [m.id for m in store.turns_around(turns[0].id, turns[0].id, 3)] == [t.id for t in turns[0:4]]
        assert store.turns_around(turns[0].id, "missing", 3) == []
    finally:
        store.close()


def test_vector_search_of_another_dimension_is_a_validation_error_and_the_store_stays_usable(
        schema_url: str) -> None:
    from engram.store.postgres import PostgresStore

    store = PostgresStore(schema_url)
    try:
        query = ListQuery(scope=Scope(user_id="u"), limit=3)
        assert store.vector_search(np.ones(4, dtype=np.float32) / 2, query) == []
        vectors = np.eye(4, dtype=np.float32)
        memories = [MemoryItem(memory=f"fact {i}", user_id="u", hash=f"h{i}") for i in range(4)]
        store.apply(ChangeSet(memories=memories, vectors={m.id: v for m, v in zip(memories, vectors, strict=True)}))
        with pytest.raises(ValidationError) as error:
            store.vector_search(np.ones(3, dtype=np.float32), query)
        assert error.value.field == "vector"
        with store.locked(Scope(user_id="u")):
            with pytest.raises(ValidationError):
                store.vector_search(np.ones(3, dtype=np.float32), query)
            extra = MemoryItem(memory="written inside the lock", user_id="u", hash="x")
            store.apply(ChangeSet(memories=[extra], vectors={extra.id: vectors[2]}))
            assert store.vector_search(vectors[2], query)[0].memory_id in {memories[2].id, extra.id}
        assert store.vector_search(vectors[1], query)[0].memory_id == memories[1].id
    finally:
        store.close()


def test_bm25_weighs_text_over_keys_and_counts_a_term_per_field(schema_url: str) -> None:
    from engram.store.postgres import PostgresStore

    store = PostgresStore(schema_url)
    try:
        in_text = MemoryItem(memory="the lighthouse keeper", user_id="u", hash="a")
        in_keys = MemoryItem(memory="the ferry captain", user_id="u", hash="b", index_keys="lighthouse keeper")
        split = MemoryItem(memory="tim writes", user_id="u", hash="c", index_keys="s notes")
        filler = [MemoryItem(memory=f"nothing {i}", user_id="u", hash=f"f{i}") for i in range(6)]
        store.apply(ChangeSet(memories=[in_text, in_keys, split, *filler]))
        query = ListQuery(scope=Scope(user_id="u"), limit=10)
        found = store.lexical_search(["lighthouse"], query)
        assert [c.memory_id for c in found] == [in_text.id, in_keys.id]
        assert found[0].score > found[1].score > 0
        # "tim's" is 'tim' & 's': a memory with 'tim' only in its text and 's' only in its keys holds
        # the term in neither field, so it neither scores nor counts towards the term's frequency
        assert store.lexical_search(["tim's"], query) == []
    finally:
        store.close()


def test_a_version_2_store_migrates_and_keeps_searching(schema_url: str) -> None:
    import psycopg

    from engram.store import postgres_schema
    from engram.store.postgres import PostgresStore

    base, schema = schema_url.split("?schema=")
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
        connection.execute(f"SET search_path TO {schema}, public")
        with connection.transaction():
            connection.execute("CREATE TABLE schema_version (version integer PRIMARY KEY, "
                               "applied_at timestamptz NOT NULL DEFAULT now())")
            for version, statements in enumerate(postgres_schema.MIGRATIONS[:2], start=1):
                for statement in statements:
                    connection.execute(statement)
                connection.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
            connection.execute(
                "INSERT INTO memories (id, text, kind, user_id, created_at, updated_at, hash, index_keys) "
                "VALUES ('old', 'an orchard of pears', 'fact', 'u', now(), now(), 'h', 'fruit')")
    store = PostgresStore(schema_url)
    try:
        query = ListQuery(scope=Scope(user_id="u"), limit=5)
        assert [c.memory_id for c in store.lexical_search(["pears"], query)] == ["old"]
        assert [c.memory_id for c in store.lexical_search(["fruit"], query)] == ["old"]
        assert store.stats()["schema_version"] == postgres_schema.SCHEMA_VERSION >= 3
    finally:
        store.close()


def test_an_idle_pooled_connection_that_died_is_replaced(schema_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    from engram.store import postgres
    from engram.store.postgres import PostgresStore

    store = PostgresStore(schema_url, min_pool_size=1, max_pool_size=1)
    try:
        store.apply(ChangeSet(memories=[MemoryItem(memory="still here", user_id="u", hash="h")]))
        with store._read() as connection:
            pid = connection.info.backend_pid
        with psycopg.connect(schema_url.split("?")[0], autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        monkeypatch.setattr(postgres, "CHECK_IDLE_S", 0.0)
        assert store.count_memories(ListQuery(scope=Scope(user_id="u"))) == 1
    finally:
        store.close()


def test_ef_search_is_a_config_setting_with_an_environment_variable(
        schema_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from engram.config import HNSW_EF_SEARCH, EngramConfig
    from engram.providers import open_store

    assert EngramConfig().hnsw_ef_search == HNSW_EF_SEARCH
    monkeypatch.setenv("ENGRAM_HNSW_EF_SEARCH", "250")
    assert EngramConfig().hnsw_ef_search == 250
    store = open_store(EngramConfig(url=schema_url))
    try:
        assert store.hnsw_ef_search == 250  # type: ignore[attr-defined]
    finally:
        store.close()
    assert EngramConfig(hnsw_ef_search=30).hnsw_ef_search == 30
    for bad in ("0", "1001", "many", " "):
        monkeypatch.setenv("ENGRAM_HNSW_EF_SEARCH", bad)
        with pytest.raises(ConfigurationError) as error:
            EngramConfig()
        assert error.value.field == "hnsw_ef_search"
    monkeypatch.delenv("ENGRAM_HNSW_EF_SEARCH")
    with pytest.raises(ConfigurationError):
        EngramConfig(hnsw_ef_search=True)


def test_pg_scale_measures_both_stores_and_recall_on_a_copy_loaded_store(tmp_path: Path) -> None:
    import psycopg

    from engram.bench.scale import SyntheticEmbedder
    from engram.bench.scale_pg import render_pg_scale_markdown, run_pg_scale

    assert PG_URL is not None
    fixture = Path(__file__).parents[1] / "fixtures" / "locomo_tiny.json"
    try:
        built = []  # the second run reuses the recall store and graph, the third rebuilds the graph only
        for graph in ((16, 64), (16, 64), (8, 32)):
            results = run_pg_scale(PG_URL, fixture, tmp_path, embedder=SyntheticEmbedder(16), sizes=(300,),
                                   ef_values=(400,), queries=5, graph=graph)
            built.append(results["recall"][0]["graph_seconds"] is not None)
            assert results["recall"][0]["load_seconds"] < 60
        assert built == [True, False, True]
        assert results["conversation"]["turns"] == 9
        assert results["conversation"]["postgres"]["search"]["count"] == 5
        [size] = results["recall"]
        assert size["n"] == 300 and size["sweep"][0]["recall_at_10"] == 1.0
        assert "| postgres / sqlite |" in render_pg_scale_markdown(results)
        with psycopg.connect(PG_URL) as connection:
            row = connection.execute("SELECT count(*) FROM engram_bench_corpus_300.vectors").fetchone()
            options = connection.execute("SELECT reloptions FROM pg_class WHERE oid = "
                                         "to_regclass('engram_bench_corpus_300.vectors_hnsw')").fetchone()
        assert row == (300,)
        assert options is not None and sorted(options[0]) == ["ef_construction=32", "m=8"]
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as connection:
            for schema in ("engram_bench_conversation", "engram_bench_corpus_300"):
                connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
