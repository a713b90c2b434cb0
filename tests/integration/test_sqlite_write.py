"""SQLite's write side: a transaction writes each FTS row once, in rowid order, when it commits (one new
index segment per single-turn add, not one per re-keyed neighbour); a rolled-back transaction writes no
FTS row; a search inside a transaction sees the rows it wrote; the WAL is checkpointed into the database
file by a background thread, not by the writer's commits."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from engram import Memory
from engram.embed.base import Embedder
from engram.errors import StorageError
from engram.models import MemoryItem, Scope, SourceRef
from engram.store.base import ChangeSet, ListQuery
from engram.store.sqlite import SQLiteStore
from engram.store.sqlite_checkpoint import CHECKPOINT_EVERY_COMMITS
from engram.timeutil import utcnow

TURNS = ["I started a pottery class on Tuesday.", "That sounds relaxing, what do you make?",
         "Mostly bowls, one of them cracked in the kiln.", "Did the teacher say why?",
         "The clay was too wet, apparently.", "Next week we try glazing."]


def new_segments(connection: sqlite3.Connection, action: object) -> int:
    """How many FTS5 segments ``action()`` writes (automerge off: merges would add their own)."""
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    try:
        action()  # type: ignore[operator]
    finally:
        connection.set_trace_callback(None)
    return sum(1 for statement in statements if statement.startswith("-- INSERT INTO 'main'.'memories_fts_idx'"))


def test_a_single_turn_add_writes_one_index_segment(db_path: Path, embedder: Embedder) -> None:
    memory = Memory(path=str(db_path), embedder=embedder)
    try:
        for number, text in enumerate(TURNS):
            memory.add([{"role": "user", "content": text}], user_id="ann", infer=False,
                       timestamp=f"2024-05-0{1 + number // 3}T10:0{number}:00Z")
        connection = memory._store._connection  # type: ignore[attr-defined]
        connection.execute("INSERT INTO memories_fts (memories_fts, rank) VALUES ('automerge', 0)")
        segments = new_segments(connection, lambda: memory.add(
            [{"role": "assistant", "content": "Glazing is where it gets colourful."}], user_id="ann", infer=False,
            timestamp="2024-05-02T10:06:00Z"))
        assert segments == 1
        found = memory.search("colourful glazing", user_id="ann")["results"]
        assert found and found[0]["memory"] == "Glazing is where it gets colourful."
        connection.execute("INSERT INTO memories_fts (memories_fts) VALUES ('integrity-check')")
    finally:
        memory.close()


def test_a_rolled_back_transaction_writes_no_index_row(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    try:
        orphan = MemoryItem(memory="zeppelin over the harbour", user_id="ann", hash="orphan",
                            sources=[SourceRef(id="no-such-episode", occurred_at=utcnow(), role="user")])
        with pytest.raises(StorageError):
            store.apply(ChangeSet(memories=[orphan]))
        store.apply(ChangeSet(memories=[MemoryItem(memory="a quiet harbour", user_id="ann", hash="kept")]))
        query = ListQuery(scope=Scope(user_id="ann"), limit=5)
        assert store.lexical_search(["zeppelin"], query) == []
        assert [c.memory_id for c in store.lexical_search(["harbour"], query)] != []
        with sqlite3.connect(db_path) as connection:
            assert connection.execute("SELECT count(*) FROM memories_fts").fetchone()[0] == 1
            connection.execute("INSERT INTO memories_fts (memories_fts) VALUES ('integrity-check')")
    finally:
        store.close()


def test_a_search_inside_a_transaction_sees_its_own_writes(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    try:
        item = MemoryItem(memory="the lighthouse keeper", user_id="ann", hash="keeper")
        query = ListQuery(scope=Scope(user_id="ann"), limit=5)
        with store.locked(Scope(user_id="ann")):
            store.apply(ChangeSet(memories=[item]))
            assert [c.memory_id for c in store.lexical_search(["lighthouse"], query)] == [item.id]
        assert [c.memory_id for c in store.lexical_search(["lighthouse"], query)] == [item.id]
    finally:
        store.close()


def test_the_wal_reaches_the_database_file_without_the_writer_checkpointing(db_path: Path, tmp_path: Path) -> None:
    store = SQLiteStore(db_path)
    try:
        store._connection.execute("PRAGMA wal_autocheckpoint = 0")  # type: ignore[attr-defined]
        items = [MemoryItem(memory=f"note number {n}", user_id="ann", hash=f"n{n}")
                 for n in range(CHECKPOINT_EVERY_COMMITS)]
        for item in items:
            store.apply(ChangeSet(memories=[item]))
        deadline = time.monotonic() + 30
        while store._checkpointer.checkpoints < 1 and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.05)
        copy = tmp_path / "file-only.db"
        shutil.copy(db_path, copy)  # the database file alone, without its -wal (closing would checkpoint)
        with sqlite3.connect(copy) as connection:
            assert connection.execute("SELECT count(*) FROM memories").fetchone()[0] == len(items)
    finally:
        store.close()
