"""Read path, step 4: turn ranked candidates into hits (recency, threshold, limit) and decide abstention."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from engram.learning.strength import strength_of
from engram.models import MemoryItem, SearchHit
from engram.read.fuse import Fused
from engram.read.query import SearchQuery
from engram.read.recipes import RetrievalRecipe
from engram.read.rerank import Scored, sigmoid
from engram.read.roles import is_acknowledgement
from engram.timeutil import utcnow
from engram.trust import TrustLevel, trust_level_weight


def recency_bonus(memory: MemoryItem, reference_date: datetime | None, recipe: RetrievalRecipe) -> float:
    """``recency_weight * 0.5 ** (age / half_life)``, age measured from the reference date (or now)."""
    if recipe.recency_weight <= 0:
        return 0.0
    anchor = memory.began_at
    reference = reference_date or memory.updated_at
    age_days = abs((reference - anchor).total_seconds()) / 86_400
    return recipe.recency_weight * math.pow(0.5, age_days / recipe.recency_half_life_days)


def strength_factor(memory: MemoryItem, recipe: RetrievalRecipe, now: datetime) -> float:
    """``strength ** strength_weight``: 1 for a fresh, unused memory (and when the weight is 0), above 1 for
    one that use strengthened, below 1 for one that faded."""
    return math.pow(strength_of(memory, now), recipe.strength_weight) if recipe.strength_weight > 0 else 1.0


def trust_factor(memory: MemoryItem, recipe: RetrievalRecipe, query: SearchQuery) -> float:
    """``1 - trust_weight * (1 - weight of the writer's trust level)``: how much of its relevance a memory
    keeps for being written by a less trusted writer (1 for the user's own words, and for the assistant's
    when the question asks what the assistant said: ``engram.read.roles``)."""
    if query.about_assistant and memory.trust == TrustLevel.ASSISTANT:
        return 1.0
    return 1.0 - recipe.trust_weight * (1.0 - trust_level_weight(memory.trust))


def role_factor(memory: MemoryItem, recipe: RetrievalRecipe, query: SearchQuery) -> float:
    """``context_weight`` for a memory that is context rather than an answer (``engram.read.roles``): an
    assistant's turn that states nothing of its own ("Got it, I'll remember that."), and the user's words
    when the question asks what the assistant said; 1 otherwise."""
    if memory.trust == TrustLevel.USER and query.about_assistant:
        return recipe.context_weight
    if memory.is_turn and memory.trust == TrustLevel.ASSISTANT and is_acknowledgement(memory.memory):
        return recipe.context_weight
    return 1.0


def currency_factor(memory: MemoryItem, query: SearchQuery, recipe: RetrievalRecipe,
                    passed_over: Collection[str] = ()) -> float | None:
    """How much of its relevance a memory keeps for how current it is at the question's moment: 1 while
    valid; ``superseded_weight`` when a newer memory had replaced it by then and the question is about
    the present (1 for questions about the past), or when a question about what came before passes over
    it (``passed_over``); None when it had simply expired (left out)."""
    if memory.id in passed_over:
        return recipe.superseded_weight
    if memory.valid_to is None or memory.valid_to > query.moment:
        return 1.0
    if not memory.metadata.get("superseded_by"):
        return 1.0 if query.show_expired else None
    return recipe.superseded_weight if query.tense == "present" else 1.0


def weighted(score: float, factor: float, recipe: RetrievalRecipe) -> float:
    """A relevance times the trust/role/currency/strength ``factor``. For the learned ranker the factor
    multiplies the score's odds by ``factor ** score_scale`` (``engram.read.recipes.LEARNED_SCORE_SCALE``), so
    a factor moves a memory as far in the ranking whatever the steepness of the score's calibration; for
    RRF, a product."""
    if recipe.ranker != "learned":
        return score * factor
    if factor <= 0.0 or score <= 0.0:
        return 0.0
    if factor == 1.0:
        return score
    capped = min(score, 1.0 - 1e-12)
    return sigmoid(math.log(capped / (1.0 - capped)) + recipe.score_scale * math.log(factor))


def build_hits(fused: Sequence[Fused], memories: Sequence[MemoryItem], *, query: SearchQuery,
               recipe: RetrievalRecipe, explain: bool,
               passed_over: Collection[str] = ()) -> tuple[list[SearchHit], float]:
    """Score (relevance x trust x role x currency x strength factors + recency), order and cut the
    candidates; attach component scores when ``explain``. Also returns the best score before the threshold cut."""
    by_id = {memory.id: memory for memory in memories}
    now = utcnow()
    scored: list[tuple[float, float, dict[str, float], Fused, MemoryItem]] = []  # score, recency, factors
    for item in fused:
        memory = by_id.get(item.memory_id)
        currency = currency_factor(memory, query, recipe, passed_over) if memory is not None else None
        if memory is None or currency is None:
            continue
        factors = {"trust": trust_factor(memory, recipe, query),
                   "role": role_factor(memory, recipe, query),
                   "currency": currency, "strength": strength_factor(memory, recipe, now)}
        recency = recency_bonus(memory, query.reference_date, recipe)
        scored.append((weighted(item.score, math.prod(factors.values()), recipe) + recency, recency, factors, item,
                       memory))
    scored.sort(key=lambda entry: -entry[0])
    hits = []
    for score, recency, factors, item, memory in scored:
        if query.threshold is not None and score < query.threshold:
            continue
        details = {**item.components, "fused": item.score, **factors, "recency": recency} if explain else None
        hits.append(SearchHit(**memory.model_dump(), score=round(score, 6), explain=details))
        if len(hits) >= query.limit:
            break
    return hits, scored[0][0] if scored else 0.0


def confidence_of(dense_scores: Sequence[float]) -> float:
    """How sure retrieval is that memory holds something relevant: the best dense similarity, clipped to [0, 1]."""
    return max(0.0, min(1.0, max(dense_scores, default=0.0)))


def abstention_features(scored: Sequence[Scored], top_n: int = 10) -> dict[str, float]:
    """What the fitted confidence model looks at, from the ranked pool of a learned recipe. The content
    score of a memory is its linear score less the speaker term.

    - ``speaker_gap``: the best content score among memories said by a person the query names, minus
      the best content score overall (a question about Ana best matched by what someone else said is
      likely not answered by memory);
    - ``speaker_share``: the share of the ``top_n`` best by content score that a named person said.

    A query that names no speaker counts as consistent (gap 0, share 1)."""
    named = [item.features.get("speaker", 0.0) > 0 for item in scored]
    if not any(named):
        return {"speaker_gap": 0.0, "speaker_share": 1.0}
    content = [item.linear - item.contributions.get("speaker", 0.0) for item in scored]
    best_named = max(value for value, is_named in zip(content, named, strict=True) if is_named)
    order = sorted(range(len(scored)), key=lambda index: -content[index])[:top_n]
    return {"speaker_gap": best_named - max(content), "speaker_share": sum(named[i] for i in order) / len(order)}


def answerable_confidence(features: Mapping[str, float], weights: Mapping[str, float], bias: float, *,
                          topic_similarity: float | None, min_topic_similarity: float,
                          abstain_threshold: float) -> float:
    """How likely memory answers the query, in [0, 1]: ``sigmoid(bias + sum(weight * feature))``.

    ``topic_similarity`` is given only when no memory shares a distinctive word with the query: it is
    then the best dense similarity to the query with speaker names left out. Below
    ``min_topic_similarity`` the query is off-topic and the confidence is capped below the abstention
    threshold, in proportion to the similarity."""
    fitted = sigmoid(bias + sum(weight * features.get(name, 0.0) for name, weight in weights.items()))
    if topic_similarity is not None and topic_similarity < min_topic_similarity:
        return min(fitted, abstain_threshold * max(0.0, topic_similarity) / min_topic_similarity)
    return fitted
