"""Reads batched for PostgreSQL's round trips, equal to the separate reads on every backend:
``Store.candidate_pool`` (a search's two candidate lists, their memories and the query's similarity to
each; one statement on PostgreSQL) and ``Store.turns_around_each`` (the re-embedding's mix phase)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from engram import Memory
from engram.config import EngramConfig
from engram.embed.base import Embedder
from engram.errors import ValidationError
from engram.filters import parse_filters
from engram.models import Episode, MemoryItem, Scope
from engram.providers import open_store
from engram.store.base import CandidatePool, ChangeSet, ListQuery, Store
from engram.terms import query_terms
from engram.write.verbatim import source_ref

TURNS = [
    "I adopted a greyhound called Pixel last spring.",
    "My sister lives in Lisbon and teaches piano.",
    "Pixel loves running on the beach in the morning.",
    "I started learning Portuguese for my trip to Lisbon.",
    "The piano recital is on Saturday at the town hall.",
    "Work has been busy with the quarterly budget review.",
]
QUESTIONS = ["What is my dog called?", "Where does my sister live?", "When is the piano recital?",
             "What language am I learning?"]


def _separately(store: Store, terms: list[str], lexical: ListQuery | None, vector: np.ndarray | None,
                dense: ListQuery | None) -> CandidatePool:
    lexical_found = None if lexical is None else store.lexical_search(terms, lexical)
    dense_found = None if dense is None or vector is None else store.vector_search(vector, dense)
    ids = list(dict.fromkeys(c.memory_id for c in [*(lexical_found or []), *(dense_found or [])]))
    vectors = store.get_vectors(ids) if vector is not None else {}
    similarity = {memory_id: float(np.dot(stored, vector)) for memory_id, stored in vectors.items()}
    return CandidatePool(lexical_found, dense_found, store.get_memories(ids), similarity)


def _assert_same(pool: CandidatePool, expected: CandidatePool) -> None:
    assert pool.lexical == expected.lexical
    assert pool.dense == expected.dense
    assert pool.memories == expected.memories
    assert pool.similarity.keys() == expected.similarity.keys()
    for memory_id, score in expected.similarity.items():
        assert pool.similarity[memory_id] == pytest.approx(score, abs=1e-5)


def test_candidate_pool_equals_the_separate_reads(memory: Memory) -> None:
    for index, turn in enumerate(TURNS):
        memory.add([{"role": "user", "content": turn}], user_id="ana", infer=False, metadata={"n": index})
    memory.add([{"role": "user", "content": "Pixel is my neighbour's cat."}], user_id="bob", infer=False)
    store = memory.store
    base = ListQuery(scope=Scope(user_id="ana"), include_invalid=True)
    filtered = replace(base, node=parse_filters({"n": {"gte": 2}}).node)
    for question in QUESTIONS:
        terms = list(query_terms(question))
        vector = memory.embedder.embed_query(question)
        for lexical, dense in [(replace(base, limit=4), replace(base, limit=3)),
                               (replace(filtered, limit=10), replace(filtered, limit=10)),
                               (None, replace(base, limit=2)), (replace(base, limit=2), None)]:
            pool = store.candidate_pool(terms, lexical, vector, dense)
            _assert_same(pool, _separately(store, terms, lexical, vector, dense))
            assert all(m.user_id == "ana" for m in pool.memories)
            assert pool.rankings.keys() == {name for name, asked in (("lexical", lexical), ("dense", dense))
                                            if asked is not None}
        without_vector = store.candidate_pool(terms, replace(base, limit=5), None, replace(base, limit=5))
        _assert_same(without_vector, _separately(store, terms, replace(base, limit=5), None, None))
        assert without_vector.dense is None and without_vector.similarity == {}
    assert store.candidate_pool([], None, None, None) == CandidatePool(None, None, [], {})


def test_postgres_candidate_pool_with_a_vector_of_another_dimension_is_a_validation_error(
        schema_url: str, embedder: Embedder) -> None:
    memory = Memory(url=schema_url, embedder=embedder)
    try:
        memory.add([{"role": "user", "content": TURNS[0]}], user_id="ana", infer=False)
        query = ListQuery(scope=Scope(user_id="ana"), limit=3)
        wrong = np.ones(7, dtype=np.float32) / np.sqrt(7)
        for dense in (query, None):
            with pytest.raises(ValidationError) as raised:
                memory.store.candidate_pool(["pixel"], query, wrong, dense)
            assert raised.value.field == "vector"
        assert [m.memory for m in memory.store.candidate_pool(["pixel"], query, None, None).memories] == [TURNS[0]]
    finally:
        memory.close()


def test_turns_around_each_equals_turns_around_of_each_id(store_url: str) -> None:
    store = open_store(EngramConfig(url=store_url))
    try:
        store.reset()
        start = datetime(2024, 5, 1, tzinfo=UTC)
        episodes: list[Episode] = []
        turns: list[MemoryItem] = []
        for scope in (Scope(user_id="ana"), Scope(user_id="ana", run_id="trip"), Scope(agent_id="bot")):
            for index in range(9):
                episode = Episode(**scope.model_dump(), role="user", content=f"{scope} turn {index}",
                                  occurred_at=start + timedelta(minutes=(index * 7) % 9), hash=f"{scope}{index}")
                episodes.append(episode)
                turns.append(MemoryItem(memory=episode.content, **scope.model_dump(), valid_from=episode.occurred_at,
                                        hash=episode.hash, sources=[source_ref(episode)],
                                        status="quarantined" if index == 4 else "active"))
        fact = MemoryItem(memory="a fact, not a turn", kind="fact", user_id="ana", hash="fact")
        store.apply(ChangeSet(episodes=episodes, memories=[*turns, fact]))
        ids = [*(turns[i].id for i in (0, 4, 8, 12, 13, 22)), fact.id, "missing", turns[0].id]
        around = store.turns_around_each(ids, 2)
        assert list(around) == list(dict.fromkeys(ids))
        for memory_id in ids:
            assert around[memory_id] == store.turns_around(memory_id, memory_id, 2)
        # turn i of a scope happens at minute 7i mod 9 (turn 4 quarantined): in time order 0, 8, 3, 7, 2, ...
        assert [m.id for m in around[turns[12].id]] == [turns[9 + i].id for i in (0, 8, 3, 7, 2)]
        assert around["missing"] == [] and store.turns_around_each([], 2) == {}
    finally:
        store.close()
