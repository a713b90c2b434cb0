"""Operations on whole scopes: retrying pending LLM extraction (``Memory.maintain``), deleting a scope or
the memories of one that match a filter (``Memory.delete_all``), and listing scopes (``Memory.scopes``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engram.filters import FilterNode
from engram.llm.base import UsageLog
from engram.models import AddResponse, Episode, Scope
from engram.store.base import ListQuery, Store
from engram.write.pipeline import WriteContext, llm_pending, run_delete


def run_maintain(context: WriteContext, scope: Scope, limit: int) -> dict[str, Any]:
    """Run LLM extraction again for up to ``limit`` episodes left pending inside ``scope`` (empty: all)."""
    pending = context.store.list_episodes(scope, limit=limit, extraction="pending")
    by_scope: dict[Scope, list[Episode]] = {}
    for episode in pending:
        by_scope.setdefault(episode.scope, []).append(episode)
    report = AddResponse(results=[], episodes=[e.id for e in pending], infer="llm")
    for group_scope, group in by_scope.items():
        llm_pending(context, group, group_scope, report, UsageLog())
    return {"processed": len(pending), "still_pending": len(report.pending),
            "results": [event.model_dump(mode="json") for event in report.results], "notes": report.notes}


def run_delete_scope(store: Store, scope: Scope, node: FilterNode | None) -> tuple[int, int]:
    """Delete every memory and episode of ``scope`` or, with ``node``, the memories matching it (with their
    episodes when nothing else cites them). Returns the counts of memories and episodes deleted."""
    with store.locked(scope):
        memory_ids, episode_ids = store.scope_ids(scope)
        if node is None:
            run_delete(store, store.get_memories(memory_ids), delete_episodes=episode_ids, whole_scope=True)
            deleted = len(memory_ids)
        else:
            matching = store.list_memories(ListQuery(scope=scope, node=node, limit=max(1, len(memory_ids)),
                                                     include_quarantined=True, include_archived=True))
            run_delete(store, matching)
            deleted = len(matching)
        remaining_episodes = len(store.scope_ids(scope)[1])
    store.purge()
    return deleted, len(episode_ids) - remaining_episodes


def scope_summaries(counts: Iterable[tuple[Scope, str, int]]) -> list[dict[str, Any]]:
    """``Store.scope_counts`` rows as one entry per scope (its ids, episode count, memory count and the
    memories by status), sorted by the ids."""
    found: dict[Scope, dict[str, Any]] = {}
    for where, kind, count in counts:
        entry = found.setdefault(where, {**where.model_dump(), "episodes": 0, "memories": 0, "statuses": {}})
        if kind == "episodes":
            entry["episodes"] += count
        else:
            entry["memories"] += count
            entry["statuses"][kind.removeprefix("status:")] = count
    return sorted(found.values(), key=lambda e: tuple(e[k] or "" for k in ("user_id", "agent_id", "run_id")))
