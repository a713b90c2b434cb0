"""Anomaly checks of a new record against the recent records of its scope.

The caller supplies the context (recent texts, their writers and embeddings); nothing here reads
storage. Three checks, each cheap and offline:

- **burst**: several near-identical records in a short window (poisoning usually needs a few
  copies per target question to win retrieval);
- **contradiction**: a near-copy of a more trusted record with different numbers, names or
  negation (a false answer grafted onto a real fact);
- **off-topic**: far from everything the scope usually talks about.

Anomalies are weaker evidence than patterns: people repeat themselves, correct themselves and
change the subject. Their weights stay below the default quarantine threshold on their own."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engram.errors import ValidationError
from engram.trust import TRUST_WEIGHTS, TrustLevel, trust_of_writer

_TOKEN = re.compile(r"[^\W_]+(?:[.,:'-][^\W_]+)*", re.UNICODE)
_NUMBER = re.compile(r"\d")
_NEGATIONS = frozenset({"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "cannot", "isn't",
                        "aren't", "wasn't", "weren't", "don't", "doesn't", "didn't", "won't", "can't", "shouldn't"})
_STOPWORDS = frozenset((
    "a", "an", "the", "is", "are", "was", "were", "be", "been", "am", "of", "to", "in", "on", "at", "for",
    "with", "and", "or", "my", "your", "our", "their", "his", "her", "its", "it", "this", "that", "these",
    "those", "i", "me", "we", "you", "he", "she", "they", "them", "us", "so", "as", "by", "from", "up",
    "about", "into", "than", "then", "there", "here", "just", "also", "very", "really", "now",
))


@dataclass(frozen=True)
class GuardContext:
    """What the caller knows about the scope a record is written to.

    ``recent_texts`` are the latest records of the scope, oldest first; ``recent_writers`` (same
    length, optional) their writer labels; ``recent_embeddings`` (shape ``(n, dim)``, optional)
    their unit vectors, and ``embedding`` the new record's vector (both needed for the
    embedding-based checks; the lexical ones work without them)."""

    recent_texts: Sequence[str] = ()
    recent_writers: Sequence[str] = ()
    recent_embeddings: np.ndarray | None = None
    embedding: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.recent_writers and len(self.recent_writers) != len(self.recent_texts):
            raise ValidationError("must have one writer per recent text", field="recent_writers")
        if self.recent_embeddings is not None:
            rows = np.asarray(self.recent_embeddings)
            if rows.ndim != 2 or rows.shape[0] != len(self.recent_texts):
                raise ValidationError("must be a (len(recent_texts), dim) array", field="recent_embeddings")
            if self.embedding is not None and np.asarray(self.embedding).shape != (rows.shape[1],):
                raise ValidationError(f"must be a vector of dimension {rows.shape[1]}", field="embedding")


#: Highest weight a burst alone reaches: below the default quarantine threshold (0.5), because repeated
#: similar records (notes, logs, retries) are common and benign; a burst only adds to other signals.
BURST_CAP = 0.45


@dataclass(frozen=True)
class AnomalySettings:
    """Thresholds and weights of the anomaly checks."""

    burst_window: int = 20
    burst_similarity: float = 0.92
    burst_lexical_overlap: float = 0.8
    burst_min_copies: int = 2
    burst_weight: float = 0.4
    contradiction_overlap: float = 0.55
    contradiction_weight: float = 0.3
    contradiction_many: int = 3
    contradiction_many_weight: float = 0.45
    off_topic_min_context: int = 8
    off_topic_similarity: float = 0.15
    off_topic_weight: float = 0.15


def score_anomalies(text: str, trust: TrustLevel, context: GuardContext | None,
                    settings: AnomalySettings | None = None) -> dict[str, float]:
    """Anomaly signals (name -> weight) of ``text``, written with ``trust``, against ``context``."""
    if context is None or not context.recent_texts:
        return {}
    settings = settings or AnomalySettings()
    signals: dict[str, float] = {}
    copies = near_copy_count(text, context, settings)
    if copies >= settings.burst_min_copies:
        signals["anomaly_burst"] = min(BURST_CAP, settings.burst_weight + 0.05 * (copies - settings.burst_min_copies))
    contradicted = contradicted_count(text, trust, context, settings)
    if contradicted >= settings.contradiction_many:
        signals["anomaly_contradiction"] = settings.contradiction_many_weight
    elif contradicted:
        signals["anomaly_contradiction"] = settings.contradiction_weight
    if is_off_topic(context, settings):
        signals["anomaly_off_topic"] = settings.off_topic_weight
    return signals


def near_copy_count(text: str, context: GuardContext, settings: AnomalySettings) -> int:
    """How many of the last ``burst_window`` records are near-identical to ``text``."""
    start = max(0, len(context.recent_texts) - settings.burst_window)
    if context.recent_embeddings is not None and context.embedding is not None:
        window = np.asarray(context.recent_embeddings, dtype=np.float32)[start:]
        similarities = window @ np.asarray(context.embedding, dtype=np.float32)
        return int(np.sum(similarities >= settings.burst_similarity))
    words = _content_words(text)
    return sum(_jaccard(words, _content_words(other)) >= settings.burst_lexical_overlap
               for other in context.recent_texts[start:])


def contradicted_count(text: str, trust: TrustLevel, context: GuardContext, settings: AnomalySettings) -> int:
    """How many records at least as trusted as ``text``'s writer it nearly copies while changing
    a number, a name or the negation.

    A new record written by a user never counts as a contradiction: a user correcting an earlier
    statement is an update, not an attack."""
    tokens = _tokens(text)
    words = _content_words(text)
    count = 0
    for index, other in enumerate(context.recent_texts):
        other_trust = trust_of_writer(context.recent_writers[index]) if context.recent_writers else TrustLevel.USER
        if trust == TrustLevel.USER or TRUST_WEIGHTS[other_trust] < TRUST_WEIGHTS[trust]:
            continue
        if _jaccard(words, _content_words(other)) < settings.contradiction_overlap:
            continue
        if _differs_in_facts(tokens, _tokens(other)):
            count += 1
    return count


def is_off_topic(context: GuardContext, settings: AnomalySettings) -> bool:
    """True when the new record's vector is far from the scope's centroid and every neighbour."""
    if context.recent_embeddings is None or context.embedding is None:
        return False
    rows = np.asarray(context.recent_embeddings, dtype=np.float32)
    if rows.shape[0] < settings.off_topic_min_context:
        return False
    vector = np.asarray(context.embedding, dtype=np.float32)
    centroid = rows.mean(axis=0)
    norm = float(np.linalg.norm(centroid))
    centroid_similarity = float(centroid @ vector) / norm if norm else 0.0
    nearest = float(np.max(rows @ vector))
    return centroid_similarity < settings.off_topic_similarity and nearest < 2 * settings.off_topic_similarity


@lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[str, ...]:
    """Lower-cased tokens (cached: every new record is compared with the same recent records)."""
    return tuple(token.lower() for token in _TOKEN.findall(text))


@lru_cache(maxsize=4096)
def _content_words(text: str) -> frozenset[str]:
    return frozenset(token for token in _tokens(text) if token not in _STOPWORDS and not _NUMBER.search(token))


def _jaccard(first: frozenset[str], second: frozenset[str]) -> float:
    if not first or not second:
        return 0.0
    return len(first & second) / len(first | second)


def _differs_in_facts(tokens: Sequence[str], other_tokens: Sequence[str]) -> bool:
    numbers = {token for token in tokens if _NUMBER.search(token)}
    other_numbers = {token for token in other_tokens if _NUMBER.search(token)}
    if numbers and other_numbers and numbers != other_numbers:
        return True
    negated = any(token in _NEGATIONS for token in tokens)
    if negated != any(token in _NEGATIONS for token in other_tokens):
        return True
    words, other_words = set(tokens) - _STOPWORDS, set(other_tokens) - _STOPWORDS
    only_here, only_there = words - other_words, other_words - words
    return bool(only_here and only_there and len(only_here | only_there) <= 4)
