"""SQLite's lexical search reads only its user's rowid range of the FTS index: with FTS5's statistics, same
results and ranking as the store-wide search filtered by scope, index rows follow writes and deletes, and stores of the
previous schema are migrated."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engram.config import EngramConfig
from engram.models import MemoryItem, Scope
from engram.providers import open_store
from engram.store import sqlite_fts, sqlite_scope_bm25
from engram.store.base import ChangeSet, ListQuery, TurnContext
from engram.store.sqlite import SQLiteStore
from engram.store.sqlite_fts import ROWID_MASK, rowid_range
from engram.store.sqlite_schema import MIGRATIONS

WORDS = ["coffee", "garden", "piano", "river", "tennis", "berlin", "lisbon", "sister", "violin", "museum"]


def memories_of(user: str | None, count: int, agent: str | None = None) -> list[MemoryItem]:
    return [MemoryItem(memory=" ".join(WORDS[(i * k) % len(WORDS)] for k in range(1, 2 + i % 4)),
                       user_id=user, agent_id=agent, hash=f"{user}-{i}") for i in range(count)]


def fts_rowids(path: Path) -> list[int]:
    with sqlite3.connect(path) as connection:
        return [row[0] for row in connection.execute("SELECT rowid FROM memories_fts")]


def test_scoped_lexical_search_ranks_as_the_store_wide_one(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    try:
        for user in ("alice", "bob", "carol"):
            store.apply(ChangeSet(memories=memories_of(user, 40)))
        store.apply(ChangeSet(memories=memories_of(None, 10, agent="robot")))
        for scope in (Scope(user_id="alice"), Scope(user_id="bob"), Scope(agent_id="robot")):
            query = ListQuery(scope=scope, limit=15)
            scoped = store._lexical(["coffee", "river", "violin"], query, by_user=True, prune=False)
            wide = store._lexical(["coffee", "river", "violin"], query, by_user=False, prune=False)
            assert scoped == wide and len(scoped) == (15 if scope.user_id else 7)
            # the search itself scores a small user with the user's own statistics (test_sqlite_scope_bm25)
            assert len(store.lexical_search(["coffee", "river", "violin"], query)) == len(scoped)
            assert {m.user_id for m in store.get_memories([c.memory_id for c in scoped])} == {scope.user_id}
        low, high = rowid_range("alice")
        alice = [rowid for rowid in fts_rowids(db_path) if low <= rowid <= high]
        assert len(alice) == 40
    finally:
        store.close()


def test_index_rows_follow_context_updates_and_deletes(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    try:
        kept, doomed = memories_of("alice", 2)
        store.apply(ChangeSet(memories=[kept, doomed]))
        store.apply(ChangeSet(context={kept.id: TurnContext(keys="zeppelin", vector=np.ones(4, np.float32) / 2)}))
        query = ListQuery(scope=Scope(user_id="alice"), limit=5)
        assert [c.memory_id for c in store.lexical_search(["zeppelin"], query)] == [kept.id]
        store.apply(ChangeSet(delete_memories=[doomed.id]))
        assert len(fts_rowids(db_path)) == 1
        assert store.lexical_search(["zeppelin"], ListQuery(scope=Scope(user_id="bob"), limit=5)) == []
    finally:
        store.close()


def test_a_store_of_the_previous_schema_is_migrated(db_path: Path) -> None:
    connection = sqlite3.connect(db_path, isolation_level=None)
    for script in MIGRATIONS[:2]:
        connection.executescript(script)
    connection.execute("PRAGMA user_version = 2")
    for number, user in enumerate(["alice", "bob", "alice"], start=1):
        connection.execute("INSERT INTO memories (rowid, id, text, kind, user_id, created_at, updated_at, hash) "
                           "VALUES (?, ?, ?, 'episode', ?, '2024-01-01T00:00:00+00:00', "
                           "'2024-01-01T00:00:00+00:00', 'h')", (number, f"m{number}", f"tennis club {number}", user))
        connection.execute("INSERT INTO memories_fts (rowid, text, index_keys) VALUES (?, ?, '')",
                           (number, f"tennis club {number}"))
    connection.close()
    store = SQLiteStore(db_path)
    try:
        found = store.lexical_search(["tennis"], ListQuery(scope=Scope(user_id="alice"), limit=5))
        assert sorted(c.memory_id for c in found) == ["m1", "m3"]
        assert sorted(rowid & ROWID_MASK for rowid in fts_rowids(db_path)) == [1, 2, 3]
        store.apply(ChangeSet(delete_memories=["m1"]))
        assert sorted(rowid & ROWID_MASK for rowid in fts_rowids(db_path)) == [2, 3]
    finally:
        store.close()


def test_a_query_matching_too_many_rows_scores_the_rows_of_its_rarest_words(db_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_scope_bm25, "SMALL_SCOPE_ROWS", 0)  # the FTS5 path of large scopes
    store = SQLiteStore(db_path)
    try:
        texts = [f"common filler {i}" for i in range(30)] + ["common rare gem"] * 3 + ["rare gem zircon"]
        stored = [MemoryItem(memory=text, user_id="u", hash=str(i)) for i, text in enumerate(texts)]
        store.apply(ChangeSet(memories=stored))
        query = ListQuery(scope=Scope(user_id="u"), limit=50)
        terms = ["common", "rare", "zircon"]
        exact = store._lexical(terms, query, by_user=True, prune=False)
        assert store.lexical_search(terms, query) == exact  # a small store scores every word
        monkeypatch.setattr(sqlite_fts, "WEIGHING_FROM_ROWS", 10)
        found = store.lexical_search(terms, query)
        assert len(exact) == len(found) == 34
        # "common" is in more than half the rows: FTS5 gives it no weight (IDF 1e-6), so it is not scored;
        # the rows holding it alone come last, with score 0
        assert [c.memory_id for c in found[:4]] == [c.memory_id for c in exact[:4]]
        assert [c.score for c in found[:4]] == pytest.approx([c.score for c in exact[:4]])
        assert {c.memory_id for c in found[4:]} == {c.memory_id for c in exact[4:]}
        assert {c.score for c in found[4:]} == {0.0} and max(c.score for c in exact[4:]) < 1e-4
        monkeypatch.setattr(sqlite_fts, "SCORE_ALL_UP_TO", 2)
        monkeypatch.setattr(sqlite_fts, "MATCH_BUDGET", 1)
        pruned = store.lexical_search(terms, replace(query, limit=1))
        assert [c.memory_id for c in pruned] == [exact[0].memory_id]
        assert pruned[0].score == pytest.approx(exact[0].score)
        exact_store = open_store(EngramConfig(path=str(db_path), exact_lexical=True))
        try:
            assert exact_store.lexical_search(terms, query) == exact != store.lexical_search(terms, query)
        finally:
            exact_store.close()
        assert [c.memory_id for c in store.lexical_search(terms, replace(query, limit=6))] == (
            [c.memory_id for c in found[:4]] + [c.memory_id for c in found[4:6]])
        assert store.lexical_search(["nowhere"], query) == []
        monkeypatch.setattr(sqlite_fts, "NEWEST_FROM", 1)
        newest = store.lexical_search(["common"], replace(query, limit=2))
        assert len(newest) == 2 and {c.memory_id for c in newest} <= {m.id for m in stored[27:33]}
    finally:
        store.close()


def test_rows_holding_only_the_rare_words_are_scored_newest_first(db_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_scope_bm25, "SMALL_SCOPE_ROWS", 0)  # the FTS5 path of large scopes
    store = SQLiteStore(db_path)
    try:
        texts = ["opal opal opal"] + [f"opal stone {i} {i} {i}" for i in range(5)] + ["opal and ruby"] * 2
        texts += [f"ruby filler {i}" for i in range(10)]
        stored = [MemoryItem(memory=text, user_id="u", hash=str(i)) for i, text in enumerate(texts)]
        store.apply(ChangeSet(memories=stored))
        query, terms = ListQuery(scope=Scope(user_id="u"), limit=2), ["opal", "ruby"]
        exact = store._lexical(terms, query, by_user=True, prune=False)
        assert exact[0].memory_id == stored[0].id  # the oldest row: only the rare word, three times
        monkeypatch.setattr(sqlite_fts, "SCORE_ALL_UP_TO", 2)
        monkeypatch.setattr(sqlite_fts, "MATCH_BUDGET", 1)  # a budget of 3 * limit = 6 rows
        assert store.lexical_search(terms, query) == exact
        monkeypatch.setattr(sqlite_fts, "ALONE_FROM", 1)  # the newest 6 of the 8 rows holding "opal"
        pruned = store.lexical_search(terms, query)
        assert stored[0].id not in {c.memory_id for c in pruned}
        assert {c.memory_id for c in pruned} <= {m.id for m in stored[2:8]}
    finally:
        store.close()


def test_a_term_of_several_words_is_counted_by_its_words(db_path: Path) -> None:
    assert sqlite_fts.countable("lisbon") == '"lisbon"'
    assert sqlite_fts.countable("john's") == '"john"'
    store = SQLiteStore(db_path)
    try:
        store.apply(ChangeSet(memories=[MemoryItem(memory=text, user_id="u", hash=text) for text in
                                        ("John's bike", "John has a cat's toy", "Maria")]))
        with sqlite3.connect(db_path) as connection:
            counts = sqlite_fts.TermCounts().get(connection, ["john's", "maria"], list(rowid_range("u")))
        # an upper bound of the phrase's rows (its longest word: 2 rows, the phrase itself: 1), never below it
        assert counts == {"john's": 2, "maria": 1}
        found = store.lexical_search(["john's"], ListQuery(scope=Scope(user_id="u"), limit=5))
        assert len(found) == 1
    finally:
        store.close()


def test_word_counts_of_a_large_one_user_store_are_estimated_from_its_newest_rows(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_fts, "ESTIMATE_FROM_ROWS", 40)
    monkeypatch.setattr(sqlite_fts, "SAMPLE_ROWS", 10)
    monkeypatch.setattr(sqlite_fts, "MIN_SAMPLED", 3)
    store = SQLiteStore(db_path)
    try:
        texts = [f"garden note {i}" for i in range(30)] + [f"garden tulip {i}" for i in range(5)]
        texts += [f"tulip note {i}" for i in range(5)] + ["orchid once"]
        store.apply(ChangeSet(memories=[MemoryItem(memory=text, user_id="u", hash=text) for text in texts]))
        with sqlite3.connect(db_path) as connection:
            sqlite_fts.register(connection)
            counts = sqlite_fts.TermCounts().get(connection, ["garden", "tulip", "orchid", "note"], [])
            # the newest 10 rows: garden 4 times, tulip 9, note 5; 41 rows in all, 4.1 per newest row
            assert counts == {"garden": round(4 * 4.1), "tulip": round(9 * 4.1), "orchid": 1,
                              "note": round(5 * 4.1)}
            store.apply(ChangeSet(memories=[MemoryItem(memory="garden of someone else", user_id="v", hash="v")]))
            assert sqlite_fts.TermCounts().get(connection, ["garden", "orchid"], []) == {"garden": 36, "orchid": 1}
    finally:
        store.close()


def test_exact_lexical_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert EngramConfig().exact_lexical is False
    monkeypatch.setenv("ENGRAM_EXACT_LEXICAL", "true")
    assert EngramConfig().exact_lexical is True
