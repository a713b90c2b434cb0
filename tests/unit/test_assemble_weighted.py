"""Ranking factors act on the listwise scale of the learned ranker, whatever the score's calibration."""

import math

from engram.read.assemble import weighted
from engram.read.recipes import RetrievalRecipe
from engram.read.rerank import sigmoid


def test_factor_multiplies_the_odds_by_factor_to_the_score_scale() -> None:
    recipe = RetrievalRecipe(score_scale=0.25)
    score = 0.4
    odds = weighted(score, 0.5, recipe) / (1 - weighted(score, 0.5, recipe))
    assert math.isclose(odds, (0.4 / 0.6) * 0.5 ** 0.25, rel_tol=1e-9)
    assert weighted(score, 1.0, recipe) == score
    assert weighted(score, 0.0, recipe) == 0.0


def test_order_is_the_listwise_order_with_log_factor_added_for_any_calibration() -> None:
    listwise = [2.0, 1.6, 1.0, 0.3]
    factors = [0.5, 1.0, 0.85, 1.0]
    expected = sorted(range(4), key=lambda i: -(listwise[i] + math.log(factors[i])))
    for scale, bias in ((1.0, -12.0), (0.27, -5.8), (0.05, 0.0)):
        recipe = RetrievalRecipe(score_scale=scale)
        scores = [weighted(sigmoid(scale * value + bias), factor, recipe)
                  for value, factor in zip(listwise, factors, strict=True)]
        assert sorted(range(4), key=lambda i: -scores[i]) == expected


def test_rrf_scores_are_plain_products() -> None:
    assert weighted(0.02, 0.5, RetrievalRecipe(ranker="rrf")) == 0.01
