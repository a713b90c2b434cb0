"""The write side of the SQLite store: one ``ChangeSet`` written inside the caller's transaction
(``engram.store.sqlite.SQLiteStore.apply``), with the FTS rows kept in step with the memories.

FTS rows are not written where they change but collected (``FtsWrites``) and written once each, in
rowid order, just before the transaction commits (or before anything in it reads the index). FTS5
keeps a transaction's new terms in memory and flushes them into a new index segment whenever a row
arrives out of rowid order or a statement on another table opens a savepoint: written in place, one
single-turn ``add`` (the new turn, then each re-keyed neighbour, each after an ``UPDATE memories``)
made a segment per row, and the index paid for merging them on later writes and searches."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engram.models import MemoryItem
from engram.store.base import ChangeSet, TurnContext
from engram.store.sqlite_fts import fts_rowid
from engram.store.sqlite_rows import EPISODE_COLUMNS, MEMORY_COLUMNS, chunks, placeholders, vector_blob
from engram.timeutil import to_storage

if TYPE_CHECKING:
    import numpy as np


class FtsWrites:
    """The FTS rows a transaction rewrites (``None``: deleted), written by ``flush``."""

    def __init__(self) -> None:
        self._rows: dict[int, tuple[str, str] | None] = {}

    def put(self, key: int, text: str, keys: str) -> None:
        """(Re)write the FTS row ``key`` (an ``engram.store.sqlite_fts.fts_rowid``)."""
        self._rows[key] = (text, keys)

    def drop(self, key: int) -> None:
        """Delete the FTS row ``key``."""
        self._rows[key] = None

    def clear(self) -> None:
        """Forget the pending rows (the transaction rolled back)."""
        self._rows.clear()

    def flush(self, connection: sqlite3.Connection) -> None:
        """Write the pending rows, in ascending rowid order, on ``connection`` (inside the transaction)."""
        if not self._rows:
            return
        rows, self._rows = sorted(self._rows.items()), {}
        for key, row in rows:
            connection.execute("DELETE FROM memories_fts WHERE rowid = ?", (key,))
            if row is not None:
                connection.execute("INSERT INTO memories_fts (rowid, text, index_keys) VALUES (?, ?, ?)",
                                   (key, *row))


def write_changes(connection: sqlite3.Connection, changes: ChangeSet, fts: FtsWrites) -> None:
    """Write ``changes`` on ``connection`` (already inside a transaction), their FTS rows into ``fts``."""
    _many(
        connection, f"INSERT INTO episodes ({EPISODE_COLUMNS}) VALUES ({placeholders(12)})",
        [(e.id, e.user_id, e.agent_id, e.run_id, e.role, e.name, e.content, to_storage(e.occurred_at),
          to_storage(e.recorded_at), json.dumps(e.metadata), e.hash, e.extraction) for e in changes.episodes],
    )
    _many(
        connection, "UPDATE episodes SET extraction = ? WHERE id = ?",
        [(state, episode_id) for episode_id, state in changes.update_episode_extraction.items()],
    )
    for memory in changes.memories:
        upsert_memory(connection, fts, memory, changes.vectors.get(memory.id), changes.turn_vectors.get(memory.id))
    for memory_id, context in changes.context.items():
        set_context(connection, fts, memory_id, context)
    delete_memories(connection, fts, changes.delete_memories)
    for chunk in chunks(changes.delete_episodes):
        connection.execute(f"DELETE FROM episodes WHERE id IN ({placeholders(len(chunk))})", list(chunk))
    for chunk in chunks(changes.delete_episodes_if_orphaned):
        connection.execute(
            f"DELETE FROM episodes WHERE id IN ({placeholders(len(chunk))}) "
            "AND NOT EXISTS (SELECT 1 FROM memory_sources s WHERE s.episode_id = episodes.id)", list(chunk))
    for chunk in chunks(changes.erase_history_text):
        connection.execute(
            f"UPDATE history SET old_memory = NULL, new_memory = NULL, metadata = '{{}}' "
            f"WHERE memory_id IN ({placeholders(len(chunk))})", list(chunk))
    _many(
        connection, "UPDATE history SET user_id = ?, agent_id = ?, run_id = ? WHERE memory_id = ?",
        [(scope.user_id, scope.agent_id, scope.run_id, memory_id)
         for memory_id, scope in changes.history_scopes.items()])
    _many(
        connection, "INSERT INTO history (id, memory_id, event, old_memory, new_memory, created_at, actor, user_id, "
        "agent_id, run_id, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(h.id, h.memory_id, h.event.value, h.old_memory, h.new_memory, to_storage(h.created_at), h.actor,
          h.user_id, h.agent_id, h.run_id, json.dumps(h.metadata)) for h in changes.history],
    )


def _many(connection: sqlite3.Connection, sql: str, rows: list[tuple[object, ...]]) -> None:
    """``executemany`` when there are rows: a single-turn ``add`` runs six of these statements without any
    (its second write, the neighbours' context, has none of them)."""
    if rows:
        connection.executemany(sql, rows)


def fts_keys(index_keys: str, context_keys: str) -> str:
    """What the FTS ``index_keys`` column holds: a memory's own keys, then its neighbours' text."""
    return "\n".join(part for part in (index_keys, context_keys) if part)


def upsert_memory(connection: sqlite3.Connection, fts: FtsWrites, memory: MemoryItem, vector: np.ndarray | None,
                  turn_vector: np.ndarray | None) -> None:
    """Insert or replace ``memory`` with its FTS row, sources and (when given) vectors."""
    values = (memory.id, memory.memory, memory.kind, memory.user_id, memory.agent_id, memory.run_id,
              json.dumps(memory.metadata), to_storage(memory.valid_from) if memory.valid_from else None,
              to_storage(memory.valid_to) if memory.valid_to else None, to_storage(memory.created_at),
              to_storage(memory.updated_at), memory.hash, memory.status, memory.writer, memory.index_keys,
              memory.access_count, to_storage(memory.last_accessed_at) if memory.last_accessed_at else None,
              memory.context_keys, "\n".join(memory.attributes))
    row = connection.execute(
        f"INSERT INTO memories ({MEMORY_COLUMNS}) VALUES ({placeholders(19)}) "
        "ON CONFLICT(id) DO UPDATE SET text=excluded.text, kind=excluded.kind, metadata=excluded.metadata, "
        "valid_from=excluded.valid_from, valid_to=excluded.valid_to, updated_at=excluded.updated_at, "
        "hash=excluded.hash, status=excluded.status, writer=excluded.writer, index_keys=excluded.index_keys, "
        "access_count=excluded.access_count, last_accessed_at=excluded.last_accessed_at, "
        "context_keys=excluded.context_keys, attributes=excluded.attributes RETURNING rowid, user_id",
        values,
    ).fetchone()
    fts.put(fts_rowid(row[0], row[1]), memory.memory, fts_keys(memory.index_keys, memory.context_keys))
    connection.execute("DELETE FROM memory_sources WHERE memory_id = ?", (memory.id,))
    connection.executemany(
        "INSERT INTO memory_sources (memory_id, episode_id, position) VALUES (?, ?, ?)",
        [(memory.id, source.id, position) for position, source in enumerate(memory.sources)],
    )
    if vector is not None:
        connection.execute(
            "INSERT INTO vectors (memory_id, vec, turn_vec) VALUES (?, ?, ?) ON CONFLICT(memory_id) DO UPDATE "
            "SET vec = excluded.vec, turn_vec = coalesce(excluded.turn_vec, vectors.turn_vec)",
            (memory.id, vector_blob(vector), vector_blob(turn_vector)))


def set_context(connection: sqlite3.Connection, fts: FtsWrites, memory_id: str, context: TurnContext) -> None:
    """Store a turn's conversation context: its ``context_keys`` (and FTS row) and its mixed vector."""
    row = connection.execute(
        "UPDATE memories SET context_keys = ? WHERE id = ? RETURNING rowid, user_id, text, index_keys",
        (context.keys, memory_id)).fetchone()
    if row is None:
        return
    fts.put(fts_rowid(row[0], row[1]), row[2], fts_keys(row[3], context.keys))
    connection.execute("INSERT INTO vectors (memory_id, vec) VALUES (?, ?) ON CONFLICT(memory_id) DO UPDATE "
                       "SET vec = excluded.vec", (memory_id, vector_blob(context.vector)))


def delete_memories(connection: sqlite3.Connection, fts: FtsWrites, ids: Sequence[str]) -> None:
    """Delete memories with their FTS rows (sources and vectors go by foreign-key cascade)."""
    for chunk in chunks(ids):
        marks = placeholders(len(chunk))
        for rowid, user_id in connection.execute(f"SELECT rowid, user_id FROM memories WHERE id IN ({marks})",
                                                 list(chunk)).fetchall():
            fts.drop(fts_rowid(rowid, user_id))
        connection.execute(f"DELETE FROM memories WHERE id IN ({marks})", list(chunk))
