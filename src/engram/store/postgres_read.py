"""The read half of the PostgreSQL store: every read the read path makes is one statement.

A read runs on a pooled connection outside any transaction (one statement sees one snapshot), or,
inside ``locked``, in a savepoint of the thread's transaction. Memories come with their sources in
the same statement (a lateral aggregate) instead of a second query, and a vector search sends its
HNSW settings and its query in one pipeline (one round trip)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from engram.errors import StorageError, ValidationError
from engram.models import Episode, ExtractionState, HistoryEvent, HistoryEventType, MemoryItem, Scope, SourceRef
from engram.store.base import MAX_TURN_SPAN, Candidate, CandidatePool, ListQuery, RecentText
from engram.store.filter_sql import RECENT_TEXTS_SQL
from engram.store.postgres_sql import LEXICAL_SQL, scope_clause, where_clause

MEMORY_COLUMNS = ("id, text, kind, user_id, agent_id, run_id, metadata, valid_from, valid_to, created_at, "
                  "updated_at, hash, status, writer, index_keys, access_count, last_accessed_at, context_keys, "
                  "attributes")
EPISODE_COLUMNS = ("id, user_id, agent_id, run_id, role, name, content, occurred_at, recorded_at, metadata, "
                   "hash, extraction")
HISTORY_COLUMNS = ("id, memory_id, event, old_memory, new_memory, created_at, actor, user_id, agent_id, run_id, "
                   "metadata")
#: The columns of a memory row (alias ``m``) and its sources (alias ``src``, :data:`SOURCES_JOIN`).
MEMORY_FIELDS = (f"{', '.join('m.' + column.strip() for column in MEMORY_COLUMNS.split(','))}, "
                 "src.ids, src.times, src.roles, src.names, src.metas")
#: A memory's sources' fields as arrays in source order (joined after ``memories m``).
SOURCES_JOIN = (
    "CROSS JOIN LATERAL (SELECT array_agg(e.id ORDER BY s.position) AS ids, "
    "array_agg(e.occurred_at ORDER BY s.position) AS times, array_agg(e.role ORDER BY s.position) AS roles, "
    "array_agg(e.name ORDER BY s.position) AS names, array_agg(e.metadata ORDER BY s.position) AS metas "
    "FROM memory_sources s JOIN episodes e ON e.id = s.episode_id WHERE s.memory_id = m.id) AS src"
)
#: Memories (alias ``m``) with their sources' fields as arrays in source order; append WHERE/ORDER BY.
MEMORY_SELECT = f"SELECT {MEMORY_FIELDS} FROM memories m {SOURCES_JOIN}"
_NEAREST_SQL = ("SELECT m.id, m.seq, v.embedding <#> %s::vector AS distance "
                "FROM vectors v JOIN memories m ON m.id = v.memory_id WHERE {where} ORDER BY distance LIMIT %s")
_VECTOR_SQL = f"WITH nearest AS MATERIALIZED ({_NEAREST_SQL}) SELECT id, -distance FROM nearest ORDER BY distance, seq"
#: The candidate pool in one statement: the lexical list (``LEXICAL_SQL``, or none), the nearest (or none),
#: and the memories of both with their scores and their inner product with the query vector (or NULL).
_POOL_SQL = (
    "WITH lexical AS MATERIALIZED ({lexical}), nearest AS MATERIALIZED ({nearest}), "
    "pool AS (SELECT id FROM lexical UNION SELECT id FROM nearest) "
    f"SELECT {MEMORY_FIELDS}, m.seq, l.score, n.distance, {{similarity}} "
    f"FROM pool JOIN memories m ON m.id = pool.id {SOURCES_JOIN} LEFT JOIN lexical l ON l.id = m.id "
    "LEFT JOIN nearest n ON n.id = m.id {vectors}"
)
_NO_LEXICAL = "SELECT NULL::text AS id, NULL::float8 AS score WHERE false"
_NO_NEAREST = "SELECT NULL::text AS id, NULL::bigint AS seq, NULL::float8 AS distance WHERE false"
#: pgvector's limit on ``hnsw.ef_search``.
MAX_EF_SEARCH = 1000
_LENGTH_SAMPLE = 1000  # rows sampled for the average document length
_BM25_K1 = 1.2
_BM25_B = 0.75
_TEXT_WEIGHT = 1.0
_KEYS_WEIGHT = 0.5


#: What makes a memory (alias ``t``) a turn of a conversation.
_TURN = "t.kind = 'episode' AND t.status <> 'quarantined' AND t.valid_from IS NOT NULL"


def _turn_scope(scope: Sequence[str | None]) -> tuple[str, list[str]]:
    """``(sql, params)`` matching memories (alias ``t``) of exactly this (user, agent, run) scope."""
    parts, params = [], []
    for column, value in zip(("user_id", "agent_id", "run_id"), scope, strict=True):
        parts.append(f"t.{column} IS NULL" if value is None else f"t.{column} = %s")
        params.extend([] if value is None else [value])
    return " AND ".join(parts), params


def utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form of a float32 vector (exact: float32 values round-trip through repr)."""
    return "[" + ",".join(map(repr, np.asarray(vector, dtype=np.float32).ravel().tolist())) + "]"


def unpack_vector(payload: bytes) -> np.ndarray:
    """A vector from pgvector's binary form (``vector_send``): dimension, flags, big-endian float32s."""
    return np.frombuffer(payload, dtype=">f4", offset=4).astype(np.float32)


def memory_from_row(row: Sequence[Any]) -> MemoryItem:
    """A memory from a :data:`MEMORY_SELECT` row."""
    memory = MemoryItem(
        id=row[0], memory=row[1], kind=row[2], user_id=row[3], agent_id=row[4], run_id=row[5],
        metadata=row[6], valid_from=utc(row[7]), valid_to=utc(row[8]), created_at=utc(row[9]),
        updated_at=utc(row[10]), hash=row[11], status=row[12], writer=row[13], index_keys=row[14],
        access_count=row[15], last_accessed_at=utc(row[16]), context_keys=row[17],
        attributes=row[18].split("\n") if row[18] else [],
    )
    if row[19]:
        memory.sources.extend(SourceRef(id=episode_id, occurred_at=utc(occurred_at), role=role, name=name,
                                        metadata=metadata)
                              for episode_id, occurred_at, role, name, metadata in zip(*row[19:24], strict=True))
    return memory


def episode_from_row(row: Sequence[Any]) -> Episode:
    return Episode(
        id=row[0], user_id=row[1], agent_id=row[2], run_id=row[3], role=row[4], name=row[5], content=row[6],
        occurred_at=utc(row[7]), recorded_at=utc(row[8]), metadata=row[9], hash=row[10], extraction=row[11],
    )


def history_from_row(row: Sequence[Any]) -> HistoryEvent:
    return HistoryEvent(
        id=row[0], memory_id=row[1], event=HistoryEventType(row[2]), old_memory=row[3], new_memory=row[4],
        created_at=utc(row[5]), actor=row[6], user_id=row[7], agent_id=row[8], run_id=row[9], metadata=row[10],
    )


class PostgresReads:
    """Reads of :class:`engram.store.postgres.PostgresStore`, which provides the pool and settings."""

    hnsw_ef_search: int
    _pool: ConnectionPool
    _local: threading.local
    _redacted: str

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (psycopg.Error, PoolTimeout) as exc:
            raise StorageError(f"PostgreSQL error on {self._redacted}: {exc}".strip(),
                               hint="the store is unchanged; retry, or check the server") from exc

    @contextmanager
    def _read(self, *, transaction: bool = False) -> Iterator[psycopg.Connection]:
        """The thread's ``locked`` connection (in a savepoint), or a pooled one: in its own transaction with
        ``transaction``, else outside any (for one statement, which is atomic on its own)."""
        active: psycopg.Connection | None = getattr(self._local, "connection", None)
        with self._errors():
            if active is not None:
                with active.transaction():
                    yield active
                return
            with self._pool.connection() as connection, connection.transaction() if transaction else nullcontext():
                yield connection

    def get_memories(self, ids: Sequence[str]) -> list[MemoryItem]:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        with self._read() as connection:
            rows = connection.execute(f"{MEMORY_SELECT} WHERE m.id = ANY(%s)", (unique,)).fetchall()
        found = {memory.id: memory for memory in map(memory_from_row, rows)}
        return [found[i] for i in ids if i in found]

    def memories_citing(self, episode_ids: Sequence[str], *, kind: str | None = None) -> list[MemoryItem]:
        unique = list(dict.fromkeys(episode_ids))
        if not unique:
            return []
        with self._read() as connection:
            rows = connection.execute(
                f"{MEMORY_SELECT} WHERE m.id IN (SELECT memory_id FROM memory_sources WHERE episode_id = ANY(%s)) "
                "AND (%s::text IS NULL OR m.kind = %s) ORDER BY m.seq", (unique, kind, kind)).fetchall()
        return [memory_from_row(row) for row in rows]

    def list_memories(self, query: ListQuery) -> list[MemoryItem]:
        where, params = where_clause(query)
        with self._read() as connection:
            rows = connection.execute(
                f"{MEMORY_SELECT} WHERE {where} ORDER BY m.created_at DESC, m.seq DESC LIMIT %s OFFSET %s",
                [*params, query.limit if query.limit >= 0 else None, max(query.offset, 0)],
            ).fetchall()
        return [memory_from_row(row) for row in rows]

    def recent_texts(self, query: ListQuery) -> list[RecentText]:
        where, params = where_clause(query)
        with self._read() as connection:
            rows = connection.execute(
                RECENT_TEXTS_SQL.format(where=where, position="seq", vector="vector_send(v.embedding)", mark="%s"),
                [*params, query.limit if query.limit >= 0 else None, max(query.offset, 0)],
            ).fetchall()
        return [RecentText(memory_id, text, writer, None if payload is None else unpack_vector(payload))
                for memory_id, text, writer, payload in rows]

    def count_memories(self, query: ListQuery) -> int:
        where, params = where_clause(query)
        with self._read() as connection:
            row = connection.execute(f"SELECT count(*) FROM memories m WHERE {where}", params).fetchone()
        return int(row[0]) if row else 0

    def get_episodes(self, ids: Sequence[str]) -> list[Episode]:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        with self._read() as connection:
            rows = connection.execute(f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE id = ANY(%s)",
                                      (unique,)).fetchall()
        found = {row[0]: episode_from_row(row) for row in rows}
        return [found[i] for i in ids if i in found]

    def list_episodes(self, scope: Scope, *, limit: int = 1000, offset: int = 0,
                      extraction: ExtractionState | None = None) -> list[Episode]:
        where, params = scope_clause(scope.items(), alias="")
        if extraction is not None:
            where += " AND extraction = %s"
            params.append(extraction)
        with self._read() as connection:
            rows = connection.execute(
                f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE {where} ORDER BY occurred_at, seq LIMIT %s OFFSET %s",
                [*params, limit if limit >= 0 else None, max(offset, 0)],
            ).fetchall()
        return [episode_from_row(row) for row in rows]

    def history(self, memory_id: str) -> list[HistoryEvent]:
        with self._read() as connection:
            rows = connection.execute(
                f"SELECT {HISTORY_COLUMNS} FROM history WHERE memory_id = %s ORDER BY seq", (memory_id,)
            ).fetchall()
        return [history_from_row(row) for row in rows]

    def lexical_search(self, terms: Sequence[str], query: ListQuery) -> list[Candidate]:
        """BM25 (k1 1.2, b 0.75; text weight 1, index keys 0.5, as SQLite's FTS5 ranking) with Lucene's
        always-positive idf. Term statistics come from the query's scope only (the average length
        from up to 1000 of its rows), so other tenants' data never influences scores.

        One statement that reads no tsvector: each term's matches in the text and in the keys come from
        their GIN indexes, and give its document frequency and each row's term frequencies."""
        if not terms or query.limit <= 0:
            return []
        statement, params = self._lexical_statement(terms, query)
        with self._read() as connection:
            rows = connection.execute(statement, params).fetchall()
        return [Candidate(row[0], float(row[1])) for row in rows]

    @staticmethod
    def _lexical_statement(terms: Sequence[str], query: ListQuery) -> tuple[str, list[Any]]:
        """:data:`LEXICAL_SQL` for ``query`` and its parameters (no rows when there are no terms)."""
        scope_sql, scope_params = scope_clause(query.scope.items())
        where, params = where_clause(query)
        return LEXICAL_SQL.format(scope=scope_sql, where=where), [
            list(terms), *params, *scope_params, *params, *scope_params, _TEXT_WEIGHT, _KEYS_WEIGHT, *scope_params,
            *scope_params, _LENGTH_SAMPLE, _BM25_K1 + 1, _BM25_K1, _BM25_B, _BM25_B, max(query.limit, 0)]

    def vector_search(self, vector: np.ndarray, query: ListQuery) -> list[Candidate]:
        """Top ``limit`` by inner product; through HNSW (``hnsw.ef_search`` = the larger of the limit and
        :attr:`hnsw_ef_search`, iterative scan) when the planner picks it, exact otherwise. The settings
        and the query go in one pipeline; a vector of another dimension is a ValidationError."""
        if query.limit <= 0:
            return []
        where, params = where_clause(query)
        rows = self._vector_statement(_VECTOR_SQL.format(where=where), [vector_literal(vector), *params, query.limit],
                                      vector, query.limit)
        return [Candidate(row[0], float(row[1])) for row in rows]

    def _vector_statement(self, statement: str, params: Sequence[Any], vector: np.ndarray | None,
                          limit: int) -> list[tuple[Any, ...]]:
        """Rows of a statement that reads vectors, after the HNSW settings (``ef_search`` the larger of
        ``limit`` and :attr:`hnsw_ef_search`, iterative scan) in the same pipeline: one round trip. A query
        vector of another dimension is a ValidationError."""
        ef_search = str(min(max(limit, self.hnsw_ef_search), MAX_EF_SEARCH))
        with self._read() as connection:
            try:
                with connection.pipeline():
                    connection.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', false), "
                                       "set_config('hnsw.ef_search', %s, false)", (ef_search,))
                    return connection.execute(statement, params).fetchall()
            except psycopg.errors.DataException as exc:
                raise ValidationError(f"query vector of {np.asarray(vector).size} dimensions does not fit this "
                                      f"store ({exc.diag.message_primary})", field="vector",
                                      hint="embed the query with the store's embedder") from exc

    def candidate_pool(self, terms: Sequence[str], lexical: ListQuery | None, vector: np.ndarray | None,
                       dense: ListQuery | None) -> CandidatePool:
        """Both searches, their memories and the query vector's similarity to each in one statement (and
        one round trip, the HNSW settings pipelined before it)."""
        lexical_sql, lexical_params = self._lexical_statement(terms, lexical) if lexical is not None \
            else (_NO_LEXICAL, [])
        nearest_sql, nearest_params = _NO_NEAREST, []
        if dense is not None and vector is not None and dense.limit > 0:
            where, params = where_clause(dense)
            nearest_sql, nearest_params = _NEAREST_SQL.format(where=where), [vector_literal(vector), *params,
                                                                             dense.limit]
        statement = _POOL_SQL.format(
            lexical=lexical_sql, nearest=nearest_sql,
            similarity="NULL::float8" if vector is None else "v.embedding <#> %s::vector",
            vectors="" if vector is None else "LEFT JOIN vectors v ON v.memory_id = m.id")
        rows = self._vector_statement(statement, [*lexical_params, *nearest_params,
                                                  *([] if vector is None else [vector_literal(vector)])],
                                      vector, dense.limit if dense is not None else 0)
        lexical_rows = sorted((row for row in rows if row[25] is not None), key=lambda row: (-row[25], row[24]))
        nearest_rows = sorted((row for row in rows if row[26] is not None), key=lambda row: (row[26], row[24]))
        lexical_found = [Candidate(row[0], float(row[25])) for row in lexical_rows] if lexical is not None else None
        dense_found = [Candidate(row[0], -float(row[26])) for row in nearest_rows] \
            if dense is not None and vector is not None else None
        similarity = {row[0]: -float(row[27]) for row in rows if row[27] is not None}
        similarity.update((candidate.memory_id, candidate.score) for candidate in dense_found or [])
        by_id = {row[0]: memory_from_row(row) for row in rows}
        pool = dict.fromkeys(row[0] for row in [*lexical_rows, *nearest_rows])
        return CandidatePool(lexical_found, dense_found, [by_id[memory_id] for memory_id in pool], similarity)

    def get_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        with self._read() as connection:
            rows = connection.execute("SELECT memory_id, vector_send(embedding) FROM vectors WHERE memory_id = ANY(%s)",
                                      (list(ids),)).fetchall()
        return {row[0]: unpack_vector(row[1]) for row in rows}

    def get_turn_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        with self._read() as connection:
            rows = connection.execute(
                "SELECT memory_id, vector_send(coalesce(turn_embedding, embedding)) FROM vectors "
                "WHERE memory_id = ANY(%s)", (list(ids),)).fetchall()
        return {row[0]: unpack_vector(row[1]) for row in rows}

    def memory_ids(self, *, after: str = "", limit: int = 1000) -> list[str]:
        with self._read() as connection:
            return [row[0] for row in connection.execute(
                "SELECT id FROM memories WHERE id > %s ORDER BY id LIMIT %s", (after, limit))]

    def turns_around_each(self, ids: Sequence[str], width: int) -> dict[str, list[MemoryItem]]:
        """Two round trips whatever the number of ids: their anchors, then one statement per scope among
        them (in one pipeline), each reading every anchor's turns with its ``width`` turns on each side."""
        unique = list(dict.fromkeys(ids))
        around: dict[str, list[MemoryItem]] = {memory_id: [] for memory_id in unique}
        if not unique:
            return around
        with self._read() as connection:
            scopes: dict[tuple[str | None, ...], list[str]] = {}
            for row in connection.execute("SELECT id, user_id, agent_id, run_id FROM memories WHERE id = ANY(%s)",
                                          (unique,)):
                scopes.setdefault(tuple(row[1:]), []).append(row[0])
            with connection.pipeline():
                cursors = []
                for scope, anchors in scopes.items():
                    scope_sql, scope_params = _turn_scope(scope)
                    turns = f"SELECT t.id, t.valid_from, t.seq FROM memories t WHERE {scope_sql} AND {_TURN}"
                    cursors.append(connection.execute(
                        f"SELECT a.id, {MEMORY_FIELDS} FROM memories a CROSS JOIN LATERAL ("
                        f"({turns} AND (t.valid_from, t.seq) < (a.valid_from, a.seq) "
                        "ORDER BY t.valid_from DESC, t.seq DESC LIMIT %s) "
                        f"UNION ALL ({turns} AND t.id = a.id) "
                        f"UNION ALL ({turns} AND (t.valid_from, t.seq) > (a.valid_from, a.seq) "
                        "ORDER BY t.valid_from, t.seq LIMIT %s)) AS near "
                        f"JOIN memories m ON m.id = near.id {SOURCES_JOIN} "
                        "WHERE a.id = ANY(%s) ORDER BY a.id, m.valid_from, m.seq",
                        [*scope_params, width, *scope_params, *scope_params, width, anchors]))
                rows = [row for cursor in cursors for row in cursor.fetchall()]
        for row in rows:
            around[row[0]].append(memory_from_row(row[1:]))
        return around

    def turns_around(self, first_id: str, last_id: str, width: int) -> list[MemoryItem]:
        """Two statements: the anchors, then ``width`` turns before, the span and ``width`` turns after."""
        with self._read() as connection:
            anchors = {row[0]: row[1:] for row in connection.execute(
                "SELECT id, valid_from, seq, user_id, agent_id, run_id FROM memories WHERE id = ANY(%s)",
                ([first_id, last_id],))}
            if first_id not in anchors or last_id not in anchors:
                return []
            first, last = anchors[first_id][:2], anchors[last_id][:2]
            scope_sql, scope_params = _turn_scope(anchors[first_id][2:])
            turns = f"SELECT t.id FROM memories t WHERE {scope_sql} AND {_TURN} AND "
            rows = connection.execute(
                f"{MEMORY_SELECT} WHERE m.id IN ("
                f"({turns} (t.valid_from, t.seq) < (%s, %s) ORDER BY t.valid_from DESC, t.seq DESC LIMIT %s) "
                f"UNION ALL ({turns} (t.valid_from, t.seq) >= (%s, %s) AND (t.valid_from, t.seq) <= (%s, %s) "
                "ORDER BY t.valid_from, t.seq LIMIT %s) "
                f"UNION ALL ({turns} (t.valid_from, t.seq) > (%s, %s) ORDER BY t.valid_from, t.seq LIMIT %s)) "
                "ORDER BY m.valid_from, m.seq",
                [*scope_params, *first, width, *scope_params, *first, *last, MAX_TURN_SPAN,
                 *scope_params, *last, width]).fetchall()
        return [memory_from_row(row) for row in rows]
