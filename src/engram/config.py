"""Configuration: pydantic models filled from arguments, ``Memory.from_config`` dicts and the
environment (``ENGRAM_*``). Providers are built from it in :mod:`engram.providers`."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engram.embed import DEFAULT_PROVIDER
from engram.errors import ConfigurationError
from engram.read.recipes import RetrievalRecipe

#: PostgreSQL: HNSW candidate list size of a vector search (pgvector's ``hnsw.ef_search``, raised to the
#: search limit when that is larger). Tuned by ``engram bench pg-scale`` (docs/BENCHMARKS.md, PostgreSQL).
HNSW_EF_SEARCH = 200
#: PostgreSQL: the HNSW graph's ``(m, ef_construction)`` (pgvector's defaults; docs/BENCHMARKS.md, PostgreSQL,
#: has the settings measured for a million memories in one scope).
HNSW_GRAPH = (16, 64)
#: Bounds of the HNSW settings (pgvector's), by field: ``(lowest, highest, default)``.
_HNSW_BOUNDS = {"hnsw_ef_search": (1, 1000, HNSW_EF_SEARCH), "hnsw_m": (2, 100, HNSW_GRAPH[0]),
                "hnsw_ef_construction": (4, 1000, HNSW_GRAPH[1])}


class EmbedderConfig(BaseSettings):
    """Which embedder to use. Environment: ``ENGRAM_EMBED_PROVIDER``, ``..._MODEL``, ``..._BASE_URL``,
    ``..._API_KEY``, ``..._DIMENSIONS``."""

    model_config = SettingsConfigDict(env_prefix="ENGRAM_EMBED_", extra="forbid")

    provider: str = DEFAULT_PROVIDER
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    dimensions: int | None = None
    tokenizer: str | None = None


class LLMConfig(BaseSettings):
    """An OpenAI-compatible chat endpoint. Environment: ``ENGRAM_LLM_BASE_URL``, ``ENGRAM_LLM_API_KEY``,
    ``ENGRAM_LLM_MODEL``. Without a ``base_url`` (or ``provider="llamacpp"``) no LLM is used."""

    model_config = SettingsConfigDict(env_prefix="ENGRAM_LLM_", extra="forbid")

    provider: str = "openai"
    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 3
    max_concurrency: int = 4
    model_path: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.base_url) or self.provider == "llamacpp"


class Limits(BaseModel):
    """Input limits; larger input is rejected with a ValidationError naming the field."""

    max_content_chars: int = 200_000
    max_messages_per_add: int = 10_000
    max_metadata_bytes: int = 64_000
    max_metadata_depth: int = 16
    max_id_chars: int = 256
    max_query_chars: int = 10_000
    max_limit: int = 10_000


class EngramConfig(BaseModel):
    """Everything a ``Memory`` needs. ``path`` (SQLite file) or ``url`` (``sqlite:///...`` or
    ``postgresql://...``) selects the store; the default is ``$ENGRAM_HOME/engram.db`` or ``./engram.db``."""

    model_config = {"extra": "forbid"}

    path: str | None = None
    url: str | None = None
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    retrieval: RetrievalRecipe | str = "balanced"
    limits: Limits = Field(default_factory=Limits)
    sqlite_synchronous: str = "FULL"
    exact_lexical: bool = Field(
        default_factory=lambda: os.environ.get("ENGRAM_EXACT_LEXICAL", "false"), validate_default=True,
        description="SQLite store: score every lexical match of a query, also in scopes of tens of thousands of "
                    "memories, instead of the rows holding its rarest words (slower there; docs/BENCHMARKS.md, "
                    "Scale, measures both). Environment: ENGRAM_EXACT_LEXICAL (true / false)")
    guard: bool = Field(True, description="screen writes for memory poisoning and quarantine suspicious ones")
    supersession: bool = Field(True, description="offline: close a memory (valid_to, superseded_by) when a newer one "
                               "states the same attribute of the same subject with another value")
    guard_threshold: float = Field(0.5, gt=0, le=1)
    guard_consensus: bool = Field(
        default_factory=lambda: os.environ.get("ENGRAM_GUARD_CONSENSUS", "true"), validate_default=True,
        description="when an LLM is configured and the guard is on: one LLM call per add checks records from "
                    "less trusted writers (or that the guard found suspect) against related trusted memories and "
                    "quarantines those it finds contradicting them or steering the assistant; no LLM, no check. "
                    "Environment: ENGRAM_GUARD_CONSENSUS (true / false)")
    read_time_llm: bool = Field(
        default_factory=lambda: os.environ.get("ENGRAM_READ_TIME_LLM", "false"), validate_default=True,
        description="when an LLM is configured: a question about the present, or about what came before, whose "
                    "best candidates include an older and a newer statement on one topic asks the LLM (one call) "
                    "whether the newer replaced the older, in place of the offline models; a failed call falls "
                    "back to them; no LLM, no call. "
                    "Environment: ENGRAM_READ_TIME_LLM (true / false)")
    guard_consensus_confidence: float = Field(
        0.7, ge=0, le=1, description="the consensus check quarantines a record it flags with at least this confidence")
    hnsw_ef_search: int = Field(
        default_factory=lambda: os.environ.get("ENGRAM_HNSW_EF_SEARCH", HNSW_EF_SEARCH), validate_default=True,
        description="PostgreSQL store: HNSW candidate list size of a vector search (1-1000; higher is more exact "
                    "and slower; raised to the search limit when that is larger). Environment: ENGRAM_HNSW_EF_SEARCH")

    hnsw_m: int = Field(
        default_factory=lambda: os.environ.get("ENGRAM_HNSW_M", HNSW_GRAPH[0]), validate_default=True,
        description="PostgreSQL store: links per node of the HNSW graph built with the first vector (2-100; denser "
                    "graphs find more of the true nearest in large scopes, and cost more per insert). "
                    "Environment: ENGRAM_HNSW_M")
    hnsw_ef_construction: int = Field(
        default_factory=lambda: os.environ.get("ENGRAM_HNSW_EF_CONSTRUCTION", HNSW_GRAPH[1]),
        validate_default=True,
        description="PostgreSQL store: candidate list size while building the HNSW graph (4-1000, at least twice "
                    "hnsw_m). Environment: ENGRAM_HNSW_EF_CONSTRUCTION")

    @field_validator("hnsw_ef_search", "hnsw_m", "hnsw_ef_construction", mode="before")
    @classmethod
    def _check_hnsw(cls, value: object, info: ValidationInfo) -> int:
        """An integer within pgvector's bounds, else a ConfigurationError naming the field (and its variable)."""
        field = str(info.field_name)
        low, high, default = _HNSW_BOUNDS[field]
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit() or not low <= int(text) <= high:
            raise ConfigurationError(f"must be an integer from {low} to {high}, got {value!r}", field=field,
                                     hint=f"set {field} or ENGRAM_{field.upper()}; the default is {default}")
        return int(text)

    def resolved_url(self) -> str:
        """The store location as a URL: explicit url, then path, then ENGRAM_DATABASE_URL, then the default file."""
        if self.url:
            return self.url
        if self.path:
            return f"sqlite:///{self.path}"
        env_url = os.environ.get("ENGRAM_DATABASE_URL")
        if env_url:
            return env_url
        home = os.environ.get("ENGRAM_HOME")
        default = Path(home) / "engram.db" if home else Path("engram.db")
        return f"sqlite:///{default}"
