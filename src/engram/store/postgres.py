"""The PostgreSQL store: the same model as ``SQLiteStore`` on PostgreSQL >= 15 with pgvector.

Full-text search uses a weighted ``tsvector`` (text weight A, index keys weight B; English stemming,
no stop words, diacritics folded; GIN index) ranked with BM25 computed in SQL. Vectors live in a
``vector(dim)`` column with an HNSW index on inner product: embeddings are unit length, so this is
cosine similarity and the scores equal SQLite's exact dot products. ``locked`` holds a transaction
with per-scope-id advisory locks; everything the same thread does inside joins that transaction.
Safe across threads (a psycopg connection pool) and processes (transactions, advisory locks)."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from engram.errors import ConfigurationError, EngramError, StorageError, ValidationError
from engram.models import Episode, HistoryEvent, HistoryEventType, MemoryItem, Scope, SourceRef
from engram.store.base import MAX_TURN_SPAN, Candidate, ChangeSet, ListQuery, Store
from engram.store.filter_sql import SCOPE_COUNTS_SQL
from engram.store.postgres_schema import (
    SCHEMA_VERSION,
    ensure_vector_dim,
    migrate,
    release_vector_dim,
    stored_vector_dim,
)
from engram.store.postgres_sql import LEXICAL_SQL, scope_clause, where_clause
from engram.timeutil import utcnow

_CHUNK = 500
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_BM25_K1 = 1.2
_LENGTH_SAMPLE = 1000  # rows sampled for the average document length
#: HNSW candidate list size per vector search (pgvector's ``hnsw.ef_search``; at least the limit).
#: Tuned on recombined LoCoMo text (``engram bench pg-scale``, docs/POSTGRES.md): recall@10 >= 0.95.
HNSW_EF_SEARCH = 100
_BM25_B = 0.75
_TEXT_WEIGHT = 1.0
_KEYS_WEIGHT = 0.5
_MEMORY_COLUMNS = ("id, text, kind, user_id, agent_id, run_id, metadata, valid_from, valid_to, created_at, "
                   "updated_at, hash, status, writer, index_keys, access_count, last_accessed_at, context_keys, "
                   "attributes")
_M_MEMORY_COLUMNS = ", ".join("m." + column.strip() for column in _MEMORY_COLUMNS.split(","))
_EPISODE_COLUMNS = ("id, user_id, agent_id, run_id, role, name, content, occurred_at, recorded_at, metadata, "
                    "hash, extraction")
_HISTORY_COLUMNS = ("id, memory_id, event, old_memory, new_memory, created_at, actor, user_id, agent_id, run_id, "
                    "metadata")
_UPSERT_MEMORY = (
    f"INSERT INTO memories ({_MEMORY_COLUMNS}) VALUES ({', '.join(['%s'] * 19)}) "
    "ON CONFLICT (id) DO UPDATE SET text = excluded.text, kind = excluded.kind, metadata = excluded.metadata, "
    "valid_from = excluded.valid_from, valid_to = excluded.valid_to, updated_at = excluded.updated_at, "
    "hash = excluded.hash, status = excluded.status, writer = excluded.writer, index_keys = excluded.index_keys, "
    "access_count = excluded.access_count, last_accessed_at = excluded.last_accessed_at, "
    "context_keys = excluded.context_keys, attributes = excluded.attributes"
)


def _chunks(items: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start:start + _CHUNK])


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form of a float32 vector (exact: float32 values round-trip through repr)."""
    return "[" + ",".join(map(repr, np.asarray(vector, dtype=np.float32).ravel().tolist())) + "]"


def parse_vector(text: str) -> np.ndarray:
    """Inverse of :func:`vector_literal`."""
    return np.array(text[1:-1].split(","), dtype=np.float32)


def unpack_vector(payload: bytes) -> np.ndarray:
    """A vector from pgvector's binary form (``vector_send``): dimension, flags, big-endian float32s."""
    return np.frombuffer(payload, dtype=">f4", offset=4).astype(np.float32)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def split_schema(url: str) -> tuple[str, str | None]:
    """Remove Engram's own ``schema=`` query parameter from ``url``; return the URL and the schema."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in pairs if key == "schema"), None)
    if schema is None:
        return url, None
    query = urlencode([(key, value) for key, value in pairs if key != "schema"])
    return urlunsplit(parts._replace(query=query)), schema


def _lock_keys(schema: str, scope: Scope) -> list[int]:
    """One 64-bit advisory lock key per scope id, sorted so that every caller locks in one order."""
    names = [f"engram:{schema}:{column}:{value}" for column, value in scope.items()] or [f"engram:{schema}"]
    return sorted(
        int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "big", signed=True)
        for name in names
    )


class PostgresStore(Store):
    """Store backed by a PostgreSQL database with the pgvector extension."""

    #: HNSW candidate list size per vector query (pgvector's default is 40); higher is more exact.

    def __init__(self, url: str, *, schema: str | None = None, min_pool_size: int = 1, max_pool_size: int = 10,
                 connect_timeout_s: float = 10.0, pool_timeout_s: float = 30.0,
                 hnsw_ef_search: int = HNSW_EF_SEARCH) -> None:
        """Connect to ``url`` (``postgresql://user:password@host:port/database``) and migrate.

        ``schema`` (or a ``schema=`` query parameter in the URL) keeps Engram's tables in that
        PostgreSQL schema, created if missing: several stores can share one database. ``hnsw_ef_search``
        is the HNSW candidate list size of vector searches (default :data:`HNSW_EF_SEARCH`)."""
        if not 1 <= hnsw_ef_search <= 1000:
            raise ConfigurationError("hnsw_ef_search must be between 1 and 1000", field="hnsw_ef_search",
                                     hint=f"the tuned default is {HNSW_EF_SEARCH}")
        self.hnsw_ef_search = hnsw_ef_search
        if min_pool_size < 0 or max_pool_size < max(1, min_pool_size):
            raise ConfigurationError("need 0 <= min_pool_size <= max_pool_size and max_pool_size >= 1",
                                     field="max_pool_size")
        self.url, url_schema = split_schema(url.replace("postgresql+psycopg://", "postgresql://", 1))
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
        self._pool = ConnectionPool(self.url, min_size=min_pool_size, max_size=max_pool_size, kwargs=connect_args,
                                    timeout=pool_timeout_s, check=ConnectionPool.check_connection,
                                    configure=self._configure, open=True, name="engram")
        self._local = threading.local()

    def _configure(self, connection: psycopg.Connection) -> None:
        connection.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(self.schema)))
        connection.execute("SET TIME ZONE 'UTC'")
        connection.execute("SET client_min_messages = warning")

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (psycopg.Error, PoolTimeout) as exc:
            raise StorageError(f"PostgreSQL error on {self._redacted}: {exc}".strip(),
                               hint="the store is unchanged; retry, or check the server") from exc

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """The thread's ``locked`` connection (in a savepoint), or a pooled one in its own transaction."""
        active: psycopg.Connection | None = getattr(self._local, "connection", None)
        with self._errors():
            if active is not None:
                with active.transaction():
                    yield active
                return
            with self._pool.connection() as connection, connection.transaction():
                yield connection

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
                f"INSERT INTO episodes ({_EPISODE_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})",
                [(e.id, e.user_id, e.agent_id, e.run_id, e.role, e.name, e.content, e.occurred_at, e.recorded_at,
                  Jsonb(e.metadata), e.hash, e.extraction) for e in changes.episodes],
            )
            cursor.executemany(
                "UPDATE episodes SET extraction = %s WHERE id = %s",
                [(state, episode_id) for episode_id, state in changes.update_episode_extraction.items()],
            )
            if changes.memories:
                self._upsert_memories(cursor, changes.memories, changes.vectors, changes.turn_vectors)
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
                f"INSERT INTO history ({_HISTORY_COLUMNS}) VALUES ({', '.join(['%s'] * 11)})",
                [(h.id, h.memory_id, h.event.value, h.old_memory, h.new_memory, h.created_at, h.actor, h.user_id,
                  h.agent_id, h.run_id, Jsonb(h.metadata)) for h in changes.history],
            )

    @staticmethod
    def _upsert_memories(cursor: psycopg.Cursor, memories: list[MemoryItem], vectors: dict[str, np.ndarray],
                         turn_vectors: dict[str, np.ndarray]) -> None:
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
            ensure_vector_dim(cursor.connection, int(dim))
        cursor.executemany(
            "INSERT INTO vectors (memory_id, embedding, turn_embedding) VALUES (%s, %s::vector, %s::vector) "
            "ON CONFLICT (memory_id) DO UPDATE SET embedding = excluded.embedding, "
            "turn_embedding = coalesce(excluded.turn_embedding, vectors.turn_embedding)",
            [(memory_id, vector_literal(vector),
              vector_literal(turn_vectors[memory_id]) if memory_id in turn_vectors else None)
             for memory_id, vector in embedded],
        )

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

    # -- reads ----------------------------------------------------------------------------------

    def get_memories(self, ids: Sequence[str]) -> list[MemoryItem]:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        with self._connection() as connection:
            rows = connection.execute(f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE id = ANY(%s)",
                                      (unique,)).fetchall()
            found = {memory.id: memory for memory in map(self._memory_from_row, rows)}
            self._attach_sources(connection, list(found.values()))
        return [found[i] for i in ids if i in found]

    def memories_citing(self, episode_ids: Sequence[str], *, kind: str | None = None) -> list[MemoryItem]:
        unique = list(dict.fromkeys(episode_ids))
        if not unique:
            return []
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT DISTINCT s.memory_id FROM memory_sources s JOIN memories m ON m.id = s.memory_id "
                "WHERE s.episode_id = ANY(%s) AND (%s::text IS NULL OR m.kind = %s)", (unique, kind, kind)
            ).fetchall()
        return self.get_memories([row[0] for row in rows])

    def list_memories(self, query: ListQuery) -> list[MemoryItem]:
        where, params = where_clause(query)
        with self._connection() as connection:
            rows = connection.execute(
                f"SELECT {_M_MEMORY_COLUMNS} FROM memories m WHERE {where} "
                "ORDER BY m.created_at DESC, m.seq DESC LIMIT %s OFFSET %s",
                [*params, query.limit if query.limit >= 0 else None, max(query.offset, 0)],
            ).fetchall()
            memories = [self._memory_from_row(row) for row in rows]
            self._attach_sources(connection, memories)
        return memories

    def count_memories(self, query: ListQuery) -> int:
        where, params = where_clause(query)
        with self._connection() as connection:
            row = connection.execute(f"SELECT count(*) FROM memories m WHERE {where}", params).fetchone()
        return int(row[0]) if row else 0

    def get_episodes(self, ids: Sequence[str]) -> list[Episode]:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        with self._connection() as connection:
            rows = connection.execute(f"SELECT {_EPISODE_COLUMNS} FROM episodes WHERE id = ANY(%s)",
                                      (unique,)).fetchall()
        found = {row[0]: self._episode_from_row(row) for row in rows}
        return [found[i] for i in ids if i in found]

    def list_episodes(self, scope: Scope, *, limit: int = 1000, offset: int = 0,
                      extraction: str | None = None) -> list[Episode]:
        where, params = scope_clause(scope.items(), alias="")
        if extraction is not None:
            where += " AND extraction = %s"
            params.append(extraction)
        with self._connection() as connection:
            rows = connection.execute(
                f"SELECT {_EPISODE_COLUMNS} FROM episodes WHERE {where} ORDER BY occurred_at, seq LIMIT %s OFFSET %s",
                [*params, limit if limit >= 0 else None, max(offset, 0)],
            ).fetchall()
        return [self._episode_from_row(row) for row in rows]

    def history(self, memory_id: str) -> list[HistoryEvent]:
        with self._connection() as connection:
            rows = connection.execute(
                f"SELECT {_HISTORY_COLUMNS} FROM history WHERE memory_id = %s ORDER BY seq", (memory_id,)
            ).fetchall()
        return [self._history_from_row(row) for row in rows]

    def lexical_search(self, terms: Sequence[str], query: ListQuery) -> list[Candidate]:
        """BM25 (k1 1.2, b 0.75; text weight 1, index keys 0.5, as SQLite's FTS5 ranking) with Lucene's
        always-positive idf. Term statistics come from the query's scope only (the average length
        from up to 1000 of its rows), so other tenants' data never influences scores.

        One statement: the scope's rows matching any term are read once (GIN index), and each term's
        document frequency and each row's score are computed from that one set."""
        if not terms or query.limit <= 0:
            return []
        scope_sql, scope_params = scope_clause(query.scope.items())
        where, params = where_clause(query)
        with self._connection() as connection:
            rows = connection.execute(
                LEXICAL_SQL.format(scope=scope_sql, where=where),
                [list(terms), *scope_params, *scope_params, _LENGTH_SAMPLE, *params, *scope_params,
                 _TEXT_WEIGHT, _KEYS_WEIGHT, _BM25_K1 + 1, _BM25_K1, _BM25_B, _BM25_B, query.limit],
            ).fetchall()
        return [Candidate(row[0], float(row[1])) for row in rows]

    def vector_search(self, vector: np.ndarray, query: ListQuery) -> list[Candidate]:
        if query.limit <= 0:
            return []
        where, params = where_clause(query)
        with self._connection() as connection:
            dim = stored_vector_dim(connection)
            if dim is None:
                return []
            if np.asarray(vector).size != dim:
                raise ValidationError(f"query vector has {np.asarray(vector).size} dimensions, the store {dim}",
                                      field="vector")
            connection.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                               "set_config('hnsw.ef_search', %s, true)",
                               (str(min(max(query.limit, self.hnsw_ef_search), 1000)),))
            rows = connection.execute(
                "WITH nearest AS MATERIALIZED (SELECT m.id, m.seq, v.embedding <#> %s::vector AS distance "
                f"FROM vectors v JOIN memories m ON m.id = v.memory_id WHERE {where} ORDER BY distance LIMIT %s) "
                "SELECT id, -distance FROM nearest ORDER BY distance, seq",
                [vector_literal(vector), *params, query.limit],
            ).fetchall()
        return [Candidate(row[0], float(row[1])) for row in rows]

    def get_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        with self._connection() as connection:
            rows = connection.execute("SELECT memory_id, vector_send(embedding) FROM vectors WHERE memory_id = ANY(%s)",
                                      (list(ids),)).fetchall()
        return {row[0]: unpack_vector(row[1]) for row in rows}

    def get_turn_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT memory_id, coalesce(turn_embedding, embedding)::text FROM vectors WHERE memory_id = ANY(%s)",
                (list(ids),)).fetchall()
        return {row[0]: parse_vector(row[1]) for row in rows}

    def memory_ids(self, *, after: str = "", limit: int = 1000) -> list[str]:
        with self._connection() as connection:
            return [row[0] for row in connection.execute(
                "SELECT id FROM memories WHERE id > %s ORDER BY id LIMIT %s", (after, limit))]

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
                ensure_vector_dim(connection, dim)
            cursor.execute("INSERT INTO meta (key, value) VALUES ('embedder', %s) "
                           "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (embedder,))

    def turns_around(self, first_id: str, last_id: str, width: int) -> list[MemoryItem]:
        with self._connection() as connection:
            anchors = {row[0]: row[1:] for row in connection.execute(
                "SELECT id, valid_from, seq, user_id, agent_id, run_id FROM memories WHERE id = ANY(%s)",
                ([first_id, last_id],))}
            if first_id not in anchors or last_id not in anchors:
                return []
            first, last = anchors[first_id][:2], anchors[last_id][:2]
            scope_parts, scope_params = [], []
            for column, value in zip(("user_id", "agent_id", "run_id"), anchors[first_id][2:], strict=True):
                scope_parts.append(f"m.{column} IS NULL" if value is None else f"m.{column} = %s")
                scope_params.extend([] if value is None else [value])
            base = (f"SELECT {_M_MEMORY_COLUMNS} FROM memories m WHERE {' AND '.join(scope_parts)} "
                    "AND m.kind = 'episode' AND m.status <> 'quarantined' AND m.valid_from IS NOT NULL AND ")
            before = connection.execute(
                base + "(m.valid_from, m.seq) < (%s, %s) ORDER BY m.valid_from DESC, m.seq DESC LIMIT %s",
                [*scope_params, *first, width]).fetchall()
            span = connection.execute(
                base + "(m.valid_from, m.seq) >= (%s, %s) AND (m.valid_from, m.seq) <= (%s, %s) "
                "ORDER BY m.valid_from, m.seq LIMIT %s", [*scope_params, *first, *last, MAX_TURN_SPAN]).fetchall()
            after = connection.execute(
                base + "(m.valid_from, m.seq) > (%s, %s) ORDER BY m.valid_from, m.seq LIMIT %s",
                [*scope_params, *last, width]).fetchall()
            turns = [self._memory_from_row(row) for row in [*reversed(before), *span, *after]]
            self._attach_sources(connection, turns)
        return turns

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
                rows = connection.execute(f"SELECT {_HISTORY_COLUMNS} FROM history WHERE id = ANY(%s) ORDER BY seq",
                                          (chunk,)).fetchall()
            yield from map(self._history_from_row, rows)

    def setting(self, key: str, default: str) -> str:
        with self._connection() as connection:
            connection.execute("INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                               (key, default))
            row = connection.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return str(row[0]) if row else default

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

    # -- row mapping ----------------------------------------------------------------------------

    @staticmethod
    def _memory_from_row(row: Sequence[Any]) -> MemoryItem:
        return MemoryItem(
            id=row[0], memory=row[1], kind=row[2], user_id=row[3], agent_id=row[4], run_id=row[5],
            metadata=row[6], valid_from=_utc(row[7]), valid_to=_utc(row[8]), created_at=_utc(row[9]),
            updated_at=_utc(row[10]), hash=row[11], status=row[12], writer=row[13], index_keys=row[14],
            access_count=row[15], last_accessed_at=_utc(row[16]), context_keys=row[17],
            attributes=row[18].split("\n") if row[18] else [],
        )

    @staticmethod
    def _attach_sources(connection: psycopg.Connection, memories: list[MemoryItem]) -> None:
        by_id = {memory.id: memory for memory in memories}
        if not by_id:
            return
        rows = connection.execute(
            "SELECT s.memory_id, e.id, e.occurred_at, e.role, e.name, e.metadata FROM memory_sources s "
            "JOIN episodes e ON e.id = s.episode_id WHERE s.memory_id = ANY(%s) ORDER BY s.memory_id, s.position",
            (list(by_id),),
        ).fetchall()
        for memory_id, episode_id, occurred_at, role, name, metadata in rows:
            by_id[memory_id].sources.append(SourceRef(id=episode_id, occurred_at=_utc(occurred_at), role=role,
                                                      name=name, metadata=metadata))

    @staticmethod
    def _episode_from_row(row: Sequence[Any]) -> Episode:
        return Episode(
            id=row[0], user_id=row[1], agent_id=row[2], run_id=row[3], role=row[4], name=row[5], content=row[6],
            occurred_at=_utc(row[7]), recorded_at=_utc(row[8]), metadata=row[9], hash=row[10], extraction=row[11],
        )

    @staticmethod
    def _history_from_row(row: Sequence[Any]) -> HistoryEvent:
        return HistoryEvent(
            id=row[0], memory_id=row[1], event=HistoryEventType(row[2]), old_memory=row[3], new_memory=row[4],
            created_at=_utc(row[5]), actor=row[6], user_id=row[7], agent_id=row[8], run_id=row[9], metadata=row[10],
        )
