"""Retrieval settings as named recipes: experiments change data, not code paths.

The ``learned`` ranker's weights were fitted on the LoCoMo dev conversations and validated
leave-one-conversation-out (see docs/BENCHMARKS.md, "Retrieval ablations"); ``rrf`` is the plain
hybrid baseline (weighted reciprocal rank fusion of BM25 and dense)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from engram.errors import ConfigurationError

#: Feature weights of the learned ranker (features: ``engram.read.rerank``).
LEARNED_WEIGHTS: dict[str, float] = {
    "lexical": 3.2, "dense": 9.3, "speaker": 0.9, "time_match": 2.9, "time_near": 2.9,
    "day_lexical": 3.5, "day_dense": 1.4, "length": 1.4,
}
LEARNED_BIAS = -16.0
#: Weights of the confidence model (features: ``engram.read.assemble.abstention_features``).
CONFIDENCE_WEIGHTS: dict[str, float] = {"speaker_gap": 2.1, "dense_max": 1.8, "top": 0.0}
CONFIDENCE_BIAS = 0.7


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
    feature_bias: float = Field(LEARNED_BIAS, description="learned ranker: bias inside the score's sigmoid")
    confidence_weights: dict[str, float] = Field(default_factory=lambda: dict(CONFIDENCE_WEIGHTS),
                                                 description="learned ranker: weights of the confidence model")
    confidence_bias: float = Field(CONFIDENCE_BIAS)
    abstain_threshold: float = Field(0.5, description="abstain when the confidence is below this")
    recency_weight: float = Field(0.0, ge=0, description="bonus for memories close to the reference date")
    recency_half_life_days: float = Field(180.0, gt=0)
    reinforce: bool = Field(False, description="record recalls (access_count) on every search")


RECIPES: dict[str, RetrievalRecipe] = {
    "fast": RetrievalRecipe(name="fast", lexical_k=30, dense_k=30),
    "balanced": RetrievalRecipe(name="balanced"),
    "best": RetrievalRecipe(name="best", lexical_k=200, dense_k=200),
    "rrf": RetrievalRecipe(name="rrf", ranker="rrf", lexical_k=50, dense_k=50, dense_weight=0.5,
                           abstain_threshold=0.30),
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
