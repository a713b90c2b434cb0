"""The hand-written training pairs for the read-time supersession model are well formed."""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources
from typing import Any

import pytest

REQUIRED = ("id", "kind", "speaker", "older", "older_date", "newer", "newer_date", "question", "answer")
OPTIONAL = ("past_question",)
LAST_DAY = dt.date(2026, 6, 1)


@pytest.fixture(scope="module")
def pairs() -> list[dict[str, Any]]:
    text = resources.files("engram").joinpath("data/update_pairs_train.json").read_text(encoding="utf-8")
    document = json.loads(text)
    assert document["name"] == "update-pairs-train"
    assert document["version"] == 1
    assert "w17" in document["note"]
    return list(document["pairs"])


def test_there_are_enough_pairs_with_unique_ids(pairs: list[dict[str, Any]]) -> None:
    assert len(pairs) >= 350
    ids = [pair["id"] for pair in pairs]
    assert len(set(ids)) == len(ids)


def test_every_pair_has_its_fields_as_non_empty_text(pairs: list[dict[str, Any]]) -> None:
    for pair in pairs:
        assert set(pair) - set(OPTIONAL) == set(REQUIRED), pair["id"]
        for field in (*REQUIRED, *OPTIONAL):
            if field in pair:
                assert isinstance(pair[field], str) and pair[field].strip(), (pair["id"], field)


def test_answers_are_newer_or_older_and_past_questions_only_follow_a_replacement(
        pairs: list[dict[str, Any]]) -> None:
    for pair in pairs:
        assert pair["answer"] in {"newer", "older"}, pair["id"]
        if "past_question" in pair:
            assert pair["answer"] == "newer", pair["id"]


def test_the_newer_turn_is_at_least_a_week_after_the_older_and_before_june_2026(
        pairs: list[dict[str, Any]]) -> None:
    for pair in pairs:
        older = dt.date.fromisoformat(pair["older_date"])
        newer = dt.date.fromisoformat(pair["newer_date"])
        assert newer - older >= dt.timedelta(days=7), pair["id"]
        assert newer < LAST_DAY, pair["id"]


def test_no_newer_turn_is_repeated(pairs: list[dict[str, Any]]) -> None:
    newer_turns = [pair["newer"].casefold() for pair in pairs]
    assert len(set(newer_turns)) == len(newer_turns)


def test_both_answers_are_well_represented(pairs: list[dict[str, Any]]) -> None:
    for answer in ("newer", "older"):
        share = sum(pair["answer"] == answer for pair in pairs) / len(pairs)
        assert share >= 0.35, (answer, share)
