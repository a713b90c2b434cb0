"""What ``Memory.export_training`` does (the facade's method stays one line)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from engram.arguments import validate_scope
from engram.errors import ValidationError
from engram.learning.experience import EXPERIENCE_KIND
from engram.learning.training import (
    SAME_TASK,
    TrainingExport,
    check_options,
    eligible_memories,
    experience_row,
    fact_row,
    mix_replay,
    preference_row,
    read_replay,
    unique,
)
from engram.models import MemoryItem
from engram.store.base import Store

if TYPE_CHECKING:
    from engram.memory import Memory


def export_training(memory: Memory, *, fmt: Any, user_id: Any, agent_id: Any, run_id: Any, min_trust: Any,
                    replay: Any, replay_ratio: Any, seed: Any) -> dict[str, Any]:
    """Training rows and their manifest (see ``Memory.export_training``)."""
    fmt, min_trust, ratio = check_options(fmt, min_trust, replay_ratio)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValidationError("must be an integer", field="seed")
    scope = validate_scope(user_id, agent_id, run_id, memory.config.limits, required=False)
    replay_rows = read_replay(replay, fmt)
    export = TrainingExport()
    memories = list(eligible_memories(memory.store, scope, min_trust, export))
    cases = [item for item in memories if item.kind == EXPERIENCE_KIND]
    successes = [case for case in cases if case.metadata.get("outcome") == "success"]
    if fmt == "sft":
        export.rows = [fact_row(item) for item in memories if item.kind != EXPERIENCE_KIND]
        export.rows += [experience_row(case) for case in successes]
    else:
        failures = [case for case in cases if case.metadata.get("outcome") == "failure"]
        for failure, success in _pairs(memory.store, failures, successes):
            if success is None:
                export.excluded["failures_without_a_pair"] += 1
            else:
                export.rows.append(preference_row(success, failure))
    export.memory_ids = unique(i for row in export.rows for i in row["engram"]["memory_ids"])
    mix_replay(export, replay_rows, ratio, seed)
    return {"rows": export.rows, "manifest": export.manifest(fmt, min_trust, ratio)}


def _pairs(store: Store, failures: list[MemoryItem], successes: list[MemoryItem]
           ) -> list[tuple[MemoryItem, MemoryItem | None]]:
    """Each failed case with the successful case of the same scope whose task is most similar (at least
    ``SAME_TASK``), or None."""
    vectors = store.get_vectors([case.id for case in failures + successes])
    paired: list[tuple[MemoryItem, MemoryItem | None]] = []
    for failure in failures:
        best, best_score = None, SAME_TASK
        for success in successes:
            if success.scope != failure.scope or failure.id not in vectors or success.id not in vectors:
                continue
            score = float(np.dot(vectors[failure.id], vectors[success.id]))
            if score >= best_score:
                best, best_score = success, score
        paired.append((failure, best))
    return paired
