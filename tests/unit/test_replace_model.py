"""The read model of read-time supersession (``engram.read.replace_model``): what it weighs, how it is stored,
and which of the shipped fits a store gets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engram.read.replace_model import ReadModel, read_model, word_grams

DEFAULT_EMBEDDER = "onnx:all-MiniLM-L6-v2-dynint8:384"


def test_word_grams_are_lower_cased_words_and_adjacent_pairs() -> None:
    assert word_grams("We MOVED to Lisbon!") == {"we", "moved", "to", "lisbon", "we_moved", "moved_to", "to_lisbon"}
    assert word_grams("") == set()


def test_the_probability_adds_cue_features_words_and_the_embedding() -> None:
    model = ReadModel({"change": 2.0}, -1.0, {"moved": 1.5, "moved_to": 0.5}, np.array([1.0, 0.0], dtype=np.float32),
                      "test:2")
    sigmoid = lambda linear: 1.0 / (1.0 + math.exp(-linear))  # noqa: E731
    assert model.probability({"change": 0.0}) == pytest.approx(sigmoid(-1.0))
    assert model.probability({"change": 1.0}, "We moved to Porto") == pytest.approx(sigmoid(-1.0 + 2.0 + 2.0))
    assert model.probability({}, "We moved to Porto", np.array([0.5, 3.0])) == pytest.approx(sigmoid(-1.0 + 2.0 + 0.5))
    assert model.probability({}, "still here") == pytest.approx(sigmoid(-1.0))


def test_a_model_survives_its_json_form() -> None:
    model = ReadModel({"change": 1.25}, 0.5, {"quit": -0.75}, np.array([0.25, -0.5], dtype=np.float32), "test:2")
    again = ReadModel.from_json(model.to_json())
    assert again.to_json() == model.to_json()
    features, text, vector = {"change": 1.0}, "I quit", np.array([1.0, 1.0])
    assert again.probability(features, text, vector) == pytest.approx(model.probability(features, text, vector))
    assert "vector" not in ReadModel({}, 0.0).to_json()


def test_a_store_gets_the_embedding_model_only_for_the_embedder_it_was_fitted_with() -> None:
    fitted = read_model(DEFAULT_EMBEDDER)
    other = read_model("hash:someone-elses:64")
    assert fitted is not None and other is not None
    assert fitted.vector is not None and fitted.embedder == DEFAULT_EMBEDDER and fitted.words
    assert other.vector is None and other.words, "another embedder still gets the cue features and the words"
