"""``engram bench fit-updates``: fit the offline supersession model on the development scenarios.

Pairs are formed as the write path forms them (``engram.write.supersede``): each user turn, in order,
against the older current turns of the same speaker from an earlier conversation that are on the same
topic (own-embedding similarity >= ``MIN_SIMILARITY``) or state one of the same attributes, when the new
turn passes the cheap pre-check. A pair is positive when the scenario lists it in ``supersedes``. The
model is a logistic regression over ``engram.changes.cues.FEATURES``; the report gives pair
precision/recall on the dev set in-sample, leave-one-kind-out, and on the first holdout. The same run
fits the read models of read-time supersession (``engram.bench.fit_read``) on the seen update sets'
questions and the written training pairs, and reports them leave-one-source-out (``read_report``)."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from engram.bench.fit_read import (
    PAIRS_FILES,
    TRAINING_SETS,
    choose_l2,
    fit_read_model,
    leave_one_source_out,
    pooled_accuracy,
    score_read_model,
    training_examples,
)
from engram.bench.fitting import fit_logistic, labelled_matrix, leave_one_group_out, rounded, write_model
from engram.bench.updates import SPLITS, load_scenarios
from engram.changes.cues import FEATURES, pair_features
from engram.changes.pairs import MIN_SIMILARITY
from engram.changes.slots import statements
from engram.embed.base import Embedder
from engram.models import CONVERSATION_GAP
from engram.read.replace_model import ReadModel
from engram.read.replaced import READ_FEATURES, READ_THRESHOLD
from engram.write.supersede import may_replace

MODEL_FILE = "change_model.json"
L2 = 1.0
#: Weight of the pairs a scenario names as co-existing (a false supersession there loses a true fact,
#: worse than a missed one, which only leaves the stale fact unmarked).
COEXIST_WEIGHT = 4.0
#: The most distractor scenarios (co-existing facts) the chosen threshold may supersede on the dev set.
MAX_FALSE_SUPERSESSION = 0.05
SEED = 0  # the fit is deterministic (Newton's method from zero); recorded for the provenance format


@dataclass(frozen=True)
class Pair:
    """One (older turn, newer turn) comparison with its features and label."""

    scenario: str
    kind: str
    features: dict[str, float]
    label: bool
    coexist: bool = False


def scenario_pairs(scenario: dict[str, Any], embedder: Embedder) -> list[Pair]:
    """The pairs the write path would compare in one scenario, labelled by its ``supersedes``."""
    speaker = (scenario.get("speaker") or "user").lower()
    turns = scenario["turns"]
    vectors = embedder.embed([f"{scenario.get('speaker') or 'user'}: {turn['content']}"
                              if turn["role"] == "user" else f"assistant: {turn['content']}" for turn in turns])
    moments = [datetime.fromisoformat(turn["timestamp"].replace("Z", "+00:00")) for turn in turns]
    positives = {tuple(pair) for pair in scenario.get("supersedes", [])}
    coexisting = {tuple(pair) for pair in scenario.get("coexist", [])}
    closed: set[int] = set()
    pairs = []
    for new, turn in enumerate(turns):
        if turn["role"] != "user":
            continue
        found = statements(turn["content"], speaker)
        if not (found or may_replace(turn["content"])):
            continue
        slots = {s.slot for s in found}
        candidates = []
        for old in range(new):
            if turns[old]["role"] != "user" or old in closed or moments[old] >= moments[new] - CONVERSATION_GAP:
                continue
            similarity = float(np.dot(vectors[old], vectors[new]))
            old_statements = statements(turns[old]["content"], speaker)
            if similarity >= MIN_SIMILARITY or slots & {s.slot for s in old_statements}:
                candidates.append((old, similarity, old_statements))
        best = max((similarity for _, similarity, _ in candidates), default=0.0)
        for old, similarity, old_statements in candidates:
            features = pair_features(turns[old]["content"], turn["content"], similarity, old_statements, found,
                                     similarity == best)
            pairs.append(Pair(scenario["id"], scenario["kind"], features, (old, new) in positives,
                              (old, new) in coexisting))
        closed.update(old for old, _, _ in candidates if (old, new) in positives)
    return pairs


def _fit(pairs: list[Pair]) -> dict[str, float]:
    features, labels = labelled_matrix(pairs, FEATURES)
    emphasis = np.array([COEXIST_WEIGHT if pair.coexist else 1.0 for pair in pairs])
    weights, bias = fit_logistic(features, labels, l2=L2, sample_weight=emphasis)
    return {"bias": bias, **dict(zip(FEATURES, weights, strict=True))}


def _probabilities(model: dict[str, float], pairs: list[Pair]) -> np.ndarray:
    features, _ = labelled_matrix(pairs, FEATURES)
    weights = np.array([model[name] for name in FEATURES])
    return np.asarray(1.0 / (1.0 + np.exp(-(features @ weights + model["bias"]))))


def false_supersession_rate(model: dict[str, float], pairs: list[Pair], threshold: float) -> float:
    """Share of scenarios with co-existing pairs in which one of them would be superseded."""
    probability = _probabilities(model, pairs)
    scenarios = {pair.scenario for pair in pairs if pair.coexist}
    hit = {pair.scenario for pair, p in zip(pairs, probability, strict=True) if pair.coexist and p >= threshold}
    return len(hit) / len(scenarios) if scenarios else 0.0


def choose_threshold(model: dict[str, float], pairs: list[Pair]) -> float:
    """The lowest threshold (of 0.50, 0.55, ... 0.95) whose false supersession rate on ``pairs`` is at most
    ``MAX_FALSE_SUPERSESSION``: as many true changes as the co-existing facts allow."""
    for threshold in np.arange(0.5, 0.951, 0.05):
        if false_supersession_rate(model, pairs, float(threshold)) <= MAX_FALSE_SUPERSESSION:
            return round(float(threshold), 2)
    return 0.95


def _score(model: dict[str, float], pairs: list[Pair], threshold: float) -> dict[str, float]:
    _, labels = labelled_matrix(pairs, FEATURES)
    probability = _probabilities(model, pairs)
    predicted = probability >= threshold
    true_positive = float(np.sum(predicted & (labels == 1)))
    return {"pairs": len(pairs), "positives": float(labels.sum()), "predicted": float(predicted.sum()),
            "precision": true_positive / predicted.sum() if predicted.sum() else 1.0,
            "recall": true_positive / labels.sum() if labels.sum() else 1.0,
            "false_supersession": false_supersession_rate(model, pairs, threshold)}


def fit_updates(embedder: Embedder, out: Path | None = None) -> dict[str, Any]:
    """Fit on the dev scenarios, report, and write the model JSON (to the package, or ``out``)."""
    dev_name, dev = load_scenarios("dev")
    _, holdout = load_scenarios("holdout")
    pairs = [pair for scenario in dev for pair in scenario_pairs(scenario, embedder)]
    model = rounded(_fit(pairs))
    threshold = choose_threshold(model, pairs)
    kinds = [pair.kind for pair in pairs]

    def fold(train: list[int]) -> tuple[dict[str, float], float]:
        fitted = _fit([pairs[i] for i in train])
        return fitted, choose_threshold(fitted, [pairs[i] for i in train])

    by_kind = leave_one_group_out(kinds, fold, lambda fitted, test: _score(fitted[0], [pairs[i] for i in test],
                                                                           fitted[1]))
    held = [pair for scenario in holdout for pair in scenario_pairs(scenario, embedder)]
    data = resources.files("engram").joinpath("data", "updates_dev.json").read_bytes()
    report = {"dev_in_sample": _score(model, pairs, threshold), "holdout": _score(model, held, threshold),
              "leave_one_kind_out": {name: _pooled(by_kind, name)
                                     for name in ("precision", "recall", "false_supersession")}}
    read, read_report = _fit_read(embedder)
    result = {"model": model, "features": list(FEATURES), **read, "read_features": list(READ_FEATURES),
              "read_threshold": READ_THRESHOLD, "read_report": read_report, "data": dev_name,
              "data_sha256": hashlib.sha256(data).hexdigest(), "seed": SEED, "l2": L2, "coexist_weight": COEXIST_WEIGHT,
              "embedder": embedder.signature, "threshold": threshold, "report": report}
    target = out or Path(str(resources.files("engram").joinpath("data", "models", MODEL_FILE)))
    write_model(target, result)
    return result


def _fit_read(embedder: Embedder) -> tuple[dict[str, Any], dict[str, Any]]:
    """The read models (``engram.bench.fit_read``), with the newer turn's embedding and without, fitted on the
    written training pairs and the seen update sets' questions, with their leave-one-source-out scores and the
    data's hash."""
    examples, digest = training_examples(embedder)
    models, report = {}, {}
    for label, signature in (("read_model", ""), ("read_vector_model", embedder.signature)):
        l2 = choose_l2(examples, signature)
        models[label] = fit_read_model(examples, embedder=signature, l2=l2).to_json() | {"l2": l2}
        held_out = leave_one_source_out(examples, lambda train, s=signature, l2=l2: fit_read_model(
            train, embedder=s, l2=l2))
        report[label] = {"in_sample": score_read_model(ReadModel.from_json(models[label]), examples),
                         "leave_one_source_out": held_out, "pooled_accuracy": pooled_accuracy(held_out)}
    report["examples"] = dict(Counter(example.group for example in examples))
    return ({**models, "read_data_sha256": digest,
             "read_training_data": [*PAIRS_FILES, *(SPLITS[name] for name in TRAINING_SETS)]}, report)


def _pooled(report: dict[str, dict[str, float]], metric: str) -> float:
    """Leave-one-group-out precision or recall pooled over the groups' predictions."""
    predicted = sum(entry["predicted"] for entry in report.values())
    positives = sum(entry["positives"] for entry in report.values())
    if metric == "false_supersession":
        return sum(entry["false_supersession"] for entry in report.values()) / len(report)
    hits = sum(entry["recall"] * entry["positives"] for entry in report.values())
    if metric == "precision":
        return hits / predicted if predicted else 1.0
    return hits / positives if positives else 1.0
