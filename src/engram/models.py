"""The data model: episodes (raw record), memories (units of recall), history, search results.

These pydantic models are the public shapes of the Python API, the CLI's ``--json`` output and
the REST API alike. Datetimes are timezone-aware UTC."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from engram.timeutil import utcnow
from engram.trust import trust_of_writer


def new_id() -> str:
    """A fresh random identifier (UUID4, 32 hex characters)."""
    return uuid.uuid4().hex


def content_hash(text: str) -> str:
    """sha256 of the UTF-8 text, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Scope(BaseModel):
    """Who a record belongs to. Scopes are hard partitions: every given id must match."""

    model_config = ConfigDict(frozen=True)

    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None

    def is_empty(self) -> bool:
        return self.user_id is None and self.agent_id is None and self.run_id is None

    def items(self) -> list[tuple[str, str]]:
        """The ids that are set, as ``(column, value)`` pairs."""
        pairs = (("user_id", self.user_id), ("agent_id", self.agent_id), ("run_id", self.run_id))
        return [(key, value) for key, value in pairs if value is not None]

    def contains(self, other: Scope) -> bool:
        """True when a record stored under ``other`` is visible to a query in this scope."""
        return all(getattr(other, key) == value for key, value in self.items())


#: Turns further apart in event time than this belong to different conversations (sessions).
CONVERSATION_GAP = timedelta(hours=2)

#: Where an episode stands with LLM fact extraction: never to be extracted (no LLM), waiting for a retry
#: (``engram maintain``), or done.
ExtractionState = Literal["none", "pending", "done"]


class MemoryKind(StrEnum):
    """Granularity of a memory; the set is open (any string is accepted)."""

    EPISODE = "episode"
    FACT = "fact"
    SUMMARY = "summary"


class MemoryStatus(StrEnum):
    ACTIVE = "active"
    QUARANTINED = "quarantined"
    ARCHIVED = "archived"


class HistoryEventType(StrEnum):
    ADD = "ADD"
    UPDATE = "UPDATE"
    INVALIDATE = "INVALIDATE"
    DELETE = "DELETE"
    NOOP = "NOOP"
    FEEDBACK = "FEEDBACK"
    ARCHIVE = "ARCHIVE"


class Episode(BaseModel):
    """One raw message or event, kept verbatim."""

    id: str = Field(default_factory=new_id)
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    role: str = "user"
    name: str | None = None
    content: str
    occurred_at: datetime = Field(default_factory=utcnow)
    recorded_at: datetime = Field(default_factory=utcnow)
    metadata: dict[str, Any] = Field(default_factory=dict)
    hash: str = ""
    extraction: ExtractionState = "none"

    @property
    def scope(self) -> Scope:
        return Scope(user_id=self.user_id, agent_id=self.agent_id, run_id=self.run_id)


class SourceRef(BaseModel):
    """A citation: the episode a memory was derived from."""

    id: str
    occurred_at: datetime
    role: str
    name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class MemoryItem(BaseModel):
    """A unit of recall derived from one or more episodes (``sources``).

    ``index_keys`` are extra words it is found by; ``context_keys`` the text of its neighbouring turns
    (maintained by the write path); ``attributes`` the single-valued attributes its text states, as
    ``subject|attribute=value`` (offline supersession, ``engram.changes.slots``)."""

    id: str = Field(default_factory=new_id)
    memory: str
    kind: str = MemoryKind.EPISODE.value
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    sources: list[SourceRef] = Field(default_factory=list)
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    hash: str = ""
    status: str = MemoryStatus.ACTIVE.value
    writer: str = "user"
    index_keys: str = ""
    context_keys: str = ""
    attributes: list[str] = Field(default_factory=list)
    access_count: int = 0
    last_accessed_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def trust(self) -> str:
        """The trust level derived from ``writer``: user > assistant > tool / document > unknown."""
        return trust_of_writer(self.writer).value

    @property
    def scope(self) -> Scope:
        return Scope(user_id=self.user_id, agent_id=self.agent_id, run_id=self.run_id)

    @property
    def speaker(self) -> str | None:
        """The name of who said the memory's text (its first named source), if known."""
        return next((source.name for source in self.sources if source.name), None)

    @property
    def is_turn(self) -> bool:
        """True for a verbatim conversation turn (kind ``episode``), which has neighbours in its conversation."""
        return self.kind == MemoryKind.EPISODE.value

    @property
    def began_at(self) -> datetime:
        """When the memory's fact began to hold: its event time (``valid_from``), else when it was written."""
        return self.valid_from or self.created_at

    @property
    def supersedes(self) -> list[str]:
        """The ids of the memories this one replaced (``metadata.supersedes``: a list, or one id as the LLM
        path wrote it before supersession was offline too)."""
        value = self.metadata.get("supersedes")
        if isinstance(value, str):
            return [value]
        return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []

    @property
    def source_ids(self) -> list[str]:
        return [source.id for source in self.sources]


class HistoryEvent(BaseModel):
    """One change to a memory. ``old_memory``/``new_memory`` hold the text before and after."""

    id: str = Field(default_factory=new_id)
    memory_id: str
    event: HistoryEventType
    old_memory: str | None = None
    new_memory: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    actor: str = "api"
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class SearchHit(MemoryItem):
    """A memory returned by search, with its relevance ``score`` (higher is better)."""

    score: float
    explain: dict[str, float] | None = None


class TimeRange(BaseModel):
    """A closed-open interval of event time the query talks about."""

    start: datetime | None = None
    end: datetime | None = None
    expression: str = ""


class SearchResponse(BaseModel):
    """What ``search`` returns: hits best first, plus an explicit abstention signal."""

    results: list[SearchHit]
    abstain: bool = False
    confidence: float = 0.0
    time_range: TimeRange | None = None


class AddEvent(BaseModel):
    """One outcome of ``add``: a memory that was added, updated, invalidated or left alone."""

    id: str
    memory: str
    event: HistoryEventType
    kind: str
    episode_ids: list[str] = Field(default_factory=list)
    previous_memory: str | None = None
    status: str = MemoryStatus.ACTIVE.value


class AddResponse(BaseModel):
    """What ``add`` returns (mem0-compatible ``results`` plus the stored episodes)."""

    results: list[AddEvent]
    episodes: list[str] = Field(default_factory=list)
    infer: str = "off"
    pending: list[str] = Field(default_factory=list, description="episodes whose LLM extraction must be retried")
    notes: list[str] = Field(default_factory=list)
    usage: dict[str, Any] | None = Field(default=None, description="LLM calls, tokens and latency of this add")


class AnswerResponse(BaseModel):
    """What ``answer`` returns: the answer, the memories it cites, all memories it was shown, LLM usage."""

    answer: str
    abstained: bool
    citations: list[SearchHit]
    memories: list[SearchHit]
    usage: dict[str, Any] | None = None
