"""Every bundled ``engram bench updates`` scenario set is well formed: the bench would otherwise score a
question against the wrong turn, or crash half-way through a run."""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any

import pytest

from engram.bench.updates import PAIR_SPLITS, SPLITS, load_scenarios

QUESTION_KINDS = {"present", "past", "as_of"}


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _problems(scenario: dict[str, Any]) -> list[str]:
    """What is wrong with one scenario, as readable messages (empty when it is well formed)."""
    turns = scenario["turns"]
    found = []
    if scenario["type"] not in {"update", "distractor"} or not scenario.get("kind"):
        found.append("type must be update or distractor, and kind must be set")
    if any(turn["role"] not in {"user", "assistant"} or not turn["content"].strip() for turn in turns):
        found.append("a turn has an unknown role or no content")
    moments = [_moment(turn["timestamp"]) for turn in turns]
    if moments != sorted(moments):
        found.append("turns are not in time order")
    for question in scenario["questions"]:
        indices = [question["answer_turn"], *question.get("also_correct", []), *question.get("stale_turns", [])]
        if question["kind"] not in QUESTION_KINDS or not all(0 <= index < len(turns) for index in indices):
            found.append(f"question {question['question']!r}: unknown kind or a turn index out of range")
        if question["answer_turn"] in question.get("stale_turns", []):
            found.append(f"question {question['question']!r}: its answer is listed as stale")
        if question["kind"] == "as_of" and _moment(question["as_of"]) < moments[question["answer_turn"]]:
            found.append(f"question {question['question']!r}: as_of is before the turn that answers it")
        if question.get("reference_date") and _moment(question["reference_date"]) < moments[question["answer_turn"]]:
            found.append(f"question {question['question']!r}: asked before the turn that answers it")
    pairs = [*scenario["supersedes"], *scenario["coexist"]]
    if not all(0 <= old < new < len(turns) and turns[old]["role"] == turns[new]["role"] == "user"
               for old, new in pairs):
        found.append("a supersedes/coexist pair is not (older user turn, newer user turn)")
    if scenario["type"] == "update" and not scenario["supersedes"]:
        found.append("an update scenario names no superseded pair")
    if scenario["type"] == "distractor" and (scenario["supersedes"] or not scenario["coexist"]):
        found.append("a distractor must name co-existing pairs and no superseded one")
    return found


@pytest.mark.parametrize("split", sorted([*SPLITS, *PAIR_SPLITS]))
def test_every_bundled_update_set_is_well_formed(split: str) -> None:
    _, scenarios = load_scenarios(split)
    ids = [scenario["id"] for scenario in scenarios]
    assert len(ids) == len(set(ids)), "scenario ids double as user ids and must be unique"
    problems = {scenario["id"]: found for scenario in scenarios if (found := _problems(scenario))}
    assert not problems


def test_every_update_set_file_is_a_bundled_split() -> None:
    shipped = {entry.name for entry in resources.files("engram").joinpath("data").iterdir()
               if entry.name.startswith("updates_") and entry.name.endswith(".json")}
    assert shipped == set(SPLITS.values())


@pytest.mark.parametrize(("split", "least"), [("pairs3", 300), ("pairs4", 300)])
def test_the_fresh_writers_pairs_run_as_scenarios(split: str, least: int) -> None:
    """Each written pair becomes one scenario whose present question is answered by the newer turn (index 4)
    for a change and by the older one (index 0) otherwise; every pair file of ``engram/data`` is used."""
    _, scenarios = load_scenarios(split)
    pairs = json.loads(resources.files("engram").joinpath("data", PAIR_SPLITS[split]).read_text(encoding="utf-8"))
    assert len(scenarios) == len(pairs["pairs"]) >= least
    for scenario, pair in zip(scenarios, pairs["pairs"], strict=True):
        present = next(question for question in scenario["questions"] if question["kind"] == "present")
        assert scenario["turns"][present["answer_turn"]]["content"] == pair[pair["answer"]]
        assert scenario["type"] == ("update" if pair["answer"] == "newer" else "distractor")
    shipped = {entry.name for entry in resources.files("engram").joinpath("data").iterdir()
               if entry.name.startswith("update_pairs_eval")}
    assert shipped == set(PAIR_SPLITS.values())


HOLDOUT_SIZES = {"holdout3": (50, 30), "holdout4": (70, 40), "holdout5": (80, 40), "holdout6": (90, 50),
                 "holdout7": (90, 45)}
#: The sets nobody has diagnosed or tuned on yet (holdout3 was diagnosed in the fifth session, holdout4 in the sixth;
#: holdout6 was written blind in the seventh, holdout7 in the eighth).
BLIND_SETS = ("holdout5", "holdout6", "holdout7")


@pytest.mark.parametrize(("split", "least"), sorted(HOLDOUT_SIZES.items()))
def test_the_holdouts_are_large_and_say_whether_they_are_blind(split: str, least: tuple[int, int]) -> None:
    """Each holdout keeps the size its writer was asked for, says whether it was never tuned on, and asks every
    kind of question; a split missing here (or shrunk by an edit) fails."""
    data = json.loads(resources.files("engram").joinpath("data", SPLITS[split]).read_text(encoding="utf-8"))
    types = [scenario["type"] for scenario in data["scenarios"]]
    assert types.count("update") >= least[0] and types.count("distractor") >= least[1]
    assert ("never tuned on" in data["note"]) == (split in BLIND_SETS)
    kinds = {question["kind"] for scenario in data["scenarios"] for question in scenario["questions"]}
    assert kinds == QUESTION_KINDS


@pytest.mark.parametrize("name", ["updates_w8_extra.json", "updates_w11_extra.json"])
def test_the_helpers_own_update_sets_are_well_formed(name: str) -> None:
    from pathlib import Path

    _, scenarios = load_scenarios(str(Path(__file__).parents[1] / "fixtures" / name))
    assert not {scenario["id"]: found for scenario in scenarios if (found := _problems(scenario))}
