"""Checks of the public API's arguments: each returns the checked value or raises a ``ValidationError``
naming the field and what it must be."""

from __future__ import annotations

from typing import Any

from engram.config import Limits
from engram.errors import NotFoundError, ValidationError
from engram.filters import parse_filters
from engram.models import Scope
from engram.textcheck import check_text
from engram.write.ingest import validate_scope

#: Largest paging offset (far beyond any store; keeps the value inside a signed 64-bit SQL integer).
MAX_OFFSET = 2**62


def text_argument(value: Any, field: str, *, max_chars: int) -> str:
    """A non-empty string of at most ``max_chars`` characters, free of control characters."""
    if not isinstance(value, str):
        raise ValidationError(f"must be a string, got {type(value).__name__}", field=field)
    if not value.strip():
        raise ValidationError("must not be empty", field=field)
    if len(value) > max_chars:
        raise ValidationError(f"{len(value)} characters is over the limit of {max_chars}", field=field)
    check_text(value, field)
    return value


def memory_id_argument(memory_id: Any) -> str:
    """A non-empty string; one that no stored id can be (control characters) is a ``NotFoundError``."""
    if not isinstance(memory_id, str) or not memory_id:
        raise ValidationError("must be a non-empty string", field="memory_id")
    try:
        check_text(memory_id, "memory_id")
    except ValidationError:
        raise NotFoundError(f"no memory with id {memory_id!r}", field="memory_id") from None
    return memory_id


def limit_argument(limit: Any, limits: Limits) -> int:
    """A result count from 1 to ``limits.max_limit``."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= limits.max_limit:
        raise ValidationError(f"must be an integer from 1 to {limits.max_limit}", field="limit")
    return limit


def offset_argument(offset: Any) -> int:
    """A paging offset from 0 to ``MAX_OFFSET``."""
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise ValidationError(f"must be an integer from 0 to {MAX_OFFSET}", field="offset")
    return offset


def threshold_argument(threshold: Any) -> float | None:
    """A score cut-off (any number), or None for none."""
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ValidationError("must be a number", field="threshold")
    return float(threshold)


def flag_argument(value: Any, field: str) -> bool:
    """``True`` or ``False``, nothing truthy in their place."""
    if not isinstance(value, bool):
        raise ValidationError("must be true or false", field=field)
    return value


def scope_argument(user_id: Any, agent_id: Any, run_id: Any, filters: Any, limits: Limits) -> Scope:
    """The scope named by the ids and/or inside ``filters`` (the same id both ways must agree); at least
    one id is required."""
    from_filters = parse_filters(filters).scope
    merged: dict[str, Any] = {}
    for field, value in (("user_id", user_id), ("agent_id", agent_id), ("run_id", run_id)):
        inner = getattr(from_filters, field)
        if value is not None and inner is not None and value != inner:
            raise ValidationError(f"given both as {value!r} and as {inner!r} in filters", field=field)
        merged[field] = value if value is not None else inner
    return validate_scope(merged["user_id"], merged["agent_id"], merged["run_id"], limits, required=True)
