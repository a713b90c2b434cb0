"""A user's scope of at most 2,000 memories is scored with the user's own BM25 statistics
(``engram.store.sqlite_scope_bm25``): the same formula as FTS5's ``bm25()``, no store-wide doclist walk,
and one user's scores no longer move when another user writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engram.models import MemoryItem, Scope
from engram.store import sqlite_scope_bm25
from engram.store.base import ChangeSet, ListQuery
from engram.store.sqlite import SQLiteStore
from engram.store.sqlite_fts import any_of, register, rowid_range

TEXTS = [
    "Caroline's sister runs a bakery in Lisbon and runs every morning",
    "I went running with my sister, running is my thing",
    "We moved to Lisbon last week; Lisbon is sunny",
    "My dog Rex loves the garden",
    "Running shoes are expensive, said Caroline",
    "The bakery sells pastéis de nata",
    "Caroline Caroline Caroline called twice about the café",
    "I don't drink coffee after 5 pm",
]
QUERIES = [
    ["caroline's", "sister"], ["running"], ["lisbon", "bakery", "runs"], ["cafe"], ["don't", "coffee"],
    ["caroline", "caroline's", "running", "sister", "lisbon"], ["nothing", "matches", "zzz"],
]


def items(user: str, texts: list[str]) -> list[MemoryItem]:
    return [MemoryItem(memory=text, user_id=user, hash=f"{user}-{number}") for number, text in enumerate(texts)]


def fts_scores(path: Path, terms: list[str], user: str) -> dict[int, float]:
    with sqlite3.connect(path) as connection:
        register(connection)
        return dict(connection.execute(
            "SELECT rowid, bm25(memories_fts, 1.0, 0.5) FROM memories_fts WHERE memories_fts MATCH ? "
            "AND rowid BETWEEN ? AND ?", [any_of(terms), *rowid_range(user)]).fetchall())


@contextmanager
def alices_rows(db_path: Path, texts: list[str]) -> Iterator[tuple[sqlite3.Connection, list[int], dict[int, int]]]:
    """A store of alice's ``texts``: a connection to it, alice's FTS range and her rows' lengths."""
    store = SQLiteStore(db_path)
    store.apply(ChangeSet(memories=items("alice", texts)))
    store.close()
    with sqlite3.connect(db_path) as connection:
        register(connection)
        bounds = list(rowid_range("alice"))
        lengths = sqlite_scope_bm25.scope_lengths(connection, bounds, "alice")
        assert lengths is not None and len(lengths) == len(texts)
        yield connection, bounds, lengths


def test_scores_equal_fts5_bm25_when_the_scope_is_the_whole_store(db_path: Path) -> None:
    with alices_rows(db_path, TEXTS) as (connection, bounds, lengths):
        for terms in QUERIES:
            mine = dict(sqlite_scope_bm25.scope_bm25(connection, terms, bounds, lengths))
            expected = fts_scores(db_path, terms, "alice")
            assert mine.keys() == expected.keys()
            for rowid, score in expected.items():
                assert mine[rowid] == pytest.approx(score, rel=1e-9, abs=1e-12)


def test_a_scope_over_the_size_limit_is_left_to_fts5(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStore(db_path)
    store.apply(ChangeSet(memories=items("alice", TEXTS)))
    store.close()
    monkeypatch.setattr(sqlite_scope_bm25, "SMALL_SCOPE_ROWS", len(TEXTS) - 1)
    with sqlite3.connect(db_path) as connection:
        assert sqlite_scope_bm25.scope_lengths(connection, rowid_range("alice"), "alice") is None


def test_one_users_ranking_does_not_move_when_another_user_writes(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    try:
        store.apply(ChangeSet(memories=items("alice", TEXTS)))
        query = ListQuery(scope=Scope(user_id="alice"), limit=10)
        terms = ["lisbon", "sister", "running"]
        before = store.lexical_search(terms, query)
        store.apply(ChangeSet(memories=items("bob", ["Lisbon Lisbon Lisbon"] * 30 + ["my sister"] * 3)))
        after = store.lexical_search(terms, query)
        assert [c.memory_id for c in after] == [c.memory_id for c in before] and len(before) == 4
        assert [c.score for c in after] == pytest.approx([c.score for c in before], rel=1e-9)
        store_wide = store._lexical(terms, query, by_user=True, prune=False)
        assert [c.score for c in store_wide] != pytest.approx([c.score for c in before])
    finally:
        store.close()


def test_filters_and_other_users_in_the_bucket_are_kept_out(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    try:
        mine = items("alice", TEXTS)
        mine[2].agent_id = "travel"
        store.apply(ChangeSet(memories=mine + items("bob", TEXTS)))
        found = store.lexical_search(["lisbon"], ListQuery(scope=Scope(user_id="alice", agent_id="travel"), limit=5))
        assert [c.memory_id for c in found] == [mine[2].id]
        everyone = store.lexical_search(["lisbon"], ListQuery(scope=Scope(user_id="alice"), limit=5))
        assert {c.memory_id for c in everyone} == {mine[0].id, mine[2].id}
    finally:
        store.close()


def test_varints_read_sqlite_encoding() -> None:
    assert sqlite_scope_bm25.varints(bytes([0x05, 0x81, 0x00, 0xFF, 0x7F])) == [5, 128, 16383]


def test_words_in_half_the_rows_or_more_weigh_as_in_fts5(db_path: Path) -> None:
    texts = [f"Caroline: day {n} in Lisbon" for n in range(6)] + ["Caroline: a cat named Lisbon Lisbon", "a dog"]
    with alices_rows(db_path, texts) as (connection, bounds, lengths):
        terms = ["caroline", "lisbon", "cat", "dog"]
        mine = sqlite_scope_bm25.scope_bm25(connection, terms, bounds, lengths)
        expected = fts_scores(db_path, terms, "alice")
        assert {rowid for rowid, _ in mine} == set(expected)
        for rowid, score in mine:
            assert score == pytest.approx(expected[rowid], abs=1e-5)
        assert [rowid for rowid, _ in mine[:2]] == sorted(expected, key=expected.__getitem__)[:2]
