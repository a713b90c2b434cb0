"""Benchmark metrics against hand-computed values, including LoCoMo's evidence quirks."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engram.bench import metrics
from engram.bench.baselines import BM25Index, BM25System, DenseSystem, tokenize
from engram.bench.datasets import Conversation, Question, Session, Turn, normalise_evidence_ids
from engram.bench.runner import RunSettings, ratios, score_question, summarise_records
from engram.bench.scale import SyntheticEmbedder
from engram.bench.systems import RetrievedHit, SearchOutcome, turn_ids_of_hit
from engram.errors import ValidationError

LOG2_3 = math.log2(3)


def test_recall_hit_and_complete_at_k() -> None:
    covered = [["x"], ["a"], ["c"]]
    assert metrics.recall_at_k(covered, ["a", "c"], 1) == 0.0
    assert metrics.recall_at_k(covered, ["a", "c"], 2) == 0.5
    assert metrics.recall_at_k(covered, ["a", "c"], 3) == 1.0
    assert metrics.recall_at_k(covered, ["a", "c"], 20) == 1.0
    assert metrics.hit_at_k(covered, ["a", "c"], 1) == 0.0
    assert metrics.hit_at_k(covered, ["a", "c"], 2) == 1.0
    assert metrics.complete_at_k(covered, ["a", "c"], 2) == 0.0
    assert metrics.complete_at_k(covered, ["a", "c"], 3) == 1.0


def test_ndcg_binary_case_matches_hand_computation() -> None:
    # gains 0, 1, 1 at ranks 1..3; ideal: two relevant hits at ranks 1 and 2
    expected = (1 / LOG2_3 + 1 / 2) / (1 + 1 / LOG2_3)
    assert metrics.ndcg_at_k([["x"], ["a"], ["c"]], ["a", "c"], 3) == pytest.approx(expected)
    assert metrics.ndcg_at_k([["a"], ["c"]], ["a", "c"], 2) == pytest.approx(1.0)


def test_ndcg_counts_a_duplicate_turn_once_and_caps_multi_turn_hits() -> None:
    assert metrics.ndcg_at_k([["a"], ["a"]], ["a", "b"], 2) == pytest.approx(1 / (1 + 1 / LOG2_3))
    # one summary citing both evidence turns at rank 1 reaches (and is capped at) the ideal
    assert metrics.ndcg_at_k([["a", "b"], ["z"]], ["a", "b"], 2) == 1.0


def test_recall_at_budget_stops_at_the_first_hit_that_overflows() -> None:
    texts = ["a" * 40, "b" * 80, "c" * 40]  # 10, 20 and 10 tokens
    covered = [["t1"], ["t2"], ["t3"]]
    assert metrics.hits_within_budget(texts, 30) == 2
    assert metrics.hits_within_budget(texts, 29.9) == 1
    assert metrics.recall_at_budget(covered, texts, ["t2", "t3"], 30) == 0.5
    assert metrics.recall_at_budget(covered, texts, ["t2", "t3"], 1000) == 1.0
    assert metrics.recall_at_budget(covered, texts, ["t1"], 5) == 0.0
    assert metrics.context_tokens(texts, 2) == 30.0


def test_metrics_reject_meaningless_input() -> None:
    with pytest.raises(ValidationError) as error:
        metrics.recall_at_k([["a"]], [], 1)
    assert error.value.field == "evidence"
    with pytest.raises(ValidationError):
        metrics.recall_at_k([["a"]], ["a"], 0)
    with pytest.raises(ValidationError):
        metrics.hits_within_budget(["a"], 0)
    with pytest.raises(ValidationError):
        metrics.auroc([0.1], [True, False])


def test_percentiles_and_latency_summary() -> None:
    assert metrics.percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert metrics.percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)
    assert math.isnan(metrics.percentile([], 50))
    summary = metrics.latency_summary([0.001, 0.002, 0.003])
    assert summary["p50_ms"] == pytest.approx(2.0)
    assert summary["max_ms"] == pytest.approx(3.0)
    assert metrics.latency_summary([])["count"] == 0


def test_auroc_by_hand_with_ties() -> None:
    # positives 0.9 and 0.3, negatives 0.8 and 0.1: 3 of 4 pairs ordered correctly
    assert metrics.auroc([0.9, 0.8, 0.3, 0.1], [True, False, True, False]) == 0.75
    assert metrics.auroc([0.5, 0.5], [True, False]) == 0.5
    assert metrics.auroc([0.2, 0.1], [True, True]) is None


def test_abstention_precision_recall_and_confidence_auroc() -> None:
    result = metrics.abstention_metrics([True, True, False, False], [0.1, 0.2, 0.9, 0.8],
                                        [True, False, True, False])
    assert result["precision"] == 0.5
    assert result["recall"] == 0.5
    assert result["f1"] == 0.5
    # low confidence predicts abstention: -conf = [-0.1, -0.2, -0.9, -0.8]; pairs 2 of 4
    assert result["auroc"] == 0.5
    no_signal = metrics.abstention_metrics(None, [0.1, 0.9], [True, False])
    assert no_signal["precision"] is None
    assert no_signal["auroc"] == 1.0
    never = metrics.abstention_metrics([False, False], [0.5, 0.5], [True, False])
    assert never["precision"] is None and never["recall"] == 0.0 and never["f1"] == 0.0


@pytest.mark.parametrize(("raw", "expected", "dropped"), [
    (["D8:6; D9:17"], ["D8:6", "D9:17"], 0),
    (["D"], [], 1),
    (["D:11:26"], ["D11:26"], 0),
    (["D30:05"], ["D30:5"], 0),
    ([], [], 0),
    (None, [], 0),
    (["D1:3", "D1:3", ""], ["D1:3"], 1),
    ("D2:4", ["D2:4"], 0),
])
def test_evidence_id_quirks(raw: object, expected: list[str], dropped: int) -> None:
    assert normalise_evidence_ids(raw) == (expected, dropped)


def _question(turns: tuple[str, ...], sessions: tuple[str, ...] | None = None, *,
              abstain: bool = False) -> Question:
    return Question("q", "question?", "answer", "single-hop", turns,
                    sessions if sessions is not None else tuple(dict.fromkeys(t.split(":")[0] for t in turns)),
                    datetime(2023, 5, 1, tzinfo=UTC), should_abstain=abstain)


def test_score_question_maps_multi_turn_hits_and_sessions() -> None:
    outcome = SearchOutcome(hits=[
        RetrievedHit("x" * 40, ("D3:1",), 0.9),
        RetrievedHit("y" * 400, ("D1:2", "D2:5"), 0.8),  # a summary citing two turns
    ], confidence=0.9, abstain=False)
    settings = RunSettings(ks=(1, 2), budgets=(10, 200), depth=2)
    record = score_question(_question(("D1:2", "D2:5")), outcome, settings, full_tokens=1000.0)
    assert record["recall@1"] == 0.0
    assert record["recall@2"] == 1.0
    assert record["session_recall@1"] == 0.0
    assert record["session_recall@2"] == 1.0
    assert record["session_complete@2"] == 1.0
    assert record["ndcg@2"] == pytest.approx((2 / LOG2_3) / (1 + 1 / LOG2_3))
    assert record["recall@10tok"] == 0.0  # the first hit alone fills the 10-token budget
    assert record["recall@200tok"] == 1.0
    assert record["tokens@2"] == 110.0


def test_summaries_skip_unscored_questions_and_ratios_divide() -> None:
    settings = RunSettings(ks=(1,), budgets=(100,), depth=1)
    hit = SearchOutcome(hits=[RetrievedHit("t", ("D1:1",), 1.0)], confidence=1.0)
    records = [score_question(_question(("D1:1",)), hit, settings, 10.0),
               score_question(_question(("D1:9",)), hit, settings, 10.0),
               score_question(_question((), (), abstain=True), hit, settings, 10.0)]
    summary = summarise_records(records, settings)
    assert summary["questions"] == 2
    assert summary["recall@1"] == 0.5
    systems = {"engram": {"overall": summary}, "bm25": {"overall": {**summary, "recall@1": 0.25}}}
    assert ratios(systems, settings)["engram/bm25"]["recall@1"] == 2.0


def test_turn_ids_come_from_source_metadata_then_hit_metadata() -> None:
    hit = {"sources": [{"metadata": {"turn_id": "D1:1"}}, {"metadata": {"dia_id": "D1:2"}},
                       {"metadata": {"turn_id": "D1:1"}}], "metadata": {"turn_id": "D9:9"}}
    assert turn_ids_of_hit(hit) == ("D1:1", "D1:2")
    assert turn_ids_of_hit({"sources": [], "metadata": {"dia_id": "D4:4"}}) == ("D4:4",)
    assert turn_ids_of_hit({"sources": [{"metadata": {}}]}) == ()


def test_bm25_matches_hand_computed_scores() -> None:
    index = BM25Index(["red apple", "green apple pie", "blue sky"], k1=1.2, b=0.75)
    scores = index.scores("apple sky")
    average = 7 / 3
    idf_apple = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))
    idf_sky = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))

    def term(idf: float, length: int) -> float:
        return idf * 2.2 / (1 + 1.2 * (0.25 + 0.75 * length / average))

    assert scores[0] == pytest.approx(term(idf_apple, 2))
    assert scores[1] == pytest.approx(term(idf_apple, 3))
    assert scores[2] == pytest.approx(term(idf_sky, 2))
    assert tokenize("Bob's 30-km RUN!") == ["bob", "s", "30", "km", "run"]


def _conversation() -> Conversation:
    turns = (Turn("D1:1", "D1", "Ann", "user", "Ann: I adopted a puppy named Biscuit"),
             Turn("D1:2", "D1", "Ben", "assistant", "Ben: The weather in Oslo is cold"),
             Turn("D1:3", "D1", "Ann", "user", "Ann: I play the cello every evening"))
    return Conversation("c", [Session("D1", datetime(2023, 1, 1, tzinfo=UTC), turns)], [])


def test_bm25_and_dense_baselines_rank_the_matching_turn_first(tmp_path: Path) -> None:
    conversation = _conversation()
    question = Question("q", "Ann: I play the cello every evening", "", "single-hop", ("D1:3",), ("D1",),
                        datetime(2023, 2, 1, tzinfo=UTC))
    bm25 = BM25System()
    bm25.ingest(conversation, tmp_path)
    outcome = bm25.search(question, 10)
    assert outcome.hits[0].turn_ids == ("D1:3",)
    assert all(hit.score > 0 for hit in outcome.hits)
    dense = DenseSystem(SyntheticEmbedder(16))
    dense.ingest(conversation, tmp_path)
    ranked = dense.search(question, 2)
    assert ranked.hits[0].turn_ids == ("D1:3",)
    assert ranked.confidence == pytest.approx(1.0, abs=1e-5)
    assert len(ranked.hits) == 2


def test_synthetic_embedder_is_deterministic_and_unit_length() -> None:
    embedder = SyntheticEmbedder(32)
    first = embedder.embed(["alpha", "beta"])
    assert first.shape == (2, 32)
    assert first == pytest.approx(embedder.embed(["alpha", "beta"]))
    assert [float(row @ row) for row in first] == pytest.approx([1.0, 1.0], abs=1e-5)
