"""``Store.check_integrity``: a whole store is ok; a memory that lost its vector, or a user's episode that
no memory cites, is counted (for the users asked about) and makes it not ok, on both backends."""

from __future__ import annotations

import sqlite3

from engram import Memory

TEXTS = ["I moved to Lisbon in May.", "My sister Ana is a nurse.", "We adopted a dog called Rex."]


def _execute(store_url: str, statement: str) -> None:
    """Damage the store behind Engram's back (what a crash or a careless script could leave)."""
    if store_url.startswith("sqlite:///"):
        connection = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            connection.execute(statement)
        finally:
            connection.close()
        return
    import psycopg

    with psycopg.connect(store_url, autocommit=True) as connection:
        connection.execute(statement)


def test_integrity_counts_orphans_for_the_users_asked_about(memory: Memory, store_url: str) -> None:
    for text in TEXTS:
        memory.add(text, user_id="team_a-ana", infer=False)
    memory.add("I like green tea.", user_id="teamxa-bo", infer=False)
    assert memory.store.check_integrity()["ok"]
    assert memory.store.check_integrity("team_a-")["ok"]
    lisbon = next(item["id"] for item in memory.get_all(user_id="team_a-ana")["results"] if "Lisbon" in item["memory"])
    _execute(store_url, f"DELETE FROM vectors WHERE memory_id = '{lisbon}'")
    _execute(store_url, "DELETE FROM memory_sources WHERE memory_id IN "
                        "(SELECT id FROM memories WHERE user_id = 'teamxa-bo')")
    whole = memory.store.check_integrity()
    assert not whole["ok"]
    assert whole["orphans"]["memories_without_vectors"] == 1
    assert whole["orphans"]["episodes_without_memories"] == 1
    assert whole["orphans"]["memories_without_sources"] == 1
    team = memory.store.check_integrity("team_a-")  # '_' is a plain character here, not a LIKE wildcard
    assert team["orphans"]["memories_without_vectors"] == 1
    assert team["orphans"]["episodes_without_memories"] == 0
    assert team["orphans"]["memories_without_sources"] == 0
