"""Where a memory's row sits in SQLite's FTS5 index: its rowid there carries a bucket of its user id in
the high bits (``fts_rowid``), so one user's memories occupy one rowid range of the index.

A search in a user's scope passes that range to FTS5 (``rowid BETWEEN``), which then walks only that
part of each term's doclist instead of every match in the store before the scope filter: the cost of a
small scope's lexical search no longer grows with the store (BM25 itself, and so the ranking, is
unchanged: its statistics stay store-wide). Different users can share a bucket (a hash), so the scope
filter still applies; memories without a user id are in bucket 0, and searches without one scan all."""

from __future__ import annotations

import sqlite3
import zlib

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


def register(connection: sqlite3.Connection) -> None:
    """Make ``engram_fts_rowid(rowid, user_id)`` available to this connection's statements."""
    connection.create_function(SQL_FUNCTION, 2, fts_rowid, deterministic=True)
