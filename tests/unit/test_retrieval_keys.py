"""Offline key expansion: context keys, neighbour vector mixing, the text that is embedded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from engram.embed.base import Embedder, normalize_rows
from engram.models import Episode, MemoryItem, SourceRef
from engram.write.keys import (
    embedding_text,
    mix_neighbour_vectors,
    mixed_vectors,
    neighbours,
    turn_embeddings,
    with_context_keys,
)
from engram.write.verbatim import verbatim_memories

WHEN = datetime(2024, 5, 1, tzinfo=UTC)


def turn(text: str, user: str = "u", name: str | None = None) -> MemoryItem:
    return MemoryItem(memory=text, user_id=user, index_keys=name or "",
                      sources=[SourceRef(id=f"e-{text}", occurred_at=WHEN, role="user", name=name)])


class LetterEmbedder(Embedder):
    """A real (if tiny) embedder: counts of the letters a, b, c."""

    name = "letters"
    dim = 3

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return normalize_rows(np.array([[t.count("a"), t.count("b"), t.count("c")] for t in texts], dtype=float))


def test_neighbours_stay_in_scope_and_within_width() -> None:
    memories = [turn("one"), turn("two"), turn("three", user="other"), turn("four"), turn("five")]
    assert neighbours(memories, 1) == [[(1, 1)], [(0, 1)], [], [(4, 1)], [(3, 1)]]
    assert neighbours(memories, 3)[1] == [(0, 1), (3, 2), (4, 3)]


def test_context_keys_hold_neighbour_text_in_order_but_not_the_returned_text() -> None:
    memories = with_context_keys([turn("What game were you playing?", name="Joanna"),
                                  turn("Street Fighter, and I won!", name="Nate"), turn("Congrats!", name="Joanna")])
    middle = memories[1]
    assert middle.memory == "Street Fighter, and I won!"
    assert middle.index_keys.splitlines() == ["Nate", "What game were you playing?", "Congrats!"]
    assert middle.sources[0].id == "e-Street Fighter, and I won!"


def test_verbatim_memories_get_context_keys() -> None:
    episodes = [Episode(user_id="u", name=name, content=text, occurred_at=WHEN)
                for name, text in (("Ana", "I adopted a cat"), ("Bo", "What is its name?"), ("Ana", "Miso"))]
    memories = verbatim_memories(episodes)
    assert [m.memory for m in memories] == ["I adopted a cat", "What is its name?", "Miso"]
    assert memories[2].index_keys.splitlines() == ["I adopted a cat", "What is its name?"]
    assert "Ana" not in memories[0].index_keys  # names are matched by the ranker, not as keys
    assert [m.source_ids for m in memories] == [[e.id] for e in episodes]


def test_embedding_text_prefixes_the_speaker_once() -> None:
    assert embedding_text(turn("hello", name="Ana")) == "Ana: hello"
    assert embedding_text(turn("Ana: hello", name="Ana")) == "Ana: hello"
    assert embedding_text(turn("hello")) == "user: hello"  # the role when there is no name
    assert embedding_text(MemoryItem(memory="a fact", user_id="u")) == "a fact"


def test_mixing_adds_neighbours_with_decaying_weight() -> None:
    vectors = np.eye(3, dtype=np.float32)
    mixed = mix_neighbour_vectors(vectors, [[(1, 1), (2, 2)], [], [(1, 1)]], weight=0.5)
    expected_first = np.array([1.0, 0.5, 0.25]) / np.linalg.norm([1.0, 0.5, 0.25])
    np.testing.assert_allclose(mixed[0], expected_first, rtol=1e-6)
    np.testing.assert_allclose(mixed[1], [0, 1, 0])
    np.testing.assert_allclose(np.linalg.norm(mixed, axis=1), 1.0, rtol=1e-6)


def test_stored_vectors_embed_speaker_text_and_mix_neighbours() -> None:
    memories = [turn("aaa", name="Bob"), turn("ccc")]
    vectors = mixed_vectors(memories, turn_embeddings(memories, LetterEmbedder()))
    assert set(vectors) == {m.id for m in memories}
    first = vectors[memories[0].id]
    assert first[1] > 0  # "Bob: aaa" has a b
    assert first[2] > 0  # and its neighbour's c
    assert np.isclose(np.linalg.norm(first), 1.0)
    assert mixed_vectors([], turn_embeddings([], LetterEmbedder())) == {}

