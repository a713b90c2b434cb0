"""The dialect-free part of compiling a filter tree to SQL: AND / OR / NOT structure. Each backend
supplies how one ``Condition`` becomes a clause."""

from __future__ import annotations

from collections.abc import Callable

from engram.filters import And, Condition, FilterNode, Not, Or

Clause = tuple[str, list[object]]


def compile_tree(node: FilterNode, condition: Callable[[Condition], Clause]) -> Clause:
    """``(sql, params)`` for ``node``, with each leaf compiled by ``condition``."""
    if isinstance(node, And | Or):
        compiled = [compile_tree(item, condition) for item in node.items]
        joiner = " AND " if isinstance(node, And) else " OR "
        return "(" + joiner.join(sql for sql, _ in compiled) + ")", [p for _, ps in compiled for p in ps]
    if isinstance(node, Not):
        sql, params = compile_tree(node.item, condition)
        return f"(NOT {sql})", params
    return condition(node)


#: Records per scope (``scope_counts``): episodes, and memories by status; ``{where}`` is a scope clause
#: (or nothing) whose parameters are bound twice, once per table.
SCOPE_COUNTS_SQL = (
    "SELECT user_id, agent_id, run_id, 'episodes', count(*) FROM episodes {where} GROUP BY user_id, agent_id, run_id "
    "UNION ALL SELECT user_id, agent_id, run_id, 'status:' || status, count(*) FROM memories {where} "
    "GROUP BY user_id, agent_id, run_id, status"
)

#: The guard's context (``recent_texts``): id, text, writer and stored vector of the memories a listing
#: selects, newest first, the vectors joined to the listed rows only (after the limit). ``{where}`` selects
#: (alias ``m``), ``{position}`` is the insertion-order column, ``{vector}`` reads ``v``'s vector and
#: ``{mark}`` is the dialect's placeholder (bound: limit, offset).
RECENT_TEXTS_SQL = (
    "SELECT r.id, r.text, r.writer, {vector} FROM (SELECT m.id, m.text, m.writer, m.created_at, "
    "m.{position} AS position FROM memories m WHERE {where} ORDER BY m.created_at DESC, m.{position} DESC "
    "LIMIT {mark} OFFSET {mark}) r LEFT JOIN vectors v ON v.memory_id = r.id "
    "ORDER BY r.created_at DESC, r.position DESC"
)


def status_clause(statuses: tuple[str, ...]) -> str:
    """``m.status IN (...)`` for a fixed set of known status names (spliced: they are enum values)."""
    if not all(status.isalpha() for status in statuses):
        raise ValueError(f"not a status name: {statuses!r}")
    return "m.status IN (" + ", ".join(f"'{status}'" for status in statuses) + ")"
