"""Training data out (the parametric route): memory as fine-tuning rows in the conversational formats
that TRL and Hugging Face ``datasets`` load as they are.

``sft`` rows are ``{"messages": [system, user, assistant]}``: each current fact or verbatim memory becomes
a grounded question/answer pair (who said it and when, from its source episodes), each successful
experience an instruction (the task) and its response (the steps and lesson). ``preference`` rows are
``{"prompt": [...], "chosen": [...], "rejected": [...]}``: a successful case's steps are chosen and a
failed case's steps, for the same or a similar task, rejected. Every row carries ``engram``
(``memory_ids``, ``kind``, ``sources``, ``origin``) so the memories it used are on record. Excluded: memories
quarantined, archived, superseded, written by a writer less trusted than ``min_trust``, and any memory whose
history holds a ``DELETE`` tombstone (so an erased memory never comes back through an old import).
Replay (GeRe): general samples from a JSONL file are mixed in, ``replay_ratio`` of them per memory row."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from engram.errors import ValidationError
from engram.jsonl import jsonl_objects
from engram.learning.experience import EXPERIENCE_KIND
from engram.models import HistoryEventType, MemoryItem, Scope
from engram.store.base import ListQuery, Store
from engram.trust import TRUST_WEIGHTS, TrustLevel, trust_level_weight

FORMATS = ("sft", "preference")
FORMAT_KEYS: dict[str, tuple[str, ...]] = {"sft": ("messages",), "preference": ("prompt", "chosen", "rejected")}
SYSTEM_PROMPT = "You are a personal assistant. Answer from what you remember about the people you work with."
AGENT_PROMPT = "You are an agent. Solve the task with the approach that worked before."
#: Cosine similarity from which a failed case counts as the same task as a successful one.
SAME_TASK = 0.5
PAGE = 1000


@dataclass
class TrainingExport:
    """The rows and what went into them."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    memory_ids: list[str] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("superseded", "below_min_trust", "erased", "failures_without_a_pair"), 0))
    replay_rows: int = 0

    def manifest(self, fmt: str, min_trust: str, replay_ratio: float) -> dict[str, Any]:
        return {"format": fmt, "rows": len(self.rows), "memory_rows": len(self.rows) - self.replay_rows,
                "replay_rows": self.replay_rows, "replay_ratio": replay_ratio, "min_trust": min_trust,
                "memory_ids": self.memory_ids, "excluded": self.excluded,
                "excluded_by_status": "quarantined and archived memories are never read"}


def check_options(fmt: object, min_trust: object, replay_ratio: object) -> tuple[str, str, float]:
    """Validated export options (typed errors name the field)."""
    if fmt not in FORMATS:
        raise ValidationError(f"must be one of {', '.join(FORMATS)}", field="format")
    if min_trust not in {level.value for level in TrustLevel}:
        raise ValidationError(f"must be one of {', '.join(level.value for level in TrustLevel)}", field="min_trust")
    if isinstance(replay_ratio, bool) or not isinstance(replay_ratio, int | float) or not 0 <= replay_ratio <= 10:
        raise ValidationError("must be a number from 0 to 10", field="replay_ratio")
    return str(fmt), str(min_trust), float(replay_ratio)


def eligible_memories(store: Store, scope: Scope, min_trust: str, export: TrainingExport) -> Iterator[MemoryItem]:
    """Active memories of the scope that may be trained on (counting the ones left out)."""
    floor = TRUST_WEIGHTS[TrustLevel(min_trust)]
    offset = 0
    while True:
        page = store.list_memories(ListQuery(scope=scope, limit=PAGE, offset=offset))
        for memory in page:
            if memory.valid_to is not None or memory.metadata.get("superseded_by"):
                export.excluded["superseded"] += 1
            elif trust_level_weight(memory.trust) < floor:
                export.excluded["below_min_trust"] += 1
            elif any(event.event == HistoryEventType.DELETE for event in store.history(memory.id)):
                export.excluded["erased"] += 1
            else:
                yield memory
        if len(page) < PAGE:
            return
        offset += PAGE


def _speaker(memory: MemoryItem) -> str:
    source = memory.sources[0] if memory.sources else None
    return (source.name or source.role) if source else (memory.user_id or memory.agent_id or "the user")


def _row(fmt_keys: dict[str, Any], memory_ids: list[str], kind: str, sources: list[str], origin: str
         ) -> dict[str, Any]:
    return {**fmt_keys, "engram": {"memory_ids": memory_ids, "kind": kind, "sources": sources, "origin": origin}}


def fact_row(memory: MemoryItem) -> dict[str, Any]:
    """A grounded question/answer pair: who said it and when, answered with the memory's own words."""
    speaker = _speaker(memory)
    when = min((s.occurred_at for s in memory.sources), default=memory.valid_from or memory.created_at)
    day = when.astimezone(UTC).strftime("%Y-%m-%d")
    text = " ".join(memory.memory.split())
    messages = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"What did {speaker} tell you on {day}?"},
                {"role": "assistant", "content": f"On {day}, {speaker} said: {text}"}]
    return _row({"messages": messages}, [memory.id], memory.kind, memory.source_ids, "memory")


def _steps_text(case: MemoryItem) -> str:
    steps = case.metadata.get("steps") or []
    lines = [f"{number}. {step}" for number, step in enumerate(steps, start=1)] or ["(no steps recorded)"]
    lesson = case.metadata.get("lesson")
    return "\n".join(lines + ([f"Lesson: {lesson}"] if lesson else []))


def experience_row(case: MemoryItem) -> dict[str, Any]:
    """A successful case as instruction (the task) and response (its steps and lesson)."""
    messages = [{"role": "system", "content": AGENT_PROMPT},
                {"role": "user", "content": str(case.metadata.get("task"))},
                {"role": "assistant", "content": _steps_text(case)}]
    return _row({"messages": messages}, [case.id], EXPERIENCE_KIND, [], "memory")


def preference_row(success: MemoryItem, failure: MemoryItem) -> dict[str, Any]:
    """The failed case's steps rejected, the successful one's chosen, for the failed case's task."""
    prompt = [{"role": "system", "content": AGENT_PROMPT},
              {"role": "user", "content": str(failure.metadata.get("task"))}]
    return _row({"prompt": prompt, "chosen": [{"role": "assistant", "content": _steps_text(success)}],
                 "rejected": [{"role": "assistant", "content": _steps_text(failure)}]},
                [success.id, failure.id], EXPERIENCE_KIND, [], "memory")


def read_replay(path: str | Path | None, fmt: str) -> list[dict[str, Any]]:
    """General samples to mix in: one JSON object per line, with the format's keys."""
    if path is None:
        return []
    rows = []
    for number, row in jsonl_objects(path, field="replay"):
        if any(key not in row for key in FORMAT_KEYS[fmt]):
            raise ValidationError(f"line {number} lacks {', '.join(FORMAT_KEYS[fmt])}", field="replay",
                                  hint=f"replay samples must be {fmt} rows")
        rows.append(_row({key: row[key] for key in FORMAT_KEYS[fmt]}, [], "replay", [], "replay"))
    return rows


def mix_replay(export: TrainingExport, replay: list[dict[str, Any]], ratio: float, seed: int) -> None:
    """Add ``ratio`` replay samples per memory row (drawn without replacement while they last, then again),
    and shuffle everything with ``seed``."""
    if not replay or ratio <= 0:
        return
    rng = random.Random(seed)
    wanted = round(ratio * len(export.rows))
    drawn: list[dict[str, Any]] = []
    while len(drawn) < wanted:
        drawn.extend(rng.sample(replay, min(len(replay), wanted - len(drawn))))
    export.rows.extend(drawn)
    export.replay_rows = len(drawn)
    rng.shuffle(export.rows)


def unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))
