"""A realistic scale corpus from LoCoMo conversations, without embedding a million texts.

Every synthetic memory is two turns of one LoCoMo conversation joined (recombined), said by the
first turn's speaker, re-dated to a random moment of a five-year span and placed in a synthetic
scope. Embedding a million texts on two cores would take hours, so only the distinct source turns
(and the LoCoMo questions used as queries) are embedded, once, with the real embedder; the matrix
is cached under ``bench-out/``. A memory's vector is ``unit(unit(v_a + 0.5 v_b) + noise)`` with the
source vectors ``v_a``, ``v_b`` and deterministic Gaussian noise of norm :data:`NOISE_NORM`.

Stores are filled through ``Store.apply(ChangeSet(...))`` in large batches (the bottom of the path
``Memory.add`` takes), each memory with its episode, source link, context keys and history event."""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from engram.embed.base import Embedder, normalize_rows
from engram.errors import ValidationError
from engram.models import Episode, HistoryEvent, HistoryEventType, MemoryItem, content_hash
from engram.store.base import ChangeSet, Store
from engram.write.verbatim import source_ref

#: Norm of the Gaussian noise added to a memory's source vector before renormalising.
NOISE_NORM = 0.1
#: Weight of the second turn's vector in a recombined memory's vector.
SECOND_TURN_WEIGHT = 0.5
_EPOCH = datetime(2021, 1, 1, tzinfo=UTC)
_SPAN_SECONDS = 5 * 365 * 24 * 3600
_BLOCK = 1000
#: Turns on each side whose text goes into a memory's lexical keys, and characters kept of each
#: (as the write path indexes a conversation's turns by their neighbours).
CONTEXT_TURNS = 3
CONTEXT_CHARS = 500
#: SQLite page cache (MiB) of the loading connection.
LOAD_CACHE_MIB = 512


@dataclass(frozen=True)
class SourceTurn:
    """One LoCoMo turn: which conversation it belongs to, who said it, what was said."""

    conversation: int
    speaker: str
    text: str


def load_locomo(path: Path) -> tuple[list[SourceTurn], list[str]]:
    """The distinct turns (text and speaker) and the distinct questions of a LoCoMo file."""
    try:
        samples = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"cannot read LoCoMo data at {path}: {exc}", field="data",
                              hint="pass the LoCoMo JSON file with --data") from exc
    if not isinstance(samples, list):
        raise ValidationError("LoCoMo data must be a list of samples", field="data")
    turns: dict[str, SourceTurn] = {}
    questions: dict[str, None] = {}
    for number, sample in enumerate(samples):
        conversation = sample.get("conversation", {}) if isinstance(sample, dict) else {}
        for key, session in conversation.items():
            if key.startswith("session_") and isinstance(session, list):
                for turn in session:
                    text = str(turn.get("text", "")).strip()
                    if text and text not in turns:
                        turns[text] = SourceTurn(number, str(turn.get("speaker") or "user"), text)
        for item in sample.get("qa", []) if isinstance(sample, dict) else []:
            if isinstance(item, dict) and str(item.get("question", "")).strip():
                questions[str(item["question"]).strip()] = None
    if len(turns) < 2 or not questions:
        raise ValidationError(f"{path} holds too few turns or questions for a corpus", field="data")
    return list(turns.values()), list(questions)


def cached_embeddings(texts: Sequence[str], embedder: Embedder, cache_dir: Path) -> np.ndarray:
    """``embedder``'s vectors of ``texts``, read from (or written to) a ``.npy`` file in ``cache_dir``
    named by a digest of the embedder's signature and the texts."""
    digest = hashlib.sha256("\n".join([embedder.signature, *texts]).encode("utf-8")).hexdigest()[:16]
    path = Path(cache_dir) / f"embeddings-{digest}.npy"
    if path.is_file():
        matrix = np.load(path)
        if matrix.shape == (len(texts), embedder.dim):
            return matrix
    rows = [embedder.embed(list(texts[start:start + 64])) for start in range(0, len(texts), 64)]
    matrix = normalize_rows(np.concatenate(rows))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, matrix)
    return matrix


class ScaleCorpus:
    """Source turns, questions and their real embeddings; generates any number of memories."""

    def __init__(self, turns: Sequence[SourceTurn], turn_vectors: np.ndarray, questions: Sequence[str],
                 question_vectors: np.ndarray, *, signature: str) -> None:
        self.turns = list(turns)
        self.turn_vectors = np.asarray(turn_vectors, dtype=np.float32)
        self.questions = list(questions)
        self.question_vectors = np.asarray(question_vectors, dtype=np.float32)
        self.signature = signature
        conversations = np.array([turn.conversation for turn in self.turns])
        self._by_conversation = [np.flatnonzero(conversations == c) for c in np.unique(conversations)]

    @classmethod
    def from_locomo(cls, path: Path, embedder: Embedder, cache_dir: Path) -> ScaleCorpus:
        """Load a LoCoMo file and embed its turns and questions (cached in ``cache_dir``)."""
        turns, questions = load_locomo(path)
        return cls(turns, cached_embeddings([t.text for t in turns], embedder, cache_dir), questions,
                   cached_embeddings(questions, embedder, cache_dir), signature=embedder.signature)

    @property
    def dim(self) -> int:
        return int(self.turn_vectors.shape[1])

    def rows(self, count: int, seed: int) -> Iterator[tuple[list[str], list[str], np.ndarray, np.ndarray]]:
        """``count`` memories in blocks: texts, speakers, vectors and event times (epoch seconds).
        The same ``(count, seed)`` always gives the same memories."""
        for start in range(0, count, _BLOCK):
            size = min(_BLOCK, count - start)
            rng = np.random.default_rng([seed, start])
            groups = rng.integers(len(self._by_conversation), size=size)
            firsts = np.array([self._by_conversation[g][rng.integers(len(self._by_conversation[g]))] for g in groups])
            seconds = np.array([self._by_conversation[g][rng.integers(len(self._by_conversation[g]))] for g in groups])
            mixed = normalize_rows(self.turn_vectors[firsts] + SECOND_TURN_WEIGHT * self.turn_vectors[seconds])
            noise = rng.standard_normal(mixed.shape).astype(np.float32) * (NOISE_NORM / np.sqrt(self.dim))
            texts = [f"{self.turns[a].text} {self.turns[b].text}" for a, b in zip(firsts, seconds, strict=True)]
            yield (texts, [self.turns[a].speaker for a in firsts], normalize_rows(mixed + noise),
                   np.sort(rng.integers(_SPAN_SECONDS, size=size)).astype(np.float64))


class CorpusEmbedder(Embedder):
    """Looks up the corpus's real vectors for its questions; any other text gets a source turn's vector
    (picked by the text's hash) plus deterministic noise. Costs microseconds: timings measure the
    store and the read path, not the model (whose cost is measured apart)."""

    def __init__(self, corpus: ScaleCorpus) -> None:
        self.dim = corpus.dim
        self.name = f"scale-corpus[{corpus.signature}]"
        self._corpus = corpus
        self._known = {text: row for row, text in enumerate(corpus.questions)}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.empty((len(texts), self.dim), dtype=np.float32)
        for index, text in enumerate(texts):
            known = self._known.get(text)
            if known is not None:
                rows[index] = self._corpus.question_vectors[known]
                continue
            code = zlib.crc32(text.encode("utf-8"))
            noise = np.random.default_rng(code).standard_normal(self.dim).astype(np.float32)
            rows[index] = (self._corpus.turn_vectors[code % len(self._corpus.turns)]
                           + noise * (NOISE_NORM / np.sqrt(self.dim)))
        return normalize_rows(rows)


def scope_plan(total: int, scopes: int) -> list[tuple[str, int]]:
    """``(user id, memories)`` per scope: ``total`` spread evenly over ``scopes`` users."""
    if total < 1 or scopes < 1:
        raise ValidationError("the corpus needs at least one memory and one scope", field="n")
    scopes = min(scopes, total)
    return [(f"user-{index}", total // scopes + (1 if index < total % scopes else 0)) for index in range(scopes)]


def bulk_load(store: Store, corpus: ScaleCorpus, plan: Sequence[tuple[str, int]], *, seed: int,
              batch: int = 5000) -> None:
    """Fill ``store`` with the plan's memories through ``Store.apply`` in batches of about ``batch``.

    Each memory comes with its episode, source link, lexical keys (the text of the ``CONTEXT_TURNS``
    turns on each side in its scope, as the write path indexes a conversation) and an ADD history event."""
    store.embedder_signature(CorpusEmbedder(corpus).signature)
    rows = corpus.rows(sum(count for _, count in plan), seed)
    pending = ChangeSet()
    buffered: list[tuple[str, str, np.ndarray, float]] = []
    for user, count in plan:
        for offset in range(0, count, batch):
            size = min(batch, count - offset)
            while len(buffered) < size:
                texts, speakers, vectors, times = next(rows)
                buffered += zip(texts, speakers, vectors, times, strict=True)
            _add_scope(pending, user, buffered[:size])
            del buffered[:size]
            if len(pending.memories) >= batch:
                store.apply(pending)
                pending = ChangeSet()
    store.apply(pending)


def _add_scope(changes: ChangeSet, user: str, rows: Sequence[tuple[str, str, np.ndarray, float]]) -> None:
    """One conversation of ``rows`` (text, speaker, vector, event time) in ``user``'s scope, in time order."""
    rows = sorted(rows, key=lambda row: row[3])
    episodes = [Episode(user_id=user, role="user", name=speaker, content=text,
                        occurred_at=_EPOCH + timedelta(seconds=float(moment)),
                        recorded_at=_EPOCH + timedelta(seconds=float(moment)), hash=content_hash(text),
                        extraction="done") for text, speaker, _, moment in rows]
    texts = [episode.content for episode in episodes]
    memories = [
        MemoryItem(memory=episode.content, user_id=user, sources=[source_ref(episode)], valid_from=episode.occurred_at,
                   created_at=episode.recorded_at, updated_at=episode.recorded_at, hash=episode.hash, writer="user",
                   index_keys="\n".join(text[:CONTEXT_CHARS] for text in
                                        texts[max(0, i - CONTEXT_TURNS):i] + texts[i + 1:i + 1 + CONTEXT_TURNS]))
        for i, episode in enumerate(episodes)]
    changes.episodes += episodes
    changes.memories += memories
    changes.vectors.update((memory.id, row[2]) for memory, row in zip(memories, rows, strict=True))
    changes.history += [HistoryEvent(memory_id=memory.id, event=HistoryEventType.ADD, new_memory=memory.memory,
                                     actor="user", user_id=user, created_at=memory.created_at) for memory in memories]


def ensure_store(path: Path, corpus: ScaleCorpus, total: int, scopes: int, *, seed: int) -> bool:
    """Make ``path`` a SQLite store of ``total`` corpus memories over ``scopes`` users: reuse it when its
    marker file says it was built with the same corpus, sizes and seed, else rebuild it. True when built."""
    from engram.store.sqlite import SQLiteStore

    marker = Path(f"{path}.corpus.json")
    wanted = {"signature": CorpusEmbedder(corpus).signature, "turns": len(corpus.turns), "total": total,
              "scopes": scopes, "seed": seed, "noise": NOISE_NORM}
    if path.is_file() and marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == wanted:
        return False
    for stale in path.parent.glob(f"{path.name}*"):
        stale.unlink()
    # random ids put every insert in a random page of the id indexes: keep them in memory while loading
    store = SQLiteStore(path, synchronous="OFF", cache_mib=LOAD_CACHE_MIB)
    try:
        bulk_load(store, corpus, scope_plan(total, scopes), seed=seed)
        store.purge()
    finally:
        store.close()
    marker.write_text(json.dumps(wanted), encoding="utf-8")
    return True
