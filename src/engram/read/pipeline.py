"""The read path as a pipeline: candidates per signal -> ranking -> hits -> abstention.

Two rankers share the candidate step: ``learned`` (features of each candidate, a linear model,
a confidence model; ``engram.read.rerank``) and ``rrf`` (reciprocal rank fusion of the lists)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from engram.embed.base import Embedder
from engram.models import MemoryItem, SearchResponse
from engram.read.assemble import (
    abstention_features,
    answerable_confidence,
    build_hits,
    confidence_of,
)
from engram.read.fuse import Fused, reciprocal_rank_fusion
from engram.read.query import SearchQuery
from engram.read.recipes import RetrievalRecipe
from engram.read.rerank import candidate_features, linear_scores, rank
from engram.store.base import Candidate, ListQuery, Store


def gather_candidates(store: Store, query_vector: np.ndarray | None, query: SearchQuery,
                      recipe: RetrievalRecipe) -> dict[str, list[Candidate]]:
    """Ranked candidates from each signal, all restricted to the scope and filters inside the store."""
    base = ListQuery(scope=query.scope, node=query.node, include_invalid=False)
    rankings: dict[str, list[Candidate]] = {}
    if recipe.lexical_k:
        rankings["lexical"] = store.lexical_search(query.terms, replace(base, limit=recipe.lexical_k))
    if recipe.dense_k and query_vector is not None:
        rankings["dense"] = store.vector_search(query_vector, replace(base, limit=recipe.dense_k))
    return rankings


def dense_scores(store: Store, query_vector: np.ndarray | None, found: Sequence[Candidate],
                 ids: Sequence[str]) -> dict[str, float]:
    """Cosine similarity of the query to each of ``ids``: from the dense list, else from stored vectors."""
    scores = {candidate.memory_id: candidate.score for candidate in found}
    missing = [memory_id for memory_id in ids if memory_id not in scores]
    if query_vector is not None and missing:
        for memory_id, vector in store.get_vectors(missing).items():
            scores[memory_id] = float(np.dot(vector, query_vector))
    return scores


def learned_ranking(store: Store, query_vector: np.ndarray | None, query: SearchQuery, recipe: RetrievalRecipe,
                    rankings: dict[str, list[Candidate]]) -> tuple[list[Fused], list[MemoryItem], float]:
    """Rank the pooled candidates with the recipe's linear model; also return the confidence."""
    lexical = {candidate.memory_id: candidate.score for candidate in rankings.get("lexical", [])}
    pool = list(dict.fromkeys([*lexical, *(c.memory_id for c in rankings.get("dense", []))]))
    memories = store.get_memories(pool)
    dense = dense_scores(store, query_vector, rankings.get("dense", []), pool)
    scored = candidate_features(memories, lexical, dense, query.text, query.time_range)
    linear_scores(scored, recipe.feature_weights)
    confidence = answerable_confidence(abstention_features(scored), recipe.confidence_weights,
                                       recipe.confidence_bias) if scored else 0.0
    return rank(scored, recipe.feature_bias), memories, confidence


def rrf_ranking(store: Store, recipe: RetrievalRecipe,
                rankings: dict[str, list[Candidate]]) -> tuple[list[Fused], list[MemoryItem], float]:
    """Weighted reciprocal rank fusion; the confidence is the best dense similarity."""
    weights = {"lexical": recipe.lexical_weight, "dense": recipe.dense_weight}
    fused = reciprocal_rank_fusion(rankings, weights, recipe.rrf_k)
    memories = store.get_memories([item.memory_id for item in fused])
    return fused, memories, confidence_of([c.score for c in rankings.get("dense", [])])


def run_search(store: Store, embedder: Embedder, query: SearchQuery, recipe: RetrievalRecipe, *,
               explain: bool = False) -> SearchResponse:
    """Find, rank and assemble the memories that answer ``query``."""
    query_vector = embedder.embed_query(query.text) if recipe.dense_k else None
    rankings = gather_candidates(store, query_vector, query, recipe)
    if recipe.ranker == "learned":
        fused, memories, confidence = learned_ranking(store, query_vector, query, recipe, rankings)
    else:
        fused, memories, confidence = rrf_ranking(store, recipe, rankings)
    hits = build_hits(fused, memories, reference_date=query.reference_date, recipe=recipe, limit=query.limit,
                      threshold=query.threshold, explain=explain)
    if recipe.reinforce and hits:
        store.touch([hit.id for hit in hits])
    return SearchResponse(results=hits, abstain=not hits or confidence < recipe.abstain_threshold,
                          confidence=round(confidence, 6), time_range=query.time_range)
