"""The read model of ``engram bench fit-updates``: read-time supersession (``engram.read.replaced``).

Every scenario is written one turn per ``add`` (the detector off, so no stored link settles anything
first), then each question whose tense is present or "before" is ranked as the read path ranks it
(``engram.read.pipeline.rank_candidates``). The pairs of the best candidates (``window_pairs``) in
which exactly one turn answers the question are the examples: for a present question, the newer one
answering means the newer replaced the older (label 1) and the older answering means it did not (0);
"before" questions the other way round. The model is a logistic regression over ``READ_FEATURES`` and,
for the embedder it is fitted with, the newer turn's own embedding; it is applied at even odds
(``READ_THRESHOLD``).

The examples come from the seen update sets (``TRAINING_SETS``) and from the written training pairs
(``PAIRS_FILES``, each pair made into a short scenario by ``pair_scenarios``); each source is a group. The
words of the newer turn that occur in at least ``MIN_WORD_COUNT`` training examples are features too. The L2
penalty is chosen from ``L2_GRID`` by leave-one-source-out accuracy, and the report gives that accuracy at the
chosen penalty (not nested: the choice among three values saw every source)."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from engram.bench.fitting import fit_logistic, labelled_matrix, leave_one_group_out, rounded
from engram.config import EngramConfig
from engram.embed.base import Embedder
from engram.models import Scope
from engram.read.pipeline import rank_candidates
from engram.read.query import build_query
from engram.read.replace_model import ReadModel, word_grams
from engram.read.replaced import READ_FEATURES, READ_THRESHOLD, window_pairs
from engram.timeutil import to_utc

#: The penalties tried (chosen by leave-one-source-out accuracy).
L2_GRID = (0.3, 1.0, 3.0)
#: Least number of training examples whose newer turn has a word (or word pair) for it to get a weight.
MIN_WORD_COUNT = 6
#: The word columns' scale in the fit: below 1, their weights are penalised more than the cue features'
#: (``1 / WORD_SCALE**2`` times), as there are many more of them.
WORD_SCALE = 0.5
#: The update sets whose questions train the read model; later holdouts stay out until they are diagnosed.
TRAINING_SETS = ("dev", "holdout", "holdout2", "holdout3", "holdout4")
#: The written training pairs (helpers w17 and w18, session 6): ``{"pairs": [...]}`` files in ``engram/data``.
PAIRS_FILES = ("update_pairs_train.json", "update_pairs_train2.json")
#: Unrelated requests put between a training pair's two turns, so that the pair is ranked among other turns
#: as in a real store.
FILLERS = ("How do I center a div with flexbox?", "What's a good synonym for 'important'?",
           "Can you explain compound interest in one sentence?", "Why is the sky blue?",
           "How long should I boil an egg for a runny yolk?", "Write a limerick about a cat.")


@dataclass(frozen=True)
class ReadExample:
    """One pair of a question's best candidates, its features, the newer turn's text and own embedding,
    whether the newer replaced the older, the group (update set or training file) it came from, what the
    pair reader reads (``engram.read.pair_reader``: the question, its tense and the older turn's text) and the
    kind of fact the scenario is about (residence, job, ...)."""

    scenario: str
    features: dict[str, float]
    label: bool
    text: str
    vector: np.ndarray
    group: str = ""
    question: str = ""
    tense: str = ""
    older: str = ""
    kind: str = ""


def read_examples(scenarios: Sequence[dict[str, Any]], embedder: Embedder, group: str = "") -> list[ReadExample]:
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
                    if pair.others_news or pair.new_value or pair.newer_vector is None:
                        continue  # decided by rule (``ReadPair.others_news``, ``new_value``), not by the model
                    newer_answers, older_answers = pair.newer.id in wanted, pair.older.id in wanted
                    if newer_answers != older_answers:
                        replaced = newer_answers if query.tense == "present" else older_answers
                        examples.append(ReadExample(scenario["id"], pair.features, replaced, pair.newer.memory,
                                                    pair.newer_vector, group, query.text, query.tense,
                                                    pair.older.memory, scenario["kind"]))
    return examples


def training_examples(embedder: Embedder) -> tuple[list[ReadExample], str]:
    """The read examples of every written training pair (``PAIRS_FILES``) and seen update set
    (``TRAINING_SETS``), each grouped by its source, and the sha256 of those sources' bytes."""
    from engram.bench.updates import load_scenarios

    examples = []
    for name in PAIRS_FILES:
        examples += read_examples(pair_scenarios(training_pairs(name)[1]), embedder, name)
    for name in TRAINING_SETS:
        examples += read_examples(load_scenarios(name)[1], embedder, name)
    return examples, training_data_sha256()


def training_data_sha256() -> str:
    """The sha256 of the training sources' bytes (``PAIRS_FILES``, then ``TRAINING_SETS``' files)."""
    from engram.bench.updates import SPLITS

    digest = hashlib.sha256()
    for file in [*PAIRS_FILES, *(SPLITS[name] for name in TRAINING_SETS)]:
        digest.update(resources.files("engram").joinpath("data", file).read_bytes())
    return digest.hexdigest()


def training_pairs(name: str) -> tuple[bytes, list[dict[str, Any]]]:
    """The written training pairs of ``name`` (one of ``PAIRS_FILES``): the file's bytes, for its hash, and
    its ``pairs``."""
    raw = resources.files("engram").joinpath("data", name).read_bytes()
    return raw, list(json.loads(raw)["pairs"])


def pair_scenarios(pairs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each training pair as a scenario of ``engram bench updates``: the older turn, an unrelated request
    between, the newer turn (each answered by the assistant), the present question a month after the newer
    turn and, when given, the question about what came before."""
    scenarios = []
    for number, pair in enumerate(pairs):
        older = datetime.fromisoformat(pair["older_date"]).replace(hour=9)
        newer = datetime.fromisoformat(pair["newer_date"]).replace(hour=18)
        between = older + (newer - older) / 2
        turns = [("user", pair["older"], older), ("assistant", "Noted, thanks.", older + timedelta(minutes=1)),
                 ("user", FILLERS[number % len(FILLERS)], between),
                 ("assistant", "Here is a short answer.", between + timedelta(minutes=1)),
                 ("user", pair["newer"], newer), ("assistant", "Got it.", newer + timedelta(minutes=1))]
        asked = (newer + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        questions = [{"question": pair["question"], "kind": "present", "reference_date": asked,
                      "answer_turn": 4 if pair["answer"] == "newer" else 0}]
        if pair.get("past_question"):
            questions.append({"question": pair["past_question"], "kind": "past", "reference_date": asked,
                              "answer_turn": 0})
        scenarios.append({"id": f"train-{pair['id']}", "kind": pair["kind"], "speaker": pair["speaker"],
                          "type": "update" if pair["answer"] == "newer" else "distractor",
                          "supersedes": [[0, 4]] if pair["answer"] == "newer" else [],
                          "coexist": [] if pair["answer"] == "newer" else [[0, 4]],
                          "turns": [{"role": role, "content": text, "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}
                                    for role, text, moment in turns],
                          "questions": questions})
    return scenarios


def _vocabulary(examples: Sequence[ReadExample]) -> list[str]:
    """The words and word pairs of at least ``MIN_WORD_COUNT`` examples' newer turns, sorted."""
    counts = Counter(gram for example in examples for gram in word_grams(example.text))
    return sorted(gram for gram, count in counts.items() if count >= MIN_WORD_COUNT)


def _design(examples: Sequence[ReadExample], vocabulary: Sequence[str],
            with_vector: bool) -> tuple[np.ndarray, np.ndarray]:
    """The examples' rows (cue features, word columns, embedding) and their 0/1 labels."""
    features, labels = labelled_matrix(examples, READ_FEATURES)
    column = {gram: index for index, gram in enumerate(vocabulary)}
    words = np.zeros((len(examples), len(vocabulary)))
    for row, example in enumerate(examples):
        for gram in word_grams(example.text):
            if gram in column:
                words[row, column[gram]] = WORD_SCALE
    parts = [features, words]
    if with_vector:
        parts.append(np.array([example.vector for example in examples], dtype=np.float64))
    return np.hstack(parts), labels


def balance(scenarios: Sequence[str], labels: Sequence[bool]) -> np.ndarray | None:
    """Weights of examples (their scenarios and labels) under which the scenarios with a replaced pair (changes)
    and the others (co-existing facts) weigh the same in all: the share of changes in the written sets is not a
    prior for unseen data."""
    changed = {scenario for scenario, label in zip(scenarios, labels, strict=True) if label}
    share = sum(scenario in changed for scenario in scenarios) / len(scenarios)
    if not 0 < share < 1:
        return None
    return np.array([0.5 / share if scenario in changed else 0.5 / (1 - share) for scenario in scenarios])


def fit_read_model(examples: Sequence[ReadExample], *, embedder: str = "", l2: float = 1.0) -> ReadModel:
    """L2-regularised logistic regression over ``READ_FEATURES``, the newer turn's words (``_vocabulary``)
    and, when ``embedder`` names the embedder that made the examples' vectors, the newer turn's embedding;
    changes and co-existing facts balanced."""
    vocabulary = _vocabulary(examples)
    design, labels = _design(examples, vocabulary, bool(embedder))
    emphasis = balance([example.scenario for example in examples], [example.label for example in examples])
    weights, bias = fit_logistic(design, labels, l2=l2, sample_weight=emphasis)
    named, words = len(READ_FEATURES), len(READ_FEATURES) + len(vocabulary)
    return ReadModel(rounded(dict(zip(READ_FEATURES, weights[:named], strict=True))), round(bias, 4),
                     {gram: weight for gram, weight in rounded(dict(zip(vocabulary, WORD_SCALE * weights[named:words],
                                                                        strict=True))).items() if weight},
                     np.round(weights[words:], 4).astype(np.float32) if embedder else None, embedder)


def score_read_model(model: ReadModel, examples: Sequence[ReadExample]) -> dict[str, float]:
    """Accuracy of the decision at ``READ_THRESHOLD``, and its precision and recall on replaced pairs."""
    predicted = np.array([model.probability(example.features, example.text, example.vector) >= READ_THRESHOLD
                          for example in examples], dtype=bool)
    labels = np.array([example.label for example in examples], dtype=bool)
    hits = float(np.sum(predicted & labels))
    return {"pairs": float(len(examples)), "replaced": float(labels.sum()), "predicted": float(predicted.sum()),
            "accuracy": float(np.mean(predicted == labels)) if len(examples) else 1.0,
            "precision": hits / predicted.sum() if predicted.sum() else 1.0,
            "recall": hits / labels.sum() if labels.sum() else 1.0}


def leave_one_source_out(examples: Sequence[ReadExample], fit: Any) -> dict[str, dict[str, float]]:
    """For each group (update set or training file): ``fit(examples of the other groups)``, scored on it."""
    return leave_one_group_out([example.group for example in examples],
                               lambda train: fit([examples[index] for index in train]),
                               lambda model, test: score_read_model(model, [examples[index] for index in test]))


def pooled_accuracy(report: dict[str, dict[str, float]]) -> float:
    """Accuracy over every left-out group's pairs together."""
    pairs = sum(entry["pairs"] for entry in report.values())
    return sum(entry["accuracy"] * entry["pairs"] for entry in report.values()) / pairs if pairs else 1.0


def choose_l2(examples: Sequence[ReadExample], embedder: str = "") -> float:
    """The penalty of ``L2_GRID`` with the best leave-one-source-out accuracy (the larger one on a tie)."""
    accuracy = {l2: pooled_accuracy(leave_one_source_out(
        examples, lambda train, l2=l2: fit_read_model(train, embedder=embedder, l2=l2))) for l2 in L2_GRID}
    return max(L2_GRID, key=lambda l2: (round(accuracy[l2], 6), l2))
