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
the query ``(rare) AND (others)`` scores the rows holding another word too, and ``rare`` alone the
rest (whose score is that of the rare words); both are scored by the FTS index alone, no memory row is
read for them.
Scores are the exact BM25 of the whole query; what can be missed are rows holding none of the rare
words, whose score comes from the commonest words only (when fewer rows than asked for are found,
every match is scored). When even the rarest word matches too many rows (a question whose only
indexed word is a name in half the scope), only its newest rows are scored (``NEWEST_FROM``).
``engram bench scale`` reports the recall@10 of this against the exact query.

Words in half the store's rows or more are left out of the scored query (``TermCounts.weighing``):
FTS5 clamps their IDF to 1e-6, so they change no score, but ``bm25()`` would walk each one's whole
doclist, store-wide, to count it. Rows holding only such words come after the scored ones, score 0.

Either way the FTS index ranks first, alone, and the memory rows (large: text, keys, metadata) are read
only for its best rows, by rowid, to apply the scope and filters (``passing``)."""

from __future__ import annotations

import re
import sqlite3
import zlib
from collections.abc import Sequence

#: Bits of an FTS rowid that hold the memory's own rowid; the bits above hold its user bucket.
ROWID_BITS = 40
ROWID_MASK = (1 << ROWID_BITS) - 1
BUCKETS = 1 << 22
#: The SQL function (registered on every store connection) computing ``fts_rowid`` in statements.
SQL_FUNCTION = "engram_fts_rowid"

#: The FTS index's tokenizer (its words are stemmed, case and diacritics folded).
TOKENIZER = "porter unicode61 remove_diacritics 2"
#: ``bm25()``'s weights of the FTS columns: a memory's text counts twice its index keys.
COLUMN_WEIGHTS = (1.0, 0.5)

#: Schema migration 3: move every FTS row to its bucketed rowid (one rebuild of the index).
MIGRATION = f"""
    CREATE VIRTUAL TABLE memories_fts_bucketed USING fts5(
        text, index_keys, tokenize = '{TOKENIZER}'
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


def only_user(connection: sqlite3.Connection) -> str | None:
    """The user id of every memory of the store when they all have the same one (three index probes, not
    a count), else None."""
    user = connection.execute("SELECT min(user_id) FROM memories").fetchone()[0]
    if user is None or user != connection.execute("SELECT max(user_id) FROM memories").fetchone()[0]:
        return None
    unowned = connection.execute("SELECT 1 FROM memories WHERE user_id IS NULL LIMIT 1").fetchone()
    return None if unowned is not None else str(user)


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
#: Of the rows holding only rare words, the newest this many budgets are scored (a 100,000-memory scope:
#: lexical p95 41 -> 27 ms CPU, overlap of the top 10 with the exact query 0.906 -> 0.905).
ALONE_FROM = 6
#: The FTS index's best ``POOL_FACTOR * limit`` rows are filtered by scope first (exact while enough pass).
POOL_FACTOR = 4
#: Stores of one user with this many rows or more estimate a word's count from its newest rows (``TermCounts``).
ESTIMATE_FROM_ROWS = 200_000
SAMPLE_ROWS = 100_000
MIN_SAMPLED = 50
#: Stores of fewer rows score every word of a query (``TermCounts.weighing``).
WEIGHING_FROM_ROWS = 20_000
#: Local writes after which cached word counts are dropped (other connections' writes drop them at once).
COUNTS_TTL_WRITES = 500
_SCORE = f"bm25(memories_fts, {COLUMN_WEIGHTS[0]}, {COLUMN_WEIGHTS[1]})"
_WORD_PARTS = re.compile(r"[^\W_]+")
_JOIN = f"JOIN memories m ON m.rowid = (memories_fts.rowid & {ROWID_MASK})"


def matching(bounds: Sequence[int]) -> str:
    """The WHERE clause of an FTS match (parameter: the query), inside ``bounds`` when given (two more)."""
    return "memories_fts MATCH ?" + (" AND memories_fts.rowid BETWEEN ? AND ?" if bounds else "")


def phrase(term: str) -> str:
    """``term`` as an FTS5 phrase (quoted, so operators and punctuation are literal)."""
    return '"' + term.replace('"', '""') + '"'


def countable(term: str) -> str:
    """An FTS5 query whose matches bound ``term``'s: its phrase for one word, its longest word for several
    ("john's" is ``"john"``). Counted alone, a phrase of several tokens walks both tokens' doclists to
    their ends, and within a rowid range one that is absent scans on past the range's end: 35-70 ms each
    in a million-memory store; its words together still walk the short one's ("s": 57 ms there, against
    20 ms for "john")."""
    parts = _WORD_PARTS.findall(term)
    return phrase(term) if term.isalnum() or not parts else phrase(max(parts, key=len))


def any_of(terms: Sequence[str]) -> str:
    """An FTS5 query matching rows that hold any of ``terms``."""
    return " OR ".join(phrase(term) for term in terms)


class TermCounts:
    """How many FTS rows (in a rowid range) hold each word (a term of several words: rows holding its longest word,
    ``countable``), cached: they only choose which rows are scored, so slightly stale or high counts cost
    speed, never correctness. In a store of one user and at least ``ESTIMATE_FROM_ROWS`` rows a word's
    store-wide count is estimated from its newest ``SAMPLE_ROWS`` rows (a common word's doclist walk is
    20 ms in a million-memory store, 2.7 ms in its newest tenth); a word found fewer than ``MIN_SAMPLED``
    times there is counted in full, so a word held by any row never counts 0. An estimate can put a word
    near half the rows on the wrong side of ``weighing``'s line, where its IDF is close to 0 either way."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, tuple[int, ...]], int] = {}
        self._data_version = -1
        self._writes = 0
        self._rows: int | None = None
        self._sample: tuple[list[int], float] | None = None

    def written(self) -> None:
        """Note one local write (the cache is dropped every ``COUNTS_TTL_WRITES``)."""
        self._writes += 1
        if self._writes >= COUNTS_TTL_WRITES:
            self._clear()
            self._writes = 0

    def _clear(self) -> None:
        self._counts.clear()
        self._rows = None
        self._sample = None

    def _fresh(self, connection: sqlite3.Connection) -> None:
        """Drop the cache when another connection has written since (or it grew too large)."""
        version = int(connection.execute("PRAGMA data_version").fetchone()[0])
        if version != self._data_version or len(self._counts) > 100_000:
            self._clear()
            self._data_version = version

    def get(self, connection: sqlite3.Connection, terms: Sequence[str], bounds: Sequence[int]) -> dict[str, int]:
        """``{term: rows holding it}`` within ``bounds`` (an FTS rowid range, or empty for all)."""
        self._fresh(connection)
        sample = None if bounds else self._newest_rows(connection)
        found = {}
        for term in terms:
            key = (term, tuple(bounds))
            if key not in self._counts:
                self._counts[key] = self._count(connection, countable(term), bounds, sample)
            found[term] = self._counts[key]
        return found

    @staticmethod
    def _count(connection: sqlite3.Connection, query: str, bounds: Sequence[int],
               sample: tuple[list[int], float] | None) -> int:
        if sample is not None:
            sampled = int(connection.execute(f"SELECT count(*) FROM memories_fts WHERE {matching(sample[0])}",
                                             [query, *sample[0]]).fetchone()[0])
            if sampled >= MIN_SAMPLED:
                return round(sampled * sample[1])
        return int(connection.execute(f"SELECT count(*) FROM memories_fts WHERE {matching(bounds)}",
                                      [query, *bounds]).fetchone()[0])

    def _newest_rows(self, connection: sqlite3.Connection) -> tuple[list[int], float] | None:
        """The FTS rowid range of the newest ``SAMPLE_ROWS`` memories and the store's rows per row in it, in a
        store of one user (all its FTS rows in one bucket) of at least ``ESTIMATE_FROM_ROWS`` rows."""
        if self.store_rows(connection) < ESTIMATE_FROM_ROWS:
            return None
        if self._sample is None:
            self._sample = ([], 0.0)
            user = only_user(connection)
            if user is not None:
                first = int(connection.execute("SELECT max(rowid) FROM memories").fetchone()[0]) - SAMPLE_ROWS + 1
                newest = connection.execute("SELECT count(*) FROM memories WHERE rowid >= ?", [first]).fetchone()[0]
                self._sample = ([fts_rowid(first, user), rowid_range(user)[1]],
                                self.store_rows(connection) / max(1, int(newest)))
        return self._sample if self._sample[0] else None

    def weighing(self, connection: sqlite3.Connection, terms: Sequence[str]) -> list[str]:
        """``terms`` less those in half the store's rows or more: FTS5 clamps their IDF to 1e-6, so they add
        nothing to a BM25 score, yet ``bm25()`` walks each one's whole doclist to count it (all of ``terms``
        when every one is that common, or in a store of fewer than ``WEIGHING_FROM_ROWS`` rows, where those
        walks are short and the near-ties among rows holding only such words keep FTS5's order). Terms of
        several words ("john's") always weigh: only an upper bound of their count is cheap (``countable``)."""
        rows = self.store_rows(connection)
        if rows < WEIGHING_FROM_ROWS:
            return list(terms)
        store_wide = self.get(connection, [term for term in terms if term.isalnum()], [])
        weighing = [term for term in terms if 2 * store_wide.get(term, 0) < rows]
        return weighing or list(terms)

    def store_rows(self, connection: sqlite3.Connection) -> int:
        """Memories in the store (cached like the word counts)."""
        self._fresh(connection)
        if self._rows is None:
            self._rows = int(connection.execute("SELECT count(*) FROM memories").fetchone()[0])
        return self._rows


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
    if counts is None:
        return _exact_rows(connection, any_of(terms), where, params, bounds, limit)
    weighing = counts.weighing(connection, terms)
    found = counts.get(connection, weighing, bounds)
    best: list[tuple[str, float]] = []
    if sum(found.values()) > SCORE_ALL_UP_TO:
        best = _rarest_rows(connection, weighing, found, where, params, bounds, limit)
    if len(best) < limit:
        best = _exact_rows(connection, any_of(weighing), where, params, bounds, limit)
    if len(best) < limit and len(weighing) < len(terms):
        best += _weightless_rows(connection, [term for term in terms if term not in weighing], where, params,
                                 bounds, limit - len(best), {memory_id for memory_id, _ in best})
    return best


def _weightless_rows(connection: sqlite3.Connection, terms: Sequence[str], where: str, params: Sequence[object],
                     bounds: Sequence[int], limit: int, taken: set[str]) -> list[tuple[str, float]]:
    """Up to ``limit`` more memories holding words FTS5 gives no weight (``TermCounts.weighing``), newest
    first, with score 0 (FTS5's is 1e-6 or less), without ``bm25()``."""
    rowids = connection.execute(f"SELECT rowid FROM memories_fts WHERE {matching(bounds)} ORDER BY rowid DESC "
                                "LIMIT ?", [any_of(terms), *bounds, limit + len(taken)]).fetchall()
    found = passing(connection, [(rowid, -0.0) for rowid, in rowids], where, params, limit + len(taken))
    return [(memory_id, score) for memory_id, score in found if memory_id not in taken][:limit]


def _exact_rows(connection: sqlite3.Connection, query: str, where: str, params: Sequence[object],
                bounds: Sequence[int], limit: int) -> list[tuple[str, float]]:
    """The best ``limit`` rows by BM25: the FTS index's best ``POOL_FACTOR * limit`` first, filtered by
    ``where`` (no memory row is read for the others); when too few pass, every match is filtered."""
    pool = POOL_FACTOR * limit
    top = connection.execute(f"SELECT rowid, {_SCORE} AS rank FROM memories_fts WHERE {matching(bounds)} "
                             "ORDER BY rank LIMIT ?", [query, *bounds, pool]).fetchall()
    found = passing(connection, top, where, params, limit)
    if len(found) >= limit or len(top) < pool:
        return found
    rows = connection.execute(
        f"SELECT m.id, {_SCORE} AS rank FROM memories_fts {_JOIN} WHERE {matching(bounds)} AND {where} "
        "ORDER BY rank LIMIT ?", [query, *bounds, *params, limit]).fetchall()
    return [(memory_id, -float(rank)) for memory_id, rank in rows]


def passing(connection: sqlite3.Connection, ranked: Sequence[tuple[int, float]], where: str,
             params: Sequence[object], limit: int) -> list[tuple[str, float]]:
    """``(memory id, score)`` of the first ``limit`` of ``ranked`` (FTS rowid, BM25 rank; best first) whose
    memory ``where`` selects, reading memory rows a growing slice at a time (only those slices). ``NOT
    INDEXED``: rows are looked up by rowid; SQLite would otherwise walk the scope's index (``user_id = ?``)
    when the list is long, reading every memory of a large scope."""
    found: list[tuple[str, float]] = []
    start, size = 0, limit + limit // 4 + 8
    while start < len(ranked) and len(found) < limit:
        part = ranked[start:start + size]
        kept: dict[int, str] = {}
        for first in range(0, len(part), 500):
            chunk = [rowid & ROWID_MASK for rowid, _ in part[first:first + 500]]
            kept.update(connection.execute(
                f"SELECT m.rowid, m.id FROM memories m NOT INDEXED WHERE m.rowid IN ({', '.join('?' for _ in chunk)}) "
                f"AND {where}", [*chunk, *params]).fetchall())
        found += [(kept[rowid & ROWID_MASK], -float(rank)) for rowid, rank in part if rowid & ROWID_MASK in kept]
        start, size = start + size, 4 * size
    return found[:limit]


def _rarest_rows(connection: sqlite3.Connection, terms: Sequence[str], found: dict[str, int], where: str,
                 params: Sequence[object], bounds: Sequence[int], limit: int) -> list[tuple[str, float]]:
    """The best ``limit`` of the rows holding the rarest of ``terms``, scored with all of them. The FTS
    index ranks alone; memory rows are read only for the best (``passing``). When those rows give fewer
    than ``limit`` (a term of several words counts high: "melanie's" in rows holding "melanie" and "s",
    the phrase in none), the next rarest word joins them, until every word found is in."""
    ordered = sorted((term for term in terms if found[term]), key=lambda term: found[term])
    best: list[tuple[str, float]] = []
    for size in range(len(rarest(terms, found, _budget(limit), limit)), len(ordered) + 1):
        best = _rows_holding(connection, ordered[:size], ordered[size:], found, where, params, bounds, limit)
        if len(best) >= limit:
            break
    return best


def _budget(limit: int) -> int:
    """Rows (summed over the words kept) of the rarest words scored for ``limit`` results."""
    return max(MATCH_BUDGET, 3 * limit)


def _rows_holding(connection: sqlite3.Connection, rare: Sequence[str], others: Sequence[str], found: dict[str, int],
                  where: str, params: Sequence[object], bounds: Sequence[int], limit: int) -> list[tuple[str, float]]:
    """The best ``limit`` of the rows holding one of ``rare`` (only the newest ``NEWEST_FROM`` budgets of
    them when they are many), scored with ``rare`` and ``others``: ``(rare) AND (others)`` scores those
    holding another word too, ``rare`` alone the others, of which only the newest ``ALONE_FROM`` budgets
    are scored (they hold only the rare words, so they rank high only when those are in them often)."""
    rare_rows = sum(found[term] for term in rare)
    bounds = _newest(connection, rare, bounds, rare_rows, NEWEST_FROM * _budget(limit))
    scores: dict[int, float] = {}
    if others:
        scores.update(connection.execute(f"SELECT rowid, {_SCORE} FROM memories_fts WHERE {matching(bounds)}",
                                         [f"({any_of(rare)}) AND ({any_of(others)})", *bounds]))
        bounds = _newest(connection, rare, bounds, rare_rows, ALONE_FROM * _budget(limit))
    for rowid, rank in connection.execute(f"SELECT rowid, {_SCORE} FROM memories_fts WHERE {matching(bounds)}",
                                          [any_of(rare), *bounds]):
        scores.setdefault(rowid, rank)
    scored = sorted(scores.items(), key=lambda row: (row[1], row[0]))
    return passing(connection, scored, where, params, limit)


def _newest(connection: sqlite3.Connection, rare: Sequence[str], bounds: Sequence[int], rare_rows: int,
            newest: int) -> Sequence[int]:
    """``bounds`` narrowed to the newest ``newest`` rows holding one of ``rare`` when ``rare_rows`` (their
    count, an upper bound) is more."""
    if rare_rows <= newest:
        return bounds
    first = connection.execute(f"SELECT min(rowid) FROM (SELECT rowid FROM memories_fts WHERE {matching(bounds)} "
                               "ORDER BY rowid DESC LIMIT ?)", [any_of(rare), *bounds, newest]).fetchone()[0]
    return [first or 0, bounds[1] if bounds else ROWID_MASK | (BUCKETS << ROWID_BITS)]


def register(connection: sqlite3.Connection) -> None:
    """Make ``engram_fts_rowid(rowid, user_id)`` available to this connection's statements."""
    connection.create_function(SQL_FUNCTION, 2, fts_rowid, deterministic=True)
