"""The embedded default store: one SQLite file (WAL) with FTS5 for BM25 and float32 vectors in a
table, searched over a per-scope matrix cached in memory: an exact numpy scan, or above a size
threshold an in-memory IVF index derived from that matrix (``engram.store.vector_index``).

Why not sqlite-vec or an HNSW file: sqlite-vec's brute force is ~8x slower than numpy, and HNSW
libraries answer in under 1 ms but take minutes to hours to build on two cores and need a second
file to keep consistent with the database. Scopes are usually far smaller than the whole store."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engram._lazy import LazyModule
from engram.errors import StorageError
from engram.models import Episode, ExtractionState, HistoryEvent, MemoryItem, Scope
from engram.store import sqlite_scope_bm25
from engram.store.base import (
    EMBEDDER_SETTING,
    MAX_TURN_SPAN,
    Candidate,
    ChangeSet,
    ListQuery,
    RecentText,
    Store,
)
from engram.store.filter_sql import RECENT_TEXTS_SQL, SCOPE_COUNTS_SQL
from engram.store.integrity import ORPHAN_QUERIES, SQLITE_FTS_QUERIES, count_orphans
from engram.store.sqlite_checkpoint import BackgroundCheckpointer
from engram.store.sqlite_fts import TermCounts, bm25_search, passing, rowid_range
from engram.store.sqlite_rows import (
    EPISODE_COLUMNS,
    MEMORY_COLUMNS,
    attach_sources,
    chunks,
    episode_from_row,
    history_from_row,
    locked_connection,
    memory_from_row,
    meta,
    placeholders,
    scope_match,
    vector_blob,
)
from engram.store.sqlite_schema import SCHEMA_VERSION, migrate
from engram.store.sqlite_sql import where_clause
from engram.store.sqlite_vectors import VectorCache
from engram.store.sqlite_write import FtsWrites, write_changes
from engram.store.vector_index import ANN_MIN_VECTORS, ScopeVectors
from engram.timeutil import to_storage, utcnow

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy")  # numpy loads on the first vector read or write, not for `engram get`/`list`


class SQLiteStore(Store):
    """Store backed by one SQLite file. Safe across threads (one guarded connection) and across
    processes (WAL, ``BEGIN IMMEDIATE`` write transactions, a generous busy timeout)."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", busy_timeout_s: float = 60.0,
                 ann_min_vectors: int = ANN_MIN_VECTORS, cache_mib: int | None = None,
                 exact_lexical: bool = False) -> None:
        """Open (creating and migrating) the store at ``path``. Scopes holding ``ann_min_vectors`` or more
        vectors are searched through an in-memory IVF index (``engram.store.vector_index``); ``cache_mib``
        sets SQLite's page cache of this connection (default: SQLite's own, about 2 MiB);
        ``exact_lexical`` scores every row matching a query instead of the rows holding its rarest words
        (the baseline ``engram bench scale`` compares the default with)."""
        self.path = Path(path)
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StorageError(f"unknown synchronous mode {synchronous!r}", field="sqlite_synchronous")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
            )
            self._connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._connection.execute("PRAGMA journal_mode = WAL")
            self._connection.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            self._connection.execute("PRAGMA foreign_keys = ON")
            self._connection.execute("PRAGMA secure_delete = ON")
            if cache_mib is not None:
                self._connection.execute(f"PRAGMA cache_size = -{int(cache_mib) * 1024}")
            migrate(self._connection)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open SQLite store at {self.path}: {exc}", field="path",
                               hint="check the path is a writable Engram database file") from exc
        self._lock = threading.RLock()
        self._depth = 0
        self.ann_min_vectors = ann_min_vectors
        self.exact_lexical = exact_lexical
        self._vectors = VectorCache(min_vectors=ann_min_vectors)
        self._term_counts = TermCounts()
        self._fts = FtsWrites()
        self._checkpointer = BackgroundCheckpointer(self.path, synchronous=synchronous.upper())

    # -- transactions -------------------------------------------------------------------------

    def _connected(self) -> AbstractContextManager[sqlite3.Connection]:
        """Hold the connection lock and turn sqlite3 errors into StorageError."""
        return locked_connection(self._lock, self._connection, f"SQLite error on {self.path.name}",
                                 hint="the store is unchanged; retry, or check disk space and permissions")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connected() as connection:
            outermost = self._depth == 0
            if outermost:
                connection.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield connection
                if outermost:
                    self._fts.flush(connection)
            except BaseException:
                self._depth -= 1
                self._vectors.clear()
                if outermost:
                    self._fts.clear()
                    connection.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outermost:
                connection.execute("COMMIT")
                self._checkpointer.committed()

    @contextmanager
    def locked(self, scope: Scope) -> Iterator[None]:
        with self._transaction():
            yield

    # -- writes ---------------------------------------------------------------------------------

    def apply(self, changes: ChangeSet) -> None:
        if changes.is_empty():
            return
        with self._transaction() as connection:
            write_changes(connection, changes, self._fts)
            self._vectors.patch(connection, [*(m.id for m in changes.memories), *changes.context,
                                             *changes.delete_memories])
            self._term_counts.written()

    def touch(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        now = to_storage(utcnow())
        with self._transaction() as connection:
            for chunk in chunks(ids):
                connection.execute(
                    f"UPDATE memories SET access_count = access_count + 1, last_accessed_at = ? "
                    f"WHERE id IN ({placeholders(len(chunk))})", [now, *chunk])

    def reset(self) -> None:
        with self._transaction() as connection:
            self._vectors.clear()
            self._fts.clear()
            for table in ("memory_sources", "vectors", "memories_fts", "memories", "history", "episodes"):
                connection.execute(f"DELETE FROM {table}")
            connection.execute("DELETE FROM meta WHERE key = ?", (EMBEDDER_SETTING,))

    # -- reads ----------------------------------------------------------------------------------

    def get_memories(self, ids: Sequence[str]) -> list[MemoryItem]:
        found: dict[str, MemoryItem] = {}
        with self._connected() as connection:
            for chunk in chunks(list(dict.fromkeys(ids))):
                rows = connection.execute(
                    f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id IN ({placeholders(len(chunk))})", list(chunk)
                ).fetchall()
                memories = [memory_from_row(row) for row in rows]
                attach_sources(connection, memories)
                found.update((memory.id, memory) for memory in memories)
        return [found[i] for i in ids if i in found]

    def memories_citing(self, episode_ids: Sequence[str], *, kind: str | None = None) -> list[MemoryItem]:
        ids: list[str] = []
        with self._connected() as connection:
            for chunk in chunks(list(dict.fromkeys(episode_ids))):
                ids.extend(row[0] for row in connection.execute(
                    "SELECT DISTINCT s.memory_id FROM memory_sources s JOIN memories m ON m.id = s.memory_id "
                    f"WHERE s.episode_id IN ({placeholders(len(chunk))}) AND (? IS NULL OR m.kind = ?)",
                    [*chunk, kind, kind]))
        return self.get_memories(list(dict.fromkeys(ids)))

    def list_memories(self, query: ListQuery) -> list[MemoryItem]:
        where, params = where_clause(query)
        with self._connected() as connection:
            rows = connection.execute(
                f"SELECT {', '.join('m.' + c.strip() for c in MEMORY_COLUMNS.split(','))} FROM memories m "
                f"WHERE {where} ORDER BY m.created_at DESC, m.rowid DESC LIMIT ? OFFSET ?",
                [*params, query.limit, query.offset],
            ).fetchall()
            memories = [memory_from_row(row) for row in rows]
            attach_sources(connection, memories)
        return memories

    def recent_texts(self, query: ListQuery) -> list[RecentText]:
        where, params = where_clause(query)
        with self._connected() as connection:
            rows = connection.execute(RECENT_TEXTS_SQL.format(where=where, position="rowid", vector="v.vec", mark="?"),
                                      [*params, query.limit, query.offset]).fetchall()
        return [RecentText(memory_id, text, writer,
                           None if blob is None else np.frombuffer(blob, dtype=np.float32).copy())
                for memory_id, text, writer, blob in rows]

    def count_memories(self, query: ListQuery) -> int:
        where, params = where_clause(query)
        with self._connected() as connection:
            return int(connection.execute(f"SELECT count(*) FROM memories m WHERE {where}", params).fetchone()[0])

    def get_episodes(self, ids: Sequence[str]) -> list[Episode]:
        found: dict[str, Episode] = {}
        with self._connected() as connection:
            for chunk in chunks(list(dict.fromkeys(ids))):
                rows = connection.execute(
                    f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE id IN ({placeholders(len(chunk))})", list(chunk)
                ).fetchall()
                found.update((row[0], episode_from_row(row)) for row in rows)
        return [found[i] for i in ids if i in found]

    def list_episodes(self, scope: Scope, *, limit: int = 1000, offset: int = 0,
                      extraction: ExtractionState | None = None) -> list[Episode]:
        conditions = [f"{column} = ?" for column, _ in scope.items()]
        params: list[object] = [value for _, value in scope.items()]
        if extraction is not None:
            conditions.append("extraction = ?")
            params.append(extraction)
        where = " AND ".join(conditions) or "1"
        with self._connected() as connection:
            rows = connection.execute(
                f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE {where} ORDER BY occurred_at, rowid LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
        return [episode_from_row(row) for row in rows]

    def history(self, memory_id: str) -> list[HistoryEvent]:
        with self._connected() as connection:
            rows = connection.execute(
                "SELECT id, memory_id, event, old_memory, new_memory, created_at, actor, user_id, agent_id, run_id, "
                "metadata FROM history WHERE memory_id = ? ORDER BY rowid", (memory_id,)
            ).fetchall()
        return [history_from_row(row) for row in rows]

    def lexical_search(self, terms: Sequence[str], query: ListQuery) -> list[Candidate]:
        if not terms or query.limit <= 0:
            return []
        return self._lexical(terms, query, by_user=True, prune=True)

    def _lexical(self, terms: Sequence[str], query: ListQuery, *, by_user: bool, prune: bool) -> list[Candidate]:
        """BM25 search; ``by_user`` reads only the FTS rowid range of the scope's user (when it has one and is
        not the store's only user) instead of every match in the store (same ranking); ``prune`` scores only
        the rows holding the rarest words of a query matching too many (``engram.store.sqlite_fts``), and a
        user of at most 2,000 memories among others with the user's own statistics
        (``engram.store.sqlite_scope_bm25``)."""
        where, params = where_clause(query)
        user = query.scope.user_id
        with self._connected() as connection:
            self._fts.flush(connection)
            bounds: list[int] = []
            lengths = None
            if by_user and user is not None and not sqlite_scope_bm25.sole_user(connection, user):
                bounds = list(rowid_range(user))
                lengths = sqlite_scope_bm25.scope_lengths(connection, bounds, user) if prune else None
            if lengths is not None:
                ranked = sqlite_scope_bm25.scope_bm25(connection, terms, bounds, lengths)
                found = passing(connection, ranked, where, params, query.limit)
            else:
                pruned = prune and not self.exact_lexical
                found = bm25_search(connection, terms, where, params, bounds, query.limit,
                                    self._term_counts if pruned else None)
        return [Candidate(memory_id, score) for memory_id, score in found]

    def vector_search(self, vector: np.ndarray, query: ListQuery) -> list[Candidate]:
        if query.limit <= 0:
            return []
        vectors = self._scope_vectors(query)
        if not vectors.ids:
            return []
        now = None if query.include_invalid else utcnow().timestamp()
        return [Candidate(memory_id, score) for memory_id, score in vectors.search(vector, query.limit, now=now)]

    def _scope_vectors(self, query: ListQuery) -> ScopeVectors:
        """Ids, vectors and valid_to of every memory the query's scope, filters and status select (validity
        is applied at search time), with an IVF index when there are ``ann_min_vectors`` or more; cached,
        and patched by this connection's writes (``engram.store.sqlite_vectors``)."""
        where, params = where_clause(ListQuery(scope=query.scope, node=query.node, include_invalid=True,
                                               include_quarantined=query.include_quarantined,
                                               include_archived=query.include_archived, kinds=query.kinds))
        with self._connected() as connection:
            return self._vectors.get(connection, where, params)

    def get_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        with self._connected() as connection:
            vectors = self._vectors.held(connection, ids)
            for chunk in chunks([memory_id for memory_id in ids if memory_id not in vectors]):
                for memory_id, blob in connection.execute(
                    f"SELECT memory_id, vec FROM vectors WHERE memory_id IN ({placeholders(len(chunk))})", list(chunk)
                ):
                    vectors[memory_id] = np.frombuffer(blob, dtype=np.float32).copy()
        return vectors

    def get_turn_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        vectors: dict[str, np.ndarray] = {}
        with self._connected() as connection:
            for chunk in chunks(list(ids)):
                for memory_id, blob in connection.execute(
                    f"SELECT memory_id, coalesce(turn_vec, vec) FROM vectors "
                    f"WHERE memory_id IN ({placeholders(len(chunk))})", list(chunk)
                ):
                    vectors[memory_id] = np.frombuffer(blob, dtype=np.float32).copy()
        return vectors

    def memory_ids(self, *, after: str = "", limit: int = 1000) -> list[str]:
        with self._connected() as connection:
            return [row[0] for row in connection.execute(
                "SELECT id FROM memories WHERE id > ? ORDER BY id LIMIT ?", (after, limit))]

    def replace_vectors(self, vectors: Mapping[str, np.ndarray], turn_vectors: Mapping[str, np.ndarray], *,
                        embedder: str, dim: int | None = None) -> None:
        with self._transaction() as connection:
            connection.executemany(
                "INSERT INTO vectors (memory_id, vec, turn_vec) SELECT ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM memories WHERE id = ?) ON CONFLICT(memory_id) DO UPDATE "
                "SET vec = excluded.vec, turn_vec = coalesce(excluded.turn_vec, vectors.turn_vec)",
                [(memory_id, vector_blob(vector), vector_blob(turn_vectors.get(memory_id)), memory_id)
                 for memory_id, vector in vectors.items()])
            self._vectors.patch(connection, list(vectors))
            connection.execute("INSERT INTO meta (key, value) VALUES ('embedder', ?) "
                               "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (embedder,))

    def turns_around(self, first_id: str, last_id: str, width: int) -> list[MemoryItem]:
        with self._connected() as connection:
            anchors = {row[0]: row[1:] for row in connection.execute(
                "SELECT id, valid_from, rowid, user_id, agent_id, run_id FROM memories WHERE id IN (?, ?)",
                (first_id, last_id))}
            if first_id not in anchors or last_id not in anchors:
                return []
            first, last = anchors[first_id][:2], anchors[last_id][:2]
            scope_sql, scope_params = scope_match(Scope(user_id=anchors[first_id][2],
                                                         agent_id=anchors[first_id][3], run_id=anchors[first_id][4]))
            base = (f"SELECT {', '.join('m.' + c.strip() for c in MEMORY_COLUMNS.split(','))} FROM memories m "
                    f"WHERE {scope_sql} AND m.kind = 'episode' AND m.status != 'quarantined' "
                    "AND m.valid_from IS NOT NULL AND ")
            before = connection.execute(
                base + "(m.valid_from, m.rowid) < (?, ?) ORDER BY m.valid_from DESC, m.rowid DESC LIMIT ?",
                [*scope_params, *first, width]).fetchall()
            span = connection.execute(
                base + "(m.valid_from, m.rowid) >= (?, ?) AND (m.valid_from, m.rowid) <= (?, ?) "
                "ORDER BY m.valid_from, m.rowid LIMIT ?", [*scope_params, *first, *last, MAX_TURN_SPAN]).fetchall()
            after = connection.execute(
                base + "(m.valid_from, m.rowid) > (?, ?) ORDER BY m.valid_from, m.rowid LIMIT ?",
                [*scope_params, *last, width]).fetchall()
            turns = [memory_from_row(row) for row in [*reversed(before), *span, *after]]
            attach_sources(connection, turns)
        return turns

    def scope_counts(self, scope: Scope | None = None) -> list[tuple[Scope, str, int]]:
        pairs = scope.items() if scope else []
        where = ("WHERE " + " AND ".join(f"{column} = ?" for column, _ in pairs)) if pairs else ""
        params = [value for _, value in pairs]
        with self._connected() as connection:
            rows = connection.execute(SCOPE_COUNTS_SQL.format(where=where), params + params).fetchall()
        return [(Scope(user_id=u, agent_id=a, run_id=r), kind, int(n)) for u, a, r, kind, n in rows]

    def scope_ids(self, scope: Scope) -> tuple[list[str], list[str]]:
        if scope.is_empty():
            raise StorageError("refusing to enumerate an empty scope", field="scope")
        conditions = " AND ".join(f"{column} = ?" for column, _ in scope.items())
        params = [value for _, value in scope.items()]
        with self._connected() as connection:
            memories = [r[0] for r in connection.execute(f"SELECT id FROM memories WHERE {conditions}", params)]
            episodes = [r[0] for r in connection.execute(f"SELECT id FROM episodes WHERE {conditions}", params)]
        return memories, episodes

    def stats(self, scope: Scope | None = None) -> dict[str, int | str]:
        conditions = " AND ".join(f"{column} = ?" for column, _ in scope.items()) if scope else ""
        params = [value for _, value in scope.items()] if scope else []
        where = f"WHERE {conditions}" if conditions else ""
        with self._connected() as connection:
            def count(sql: str) -> int:
                return int(connection.execute(sql, params).fetchone()[0])

            result: dict[str, int | str] = {
                "backend": "sqlite",
                "path": str(self.path),
                "schema_version": SCHEMA_VERSION,
                "episodes": count(f"SELECT count(*) FROM episodes {where}"),
                "memories": count(f"SELECT count(*) FROM memories {where}"),
                "memories_active": count(
                    f"SELECT count(*) FROM memories {where} {'AND' if where else 'WHERE'} status = 'active' "
                    "AND valid_to IS NULL"),
                "memories_quarantined": count(
                    f"SELECT count(*) FROM memories {where} {'AND' if where else 'WHERE'} status = 'quarantined'"),
                "memories_archived": count(
                    f"SELECT count(*) FROM memories {where} {'AND' if where else 'WHERE'} status = 'archived'"),
                "history_events": count(f"SELECT count(*) FROM history {where}"),
                "embedder": meta(connection, "embedder") or "",
            }
        result["file_bytes"] = sum(p.stat().st_size for p in self._files() if p.exists())
        return result

    def _files(self) -> list[Path]:
        return [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]

    def iter_all(self) -> Iterator[Episode | MemoryItem | HistoryEvent]:
        with self._connected() as connection:
            episode_ids = [r[0] for r in connection.execute("SELECT id FROM episodes ORDER BY rowid")]
            memory_ids = [r[0] for r in connection.execute("SELECT id FROM memories ORDER BY rowid")]
            history_rows = connection.execute(
                "SELECT id, memory_id, event, old_memory, new_memory, created_at, actor, user_id, agent_id, run_id, "
                "metadata FROM history ORDER BY rowid").fetchall()
        for chunk in chunks(episode_ids):
            yield from self.get_episodes(chunk)
        for chunk in chunks(memory_ids):
            yield from self.get_memories(chunk)
        for row in history_rows:
            yield history_from_row(row)

    def setting(self, key: str, default: str) -> str:
        with self._transaction() as connection:
            stored = meta(connection, key)
            if stored is None:
                connection.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, default))
                return default
            return stored

    def check_integrity(self, user_prefix: str = "") -> dict[str, Any]:
        """``PRAGMA integrity_check``, FTS5's own integrity check, and the orphan counts."""
        with self._transaction() as connection:
            pages = [row[0] for row in connection.execute("PRAGMA integrity_check")]
            try:
                connection.execute("INSERT INTO memories_fts(memories_fts) VALUES ('integrity-check')")
                fts = "ok"
            except sqlite3.DatabaseError as error:
                fts = str(error)
            orphans = count_orphans(connection.execute, "?", user_prefix, {**ORPHAN_QUERIES, **SQLITE_FTS_QUERIES})
        return {"integrity_check": pages, "fts_integrity_check": fts, "orphans": orphans,
                "ok": pages == ["ok"] and fts == "ok" and not any(orphans.values())}

    def purge(self) -> None:
        """Merge FTS5 segments (dropping deleted terms), zero freed pages (secure_delete is on) and
        checkpoint the WAL into the main file, truncating it."""
        with self._connected() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute("INSERT INTO memories_fts(memories_fts) VALUES ('optimize')")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def backup(self, target: str) -> None:
        destination = Path(target)
        if destination.resolve() == self.path.resolve():
            raise StorageError("the backup target is the store itself", field="target")
        destination.parent.mkdir(parents=True, exist_ok=True)
        with self._connected() as connection:
            copy = sqlite3.connect(str(destination))
            try:
                connection.backup(copy)
            finally:
                copy.close()

    def restore(self, source: str) -> None:
        origin = Path(source)
        if not origin.is_file():
            raise StorageError(f"no backup file at {origin}", field="source")
        snapshot = sqlite3.connect(f"file:{origin}?mode=ro", uri=True)
        try:
            if snapshot.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise StorageError(f"{origin} fails SQLite's integrity check", field="source")
            with self._connected() as connection:
                self._vectors.clear()
                snapshot.backup(connection)
                migrate(connection)
        finally:
            snapshot.close()

    def close(self) -> None:
        self._checkpointer.close()
        with self._lock:
            self._vectors.clear()
            self._connection.close()
