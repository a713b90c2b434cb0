"""What each inspector page shows, gathered through the ``Memory`` facade's public methods only.

Every function takes the viewer's ``Principal`` and enforces its scope the way the REST API does
(``engram.server.auth``): a scope outside the key is refused (403), a single memory outside it is
not found (404)."""

from __future__ import annotations

import inspect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from engram.errors import EngramError, ValidationError
from engram.memory import Memory
from engram.models import Scope
from engram.server.auth import Principal, owned_memory, resolve_scope, scope_of
from engram.trust import TrustLevel

#: Most records a timeline, a quarantine page or the stats read from one scope.
PAGE_RECORDS = 500
STATS_RECORDS = 5000
CONTEXT_TURNS = 2
TRUST_LEVELS = tuple(level.value for level in TrustLevel)
STATUSES = ("active", "quarantined", "archived")


def supports(memory: Memory, method: str, parameter: str | None = None) -> bool:
    """True when the facade has ``method`` (and, when given, it accepts ``parameter``): features other
    work adds (feedback, ``as_of``) light up here as soon as they are merged."""
    function = getattr(memory, method, None)
    if function is None or not callable(function):
        return False
    return parameter is None or parameter in inspect.signature(function).parameters


def chosen_scope(principal: Principal, params: dict[str, str]) -> dict[str, Any]:
    """The scope ids a page works in: the ones in the URL, checked against the key."""
    ids = {name: params.get(name) or None for name in ("user_id", "agent_id", "run_id")}
    scope = resolve_scope(principal, **ids)
    if all(value is None for value in scope.values()):
        raise ValidationError("choose a scope: give a user_id, agent_id or run_id", field="user_id",
                              hint="pick one on the Scopes page")
    return scope


def scopes_page(memory: Memory, principal: Principal) -> list[dict[str, Any]]:
    """The scopes the viewer may browse, with their counts; a user with several scopes (agents, runs)
    also gets a row for all of them together, first."""
    bound = {} if principal.admin else dict(principal.scope.items())
    rows = memory.scopes(**bound)
    by_user: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["user_id"] is not None:
            by_user.setdefault(row["user_id"], []).append(row)
    listed: list[dict[str, Any]] = []
    for row in rows:
        group = by_user.get(row["user_id"], [])
        if len(group) > 1 and row is group[0] and not principal.scope.agent_id:
            listed.append(_summed(row["user_id"], group))
        listed.append(row)
    for row in listed:
        statuses = row["statuses"]
        row.update(active=statuses.get("active", 0), quarantined=statuses.get("quarantined", 0),
                   archived=statuses.get("archived", 0),
                   ids={name: row[name] for name in ("user_id", "agent_id", "run_id") if row[name] is not None})
    return listed


def _summed(user_id: str, group: list[dict[str, Any]]) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    for row in group:
        statuses.update(row["statuses"])
    return {"user_id": user_id, "agent_id": None, "run_id": None, "all": True, "statuses": dict(statuses),
            "episodes": sum(row["episodes"] for row in group), "memories": sum(row["memories"] for row in group)}


@dataclass
class TimelineFilters:
    """The timeline's filters; empty strings mean "any"."""

    kind: str = ""
    trust: str = ""
    writer: str = ""
    status: str = ""
    text: str = ""
    show: str = "all"

    @classmethod
    def from_params(cls, params: dict[str, str]) -> TimelineFilters:
        found = cls(**{name: (params.get(name) or "").strip() for name in
                       ("kind", "trust", "writer", "status", "text")}, show=params.get("show") or "all")
        if found.trust and found.trust not in TRUST_LEVELS:
            raise ValidationError(f"must be one of {', '.join(TRUST_LEVELS)}", field="trust")
        if found.show not in ("all", "memories", "episodes"):
            raise ValidationError("must be all, memories or episodes", field="show")
        return found

    def store_filters(self) -> dict[str, Any] | None:
        """The filters the store can apply itself (the text filter is applied here)."""
        given: dict[str, Any] = {}
        if self.kind:
            given["kind"] = self.kind
        if self.trust:
            given["trust"] = self.trust
        if self.writer:
            given["writer"] = {"startswith": self.writer}
        if self.status and self.status != "quarantined":
            given["status"] = self.status
        return given or None

    def keeps(self, item: dict[str, Any]) -> bool:
        """True when a memory passes every filter."""
        return ((not self.kind or item["kind"] == self.kind) and (not self.trust or item["trust"] == self.trust)
                and (not self.writer or item["writer"].startswith(self.writer))
                and (not self.status or item["status"] == self.status) and self._has_text(item["memory"]))

    def _has_text(self, text: str) -> bool:
        return not self.text or self.text.casefold() in text.casefold()

    def keeps_episode(self, episode: dict[str, Any]) -> bool:
        return self.show != "memories" and self._has_text(episode["content"])


def event_time(item: dict[str, Any]) -> str:
    """When a memory's content happened: its validity start, else its first source, else its creation."""
    sources = item.get("sources") or []
    return str(item.get("valid_from") or (sources[0]["occurred_at"] if sources else item["created_at"]))


def scope_memories(memory: Memory, scope: dict[str, Any], filters: TimelineFilters | None = None,
                   limit: int = PAGE_RECORDS) -> list[dict[str, Any]]:
    """A scope's memories (quarantined ones too) passing ``filters``, newest first, at most ``limit``."""
    filters = filters or TimelineFilters()
    found: list[dict[str, Any]] = []
    if filters.status != "quarantined":
        found += memory.get_all(**scope, filters=filters.store_filters(), limit=limit)["results"]
    if filters.status in ("", "quarantined"):
        found += memory.quarantined(**scope, limit=limit)["results"]
    return [item for item in found if filters.keeps(item)][:limit]


def timeline_page(memory: Memory, scope: dict[str, Any], filters: TimelineFilters) -> list[dict[str, Any]]:
    """Episodes and memories of a scope, oldest event first, as ``{"type", "at", "record"}`` entries."""
    entries: list[dict[str, Any]] = []
    if filters.show != "episodes":
        entries += [{"type": "memory", "at": event_time(item), "record": item}
                    for item in scope_memories(memory, scope, filters)]
    no_memory_filter = not (filters.kind or filters.trust or filters.writer or filters.status)
    if filters.show == "episodes" or no_memory_filter:
        entries += [{"type": "episode", "at": str(episode["occurred_at"]), "record": episode}
                    for episode in memory.episodes(**scope, limit=PAGE_RECORDS) if filters.keeps_episode(episode)]
    return sorted(entries, key=lambda entry: (entry["at"], entry["type"] == "memory"))


@dataclass
class MemoryView:
    """Everything the memory page shows."""

    item: dict[str, Any]
    history: list[dict[str, Any]]
    sources: list[dict[str, Any]] = field(default_factory=list)
    related: list[dict[str, Any]] = field(default_factory=list)


def memory_page(memory: Memory, principal: Principal, memory_id: str) -> MemoryView:
    """A memory with its history, its source episodes in their conversation, and what it replaced."""
    item = owned_memory(memory, principal, memory_id)
    view = MemoryView(item=item, history=memory.history(memory_id))
    wanted = {source["id"] for source in item["sources"]}
    if wanted:
        episodes = _scope_episodes(memory, scope_of(item), wanted)
        positions = {episode["id"]: index for index, episode in enumerate(episodes)}
        for source_id in [source["id"] for source in item["sources"]]:
            at = positions.get(source_id)
            if at is not None:
                around = episodes[max(0, at - CONTEXT_TURNS):at + CONTEXT_TURNS + 1]
                view.sources.append({"id": source_id, "turns": around})
    for relation in ("supersedes", "superseded_by"):
        target = item["metadata"].get(relation)
        for other_id in target if isinstance(target, list) else [target] if target else []:
            view.related.append({"relation": relation.replace("_", " "), "id": str(other_id),
                                 "memory": _visible_text(memory, principal, str(other_id))})
    return view


def _scope_episodes(memory: Memory, scope: Scope, wanted: set[str], pages: int = 20) -> list[dict[str, Any]]:
    """The scope's episodes in event-time order, read page by page until every wanted one is found."""
    episodes: list[dict[str, Any]] = []
    for page in range(pages):
        batch = memory.episodes(**dict(scope.items()), limit=1000, offset=page * 1000)
        episodes += batch
        if len(batch) < 1000 or wanted <= {episode["id"] for episode in episodes}:
            break
    return episodes


def _visible_text(memory: Memory, principal: Principal, memory_id: str) -> str | None:
    try:
        return str(owned_memory(memory, principal, memory_id)["memory"])
    except EngramError:
        return None


def search_page(memory: Memory, scope: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    """Search results with every score's explanation, as contributions ready to draw as bars."""
    options: dict[str, Any] = {"limit": _bounded_int(params.get("limit"), 10, "limit", 1, 100), "explain": True}
    if params.get("reference_date"):
        options["reference_date"] = params["reference_date"]
    if params.get("as_of") and supports(memory, "search", "as_of"):
        options["as_of"] = params["as_of"]
    response = memory.search(params.get("q", ""), **scope, **options)
    for hit in response["results"]:
        hit["bars"] = explanation_bars(hit.get("explain") or {})
    return response


def explanation_bars(explain: dict[str, float]) -> list[dict[str, Any]]:
    """Each weighted feature's contribution (``w_<feature>``) with its raw value, largest first, scaled
    to the largest magnitude for drawing."""
    weighted = sorted(((name.removeprefix("w_"), float(value)) for name, value in explain.items()
                       if name.startswith("w_")), key=lambda pair: -abs(pair[1]))
    scale = max((abs(value) for _, value in weighted), default=0.0) or 1.0
    bars = [{"name": name, "value": value, "raw": explain.get(name), "fraction": abs(value) / scale}
            for name, value in weighted]
    return bars


def _bounded_int(text: str | None, default: int, name: str, low: int, high: int) -> int:
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValidationError(f"must be an integer from {low} to {high}", field=name) from None
    if not low <= value <= high:
        raise ValidationError(f"must be an integer from {low} to {high}", field=name)
    return value


def quarantine_page(memory: Memory, principal: Principal, params: dict[str, str]) -> list[dict[str, Any]]:
    """Quarantined records in the viewer's reach (one scope when the URL names one), with the verdict."""
    ids = {name: params.get(name) or None for name in ("user_id", "agent_id", "run_id")}
    scope = resolve_scope(principal, **ids)
    records = memory.quarantined(**scope, limit=PAGE_RECORDS)["results"]
    for record in records:
        verdict = record["metadata"].get("guard") or {}
        record["reasons"] = [str(reason) for reason in verdict.get("reasons", [])]
        record["guard_score"] = verdict.get("score")
    return records


def stats_page(memory: Memory, scope: dict[str, Any]) -> dict[str, Any]:
    """Counts of a scope's memories by month of event time, by trust, by kind and by status."""
    items = scope_memories(memory, scope, limit=STATS_RECORDS)
    months = Counter(event_time(item)[:7] for item in items)
    return {"total": len(items), "capped": len(items) >= STATS_RECORDS,
            "by_month": sorted(months.items()),
            "by_trust": [(level, sum(1 for item in items if item["trust"] == level)) for level in TRUST_LEVELS],
            "by_kind": Counter(item["kind"] for item in items).most_common(),
            "by_status": Counter(item["status"] for item in items).most_common()}
