"""Feedback (a memory marked useful or not) and forgetting (weak memories archived), as store changes.

Both are recorded in the memory's history: ``FEEDBACK`` events carry ``{"useful", "note", "given_by"}``
and ``ARCHIVE`` events the strength that sent a memory to the archive. Nothing is ever deleted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from engram.learning.strength import NOT_USEFUL_PENALTY, USEFUL_USES, strength_of, strength_report
from engram.models import HistoryEvent, HistoryEventType, MemoryItem, MemoryStatus, Scope
from engram.store.base import ChangeSet, ListQuery, Store

#: Memories read per page while looking for weak ones.
PAGE = 1000


def feedback_change(memory: MemoryItem, *, useful: bool, note: str | None, given_by: str | None,
                    now: datetime) -> ChangeSet:
    """The change one feedback signal makes: uses up (and last use now) or down, an archived memory marked
    useful restored to active, and a ``FEEDBACK`` history event saying who gave it and why."""
    restored = useful and memory.status == MemoryStatus.ARCHIVED.value
    update: dict[str, object] = (
        {"access_count": memory.access_count + USEFUL_USES, "last_accessed_at": now} if useful
        else {"access_count": max(0, memory.access_count - NOT_USEFUL_PENALTY)})
    if restored:
        update["status"] = MemoryStatus.ACTIVE.value
    changed = memory.model_copy(update=update)
    event = HistoryEvent(
        memory_id=memory.id, event=HistoryEventType.FEEDBACK, old_memory=memory.memory, new_memory=memory.memory,
        created_at=now, actor="feedback", user_id=memory.user_id, agent_id=memory.agent_id, run_id=memory.run_id,
        metadata={"useful": useful, "note": note, "given_by": given_by, "restored": restored,
                  "strength": round(strength_of(changed, now), 6)})
    return ChangeSet(memories=[changed], history=[event])


def recall_change(memories: list[MemoryItem], *, now: datetime) -> ChangeSet:
    """Archived memories that a search returned and recorded as used (a recipe with ``reinforce``) come back:
    status active again, with an UPDATE history event saying so."""
    archived = [memory for memory in memories if memory.status == MemoryStatus.ARCHIVED.value]
    return ChangeSet(
        memories=[memory.model_copy(update={"status": MemoryStatus.ACTIVE.value}) for memory in archived],
        history=[HistoryEvent(memory_id=m.id, event=HistoryEventType.UPDATE, old_memory=m.memory, new_memory=m.memory,
                              created_at=now, actor="recall", user_id=m.user_id, agent_id=m.agent_id,
                              run_id=m.run_id, metadata={"status": MemoryStatus.ACTIVE.value, "restored": True})
                 for m in archived])


@dataclass
class ForgetPlan:
    """The weak memories of a scope and the change that archives them."""

    archived: list[dict[str, object]] = field(default_factory=list)
    examined: int = 0
    change: ChangeSet = field(default_factory=ChangeSet)


def active_memories(store: Store, scope: Scope) -> Iterator[MemoryItem]:
    """Every active memory of ``scope`` (all scopes when it is empty), page by page."""
    offset = 0
    while True:
        page = store.list_memories(ListQuery(scope=scope, limit=PAGE, offset=offset))
        yield from page
        if len(page) < PAGE:
            return
        offset += PAGE


def plan_forgetting(store: Store, scope: Scope, *, threshold: float, now: datetime) -> ForgetPlan:
    """Which active memories are weaker than ``threshold`` at ``now``, and the change that archives them."""
    plan = ForgetPlan()
    for memory in active_memories(store, scope):
        plan.examined += 1
        strength = strength_of(memory, now)
        if strength >= threshold:
            continue
        plan.archived.append({**strength_report(memory, now), "memory": memory.memory, "user_id": memory.user_id,
                              "agent_id": memory.agent_id, "run_id": memory.run_id})
        plan.change.memories.append(memory.model_copy(update={"status": MemoryStatus.ARCHIVED.value}))
        plan.change.history.append(HistoryEvent(
            memory_id=memory.id, event=HistoryEventType.ARCHIVE, old_memory=memory.memory,
            new_memory=memory.memory, created_at=now, actor="forget", user_id=memory.user_id,
            agent_id=memory.agent_id, run_id=memory.run_id,
            metadata={"status": MemoryStatus.ARCHIVED.value, "strength": round(strength, 6),
                      "threshold": threshold}))
    return plan
