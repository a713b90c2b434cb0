"""Checks of the public API's arguments: each returns the checked value or raises a ``ValidationError``
naming the field and what it must be."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from engram.config import Limits
from engram.errors import NotFoundError, ScopeMissingError, ValidationError
from engram.filters import parse_filters
from engram.models import Scope
from engram.textcheck import check_text

#: Largest paging offset (far beyond any store; keeps the value inside a signed 64-bit SQL integer).
MAX_OFFSET = 2**62


def text_argument(value: Any, field: str, *, max_chars: int, too_long_hint: str | None = None) -> str:
    """A non-empty string of at most ``max_chars`` characters (``too_long_hint``: how to fix a longer one),
    free of control characters."""
    if not isinstance(value, str):
        raise ValidationError(f"must be a string, got {type(value).__name__}", field=field)
    if not value.strip():
        raise ValidationError("must not be empty", field=field)
    if len(value) > max_chars:
        raise ValidationError(f"{len(value)} characters is over the limit of {max_chars}", field=field,
                              hint=too_long_hint)
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


def validate_scope(user_id: object, agent_id: object, run_id: object, limits: Limits, *, required: bool) -> Scope:
    """Check the scope ids' types and sizes; with ``required``, at least one must be given."""
    values: dict[str, str] = {}
    for field, value in (("user_id", user_id), ("agent_id", agent_id), ("run_id", run_id)):
        if value is None:
            continue
        if not isinstance(value, str):
            raise ValidationError(f"must be a string, got {type(value).__name__}", field=field)
        if not value.strip():
            raise ValidationError("must not be empty", field=field)
        if len(value) > limits.max_id_chars:
            raise ValidationError(f"longer than {limits.max_id_chars} characters", field=field)
        check_text(value, field)
        values[field] = value
    scope = Scope(**values)
    if required and scope.is_empty():
        raise ScopeMissingError("one of user_id, agent_id or run_id is required", field="user_id",
                                hint="pass user_id=... (or agent_id/run_id), top-level or inside filters")
    return scope


def validate_metadata(metadata: object, limits: Limits, *, field: str = "metadata") -> dict[str, Any]:
    """A JSON-serialisable dict with string keys, within the size and depth limits."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError(f"must be an object (dict), got {type(metadata).__name__}", field=field)
    _check_json_value(metadata, field, 0, limits.max_metadata_depth)
    try:
        encoded = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"is not JSON-serialisable: {exc}", field=field) from None
    if len(encoded.encode("utf-8")) > limits.max_metadata_bytes:
        raise ValidationError(f"larger than {limits.max_metadata_bytes} bytes as JSON", field=field)
    result: dict[str, Any] = json.loads(encoded)
    return result


def _check_json_value(value: object, field: str, depth: int, max_depth: int) -> None:
    if depth > max_depth:
        raise ValidationError(f"nested deeper than {max_depth} levels", field=field)
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"keys must be strings, got {type(key).__name__}", field=field)
            check_text(key, f"{field}.{key}")
            _check_json_value(item, f"{field}.{key}", depth + 1, max_depth)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json_value(item, f"{field}[{index}]", depth + 1, max_depth)
    elif isinstance(value, str):
        check_text(value, field)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValidationError("NaN and infinity are not valid JSON", field=field)
    elif not (value is None or isinstance(value, bool | int | float)):
        raise ValidationError(f"unsupported value type {type(value).__name__}", field=field)
