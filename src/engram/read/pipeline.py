"""The read path as a pipeline: candidates per signal -> ranking -> hits -> abstention.

Two rankers share the candidate step: ``learned`` (features of each candidate, a linear model,
a confidence model; ``engram.read.rerank``) and ``rrf`` (reciprocal rank fusion of the lists)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from engram.embed.base import Embedder
from engram.learning.feedback import recall_change
from engram.models import MemoryItem, SearchHit, SearchResponse
from engram.read.assemble import (
    abstention_features,
    answerable_confidence,
    build_hits,
    confidence_of,
)
from engram.read.echo import user_words_first
from engram.read.fuse import Fused, reciprocal_rank_fusion
from engram.read.links import follow_links
from engram.read.query import SearchQuery
from engram.read.recipes import RetrievalRecipe
from engram.read.replaced import PairJudge, settle_read_time
from engram.read.rerank import (
    DISTINCTIVE_BM25,
    candidate_features,
    linear_scores,
    named_speaker_words,
    rank,
    spread_days,
    without_words,
)
from engram.store.base import Candidate, CandidatePool, ListQuery, Store
from engram.timeutil import utcnow


def gather_candidates(store: Store, query_vector: np.ndarray | None, query: SearchQuery,
                      recipe: RetrievalRecipe) -> dict[str, list[Candidate]]:
    """Ranked candidates from each signal, all restricted to the scope and filters inside the store
    (the rrf ranker skips a signal whose weight is 0). Memories no longer valid are candidates too:
    ``build_hits`` drops the expired ones and weighs the superseded ones by the question's tense."""
    return gather_pool(store, query_vector, query, recipe).rankings


def gather_pool(store: Store, query_vector: np.ndarray | None, query: SearchQuery,
                recipe: RetrievalRecipe) -> CandidatePool:
    """:func:`gather_candidates` with the pooled memories and their similarity to the query, read
    together (``Store.candidate_pool``: one round trip on PostgreSQL)."""
    base = ListQuery(scope=query.scope, node=query.node, include_invalid=True,
                     include_archived=query.include_archived)
    learned = recipe.ranker == "learned"
    lexical = (replace(base, limit=recipe.lexical_k)
               if recipe.lexical_k and (learned or recipe.lexical_weight) else None)
    dense = (replace(base, limit=recipe.dense_k)
             if recipe.dense_k and (learned or recipe.dense_weight) and query_vector is not None else None)
    return store.candidate_pool(query.terms, lexical, query_vector, dense)


def dense_scores(store: Store, query_vector: np.ndarray | None, found: Sequence[Candidate],
                 ids: Sequence[str]) -> dict[str, float]:
    """Cosine similarity of the query to each of ``ids``: from the dense list, else from stored vectors."""
    scores = {candidate.memory_id: candidate.score for candidate in found}
    missing = [memory_id for memory_id in ids if memory_id not in scores]
    if query_vector is not None and missing:
        for memory_id, vector in store.get_vectors(missing).items():
            scores[memory_id] = float(np.dot(vector, query_vector))
    return scores


def name_free_similarity(store: Store, embedder: Embedder, query: SearchQuery, memories: Sequence[MemoryItem],
                         dense: Mapping[str, float]) -> dict[str, float]:
    """Cosine similarity of each of ``memories`` to the query with the names of their speakers left out
    (a name pulls the query's vector toward everything that person said): the ``name_free_dense`` feature.
    ``dense`` itself when the query names none of them, or without dense similarities (no second embedding
    then)."""
    names = named_speaker_words(memories, query.text)
    stripped = without_words(query.text, names)
    if not dense or not names or not stripped:
        return dict(dense)
    vectors = store.get_vectors([memory.id for memory in memories])
    name_free = embedder.embed_query(stripped)
    return {memory_id: float(np.dot(vector, name_free)) for memory_id, vector in vectors.items()}


def topic_similarity(lexical: Mapping[str, float], name_free: Mapping[str, float]) -> float | None:
    """None when a memory shares a distinctive word with the query (best BM25 at least
    ``DISTINCTIVE_BM25``); else the best dense similarity to the query with the speakers' names left
    out (``name_free_similarity``: names inflate similarity to everything that person said)."""
    if max(lexical.values(), default=0.0) >= DISTINCTIVE_BM25:
        return None
    return max(name_free.values(), default=0.0)


def learned_ranking(store: Store, embedder: Embedder, query: SearchQuery, recipe: RetrievalRecipe,
                    pool: CandidatePool) -> tuple[list[Fused], list[MemoryItem], float]:
    """Rank the pooled candidates with the recipe's linear model; also return the confidence."""
    lexical = {candidate.memory_id: candidate.score for candidate in pool.lexical or []}
    memories = pool.memories
    if not memories:
        return [], [], 0.0
    dense = pool.similarity
    name_free = name_free_similarity(store, embedder, query, memories, dense)
    scored = candidate_features(memories, lexical, dense, query.text, query.time_range, name_free)
    linear_scores(scored, recipe.weights_for(query.form))
    confidence = answerable_confidence(
        abstention_features(scored), recipe.confidence_weights, recipe.confidence_bias,
        topic_similarity=topic_similarity(lexical, name_free),
        min_topic_similarity=recipe.min_topic_similarity, abstain_threshold=recipe.abstain_threshold)
    if query.several:
        spread_days(scored, recipe.day_repeat_penalty)
    return rank(scored, recipe.feature_bias), memories, confidence


def rrf_ranking(recipe: RetrievalRecipe, pool: CandidatePool) -> tuple[list[Fused], list[MemoryItem], float]:
    """Weighted reciprocal rank fusion; the confidence is the best dense similarity."""
    weights = {"lexical": recipe.lexical_weight, "dense": recipe.dense_weight}
    fused = reciprocal_rank_fusion(pool.rankings, weights, recipe.rrf_k)
    by_id = {memory.id: memory for memory in pool.memories}
    memories = [by_id[item.memory_id] for item in fused if item.memory_id in by_id]
    return fused, memories, confidence_of([c.score for c in pool.dense or []])


@dataclass
class Ranked:
    """The candidates of a question, best first, before read-time supersession and assembly."""

    fused: list[Fused]
    memories: list[MemoryItem]
    passed_over: set[str]
    confidence: float


def rank_candidates(store: Store, embedder: Embedder, query: SearchQuery, recipe: RetrievalRecipe) -> Ranked:
    """Candidates from each signal, ranked by the recipe, with relevance passed along stored
    supersession links (``engram.read.links``) and the user's words before the assistant's replies to them
    (``engram.read.echo``)."""
    wants_dense = recipe.dense_k and (recipe.ranker == "learned" or recipe.dense_weight)
    query_vector = embedder.embed_query(query.text) if wants_dense else None
    pool = gather_pool(store, query_vector, query, recipe)
    if recipe.ranker == "learned":
        fused, memories, confidence = learned_ranking(store, embedder, query, recipe, pool)
    else:
        fused, memories, confidence = rrf_ranking(recipe, pool)
    fused, memories, passed_over = follow_links(store, fused, memories, query)
    return Ranked(user_words_first(fused, memories, query), memories, passed_over, confidence)


def run_search(store: Store, embedder: Embedder, query: SearchQuery, recipe: RetrievalRecipe, *,
               explain: bool = False, judge: PairJudge | None = None) -> SearchResponse:
    """Find, rank and assemble the memories that answer ``query`` (``judge``: who decides read-time supersession,
    ``engram.read.replaced``; default the shipped models)."""
    ranked = rank_candidates(store, embedder, query, recipe)
    memories, passed_over, confidence = ranked.memories, ranked.passed_over, ranked.confidence
    fused = settle_read_time(store, ranked.fused, memories, query, embedder.signature, read_pairs=recipe.pair_reader,
                             judge=judge)
    hits, best = build_hits(fused, memories, query=query, recipe=recipe, explain=explain, passed_over=passed_over)
    abstain, confidence = abstention(hits, best, confidence, query.threshold, recipe.abstain_threshold)
    if recipe.reinforce and hits:
        store.apply(recall_change(list(hits), now=utcnow()))
        store.touch([hit.id for hit in hits])
    return SearchResponse(results=hits, abstain=abstain, confidence=round(confidence, 6), time_range=query.time_range)


def abstention(hits: Sequence[SearchHit], best: float, confidence: float, threshold: float | None,
               abstain_threshold: float) -> tuple[bool, float]:
    """``abstain`` and ``confidence`` that agree with the results. Without a ``threshold``: abstain when
    there is no hit or the confidence is below ``abstain_threshold``. With one, the caller's cut decides:
    a hit that cleared it means memory holds something relevant (abstain false, and the confidence is at
    least that hit's score: a memory relevant with probability p answers with at least p); no hit means
    abstain, with the confidence at most the best score (``best``, before the cut) and below
    ``abstain_threshold``."""
    if threshold is None:
        return not hits or confidence < abstain_threshold, confidence
    if hits:
        return False, max(confidence, hits[0].score)
    return True, min(confidence, best, math.nextafter(abstain_threshold, 0.0))
