"""``engram bench fit`` calibrates the score on stores of several sizes drawn from each conversation:
each keeps the evidence of the questions it is asked, has exactly the size asked for, and the draw is
the same on every run; the calibration weighs every size alike."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from engram.bench.datasets import Conversation, Question, Session, Turn
from engram.bench.fit_ranker import (
    FORMS,
    FULL,
    Pool,
    listwise_weights,
    model_weights,
    per_category,
    size_weights,
    subsampled_stores,
)
from engram.read.rerank import FEATURES

DAY = datetime(2023, 5, 8, tzinfo=UTC)


def conversation(turns: int = 60) -> Conversation:
    sessions = [Session(f"D{s}", DAY, tuple(Turn(f"D{s}:{t}", f"D{s}", "Ana", "user", f"turn {s} {t}")
                                             for t in range(1, 21))) for s in range(1, turns // 20 + 1)]
    questions = [Question(f"q{i}", f"question {i}", "a", "single-hop", (f"D{i % 3 + 1}:{i + 1}", f"D1:{i + 2}"),
                          (), DAY) for i in range(12)]
    return Conversation("conv", sessions, questions)


def test_subsampled_stores_keep_the_evidence_and_the_size() -> None:
    stores = list(subsampled_stores(conversation(), 10))
    assert stores and sum(len(questions) for _, questions in stores) == 12
    for store, questions in stores:
        kept = {turn.turn_id for turn in store.turns}
        assert len(kept) == 10
        assert all(set(question.evidence_turns) <= kept for question in questions)
    again = list(subsampled_stores(conversation(), 10))
    assert [[t.turn_id for t in s.turns] for s, _ in stores] == [[t.turn_id for t in s.turns] for s, _ in again]
    assert list(subsampled_stores(conversation(), 60)) == []  # not smaller than the conversation


def test_every_store_size_weighs_alike() -> None:
    def pool(size: str, candidates: int) -> Pool:
        return Pool("c", "default", np.zeros((candidates, 1)), np.zeros(candidates), [()] * candidates,
                    frozenset(), size)

    weights = size_weights([pool("10", 10), pool(FULL, 90), pool(FULL, 100)])
    assert weights[:10].sum() == weights[10:].sum()
    assert np.isclose(weights.mean(), 1.0)


def test_a_model_from_before_a_new_feature_weighs_it_zero() -> None:
    """The fit reports the shipped model's recall beside the new one: after a feature is added to the
    ranker, the shipped model does not name it yet, and counts it as 0 instead of failing the fit."""
    older = [name for name in FEATURES if name != "length"]
    model = {"feature_weights": dict.fromkeys(older, 1.0),
             "form_weights": {form: dict.fromkeys(older, 0.5) for form in FORMS}}
    weights = model_weights(model)
    assert len(weights) == len(FEATURES) * (1 + len(FORMS))
    missing = [index for index, value in enumerate(weights) if value == 0.0]
    assert missing == [FEATURES.index("length") + len(FEATURES) * block for block in range(1 + len(FORMS))]


def test_the_report_gives_recall_per_category() -> None:
    def pool(category: str, store_size: str = FULL) -> Pool:
        return Pool("c", "default", np.zeros((1, 1)), np.zeros(1), [()], frozenset({"D1:1"}), store_size,
                    category=category)

    recalls = [(pool("multi-hop"), 0.5), (pool("multi-hop"), 1.0), (pool("temporal"), 0.0)]
    assert per_category(recalls) == {"all": 0.5, "multi-hop": 0.75, "temporal": 0.0}


def test_the_form_offsets_shrink_with_their_own_penalty() -> None:
    """``form_l2`` penalises the per-form offsets, not the feature weights: a large one pulls the offsets of a
    form fitted on a few questions toward zero, and its questions toward the weights every question shares."""
    lexical, dense = FEATURES.index("lexical"), FEATURES.index("dense")

    def pool(form: str, evidence_by: int) -> Pool:
        features = np.zeros((2, len(FEATURES)))
        features[0, lexical] = features[1, dense] = 1.0
        labels = np.zeros(2)
        labels[0 if evidence_by == lexical else 1] = 1.0
        return Pool("c", form, features, labels, [("a",), ("b",)], frozenset({"a"}))

    pools = [pool("default", lexical)] * 6 + [pool("hypothetical", dense)] * 2
    offset = len(FEATURES) * (1 + FORMS.index("hypothetical"))
    loose, tight = listwise_weights(pools), listwise_weights(pools, form_l2=20.0)
    assert loose[offset + dense] - loose[offset + lexical] > 1.0  # the form's own preference is learnt
    assert 0 < tight[offset + dense] < loose[offset + dense] / 3
    assert tight[lexical] - tight[dense] > 0  # the shared weights still prefer what most questions want
