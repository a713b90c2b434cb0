"""The retrieval systems a benchmark compares, behind one small interface, and Engram's adapter.

Every system gets a fresh index per conversation (``ingest``), then answers ``search`` with hits
that name the turns they come from, so all are scored by the same code."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engram.bench.datasets import Conversation, Question, Session
from engram.embed.base import Embedder

#: Metadata keys that carry a turn id in a hit's sources (checked in this order).
TURN_ID_KEYS = ("turn_id", "dia_id")


@dataclass(frozen=True)
class RetrievedHit:
    """One ranked hit: the text a caller would put in context and the turns it cites."""

    text: str
    turn_ids: tuple[str, ...]
    score: float


@dataclass(frozen=True)
class SearchOutcome:
    """Hits best first, a confidence (higher: more sure the answer is there) and, for systems
    that have one, an explicit abstain signal."""

    hits: list[RetrievedHit]
    confidence: float
    abstain: bool | None = None


class RetrievalSystem(ABC):
    """A system under test. ``ingest`` starts from an empty index every time."""

    name: str = "system"
    #: True when ``SearchOutcome.abstain`` is an explicit signal rather than None.
    has_abstain_signal: bool = False

    @abstractmethod
    def ingest(self, conversation: Conversation, workdir: Path) -> None:
        """Index every turn of ``conversation`` into a fresh, empty index."""

    @abstractmethod
    def search(self, question: Question, limit: int) -> SearchOutcome:
        """The top ``limit`` hits for ``question`` in the conversation last ingested."""

    @abstractmethod
    def close(self) -> None:
        """Release the index of the conversation last ingested."""

    def answer(self, question: Question) -> str | None:
        """An LLM answer from this system's memory, or None when it cannot answer."""
        return None


def turn_metadata(session: Session, turn_id: str) -> dict[str, str]:
    """The per-message metadata that lets a hit be traced back to its benchmark turn."""
    return {"turn_id": turn_id, "dia_id": turn_id, "session_id": session.session_id}


def turn_ids_of_hit(hit: Mapping[str, Any]) -> tuple[str, ...]:
    """Turn ids a search hit cites: from its sources' metadata, else from its own metadata."""
    found: list[str] = []
    for source in hit.get("sources") or []:
        found.extend(_turn_ids_in(source.get("metadata") if isinstance(source, Mapping) else None))
    if not found:
        found.extend(_turn_ids_in(hit.get("metadata")))
    return tuple(dict.fromkeys(found))


def _turn_ids_in(metadata: object) -> Iterable[str]:
    if not isinstance(metadata, Mapping):
        return []
    for key in TURN_ID_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value:
            return [value]
    return []


class EngramSystem(RetrievalSystem):
    """Engram through its public API: one fresh SQLite file per conversation (or, with ``shared_store``,
    one file that every conversation is added to, a user each, as in a service with many users), every
    session ingested with one ``Memory.add`` call (session date as event time, turn ids in metadata), or
    with one call per turn, in order, as agents write (``stream``)."""

    name = "engram"
    has_abstain_signal = True

    def __init__(self, embedder: Embedder | None = None, *, infer: bool = False, stream: bool = False,
                 shared_store: bool = False, memory_options: Mapping[str, Any] | None = None) -> None:
        self.embedder = embedder
        self.infer = infer
        self.stream = stream
        self.shared_store = shared_store
        self._shared_started = False
        self.memory_options = dict(memory_options or {})
        self._memory: Any = None
        self._user_id = ""

    def ingest(self, conversation: Conversation, workdir: Path) -> None:
        from engram import Memory  # the facade; imported late so the bench package loads without it

        self.close()
        name = "shared" if self.shared_store else _safe_name(conversation.conversation_id)
        path = workdir / f"engram-{name}.db"
        if not (self.shared_store and self._shared_started):
            for stale in workdir.glob(f"{path.name}*"):
                stale.unlink()
        self._shared_started = True
        options = dict(self.memory_options)
        if self.embedder is not None:
            options["embedder"] = self.embedder
        self._memory = Memory(path=str(path), **options)
        self._user_id = conversation.conversation_id
        for session in conversation.sessions:
            if not session.turns:
                continue
            messages = [
                {"role": turn.role, "name": turn.speaker, "content": turn.text,
                 "metadata": turn_metadata(session, turn.turn_id)}
                for turn in session.turns
            ]
            for batch in ([[message] for message in messages] if self.stream else [messages]):
                self._memory.add(batch, user_id=self._user_id, timestamp=session.date, infer=self.infer)

    def search(self, question: Question, limit: int) -> SearchOutcome:
        response = self._memory.search(question.question, user_id=self._user_id, limit=limit,
                                       reference_date=question.reference_date)
        hits = [
            RetrievedHit(text=str(hit.get("memory", "")), turn_ids=turn_ids_of_hit(hit),
                         score=float(hit.get("score", 0.0)))
            for hit in response.get("results", [])
        ]
        confidence = response.get("confidence")
        return SearchOutcome(
            hits=hits,
            confidence=float(confidence) if confidence is not None else (hits[0].score if hits else 0.0),
            abstain=bool(response.get("abstain", False)),
        )

    def answer(self, question: Question) -> str | None:
        answer_method = getattr(self._memory, "answer", None)
        if answer_method is None:
            return None
        reply = answer_method(question.question, user_id=self._user_id, reference_date=question.reference_date)
        if isinstance(reply, Mapping):
            return str(reply.get("answer", ""))
        return str(reply)

    def close(self) -> None:
        if self._memory is not None:
            self._memory.close()
            self._memory = None


def _safe_name(text: str) -> str:
    return "".join(char if char.isalnum() or char in "-_" else "_" for char in text)[:80]


def top_indices(scores: Sequence[float], limit: int) -> list[int]:
    """Indices of the ``limit`` highest scores, best first (ties by index)."""
    order = sorted(range(len(scores)), key=lambda index: (-scores[index], index))
    return order[:limit]
