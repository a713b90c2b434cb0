"""The hand-written training pairs of the read-time supersession model (``engram.bench.fit_read.PAIRS_FILES``)
are well formed."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pytest

from engram.bench.fit_read import PAIRS_FILES

REQUIRED = ("id", "kind", "speaker", "older", "older_date", "newer", "newer_date", "question", "answer")
OPTIONAL = ("past_question",)
LAST_DAY = dt.date(2026, 6, 1)


@dataclass(frozen=True)
class Expected:
    """What each file's writer was asked for: its name, a phrase of its note, its least size, its id prefix,
    and the turns that no two pairs share."""

    name: str
    note: str
    least: int
    prefix: str
    unique_turns: tuple[str, ...]


EXPECTED = {
    "update_pairs_train.json": Expected("update-pairs-train", "w17", 350, "p", ("newer",)),
    "update_pairs_train2.json": Expected("update-pairs-train2", "not an evaluation set", 400, "q", ("older", "newer")),
}


def test_every_training_file_is_checked() -> None:
    assert set(EXPECTED) == set(PAIRS_FILES)


@pytest.fixture(scope="module", params=PAIRS_FILES)
def training(request: pytest.FixtureRequest) -> tuple[Expected, list[dict[str, Any]]]:
    expected = EXPECTED[request.param]
    document = json.loads(resources.files("engram").joinpath("data", request.param).read_text(encoding="utf-8"))
    assert document["name"] == expected.name
    assert document["version"] == 1
    assert expected.note in document["note"]
    return expected, list(document["pairs"])


def test_there_are_enough_pairs_with_unique_sequential_ids(training: tuple[Expected, list[dict[str, Any]]]) -> None:
    expected, pairs = training
    assert len(pairs) >= expected.least
    ids = [pair["id"] for pair in pairs]
    assert ids == [f"{expected.prefix}-{number:04d}" for number in range(1, len(pairs) + 1)]


def test_every_pair_has_its_fields_as_non_empty_text(training: tuple[Expected, list[dict[str, Any]]]) -> None:
    for pair in training[1]:
        assert set(pair) - set(OPTIONAL) == set(REQUIRED), pair["id"]
        for field in (*REQUIRED, *OPTIONAL):
            if field in pair:
                assert isinstance(pair[field], str) and pair[field].strip(), (pair["id"], field)


def test_answers_are_newer_or_older_and_past_questions_only_follow_a_replacement(
        training: tuple[Expected, list[dict[str, Any]]]) -> None:
    for pair in training[1]:
        assert pair["answer"] in {"newer", "older"}, pair["id"]
        if "past_question" in pair:
            assert pair["answer"] == "newer", pair["id"]


def test_the_newer_turn_is_at_least_a_week_after_the_older_and_before_june_2026(
        training: tuple[Expected, list[dict[str, Any]]]) -> None:
    for pair in training[1]:
        older = dt.date.fromisoformat(pair["older_date"])
        newer = dt.date.fromisoformat(pair["newer_date"])
        assert newer - older >= dt.timedelta(days=7), pair["id"]
        assert newer < LAST_DAY, pair["id"]


def test_no_turn_is_repeated_where_the_writer_was_asked_for_new_ones(
        training: tuple[Expected, list[dict[str, Any]]]) -> None:
    expected, pairs = training
    for field in expected.unique_turns:
        repeated = [text for text, count in Counter(pair[field].strip().casefold() for pair in pairs).items()
                    if count > 1]
        assert not repeated, (field, repeated)
    for pair in pairs:
        assert pair["older"].strip().casefold() != pair["newer"].strip().casefold(), pair["id"]


def test_both_answers_are_well_represented(training: tuple[Expected, list[dict[str, Any]]]) -> None:
    pairs = training[1]
    for answer in ("newer", "older"):
        share = sum(pair["answer"] == answer for pair in pairs) / len(pairs)
        assert share >= 0.35, (answer, share)
