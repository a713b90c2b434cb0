"""Time expressions in questions, resolved against a fixed reference date."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engram.read.timeparse import mentions_time, parse_time_range

REFERENCE = datetime(2023, 10, 20, 15, 30, tzinfo=UTC)  # a Friday


def day(year: int, month: int, date: int) -> datetime:
    return datetime(year, month, date, tzinfo=UTC)


@pytest.mark.parametrize(("text", "start", "end"), [
    ("What did she paint on October 13, 2023?", day(2023, 10, 13), day(2023, 10, 14)),
    ("What happened on 8 May, 2023?", day(2023, 5, 8), day(2023, 5, 9)),
    ("on 8th December, 2023", day(2023, 12, 8), day(2023, 12, 9)),
    ("May 23rd, 2023", day(2023, 5, 23), day(2023, 5, 24)),
    ("What did Maria do in May 2023?", day(2023, 5, 1), day(2023, 6, 1)),
    ("Sept 2022", day(2022, 9, 1), day(2022, 10, 1)),
    ("in December", day(2022, 12, 1), day(2023, 1, 1)),  # the past one: memory is about the past
    ("in 2022", day(2022, 1, 1), day(2023, 1, 1)),
    ("2023-05-08", day(2023, 5, 8), day(2023, 5, 9)),
    ("yesterday", day(2023, 10, 19), day(2023, 10, 20)),
    ("last week", day(2023, 10, 9), day(2023, 10, 16)),
    ("last weekend", day(2023, 10, 14), day(2023, 10, 16)),
    ("this weekend", day(2023, 10, 21), day(2023, 10, 23)),
    ("last month", day(2023, 9, 1), day(2023, 10, 1)),
    ("last year", day(2022, 1, 1), day(2023, 1, 1)),
    ("two weeks ago", day(2023, 10, 2), day(2023, 10, 9)),
    ("4 years ago", day(2019, 1, 1), day(2020, 1, 1)),
    ("summer 2021", day(2021, 6, 1), day(2021, 9, 1)),
    ("last summer", day(2023, 6, 1), day(2023, 9, 1)),
    ("last winter", day(2022, 12, 1), day(2023, 3, 1)),
])
def test_time_expressions_become_ranges(text: str, start: datetime, end: datetime) -> None:
    found = parse_time_range(text, REFERENCE)
    assert found is not None
    assert (found.start, found.end) == (start, end)
    assert found.expression


def test_last_season_while_it_is_going_on_means_the_previous_one() -> None:
    found = parse_time_range("last summer", day(2023, 7, 15))
    assert found is not None and (found.start, found.end) == (day(2022, 6, 1), day(2022, 9, 1))


def test_several_expressions_give_their_union() -> None:
    found = parse_time_range("between 3 June, 2023 and 16 June, 2023", REFERENCE)
    assert found is not None and (found.start, found.end) == (day(2023, 6, 3), day(2023, 6, 17))


@pytest.mark.parametrize("text", ["What pet did Ana adopt?", "may I ask about the cat", "", "the 2023rd item",
                                  "he scored 20 points"])
def test_text_without_time_gives_none(text: str) -> None:
    assert parse_time_range(text, REFERENCE) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("My manager wants a demo ready by July 15th.", True), ("We met last week", True), ("on Friday", True),
    ("two days ago", True), ("back in 2019", True), ("on May 5", True), ("That's a tight deadline.", False),
    ("I may go", False), ("March on!", False),
])
def test_mentions_time(text: str, expected: bool) -> None:
    assert mentions_time(text) is expected
