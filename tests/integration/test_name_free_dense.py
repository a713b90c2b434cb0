"""Through ``Memory.search``: the ``name_free_dense`` feature is each memory's similarity to the question with
the names of the speakers it names left out ("Would Ana enjoy hiking?" -> "Would enjoy hiking?"), and the
``dense`` similarity itself when the question names no speaker."""

from __future__ import annotations

import numpy as np
import pytest

from engram import Memory

TURNS = [("Ana", "I spent the whole weekend hiking in the mountains."),
         ("Bo", "Ana, you should come to my pottery class."),
         ("Ana", "Bo, thanks for the ticket to the concert!")]


def features(memory: Memory, question: str) -> dict[str, dict[str, float]]:
    hits = memory.search(question, user_id="pair", explain=True)["results"]
    return {hit["id"]: hit["explain"] for hit in hits}


def test_name_free_similarity_leaves_the_named_speaker_out(memory: Memory) -> None:
    for name, text in TURNS:
        memory.add([{"role": "user", "name": name, "content": text}], user_id="pair", infer=False)
    named = features(memory, "Would Ana enjoy a long walk outdoors?")
    stripped = memory.embedder.embed_query("Would enjoy a long walk outdoors?")
    assert len(named) == len(TURNS)
    for memory_id, vector in memory.store.get_vectors(list(named)).items():
        assert named[memory_id]["name_free_dense"] == pytest.approx(float(np.dot(vector, stripped)), abs=1e-6)
    assert any(abs(entry["name_free_dense"] - entry["dense"]) > 1e-3 for entry in named.values())
    unnamed = features(memory, "Who enjoys a long walk outdoors?")
    assert all(entry["name_free_dense"] == entry["dense"] for entry in unnamed.values())
