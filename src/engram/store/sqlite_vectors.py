"""The SQLite store's in-memory vectors: per-scope matrices (``ScopeVectors``) loaded on the first
vector search of a scope and kept in an LRU cache.

Writes made through this connection patch the cached scopes in the same transaction (``patch``: the
changed rows are read back under each cached scope's own filter, so a row joins, changes or leaves a
scope exactly as a reload would have it); a rolled-back transaction empties the cache. Changes
committed by other connections or processes bump SQLite's ``PRAGMA data_version``, which empties it
too, so the next search reloads from the file."""

from __future__ import annotations

import json
import sqlite3
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engram._lazy import LazyModule
from engram.store.vector_index import ANN_MIN_VECTORS, ScopeVectors
from engram.timeutil import from_storage

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy")  # loaded on the first vector search, not for `engram get`/`list`

#: Scopes (query filters) kept in memory at once.
CACHE_ENTRIES = 8
#: The rows of given ids (a JSON array) that a scope's condition selects. ``CROSS JOIN`` keeps the ids as
#: the outer loop, so each is one primary-key lookup: with ``m.id IN (...)`` of 20 or more ids SQLite's
#: planner walks the scope's ``user_id`` index instead, reading the whole scope.
PATCH_SELECT = ("SELECT m.id, v.vec, m.valid_to FROM json_each(?) AS wanted CROSS JOIN memories m "
                "ON m.id = wanted.value JOIN vectors v ON v.memory_id = m.id WHERE ")
_SELECT = "SELECT m.id, v.vec, m.valid_to, m.rowid FROM memories m JOIN vectors v ON v.memory_id = m.id WHERE "
Key = tuple[str, tuple[object, ...]]
#: Rows read from SQLite at a time when a scope's vectors are loaded.
_READ_BATCH = 4096


def _valid_to(text: str | None) -> float:
    return from_storage(text).timestamp() if text else float(np.inf)


def _read_scope(connection: sqlite3.Connection, where: str, params: Sequence[object],
                ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Ids, vectors (one row each) and validity ends of the memories ``where`` selects, in rowid order. The
    matrix is filled a batch of rows at a time: a million-memory scope held its 1.5 GB of vectors three
    times over while the rows, their joined bytes and the matrix coexisted. Rows come in the order of the
    index SQLite walks and are put in rowid order here: an ``ORDER BY`` sorted the blobs in a temporary
    B-tree (22 s of the 78 s first search of a million-memory scope)."""
    capacity = int(connection.execute(f"SELECT count(*) FROM memories m WHERE {where}", list(params)).fetchone()[0])
    cursor = connection.execute(f"{_SELECT}{where}", list(params))
    ids: list[str] = []
    valid_to: list[float] = []
    rowids: list[int] = []
    matrix = np.zeros((0, 0), dtype=np.float32)
    while rows := cursor.fetchmany(_READ_BATCH):
        block = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32).reshape(len(rows), -1)
        if not ids:
            matrix = np.empty((max(capacity, len(rows)), block.shape[1]), dtype=np.float32)
        if len(ids) + len(rows) > len(matrix):  # rows written since the count
            matrix = np.concatenate([matrix, np.empty_like(matrix)])
        matrix[len(ids):len(ids) + len(rows)] = block
        ids.extend(row[0] for row in rows)
        valid_to.extend(_valid_to(row[2]) for row in rows)
        rowids.extend(row[3] for row in rows)
    matrix, ends = matrix[:len(ids)], np.array(valid_to, dtype=np.float64)
    positions = np.array(rowids, dtype=np.int64)
    if (np.diff(positions) < 0).any():
        order = np.argsort(positions, kind="stable")
        return [ids[i] for i in order], matrix[order], ends[order]
    return ids, matrix, ends


class VectorCache:
    """Cached ``ScopeVectors`` keyed by a scope query's WHERE clause and its parameters."""

    def __init__(self, *, min_vectors: int = ANN_MIN_VECTORS, entries: int = CACHE_ENTRIES) -> None:
        self.min_vectors = min_vectors
        self.entries = entries
        self._scopes: OrderedDict[Key, ScopeVectors] = OrderedDict()
        self._data_version = -1

    def __len__(self) -> int:
        return len(self._scopes)

    def clear(self) -> None:
        """Forget every scope (the next search of each reloads it)."""
        self._scopes.clear()

    def _drop_if_written_elsewhere(self, connection: sqlite3.Connection) -> None:
        """Empty the cache when another connection has committed since it was filled."""
        version = int(connection.execute("PRAGMA data_version").fetchone()[0])
        if version != self._data_version:
            self._scopes.clear()
            self._data_version = version

    def get(self, connection: sqlite3.Connection, where: str, params: Sequence[object]) -> ScopeVectors:
        """The vectors of the memories ``where`` (over ``memories m``) selects, from the cache when no other
        connection has written since."""
        self._drop_if_written_elsewhere(connection)
        key = (where, tuple(params))
        cached = self._scopes.get(key)
        if cached is not None:
            self._scopes.move_to_end(key)
            return cached
        ids, matrix, valid_to = _read_scope(connection, where, params)
        vectors = ScopeVectors.build(ids, matrix, valid_to, min_vectors=self.min_vectors)
        self._scopes[key] = vectors
        while len(self._scopes) > self.entries:
            self._scopes.popitem(last=False)
        return vectors

    def held(self, connection: sqlite3.Connection, memory_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of those of ``memory_ids`` that a cached scope holds (copies): a search's
        candidates found by the vector index are there, and reading them back from the file cost 3 ms for
        190 of them in a 100,000-memory scope."""
        if not self._scopes:
            return {}
        self._drop_if_written_elsewhere(connection)
        found: dict[str, np.ndarray] = {}
        for vectors in self._scopes.values():
            for memory_id in memory_ids:
                row = vectors.position.get(memory_id)
                if row is not None and memory_id not in found:
                    found[memory_id] = vectors.matrix[row].copy()
        return found

    def patch(self, connection: sqlite3.Connection, memory_ids: Sequence[str]) -> None:
        """Bring every cached scope up to date with the rows of ``memory_ids`` as this connection now sees
        them (written, changed or deleted in the current transaction)."""
        ids = list(dict.fromkeys(memory_ids))
        if not ids or not self._scopes:
            return
        for key, vectors in list(self._scopes.items()):
            where, params = key
            found: dict[str, tuple[bytes, str | None]] = {
                memory_id: (blob, valid_to) for memory_id, blob, valid_to in
                connection.execute(f"{PATCH_SELECT}({where})", [json.dumps(ids), *params])}
            for memory_id in ids:
                if memory_id in found:
                    blob, valid_to = found[memory_id]
                    vectors.upsert(memory_id, np.frombuffer(blob, dtype=np.float32), _valid_to(valid_to))
                else:
                    vectors.remove(memory_id)
            if vectors.stale():
                self._scopes[key] = vectors.compacted(min_vectors=self.min_vectors)
