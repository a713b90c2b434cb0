"""Baselines run next to Engram on the same turns: BM25 over turns, dense retrieval over turns
with the same embedder, and the full-context upper bound for tokens."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import numpy as np

from engram.bench.datasets import Conversation, Question, Turn
from engram.bench.metrics import approx_tokens
from engram.bench.systems import RetrievalSystem, RetrievedHit, SearchOutcome
from engram.embed.base import Embedder

_WORD = re.compile(r"[a-z0-9]+")
EMBED_BATCH = 64


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric words, the BM25 baseline's terms."""
    return _WORD.findall(text.lower())


class BM25Index:
    """Okapi BM25 (k1, b) over a fixed list of documents, with Lucene's non-negative idf."""

    def __init__(self, documents: list[str], *, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self.term_counts = [Counter(tokenize(document)) for document in documents]
        self.lengths = [sum(counts.values()) for counts in self.term_counts]
        self.average_length = (sum(self.lengths) / len(self.lengths)) if self.lengths else 0.0
        document_frequency: Counter[str] = Counter()
        self.postings: dict[str, list[int]] = {}
        for index, counts in enumerate(self.term_counts):
            for term in counts:
                document_frequency[term] += 1
                self.postings.setdefault(term, []).append(index)
        total = len(documents)
        self.idf = {
            term: math.log(1.0 + (total - frequency + 0.5) / (frequency + 0.5))
            for term, frequency in document_frequency.items()
        }

    def scores(self, query: str) -> list[float]:
        """BM25 score of every document for ``query`` (0.0 where no term matches)."""
        result = [0.0] * len(self.term_counts)
        for term in set(tokenize(query)):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for index in self.postings[term]:
                frequency = self.term_counts[index][term]
                norm = self.k1 * (1 - self.b + self.b * self.lengths[index] / (self.average_length or 1.0))
                result[index] += idf * frequency * (self.k1 + 1) / (frequency + norm)
        return result


class BM25System(RetrievalSystem):
    """BM25 over turn texts; only turns sharing a term with the query are returned."""

    name = "bm25"

    def __init__(self) -> None:
        self._turns: list[Turn] = []
        self._index: BM25Index | None = None

    def ingest(self, conversation: Conversation, workdir: Path) -> None:
        self._turns = conversation.turns
        self._index = BM25Index([turn.text for turn in self._turns])

    def search(self, question: Question, limit: int) -> SearchOutcome:
        if self._index is None:
            return SearchOutcome(hits=[], confidence=0.0)
        scores = self._index.scores(question.question)
        ranked = [index for index in np.argsort(-np.asarray(scores), kind="stable")[:limit] if scores[index] > 0]
        hits = [_hit(self._turns[index], scores[index]) for index in ranked]
        return SearchOutcome(hits=hits, confidence=hits[0].score if hits else 0.0)

    def close(self) -> None:
        self._turns = []
        self._index = None


class DenseSystem(RetrievalSystem):
    """Cosine similarity over turn embeddings (the embedder Engram uses), exact numpy scan."""

    name = "dense"

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._turns: list[Turn] = []
        self._matrix = np.zeros((0, embedder.dim), dtype=np.float32)

    def ingest(self, conversation: Conversation, workdir: Path) -> None:
        self._turns = conversation.turns
        texts = [turn.text for turn in self._turns]
        blocks = [self.embedder.embed(texts[start:start + EMBED_BATCH]) for start in range(0, len(texts), EMBED_BATCH)]
        self._matrix = (np.vstack(blocks).astype(np.float32) if blocks
                        else np.zeros((0, self.embedder.dim), dtype=np.float32))

    def search(self, question: Question, limit: int) -> SearchOutcome:
        if not self._turns:
            return SearchOutcome(hits=[], confidence=0.0)
        similarities = self._matrix @ self.embedder.embed_query(question.question).astype(np.float32)
        ranked = np.argsort(-similarities, kind="stable")[:limit]
        hits = [_hit(self._turns[index], float(similarities[index])) for index in ranked]
        return SearchOutcome(hits=hits, confidence=hits[0].score if hits else 0.0)

    def close(self) -> None:
        self._turns = []
        self._matrix = np.zeros((0, self.embedder.dim), dtype=np.float32)


def _hit(turn: Turn, score: float) -> RetrievedHit:
    return RetrievedHit(text=turn.text, turn_ids=(turn.turn_id,), score=float(score))


def full_context_tokens(conversation: Conversation) -> float:
    """Tokens (characters / 4) of every turn: what putting the whole history in context costs."""
    return sum(approx_tokens(turn.text) for turn in conversation.turns)
