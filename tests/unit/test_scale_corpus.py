"""The scale corpus: LoCoMo turns recombined into memories with derived vectors, cached embeddings,
bulk loading through Store.apply, and reuse of a built store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engram.bench.scale import SyntheticEmbedder
from engram.bench.scale_corpus import (
    NOISE_NORM,
    CorpusEmbedder,
    ScaleCorpus,
    cached_embeddings,
    ensure_store,
    load_locomo,
    scope_plan,
)
from engram.errors import ValidationError
from engram.models import Scope
from engram.store.base import ListQuery
from engram.store.sqlite import SQLiteStore

FIXTURE = Path(__file__).parents[1] / "fixtures" / "locomo_tiny.json"


class CountingEmbedder(SyntheticEmbedder):
    def __init__(self) -> None:
        super().__init__(16)
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:  # type: ignore[override]
        self.calls += 1
        return super().embed(texts)


def corpus(tmp_path: Path) -> ScaleCorpus:
    return ScaleCorpus.from_locomo(FIXTURE, SyntheticEmbedder(16), tmp_path / "cache")


def test_locomo_turns_and_questions_are_distinct() -> None:
    turns, questions = load_locomo(FIXTURE)
    assert len({turn.text for turn in turns}) == len(turns) > 2
    assert {turn.conversation for turn in turns} == {0, 1}
    assert questions and len(set(questions)) == len(questions)


def test_bad_data_is_a_validation_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"not": "a list"}')
    with pytest.raises(ValidationError):
        load_locomo(tmp_path / "bad.json")


def test_embeddings_are_cached(tmp_path: Path) -> None:
    embedder = CountingEmbedder()
    first = cached_embeddings(["a", "b", "c"], embedder, tmp_path)
    calls = embedder.calls
    again = cached_embeddings(["a", "b", "c"], embedder, tmp_path)
    assert embedder.calls == calls and np.array_equal(first, again)
    cached_embeddings(["a", "b"], embedder, tmp_path)
    assert embedder.calls > calls


def test_rows_are_deterministic_recombined_and_near_their_sources(tmp_path: Path) -> None:
    built = corpus(tmp_path)
    texts, speakers, vectors, times = next(built.rows(40, seed=3))
    again = next(built.rows(40, seed=3))
    assert texts == again[0] and np.array_equal(vectors, again[2])
    assert len(texts) == len(speakers) == len(vectors) == len(times) == 40
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    by_text = {turn.text: index for index, turn in enumerate(built.turns)}
    first = next(turn for turn in built.turns if texts[0].startswith(turn.text + " "))
    second = by_text[texts[0][len(first.text) + 1:]]
    mixed = built.turn_vectors[by_text[first.text]] + 0.5 * built.turn_vectors[second]
    assert float(vectors[0] @ (mixed / np.linalg.norm(mixed))) > 1 - NOISE_NORM
    assert list(times) == sorted(times)


def test_corpus_embedder_returns_question_vectors(tmp_path: Path) -> None:
    built = corpus(tmp_path)
    embedder = CorpusEmbedder(built)
    assert np.allclose(embedder.embed_query(built.questions[1]), built.question_vectors[1], atol=1e-6)
    other = embedder.embed(["something else", "something else"])
    assert np.array_equal(other[0], other[1]) and abs(float(other[0] @ other[0]) - 1) < 1e-5


def test_scope_plan_spreads_evenly() -> None:
    assert scope_plan(1050, 4) == [("user-0", 263), ("user-1", 263), ("user-2", 262), ("user-3", 262)]
    assert scope_plan(3, 10) == [("user-0", 1), ("user-1", 1), ("user-2", 1)]
    with pytest.raises(ValidationError):
        scope_plan(0, 1)


def test_bulk_loaded_store_is_searchable_and_reused(tmp_path: Path) -> None:
    built = corpus(tmp_path)
    path = tmp_path / "corpus.db"
    assert ensure_store(path, built, 120, 3, seed=1)
    store = SQLiteStore(path)
    try:
        assert store.stats()["memories"] == 120 and store.stats()["episodes"] == 120
        assert store.stats(Scope(user_id="user-2"))["memories"] == 40
        memories = store.list_memories(ListQuery(scope=Scope(user_id="user-0"), limit=5))
        assert all(memory.sources and memory.index_keys for memory in memories)
        assert store.embedder_signature("other") == CorpusEmbedder(built).signature
    finally:
        store.close()
    assert not ensure_store(path, built, 120, 3, seed=1)
    assert ensure_store(path, built, 60, 3, seed=1)
