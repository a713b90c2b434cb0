"""Shipped fitted constants are reproducible: refitting on the committed data gives the shipped model,
and a recipe naming an unknown feature is an error, not a silent zero."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engram import Memory
from engram.bench.fit_updates import fit_updates
from engram.embed.base import Embedder
from engram.errors import ConfigurationError
from engram.read.replaced import READ_THRESHOLD, read_model
from engram.write.supersede import CHANGE_MODEL, REPLACE_THRESHOLD


def test_refitting_the_change_model_reproduces_the_shipped_one(tmp_path: Path, embedder: Embedder) -> None:
    result = fit_updates(embedder, tmp_path / "change_model.json")
    assert result["model"] == CHANGE_MODEL and result["threshold"] == REPLACE_THRESHOLD
    assert result["read_model"] == read_model() and result["read_threshold"] == READ_THRESHOLD
    written = json.loads((tmp_path / "change_model.json").read_text())
    assert written["data_sha256"] and written["report"]["holdout"]["pairs"] > 0
    assert written["read_report"]["leave_one_kind_out"]["accuracy"] > 0.5


def test_a_recipe_with_an_unknown_feature_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="lexcal"):
        Memory.from_config({"path": "unused.db", "retrieval": {"feature_weights": {"lexcal": 1.0}}})
