"""The read path as a pipeline: candidates per signal -> fusion -> hits -> abstention."""

from __future__ import annotations

from dataclasses import replace

from engram.embed.base import Embedder
from engram.models import SearchResponse
from engram.read.assemble import build_hits, confidence_of
from engram.read.fuse import reciprocal_rank_fusion
from engram.read.query import SearchQuery
from engram.read.recipes import RetrievalRecipe
from engram.store.base import Candidate, ListQuery, Store


def gather_candidates(store: Store, embedder: Embedder, query: SearchQuery,
                      recipe: RetrievalRecipe) -> dict[str, list[Candidate]]:
    """Ranked candidates from each signal, all restricted to the scope and filters inside the store."""
    base = ListQuery(scope=query.scope, node=query.node, include_invalid=False)
    rankings: dict[str, list[Candidate]] = {}
    if recipe.lexical_k and recipe.lexical_weight:
        rankings["lexical"] = store.lexical_search(query.terms, replace(base, limit=recipe.lexical_k))
    if recipe.dense_k and recipe.dense_weight:
        rankings["dense"] = store.vector_search(embedder.embed_query(query.text), replace(base, limit=recipe.dense_k))
    return rankings


def run_search(store: Store, embedder: Embedder, query: SearchQuery, recipe: RetrievalRecipe, *,
               explain: bool = False) -> SearchResponse:
    """Find, rank and assemble the memories that answer ``query``."""
    rankings = gather_candidates(store, embedder, query, recipe)
    weights = {"lexical": recipe.lexical_weight, "dense": recipe.dense_weight}
    fused = reciprocal_rank_fusion(rankings, weights, recipe.rrf_k)
    memories = store.get_memories([item.memory_id for item in fused])
    hits = build_hits(fused, memories, reference_date=query.reference_date, recipe=recipe, limit=query.limit,
                      threshold=query.threshold, explain=explain)
    confidence = confidence_of([c.score for c in rankings.get("dense", [])])
    if recipe.reinforce and hits:
        store.touch([hit.id for hit in hits])
    return SearchResponse(results=hits, abstain=not hits or confidence < recipe.abstain_threshold,
                          confidence=round(confidence, 6), time_range=query.time_range)
