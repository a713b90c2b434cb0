"""LLM consensus check: new less-trusted or suspect records judged against related trusted memories.

Runs in ``Memory.add`` between the offline guard and the commit, only when an LLM is configured and
``guard_consensus`` is on. A record is checked when the offline guard let it through but its writer is
less trusted than the user, or it scored above 0 (a "suspect"). Each checked record is shown with the
few most similar memories of its scope whose writers are at least as trusted (stored ones, and the
add's own unchecked records); all checked records of one add go to the model in ONE call, quoted as
data inside ``<records>``. A record judged to contradict them or to steer the assistant, with enough
confidence, is quarantined. A failed call changes nothing: the records keep the offline verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC
from enum import StrEnum
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from engram.errors import LLMError
from engram.guard.screen import Verdict
from engram.llm import prompts
from engram.llm.base import LLM, UsageLog
from engram.models import MemoryItem, MemoryStatus
from engram.store.base import ListQuery, Store
from engram.trust import TrustLevel, trust_level_weight, trust_of_writer

#: Most records one add sends to the model; the most suspicious are chosen first.
MAX_RECORDS = 12
#: Trusted memories shown per record, and how many nearest memories are fetched to find them.
RELATED_PER_RECORD = 5
SEARCH_POOL = 25
RECORD_CHARS = 1200
RELATED_CHARS = 300
REASON_CHARS = 200


class ConsensusLabel(StrEnum):
    CONTRADICTS = "contradicts"
    STEERING = "steering"
    CONSISTENT = "consistent"


_LABEL_ALIASES: dict[str, ConsensusLabel] = {
    "a": ConsensusLabel.CONTRADICTS, "contradiction": ConsensusLabel.CONTRADICTS,
    "contradictory": ConsensusLabel.CONTRADICTS, "contradict": ConsensusLabel.CONTRADICTS,
    "b": ConsensusLabel.STEERING, "steer": ConsensusLabel.STEERING, "steers": ConsensusLabel.STEERING,
    "c": ConsensusLabel.CONSISTENT, "ok": ConsensusLabel.CONSISTENT,
}


class ConsensusVerdict(BaseModel):
    """The model's judgement of one record, validated."""

    model_config = ConfigDict(extra="ignore")

    label: ConsensusLabel
    confidence: float = Field(ge=0, le=1)
    reason: str = Field(default="", json_schema_extra={"maxLength": REASON_CHARS})

    @field_validator("label", mode="before")
    @classmethod
    def _known_label(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip().strip("()").lower()
        return _LABEL_ALIASES.get(text, text)

    @field_validator("confidence", mode="before")
    @classmethod
    def _clamped(cls, value: Any) -> Any:
        try:
            return min(1.0, max(0.0, float(value)))
        except (TypeError, ValueError):
            return value

    @field_validator("reason", mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return "" if value is None else " ".join(str(value).split())[:REASON_CHARS]

    def flags(self, min_confidence: float) -> bool:
        """Whether this judgement quarantines the record."""
        return self.label != ConsensusLabel.CONSISTENT and self.confidence >= min_confidence


class RawJudgement(ConsensusVerdict):
    record: str

    @field_validator("record", mode="before")
    @classmethod
    def _number_to_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ConsensusOutput(BaseModel):
    """The JSON object the consensus prompt asks for."""

    judgements: list[RawJudgement] = Field(json_schema_extra={"maxItems": MAX_RECORDS})


@dataclass
class ConsensusOutcome:
    """The add's memories after the check (flagged ones quarantined) and notes for the response."""

    memories: list[MemoryItem]
    notes: list[str] = field(default_factory=list)


def needs_check(verdict: Verdict) -> bool:
    """Whether a record the offline guard judged ``verdict`` goes to the consensus check."""
    less_trusted = trust_level_weight(verdict.trust) < trust_level_weight(TrustLevel.USER)
    return not verdict.quarantine and (less_trusted or verdict.score > 0)


def consensus_check(llm: LLM, store: Store, memories: Sequence[MemoryItem], verdicts: Sequence[Verdict],
                    vectors: dict[str, np.ndarray], *, min_confidence: float,
                    usage: UsageLog | None = None) -> ConsensusOutcome:
    """Check the records of one add (``memories`` with their offline ``verdicts``) with one LLM call."""
    qualified = [index for index, verdict in enumerate(verdicts) if needs_check(verdict)]
    if not qualified:
        return ConsensusOutcome(list(memories))
    notes = []
    order = sorted(qualified, key=lambda i: (-verdicts[i].score, trust_level_weight(verdicts[i].trust), i))
    chosen = order[:MAX_RECORDS]
    chosen.sort()
    if len(qualified) > len(chosen):
        notes.append(f"consensus check covered {len(chosen)} of {len(qualified)} records that qualified; "
                     "the rest keep the offline guard's verdict")
    trusted_new = [(memory, vectors[memory.id]) for memory, verdict in zip(memories, verdicts, strict=True)
                   if not verdict.quarantine and not needs_check(verdict) and memory.id in vectors]
    related = [related_trusted(store, memories[i], vectors.get(memories[i].id), trusted_new) for i in chosen]
    try:
        judged = judge(llm, [memories[i] for i in chosen], related, usage=usage)
    except LLMError as exc:
        notes.append(f"consensus check skipped, records keep the offline guard's verdict: {exc.message}")
        return ConsensusOutcome(list(memories), notes)
    updated = list(memories)
    for position, index in enumerate(chosen):
        verdict = judged.get(position)
        if verdict is not None and verdict.flags(min_confidence):
            updated[index] = quarantined(memories[index], verdicts[index], verdict)
    missing = len(chosen) - len(judged)
    if missing:
        notes.append(f"consensus check gave no judgement for {missing} record(s); they keep the offline verdict")
    return ConsensusOutcome(updated, notes)


def related_trusted(store: Store, memory: MemoryItem, vector: np.ndarray | None,
                    new_trusted: Sequence[tuple[MemoryItem, np.ndarray]] = ()) -> list[MemoryItem]:
    """The memories of ``memory``'s scope most similar to it (by ``vector``) whose writers are at least as
    trusted: current stored ones (not quarantined, not superseded) and ``new_trusted`` of the same add."""
    if vector is None:
        return []
    floor = trust_level_weight(trust_of_writer(memory.writer))
    found = store.vector_search(vector, ListQuery(scope=memory.scope, limit=SEARCH_POOL, include_invalid=False))
    scores = {candidate.memory_id: candidate.score for candidate in found}
    pool = [(scores[item.id], item) for item in store.get_memories(list(scores))]
    pool += [(float(np.dot(vector, other_vector)), other) for other, other_vector in new_trusted
             if other.id != memory.id]
    trusted = [(score, item) for score, item in pool if trust_level_weight(trust_of_writer(item.writer)) >= floor]
    trusted.sort(key=lambda pair: -pair[0])
    return [item for _, item in trusted[:RELATED_PER_RECORD]]


def judge(llm: LLM, records: Sequence[MemoryItem], related: Sequence[Sequence[MemoryItem]], *,
          usage: UsageLog | None = None) -> dict[int, ConsensusVerdict]:
    """One LLM call judging ``records`` (each with its ``related`` trusted memories), keyed by position.

    Records the model skipped are absent. Raises ``LLMError`` when the call fails."""
    blocks: list[str] = []
    for number, (record, trusted) in enumerate(zip(records, related, strict=True), start=1):
        blocks.append(f"[r{number}] {_line(record, RECORD_CHARS)}")
        blocks.extend(f"    [t{rank}] {_line(memory, RELATED_CHARS)}" for rank, memory in enumerate(trusted, 1))
        if not trusted:
            blocks.append("    (no related trusted memories)")
    output, _ = llm.complete_model(prompts.consensus_messages(blocks), ConsensusOutput, name="consensus",
                                   usage=usage)
    verdicts: dict[int, ConsensusVerdict] = {}
    for raw in output.judgements:
        position = prompts.label_position(raw.record, "r", len(records))
        if position is not None and position not in verdicts:
            verdicts[position] = ConsensusVerdict(label=raw.label, confidence=raw.confidence, reason=raw.reason)
    return verdicts


def quarantined(memory: MemoryItem, verdict: Verdict, consensus: ConsensusVerdict) -> MemoryItem:
    """``memory`` quarantined on the consensus check's word, the offline verdict kept beside it."""
    guard = {**verdict.to_dict(), "quarantine": True,
             "reasons": [*verdict.reasons, f"consensus:{consensus.label.value}"],
             "consensus": consensus.model_dump(mode="json")}
    return memory.model_copy(update={"status": MemoryStatus.QUARANTINED.value,
                                     "metadata": {**memory.metadata, "guard": guard}})


def _line(memory: MemoryItem, limit: int) -> str:
    moment = (memory.valid_from or memory.created_at).astimezone(UTC)
    text = memory.memory if len(memory.memory) <= limit else (
        f"{memory.memory[:limit // 2]} [...] {memory.memory[-(limit // 2):]}")
    return f"({prompts.quote(memory.writer)}, {moment:%Y-%m-%d}) {prompts.quote(text)}"
