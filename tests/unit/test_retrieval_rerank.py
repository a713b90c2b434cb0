"""The learned ranker's steps: features, linear scores, ranking, confidence, the query-form router."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from engram.models import MemoryItem, Scope, SearchHit, SourceRef, TimeRange
from engram.read.assemble import abstention_features, answerable_confidence
from engram.read.pipeline import abstention
from engram.read.query import build_query, query_form
from engram.read.recipes import RECIPES, RetrievalRecipe
from engram.read.rerank import (
    DAY_TOP,
    FEATURES,
    candidate_features,
    linear_scores,
    named_speaker_words,
    query_names,
    rank,
    sigmoid,
    speaker_named,
    without_words,
)

DAY = datetime(2023, 5, 8, 13, 0, tzinfo=UTC)


def said(text: str, name: str | None, when: datetime = DAY) -> MemoryItem:
    return MemoryItem(memory=text, user_id="u", valid_from=when,
                      sources=[SourceRef(id=f"e-{text}", occurred_at=when, role="user", name=name)])


def test_names_in_query_match_speakers_word_by_word() -> None:
    names = query_names("What did Ana’s brother say to Dr. Luis?")
    assert {"ana", "luis", "dr"} <= names
    assert speaker_named(said("x", "Ana Silva"), names)
    assert speaker_named(said("x", "luis"), names)
    assert not speaker_named(said("x", "Anabel"), names)
    assert not speaker_named(said("x", None), names)


def test_candidate_features() -> None:
    ana = said("I adopted a cat", "Ana")
    bo = said("Nice cat", "Bo", DAY + timedelta(days=20))
    window = TimeRange(start=datetime(2023, 5, 1, tzinfo=UTC), end=datetime(2023, 5, 2, tzinfo=UTC))
    scored = candidate_features([ana, bo], {ana.id: 4.0, bo.id: 1.0}, {ana.id: 0.5, bo.id: 0.25},
                                "What cat did Ana adopt?", window)
    first, second = (item.features for item in scored)
    assert set(first) == set(FEATURES)
    assert first["lexical"] == 1.0 and second["lexical"] == 0.25
    assert first["dense"] == 0.5 and first["speaker"] == 1.0 and second["speaker"] == 0.0
    assert (first["time_match"], first["time_near"]) == (0.0, 1.0)  # 7 days after the range
    assert (second["time_match"], second["time_near"]) == (0.0, 0.0)
    assert first["day_lexical"] == 1.0 and second["day_dense"] == 0.25  # alone on their days
    assert first["length"] == pytest.approx(math.log1p(len("I adopted a cat")))
    assert first["name_free_dense"] == 0.5 and second["name_free_dense"] == 0.25  # no name-free values: dense


def test_name_free_dense_takes_the_name_free_similarity() -> None:
    ana, bo = said("I adopted a cat", "Ana"), said("Nice cat", "Bo")
    scored = candidate_features([ana, bo], {}, {ana.id: 0.5, bo.id: 0.25}, "What cat did Ana adopt?", None,
                                {ana.id: 0.3})
    assert [item.features["name_free_dense"] for item in scored] == [0.3, 0.25]  # a missing one keeps dense
    assert [item.features["dense"] for item in scored] == [0.5, 0.25]


def test_day_features_average_the_best_of_the_same_day() -> None:
    memories = [said(f"m{i}", "A") for i in range(4)] + [said("other day", "A", DAY + timedelta(days=1))]
    lexical = {m.id: float(i + 1) for i, m in enumerate(memories)}
    scored = candidate_features(memories, lexical, {}, "q", None)
    best = max(lexical.values())
    assert scored[0].features["day_lexical"] == pytest.approx((4 + 3 + 2) / best / DAY_TOP)
    assert scored[4].features["day_lexical"] == pytest.approx(5 / best)
    assert all(item.features["time_match"] == 0.0 for item in scored)


def test_lexical_is_a_share_of_the_best_match_whatever_the_store_size() -> None:
    """BM25 of a match in a one-memory store is ~1e-6 (every term is common): still the best match."""
    alone = said("I live in Berlin", None)
    tiny = candidate_features([alone], {alone.id: 1.5e-6}, {alone.id: 0.4}, "where do I live", None)
    large = candidate_features([alone], {alone.id: 7.2}, {alone.id: 0.4}, "where do I live", None)
    assert tiny[0].features == large[0].features
    assert tiny[0].features["lexical"] == 1.0 and tiny[0].features["day_dense"] == 0.4
    unmatched = candidate_features([alone], {}, {alone.id: 0.1}, "capital of France", None)
    assert unmatched[0].features["lexical"] == 0.0


def test_linear_scores_rank_and_explain() -> None:
    strong, weak = said("strong", "A"), said("weak", "B")
    scored = candidate_features([weak, strong], {strong.id: 2.0, weak.id: 1.0}, {strong.id: 0.9, weak.id: 0.1},
                                "q", None)
    weights = {"lexical": 1.0, "dense": 2.0}
    linear_scores(scored, weights)
    assert scored[1].linear == pytest.approx(1.0 + 1.8)
    assert scored[1].contributions["dense"] == pytest.approx(1.8)
    ranked = rank(scored, bias=-2.0)
    assert [item.memory_id for item in ranked] == [strong.id, weak.id]
    assert ranked[0].score == pytest.approx(sigmoid(0.8))
    assert ranked[0].components["w_lexical"] == 1.0 and ranked[0].components["linear"] == pytest.approx(2.8)


def test_sigmoid_is_stable() -> None:
    assert sigmoid(0.0) == 0.5
    assert sigmoid(1000.0) == 1.0 and sigmoid(-1000.0) == 0.0
    assert sigmoid(2.0) + sigmoid(-2.0) == pytest.approx(1.0)


def test_abstention_features_compare_named_speakers_with_the_best_match() -> None:
    ana, bo = said("ana text", "Ana"), said("bo text", "Bo")
    scored = candidate_features([ana, bo], {ana.id: 1.0, bo.id: 3.0}, {ana.id: 0.2, bo.id: 0.6},
                                "What did Ana do?", None)
    linear_scores(scored, {"lexical": 1.0, "speaker": 5.0})
    features = abstention_features(scored)
    assert features["speaker_gap"] == pytest.approx(1 / 3 - 1.0)  # the speaker term does not count
    assert features["speaker_share"] == pytest.approx(0.5)
    unnamed = abstention_features(candidate_features([bo], {bo.id: 1.0}, {}, "anything", None))
    assert unnamed == {"speaker_gap": 0.0, "speaker_share": 1.0}


def test_confidence_is_the_fitted_sigmoid_unless_the_query_is_off_topic() -> None:
    weights = {"speaker_gap": 4.0, "speaker_share": 5.0}
    options = {"min_topic_similarity": 0.3, "abstain_threshold": 0.5}
    consistent = {"speaker_gap": 0.0, "speaker_share": 1.0}
    on_topic = answerable_confidence(consistent, weights, -1.0, topic_similarity=None, **options)
    assert on_topic == pytest.approx(sigmoid(4.0))
    mismatch = answerable_confidence({"speaker_gap": -1.0, "speaker_share": 0.0}, weights, -1.0,
                                     topic_similarity=None, **options)
    assert mismatch < 0.5 < on_topic
    similar_enough = answerable_confidence(consistent, weights, -1.0, topic_similarity=0.4, **options)
    assert similar_enough == on_topic
    off_topic = answerable_confidence(consistent, weights, -1.0, topic_similarity=0.15, **options)
    assert off_topic == pytest.approx(0.25)
    assert answerable_confidence(consistent, weights, -1.0, topic_similarity=-0.1, **options) == 0.0


def test_speaker_names_are_found_and_removed_from_the_query() -> None:
    memories = [said("x", "Maya Costa"), said("y", "Tomás"), said("z", None)]
    assert named_speaker_words(memories, "What is Maya's favourite language?") == {"maya"}
    assert named_speaker_words(memories, "Did tomás ask?") == {"tomás"}
    assert without_words("What is Maya's favourite language, Maya?", {"maya"}) == "What is favourite language, ?"
    assert without_words("Mayan ruins", {"maya"}) == "Mayan ruins"
    assert without_words("unchanged", set()) == "unchanged"


@pytest.mark.parametrize(("text", "form"), [
    ("When did Melanie go camping?", "when"), ("How long has Tim played piano?", "when"),
    ("Would Caroline likely enjoy Vivaldi?", "hypothetical"), ("What might John's degree be in?", "hypothetical"),
    ("What did Ana adopt?", "default"), ("Whenever", "default"),
])
def test_query_form_router(text: str, form: str) -> None:
    assert query_form(text) == form


def test_build_query_parses_terms_form_and_time() -> None:
    query = build_query("When did Ana go to Porto in May 2023?", scope=Scope(user_id="u"), node=None, limit=5,
                        threshold=None, reference_date=DAY)
    assert query.form == "when" and "porto" in query.terms
    assert query.time_range is not None and query.time_range.start == datetime(2023, 5, 1, tzinfo=UTC)
    assert build_query("cats", scope=Scope(user_id="u"), node=None, limit=5, threshold=None,
                       reference_date=None).time_range is None


def test_recipes_route_weights_by_form() -> None:
    recipe = RetrievalRecipe(feature_weights={"lexical": 1.0}, form_weights={"when": {"lexical": 0.5, "dense": 2.0}})
    assert recipe.weights_for("when") == {"lexical": 1.5, "dense": 2.0}
    assert recipe.weights_for("default") == {"lexical": 1.0}
    assert RECIPES["balanced"].ranker == "learned" and RECIPES["rrf"].ranker == "rrf"
    assert set(RECIPES["balanced"].feature_weights) == set(FEATURES)


def test_abstain_and_confidence_agree_with_the_results() -> None:
    hit = SearchHit(**said("I live in Berlin", None).model_dump(), score=0.62)
    assert abstention([hit], 0.62, 0.3, None, 0.5) == (True, 0.3)  # no threshold: the confidence model decides
    assert abstention([hit], 0.62, 0.98, None, 0.5) == (False, 0.98)
    assert abstention([hit], 0.62, 0.3, 0.1, 0.5) == (False, 0.62)  # a hit cleared the caller's cut
    assert abstention([], 0.05, 0.98, 0.1, 0.5) == (True, 0.05)  # none did: confidence at most the best score
    abstain, confidence = abstention([], 0.8, 0.98, 0.9, 0.5)
    assert abstain and confidence < 0.5
