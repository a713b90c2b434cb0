"""Write path, supersession: the current fact over the stale one, offline.

When a new memory states an attribute of a subject that a stored memory of the same scope states with
another value ("I live in Berlin" in 2023, "We finally moved to Lisbon" in 2024; ``engram.changes.slots``),
the older one is closed: ``valid_to`` = the newer one's event time, ``metadata.superseded_by`` names the
newer one, which lists it in ``metadata.supersedes``, and history records an INVALIDATE. Both stay stored
and cited; search prefers the current one for questions about the present and the one valid then for
``as_of``. The LLM path's UPDATE / INVALIDATE (``engram.write.infer``) closes facts through the same
``close_superseded``. A memory never supersedes one written by a more trusted writer (both are kept, the
newer marked ``conflicts_with``), and deleting the newer memory reopens the older one."""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.resources import files

import numpy as np

from engram.changes.cues import CHANGE, NOW, pair_features
from engram.changes.pairs import MIN_SIMILARITY, speaker_key
from engram.changes.slots import SLOT_KEYS, Statement, stated_slots, statements
from engram.filters import Condition
from engram.models import CONVERSATION_GAP, HistoryEvent, HistoryEventType, MemoryItem, MemoryStatus, Scope
from engram.store.base import ListQuery, Store
from engram.terms import query_terms
from engram.timeutil import utcnow
from engram.trust import trust_level_weight

#: The memory column listing its attribute statements as ``subject|attribute=value``.
ATTRIBUTES = "attributes"
#: Most stored memories compared per attribute statement.
MAX_CANDIDATES = 50
#: Stored turns sharing the most words with a new turn (BM25) considered as what it may replace.
NEAREST_TURNS = 20
#: The scope's latest turns considered too (facts stated with other words, told not long ago).
RECENT_TURNS = 50


def load_change_model() -> tuple[dict[str, float], float]:
    """The fitted change model: weights of ``engram.changes.cues.FEATURES`` and the bias, and the
    probability from which a pair is a supersession, written with their provenance to
    ``engram/data/models/change_model.json`` by ``engram bench fit-updates``."""
    data = json.loads((files("engram") / "data" / "models" / "change_model.json").read_text(encoding="utf-8"))
    return {name: float(value) for name, value in data["model"].items()}, float(data["threshold"])


CHANGE_MODEL, REPLACE_THRESHOLD = load_change_model()


@dataclass
class SupersessionPlan:
    """The new memories (with their statements and links) and the stored memories they close."""

    new_memories: list[MemoryItem]
    closed: list[MemoryItem] = field(default_factory=list)
    history: list[HistoryEvent] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class StoredTurns:
    """The store as one supersession check reads it: the store does not change while a batch is checked,
    so each list query, row and vector is read once per batch, not once per new turn."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lists: dict[tuple[object, ...], list[str]] = {}
        self._rows: dict[str, MemoryItem] = {}
        self._vectors: dict[str, np.ndarray] = {}

    def listed(self, query: ListQuery, tag: str) -> list[str]:
        """The ids ``store.list_memories(query)`` returns, ``tag`` naming the query within the batch."""
        key = (tag, *query.scope.items())
        if key not in self._lists:
            listed = self.store.list_memories(query)
            self._rows.update((item.id, item) for item in listed)
            self._lists[key] = [item.id for item in listed]
        return self._lists[key]

    def memories(self, ids: Sequence[str]) -> list[MemoryItem]:
        """The stored memories of ``ids`` (unknown ones left out)."""
        missing = [memory_id for memory_id in ids if memory_id not in self._rows]
        if missing:
            self._rows.update((item.id, item) for item in self.store.get_memories(missing))
        return [self._rows[memory_id] for memory_id in ids if memory_id in self._rows]

    def turn_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The own embeddings of the stored turns ``ids``."""
        missing = [memory_id for memory_id in ids if memory_id not in self._vectors]
        if missing:
            self._vectors.update(self.store.get_turn_vectors(missing))
        return {memory_id: self._vectors[memory_id] for memory_id in ids if memory_id in self._vectors}


def close_superseded(old: MemoryItem, new: MemoryItem, *, event: HistoryEventType, actor: str,
                     reason: str = "") -> tuple[MemoryItem, MemoryItem, HistoryEvent]:
    """``old`` closed at ``new``'s start (``valid_to``, ``superseded_by``), ``new`` listing it in
    ``supersedes``, and the history event recording it; the one data model of every supersession."""
    at = max(new.began_at, old.began_at)
    closed = old.model_copy(update={"valid_to": at, "updated_at": utcnow(),
                                    "metadata": {**old.metadata, "superseded_by": new.id}})
    linked = new.model_copy(update={"metadata": {**new.metadata, "supersedes": [*new.supersedes, old.id]}})
    history = HistoryEvent(memory_id=old.id, event=event, old_memory=old.memory, new_memory=new.memory,
                           actor=actor, user_id=old.user_id, agent_id=old.agent_id, run_id=old.run_id,
                           metadata={"reason": reason, "superseded_by": new.id, "valid_to": at.isoformat()})
    return closed, linked, history


def detect_supersessions(store: Store, memories: Sequence[MemoryItem],
                         turn_vectors: Mapping[str, np.ndarray]) -> SupersessionPlan:
    """Record each new turn's attribute statements (``attributes``, question words in ``index_keys``)
    and close the stored (or earlier new) turns of the same speaker that it replaces: a conflicting
    statement of the same attribute, or the fitted change model (``replacement_probability``)."""
    plan = SupersessionPlan(new_memories=[])
    stored = StoredTurns(store)
    earlier: list[MemoryItem] = []
    closed: dict[str, MemoryItem] = {}
    for memory in memories:
        if memory.status != MemoryStatus.ACTIVE.value or not memory.is_turn:
            plan.new_memories.append(memory)
            continue
        found = statements(memory.memory, speaker_key(memory))
        memory = with_statements(memory, found) if found else memory
        vector = turn_vectors.get(memory.id)
        if vector is not None and (found or may_replace(memory.memory)):
            for other in _replaced(stored, memory, found, vector, earlier, closed, turn_vectors):
                memory = _settle(plan, closed, memory, other)
        earlier.append(memory)
        plan.new_memories.append(memory)
    new_ids = {m.id for m in plan.new_memories}
    plan.closed = [item for item in closed.values() if item.id not in new_ids]
    plan.new_memories = [closed.get(m.id, m) for m in plan.new_memories]
    return plan


def may_replace(text: str) -> bool:
    """Cheap pre-check: only a turn with a change word can replace an older one without a conflicting
    attribute statement (the model gives the others a probability far below its threshold)."""
    return bool(CHANGE.search(text) or NOW.search(text))


def replacement_probability(features: Mapping[str, float], model: Mapping[str, float] | None = None) -> float:
    """``sigmoid(bias + sum(weight * feature))`` with the fitted ``CHANGE_MODEL`` (or ``model``)."""
    weights = CHANGE_MODEL if model is None else model
    linear = weights.get("bias", 0.0) + sum(weights.get(name, 0.0) * value for name, value in features.items())
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, linear))))


def reopen_superseded(store: Store, deleted: Sequence[MemoryItem],
                      doomed: Collection[str]) -> tuple[list[MemoryItem], list[HistoryEvent]]:
    """The memories that deleted ones had superseded, open again (unless they go too), with history."""
    ids = [old for memory in deleted for old in memory.supersedes if old not in doomed]
    reopened, events = [], []
    for old in store.get_memories(list(dict.fromkeys(ids))):
        if old.metadata.get("superseded_by") not in doomed:
            continue
        metadata = {key: value for key, value in old.metadata.items() if key != "superseded_by"}
        reopened.append(old.model_copy(update={"valid_to": None, "metadata": metadata, "updated_at": utcnow()}))
        events.append(HistoryEvent(memory_id=old.id, event=HistoryEventType.UPDATE, old_memory=old.memory,
                                   new_memory=old.memory, actor="supersede.reopen", user_id=old.user_id,
                                   agent_id=old.agent_id, run_id=old.run_id,
                                   metadata={"reason": "the memory that superseded it was deleted"}))
    return reopened, events


def restated(memory: MemoryItem) -> MemoryItem:
    """A turn whose text changed, with the statements of its new text (and their question words) only."""
    found = statements(memory.memory, speaker_key(memory))
    return with_statements(memory.model_copy(update={"index_keys": "", "attributes": []}), found)


def with_statements(memory: MemoryItem, found: list[Statement]) -> MemoryItem:
    """``memory`` recording the statements its text makes (``attributes``) and, when it tells them as a
    change (``may_replace``: "We finally moved to Lisbon", "I joined Stripe"), the words questions about the
    resulting state use (``index_keys``: "live", "work"). A statement of the state itself ("I live in
    Berlin") already has those words; giving it more would favour the older, plainly stated fact over the
    newer one told as a change."""
    told_as_change = may_replace(memory.memory)
    words = " ".join(dict.fromkeys(SLOT_KEYS.get(s.attribute.split(":", 1)[0], "") for s in found if told_as_change))
    keys = " ".join(part for part in (memory.index_keys, words) if part)
    return memory.model_copy(update={"attributes": [f"{s.slot}={s.value or ''}" for s in found], "index_keys": keys})


def _lookup_scope(scope: Scope) -> Scope:
    """Facts about a user hold across their runs: look them up by user (else agent, else run)."""
    if scope.user_id is not None:
        return Scope(user_id=scope.user_id)
    return Scope(agent_id=scope.agent_id) if scope.agent_id is not None else scope


def older_turns(reader: StoredTurns, memory: MemoryItem, earlier: Sequence[MemoryItem],
                closed: Mapping[str, MemoryItem], statements_found: Sequence[Statement]) -> list[MemoryItem]:
    """Current turns of the same speaker in the scope, from an earlier conversation, that share words with
    ``memory`` (BM25), are among the scope's latest turns, or state one of the same attributes; earlier
    turns of the same batch too. (Indexed queries only: no scan of the scope's vectors on a write.)"""
    scope = _lookup_scope(memory.scope)
    nearest = ListQuery(scope=scope, include_invalid=False, kinds=("episode",), limit=NEAREST_TURNS)
    ids = [candidate.memory_id for candidate in reader.store.lexical_search(query_terms(memory.memory), nearest)]
    ids += reader.listed(replace(nearest, limit=RECENT_TURNS), "recent")
    for statement in statements_found:
        query = ListQuery(scope=scope, node=Condition(ATTRIBUTES, "contains", f"{statement.slot}="),
                          include_invalid=False, limit=MAX_CANDIDATES)
        ids.extend(reader.listed(query, f"slot:{statement.slot}"))
    stored = [closed.get(m.id, m) for m in reader.memories(list(dict.fromkeys(ids)))]
    speaker = speaker_key(memory)
    return [m for m in [*stored, *(closed.get(m.id, m) for m in earlier)]
            if m.id != memory.id and m.valid_to is None and m.is_turn and speaker_key(m) == speaker
            and memory.began_at - m.began_at > CONVERSATION_GAP]


def _replaced(stored: StoredTurns, memory: MemoryItem, found: list[Statement], vector: np.ndarray,
              earlier: Sequence[MemoryItem], closed: Mapping[str, MemoryItem],
              new_vectors: Mapping[str, np.ndarray]) -> list[MemoryItem]:
    """The older turns ``memory`` replaces."""
    candidates = older_turns(stored, memory, earlier, closed, found)
    stored_vectors = stored.turn_vectors([m.id for m in candidates if m.id not in new_vectors])
    scored = []
    for other in candidates:
        other_vector = new_vectors.get(other.id, stored_vectors.get(other.id))
        similarity = float(np.dot(vector, other_vector)) if other_vector is not None else 0.0
        if similarity >= MIN_SIMILARITY or any(s.slot in stated_slots(other.attributes) for s in found):
            scored.append((similarity, other))
    best = max((similarity for similarity, _ in scored), default=0.0)
    replaced = []
    for similarity, other in scored:
        features = pair_features(other.memory, memory.memory, similarity,
                                 statements(other.memory, speaker_key(other)), found, similarity == best)
        if replacement_probability(features) >= REPLACE_THRESHOLD:
            replaced.append(other)
    return replaced


def _settle(plan: SupersessionPlan, closed: dict[str, MemoryItem], new: MemoryItem, older: MemoryItem) -> MemoryItem:
    """Close ``older`` in favour of ``new`` (unless ``older``'s writer is more trusted); return ``new``."""
    if trust_level_weight(new.trust) < trust_level_weight(older.trust):
        plan.notes.append(f"a {new.trust} memory did not supersede {older.trust} memory {older.id}; "
                          "both are kept (marked conflicts_with)")
        return new.model_copy(update={"metadata": {**new.metadata, "conflicts_with": older.id}})
    shut, linked, event = close_superseded(older, new, event=HistoryEventType.INVALIDATE, actor="supersede",
                                           reason="a newer statement of the same speaker replaces it")
    plan.history.append(event)
    closed[shut.id] = shut
    return linked
