"""The ``filters`` language (mem0 v1 and v2 styles), parsed into a small typed tree that each
storage backend compiles to its own SQL.

Accepted forms::

    {"category": "travel"}                                 # equality
    {"priority": {"gte": 2, "lt": 5}}                      # ranges (numbers, ISO dates)
    {"tag": {"in": ["a", "b"]}}                            # membership (also "nin")
    {"AND": [{...}, {...}]}, {"OR": [...]}, {"NOT": {...}} # boolean structure
    {"writer": {"startswith": "tool:"}}                    # prefix match (case-sensitive)
    {"trust": {"gte": "assistant"}}                        # trust level of the writer (see below)
    {"category": "*"}                                      # wildcard: the key is present (any value, null too)
    {"user_id": "alice", ...}                              # scope ids may sit in filters too

Fields name metadata keys, except the memory columns in ``COLUMN_FIELDS`` and ``trust``: the trust
level derived from ``writer`` (``engram.trust``), compared by rank, user > assistant >
tool = document > unknown. It is rewritten into conditions on ``writer``.

The wildcard ``"*"`` is mem0's "any value": as in mem0's pgvector store, it matches memories whose
metadata has the key, whatever its value (JSON null included); on a column it means "is set" (not
NULL), so ``{"user_id": "alice", "agent_id": "*"}`` is alice's memories that name an agent. To match the
literal string ``"*"`` write ``{"key": {"eq": "*"}}``."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from engram.errors import FilterError, ValidationError
from engram.models import Scope
from engram.textcheck import check_text
from engram.timeutil import to_storage, to_utc
from engram.trust import TRUST_WEIGHTS, WRITER_KINDS, TrustLevel

Operator = Literal["eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "contains", "startswith", "exists"]
OPERATORS: frozenset[str] = frozenset({"eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "contains", "startswith"})
_OPERATOR_ALIASES = {"$eq": "eq", "$ne": "ne", "$in": "in", "$nin": "nin", "$gt": "gt", "$gte": "gte",
                     "$lt": "lt", "$lte": "lte", "$contains": "contains", "icontains": "contains",
                     "$startswith": "startswith"}
TRUST_FIELD = "trust"
#: mem0's wildcard value: the field is present, with any value.
WILDCARD = "*"
SCOPE_FIELDS = ("user_id", "agent_id", "run_id")
COLUMN_FIELDS: frozenset[str] = frozenset(
    {"kind", "attributes", "created_at", "updated_at", "valid_from", "valid_to", "status", "writer", "hash"}
)
DATE_COLUMNS: frozenset[str] = frozenset({"created_at", "updated_at", "valid_from", "valid_to"})
MAX_DEPTH = 16
MAX_NODES = 512
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Condition:
    """``field <op> value``; ``field`` is a column in COLUMN_FIELDS or a metadata key."""

    field: str
    op: Operator
    value: Scalar | tuple[Scalar, ...]

    @property
    def is_column(self) -> bool:
        return self.field in COLUMN_FIELDS or self.field in SCOPE_FIELDS


@dataclass(frozen=True)
class And:
    items: tuple[FilterNode, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[FilterNode, ...]


@dataclass(frozen=True)
class Not:
    item: FilterNode


FilterNode = Condition | And | Or | Not


@dataclass(frozen=True)
class ParsedFilters:
    """Scope ids lifted out of the filters, and what remains (``None`` when nothing)."""

    scope: Scope
    node: FilterNode | None


def parse_filters(filters: Any, *, field: str = "filters") -> ParsedFilters:
    """Validate ``filters`` and split off plain scope-id equalities at the top level."""
    if filters is None:
        return ParsedFilters(Scope(), None)
    if not isinstance(filters, dict):
        raise FilterError(f"must be an object, got {type(filters).__name__}", field=field)
    scope_ids: dict[str, str] = {}
    rest: list[FilterNode] = []
    counter = [0]
    for key, value in filters.items():
        if key in SCOPE_FIELDS and isinstance(value, str) and value != WILDCARD:
            scope_ids[key] = value
        elif key.upper() == "AND" and isinstance(value, list) and value:
            for index, item in enumerate(value):
                lifted = _lift_scope(item)
                if lifted is not None:
                    scope_ids.update(lifted)
                else:
                    rest.append(_parse_node(item, f"{field}.AND[{index}]", 1, counter))
        else:
            rest.append(_parse_node({key: value}, f"{field}.{key}", 1, counter))
    node: FilterNode | None
    if not rest:
        node = None
    elif len(rest) == 1:
        node = rest[0]
    else:
        node = And(tuple(rest))
    return ParsedFilters(Scope(**scope_ids), node)


def _lift_scope(item: Any) -> dict[str, str] | None:
    if isinstance(item, dict) and len(item) == 1:
        (key, value), = item.items()
        if key in SCOPE_FIELDS and isinstance(value, str) and value != WILDCARD:
            return {key: value}
    return None


def _parse_node(node: Any, path: str, depth: int, counter: list[int]) -> FilterNode:
    counter[0] += 1
    if depth > MAX_DEPTH:
        raise FilterError(f"nested deeper than {MAX_DEPTH} levels", field=path)
    if counter[0] > MAX_NODES:
        raise FilterError(f"more than {MAX_NODES} conditions", field=path)
    if not isinstance(node, dict) or not node:
        raise FilterError("each filter must be a non-empty object", field=path)
    parts: list[FilterNode] = []
    for key, value in node.items():
        if not isinstance(key, str) or not key:
            raise FilterError("filter keys must be non-empty strings", field=path)
        _check_filter_text(key, path)
        upper = key.upper()
        if upper in ("AND", "OR"):
            if not isinstance(value, list) or not value:
                raise FilterError(f"{upper} takes a non-empty list of filters", field=f"{path}.{key}")
            items = tuple(_parse_node(v, f"{path}.{key}[{i}]", depth + 1, counter) for i, v in enumerate(value))
            parts.append(And(items) if upper == "AND" else Or(items))
        elif upper == "NOT":
            parts.append(Not(_parse_node(value, f"{path}.NOT", depth + 1, counter)))
        elif isinstance(value, str) and value == WILDCARD:
            parts.append(Condition("writer" if key == TRUST_FIELD else key, "exists", True))
        elif key == TRUST_FIELD:
            parts.append(trust_node(value, path if path.endswith(key) else f"{path}.{key}"))
        else:
            parts.extend(_parse_field(key, value, f"{path}" if path.endswith(key) else f"{path}.{key}"))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _parse_field(name: str, spec: Any, path: str) -> list[Condition]:
    if not isinstance(spec, dict):
        return [Condition(name, "eq", _scalar(name, "eq", spec, path))]
    if not spec:
        raise FilterError("an operator object must not be empty", field=path)
    conditions = []
    for raw_op, value in spec.items():
        op = _OPERATOR_ALIASES.get(raw_op, raw_op)
        if op not in OPERATORS:
            raise FilterError(
                f"unknown operator {raw_op!r}", field=path, hint=f"use one of {', '.join(sorted(OPERATORS))}"
            )
        if op in ("in", "nin"):
            if not isinstance(value, list) or not value:
                raise FilterError(f"{op!r} takes a non-empty list", field=f"{path}.{raw_op}")
            conditions.append(Condition(name, op, tuple(_scalar(name, op, v, path) for v in value)))  # type: ignore[arg-type]
        else:
            conditions.append(Condition(name, op, _scalar(name, op, value, path)))  # type: ignore[arg-type]
    return conditions


def _scalar(name: str, op: str, value: Any, path: str) -> Scalar:
    if isinstance(value, datetime | date):
        return to_storage(to_utc(value, field=path))
    if name in DATE_COLUMNS and isinstance(value, str) and op != "contains":
        try:
            return to_storage(to_utc(value, field=path))
        except Exception as exc:
            raise FilterError(f"not a date: {value!r}", field=path) from exc
    if isinstance(value, str):
        _check_filter_text(value, path)
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64_MIN <= value <= _INT64_MAX:
        raise FilterError(f"integer out of the 64-bit range: {value}", field=path)
    if isinstance(value, float) and not math.isfinite(value):
        raise FilterError(f"{value!r} is not a finite number", field=path)
    if value is None or isinstance(value, str | bool | int | float):
        if op in ("gt", "gte", "lt", "lte") and (value is None or isinstance(value, bool)):
            raise FilterError(f"{op!r} needs a number, date or string", field=path)
        if op in ("contains", "startswith") and not isinstance(value, str):
            raise FilterError(f"{op!r} needs a string", field=path)
        return value
    raise FilterError(f"unsupported value type {type(value).__name__}", field=path)


def _check_filter_text(text: str, path: str) -> None:
    try:
        check_text(text, path)
    except ValidationError as exc:
        raise FilterError(exc.message, field=exc.field) from None


_TRUST_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt,
    "lte": operator.le,
}


def trust_node(spec: Any, path: str) -> FilterNode:
    """The ``trust`` condition(s) in ``spec`` as a tree over ``writer``: a memory's level is fixed by
    the kind before the first ``:`` of its writer; writers of no known kind are ``unknown``."""
    levels = set(TrustLevel)
    specs = spec.items() if isinstance(spec, dict) and spec else [("eq", spec)]
    for raw_op, value in specs:
        op = _OPERATOR_ALIASES.get(raw_op, raw_op)
        if op in ("in", "nin"):
            if not isinstance(value, list) or not value:
                raise FilterError(f"{op!r} takes a non-empty list of trust levels", field=f"{path}.{raw_op}")
            chosen = {_trust_level(item, path) for item in value}
            levels &= chosen if op == "in" else set(TrustLevel) - chosen
        elif op in _TRUST_COMPARISONS:
            bound = TRUST_WEIGHTS[_trust_level(value, path)]
            levels &= {level for level in TrustLevel if _TRUST_COMPARISONS[op](TRUST_WEIGHTS[level], bound)}
        else:
            raise FilterError(f"operator {raw_op!r} does not apply to trust levels", field=path,
                              hint="use eq, ne, in, nin, gt, gte, lt or lte")
    return _writer_of_levels(levels)


def _trust_level(value: Any, path: str) -> TrustLevel:
    try:
        return TrustLevel(value)
    except ValueError:
        raise FilterError(f"unknown trust level {value!r}", field=path,
                          hint=f"use one of {', '.join(level.value for level in TrustLevel)}") from None


def _writer_of_levels(levels: set[TrustLevel]) -> FilterNode:
    """Writers whose trust level is one of ``levels``."""

    def of_kinds(kinds: list[str]) -> FilterNode:
        matches: list[FilterNode] = [Condition("writer", "eq", kind) for kind in kinds]
        matches += [Condition("writer", "startswith", f"{kind}:") for kind in kinds]
        return Or(tuple(matches)) if matches else Not(Condition("writer", "ne", None))

    if TrustLevel.UNKNOWN in levels:
        excluded = [kind for kind, level in WRITER_KINDS.items() if level not in levels]
        return Not(of_kinds(excluded)) if excluded else Condition("writer", "ne", None)
    return of_kinds([kind for kind, level in WRITER_KINDS.items() if level in levels])
