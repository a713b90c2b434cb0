"""Consolidation: new facts against existing memories -> ADD / UPDATE / INVALIDATE / NOOP.

A pure step: the caller retrieves candidates and applies the decisions. Exact and near
duplicates are settled offline first (no LLM call); the remaining facts that have candidates go
to the model in ONE batched call; facts without candidates are ADDs without any call. Decisions
are validated: a target outside that fact's candidates, or one already changed by another fact of
the same call, turns the decision into an ADD, so no memory outside the candidates is touched."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC
from enum import StrEnum
from typing import Any, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from engram.errors import ValidationError
from engram.llm import prompts
from engram.llm.base import LLM, UsageLog
from engram.models import MemoryItem
from engram.write.extract import ExtractedFact, normalize_fact_text

DEFAULT_NEAR_DUPLICATE_THRESHOLD = 0.95
_NEGATIONS = frozenset({"not", "no", "never", "nothing", "nobody", "none", "neither", "nor", "cannot",
                        "without"})
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\b[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}(?:/\S*)?")


class Action(StrEnum):
    ADD = "ADD"
    UPDATE = "UPDATE"
    INVALIDATE = "INVALIDATE"
    NOOP = "NOOP"


class Decision(BaseModel):
    """What to do with ``new_facts[fact_index]``.

    ADD: store ``text`` as a new memory. UPDATE: write ``text`` as a new version of ``target_id``
    (the old version is kept, closed). INVALIDATE: close ``target_id`` and store ``text`` as a new
    memory. NOOP: ``target_id`` already says it; only the new sources may be attached."""

    fact_index: int
    action: Action
    target_id: str | None = None
    text: str
    reason: str = ""
    decided_by: str = "llm"


class RawDecision(BaseModel):
    model_config = ConfigDict(extra="ignore")

    fact: str
    action: str = Field(json_schema_extra={"enum": [action.value for action in Action]})
    target: str | None = None
    text: str | None = None
    reason: str | None = None

    @field_validator("fact", "target", mode="before")
    @classmethod
    def _number_to_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ConsolidationOutput(BaseModel):
    """The JSON object the consolidation prompt asks for."""

    decisions: list[RawDecision] = Field(default_factory=list)


class DuplicateMatch(NamedTuple):
    memory: MemoryItem
    exact: bool
    similarity: float


def exact_or_near_duplicate(
    fact_text: str,
    candidates: Sequence[MemoryItem],
    vectors: Mapping[str, np.ndarray] | None = None,
    *,
    fact_vector: np.ndarray | None = None,
    threshold: float = DEFAULT_NEAR_DUPLICATE_THRESHOLD,
) -> DuplicateMatch | None:
    """The candidate that already says ``fact_text``: same normalised text, or cosine similarity
    of unit vectors >= ``threshold`` with the same numbers and the same negation. No LLM call."""
    wanted = normalize_fact_text(fact_text)
    for memory in candidates:
        if normalize_fact_text(memory.memory) == wanted:
            return DuplicateMatch(memory, True, 1.0)
    if fact_vector is None or not vectors:
        return None
    best: DuplicateMatch | None = None
    signature = _meaning_signature(fact_text)
    for memory in candidates:
        vector = vectors.get(memory.id)
        if vector is None:
            continue
        similarity = float(np.dot(np.asarray(fact_vector, dtype=np.float32),
                                  np.asarray(vector, dtype=np.float32)))
        if (similarity >= threshold and _meaning_signature(memory.memory) == signature
                and (best is None or similarity > best.similarity)):
            best = DuplicateMatch(memory, False, similarity)
    return best


def decide(
    llm: LLM,
    new_facts: Sequence[ExtractedFact | str],
    candidates: Mapping[int, Sequence[MemoryItem]],
    *,
    fact_vectors: Sequence[np.ndarray] | None = None,
    candidate_vectors: Mapping[str, np.ndarray] | None = None,
    near_threshold: float = DEFAULT_NEAR_DUPLICATE_THRESHOLD,
    usage: UsageLog | None = None,
) -> list[Decision]:
    """One decision per fact, in order; at most one LLM call. Raises ``LLMError`` if that call fails.

    ``candidates`` maps a fact's index to the existing memories it may touch; ``fact_vectors``
    (aligned with ``new_facts``) and ``candidate_vectors`` enable the near-duplicate pre-pass."""
    if fact_vectors is not None and len(fact_vectors) != len(new_facts):
        raise ValidationError("must have one vector per fact", field="fact_vectors")
    texts = [fact.text if isinstance(fact, ExtractedFact) else fact for fact in new_facts]
    decisions: dict[int, Decision] = {}
    pending: dict[int, list[MemoryItem]] = {}
    for index, text in enumerate(texts):
        options = list({memory.id: memory for memory in candidates.get(index, [])}.values())
        if not options:
            decisions[index] = Decision(fact_index=index, action=Action.ADD, text=text,
                                        decided_by="no_candidates")
            continue
        match = exact_or_near_duplicate(text, options, candidate_vectors,
                                        fact_vector=None if fact_vectors is None else fact_vectors[index],
                                        threshold=near_threshold)
        if match is not None:
            how = "exact_duplicate" if match.exact else "near_duplicate"
            decisions[index] = Decision(fact_index=index, action=Action.NOOP, target_id=match.memory.id,
                                        text=text, reason=f"similarity {match.similarity:.3f}",
                                        decided_by=how)
        else:
            pending[index] = options
    if pending:
        decisions.update(_ask_model(llm, new_facts, texts, pending, usage))
    return [decisions[index] for index in range(len(texts))]


def _ask_model(llm: LLM, new_facts: Sequence[ExtractedFact | str], texts: list[str],
               pending: dict[int, list[MemoryItem]], usage: UsageLog | None) -> dict[int, Decision]:
    labels: dict[str, str] = {}
    blocks: list[str] = []
    for index, options in pending.items():
        fact = new_facts[index]
        said = fact.observed_at.astimezone(UTC) if isinstance(fact, ExtractedFact) else None
        when = f" (said {said:%Y-%m-%d})" if said else ""
        blocks.append(f"[f{index + 1}]{when} {prompts.quote(texts[index])}")
        for memory in options:
            label = labels.setdefault(memory.id, f"c{len(labels) + 1}")
            since = (memory.valid_from or memory.created_at).astimezone(UTC)
            blocks.append(f"    [{label}] (since {since:%Y-%m-%d}) {prompts.quote(memory.memory)}")
    output, _ = llm.complete_model(prompts.consolidation_messages(blocks), ConsolidationOutput,
                                   name="consolidate", usage=usage)
    by_label = {label: memory_id for memory_id, label in labels.items()}
    decided: dict[int, Decision] = {}
    claimed: dict[str, int] = {}
    for raw in output.decisions:
        fact_index = prompts.label_position(raw.fact, "f")
        if fact_index is None or fact_index not in pending or fact_index in decided:
            continue
        decision = _checked(raw, fact_index, texts[fact_index], pending[fact_index], by_label, claimed)
        if decision is not None:
            decided[fact_index] = decision
            if decision.action in (Action.UPDATE, Action.INVALIDATE) and decision.target_id:
                claimed[decision.target_id] = fact_index
    for index in pending:
        decided.setdefault(index, Decision(fact_index=index, action=Action.ADD, text=texts[index],
                                           reason="the model gave no decision", decided_by="fallback"))
    return decided


def _checked(raw: RawDecision, index: int, text: str, options: list[MemoryItem], by_label: dict[str, str],
             claimed: dict[str, int]) -> Decision | None:
    """The model's decision made safe, or None when its action is not one we know."""
    try:
        action = Action(raw.action.strip().upper())
    except ValueError:
        return None
    reason = (raw.reason or "").strip()
    if action is Action.ADD:
        return Decision(fact_index=index, action=action, text=text, reason=reason)
    target = _target_id(raw.target, options, by_label)
    if target is None:
        return Decision(fact_index=index, action=Action.ADD, text=text, decided_by="fallback",
                        reason=f"{action.value} named an unknown target {raw.target!r}")
    if action is not Action.NOOP and target in claimed:
        return Decision(fact_index=index, action=Action.ADD, text=text, decided_by="fallback",
                        reason=f"target already changed by fact {claimed[target]}")
    new_text = " ".join((raw.text or "").split()) if action is Action.UPDATE else ""
    return Decision(fact_index=index, action=action, target_id=target, text=new_text or text, reason=reason)


def _target_id(target: str | None, options: list[MemoryItem], by_label: dict[str, str]) -> str | None:
    if not target:
        return None
    allowed = {memory.id for memory in options}
    reference = target.strip()
    if reference in allowed:
        return reference
    position = prompts.label_position(reference, "c")
    labelled = by_label.get(f"c{position + 1}") if position is not None else None
    return labelled if labelled in allowed else None


def _meaning_signature(text: str) -> tuple[frozenset[str], frozenset[str], bool]:
    """Numbers, addresses (e-mail, domain, URL) and negation parity: near-identical vectors with
    different ones are not duplicates."""
    lowered = text.casefold()
    words = re.findall(r"[\w']+", lowered)
    negations = sum(1 for word in words if word in _NEGATIONS or word.endswith("n't"))
    return frozenset(_NUMBER.findall(lowered)), frozenset(_ADDRESS.findall(lowered)), negations % 2 == 1
