"""Retrieval settings as named recipes: experiments change data, not code paths.

The ``learned`` ranker's weights come from ``engram/data/models/ranker.json``, written by ``engram bench
fit`` (fitted on the LoCoMo dev conversations, reported leave-one-conversation-out); ``rrf`` is the plain
hybrid baseline (weighted reciprocal rank fusion of BM25 and dense)."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from engram.errors import ConfigurationError
from engram.read.rerank import FEATURES

#: The learned ranker's model, written with its provenance (data hash, seed, leave-one-conversation-out
#: report) by ``engram bench fit``: feature weights (features: ``engram.read.rerank``), per query form
#: (``engram.read.query.query_form``) amounts added to them, and the bias inside the score's sigmoid.
RANKER_MODEL_PATH = Path(str(files("engram") / "data" / "models" / "ranker.json"))
_RANKER = json.loads(RANKER_MODEL_PATH.read_text(encoding="utf-8"))
LEARNED_WEIGHTS: dict[str, float] = dict(_RANKER["feature_weights"])
LEARNED_FORM_WEIGHTS: dict[str, dict[str, float]] = {form: dict(deltas)
                                                     for form, deltas in _RANKER["form_weights"].items()}
LEARNED_BIAS: float = float(_RANKER["feature_bias"])
#: For a question that asks for several things, the linear score a memory loses per higher-ranked memory of
#: its own day (``engram.read.rerank.spread_days``; 0 in a model fitted before it existed).
LEARNED_DAY_REPEAT_PENALTY: float = float(_RANKER.get("day_repeat_penalty", 0.0))
#: How much flatter the shipped calibration is than the same calibration on dialogue alone
#: (``engram.bench.fit_ranker.fit``): a ranking factor ``f`` multiplies a score's odds by ``f ** score_scale``,
#: so the factors keep the strength they were chosen with on dialogue (``engram.read.assemble.weighted``).
LEARNED_SCORE_SCALE: float = float(_RANKER["score_scale"])
#: Default ``trust_weight``: a tool or document record keeps 70% of its relevance, an assistant one 85%.
TRUST_RANKING_WEIGHT = 0.5
#: Default ``context_weight``: the share of its relevance a turn keeps when it is context rather than an
#: answer (``engram.read.roles``): an assistant's acknowledgement, which restates the user's words, often in
#: the words a question uses ("your dietary needs"), and the user's words for a question about what the
#: assistant said. On the fixtures of tests/integration/test_roles.py such a turn scored up to 1.55x the
#: answer with the earlier ranker, where 0.5 put the answer first in all of them. With the calibrated score a
#: factor multiplies the odds by ``factor ** score_scale`` (ranker.json's, written by ``engram bench fit``;
#: 0.488 when this was set): 0.25 gave the odds x0.51, as 0.5 did then, and is what passes those fixtures
#: (0.5 fails 3 of them); a refit that moves ``score_scale`` should recheck it with test_roles.py.
#: docs/BENCHMARKS.md, "Assistant turns".
CONTEXT_WEIGHT = 0.25
#: A superseded memory's share of its score for questions about the present (past-tense questions and
#: ``as_of`` before the change keep it whole). The memory that replaced it already inherits its relevance
#: (``engram.read.links``), so any share below 1 ranks the current fact first; a mild one keeps the stale
#: fact near it, for questions that need both (measured with ``engram bench updates`` and LoCoMo).
SUPERSEDED_WEIGHT = 0.7
#: Default ``strength_weight``: set by ``engram bench feedback`` (docs/LEARNING.md).
STRENGTH_RANKING_WEIGHT = 0.0
#: Features of the confidence model (``engram.read.assemble.abstention_features``) and their weights.
CONFIDENCE_FEATURES = ("speaker_gap", "speaker_share")
CONFIDENCE_WEIGHTS: dict[str, float] = {"speaker_gap": 4.6, "speaker_share": 4.95}
CONFIDENCE_BIAS = -0.87


class RetrievalRecipe(BaseModel):
    """How the read path finds and ranks memories."""

    model_config = {"extra": "forbid"}

    name: str = "custom"
    ranker: Literal["learned", "rrf"] = Field("learned", description="linear model over features, or plain RRF")
    lexical_k: int = Field(100, ge=0, le=5000, description="BM25 candidates taken")
    dense_k: int = Field(100, ge=0, le=5000, description="vector candidates taken")
    rrf_k: float = Field(60.0, gt=0, description="reciprocal rank fusion constant (rrf ranker)")
    lexical_weight: float = Field(1.0, ge=0, description="weight of the BM25 list (rrf ranker)")
    dense_weight: float = Field(1.0, ge=0, description="weight of the dense list (rrf ranker)")
    feature_weights: dict[str, float] = Field(default_factory=lambda: dict(LEARNED_WEIGHTS),
                                              description="learned ranker: weight per feature")
    form_weights: dict[str, dict[str, float]] = Field(
        default_factory=lambda: {form: dict(deltas) for form, deltas in LEARNED_FORM_WEIGHTS.items()},
        description="learned ranker: per query form, amounts added to the feature weights")
    feature_bias: float = Field(LEARNED_BIAS, description="learned ranker: bias inside the score's sigmoid")
    day_repeat_penalty: float = Field(LEARNED_DAY_REPEAT_PENALTY, ge=0, description="learned ranker: for a "
                                      "question that asks for several things, the linear score a memory loses per "
                                      "higher-ranked memory of its day (spreads the top over days); 0 turns it off")
    score_scale: float = Field(LEARNED_SCORE_SCALE, gt=0, description="learned ranker: a ranking factor f "
                               "multiplies a score's odds by f ** score_scale")
    confidence_weights: dict[str, float] = Field(default_factory=lambda: dict(CONFIDENCE_WEIGHTS),
                                                 description="learned ranker: weights of the confidence model")
    confidence_bias: float = Field(CONFIDENCE_BIAS)
    abstain_threshold: float = Field(0.5, description="abstain when the confidence is below this")
    min_topic_similarity: float = Field(0.30, ge=0, le=1, description="learned ranker: when no memory shares a "
                                        "distinctive word with the query, a best name-free dense similarity "
                                        "below this marks it off-topic (abstain)")
    trust_weight: float = Field(TRUST_RANKING_WEIGHT, ge=0, le=1, description="how far a less trusted writer "
                                "lowers a memory's score: relevance x (1 - trust_weight x (1 - level weight)), "
                                "level weights user 1, assistant 0.7, tool/document 0.4, unknown 0.2; 0 turns it off")
    context_weight: float = Field(CONTEXT_WEIGHT, ge=0, le=1, description="share of its score a turn keeps when "
                                  "it is context, not an answer: an assistant's acknowledgement (thanks, 'got it', "
                                  "'I'll remember that', questions back), or the user's words when the question asks "
                                  "what the assistant said (engram.read.roles); 1 turns it off")
    superseded_weight: float = Field(SUPERSEDED_WEIGHT, ge=0, le=1, description="share of its score a memory "
                                     "keeps, for a question about the present, once a newer one superseded it")
    pair_reader: bool = Field(True, description="read-time supersession also reads each pair of candidates "
                              "together with the fine-tuned MiniLM cross-encoder (engram.read.pair_reader; a few ms "
                              "per pair, only for questions about the present or what came before); False: the "
                              "linear read model alone")
    recency_weight: float = Field(0.0, ge=0, description="bonus for memories close to the reference date")
    recency_half_life_days: float = Field(180.0, gt=0)
    reinforce: bool = Field(False, description="record recalls (access_count) on every search")
    strength_weight: float = Field(STRENGTH_RANKING_WEIGHT, ge=0, description="relevance x strength ** weight "
                                   "(engram.learning.strength: 1 when fresh, grows with use and useful feedback, "
                                   "fades unused); 0 turns it off")

    @model_validator(mode="after")
    def _known_features(self) -> RetrievalRecipe:
        """A misspelt feature name is an error, not a weight that silently counts as 0."""
        named = [*self.feature_weights, *(name for deltas in self.form_weights.values() for name in deltas)]
        unknown = sorted({name for name in named if name not in FEATURES})
        unknown += sorted(name for name in self.confidence_weights if name not in CONFIDENCE_FEATURES)
        if unknown:
            raise ValueError(f"unknown feature names {unknown}; ranker features: {', '.join(FEATURES)}; "
                             f"confidence features: {', '.join(CONFIDENCE_FEATURES)}")
        return self

    def weights_for(self, form: str) -> dict[str, float]:
        """The learned ranker's feature weights for a query of ``form``."""
        deltas = self.form_weights.get(form, {})
        return {name: weight + deltas.get(name, 0.0) for name, weight in
                {**dict.fromkeys(deltas, 0.0), **self.feature_weights}.items()}


RECIPES: dict[str, RetrievalRecipe] = {
    "fast": RetrievalRecipe(name="fast", lexical_k=30, dense_k=30, pair_reader=False),
    "balanced": RetrievalRecipe(name="balanced"),
    "best": RetrievalRecipe(name="best", lexical_k=200, dense_k=200),
    "rrf": RetrievalRecipe(name="rrf", ranker="rrf", lexical_k=50, dense_k=50, dense_weight=0.5,
                           abstain_threshold=0.30, trust_weight=0.0),
}


def resolve_recipe(recipe: RetrievalRecipe | str) -> RetrievalRecipe:
    """A recipe object, or the named one from ``RECIPES``."""
    if isinstance(recipe, RetrievalRecipe):
        return recipe
    try:
        return RECIPES[recipe]
    except KeyError:
        raise ConfigurationError(
            f"unknown retrieval recipe {recipe!r}", field="retrieval", hint=f"choose one of {', '.join(RECIPES)}"
        ) from None
