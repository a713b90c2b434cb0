"""Row mapping for the SQLite store: column lists, SQL helpers and the functions turning rows into
``Episode``, ``MemoryItem`` and ``HistoryEvent`` (``engram.store.sqlite``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from engram._lazy import LazyModule
from engram.errors import StorageError
from engram.models import Episode, HistoryEvent, HistoryEventType, MemoryItem, Scope, SourceRef
from engram.timeutil import from_storage

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy")

CHUNK = 500
MEMORY_COLUMNS = ("id, text, kind, user_id, agent_id, run_id, metadata, valid_from, valid_to, created_at, "
                  "updated_at, hash, status, writer, index_keys, access_count, last_accessed_at, context_keys, "
                  "attributes")
EPISODE_COLUMNS = ("id, user_id, agent_id, run_id, role, name, content, occurred_at, recorded_at, metadata, "
                   "hash, extraction")


@contextmanager
def locked_connection(lock: AbstractContextManager[Any], connection: sqlite3.Connection, problem: str,
                      hint: str | None = None) -> Iterator[sqlite3.Connection]:
    """``connection`` while ``lock`` is held; an sqlite3 error leaves as ``StorageError("<problem>: <error>")``."""
    with lock:
        try:
            yield connection
        except sqlite3.Error as exc:
            raise StorageError(f"{problem}: {exc}", hint=hint) from exc


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    """``items`` in slices of at most ``CHUNK`` (SQLite's bound-parameter limit)."""
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def placeholders(count: int) -> str:
    """``?, ?, ...`` for ``count`` parameters."""
    return ", ".join("?" for _ in range(count))


def maybe_time(text: str | None) -> Any:
    return from_storage(text) if text else None


def vector_blob(vector: np.ndarray | None) -> bytes | None:
    """A vector as stored: float32 bytes (None stays None)."""
    return None if vector is None else np.asarray(vector, dtype=np.float32).tobytes()


def scope_match(scope: Scope) -> tuple[str, list[object]]:
    """SQL requiring exactly this scope (absent ids must be NULL)."""
    parts, params = [], []
    for column in ("user_id", "agent_id", "run_id"):
        value = getattr(scope, column)
        if value is None:
            parts.append(f"m.{column} IS NULL")
        else:
            parts.append(f"m.{column} = ?")
            params.append(value)
    return " AND ".join(parts), params


def meta(connection: sqlite3.Connection, key: str) -> str | None:
    """The ``meta`` table's value for ``key``, or None."""
    row = connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def memory_from_row(row: Sequence[Any]) -> MemoryItem:
    """A memory from a row of ``MEMORY_COLUMNS`` (without its sources: ``attach_sources``)."""
    return MemoryItem(
        id=row[0], memory=row[1], kind=row[2], user_id=row[3], agent_id=row[4], run_id=row[5],
        metadata=json.loads(row[6]), valid_from=maybe_time(row[7]), valid_to=maybe_time(row[8]),
        created_at=from_storage(row[9]), updated_at=from_storage(row[10]), hash=row[11], status=row[12],
        writer=row[13], index_keys=row[14], access_count=row[15], last_accessed_at=maybe_time(row[16]),
        context_keys=row[17], attributes=row[18].split("\n") if row[18] else [],
    )


def attach_sources(connection: sqlite3.Connection, memories: list[MemoryItem]) -> None:
    """Fill each memory's ``sources`` from ``memory_sources`` and ``episodes``, in order."""
    by_id = {memory.id: memory for memory in memories}
    for chunk in chunks(list(by_id)):
        rows = connection.execute(
            "SELECT s.memory_id, e.id, e.occurred_at, e.role, e.name, e.metadata FROM memory_sources s "
            f"JOIN episodes e ON e.id = s.episode_id WHERE s.memory_id IN ({placeholders(len(chunk))}) "
            "ORDER BY s.memory_id, s.position", list(chunk)
        ).fetchall()
        for memory_id, episode_id, occurred_at, role, name, metadata in rows:
            by_id[memory_id].sources.append(SourceRef(
                id=episode_id, occurred_at=from_storage(occurred_at), role=role, name=name,
                metadata=json.loads(metadata)))


def episode_from_row(row: Sequence[Any]) -> Episode:
    """An episode from a row of ``EPISODE_COLUMNS``."""
    return Episode(
        id=row[0], user_id=row[1], agent_id=row[2], run_id=row[3], role=row[4], name=row[5], content=row[6],
        occurred_at=from_storage(row[7]), recorded_at=from_storage(row[8]), metadata=json.loads(row[9]),
        hash=row[10], extraction=row[11],
    )


def history_from_row(row: Sequence[Any]) -> HistoryEvent:
    """A history event from a row of the ``history`` table's columns."""
    return HistoryEvent(
        id=row[0], memory_id=row[1], event=HistoryEventType(row[2]), old_memory=row[3], new_memory=row[4],
        created_at=from_storage(row[5]), actor=row[6], user_id=row[7], agent_id=row[8], run_id=row[9],
        metadata=json.loads(row[10]),
    )
