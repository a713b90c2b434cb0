"""Read path, step 4: turn ranked candidates into hits (recency, threshold, limit) and decide abstention."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

from engram.models import MemoryItem, SearchHit
from engram.read.fuse import Fused
from engram.read.recipes import RetrievalRecipe
from engram.read.rerank import Scored, sigmoid


def recency_bonus(memory: MemoryItem, reference_date: datetime | None, recipe: RetrievalRecipe) -> float:
    """``recency_weight * 0.5 ** (age / half_life)``, age measured from the reference date (or now)."""
    if recipe.recency_weight <= 0:
        return 0.0
    anchor = memory.valid_from or memory.created_at
    reference = reference_date or memory.updated_at
    age_days = abs((reference - anchor).total_seconds()) / 86_400
    return recipe.recency_weight * math.pow(0.5, age_days / recipe.recency_half_life_days)


def build_hits(fused: Sequence[Fused], memories: Sequence[MemoryItem], *, reference_date: datetime | None,
               recipe: RetrievalRecipe, limit: int, threshold: float | None, explain: bool) -> list[SearchHit]:
    """Score, order and cut the candidates; attach component scores when ``explain``."""
    by_id = {memory.id: memory for memory in memories}
    scored: list[tuple[float, Fused, MemoryItem]] = []
    for item in fused:
        memory = by_id.get(item.memory_id)
        if memory is None:
            continue
        bonus = recency_bonus(memory, reference_date, recipe)
        scored.append((item.score + bonus, item, memory))
    scored.sort(key=lambda entry: -entry[0])
    hits = []
    for score, item, memory in scored:
        if threshold is not None and score < threshold:
            continue
        details = {**item.components, "fused": item.score, "recency": score - item.score} if explain else None
        hits.append(SearchHit(**memory.model_dump(), score=round(score, 6), explain=details))
        if len(hits) >= limit:
            break
    return hits


def confidence_of(dense_scores: Sequence[float]) -> float:
    """How sure retrieval is that memory holds something relevant: the best dense similarity, clipped to [0, 1]."""
    return max(0.0, min(1.0, max(dense_scores, default=0.0)))


def abstention_features(scored: Sequence[Scored]) -> dict[str, float]:
    """What the confidence model looks at, from the ranked pool of a learned recipe:

    - ``speaker_gap``: the best content score (linear score less the speaker term) among memories said
      by a person the query names, minus the best content score overall: a question about Ana whose
      best match was said by someone else is likely not answered by memory (0 when no one is named);
    - ``dense_max``: the best dense similarity in the pool;
    - ``top``: the best linear score."""
    if not scored:
        return {"speaker_gap": 0.0, "dense_max": 0.0, "top": 0.0}
    content = [item.linear - item.contributions.get("speaker", 0.0) for item in scored]
    named = [value for value, item in zip(content, scored, strict=True) if item.features.get("speaker", 0.0) > 0]
    return {
        "speaker_gap": (max(named) - max(content)) if named else 0.0,
        "dense_max": max(item.features.get("dense", 0.0) for item in scored),
        "top": max(item.linear for item in scored),
    }


def answerable_confidence(features: Mapping[str, float], weights: Mapping[str, float], bias: float) -> float:
    """``sigmoid(bias + sum(weight * feature))``: how likely memory answers the query, in (0, 1)."""
    return sigmoid(bias + sum(weight * features.get(name, 0.0) for name, weight in weights.items()))
