"""Compiles scope, list options and the ``engram.filters`` tree into PostgreSQL WHERE clauses.

Values are always bound parameters; only vetted identifiers are spliced into SQL. Semantics
mirror ``sqlite_sql``: metadata keys live in ``jsonb``, equality is typed JSON equality (numbers
compare numerically), ranges compare numbers with numbers and strings with strings (byte order),
``ne``/``nin`` also match memories that lack the key, ``contains`` is a case-insensitive substring,
``startswith`` a case-sensitive prefix."""

from __future__ import annotations

from psycopg.types.json import Jsonb

from engram.errors import FilterError
from engram.filters import DATE_COLUMNS, Condition, Scalar
from engram.store.base import ListQuery
from engram.store.filter_sql import Clause, compile_tree, status_clause
from engram.timeutil import utcnow

_COMPARATORS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_COLUMNS = {
    "kind": "m.kind", "attributes": "m.attributes",
    "created_at": "m.created_at", "updated_at": "m.updated_at", "valid_from": "m.valid_from",
    "valid_to": "m.valid_to", "status": "m.status", "writer": "m.writer", "hash": "m.hash",
    "user_id": "m.user_id", "agent_id": "m.agent_id", "run_id": "m.run_id",
}
_STORAGE_TEXT = """to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


# BM25 from the full-text indexes alone: each term's matches in the text and in the keys come from
# their GIN indexes (``hits``; no row's tsvector is read), which give each term's document frequency
# in the scope and each row's term frequency (text weight, keys weight); the row's length
# (``search_length``), order (``seq``) and eligibility (``{where}``) are read with the match, so the
# scoring never goes back to the rows. Terms are parsed as ``plainto_tsquery`` of the folded term,
# empty ones dropped; the average length is sampled.
LEXICAL_SQL = """
WITH terms AS MATERIALIZED (
    SELECT DISTINCT q FROM (SELECT plainto_tsquery('engram_english', engram_fold(t)) AS q
                            FROM unnest(%s::text[]) AS t) AS parsed WHERE numnode(q) > 0),
hits AS MATERIALIZED (
    SELECT t.q, m.id, m.seq, m.search_length, ({where}) AS eligible, true AS in_text
    FROM terms t JOIN memories m ON m.text_tsv @@ t.q WHERE {scope}
    UNION ALL
    SELECT t.q, m.id, m.seq, m.search_length, ({where}), false
    FROM terms t JOIN memories m ON m.keys_tsv @@ t.q WHERE {scope}),
pairs AS MATERIALIZED (
    SELECT q, id, min(seq) AS seq, min(search_length) AS search_length, bool_and(eligible) AS eligible,
           (CASE WHEN bool_or(in_text) THEN %s ELSE 0 END) + (CASE WHEN NOT bool_and(in_text) THEN %s ELSE 0 END) AS tf
    FROM hits GROUP BY q, id),
stats AS MATERIALIZED (
    SELECT (SELECT count(*) FROM memories m WHERE {scope}) AS total,
           coalesce((SELECT avg(s.search_length) FROM (SELECT m.search_length FROM memories m WHERE {scope}
                     LIMIT %s) AS s), 1.0) AS avgdl),
weighted AS MATERIALIZED (
    SELECT p.q, ln(1 + (stats.total - count(*) + 0.5) / (count(*) + 0.5)) AS idf
    FROM pairs p CROSS JOIN stats GROUP BY p.q, stats.total)
SELECT p.id, sum(w.idf * p.tf * %s
                 / (p.tf + %s * (1 - %s + %s * p.search_length / stats.avgdl)))::float8 AS score
FROM pairs p JOIN weighted w ON w.q = p.q CROSS JOIN stats
WHERE p.eligible
GROUP BY p.id, p.seq ORDER BY score DESC, p.seq LIMIT %s
"""


def scope_clause(pairs: list[tuple[str, str]], alias: str = "m") -> Clause:
    """``(sql, params)`` requiring every given scope id to match (``TRUE`` when none)."""
    if not pairs:
        return "TRUE", []
    prefix = f"{alias}." if alias else ""
    return " AND ".join(f"{prefix}{column} = %s" for column, _ in pairs), [value for _, value in pairs]


def where_clause(query: ListQuery) -> Clause:
    """``(sql, params)`` selecting the memories (alias ``m``) that ``query`` describes."""
    sql, params = scope_clause(query.scope.items())
    parts = [sql] if query.scope.items() else []
    if not query.include_invalid:
        parts.append("(m.valid_to IS NULL OR m.valid_to > %s)")
        params.append(utcnow())
    statuses = query.statuses()
    if statuses is not None:
        parts.append(status_clause(statuses))
    if query.kinds:
        parts.append("m.kind = ANY(%s::text[])")
        params.append(list(query.kinds))
    if query.node is not None:
        node_sql, node_params = compile_tree(query.node, _condition)
        parts.append(node_sql)
        params.extend(node_params)
    return (" AND ".join(parts) if parts else "TRUE"), params


def _condition(condition: Condition) -> Clause:
    """Like SQL (and SQLite), a missing value makes a comparison NULL, which ``NOT`` keeps NULL."""
    expression, params, kind = _expression(condition)
    op = condition.op
    if op == "exists":
        return (f"{expression} IS NOT NULL", params) if condition.is_column else ("m.metadata ? %s", params)
    if op in ("in", "nin"):
        values = [_bind(condition, v, kind) for v in _as_tuple(condition.value)]
        array = f"%s::{kind}[]"
        if op == "nin":
            return f"({expression} IS NULL OR NOT ({expression} = ANY({array})))", [*params, *params, values]
        return f"{expression} = ANY({array})", [*params, values]
    value = condition.value
    if isinstance(value, tuple):
        raise FilterError(f"{op!r} takes a single value", field=condition.field)
    if op in ("contains", "startswith"):
        text = {"jsonb": f"{expression} #>> '{{}}'", "timestamptz": _STORAGE_TEXT.format(column=expression),
                "text": expression}[kind]
        if op == "contains":
            return f"strpos(lower({text}), lower(%s::text)) > 0", [*params, value]
        return f"left({text}, length(%s::text)) = %s::text", [*params, value, value]
    if value is None:
        return f"{expression} IS {'NOT ' if op == 'ne' else ''}NULL", params
    if op == "ne":
        return (f"({expression} IS NULL OR {expression} <> %s::{kind})",
                [*params, *params, _bind(condition, value, kind)])
    if op == "eq":
        return f"{expression} = %s::{kind}", [*params, _bind(condition, value, kind)]
    return _range(condition, value, expression, params, kind)


def _expression(condition: Condition) -> tuple[str, list[object], str]:
    """The SQL expression for the field, its parameters, and the SQL type values are bound as."""
    if condition.is_column:
        return _COLUMNS[condition.field], [], "timestamptz" if condition.field in DATE_COLUMNS else "text"
    if '"' in condition.field or "\\" in condition.field:
        raise FilterError("metadata keys in filters must not contain quotes or backslashes", field=condition.field)
    return "nullif(m.metadata -> %s, 'null'::jsonb)", [condition.field], "jsonb"


def _bind(condition: Condition, value: Scalar, kind: str) -> object:
    if value is None:
        return None
    if kind == "jsonb":
        return Jsonb(value)
    if kind == "timestamptz" and not isinstance(value, str):
        raise FilterError(f"compares with dates, got {value!r}", field=condition.field)
    return str(int(value)) if isinstance(value, bool) else str(value)


def _range(condition: Condition, value: Scalar, expression: str, params: list[object], kind: str) -> Clause:
    comparator = _COMPARATORS[condition.op]
    if kind == "timestamptz":
        return f"{expression} {comparator} %s::timestamptz", [*params, _bind(condition, value, kind)]
    if kind == "text":
        return f'{expression} COLLATE "C" {comparator} %s::text', [*params, str(value)]
    if isinstance(value, int | float):
        return (f"(CASE WHEN jsonb_typeof({expression}) = 'number' THEN ({expression} #>> '{{}}')::numeric END) "
                f"{comparator} %s::numeric", [*params, *params, value])
    return (f"(CASE WHEN jsonb_typeof({expression}) = 'string' THEN {expression} #>> '{{}}' END) COLLATE \"C\" "
            f"{comparator} %s::text", [*params, *params, value])


def _as_tuple(value: Scalar | tuple[Scalar, ...]) -> tuple[Scalar, ...]:
    return value if isinstance(value, tuple) else (value,)
