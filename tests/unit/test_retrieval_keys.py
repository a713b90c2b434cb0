"""Conversation context of turns: neighbours, context keys, neighbour vector mixing, the embedded text."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from engram.embed.base import Embedder, normalize_rows
from engram.models import CONVERSATION_GAP, MemoryItem, SourceRef
from engram.write.context import batch_vectors, context_of, neighbours
from engram.write.keys import embedding_text, turn_embeddings

WHEN = datetime(2024, 5, 1, tzinfo=UTC)


def turn(text: str, user: str = "u", name: str | None = None, when: datetime = WHEN) -> MemoryItem:
    return MemoryItem(memory=text, user_id=user, valid_from=when,
                      sources=[SourceRef(id=f"e-{text}", occurred_at=when, role="user", name=name)])


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


def test_neighbours_stay_inside_one_conversation_in_time() -> None:
    later = WHEN + CONVERSATION_GAP + timedelta(minutes=1)
    memories = [turn("one"), turn("two"), turn("three", when=later), turn("four", when=later)]
    assert neighbours(memories) == [[(1, 1)], [(0, 1)], [(3, 1)], [(2, 1)]]


def test_context_keys_hold_neighbour_text_in_order_but_not_the_returned_text() -> None:
    memories = [turn("What game were you playing?", name="Joanna"), turn("Street Fighter, and I won!", name="Nate"),
                turn("Congrats!", name="Joanna")]
    vectors = {m.id: np.eye(3, dtype=np.float32)[i] for i, m in enumerate(memories)}
    context = context_of(memories, 1, neighbours(memories)[1], vectors)
    assert context.keys.splitlines() == ["What game were you playing?", "Congrats!"]
    assert "Nate" not in context.keys  # names are matched by the ranker, not as keys


def test_mixing_adds_neighbours_with_decaying_weight() -> None:
    memories = [turn("one"), turn("two"), turn("three")]
    vectors = {m.id: np.eye(3, dtype=np.float32)[i] for i, m in enumerate(memories)}
    first = context_of(memories, 0, neighbours(memories)[0], vectors).vector
    expected = np.array([1.0, 0.5, 0.25]) / np.linalg.norm([1.0, 0.5, 0.25])
    np.testing.assert_allclose(first, expected, rtol=1e-6)
    alone = context_of(memories, 1, [], vectors).vector
    np.testing.assert_allclose(alone, [0, 1, 0])


def test_embedding_text_prefixes_the_speaker_once() -> None:
    assert embedding_text(turn("hello", name="Ana")) == "Ana: hello"
    assert embedding_text(turn("Ana: hello", name="Ana")) == "Ana: hello"
    assert embedding_text(turn("hello")) == "user: hello"  # the role when there is no name
    assert embedding_text(MemoryItem(memory="a fact", user_id="u")) == "a fact"


def test_batch_vectors_embed_speaker_text_and_mix_neighbours() -> None:
    memories = [turn("aaa", name="Bob"), turn("ccc")]
    vectors = batch_vectors(memories, turn_embeddings(memories, LetterEmbedder()))
    first = vectors[memories[0].id]
    assert first[1] > 0  # "Bob: aaa" has a b
    assert first[2] > 0  # and its neighbour's c
    assert np.isclose(np.linalg.norm(first), 1.0)
    assert batch_vectors([], turn_embeddings([], LetterEmbedder())) == {}
