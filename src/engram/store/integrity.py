"""``Store.check_integrity``'s queries: rows that lost the rows they belong with (a memory without its
vector, sources or history; an episode no memory cites; vectors, sources and FTS rows of memories that are
gone). Counts for memories and episodes can be narrowed to user ids with a prefix (``{p}``: a LIKE
pattern); dangling rows are counted store-wide."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engram.store.sqlite_fts import ROWID_MASK

ORPHAN_QUERIES = {
    "memories_without_vectors": "SELECT count(*) FROM memories m WHERE m.user_id LIKE {p} "
                                "AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.memory_id = m.id)",
    "memories_without_sources": "SELECT count(*) FROM memories m WHERE m.user_id LIKE {p} "
                                "AND NOT EXISTS (SELECT 1 FROM memory_sources s WHERE s.memory_id = m.id)",
    "memories_without_history": "SELECT count(*) FROM memories m WHERE m.user_id LIKE {p} "
                                "AND NOT EXISTS (SELECT 1 FROM history h WHERE h.memory_id = m.id)",
    "episodes_without_memories": "SELECT count(*) FROM episodes e WHERE e.user_id LIKE {p} "
                                 "AND NOT EXISTS (SELECT 1 FROM memory_sources s WHERE s.episode_id = e.id)",
    "vectors_without_memories": "SELECT count(*) FROM vectors v "
                                "WHERE NOT EXISTS (SELECT 1 FROM memories m WHERE m.id = v.memory_id)",
    "sources_without_memories": "SELECT count(*) FROM memory_sources s "
                                "WHERE NOT EXISTS (SELECT 1 FROM memories m WHERE m.id = s.memory_id)",
    "sources_without_episodes": "SELECT count(*) FROM memory_sources s "
                                "WHERE NOT EXISTS (SELECT 1 FROM episodes e WHERE e.id = s.episode_id)",
}
#: SQLite's full-text rows (their rowid carries the user bucket above ``ROWID_MASK``).
SQLITE_FTS_QUERIES = {
    "fts_rows_without_memories": "SELECT count(*) FROM memories_fts f WHERE NOT EXISTS "
                                 f"(SELECT 1 FROM memories m WHERE m.rowid = (f.rowid & {ROWID_MASK}))",
    "memories_without_fts": "SELECT count(*) FROM memories m "
                            f"WHERE m.rowid NOT IN (SELECT f.rowid & {ROWID_MASK} FROM memories_fts f)",
}


def count_orphans(execute: Callable[..., Any], mark: str, user_prefix: str,
                  queries: dict[str, str]) -> dict[str, int]:
    """Run each counting query through ``execute`` (``mark``: the driver's parameter placeholder)."""
    like = user_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    pattern = f"{mark} ESCAPE '\\'"
    counts = {}
    for name, query in queries.items():
        needs_user = "{p}" in query
        counts[name] = int(execute(query.format(p=pattern), (like,) if needs_user else ()).fetchone()[0])
    return counts
