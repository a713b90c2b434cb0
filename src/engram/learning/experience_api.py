"""What ``Memory.add_experience`` and ``Memory.search_experiences`` do (the facade's methods stay one line)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engram.arguments import flag_argument, limit_argument, text_argument, validate_metadata
from engram.errors import EngramError, ValidationError
from engram.filters import Condition
from engram.learning.experience import (
    EXPERIENCE_KIND,
    OUTCOMES,
    as_case,
    case_item,
    check_case,
    distil_lesson,
)
from engram.models import HistoryEvent, HistoryEventType, MemoryStatus
from engram.store.base import ChangeSet, ListQuery
from engram.write.quarantine import screen_text

if TYPE_CHECKING:
    from engram.memory import Memory


#: Who writes an experience case: the agent that ran the task (screened by the guard as such).
EXPERIENCE_WRITER = "assistant"


def add_experience(memory: Memory, *, task: Any, outcome: Any, steps: Any, lesson: Any, metadata: Any,
                   user_id: Any, agent_id: Any, run_id: Any) -> dict[str, Any]:
    """Store one case (see ``Memory.add_experience``), screened by the poisoning guard as written by the
    agent (a suspicious case is stored quarantined)."""
    scope = memory._scope(user_id, agent_id, run_id, None)
    extra = validate_metadata(metadata, memory.config.limits)
    task, outcome, steps, lesson = check_case(task, outcome, steps, lesson, extra,
                                              memory.config.limits.max_content_chars)
    ids = {"user_id": scope.user_id, "agent_id": scope.agent_id, "run_id": scope.run_id}
    item = case_item(task, outcome, steps, lesson, "given" if lesson else None, extra, ids)
    notes: list[str] = []
    if lesson is None and memory.llm is not None:
        try:
            distilled = distil_lesson(memory.llm, [item])
        except EngramError as error:
            notes.append(f"no lesson was distilled (the case is stored as it is): {error}")
        else:
            if distilled is not None:
                rebuilt = case_item(task, outcome, steps, distilled[0], "llm", extra, ids)
                item = rebuilt.model_copy(update={"id": item.id,
                                                  "metadata": {**rebuilt.metadata, "lesson_cites": [item.id]}})
    vector = memory.embedder.embed([task])[0]
    verdict = screen_text(memory.guard, memory.store, item, item.memory, EXPERIENCE_WRITER, vector)
    if verdict is not None:
        item = item.model_copy(update={"writer": verdict.writer, **({"status": MemoryStatus.QUARANTINED.value,
                                       "metadata": {**item.metadata, "guard": verdict.to_dict()}}
                                       if verdict.quarantine else {})})
    event = HistoryEvent(memory_id=item.id, event=HistoryEventType.ADD, new_memory=item.memory, actor="experience",
                         user_id=item.user_id, agent_id=item.agent_id, run_id=item.run_id)
    memory.store.apply(ChangeSet(memories=[item], vectors={item.id: vector}, history=[event]))
    return {"id": item.id, "event": "ADD", "kind": EXPERIENCE_KIND, **as_case(item), "notes": notes}


def search_experiences(memory: Memory, task: Any, *, user_id: Any, agent_id: Any, run_id: Any, limit: Any,
                       outcome: Any, distil: Any) -> dict[str, Any]:
    """The most similar past cases (see ``Memory.search_experiences``)."""
    text = text_argument(task, "task", max_chars=memory.config.limits.max_query_chars)
    scope = memory._scope(user_id, agent_id, run_id, None)
    if outcome is not None and outcome not in OUTCOMES:
        raise ValidationError(f"must be one of {', '.join(OUTCOMES)}, or None for both", field="outcome")
    distil = flag_argument(distil, "distil")
    query = ListQuery(scope=scope, node=Condition("outcome", "eq", outcome) if outcome else None,
                      limit=limit_argument(limit, memory.config.limits), include_invalid=False,
                      kinds=(EXPERIENCE_KIND,))
    found = memory.store.vector_search(memory.embedder.embed([text])[0], query)
    scores = {candidate.memory_id: candidate.score for candidate in found}
    items = memory.store.get_memories(list(scores))
    result: dict[str, Any] = {"results": [as_case(item, scores[item.id]) for item in items], "lesson": None,
                              "notes": []}
    if distil and memory.llm is not None and len(items) >= 2:
        try:
            distilled = distil_lesson(memory.llm, items)
        except EngramError as error:
            result["notes"].append(f"no lesson was distilled from these cases: {error}")
        else:
            if distilled is not None:
                result["lesson"] = {"text": distilled[0], "cites": distilled[1]}
    return result
