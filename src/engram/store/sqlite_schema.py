"""SQLite schema and forward migrations. ``PRAGMA user_version`` holds the applied version."""

from __future__ import annotations

import sqlite3

from engram.errors import StorageError
from engram.store import sqlite_fts

MIGRATIONS: list[str] = [
    # 1: episodes, memories, sources, history, vectors, FTS5 index
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE episodes (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        user_id TEXT, agent_id TEXT, run_id TEXT,
        role TEXT NOT NULL,
        name TEXT,
        content TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        hash TEXT NOT NULL,
        extraction TEXT NOT NULL DEFAULT 'none'
    );
    CREATE INDEX episodes_user ON episodes(user_id, occurred_at);
    CREATE INDEX episodes_agent ON episodes(agent_id, occurred_at);
    CREATE INDEX episodes_run ON episodes(run_id, occurred_at);
    CREATE INDEX episodes_extraction ON episodes(extraction) WHERE extraction != 'none' AND extraction != 'done';
    CREATE TABLE memories (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        text TEXT NOT NULL,
        kind TEXT NOT NULL,
        user_id TEXT, agent_id TEXT, run_id TEXT,
        metadata TEXT NOT NULL DEFAULT '{}',
        valid_from TEXT, valid_to TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        hash TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'active',
        writer TEXT NOT NULL DEFAULT 'user',
        index_keys TEXT NOT NULL DEFAULT '',
        access_count INTEGER NOT NULL DEFAULT 0,
        last_accessed_at TEXT
    );
    CREATE INDEX memories_user ON memories(user_id, created_at);
    CREATE INDEX memories_agent ON memories(agent_id, created_at);
    CREATE INDEX memories_run ON memories(run_id, created_at);
    CREATE INDEX memories_hash ON memories(hash);
    CREATE TABLE memory_sources (
        memory_id TEXT NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
        episode_id TEXT NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        PRIMARY KEY (memory_id, position)
    );
    CREATE INDEX memory_sources_episode ON memory_sources(episode_id);
    CREATE TABLE history (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        memory_id TEXT NOT NULL,
        event TEXT NOT NULL,
        old_memory TEXT,
        new_memory TEXT,
        created_at TEXT NOT NULL,
        actor TEXT NOT NULL,
        user_id TEXT, agent_id TEXT, run_id TEXT,
        metadata TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX history_memory ON history(memory_id, rowid);
    CREATE TABLE vectors (
        memory_id TEXT PRIMARY KEY REFERENCES memories(id) ON DELETE CASCADE,
        vec BLOB NOT NULL
    );
    CREATE VIRTUAL TABLE memories_fts USING fts5(
        text, index_keys, tokenize = 'porter unicode61 remove_diacritics 2'
    );
    """,
    # 2: turns keep their neighbours' text apart from their own keys (rebuilt as neighbours come and go),
    # and their own embedding beside the neighbour-mixed one; an index walks a conversation in event order
    """
    ALTER TABLE memories ADD COLUMN context_keys TEXT NOT NULL DEFAULT '';
    ALTER TABLE memories ADD COLUMN attributes TEXT NOT NULL DEFAULT '';
    ALTER TABLE vectors ADD COLUMN turn_vec BLOB;
    CREATE INDEX memories_turns ON memories(user_id, agent_id, run_id, valid_from) WHERE kind = 'episode';
    """,
    # 3: an FTS row's rowid holds its user's bucket, so a scope's lexical search reads one rowid range
    sqlite_fts.MIGRATION,
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(connection: sqlite3.Connection) -> int:
    """Apply the migrations this file is missing, each in its own transaction; return the version."""
    sqlite_fts.register(connection)
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"database schema version {version} is newer than this Engram ({SCHEMA_VERSION})",
            hint="upgrade engramdb",
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        connection.execute("BEGIN IMMEDIATE")
        try:
            current = int(connection.execute("PRAGMA user_version").fetchone()[0])
            if current < target:
                for statement in _statements(MIGRATIONS[target - 1]):
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {target}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
