"""Retrieval settings as named recipes: experiments change data, not code paths."""

from __future__ import annotations

from pydantic import BaseModel, Field

from engram.errors import ConfigurationError


class RetrievalRecipe(BaseModel):
    """How the read path finds and ranks memories."""

    model_config = {"extra": "forbid"}

    name: str = "custom"
    lexical_k: int = Field(50, ge=0, le=5000, description="BM25 candidates taken")
    dense_k: int = Field(50, ge=0, le=5000, description="vector candidates taken")
    rrf_k: float = Field(60.0, gt=0, description="reciprocal rank fusion constant")
    lexical_weight: float = Field(1.0, ge=0)
    dense_weight: float = Field(1.0, ge=0)
    recency_weight: float = Field(0.0, ge=0, description="bonus for memories close to the reference date")
    recency_half_life_days: float = Field(180.0, gt=0)
    abstain_threshold: float = Field(0.30, description="abstain when the best dense similarity is below this")
    reinforce: bool = Field(False, description="record recalls (access_count) on every search")


RECIPES: dict[str, RetrievalRecipe] = {
    "fast": RetrievalRecipe(name="fast", lexical_k=30, dense_k=30),
    "balanced": RetrievalRecipe(name="balanced"),
    "best": RetrievalRecipe(name="best", lexical_k=100, dense_k=100),
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
