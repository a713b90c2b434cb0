"""Request bodies and the few response shapes the Python API has no model for.

Bodies are deliberately loose about value types (``messages`` may be a string, a message dict or a
list of them, timestamps may be ISO strings or epoch seconds): ``Memory`` validates values and names
the offending field exactly as the Python API does. Unknown body keys are rejected (422), and so are
values of the wrong JSON type (``true`` for a timestamp or a limit, ``"yes"`` for a flag): no coercion."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engram.models import MemoryItem

Messages = str | dict[str, Any] | list[str | dict[str, Any]]
TimeValue = str | float | int


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ScopedBody(_Body):
    """Scope ids (top-level, or inside ``filters``); a non-admin key's own ids are used when omitted."""

    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None


class AddRequest(ScopedBody):
    """``POST /v1/memories``: the arguments of ``Memory.add``."""

    messages: Messages = Field(description="a string, a {role, content[, name][, timestamp][, metadata]} dict, "
                                           "or a list of them")
    metadata: dict[str, Any] | None = None
    timestamp: TimeValue | None = Field(None, description="event time: ISO-8601 or epoch seconds (default: now)")
    infer: bool = True
    filters: dict[str, Any] | None = None


class SearchRequest(ScopedBody):
    """``POST /v1/memories/search``: the arguments of ``Memory.search``."""

    query: str
    filters: dict[str, Any] | None = None
    limit: int = 10
    reference_date: TimeValue | None = Field(None, description="'now' for the question (recency, time words)")
    threshold: float | None = None
    explain: bool = False
    include_archived: bool = False


class UpdateRequest(_Body):
    """``PUT /v1/memories/{memory_id}``: new text and/or metadata keys to set (the others are kept)."""

    text: str | None = None
    metadata: dict[str, Any] | None = None


class AnswerRequest(ScopedBody):
    """``POST /v1/answer``: a question answered from the scope's memories (needs an LLM)."""

    question: str
    filters: dict[str, Any] | None = None
    limit: int = Field(10, description="memories retrieved and shown to the LLM")
    reference_date: TimeValue | None = Field(None, description="'now' for the question (recency, time words)")


class MemoryPage(BaseModel):
    """``GET /v1/memories``: one page of a scope's memories, newest first, and the total count."""

    results: list[MemoryItem]
    total: int


class UpdateResponse(BaseModel):
    message: str
    id: str
    memory: str


class DeleteResponse(BaseModel):
    message: str
    id: str


class DeleteAllResponse(BaseModel):
    message: str
    deleted_memories: int
    deleted_episodes: int


class ResetResponse(BaseModel):
    message: str


class Health(BaseModel):
    status: str
    version: str
    backend: str
    auth: bool
    llm: bool


class Problem(BaseModel):
    """An error, as RFC 9457 problem details plus Engram's typed error name, field and hint."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    error: str = Field(description="the typed error class, as raised by the Python API (e.g. ValidationError)")
    code: str
    field: str | None = None
    hint: str | None = None
    errors: list[dict[str, Any]] | None = Field(None, description="every problem found, for request validation")


class FeedbackRequest(_Body):
    """``POST /v1/memories/{memory_id}/feedback``: was the memory useful, why, and who says so (default: the
    API key's id)."""

    useful: bool = True
    note: str | None = None
    given_by: str | None = None


class ForgetRequest(ScopedBody):
    """``POST /v1/forget``: the arguments of ``Memory.forget``."""

    threshold: float = 0.05
    dry_run: bool = False
    reference_date: TimeValue | None = Field(None, description="when strength is measured (default: now)")


class ExperienceRequest(ScopedBody):
    """``POST /v1/experiences``: the arguments of ``Memory.add_experience``."""

    task: str
    outcome: str
    steps: list[str] = Field(default_factory=list)
    lesson: str | None = None
    metadata: dict[str, Any] | None = None


class ExperienceSearchRequest(ScopedBody):
    """``POST /v1/experiences/search``: the arguments of ``Memory.search_experiences``."""

    task: str
    limit: int = 5
    outcome: str | None = None
    distil: bool = True


class TrainingExportRequest(ScopedBody):
    """``POST /v1/export/training``: the arguments of ``Memory.export_training`` (no replay file: mix replay
    samples in on the client side)."""

    format: str = "sft"
    min_trust: str = "assistant"
