"""Argument translation for code written against mem0 2.x's ``Memory`` (checked against mem0ai 2.2.1).

``Memory``'s methods call these helpers at the top of their bodies, so mem0's names and defaults
(``top_k``, ``rerank``, ``expiration_date``, ``memory_type``, ``prompt``, ``update(data=...)``) reach
Engram's own arguments, each validated with a typed error naming the field. docs/MEM0.md has the table."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from engram.errors import ValidationError
from engram.filters import And, Condition, FilterNode, Or
from engram.models import HistoryEvent, HistoryEventType, MemoryItem
from engram.textcheck import check_text
from engram.timeutil import to_storage, to_utc, utcnow

#: mem0's default number of results for ``search`` and ``get_all`` (``top_k=20``).
MEM0_TOP_K = 20
#: The one ``memory_type`` mem0 accepts.
PROCEDURAL_MEMORY = "procedural_memory"
#: ``update(expiration_date=...)`` left out (``None`` there clears the expiration).
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()
#: Longest custom extraction instructions (``add(prompt=...)``).
MAX_PROMPT_CHARS = 20_000


def result_limit(limit: Any, top_k: Any, default: int = MEM0_TOP_K) -> Any:
    """The page size from Engram's ``limit`` and mem0's ``top_k``: either may be given, both only when
    they agree; ``default`` (mem0's 20) when neither is. The value itself is range-checked by the caller."""
    if top_k is None:
        return default if limit is None else limit
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ValidationError(f"must be a positive integer, got {top_k!r}", field="top_k")
    if limit is not None and limit != top_k:
        raise ValidationError(f"given as limit={limit!r} and top_k={top_k!r}", field="top_k",
                              hint="pass only one of them (top_k is mem0's name for limit)")
    return top_k


def check_rerank(rerank: Any) -> None:
    """``rerank`` must be a boolean. Engram always ranks with its retrieval recipe's ranker (the learned
    ranker by default), so the flag does not change the results."""
    if rerank is not None and not isinstance(rerank, bool):
        raise ValidationError(f"must be true or false, got {type(rerank).__name__}", field="rerank")


def check_show_expired(show_expired: Any) -> bool:
    """``show_expired`` as a bool: also return memories whose validity ended (mem0: expired ones)."""
    if not isinstance(show_expired, bool):
        raise ValidationError(f"must be true or false, got {type(show_expired).__name__}", field="show_expired")
    return show_expired


def without_expired(node: FilterNode | None) -> FilterNode:
    """``node`` narrowed to memories that have not expired: no ``valid_to``, one still ahead, or one set
    because a newer version superseded them (``get_all`` keeps listing those, as before)."""
    unexpired = Or((Condition("valid_to", "eq", None), Condition("valid_to", "gt", to_storage(utcnow())),
                    Condition("superseded_by", "exists", True)))
    return unexpired if node is None else And((node, unexpired))


def expiration_to_valid_to(expiration_date: Any) -> datetime | None:
    """When a memory stops being valid, from mem0's ``expiration_date``.

    A date (``date`` or ``"YYYY-MM-DD"``) keeps the memory valid through that whole day (UTC), as in
    mem0, so ``valid_to`` is the next midnight UTC. A datetime (object or ISO-8601 string with a time)
    is taken as the exact instant."""
    if expiration_date is None:
        return None
    if isinstance(expiration_date, date) and not isinstance(expiration_date, datetime):
        if expiration_date == date.max:
            raise ValidationError("9999-12-31 is past the last valid instant", field="expiration_date",
                                  hint="leave expiration_date out for a memory that does not expire")
        return datetime(expiration_date.year, expiration_date.month, expiration_date.day, tzinfo=UTC) + timedelta(1)
    if isinstance(expiration_date, str) and len(expiration_date.strip()) == len("YYYY-MM-DD"):
        try:
            day = date.fromisoformat(expiration_date.strip())
        except ValueError:
            raise ValidationError(f"not a date: {expiration_date!r}", field="expiration_date",
                                  hint="use YYYY-MM-DD (valid through that day, UTC) or an ISO-8601 datetime") from None
        return expiration_to_valid_to(day)
    if isinstance(expiration_date, datetime | str):
        return to_utc(expiration_date, field="expiration_date")
    raise ValidationError(f"expected a date or datetime, got {type(expiration_date).__name__}",
                          field="expiration_date", hint="use YYYY-MM-DD (valid through that day, UTC)")


def is_procedural(memory_type: Any) -> bool:
    """mem0's ``memory_type``: ``"procedural_memory"`` (its only type) maps to Engram's experience memory;
    None is an ordinary add; anything else is refused with what to use instead."""
    if memory_type is None:
        return False
    if memory_type == PROCEDURAL_MEMORY:
        return True
    raise ValidationError(f"unknown memory type {memory_type!r}", field="memory_type",
                          hint=f"leave it out, or use {PROCEDURAL_MEMORY!r} (mem0's only memory type)")


def procedural_case(messages: Any) -> tuple[str, list[str]]:
    """An agent's run given to ``add(..., memory_type="procedural_memory")`` as an experience case: the
    task is the first user message (else the first message), the steps are the other messages in order."""
    items = messages if isinstance(messages, list) else [messages]
    texts: list[tuple[str, str]] = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            texts.append(("user", item))
        elif isinstance(item, dict) and isinstance(item.get("content"), str):
            texts.append((str(item.get("role", "user")), item["content"]))
        else:
            raise ValidationError("must be a string or a message dict with text content", field=f"messages[{index}]")
    if not texts:
        raise ValidationError("is empty", field="messages")
    first = next((i for i, (role, _) in enumerate(texts) if role == "user"), 0)
    return texts[first][1], [f"{role}: {text}" for i, (role, text) in enumerate(texts) if i != first]


def extraction_instructions(prompt: Any) -> str | None:
    """mem0's ``add(prompt=...)``: extra instructions for the LLM fact extraction (they are added to
    Engram's extraction prompt, whose reply format and safety rules stay in force)."""
    if prompt is None:
        return None
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValidationError("must be a non-empty string", field="prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValidationError(f"{len(prompt)} characters is over the limit of {MAX_PROMPT_CHARS}", field="prompt")
    check_text(prompt, "prompt")
    return prompt


def update_text(text: Any, data: Any, metadata: Any, expiration_date: Any = UNSET) -> Any:
    """The new text of ``update`` from Engram's ``text`` and mem0's ``data`` (its older name for it).

    ``None`` means "keep the current text"; giving neither text, metadata nor an expiration date is an
    error, as in mem0."""
    if data is not None:
        if text is not None and text != data:
            raise ValidationError("given both as text and as data with different values", field="data",
                                  hint="pass only text (data is mem0's older name for it)")
        text = data
    if text is None and metadata is None and expiration_date is UNSET:
        raise ValidationError("nothing to update", field="text",
                              hint="give the new text, metadata or expiration_date")
    return text


def validity_update(expiration_date: Any) -> dict[str, Any]:
    """The ``valid_to`` change of ``update(expiration_date=...)``: none when it is left out, cleared by
    ``None``, else as in ``add``."""
    return {} if expiration_date is UNSET else {"valid_to": expiration_to_valid_to(expiration_date)}


def merged_metadata(current: dict[str, Any], update: dict[str, Any] | None) -> dict[str, Any] | None:
    """mem0's update semantics for metadata: the given keys are set, the others kept."""
    return None if update is None else {**current, **update}


def mem0_history(events: list[HistoryEvent], memory: MemoryItem | None) -> list[dict[str, Any]]:
    """History rows with mem0's keys beside Engram's: ``updated_at`` (the time of the change),
    ``is_deleted``, and ``role`` / ``actor_id`` (the role and name of the message ``memory`` came from,
    while it exists; mem0 takes them from the message too)."""
    source = memory.sources[0] if memory is not None and memory.sources else None
    rows = []
    for event in events:
        row = event.model_dump(mode="json")
        rows.append({**row, "updated_at": row["created_at"], "is_deleted": event.event == HistoryEventType.DELETE,
                     "actor_id": source.name if source else None, "role": source.role if source else None})
    return rows
