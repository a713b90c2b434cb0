"""Compiles scope, list options and the ``engram.filters`` tree into SQLite WHERE clauses.
Values are always bound parameters; only vetted identifiers are spliced into SQL."""

from __future__ import annotations

from engram.errors import FilterError
from engram.filters import Condition
from engram.store.base import ListQuery
from engram.store.filter_sql import compile_tree, status_clause
from engram.timeutil import to_storage, utcnow

_COMPARATORS = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_COLUMNS = {
    "kind": "m.kind", "attributes": "m.attributes",
    "created_at": "m.created_at", "updated_at": "m.updated_at", "valid_from": "m.valid_from",
    "valid_to": "m.valid_to", "status": "m.status", "writer": "m.writer", "hash": "m.hash",
    "user_id": "m.user_id", "agent_id": "m.agent_id", "run_id": "m.run_id",
}


def where_clause(query: ListQuery) -> tuple[str, list[object]]:
    """``(sql, params)`` selecting the memories (alias ``m``) that ``query`` describes."""
    parts: list[str] = []
    params: list[object] = []
    for column, value in query.scope.items():
        parts.append(f"m.{column} = ?")
        params.append(value)
    if not query.include_invalid:
        parts.append("(m.valid_to IS NULL OR m.valid_to > ?)")
        params.append(to_storage(utcnow()))
    statuses = query.statuses()
    if statuses is not None:
        parts.append(status_clause(statuses))
    if query.kinds:
        parts.append(f"m.kind IN ({', '.join('?' for _ in query.kinds)})")
        params.extend(query.kinds)
    if query.node is not None:
        sql, node_params = compile_tree(query.node, _condition)
        parts.append(sql)
        params.extend(node_params)
    return (" AND ".join(parts) if parts else "1"), params


def _expression(condition: Condition) -> tuple[str, list[object]]:
    if condition.is_column:
        return _COLUMNS[condition.field], []
    if '"' in condition.field or "\\" in condition.field:
        raise FilterError("metadata keys in filters must not contain quotes or backslashes", field=condition.field)
    return "json_extract(m.metadata, ?)", [f'$."{condition.field}"']


def _condition(condition: Condition) -> tuple[str, list[object]]:
    expression, params = _expression(condition)
    op, value = condition.op, condition.value
    if op == "exists":
        # json_type is SQL NULL only for a missing key ('null' for a JSON null value).
        if condition.is_column:
            return f"{expression} IS NOT NULL", params
        return "json_type(m.metadata, ?) IS NOT NULL", params
    if op in ("in", "nin"):
        values = list(value) if isinstance(value, tuple) else [value]
        placeholders = ", ".join("?" for _ in values)
        if op == "nin":
            return f"({expression} IS NULL OR {expression} NOT IN ({placeholders}))", [*params, *params, *values]
        return f"{expression} IN ({placeholders})", [*params, *values]
    if op == "contains":
        return f"instr(lower(CAST({expression} AS TEXT)), lower(?)) > 0", [*params, value]
    if op == "startswith":
        return f"substr(CAST({expression} AS TEXT), 1, length(?)) = ?", [*params, value, value]
    if value is None:
        return f"{expression} IS {'NOT ' if op == 'ne' else ''}NULL", params
    if op == "ne":
        return f"({expression} IS NULL OR {expression} != ?)", [*params, *params, value]
    if op in ("gt", "gte", "lt", "lte") and not condition.is_column:
        # SQLite orders every text above every number; a range only compares values of the same type.
        types = "'text'" if isinstance(value, str) else "'integer', 'real'"
        return (f"(json_type(m.metadata, ?) IN ({types}) AND {expression} {_COMPARATORS[op]} ?)",
                [*params, *params, value])
    return f"{expression} {_COMPARATORS[op]} ?", [*params, value]
