"""Shipped fitted constants are reproducible: refitting on the committed data gives the shipped model,
and a recipe naming an unknown feature is an error, not a silent zero."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import pytest

from engram import Memory
from engram.bench.fit_read import PAIRS_FILES, TRAINING_SETS
from engram.bench.fit_updates import fit_updates
from engram.embed.base import Embedder
from engram.errors import ConfigurationError
from engram.read.replace_model import ReadModel, read_model
from engram.read.replaced import READ_THRESHOLD
from engram.write.supersede import CHANGE_MODEL, REPLACE_THRESHOLD


def test_refitting_the_change_model_reproduces_the_shipped_one(tmp_path: Path, embedder: Embedder) -> None:
    """The change model and both read models (``engram.bench.fit_read``); the one that reads the embedding is
    the one a store of this embedder gets."""
    result = fit_updates(embedder, tmp_path / "change_model.json")
    assert result["model"] == CHANGE_MODEL and result["threshold"] == REPLACE_THRESHOLD
    shipped = json.loads(files("engram").joinpath("data", "models", "change_model.json").read_text("utf-8"))
    for name in ("read_model", "read_vector_model"):
        assert result[name] == shipped[name], name
    assert result["read_threshold"] == READ_THRESHOLD and result["read_data_sha256"] == shipped["read_data_sha256"]
    assert read_model(embedder.signature).to_json() == ReadModel.from_json(shipped["read_vector_model"]).to_json()
    written = json.loads((tmp_path / "change_model.json").read_text())
    assert written["data_sha256"] and written["report"]["holdout"]["pairs"] > 0
    report = written["read_report"]
    assert set(report["read_vector_model"]["leave_one_source_out"]) == {*PAIRS_FILES, *TRAINING_SETS}
    assert report["read_vector_model"]["pooled_accuracy"] > 0.5


def test_a_recipe_with_an_unknown_feature_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="lexcal"):
        Memory.from_config({"path": "unused.db", "retrieval": {"feature_weights": {"lexcal": 1.0}}})
