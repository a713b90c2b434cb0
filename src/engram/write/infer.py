"""Write path with an LLM: stored episodes in, consolidated facts out.

Runs after the episodes (and their verbatim memories) are committed, so no LLM failure can lose what
was said. Steps: extract facts (one call per batch) -> find candidate facts already stored -> decide
ADD / UPDATE / INVALIDATE / NOOP (offline duplicate check first, then one batched call) -> commit the
decisions, the fact-augmented keys of the source turns, and the episodes' extraction state together.

A fact is written by the least trusted writer among its source messages. A fact citing a message whose
verbatim memory is quarantined, or one the guard flags, is stored quarantined without consolidation: it
never updates or invalidates another memory and adds no keys to the source turns. A fact never
supersedes a memory written by a more trusted writer: both are kept, the new one marked
``conflicts_with`` (trust-weighted ranking then prefers the trusted one)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from engram.embed.base import Embedder
from engram.errors import LLMError
from engram.llm.base import LLM, UsageLog
from engram.models import (
    AddEvent,
    Episode,
    HistoryEvent,
    HistoryEventType,
    MemoryItem,
    MemoryKind,
    MemoryStatus,
    Scope,
    SourceRef,
    content_hash,
)
from engram.read.fuse import reciprocal_rank_fusion
from engram.store.base import ChangeSet, ListQuery, Store
from engram.terms import query_terms
from engram.timeutil import utcnow
from engram.trust import derive_provenance, trust_level_weight
from engram.write.consolidate import Action, Decision, decide, exact_or_near_duplicate
from engram.write.extract import ExtractedFact, extract_facts
from engram.write.supersede import close_superseded
from engram.write.verbatim import source_ref

if TYPE_CHECKING:
    from engram.guard import Guard

CANDIDATES_PER_FACT = 5
FACT_KINDS = ("fact", "preference", "plan", "event")


@dataclass(frozen=True)
class FactGuard:
    """A fact's provenance, and the ``metadata["guard"]`` entry when it must be quarantined."""

    writer: str
    quarantine: dict[str, Any] | None = None


@dataclass
class InferOutcome:
    """What the LLM path did: events for the add response, episodes left pending, notes."""

    events: list[AddEvent] = field(default_factory=list)
    pending_episode_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fact_candidates(store: Store, scope: Scope, texts: Sequence[str],
                    vectors: np.ndarray) -> dict[int, list[MemoryItem]]:
    """Per new fact, the stored current facts most like it (hybrid lexical + dense, scoped)."""
    query = ListQuery(scope=scope, include_invalid=False, kinds=FACT_KINDS, limit=CANDIDATES_PER_FACT)
    ranked: dict[int, list[str]] = {}
    for index, text in enumerate(texts):
        rankings = {"lexical": store.lexical_search(query_terms(text), query),
                    "dense": store.vector_search(vectors[index], query)}
        fused = reciprocal_rank_fusion(rankings, {"lexical": 1.0, "dense": 1.0}, 60.0)
        ranked[index] = [item.memory_id for item in fused[:CANDIDATES_PER_FACT]]
    found = {m.id: m for m in store.get_memories([i for ids in ranked.values() for i in ids])}
    return {index: [found[i] for i in ids if i in found] for index, ids in ranked.items()}


def guard_facts(store: Store, guard: Guard | None, facts: Sequence[ExtractedFact],
                episodes: dict[str, Episode]) -> list[FactGuard]:
    """Per fact, its writer (the least trusted of its source messages) and whether it is quarantined:
    because a source's verbatim memory is, or (with a ``guard``) because its own text is suspicious."""
    held: dict[str, MemoryItem] = {}
    cited = list({episode_id for fact in facts for episode_id in fact.source_episode_ids})
    for turn in store.memories_citing(cited, kind=MemoryKind.EPISODE.value):
        if turn.status == MemoryStatus.QUARANTINED.value:
            held.update({episode_id: turn for episode_id in turn.source_ids})
    checked = []
    for fact in facts:
        sources = [episodes[i] for i in fact.source_episode_ids if i in episodes]
        weakest = min(sources, key=lambda e: derive_provenance(e.role, e.metadata, e.name).weight, default=None)
        role, metadata, name = (weakest.role, weakest.metadata, weakest.name) if weakest else ("unknown", {}, None)
        provenance = derive_provenance(role, metadata, name)
        turns = list({held[i].id: held[i] for i in fact.source_episode_ids if i in held}.values())
        entry: dict[str, Any] | None = None
        if turns:
            entry = {"score": max(float(turn.metadata.get("guard", {}).get("score", 0.0)) for turn in turns),
                     "reasons": ["source_quarantined"], "quarantine": True, "trust": provenance.trust.value,
                     "writer": provenance.writer, "source_memory_ids": [turn.id for turn in turns]}
        elif guard is not None:
            verdict = guard.screen(fact.text, role=role, metadata=metadata, name=name)
            entry = verdict.to_dict() if verdict.quarantine else None
        checked.append(FactGuard(writer=provenance.writer, quarantine=entry))
    return checked


def infer(store: Store, embedder: Embedder, llm: LLM, episodes: list[Episode], scope: Scope,
          usage: UsageLog, *, guard: Guard | None = None, instructions: str | None = None) -> InferOutcome:
    """Extract, consolidate and commit facts for already-stored ``episodes`` (screened by ``guard``;
    ``instructions`` are added to the extraction prompt)."""
    outcome = InferOutcome()
    extraction = extract_facts(llm, episodes, usage=usage, instructions=instructions)
    outcome.pending_episode_ids = list(extraction.failed_episode_ids)
    if extraction.errors:
        outcome.notes.append(f"extraction failed for {len(extraction.failed_episode_ids)} message(s), kept as "
                             f"pending for `engram maintain`: {extraction.errors[0]}")
    facts = extraction.facts
    done = [episode_id for episode_id in extraction.processed_episode_ids
            if episode_id not in set(extraction.failed_episode_ids)]
    if not facts:
        store.apply(ChangeSet(update_episode_extraction={episode_id: "done" for episode_id in done}))
        return outcome
    texts = [fact.text for fact in facts]
    vectors = embedder.embed(texts)
    by_id = {episode.id: episode for episode in episodes}
    guards = guard_facts(store, guard, facts, by_id)
    clear = [index for index, checked in enumerate(guards) if checked.quarantine is None]
    candidates = fact_candidates(store, scope, [texts[i] for i in clear], vectors[clear])
    candidate_vectors = store.get_vectors([m.id for ms in candidates.values() for m in ms])
    try:
        decided = decide(llm, [facts[i] for i in clear], candidates, fact_vectors=list(vectors[clear]),
                         candidate_vectors=candidate_vectors, usage=usage)
    except LLMError as exc:
        outcome.pending_episode_ids = sorted({*outcome.pending_episode_ids, *done})
        outcome.notes.append(f"consolidation failed, facts not stored; messages kept as pending: {exc}")
        return outcome
    decisions = [decision.model_copy(update={"fact_index": clear[decision.fact_index]}) for decision in decided]
    decisions += [Decision(fact_index=index, action=Action.ADD, text=texts[index], decided_by="guard")
                  for index, checked in enumerate(guards) if checked.quarantine is not None]
    decisions.sort(key=lambda decision: decision.fact_index)
    with store.locked(scope):
        changes = _changes(store, facts, decisions, vectors, by_id, scope, outcome, guards)
        _expire_with_sources(store, changes, list(by_id))
        changes.update_episode_extraction = {episode_id: "done" for episode_id in done}
        store.apply(changes)
    return outcome


def _changes(store: Store, facts: list[ExtractedFact], decisions: list[Decision], vectors: np.ndarray,
             episodes: dict[str, Episode], scope: Scope, outcome: InferOutcome, guards: list[FactGuard]) -> ChangeSet:
    changes = ChangeSet()
    now = utcnow()
    for decision in decisions:
        fact = facts[decision.fact_index]
        checked = guards[decision.fact_index]
        if checked.quarantine is None:
            decision = _recheck_duplicates(store, scope, fact, decision, vectors[decision.fact_index])
        sources = [source_ref(episodes[i]) for i in fact.source_episode_ids if i in episodes]
        found = store.get_memories([decision.target_id]) if decision.target_id else []
        target = found[0] if found else None
        if decision.action == Action.NOOP and target is not None:
            known = set(target.source_ids)
            extra = [source for source in sources if source.id not in known]
            if extra:
                changes.memories.append(target.model_copy(update={"sources": [*target.sources, *extra],
                                                                   "updated_at": now}))
            outcome.events.append(AddEvent(id=target.id, memory=target.memory, event=HistoryEventType.NOOP,
                                           kind=target.kind, episode_ids=fact.source_episode_ids))
            continue
        created = _fact_memory(fact, decision.text, scope, sources, now, checked)
        if target is not None and decision.action in (Action.UPDATE, Action.INVALIDATE) and \
                trust_level_weight(created.trust) < trust_level_weight(target.trust):
            created.metadata["conflicts_with"] = target.id
            outcome.notes.append(f"a {created.trust} fact did not supersede {target.trust} memory {target.id}; "
                                 "both are kept (marked conflicts_with)")
            target = None
        if target is not None and decision.action in (Action.UPDATE, Action.INVALIDATE):
            event = HistoryEventType.UPDATE if decision.action == Action.UPDATE else HistoryEventType.INVALIDATE
            closed, created, closing = close_superseded(target, created, event=event, actor="infer",
                                                        reason=decision.reason)
            changes.memories.append(closed)
            changes.history.append(closing)
            outcome.events.append(AddEvent(id=created.id, memory=created.memory, event=event, kind=created.kind,
                                           episode_ids=created.source_ids, previous_memory=target.memory))
        else:
            outcome.events.append(AddEvent(id=created.id, memory=created.memory, event=HistoryEventType.ADD,
                                           kind=created.kind, episode_ids=created.source_ids, status=created.status))
        changes.memories.append(created)
        changes.vectors[created.id] = vectors[decision.fact_index]
        changes.history.append(HistoryEvent(memory_id=created.id, event=HistoryEventType.ADD,
                                            new_memory=created.memory, actor="infer", user_id=scope.user_id,
                                            agent_id=scope.agent_id, run_id=scope.run_id))
    clear = [fact for fact, checked in zip(facts, guards, strict=True) if checked.quarantine is None]
    changes.memories.extend(_augmented_turns(store, clear, episodes))
    return changes


def _expire_with_sources(store: Store, changes: ChangeSet, episode_ids: list[str]) -> None:
    """A new fact drawn from messages that expire (``add(expiration_date=...)``) expires with the first of
    them: its ``valid_to`` is the earliest one among the verbatim memories of its source messages."""
    ends = {source: turn.valid_to for turn in store.memories_citing(episode_ids, kind=MemoryKind.EPISODE.value)
            if turn.valid_to is not None for source in turn.source_ids}
    if not ends:
        return
    for index, memory in enumerate(changes.memories):
        expiring = [ends[source] for source in memory.source_ids if source in ends]
        if memory.id in changes.vectors and memory.valid_to is None and expiring:
            changes.memories[index] = memory.model_copy(update={"valid_to": min(expiring)})


def _recheck_duplicates(store: Store, scope: Scope, fact: ExtractedFact, decision: Decision,
                        vector: np.ndarray) -> Decision:
    """Inside the scope lock: an ADD whose fact another writer stored meanwhile becomes a NOOP."""
    if decision.action != Action.ADD:
        return decision
    current = fact_candidates(store, scope, [decision.text], vector[None, :]).get(0, [])
    match = exact_or_near_duplicate(decision.text, current, store.get_vectors([m.id for m in current]),
                                    fact_vector=vector)
    if match is None:
        return decision
    return decision.model_copy(update={"action": Action.NOOP, "target_id": match.memory.id,
                                       "decided_by": "concurrent_duplicate"})


def _fact_memory(fact: ExtractedFact, text: str, scope: Scope, sources: list[SourceRef], now: datetime,
                 checked: FactGuard) -> MemoryItem:
    valid_from = (datetime(fact.refers_to.year, fact.refers_to.month, fact.refers_to.day, tzinfo=UTC)
                  if fact.refers_to else fact.observed_at)
    metadata: dict[str, Any] = {
        "fact_kind": fact.kind, "extracted_by": "llm", **({"speaker": fact.speaker} if fact.speaker else {}),
        **({"time_expression": fact.time_expression} if fact.time_expression else {}),
        **({"guard": checked.quarantine} if checked.quarantine else {})}
    kind = fact.kind if fact.kind in FACT_KINDS else MemoryKind.FACT.value
    status = MemoryStatus.QUARANTINED if checked.quarantine else MemoryStatus.ACTIVE
    return MemoryItem(memory=text, kind=kind, user_id=scope.user_id, agent_id=scope.agent_id, run_id=scope.run_id,
                      metadata=metadata, sources=sources, valid_from=valid_from, created_at=now, updated_at=now,
                      hash=content_hash(text), writer=checked.writer, index_keys=" ".join(fact.keys),
                      status=status.value)


def _augmented_turns(store: Store, facts: list[ExtractedFact], episodes: dict[str, Episode]) -> list[MemoryItem]:
    """Fact-augmented keys: each verbatim turn memory is also indexed under the facts drawn from it."""
    extra: dict[str, list[str]] = {}
    for fact in facts:
        for episode_id in fact.source_episode_ids:
            extra.setdefault(episode_id, []).extend([fact.text, *fact.keys])
    turns = store.memories_citing(list(extra), kind=MemoryKind.EPISODE.value) if extra else []
    updated = []
    for turn in turns:
        keys = [key for episode_id in turn.source_ids for key in extra.get(episode_id, [])]
        addition = " ".join(key for key in dict.fromkeys(keys) if key not in turn.index_keys)
        if addition:
            updated.append(turn.model_copy(update={"index_keys": f"{turn.index_keys} {addition}".strip()}))
    return updated
