"""``engram bench fit``: fit the learned ranker's weights on LoCoMo-format data, reproducibly.

Every conversation is ingested through ``Memory.add`` (one add per session); for every question with
evidence, the read path's own candidate step and features (``engram.read.pipeline`` /
``engram.read.rerank``) describe each pooled candidate, labelled 1 when it cites an evidence turn. A
logistic regression over the features, plus one offset per feature for each question form (``when``,
``hypothetical``), is fitted by Newton's method (deterministic), so its output is a calibrated
probability that a candidate is evidence. The report gives recall@10 of the pooled ranking in-sample
and leave-one-conversation-out (each conversation ranked by weights fitted on the others)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np

from engram.bench.datasets import Conversation, load_locomo
from engram.bench.fitting import fit_logistic, rounded, sha256_of, write_model
from engram.bench.systems import EngramSystem, turn_ids_of_hit
from engram.embed.base import Embedder
from engram.read.pipeline import dense_scores, gather_candidates
from engram.read.query import build_query
from engram.read.recipes import RANKER_MODEL_PATH, RECIPES
from engram.read.rerank import FEATURES, candidate_features

FORMS = ("hypothetical", "when")
L2 = 1.0
L2_LISTWISE = 0.001
ITERATIONS = 1200
STEP = 5.0
SEED = 0  # the fit is deterministic (Newton's method from zero); recorded for the provenance format
TOP_K = 10


@dataclass
class Pool:
    """The candidates of one question: feature rows, whether each cites evidence, the turns each cites."""

    conversation: str
    form: str
    features: np.ndarray
    labels: np.ndarray
    cited: list[tuple[str, ...]]
    evidence: frozenset[str]


def question_pools(conversation: Conversation, embedder: Embedder, workdir: Path) -> list[Pool]:
    """Ingest one conversation and describe every evidence question's candidate pool."""
    system = EngramSystem(embedder)
    system.ingest(conversation, workdir)
    memory = system._memory
    recipe = RECIPES["balanced"]
    pools = []
    try:
        for question in conversation.questions:
            if not question.retrieval_scored:
                continue
            query = build_query(question.question, scope=memory._scope(conversation.conversation_id, None, None, None),
                                node=None, limit=100, threshold=None, reference_date=question.reference_date)
            vector = embedder.embed_query(query.text)
            rankings = gather_candidates(memory.store, vector, query, recipe)
            lexical = {c.memory_id: c.score for c in rankings.get("lexical", [])}
            ids = list(dict.fromkeys([*lexical, *(c.memory_id for c in rankings.get("dense", []))]))
            memories = memory.store.get_memories(ids)
            dense = dense_scores(memory.store, vector, rankings.get("dense", []), ids)
            scored = candidate_features(memories, lexical, dense, query.text, query.time_range)
            evidence = frozenset(question.evidence_turns)
            cited = [turn_ids_of_hit(item.memory.model_dump(mode="json")) for item in scored]
            pools.append(Pool(conversation.conversation_id, query.form,
                              np.array([[item.features[name] for name in FEATURES] for item in scored]),
                              np.array([bool(evidence & set(turns)) for turns in cited], dtype=np.float64),
                              cited, evidence))
    finally:
        system.close()
    return pools


def design(pool: Pool) -> np.ndarray:
    """A pool's feature rows with the per-form offset columns (zero unless the question has that form)."""
    extra = [pool.features * (pool.form == form) for form in FORMS]
    return np.hstack([pool.features, *extra])


def listwise_weights(pools: Sequence[Pool], *, iterations: int = ITERATIONS, step: float = STEP) -> np.ndarray:
    """Weights maximising, over the questions, the softmax share of the pool's score mass that falls on
    evidence (ListNet-style), by full-batch gradient ascent from zero with a fixed step: deterministic."""
    usable = [pool for pool in pools if pool.labels.any()]
    matrix = np.vstack([design(pool) for pool in usable])
    labels = np.concatenate([pool.labels for pool in usable])
    starts = np.cumsum([0, *(len(pool.labels) for pool in usable[:-1])])
    owner = np.repeat(np.arange(len(usable)), [len(pool.labels) for pool in usable])
    weights = np.zeros(matrix.shape[1])
    for _ in range(iterations):
        scores = matrix @ weights
        shares = np.exp(scores - np.maximum.reduceat(scores, starts)[owner])
        everything = shares / np.add.reduceat(shares, starts)[owner]
        wanted = shares * labels / np.add.reduceat(shares * labels, starts)[owner]
        weights += step * (matrix.T @ (wanted - everything) - L2_LISTWISE * weights) / len(usable)
    return weights


def fit(pools: Sequence[Pool]) -> dict[str, Any]:
    """The ranker's weights and per-form offsets (listwise), then a logistic calibration of the linear
    score (scale and bias) so that ``sigmoid(bias + linear)`` is the probability that a candidate is
    evidence."""
    direction = listwise_weights(pools)
    linear = np.concatenate([design(pool) @ direction for pool in pools])
    labels = np.concatenate([pool.labels for pool in pools])
    scale, bias = fit_logistic(linear[:, None], labels, l2=0.0)
    weights = direction * float(scale[0])
    count = len(FEATURES)
    return {"feature_weights": rounded(dict(zip(FEATURES, weights[:count], strict=True))),
            "form_weights": {form: rounded(dict(zip(FEATURES, weights[count * (i + 1):count * (i + 2)], strict=True)))
                             for i, form in enumerate(FORMS)},
            "feature_bias": round(bias, 4)}


def recall_at_k(model: dict[str, Any], pools: Sequence[Pool], k: int = TOP_K) -> float:
    """Mean share of each question's evidence turns cited by its top ``k`` pooled candidates."""
    weights = np.array([*(model["feature_weights"][name] for name in FEATURES),
                        *(model["form_weights"][form][name] for form in FORMS for name in FEATURES)])
    scores = []
    for pool in pools:
        order = np.argsort(-(design(pool) @ weights), kind="stable")[:k]
        covered = {turn for index in order for turn in pool.cited[index]} & pool.evidence
        scores.append(len(covered) / len(pool.evidence))
    return float(np.mean(scores)) if scores else 0.0


def calibration(model: dict[str, Any], pools: Sequence[Pool], bins: int = 10) -> list[dict[str, float]]:
    """Reliability of the score ``sigmoid(bias + linear)`` as the probability that a candidate is evidence:
    per bin of predicted probability, the candidates, the mean prediction and the observed rate."""
    weights = np.array([*(model["feature_weights"][name] for name in FEATURES),
                        *(model["form_weights"][form][name] for form in FORMS for name in FEATURES)])
    linear = np.concatenate([design(pool) @ weights for pool in pools]) + model["feature_bias"]
    predicted = 1.0 / (1.0 + np.exp(-np.clip(linear, -60, 60)))
    labels = np.concatenate([pool.labels for pool in pools])
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for low, high in pairwise(edges):
        inside = (predicted >= low) & ((predicted < high) | (high == 1.0))
        if inside.any():
            rows.append({"from": round(float(low), 2), "to": round(float(high), 2), "candidates": int(inside.sum()),
                         "predicted": round(float(predicted[inside].mean()), 4),
                         "observed": round(float(labels[inside].mean()), 4)})
    return rows


def fit_ranker(data: str | Path, embedder: Embedder, out: Path | None = None,
               on_conversation: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fit on every conversation of ``data``; report in-sample and leave-one-conversation-out recall@10;
    write the model JSON (into the package, or ``out``)."""
    conversations = load_locomo(data)
    pools: list[Pool] = []
    with TemporaryDirectory() as folder:
        for conversation in conversations:
            pools.extend(question_pools(conversation, embedder, Path(folder)))
            if on_conversation is not None:
                on_conversation(conversation.conversation_id)
    model = fit(pools)
    names = sorted({pool.conversation for pool in pools})
    held_out = {name: recall_at_k(fit([p for p in pools if p.conversation != name]),
                                  [p for p in pools if p.conversation == name]) for name in names}
    shipped = json.loads(RANKER_MODEL_PATH.read_text(encoding="utf-8"))
    report = {"recall@10_in_sample": recall_at_k(model, pools),
              "recall@10_leave_one_conversation_out": float(np.mean([held_out[n] for n in names])),
              "recall@10_per_held_out_conversation": held_out,
              "recall@10_weights_before": recall_at_k(shipped, pools),
              "calibration_in_sample": calibration(model, pools),
              "questions": len(pools), "candidates": int(sum(len(p.labels) for p in pools))}
    result = {**model, "features": list(FEATURES), "forms": list(FORMS), "data_sha256": sha256_of(data),
              "seed": SEED, "l2": L2, "embedder": embedder.signature, "report": report}
    write_model(out or RANKER_MODEL_PATH, result)
    return result
