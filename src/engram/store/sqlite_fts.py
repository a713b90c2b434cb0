"""Where a memory's row sits in SQLite's FTS5 index: its rowid there carries a bucket of its user id in
the high bits (``fts_rowid``), so one user's memories occupy one rowid range of the index.

A search in a user's scope passes that range to FTS5 (``rowid BETWEEN``), which then matches and scores
only the rows in that part of each word's doclists instead of every match in the store before the scope
filter. BM25's statistics stay store-wide, so the ranking is unchanged (and ``bm25()`` still counts each
word's rows in the whole store once per query, the part of the cost that grows with the store).
Different users can share a bucket (a hash), so the scope filter still applies; memories without a
user id are in bucket 0, and searches without one read the whole index.

In a large scope an OR query of many words matches thousands of rows, and ``bm25()`` costs a few
microseconds per matching row. When a query's words match more than ``SCORE_ALL_UP_TO`` rows in all
(``TermCounts``), ``bm25_search`` scores only the rows holding one of its rarest words (those whose
matches fit in ``MATCH_BUDGET``, or in three times the rows asked for), with every word of the query:
the query ``(rare) AND (all)`` counts the rare words twice, so their score alone (``rare``, over the
same rows) is subtracted. Scores are the exact BM25 of the whole query; what can be missed are rows
holding none of the rare words, whose score comes from the commonest words only (when fewer rows than
asked for are found, every match is scored). When even the rarest word matches too many rows (a
question whose only indexed word is a name in half the scope), only its newest rows are scored
(``NEWEST_FROM``). ``engram bench scale`` reports the recall@10 of this
against the exact query.

Either way the FTS index ranks first, alone, and the memory rows (large: text, keys, metadata) are read
only for its best rows, to apply the scope and filters (``_exact_rows``)."""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Sequence

#: Bits of an FTS rowid that hold the memory's own rowid; the bits above hold its user bucket.
ROWID_BITS = 40
ROWID_MASK = (1 << ROWID_BITS) - 1
BUCKETS = 1 << 22
#: The SQL function (registered on every store connection) computing ``fts_rowid`` in statements.
SQL_FUNCTION = "engram_fts_rowid"

#: Schema migration 3: move every FTS row to its bucketed rowid (one rebuild of the index).
MIGRATION = f"""
    CREATE VIRTUAL TABLE memories_fts_bucketed USING fts5(
        text, index_keys, tokenize = 'porter unicode61 remove_diacritics 2'
    );
    INSERT INTO memories_fts_bucketed (rowid, text, index_keys)
        SELECT {SQL_FUNCTION}(m.rowid, m.user_id), f.text, f.index_keys
        FROM memories_fts f JOIN memories m ON m.rowid = f.rowid ORDER BY 1;
    DROP TABLE memories_fts;
    ALTER TABLE memories_fts_bucketed RENAME TO memories_fts
"""


def bucket(user_id: str | None) -> int:
    """The bucket of a user id (0 for none)."""
    return 0 if user_id is None else zlib.crc32(user_id.encode("utf-8", "surrogatepass")) % (BUCKETS - 1) + 1


def fts_rowid(rowid: int, user_id: str | None) -> int:
    """The FTS rowid of the memory at ``rowid`` whose user id is ``user_id``."""
    return (bucket(user_id) << ROWID_BITS) | rowid


def rowid_range(user_id: str) -> tuple[int, int]:
    """First and last FTS rowid a memory of ``user_id`` can have."""
    low = bucket(user_id) << ROWID_BITS
    return low, low | ROWID_MASK


#: Rows (summed over the query's words) up to which a lexical query scores every match.
SCORE_ALL_UP_TO = 2000
#: Rows (summed over the words kept) of the rarest words scored when a query matches more.
MATCH_BUDGET = 500
#: When even the rarest words match more than ``NEWEST_FROM`` times the budget, only the newest of their
#: rows (that many) are scored: a bounded cost, at the price of older rows matching only common words.
NEWEST_FROM = 20
#: The FTS index's best ``POOL_FACTOR * limit`` rows are filtered by scope first (exact while enough pass).
POOL_FACTOR = 4
#: Local writes after which cached word counts are dropped (other connections' writes drop them at once).
COUNTS_TTL_WRITES = 500
_SCORE = "bm25(memories_fts, 1.0, 0.5)"
_JOIN = f"JOIN memories m ON m.rowid = (memories_fts.rowid & {ROWID_MASK})"


def _matching(bounds: Sequence[int]) -> str:
    return "memories_fts MATCH ?" + (" AND memories_fts.rowid BETWEEN ? AND ?" if bounds else "")


def phrase(term: str) -> str:
    """``term`` as an FTS5 phrase (quoted, so operators and punctuation are literal)."""
    return '"' + term.replace('"', '""') + '"'


def any_of(terms: Sequence[str]) -> str:
    """An FTS5 query matching rows that hold any of ``terms``."""
    return " OR ".join(phrase(term) for term in terms)


class TermCounts:
    """How many FTS rows (in a rowid range) hold each word, cached: they only choose which rows are scored,
    so slightly stale counts cost speed, never correctness."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, tuple[int, ...]], int] = {}
        self._data_version = -1
        self._writes = 0

    def written(self) -> None:
        """Note one local write (the cache is dropped every ``COUNTS_TTL_WRITES``)."""
        self._writes += 1
        if self._writes >= COUNTS_TTL_WRITES:
            self._counts.clear()
            self._writes = 0

    def get(self, connection: sqlite3.Connection, terms: Sequence[str], bounds: Sequence[int]) -> dict[str, int]:
        """``{term: rows holding it}`` within ``bounds`` (an FTS rowid range, or empty for all)."""
        version = int(connection.execute("PRAGMA data_version").fetchone()[0])
        if version != self._data_version or len(self._counts) > 100_000:
            self._counts.clear()
            self._data_version = version
        where = _matching(bounds)
        found = {}
        for term in terms:
            key = (term, tuple(bounds))
            if key not in self._counts:
                self._counts[key] = int(connection.execute(f"SELECT count(*) FROM memories_fts WHERE {where}",
                                                           [phrase(term), *bounds]).fetchone()[0])
            found[term] = self._counts[key]
        return found


def rarest(terms: Sequence[str], counts: dict[str, int], budget: int, limit: int) -> list[str]:
    """The rarest of ``terms`` (found at all) whose counts sum to at most ``budget``, or more until they
    reach ``limit`` rows."""
    kept: list[str] = []
    total = 0
    for term in sorted((term for term in terms if counts[term]), key=lambda word: counts[word]):
        if total >= limit and total + counts[term] > budget:
            break
        kept.append(term)
        total += counts[term]
    return kept


def bm25_search(connection: sqlite3.Connection, terms: Sequence[str], where: str, params: Sequence[object],
                bounds: Sequence[int], limit: int, counts: TermCounts | None) -> list[tuple[str, float]]:
    """``(memory id, BM25 score)`` of the best ``limit`` memories (alias ``m``) ``where`` selects among the
    FTS rows in ``bounds``, best first; with ``counts``, a query matching too many rows scores those holding
    its rarest words only (see the module docstring), or all of them when that finds fewer than ``limit``."""
    found = counts.get(connection, terms, bounds) if counts is not None else None
    if found is not None and sum(found.values()) > SCORE_ALL_UP_TO:
        best = _rarest_rows(connection, terms, found, where, params, bounds, limit)
        if len(best) >= limit:
            return best
    return _exact_rows(connection, any_of(terms), where, params, bounds, limit)


def _exact_rows(connection: sqlite3.Connection, query: str, where: str, params: Sequence[object],
                bounds: Sequence[int], limit: int) -> list[tuple[str, float]]:
    """The best ``limit`` rows by BM25: the FTS index's best ``POOL_FACTOR * limit`` first, filtered by
    ``where`` (no memory row is read for the others); when too few pass, every match is filtered."""
    pool = POOL_FACTOR * limit
    top = connection.execute(f"SELECT rowid, {_SCORE} AS rank FROM memories_fts WHERE {_matching(bounds)} "
                             "ORDER BY rank LIMIT ?", [query, *bounds, pool]).fetchall()
    rowids = [rowid & ROWID_MASK for rowid, _ in top]
    kept: dict[int, str] = {}
    for start in range(0, len(rowids), 500):
        chunk = rowids[start:start + 500]
        kept.update(connection.execute(
            f"SELECT m.rowid, m.id FROM memories m WHERE m.rowid IN ({', '.join('?' for _ in chunk)}) AND {where}",
            [*chunk, *params]).fetchall())
    found = [(kept[rowid], -float(rank)) for rowid, (_, rank) in zip(rowids, top, strict=True) if rowid in kept]
    if len(found) >= limit or len(top) < pool:
        return found[:limit]
    rows = connection.execute(
        f"SELECT m.id, {_SCORE} AS rank FROM memories_fts {_JOIN} WHERE {_matching(bounds)} AND {where} "
        "ORDER BY rank LIMIT ?", [query, *bounds, *params, limit]).fetchall()
    return [(memory_id, -float(rank)) for memory_id, rank in rows]


def _rarest_rows(connection: sqlite3.Connection, terms: Sequence[str], found: dict[str, int], where: str,
                 params: Sequence[object], bounds: Sequence[int], limit: int) -> list[tuple[str, float]]:
    """The best ``limit`` of the rows holding the rarest of ``terms``, scored with all of them."""
    budget = max(MATCH_BUDGET, 3 * limit)
    rare = rarest(terms, found, budget, limit)
    if sum(found[term] for term in rare) > NEWEST_FROM * budget:
        newest = connection.execute(
            f"SELECT min(rowid) FROM (SELECT rowid FROM memories_fts WHERE {_matching(bounds)} "
            "ORDER BY rowid DESC LIMIT ?)", [any_of(rare), *bounds, NEWEST_FROM * budget]).fetchone()[0]
        bounds = [newest or 0, bounds[1] if bounds else ROWID_MASK | (BUCKETS << ROWID_BITS)]
    if len(rare) == len([term for term in terms if found[term]]):
        doubled = {}
        query = any_of(rare)
    else:
        doubled = dict(connection.execute(f"SELECT rowid, {_SCORE} FROM memories_fts WHERE {_matching(bounds)}",
                                          [any_of(rare), *bounds]).fetchall())
        query = f"({any_of(rare)}) AND ({any_of(terms)})"
    rows = connection.execute(
        f"SELECT m.id, memories_fts.rowid, {_SCORE} FROM memories_fts {_JOIN} WHERE {_matching(bounds)} AND {where}",
        [query, *bounds, *params]).fetchall()
    scored = sorted((float(rank) - doubled.get(rowid, 0.0), rowid, memory_id) for memory_id, rowid, rank in rows)
    return [(memory_id, -rank) for rank, _, memory_id in scored[:limit]]


def register(connection: sqlite3.Connection) -> None:
    """Make ``engram_fts_rowid(rowid, user_id)`` available to this connection's statements."""
    connection.create_function(SQL_FUNCTION, 2, fts_rowid, deterministic=True)
