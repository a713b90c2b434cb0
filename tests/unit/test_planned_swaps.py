"""Read-time supersession's plan of swaps (``engram.read.replaced.planned_swaps``): a chain of changes ends
at its last link, each candidate takes part in one swap at most."""

from __future__ import annotations

from engram.models import MemoryItem
from engram.read.replaced import planned_swaps


def _turn(text: str, when: str) -> MemoryItem:
    return MemoryItem(memory=text, user_id="u", hash=text, valid_from=when)


FIRST = _turn("My 10k best is 58 minutes.", "2023-03-04T09:00:00Z")
SECOND = _turn("new 10k best this morning: 54:30!", "2023-06-10T11:00:00Z")
LAST = _turn("Finally did it, 49:50 at the city race.", "2023-11-12T13:00:00Z")


def test_the_first_fact_of_a_chain_gives_its_place_to_the_last() -> None:
    """A replaced by B and B by C, A ranked first: A swaps with C (main swapped A with B and stopped)."""
    swaps = planned_swaps([(FIRST, SECOND), (SECOND, LAST)], [], [FIRST.id, SECOND.id, LAST.id], newest_first=True)
    assert swaps == [(FIRST, LAST)]


def test_a_question_about_before_follows_the_chain_back_to_its_start() -> None:
    swaps = planned_swaps([(LAST, SECOND), (SECOND, FIRST)], [], [LAST.id, SECOND.id, FIRST.id], newest_first=False)
    assert swaps == [(LAST, FIRST)]


def test_a_candidate_takes_part_in_one_swap_at_most() -> None:
    swaps = planned_swaps([(FIRST, SECOND)], [(LAST, FIRST)], [FIRST.id, LAST.id, SECOND.id], newest_first=True)
    assert swaps == [(FIRST, SECOND)]
