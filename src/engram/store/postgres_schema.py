"""PostgreSQL schema and forward migrations. The ``schema_version`` table lists applied versions.

Migrations run in one transaction under a fixed advisory lock, so processes starting together do
not race. The vector column starts without a dimension: the first stored embedding fixes it
(``ensure_vector_dim``), which also builds the HNSW index."""

from __future__ import annotations

import unicodedata

import psycopg

from engram.errors import ConfigurationError, StorageError, ValidationError

MIGRATION_LOCK_KEY = 0x656E6772616D0001  # "engram" + 1
VECTOR_DIM_KEY = "vector_dim"
HNSW_MAX_DIM = 2000  # pgvector's limit for indexing the ``vector`` type



def _diacritic_fold_map() -> tuple[str, str]:
    """Latin letters with diacritics and their bare letters, for ``translate`` (as FTS5's
    ``remove_diacritics``)."""
    source, target = [], []
    for code in range(0xC0, 0x250):
        char = chr(code)
        base = unicodedata.normalize("NFKD", char)[0]
        if base != char and base.isascii() and base.isalpha():
            source.append(char)
            target.append(base)
    return "".join(source), "".join(target)


_FOLD_FROM, _FOLD_TO = _diacritic_fold_map()
_TEXT_TSV = "to_tsvector('engram_english'::regconfig, engram_fold(text))"
_KEYS_TSV = "to_tsvector('engram_english'::regconfig, engram_fold(index_keys || E'\\n' || context_keys))"

MIGRATIONS: list[list[str]] = [
    # 1: episodes, memories, sources, history, vectors, full-text index. The text search
    # configuration is English stemming without a stop-word list, on diacritic-folded text,
    # to match the SQLite store's FTS5 (porter, unicode61 remove_diacritics) tokenisation.
    [
        "CREATE TEXT SEARCH DICTIONARY engram_english_stem (TEMPLATE = snowball, LANGUAGE = english)",
        "CREATE TEXT SEARCH CONFIGURATION engram_english (COPY = pg_catalog.english)",
        "ALTER TEXT SEARCH CONFIGURATION engram_english ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, "
        "word, hword, hword_part WITH engram_english_stem",
        f"CREATE FUNCTION engram_fold(value text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE "
        f"RETURN translate(value, '{_FOLD_FROM}', '{_FOLD_TO}')",
        "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
        """CREATE TABLE episodes (
            seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            id text PRIMARY KEY,
            user_id text, agent_id text, run_id text,
            role text NOT NULL,
            name text,
            content text NOT NULL,
            occurred_at timestamptz NOT NULL,
            recorded_at timestamptz NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{}',
            hash text NOT NULL,
            extraction text NOT NULL DEFAULT 'none'
        )""",
        "CREATE INDEX episodes_user ON episodes (user_id, occurred_at)",
        "CREATE INDEX episodes_agent ON episodes (agent_id, occurred_at)",
        "CREATE INDEX episodes_run ON episodes (run_id, occurred_at)",
        "CREATE INDEX episodes_extraction ON episodes (extraction) WHERE extraction NOT IN ('none', 'done')",
        """CREATE TABLE memories (
            seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            id text PRIMARY KEY,
            text text NOT NULL,
            kind text NOT NULL,
            user_id text, agent_id text, run_id text,
            metadata jsonb NOT NULL DEFAULT '{}',
            valid_from timestamptz, valid_to timestamptz,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            hash text NOT NULL,
            status text NOT NULL DEFAULT 'active',
            writer text NOT NULL DEFAULT 'user',
            index_keys text NOT NULL DEFAULT '',
            access_count integer NOT NULL DEFAULT 0,
            last_accessed_at timestamptz,
            search_tsv tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('engram_english'::regconfig, engram_fold(text)), 'A')
                || setweight(to_tsvector('engram_english'::regconfig, engram_fold(index_keys)), 'B')
            ) STORED
        )""",
        "CREATE INDEX memories_user ON memories (user_id, created_at)",
        "CREATE INDEX memories_agent ON memories (agent_id, created_at)",
        "CREATE INDEX memories_run ON memories (run_id, created_at)",
        "CREATE INDEX memories_hash ON memories (hash)",
        "CREATE INDEX memories_search ON memories USING gin (search_tsv)",
        """CREATE TABLE memory_sources (
            memory_id text NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
            episode_id text NOT NULL REFERENCES episodes (id) ON DELETE CASCADE,
            position integer NOT NULL,
            PRIMARY KEY (memory_id, position)
        )""",
        "CREATE INDEX memory_sources_episode ON memory_sources (episode_id)",
        """CREATE TABLE history (
            seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            id text PRIMARY KEY,
            memory_id text NOT NULL,
            event text NOT NULL,
            old_memory text,
            new_memory text,
            created_at timestamptz NOT NULL,
            actor text NOT NULL,
            user_id text, agent_id text, run_id text,
            metadata jsonb NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX history_memory ON history (memory_id, seq)",
        """CREATE TABLE vectors (
            memory_id text PRIMARY KEY REFERENCES memories (id) ON DELETE CASCADE,
            embedding vector NOT NULL
        )""",
    ],
    # 2: turns keep their neighbours' text apart from their own keys (rebuilt as neighbours come and go),
    # and their own embedding beside the neighbour-mixed one; an index walks a conversation in event order
    [
        "ALTER TABLE memories ADD COLUMN context_keys text NOT NULL DEFAULT ''",
        "ALTER TABLE memories ADD COLUMN attributes text NOT NULL DEFAULT ''",
        "ALTER TABLE memories DROP COLUMN search_tsv",
        """ALTER TABLE memories ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('engram_english'::regconfig, engram_fold(text)), 'A')
            || setweight(to_tsvector('engram_english'::regconfig, engram_fold(index_keys || E'\\n' || context_keys)),
                         'B')
        ) STORED""",
        "CREATE INDEX memories_search ON memories USING gin (search_tsv)",
        "ALTER TABLE vectors ADD COLUMN turn_embedding vector",
        "CREATE INDEX memories_turns ON memories (user_id, agent_id, run_id, valid_from, seq) WHERE kind = 'episode'",
    ],
    # 3: the text and the keys in two tsvectors with a GIN index each, and the combined length (the BM25
    # document length, as length(search_tsv) was) in a column: lexical search scores from the indexes
    # and never reads a tsvector (detoasting the scope's vectors was most of its time)
    [
        "ALTER TABLE memories DROP COLUMN search_tsv",
        f"ALTER TABLE memories ADD COLUMN text_tsv tsvector GENERATED ALWAYS AS ({_TEXT_TSV}) STORED",
        f"ALTER TABLE memories ADD COLUMN keys_tsv tsvector GENERATED ALWAYS AS ({_KEYS_TSV}) STORED",
        "ALTER TABLE memories ADD COLUMN search_length integer "
        f"GENERATED ALWAYS AS (length({_TEXT_TSV} || {_KEYS_TSV})) STORED",
        "CREATE INDEX memories_text_search ON memories USING gin (text_tsv)",
        "CREATE INDEX memories_keys_search ON memories USING gin (keys_tsv)",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(connection: psycopg.Connection) -> int:
    """Create the pgvector extension if needed and apply missing migrations; return the version."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        _ensure_vector_extension(connection)
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = connection.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"database schema version {version} is newer than this Engram ({SCHEMA_VERSION})",
                hint="upgrade engramdb",
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[target - 1]:
                connection.execute(statement)
            connection.execute("INSERT INTO schema_version (version) VALUES (%s)", (target,))
    return SCHEMA_VERSION


def _ensure_vector_extension(connection: psycopg.Connection) -> None:
    if connection.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
        return
    try:
        with connection.transaction():
            connection.execute("CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public")
    except psycopg.Error as exc:
        raise ConfigurationError(
            f"the pgvector extension is missing and could not be created: {exc}",
            field="url",
            hint="install pgvector and run 'CREATE EXTENSION vector' as a superuser in this database",
        ) from exc


def check_graph(m: int, ef_construction: int) -> tuple[int, int]:
    """``(m, ef_construction)`` of an HNSW graph within pgvector's bounds, else a ConfigurationError."""
    for field, value, low, high in (("hnsw_m", m, 2, 100), ("hnsw_ef_construction", ef_construction, 4, 1000)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigurationError(f"must be an integer from {low} to {high}, got {value!r}", field=field)
    if ef_construction < 2 * m:
        raise ConfigurationError(f"must be at least twice hnsw_m ({2 * m}), got {ef_construction}",
                                 field="hnsw_ef_construction", hint="raise it or lower hnsw_m")
    return m, ef_construction


def ensure_vector_dim(connection: psycopg.Connection, dim: int, graph: tuple[int, int]) -> None:
    """Fix the vector column's dimension on first use (and build the HNSW index, ``graph`` its
    ``(m, ef_construction)``); reject others.

    Must run inside a transaction; a transaction-scoped advisory lock makes the first-use check
    safe against other processes."""
    row = connection.execute("SELECT value FROM meta WHERE key = %s", (VECTOR_DIM_KEY,)).fetchone()
    if row is None:
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        row = connection.execute("SELECT value FROM meta WHERE key = %s", (VECTOR_DIM_KEY,)).fetchone()
    if row is not None:
        stored = int(row[0])
        if stored != dim:
            raise ValidationError(
                f"embedding has {dim} dimensions but this store holds {stored}-dimensional vectors",
                field="vectors", hint="use the embedder the store was built with, or a new database",
            )
        return
    if dim < 1:
        raise ValidationError("embeddings must have at least one dimension", field="vectors")
    connection.execute(f"ALTER TABLE vectors ALTER COLUMN embedding TYPE vector({int(dim)})")
    if dim <= HNSW_MAX_DIM:
        m, ef_construction = check_graph(*graph)
        connection.execute(f"CREATE INDEX vectors_hnsw ON vectors USING hnsw (embedding vector_ip_ops) "
                           f"WITH (m = {m}, ef_construction = {ef_construction})")
    connection.execute("INSERT INTO meta (key, value) VALUES (%s, %s)", (VECTOR_DIM_KEY, str(dim)))


def release_vector_dim(connection: psycopg.Connection) -> None:
    """Let the vector column hold any dimension again (drops the HNSW index) while a store is re-embedded;
    ``ensure_vector_dim`` fixes it again. Must run inside a transaction."""
    connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
    connection.execute("DROP INDEX IF EXISTS vectors_hnsw")
    connection.execute("ALTER TABLE vectors ALTER COLUMN embedding TYPE vector")
    connection.execute("DELETE FROM meta WHERE key = %s", (VECTOR_DIM_KEY,))


def stored_vector_dim(connection: psycopg.Connection) -> int | None:
    """The dimension fixed by the first stored embedding, or ``None`` before any."""
    row = connection.execute("SELECT value FROM meta WHERE key = %s", (VECTOR_DIM_KEY,)).fetchone()
    return None if row is None else int(row[0])
