"""The read model of read-time supersession (``engram.read.replaced``): the probability that the newer of two
candidates replaced the older one.

A logistic regression fitted by ``engram bench fit-updates`` (``engram.bench.fit_read``) over the pair's cue
features (``READ_FEATURES``), the words of the newer turn (single words and word pairs, learned from written
examples rather than listed by hand) and, for the embedder it was fitted with, the newer turn's own
embedding. Two fits are shipped in ``engram/data/models/change_model.json``: ``read_vector_model`` for stores
embedded by that embedder and ``read_model`` (no embedding) for any other."""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from importlib.resources import files

import numpy as np

_WORD = re.compile(r"[a-z0-9']+")


def word_grams(text: str) -> set[str]:
    """The lower-cased words of ``text`` and its adjacent word pairs (``"moved_to"``)."""
    words = _WORD.findall(text.lower())
    return set(words) | {f"{first}_{second}" for first, second in itertools.pairwise(words)}


def sigmoid(logit: float) -> float:
    """``1 / (1 + exp(-logit))``, for any float."""
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit))))


@dataclass(frozen=True)
class ReadModel:
    """Weights of the cue features (``weights``), of the newer turn's words (``words``) and, for the embedder
    named by ``embedder`` (its signature), of the newer turn's embedding (``vector``), and a bias."""

    weights: dict[str, float]
    bias: float
    words: dict[str, float] = field(default_factory=dict)
    vector: np.ndarray | None = None
    embedder: str = ""

    def logit(self, features: dict[str, float], newer_text: str = "", newer_vector: np.ndarray | None = None) -> float:
        """``bias + weights . features + words of newer_text [+ vector . newer_vector]``."""
        linear = self.bias + sum(self.weights.get(name, 0.0) * value for name, value in features.items())
        linear += sum(self.words.get(gram, 0.0) for gram in word_grams(newer_text)) if self.words else 0.0
        if self.vector is not None and newer_vector is not None:
            linear += float(np.dot(self.vector, newer_vector))
        return linear

    def probability(self, features: dict[str, float], newer_text: str = "",
                    newer_vector: np.ndarray | None = None) -> float:
        """``sigmoid(logit(...))``."""
        return sigmoid(self.logit(features, newer_text, newer_vector))

    def to_json(self) -> dict[str, object]:
        """The model as ``engram bench fit-updates`` writes it."""
        data: dict[str, object] = {"bias": self.bias, "weights": self.weights, "words": self.words}
        if self.vector is not None:
            data.update(embedder=self.embedder, vector=[round(float(value), 4) for value in self.vector])
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ReadModel:
        """The inverse of ``to_json``."""
        weights, words, vector = data.get("weights"), data.get("words"), data.get("vector")
        return cls({str(name): float(value) for name, value in (weights if isinstance(weights, dict) else {}).items()},
                   float(data.get("bias", 0.0)),  # type: ignore[arg-type]
                   {str(gram): float(value) for gram, value in (words if isinstance(words, dict) else {}).items()},
                   np.asarray(vector, dtype=np.float32) if isinstance(vector, list) else None,
                   str(data.get("embedder", "")))


@functools.cache
def _shipped() -> dict[str, object]:
    return dict(json.loads((files("engram") / "data" / "models" / "change_model.json").read_text(encoding="utf-8")))


@functools.cache
def read_model(embedder_signature: str = "") -> ReadModel | None:
    """The shipped read model for stores embedded by ``embedder_signature``: ``read_vector_model`` when it was
    fitted with that embedder, else ``read_model``; None when none is shipped. Built once per signature (a
    search asks for it every time)."""
    data = _shipped()
    with_vector = data.get("read_vector_model")
    if isinstance(with_vector, dict) and with_vector.get("embedder") == embedder_signature:
        return ReadModel.from_json(with_vector)
    plain = data.get("read_model")
    return ReadModel.from_json(plain) if isinstance(plain, dict) else None
