"""Live memory: one add per turn indexes a conversation exactly as one add per session does, and a
turn's words leave its neighbours' keys and vectors when it is deleted, edited or quarantined."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engram import Memory
from engram.embed.base import Embedder

WHEN = "2024-05-01T10:00:00Z"
CANARY = "ZEBRACANARY9071"
TURNS = [
    ("Ana", "Did you end up going to the climbing gym?"),
    ("Bo", "Yes, on Tuesday, with my cousin Ray."),
    ("Ana", "How was it?"),
    ("Bo", f"Great. My locker code is {CANARY}, remind me if I forget."),
    ("Ana", "Will do. What did you climb?"),
    ("Bo", "Mostly the orange routes on the overhang."),
    ("Ana", "Impressive! Same time next week?"),
    ("Bo", "Sure, Tuesday works."),
]


def messages(turns: list[tuple[str, str]] = TURNS) -> list[dict[str, str]]:
    return [{"role": "user" if name == "Bo" else "assistant", "name": name, "content": text} for name, text in turns]


def indexed(memory: Memory, user: str) -> dict[str, tuple[str, np.ndarray]]:
    """Each turn's context keys and stored vector, by text."""
    items = memory.get_all(user_id=user, limit=1000)["results"]
    vectors = memory.store.get_vectors([item["id"] for item in items])
    return {item["memory"]: (item["context_keys"], vectors[item["id"]]) for item in items}


def test_one_add_per_turn_indexes_like_one_add_per_session(memory: Memory) -> None:
    memory.add(messages(), user_id="batched", timestamp=WHEN)
    for message in messages():
        memory.add(message, user_id="streamed", timestamp=WHEN)
    batched, streamed = indexed(memory, "batched"), indexed(memory, "streamed")
    assert set(batched) == set(streamed)
    for text, (keys, vector) in batched.items():
        assert streamed[text][0] == keys, text
        np.testing.assert_allclose(streamed[text][1], vector, atol=1e-5)
    middle = batched[TURNS[3][1]][0].splitlines()
    assert middle == [text for _, text in TURNS[0:3] + TURNS[4:7]], "three turns each side, in order"


def test_a_later_session_is_another_conversation(memory: Memory) -> None:
    memory.add(messages(TURNS[:2]), user_id="u", timestamp="2024-05-01T10:00:00Z")
    memory.add(messages(TURNS[2:4]), user_id="u", timestamp="2024-05-03T10:00:00Z")
    keys = indexed(memory, "u")
    assert keys[TURNS[1][1]][0] == TURNS[0][1]
    assert keys[TURNS[2][1]][0] == TURNS[3][1]


def _canary_free(memory: Memory, user: str, folder: Path | None) -> None:
    for item in memory.get_all(user_id=user, limit=1000)["results"]:
        assert CANARY not in item["memory"] + item["index_keys"] + item["context_keys"]
    assert memory.search(CANARY, user_id=user)["results"] == [] or all(
        CANARY not in hit["memory"] for hit in memory.search(CANARY, user_id=user, explain=True)["results"])
    hits = memory.search(CANARY, user_id=user, explain=True)["results"]
    assert all(hit["explain"]["lexical"] == 0 for hit in hits), "no neighbour is found by the deleted words"
    assert CANARY not in json.dumps(list(memory.export()))
    if folder is not None:
        for path in folder.iterdir():
            assert CANARY.lower().encode() not in path.read_bytes().lower(), path.name


def _delete_canary(memory: Memory, user: str) -> None:
    target = next(item for item in memory.get_all(user_id=user, limit=1000)["results"] if CANARY in item["memory"])
    memory.delete(target["id"])


def test_deleting_a_batched_turn_removes_its_words_from_every_neighbour(tmp_path: Path, embedder: Embedder) -> None:
    with Memory(path=str(tmp_path / "e.db"), embedder=embedder) as memory:
        memory.add(messages(), user_id="u", timestamp=WHEN)
        assert CANARY in indexed(memory, "u")[TURNS[4][1]][0], "the neighbour is keyed by the canary first"
        _delete_canary(memory, "u")
        _canary_free(memory, "u", tmp_path)


def test_deleting_a_streamed_turn_leaves_what_never_having_it_would(tmp_path: Path, embedder: Embedder) -> None:
    with Memory(path=str(tmp_path / "e.db"), embedder=embedder) as memory:
        for message in messages():
            memory.add(message, user_id="u", timestamp=WHEN)
        memory.add(messages([turn for turn in TURNS if CANARY not in turn[1]]), user_id="never", timestamp=WHEN)
        _delete_canary(memory, "u")
        _canary_free(memory, "u", tmp_path)
        deleted, never = indexed(memory, "u"), indexed(memory, "never")
        for text, (keys, vector) in never.items():
            assert deleted[text][0] == keys
            np.testing.assert_allclose(deleted[text][1], vector, atol=1e-5)


def test_editing_a_turn_rekeys_its_neighbours(memory: Memory) -> None:
    memory.add(messages(), user_id="u", timestamp=WHEN)
    target = next(item for item in memory.get_all(user_id="u")["results"] if CANARY in item["memory"])
    memory.update(target["id"], "Great. I forgot my locker code though.")
    for item in memory.get_all(user_id="u")["results"]:
        assert CANARY not in item["context_keys"]
    assert "I forgot my locker code" in indexed(memory, "u")[TURNS[4][1]][0]
    assert memory.search("forgot locker code", user_id="u")["results"][0]["id"] == target["id"]
