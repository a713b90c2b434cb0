"""The read model of ``engram bench fit-updates``: read-time supersession (``engram.read.replaced``).

Every scenario is written one turn per ``add`` (the detector off, so no stored link settles anything
first), then each question whose tense is present or "before" is ranked as the read path ranks it
(``engram.read.pipeline.rank_candidates``). The pairs of the best candidates (``window_pairs``) in
which exactly one turn answers the question are the examples: for a present question, the newer one
answering means the newer replaced the older (label 1) and the older answering means it did not (0);
"before" questions the other way round. The model is a logistic regression over ``READ_FEATURES``,
applied at even odds (``READ_THRESHOLD``)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engram.bench.fitting import fit_logistic, labelled_matrix
from engram.config import EngramConfig
from engram.embed.base import Embedder
from engram.models import Scope
from engram.read.pipeline import rank_candidates
from engram.read.query import build_query
from engram.read.replaced import READ_FEATURES, READ_THRESHOLD, read_probability, window_pairs
from engram.timeutil import to_utc

L2 = 1.0


@dataclass(frozen=True)
class ReadExample:
    """One pair of a question's best candidates, its features, and whether the newer replaced the older."""

    scenario: str
    kind: str
    features: dict[str, float]
    label: bool


def read_examples(scenarios: Sequence[dict[str, Any]], embedder: Embedder) -> list[ReadExample]:
    """The labelled pairs of every scenario's present and "before" questions (see the module docstring)."""
    from engram import Memory
    from engram.bench.updates import ingest_turns

    examples = []
    with tempfile.TemporaryDirectory() as folder, \
            Memory(path=str(Path(folder) / "read.db"), embedder=embedder,
                   config=EngramConfig(supersession=False)) as memory:
        for scenario in scenarios:
            ids = ingest_turns(memory, scenario)
            for question in scenario["questions"]:
                if question["kind"] == "as_of":
                    continue
                reference = question.get("reference_date")
                query = build_query(question["question"], scope=Scope(user_id=scenario["id"]), node=None, limit=10,
                                    threshold=None,
                                    reference_date=to_utc(reference, field="reference_date") if reference else None)
                if query.tense not in ("present", "before"):
                    continue
                ranked = rank_candidates(memory.store, memory.embedder, query, memory.recipe)
                wanted = {ids[question["answer_turn"]], *(ids[i] for i in question.get("also_correct", []))}
                by_id = {item.id: item for item in ranked.memories}
                for pair in window_pairs(memory.store, ranked.fused, by_id, query):
                    if pair.others_news or pair.new_value:
                        continue  # decided by rule (``ReadPair.others_news``, ``new_value``), not by the model
                    newer_answers, older_answers = pair.newer.id in wanted, pair.older.id in wanted
                    if newer_answers != older_answers:
                        replaced = newer_answers if query.tense == "present" else older_answers
                        examples.append(ReadExample(scenario["id"], scenario["kind"], pair.features, replaced))
    return examples


def fit_read_model(examples: Sequence[ReadExample]) -> dict[str, float]:
    """Weights of ``READ_FEATURES`` and the bias, L2-regularised logistic regression in which the scenarios
    with a replaced pair (changes) and the others (co-existing facts) weigh the same in all: the share of
    changes in the dev set is not a prior for unseen data."""
    features, labels = labelled_matrix(examples, READ_FEATURES)
    changed = {example.scenario for example in examples if example.label}
    share = sum(example.scenario in changed for example in examples) / len(examples)
    balance = np.array([0.5 / share if example.scenario in changed else 0.5 / (1 - share)
                        for example in examples]) if 0 < share < 1 else None
    weights, bias = fit_logistic(features, labels, l2=L2, sample_weight=balance)
    return {"bias": bias, **dict(zip(READ_FEATURES, weights, strict=True))}


def score_read_model(model: dict[str, float], examples: Sequence[ReadExample]) -> dict[str, float]:
    """Accuracy of the decision at ``READ_THRESHOLD``, and its precision and recall on replaced pairs."""
    predicted = np.array([read_probability(example.features, model) >= READ_THRESHOLD for example in examples])
    labels = np.array([example.label for example in examples])
    hits = float(np.sum(predicted & labels))
    return {"pairs": float(len(examples)), "replaced": float(labels.sum()), "predicted": float(predicted.sum()),
            "accuracy": float(np.mean(predicted == labels)) if len(examples) else 1.0,
            "precision": hits / predicted.sum() if predicted.sum() else 1.0,
            "recall": hits / labels.sum() if labels.sum() else 1.0}
