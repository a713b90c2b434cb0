"""Well-formedness of the second training set of update pairs (update_pairs_train2.json)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from importlib import resources
from typing import Any

import pytest

REQUIRED_FIELDS = (
    "id",
    "kind",
    "speaker",
    "older",
    "older_date",
    "newer",
    "newer_date",
    "question",
    "answer",
)
OPTIONAL_FIELDS = ("past_question",)
LAST_DATE = date(2026, 6, 1)


def _load() -> dict[str, Any]:
    text = resources.files("engram").joinpath("data/update_pairs_train2.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@pytest.fixture(scope="module")
def pairs() -> list[dict[str, Any]]:
    doc = _load()
    assert doc["name"] == "update-pairs-train2"
    assert doc["version"] == 1
    assert "not an evaluation set" in doc["note"]
    loaded: list[dict[str, Any]] = doc["pairs"]
    return loaded


def test_at_least_400_pairs_with_unique_sequential_ids(pairs: list[dict[str, Any]]) -> None:
    assert len(pairs) >= 400
    ids = [pair["id"] for pair in pairs]
    assert len(set(ids)) == len(ids)
    assert ids == [f"q-{n:04d}" for n in range(1, len(pairs) + 1)]


def test_every_pair_has_exactly_the_known_fields_non_empty(pairs: list[dict[str, Any]]) -> None:
    for pair in pairs:
        missing = [field for field in REQUIRED_FIELDS if not str(pair.get(field, "")).strip()]
        assert not missing, (pair["id"], missing)
        unknown = set(pair) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS)
        assert not unknown, (pair["id"], unknown)


def test_answers_are_newer_or_older_and_past_questions_only_on_newer(pairs: list[dict[str, Any]]) -> None:
    for pair in pairs:
        assert pair["answer"] in ("newer", "older"), pair["id"]
        if "past_question" in pair:
            assert pair["answer"] == "newer", pair["id"]
            assert pair["past_question"].strip(), pair["id"]


def test_dates_are_iso_ordered_a_week_apart_and_before_june_2026(pairs: list[dict[str, Any]]) -> None:
    for pair in pairs:
        older = date.fromisoformat(pair["older_date"])
        newer = date.fromisoformat(pair["newer_date"])
        assert newer - older >= timedelta(days=7), pair["id"]
        assert newer < LAST_DATE, pair["id"]


def test_both_classes_are_at_least_35_percent(pairs: list[dict[str, Any]]) -> None:
    counts = Counter(pair["answer"] for pair in pairs)
    for answer in ("newer", "older"):
        assert counts[answer] >= 0.35 * len(pairs), counts


def test_no_turn_or_question_is_repeated(pairs: list[dict[str, Any]]) -> None:
    for field in ("older", "newer"):
        texts = [pair[field].strip().lower() for pair in pairs]
        repeated = [text for text, count in Counter(texts).items() if count > 1]
        assert not repeated, (field, repeated)
    for pair in pairs:
        assert pair["older"].strip().lower() != pair["newer"].strip().lower(), pair["id"]
