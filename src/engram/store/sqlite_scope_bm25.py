"""BM25 over one user's memories, with that user's own statistics.

FTS5's ``bm25()`` takes a word's IDF from the whole store: before scoring it walks each query word's
doclist from end to end to count the rows holding it, whatever rowid range the query reads. In a store of
a million memories a search in a user's 100 memories spends nearly all its time in those walks, and the
cost grows with the store. Store-wide statistics are also a side channel between tenants: one user's
scores move when other users write words.

So when a search is in a user's scope and the user holds at most ``SMALL_SCOPE_ROWS`` FTS rows, its BM25
is computed here, with FTS5's formula (k1 1.2, b 0.75, column weights, IDF
``log((N - n + 0.5) / (n + 0.5))`` clamped to 1e-6) but ``N``, ``n`` and the average length taken over the
user's own FTS rows (its rowid range, ``engram.store.sqlite_fts``, less the rows of other users who share
its bucket):

- document lengths come from FTS5's ``docsize`` table (a varint of tokens per column);
- term frequencies from one ``highlight()`` statement over the matching rows of the range: each marked
  span (``highlight`` merges overlapping instances) counts once for every query phrase it matches, which
  a small in-memory FTS5 table with the same tokenizer decides (``stem_matches``);
- nothing walks a doclist outside the user's range, so the cost follows the scope, not the store.

Where the scope holds the whole store (one user), the scores equal ``bm25()``'s (a test checks it). In a
store shared by many users they follow the statistics the ranker was fitted with (one conversation per
store): LoCoMo's five dev conversations written into one store, a user each, recall@10 0.8227 with
store-wide statistics and 0.8312 with each user's own, as in five stores (docs/BENCHMARKS.md, Scale).
Users with more rows keep ``bm25()`` and its store-wide statistics, and so does a user who holds the
whole store (the same statistics, at less cost: ``highlight()`` re-reads every matching row)."""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Iterable, Sequence

from engram.store.sqlite_fts import COLUMN_WEIGHTS, ROWID_MASK, TOKENIZER, any_of, matching, only_user, phrase

#: Users with more FTS rows than this keep ``bm25()`` (``highlight()`` costs per matching row).
SMALL_SCOPE_ROWS = 2_000
#: FTS5's ``bm25()`` constants and the FTS columns (weighed by ``sqlite_fts.COLUMN_WEIGHTS``).
K1 = 1.2
B = 0.75
COLUMNS = ("text", "index_keys")
MIN_IDF = 1e-6
_OPEN, _CLOSE = "\x01", "\x02"
_SPAN = re.compile(f"{_OPEN}([^{_CLOSE}]*){_CLOSE}")
_STEMS = "engram_stems"


def varints(blob: bytes) -> list[int]:
    """The SQLite varints packed in ``blob`` (FTS5's ``docsize`` and averages records)."""
    values, at = [], 0
    while at < len(blob):
        value = 0
        for position in range(9):
            byte = blob[at]
            at += 1
            if position == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        values.append(value)
    return values


def sole_user(connection: sqlite3.Connection, user_id: str) -> bool:
    """True when every memory of the store is ``user_id``'s."""
    return only_user(connection) == user_id


def scope_lengths(connection: sqlite3.Connection, bounds: Sequence[int], user_id: str) -> dict[int, int] | None:
    """``{FTS rowid: tokens}`` of ``user_id``'s FTS rows within ``bounds``; None when there are more than
    ``SMALL_SCOPE_ROWS`` (counted first in the range alone, which costs little when the scope is large)."""
    in_range = connection.execute("SELECT count(*) FROM (SELECT 1 FROM memories_fts_docsize WHERE id BETWEEN ? AND ? "
                                  "LIMIT ?)", [*bounds, SMALL_SCOPE_ROWS + 1]).fetchone()[0]
    if in_range > SMALL_SCOPE_ROWS:
        return None
    rows = connection.execute(
        "SELECT d.id, d.sz FROM memories_fts_docsize d "
        f"JOIN memories m ON m.rowid = (d.id & {ROWID_MASK}) "
        "WHERE d.id BETWEEN ? AND ? AND m.user_id = ? LIMIT ?",
        [*bounds, user_id, SMALL_SCOPE_ROWS + 1]).fetchall()
    if len(rows) > SMALL_SCOPE_ROWS:
        return None
    return {rowid: sum(varints(size)) for rowid, size in rows}


def stem_matches(connection: sqlite3.Connection, spans: Iterable[str], terms: Sequence[str]) -> dict[str, list[int]]:
    """``{span: indexes of the terms whose phrase it holds}``, decided by FTS5's own tokenizer (porter,
    unicode61) in a temporary table of the spans."""
    distinct = sorted(set(spans))
    connection.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{_STEMS} USING fts5("
                       f"span, tokenize = '{TOKENIZER}')")
    try:
        connection.executemany(f"INSERT INTO temp.{_STEMS} (rowid, span) VALUES (?, ?)", enumerate(distinct))
        matched: dict[str, list[int]] = {span: [] for span in distinct}
        for index, term in enumerate(terms):
            for (rowid,) in connection.execute(f"SELECT rowid FROM temp.{_STEMS} WHERE {_STEMS} MATCH ?",
                                               [phrase(term)]):
                matched[distinct[rowid]].append(index)
        return matched
    finally:
        connection.execute(f"DELETE FROM temp.{_STEMS}")


def holders(connection: sqlite3.Connection, terms: Sequence[str], bounds: Sequence[int],
            lengths: dict[int, int]) -> list[tuple[set[int], set[int]]]:
    """The rows of ``lengths`` holding each of ``terms`` (one-word terms) in their text, and in their index
    keys (one match per word and column inside the user's range)."""
    def holding(query: str) -> set[int]:
        return {rowid for (rowid,) in connection.execute(
            f"SELECT rowid FROM memories_fts WHERE {matching(bounds)}",
            [query, *bounds]) if rowid in lengths}

    text, keys = COLUMNS
    return [(holding(f"{{{text}}} : {phrase(term)}"), holding(f"{{{keys}}} : {phrase(term)}")) for term in terms]


def term_frequencies(connection: sqlite3.Connection, terms: Sequence[str], bounds: Sequence[int],
                     lengths: dict[int, int]) -> dict[int, list[float]]:
    """``{rowid: [column-weighted frequency of each of terms]}`` of the rows of ``lengths`` holding any of
    them, from one ``highlight()`` statement."""
    if not terms:
        return {}
    marked = [(rowid, [_SPAN.findall(column or "") for column in columns]) for rowid, *columns in connection.execute(
        f"SELECT rowid, highlight(memories_fts, 0, '{_OPEN}', '{_CLOSE}'), "
        f"highlight(memories_fts, 1, '{_OPEN}', '{_CLOSE}') FROM memories_fts "
        f"WHERE {matching(bounds)}", [any_of(terms), *bounds])
        if rowid in lengths]
    matches = stem_matches(connection, (span for _, columns in marked for spans in columns for span in spans), terms)
    frequencies: dict[int, list[float]] = {}
    for rowid, columns in marked:
        weighted = frequencies[rowid] = [0.0] * len(terms)
        for weight, spans in zip(COLUMN_WEIGHTS, columns, strict=True):
            for span in spans:
                for index in matches[span]:
                    weighted[index] += weight
    return frequencies


def scope_bm25(connection: sqlite3.Connection, terms: Sequence[str], bounds: Sequence[int],
               lengths: dict[int, int]) -> list[tuple[int, float]]:
    """``(FTS rowid, BM25 rank)`` (negative, best first, like ``bm25()``) of the rows of ``lengths`` holding
    any of ``terms``, with the statistics of those rows alone.

    A one-word term in half the user's rows or more gets FTS5's clamped IDF (1e-6) and is not highlighted (a
    speaker's name can be in every row): each row holding it adds its 1e-6 share as if the word were there
    once in each column that holds it; that is the only difference from ``bm25()`` over the same rows
    (below 1e-5 in a score). Terms of several tokens ("caroline's") are always highlighted: matched alone in
    a range, an FTS5 phrase that is not there scans on past the range's end, through the whole store."""
    if not lengths or not terms:
        return []
    rows = len(lengths)
    words = [index for index, term in enumerate(terms) if term.isalnum()]
    columns = dict(zip(words, holders(connection, [terms[index] for index in words], bounds, lengths), strict=True))
    weightless = [index for index in words if 2 * len(columns[index][0] | columns[index][1]) >= rows]
    highlighted = [index for index in range(len(terms)) if index not in weightless]
    frequencies = term_frequencies(connection, [terms[index] for index in highlighted], bounds, lengths)
    holding = [sum(1 for found in frequencies.values() if found[position]) for position in range(len(highlighted))]
    idf = [max(math.log((rows - held + 0.5) / (held + 0.5)), 0.0) or MIN_IDF for held in holding]
    average = sum(lengths.values()) / rows
    ranked = []
    for rowid in set(frequencies).union(*(columns[index][0] | columns[index][1] for index in weightless)):
        norm = K1 * (1 - B + B * lengths[rowid] / average)
        found = [*zip(idf, frequencies.get(rowid, ()), strict=False),
                 *((MIN_IDF, COLUMN_WEIGHTS[0] * (rowid in columns[index][0])
                    + COLUMN_WEIGHTS[1] * (rowid in columns[index][1])) for index in weightless)]
        score = sum(weight * frequency * (K1 + 1) / (frequency + norm) for weight, frequency in found if frequency)
        ranked.append((rowid, -score))
    ranked.sort(key=lambda row: (row[1], row[0]))
    return ranked
