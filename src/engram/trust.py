"""Trust levels: who wrote a record, and how far that writer is trusted.

A writer is stored on each memory (``MemoryItem.writer``) as ``"<kind>"`` or ``"<kind>:<detail>"``
(``"tool:web_search"``, ``"document:handbook.pdf"``, ``"api:key-7"``). The kind alone fixes the trust
level, so the level can always be recomputed from the stored writer:

    user  >  assistant (assistant-inferred)  >  tool output / imported document  >  unknown
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class TrustLevel(StrEnum):
    """How far content from a writer is trusted; see ``TRUST_WEIGHTS`` for the order."""

    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    DOCUMENT = "document"
    UNKNOWN = "unknown"


#: Numeric weight of each level, for ranking and for "at least this trusted" comparisons.
TRUST_WEIGHTS: dict[TrustLevel, float] = {
    TrustLevel.USER: 1.0,
    TrustLevel.ASSISTANT: 0.7,
    TrustLevel.TOOL: 0.4,
    TrustLevel.DOCUMENT: 0.4,
    TrustLevel.UNKNOWN: 0.2,
}

#: The writer kinds (the part of a writer label before ``:``) that map to a known trust level.
WRITER_KINDS: dict[str, TrustLevel] = {
    "user": TrustLevel.USER,
    "human": TrustLevel.USER,
    "assistant": TrustLevel.ASSISTANT,
    "ai": TrustLevel.ASSISTANT,
    "agent": TrustLevel.ASSISTANT,
    "model": TrustLevel.ASSISTANT,
    "llm": TrustLevel.ASSISTANT,
    "system": TrustLevel.ASSISTANT,
    "tool": TrustLevel.TOOL,
    "function": TrustLevel.TOOL,
    "tool_output": TrustLevel.TOOL,
    "observation": TrustLevel.TOOL,
    "document": TrustLevel.DOCUMENT,
    "doc": TrustLevel.DOCUMENT,
    "import": TrustLevel.DOCUMENT,
    "file": TrustLevel.DOCUMENT,
    "web": TrustLevel.DOCUMENT,
    "email": TrustLevel.DOCUMENT,
}

#: Metadata keys that may name the writer of an episode, most specific first.
WRITER_METADATA_KEYS: tuple[str, ...] = ("writer", "source")


@dataclass(frozen=True)
class Provenance:
    """The writer label to store on a memory and the trust level derived from it."""

    writer: str
    trust: TrustLevel

    @property
    def weight(self) -> float:
        return TRUST_WEIGHTS[self.trust]


def trust_level_weight(level: TrustLevel | str) -> float:
    """The numeric weight of a trust level (unknown strings weigh as ``unknown``)."""
    return TRUST_WEIGHTS[_as_level(level)]


@functools.lru_cache(maxsize=1024)
def trust_of_writer(writer: str) -> TrustLevel:
    """The trust level of a stored writer label such as ``"tool:web_search"``."""
    kind = writer.split(":", 1)[0].strip().lower()
    return WRITER_KINDS.get(kind, TrustLevel.UNKNOWN)


def least_trusted(first: TrustLevel, second: TrustLevel) -> TrustLevel:
    """The less trusted of two levels (the first on a tie)."""
    return second if TRUST_WEIGHTS[second] < TRUST_WEIGHTS[first] else first


def derive_provenance(role: str, metadata: Mapping[str, Any] | None = None,
                      name: str | None = None) -> Provenance:
    """Writer and trust of an episode from its ``role``, optional ``name`` and metadata.

    ``metadata["writer"]`` or ``metadata["source"]`` (e.g. ``"document:notes.pdf"``,
    ``"api:key-7"``, ``"tool"``) may lower the trust the role implies but never raise it: a
    tool output posted with ``role="user"`` and ``source="tool"`` is a tool output, while a tool
    message claiming ``writer="user"`` stays a tool output."""
    role_kind = (role or "").strip().lower()
    level = WRITER_KINDS.get(role_kind, TrustLevel.UNKNOWN)
    writer = _writer_label(role_kind or "unknown", level, name)
    claimed = _claimed_writer(metadata)
    if claimed is not None:
        claimed_level = trust_of_writer(claimed)
        claimed_kind = claimed.split(":", 1)[0].strip().lower()
        if claimed_kind in WRITER_KINDS and TRUST_WEIGHTS[claimed_level] <= TRUST_WEIGHTS[level]:
            return Provenance(writer=claimed, trust=claimed_level)
        if claimed_kind not in WRITER_KINDS:
            writer = f"{writer.split(':', 1)[0]}:{claimed}"
    return Provenance(writer=writer, trust=level)


def _writer_label(role_kind: str, level: TrustLevel, name: str | None) -> str:
    kind = level.value if role_kind in WRITER_KINDS else "unknown"
    return f"{kind}:{name}" if name else kind


def _claimed_writer(metadata: Mapping[str, Any] | None) -> str | None:
    if not metadata:
        return None
    for key in WRITER_METADATA_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value.strip():
            kind, colon, detail = value.strip().partition(":")
            return f"{kind.strip().lower()}{colon}{detail}"
    return None


def _as_level(level: TrustLevel | str) -> TrustLevel:
    if isinstance(level, TrustLevel):
        return level
    try:
        return TrustLevel(level)
    except ValueError:
        return trust_of_writer(level)
