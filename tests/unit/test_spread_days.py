"""Questions that ask for several things spread their top results over days: each memory loses the
fitted ``day_repeat_penalty`` per higher-ranked memory of its own day (``engram.read.rerank.spread_days``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from engram.bench.fit_ranker import (
    DAY_REPEAT_GRID,
    FORM_L2_GRID,
    FORMS,
    FULL,
    Pool,
    cross_validated_setting,
    ranked_linear,
)
from engram.models import MemoryItem, SourceRef
from engram.read.query import asks_for_several
from engram.read.rerank import FEATURES, Scored, day_repeats, rank, spread_days

DAY = datetime(2023, 5, 8, 13, 0, tzinfo=UTC)


def said(text: str, when: datetime) -> MemoryItem:
    return MemoryItem(memory=text, user_id="u", valid_from=when,
                      sources=[SourceRef(id=f"e-{text}", occurred_at=when, role="user", name="Ana")])


@pytest.mark.parametrize("text", [
    "What books has Ana read?", "Which cities did Ana visit?", "How many kids does Ana have?",
    "What do Ana and Bo both like?", "What do Ana and Bo have in common?", "Where has Ana camped?",
    "What kinds of music does Ana play?", "What instruments does Ana play?",
])
def test_questions_that_ask_for_several_things(text: str) -> None:
    assert asks_for_several(text)


@pytest.mark.parametrize("text", [
    "What is Ana's job?", "What did Ana paint last week?", "When did Ana move to Lisbon?",
    "What does his sister do?", "What was the name of Ana's cat?", "Where does Ana live now?",
])
def test_questions_about_one_thing(text: str) -> None:
    assert not asks_for_several(text)


def test_day_repeats_count_the_higher_ranked_memories_of_the_same_day() -> None:
    first, second = date(2023, 5, 8), date(2023, 5, 9)
    assert day_repeats([3.0, 2.0, 2.5, 1.0], [first, first, second, first]) == [0, 1, 0, 2]


def test_spread_days_lifts_the_best_memory_of_another_day() -> None:
    same_day = [Scored(said(f"tennis {index}", DAY), {}, linear=3.0 - 0.1 * index) for index in range(3)]
    other_day = Scored(said("swimming", DAY + timedelta(days=30)), {}, linear=2.7)
    scored = [*same_day, other_day]
    before = [item.memory_id for item in rank(scored, bias=0.0)]
    assert before.index(other_day.memory.id) == 3
    spread_days(scored, 0.5)
    after = [item.memory_id for item in rank(scored, bias=0.0)]
    assert after[:2] == [same_day[0].memory.id, other_day.memory.id]
    assert same_day[2].linear == pytest.approx(2.8 - 1.0)
    assert same_day[2].contributions["day_repeat"] == pytest.approx(-1.0)
    assert "day_repeat" not in same_day[0].contributions


def test_no_penalty_changes_nothing() -> None:
    scored = [Scored(said(f"m{index}", DAY), {}, linear=float(index)) for index in range(3)]
    spread_days(scored, 0.0)
    assert [item.linear for item in scored] == [0.0, 1.0, 2.0]


def test_the_fit_ranks_pools_as_the_read_path_does() -> None:
    days = (date(2023, 5, 8), date(2023, 5, 8), date(2023, 6, 1))
    features = np.zeros((3, len(FEATURES)))
    features[:, FEATURES.index("lexical")] = [3.0, 2.9, 2.8]
    pool = Pool("c", "default", features, np.array([1.0, 0.0, 1.0]), [("a",), ("b",), ("c",)],
                frozenset({"a", "c"}), FULL, True, days)
    model = {"feature_weights": {"lexical": 1.0}, "form_weights": {form: {} for form in FORMS},
             "day_repeat_penalty": 0.5}
    assert list(np.argsort(-ranked_linear(model, pool))) == [0, 2, 1]
    assert list(np.argsort(-ranked_linear(model, replace(pool, several=False)))) == [0, 1, 2]
    assert list(np.argsort(-ranked_linear({**model, "day_repeat_penalty": 0.0}, pool))) == [0, 1, 2]


def test_the_setting_is_the_best_on_held_out_conversations() -> None:
    shape = (len(FORM_L2_GRID), len(DAY_REPEAT_GRID))
    first, second = np.full(shape, 0.5), np.full(shape, 0.5)
    first[0, :3], second[0, :3] = [0.8, 0.82, 0.81], [0.6, 0.62, 0.60]  # means 0.70, 0.72, 0.705, ...
    assert cross_validated_setting([first, second]) == (0, 1)
    first[2, 4] = second[2, 4] = 0.9  # a larger form_l2 with another penalty is better on both
    assert cross_validated_setting([first, second]) == (2, 4)
    assert cross_validated_setting([]) == (0, 0)
    assert cross_validated_setting([np.full(shape, 0.5)]) == (0, 0)  # the smallest of both on a tie
