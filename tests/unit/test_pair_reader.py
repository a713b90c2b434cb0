"""The pair reader (``engram.read.pair_reader``): the MiniLM it adapts is the shipped embedder's, exactly; the
low-rank updates are added as documented; the shipped weights are the ones their manifest names and were fitted
on today's training data; and it reads a change that shares few words with the older turn."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from engram.bench.fit_pair_reader import unrelated_news_rows, weights_digest
from engram.bench.fit_read import ReadExample, training_data_sha256
from engram.embed.base import Embedder
from engram.embed.onnx_local import OnnxMiniLMEmbedder
from engram.read.pair_reader import (
    READER_WEIGHTS,
    PairReader,
    adapted_parameters,
    base_parameters,
    folded_minilm,
    pair_reader,
    reader_segments,
    shipped_manifest,
)

SHAPES = {"query": (384, 384), "key": (384, 384), "value": (384, 384), "attention_output": (384, 384),
          "intermediate": (384, 1536), "output": (1536, 384)}


def test_every_parameter_of_the_six_blocks_is_found_with_its_shape() -> None:
    base = base_parameters(folded_minilm())
    assert len(base) == 5 + 6 * 16
    for layer in range(6):
        for name, shape in SHAPES.items():
            assert base[f"layer.{layer}.{name}.weight"].shape == shape
            assert base[f"layer.{layer}.{name}.bias"].shape == (shape[1],)
    assert base["embeddings.word"].shape == (30522, 384) and base["embeddings.token_type"].shape == (2, 384)


def test_an_unadapted_reader_runs_the_shipped_embedder_exactly() -> None:
    """Mean-pooled and normalised, the reader's base states are the float embedder's vector of the same text: the
    canonical names were mapped to the right initializers (a query/key swap would change every vector)."""
    reader = PairReader.from_weights({"head.weight": np.zeros(384, dtype=np.float32), "head.bias": np.zeros(1)}, 2.0)
    text = "We finally moved to Lisbon last week"
    encoding = reader.tokenizer.encode(text)
    states = reader.session.run(None, {"input_ids": np.array([encoding.ids]),
                                       "attention_mask": np.array([encoding.attention_mask]),
                                       "token_type_ids": np.array([encoding.type_ids])})[0][0]
    pooled = states.mean(axis=0)
    expected = OnnxMiniLMEmbedder().embed([text])[0]
    assert np.abs(pooled / np.linalg.norm(pooled) - expected).max() < 1e-4


def test_a_low_rank_update_is_added_to_its_linear_weight_and_retuned_parameters_replace_the_base() -> None:
    base = {"layer.0.query.weight": np.ones((3, 2), dtype=np.float32), "layer.0.query.bias": np.zeros(2),
            "layer.0.key.weight": np.ones((3, 2), dtype=np.float32)}
    tuned = {"layer.0.query.lora_a": np.array([[1.0], [0.0], [2.0]]), "layer.0.query.lora_b": np.array([[0.5, -1.0]]),
             "layer.0.query.bias": np.array([0.25, 0.75]), "head.weight": np.ones(2), "head.bias": np.zeros(1)}
    adapted = adapted_parameters(base, tuned, scale=2.0)
    assert set(adapted) == {"layer.0.query.weight", "layer.0.query.bias"}, "the head and untouched layers stay out"
    np.testing.assert_allclose(adapted["layer.0.query.weight"], [[2.0, -1.0], [1.0, 1.0], [3.0, -3.0]])
    np.testing.assert_allclose(adapted["layer.0.query.bias"], [0.25, 0.75])


def test_the_shipped_weights_are_the_manifests_and_were_fitted_on_todays_training_data() -> None:
    from importlib.resources import files

    manifest = shipped_manifest()
    assert manifest is not None, "engram/data/models/pair_reader.json is missing: run engram bench fit-pair-reader"
    with (files("engram") / "data" / "models" / READER_WEIGHTS).open("rb") as handle, np.load(handle) as weights:
        assert weights_digest({name: weights[name] for name in weights.files}) == manifest["weights_sha256"]
    assert manifest["data_sha256"] == training_data_sha256(), (
        "the training pairs or seen update sets changed since the reader was fitted: run engram bench fit-pair-reader")
    assert manifest["held_out"] == [], "the shipped reader is fitted on every source"


@pytest.mark.parametrize(("question", "older", "newer", "replaced"), [
    ("Where do I work these days?", "I work for Siemens in Munich.",
     "Last day at Siemens today. On Monday I start at BMW.", True),
    ("What pets do I have?", "I have a golden retriever called Max.", "I also adopted a cat last week!", False),
])
def test_the_shipped_reader_reads_the_two_turns_together(question: str, older: str, newer: str,
                                                         replaced: bool) -> None:
    reader = pair_reader()
    assert reader is not None
    probability = reader.probabilities([reader_segments(question, "present", older, newer)])[0]
    assert (probability >= 0.5) == replaced


def test_unrelated_news_is_drawn_from_other_kinds_of_fact_on_the_windows_topic(embedder: Embedder) -> None:
    """The counter-examples pair a present question's older turn with another scenario's newer turn about another
    kind of fact that a window could pair with it (label 0), the same on every run."""
    def example(scenario: str, kind: str, older: str, newer: str, tense: str = "present") -> ReadExample:
        return ReadExample(scenario, {}, True, newer, np.zeros(384), "set", "Where do I live?", tense, older, kind)

    examples = [example("move", "residence", "I live in a flat in Lisbon.", "We moved to Porto last month."),
                example("visit", "plan", "My sister is visiting Lisbon in April.", "My sister cancelled her trip."),
                example("car", "car", "I drive an old Fiat.", "Sold the Fiat, I cycle now."),
                example("past", "residence", "I lived in Lisbon.", "Now in Porto.", tense="before")]
    rows = unrelated_news_rows(examples, embedder)
    assert rows == unrelated_news_rows(examples, embedder)
    assert rows and all(row["label"] == 0.0 and row["scenario"].endswith("~unrelated") for row in rows)
    by_scenario = {row["scenario"].removesuffix("~unrelated"): row["second"] for row in rows}
    assert "past" not in by_scenario, "only questions about the present get counter-examples"
    assert by_scenario.get("move") not in {"We moved to Porto last month.", "Now in Porto."}, "never the same kind"


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="fitting needs torch, which CI does not install")
def test_what_torch_trains_is_what_onnxruntime_runs() -> None:
    from engram.bench.fit_pair_reader import tokenised
    from engram.bench.pair_reader_torch import Settings, reader_logits, train_reader

    rows = [{"first": reader_segments("Where do I live now?", "present", "I live in Berlin.", "")[0],
             "second": "We moved to Lisbon last week.", "label": 1.0, "source": "a", "scenario": "moved"},
            {"first": reader_segments("What pets do I have?", "present", "I have a dog.", "")[0],
             "second": "I also adopted a cat, she is tiny.", "label": 0.0, "source": "a", "scenario": "cat"}] * 4
    examples = tokenised(rows)
    model = train_reader(base_parameters(folded_minilm()), examples, Settings(epochs=1, batch_size=4))
    reader = PairReader.from_weights(model.tuned(), Settings().scale)
    np.testing.assert_allclose(reader.logits([(row["first"], row["second"]) for row in rows[:2]]),
                               reader_logits(model, examples[:2]), atol=1e-4)


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed here")
def test_fitting_without_torch_says_how_to_install_it(embedder: Embedder) -> None:
    from engram.bench.fit_pair_reader import fit_pair_reader
    from engram.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="needs torch") as raised:
        fit_pair_reader(embedder)
    assert raised.value.field == "torch"
