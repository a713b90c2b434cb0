"""The PostgreSQL store: the same model as ``SQLiteStore`` on PostgreSQL >= 15 with pgvector.

Full-text search uses two ``tsvector`` columns, the text and the keys (English stemming, no stop
words, diacritics folded; a GIN index each), ranked with BM25 computed in SQL from the indexes
(``postgres_read``, which holds the reads). Vectors live in a
``vector(dim)`` column with an HNSW index on inner product: embeddings are unit length, so this is
cosine similarity and the scores equal SQLite's exact dot products. ``locked`` holds a transaction
with per-scope-id advisory locks; everything the same thread does inside joins that transaction.
Safe across threads (a psycopg connection pool) and processes (transactions, advisory locks)."""

from __future__ import annotations

import hashlib
import re
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from engram.config import HNSW_EF_SEARCH, HNSW_GRAPH
from engram.errors import ConfigurationError, EngramError, StorageError
from engram.models import Episode, HistoryEvent, MemoryItem, Scope
from engram.store.base import EMBEDDER_SETTING, ChangeSet, Store
from engram.store.filter_sql import SCOPE_COUNTS_SQL
from engram.store.integrity import ORPHAN_QUERIES, count_orphans
from engram.store.postgres_read import (
    EPISODE_COLUMNS,
    HISTORY_COLUMNS,
    MAX_EF_SEARCH,
    MEMORY_COLUMNS,
    PostgresReads,
    history_from_row,
    vector_literal,
)
from engram.store.postgres_schema import (
    SCHEMA_VERSION,
    check_graph,
    ensure_vector_dim,
    migrate,
    release_vector_dim,
    stored_vector_dim,
)
from engram.store.postgres_sql import scope_clause
from engram.store.urls import postgres_location, redact_url
from engram.timeutil import utcnow

_CHUNK = 500
#: Seconds a pooled connection may sit idle and still be handed out without a check round trip.
CHECK_IDLE_S = 5.0
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_UPSERT_MEMORY = (
    f"INSERT INTO memories ({MEMORY_COLUMNS}) VALUES ({', '.join(['%s'] * 19)}) "
    "ON CONFLICT (id) DO UPDATE SET text = excluded.text, kind = excluded.kind, metadata = excluded.metadata, "
    "valid_from = excluded.valid_from, valid_to = excluded.valid_to, updated_at = excluded.updated_at, "
    "hash = excluded.hash, status = excluded.status, writer = excluded.writer, index_keys = excluded.index_keys, "
    "access_count = excluded.access_count, last_accessed_at = excluded.last_accessed_at, "
    "context_keys = excluded.context_keys, attributes = excluded.attributes"
)


def _chunks(items: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start:start + _CHUNK])


def _lock_keys(schema: str, scope: Scope) -> list[int]:
    """One 64-bit advisory lock key per scope id, sorted so that every caller locks in one order."""
    names = [f"engram:{schema}:{column}:{value}" for column, value in scope.items()] or [f"engram:{schema}"]
    return sorted(
        int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "big", signed=True)
        for name in names
    )


class PostgresStore(PostgresReads, Store):
    """Store backed by a PostgreSQL database with the pgvector extension."""

    def __init__(self, url: str, *, schema: str | None = None, min_pool_size: int = 1, max_pool_size: int = 10,
                 connect_timeout_s: float = 10.0, pool_timeout_s: float = 30.0,
                 hnsw_ef_search: int = HNSW_EF_SEARCH, hnsw_graph: tuple[int, int] = HNSW_GRAPH) -> None:
        """Connect to ``url`` (``postgresql://user:password@host:port/database``) and migrate.

        ``schema`` (or a ``schema=`` query parameter in the URL) keeps Engram's tables in that
        PostgreSQL schema, created if missing: several stores can share one database. ``hnsw_ef_search``
        is the HNSW candidate list size of vector searches (default :data:`HNSW_EF_SEARCH`), ``hnsw_graph``
        the ``(m, ef_construction)`` of the HNSW index built with the first vector (default
        :data:`HNSW_GRAPH`; an existing index keeps its own)."""
        if isinstance(hnsw_ef_search, bool) or not isinstance(hnsw_ef_search, int) \
                or not 1 <= hnsw_ef_search <= MAX_EF_SEARCH:
            raise ConfigurationError(f"must be an integer from 1 to {MAX_EF_SEARCH}, got {hnsw_ef_search!r}",
                                     field="hnsw_ef_search", hint=f"the tuned default is {HNSW_EF_SEARCH}")
        self.hnsw_ef_search = hnsw_ef_search
        self.hnsw_graph = check_graph(*hnsw_graph)
        if min_pool_size < 0 or max_pool_size < max(1, min_pool_size):
            raise ConfigurationError("need 0 <= min_pool_size <= max_pool_size and max_pool_size >= 1",
                                     field="max_pool_size")
        self.url, url_schema = postgres_location(url)
        self.schema = schema or url_schema or "public"
        if not _SCHEMA_NAME.fullmatch(self.schema):
            raise ConfigurationError(f"invalid schema name {self.schema!r}", field="schema",
                                     hint="use lowercase letters, digits and underscores (at most 63)")
        self._redacted = redact_url(self.url)
        connect_args: dict[str, Any] = {"autocommit": True, "connect_timeout": max(1, int(connect_timeout_s))}
        try:
            with psycopg.connect(self.url, **connect_args) as connection:
                connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
                self._configure(connection)
                migrate(connection)
        except EngramError:
            raise
        except psycopg.Error as exc:
            raise StorageError(f"cannot open PostgreSQL store at {self._redacted}: {exc}", field="url",
                               hint="check the URL, that the server is up and that pgvector is installed") from exc
        self._returned_at: weakref.WeakKeyDictionary[psycopg.Connection, float] = weakref.WeakKeyDictionary()
        self._pool = ConnectionPool(self.url, min_size=min_pool_size, max_size=max_pool_size, kwargs=connect_args,
                                    timeout=pool_timeout_s, check=self._check_if_idle, reset=self._mark_returned,
                                    configure=self._configure, open=True, name="engram")
        self._local = threading.local()

    def _check_if_idle(self, connection: psycopg.Connection) -> None:
        """Ping a pooled connection before handing it out only when it sat idle for over
        :data:`CHECK_IDLE_S` (a dropped one is then replaced instead of failing the call); a connection
        in steady use skips that round trip, which cost a search four of them."""
        if time.monotonic() - self._returned_at.get(connection, 0.0) > CHECK_IDLE_S:
            ConnectionPool.check_connection(connection)

    def _mark_returned(self, connection: psycopg.Connection) -> None:
        self._returned_at[connection] = time.monotonic()

    def _configure(self, connection: psycopg.Connection) -> None:
        connection.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(self.schema)))
        connection.execute("SET TIME ZONE 'UTC'")
        connection.execute("SET client_min_messages = warning")

    # -- transactions -------------------------------------------------------------------------

    def _connection(self) -> AbstractContextManager[psycopg.Connection]:
        """The thread's ``locked`` connection (in a savepoint), or a pooled one in its own transaction."""
        return self._read(transaction=True)

    @contextmanager
    def locked(self, scope: Scope) -> Iterator[None]:
        active: psycopg.Connection | None = getattr(self._local, "connection", None)
        if active is not None:
            with self._errors():
                for key in _lock_keys(self.schema, scope):
                    active.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            yield
            return
        with self._errors(), self._pool.connection() as connection, connection.transaction():
            for key in _lock_keys(self.schema, scope):
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            self._local.connection = connection
            try:
                yield
            finally:
                self._local.connection = None

    # -- writes ---------------------------------------------------------------------------------

    def apply(self, changes: ChangeSet) -> None:
        if changes.is_empty():
            return
        with self._connection() as connection, connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO episodes ({EPISODE_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})",
                [(e.id, e.user_id, e.agent_id, e.run_id, e.role, e.name, e.content, e.occurred_at, e.recorded_at,
                  Jsonb(e.metadata), e.hash, e.extraction) for e in changes.episodes],
            )
            cursor.executemany(
                "UPDATE episodes SET extraction = %s WHERE id = %s",
                [(state, episode_id) for episode_id, state in changes.update_episode_extraction.items()],
            )
            if changes.memories:
                self._upsert_memories(cursor, changes.memories, changes.vectors, changes.turn_vectors, self.hnsw_graph)
            if changes.context:
                cursor.executemany("UPDATE memories SET context_keys = %s WHERE id = %s",
                                   [(context.keys, memory_id) for memory_id, context in changes.context.items()])
                cursor.executemany(
                    "INSERT INTO vectors (memory_id, embedding) SELECT %s, %s::vector "
                    "WHERE EXISTS (SELECT 1 FROM memories WHERE id = %s) "
                    "ON CONFLICT (memory_id) DO UPDATE SET embedding = excluded.embedding",
                    [(memory_id, vector_literal(context.vector), memory_id)
                     for memory_id, context in changes.context.items()])
            if changes.delete_memories:
                cursor.execute("DELETE FROM memories WHERE id = ANY(%s)", (list(changes.delete_memories),))
            if changes.delete_episodes:
                cursor.execute("DELETE FROM episodes WHERE id = ANY(%s)", (list(changes.delete_episodes),))
            if changes.delete_episodes_if_orphaned:
                cursor.execute(
                    "DELETE FROM episodes e WHERE e.id = ANY(%s) "
                    "AND NOT EXISTS (SELECT 1 FROM memory_sources s WHERE s.episode_id = e.id)",
                    (list(changes.delete_episodes_if_orphaned),))
            if changes.erase_history_text:
                cursor.execute("UPDATE history SET old_memory = NULL, new_memory = NULL, metadata = '{}' "
                               "WHERE memory_id = ANY(%s)", (list(changes.erase_history_text),))
            cursor.executemany(
                "UPDATE history SET user_id = %s, agent_id = %s, run_id = %s WHERE memory_id = %s",
                [(scope.user_id, scope.agent_id, scope.run_id, memory_id)
                 for memory_id, scope in changes.history_scopes.items()])
            cursor.executemany(
                f"INSERT INTO history ({HISTORY_COLUMNS}) VALUES ({', '.join(['%s'] * 11)})",
                [(h.id, h.memory_id, h.event.value, h.old_memory, h.new_memory, h.created_at, h.actor, h.user_id,
                  h.agent_id, h.run_id, Jsonb(h.metadata)) for h in changes.history],
            )

    @staticmethod
    def _upsert_memories(cursor: psycopg.Cursor, memories: list[MemoryItem], vectors: dict[str, np.ndarray],
                         turn_vectors: dict[str, np.ndarray], graph: tuple[int, int]) -> None:
        """Upsert rows, replace their sources, store the vectors given for them (others are ignored)."""
        cursor.executemany(_UPSERT_MEMORY, [
            (m.id, m.memory, m.kind, m.user_id, m.agent_id, m.run_id, Jsonb(m.metadata), m.valid_from, m.valid_to,
             m.created_at, m.updated_at, m.hash, m.status, m.writer, m.index_keys, m.access_count,
             m.last_accessed_at, m.context_keys, "\n".join(m.attributes)) for m in memories])
        cursor.execute("DELETE FROM memory_sources WHERE memory_id = ANY(%s)", ([m.id for m in memories],))
        cursor.executemany(
            "INSERT INTO memory_sources (memory_id, episode_id, position) VALUES (%s, %s, %s)",
            [(m.id, source.id, position) for m in memories for position, source in enumerate(m.sources)],
        )
        embedded = [(m.id, np.asarray(vectors[m.id])) for m in memories if m.id in vectors]
        for dim in sorted({vector.size for _, vector in embedded}):
            ensure_vector_dim(cursor.connection, int(dim), graph)
        cursor.executemany(
            "INSERT INTO vectors (memory_id, embedding, turn_embedding) VALUES (%s, %s::vector, %s::vector) "
            "ON CONFLICT (memory_id) DO UPDATE SET embedding = excluded.embedding, "
            "turn_embedding = coalesce(excluded.turn_embedding, vectors.turn_embedding)",
            [(memory_id, vector_literal(vector),
              vector_literal(turn_vectors[memory_id]) if memory_id in turn_vectors else None)
             for memory_id, vector in embedded],
        )

    def replace_vectors(self, vectors: Mapping[str, np.ndarray], turn_vectors: Mapping[str, np.ndarray], *,
                        embedder: str, dim: int | None = None) -> None:
        with self._connection() as connection, connection.cursor() as cursor:
            fixed = stored_vector_dim(connection)
            if fixed is not None and ({np.asarray(v).size for v in vectors.values()} | {dim or fixed}) != {fixed}:
                release_vector_dim(connection)
            cursor.executemany(
                "INSERT INTO vectors (memory_id, embedding, turn_embedding) SELECT %s, %s::vector, %s::vector "
                "WHERE EXISTS (SELECT 1 FROM memories WHERE id = %s) ON CONFLICT (memory_id) DO UPDATE "
                "SET embedding = excluded.embedding, "
                "turn_embedding = coalesce(excluded.turn_embedding, vectors.turn_embedding)",
                [(memory_id, vector_literal(vector),
                  vector_literal(turn_vectors[memory_id]) if memory_id in turn_vectors else None, memory_id)
                 for memory_id, vector in vectors.items()])
            if dim is not None:
                ensure_vector_dim(connection, dim, self.hnsw_graph)
            cursor.execute("INSERT INTO meta (key, value) VALUES ('embedder', %s) "
                           "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (embedder,))

    def touch(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._connection() as connection:
            connection.execute(
                "UPDATE memories SET access_count = access_count + 1, last_accessed_at = %s WHERE id = ANY(%s)",
                (utcnow(), list(ids)),
            )

    def reset(self) -> None:
        with self._connection() as connection:
            connection.execute("TRUNCATE memory_sources, vectors, memories, history, episodes")
            connection.execute("DELETE FROM meta WHERE key = %s", (EMBEDDER_SETTING,))
            release_vector_dim(connection)

    def scope_counts(self, scope: Scope | None = None) -> list[tuple[Scope, str, int]]:
        where, params = scope_clause(scope.items() if scope else [], alias="")
        with self._connection() as connection:
            rows = connection.execute(SCOPE_COUNTS_SQL.format(where=f"WHERE {where}"), params + params).fetchall()
        return [(Scope(user_id=u, agent_id=a, run_id=r), kind, int(n)) for u, a, r, kind, n in rows]

    def scope_ids(self, scope: Scope) -> tuple[list[str], list[str]]:
        if scope.is_empty():
            raise StorageError("refusing to enumerate an empty scope", field="scope")
        where, params = scope_clause(scope.items(), alias="")
        with self._connection() as connection:
            memories = [r[0] for r in connection.execute(f"SELECT id FROM memories WHERE {where} ORDER BY seq", params)]
            episodes = [r[0] for r in connection.execute(f"SELECT id FROM episodes WHERE {where} ORDER BY seq", params)]
        return memories, episodes

    def stats(self, scope: Scope | None = None) -> dict[str, int | str]:
        where, params = scope_clause(scope.items() if scope else [], alias="")
        with self._connection() as connection:
            def count(sql: str) -> int:
                row = connection.execute(sql, params).fetchone()
                return int(row[0]) if row else 0

            embedder = connection.execute("SELECT value FROM meta WHERE key = 'embedder'").fetchone()
            size = connection.execute("SELECT pg_database_size(current_database())").fetchone()
            return {
                "backend": "postgres",
                "url": self._redacted,
                "schema": self.schema,
                "schema_version": SCHEMA_VERSION,
                "episodes": count(f"SELECT count(*) FROM episodes WHERE {where}"),
                "memories": count(f"SELECT count(*) FROM memories WHERE {where}"),
                "memories_active": count(
                    f"SELECT count(*) FROM memories WHERE {where} AND status = 'active' AND valid_to IS NULL"),
                "memories_quarantined": count(
                    f"SELECT count(*) FROM memories WHERE {where} AND status = 'quarantined'"),
                "memories_archived": count(f"SELECT count(*) FROM memories WHERE {where} AND status = 'archived'"),
                "history_events": count(f"SELECT count(*) FROM history WHERE {where}"),
                "embedder": str(embedder[0]) if embedder else "",
                "database_bytes": int(size[0]) if size else 0,
            }

    def iter_all(self) -> Iterator[Episode | MemoryItem | HistoryEvent]:
        with self._connection() as connection:
            episode_ids = [r[0] for r in connection.execute("SELECT id FROM episodes ORDER BY seq")]
            memory_ids = [r[0] for r in connection.execute("SELECT id FROM memories ORDER BY seq")]
            history_ids = [r[0] for r in connection.execute("SELECT id FROM history ORDER BY seq")]
        for chunk in _chunks(episode_ids):
            yield from self.get_episodes(chunk)
        for chunk in _chunks(memory_ids):
            yield from self.get_memories(chunk)
        for chunk in _chunks(history_ids):
            with self._connection() as connection:
                rows = connection.execute(f"SELECT {HISTORY_COLUMNS} FROM history WHERE id = ANY(%s) ORDER BY seq",
                                          (chunk,)).fetchall()
            yield from map(history_from_row, rows)

    def setting(self, key: str, default: str) -> str:
        with self._connection() as connection:
            connection.execute("INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                               (key, default))
            row = connection.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return str(row[0]) if row else default

    def check_integrity(self, user_prefix: str = "") -> dict[str, Any]:
        """The orphan counts (PostgreSQL checks its own pages)."""
        with self._connection() as connection:
            orphans = count_orphans(connection.execute, "%s", user_prefix, ORPHAN_QUERIES)
        return {"orphans": orphans, "ok": not any(orphans.values())}

    def purge(self) -> None:
        """Rewrite Engram's tables without dead rows (``VACUUM FULL``) and checkpoint, so deleted text
        leaves the live data files. WAL archives, replicas and backups are outside this call's reach."""
        if getattr(self._local, "connection", None) is not None:
            raise StorageError("purge cannot run inside locked()", field="purge")
        with self._errors(), self._pool.connection() as connection:
            connection.execute("VACUUM (FULL, ANALYZE) memory_sources, vectors, memories, history, episodes")
            with suppress(psycopg.errors.InsufficientPrivilege):
                connection.execute("CHECKPOINT")

    def close(self) -> None:
        self._pool.close()
