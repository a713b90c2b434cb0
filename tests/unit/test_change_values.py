"""The value view of a change (``engram.changes.values``): what kind of value a question asks for, and whether a
newer turn gives it a value the older did not."""

from __future__ import annotations

import pytest

from engram.changes.cues import additions
from engram.changes.values import asked_value, counts, new_value, values


@pytest.mark.parametrize(("question", "kind"), [
    ("How much is my rent now?", "number"),
    ("What's my phone number?", "number"),
    ("How many dogs do I have?", "number"),
    ("Who am I dating?", "name"),
    ("What are we naming the baby?", "name"),
    ("When is my wedding?", "time"),
    ("What time is my yoga class?", "time"),
    ("Where do I live?", None),
    ("What car do I drive?", None),
])
def test_the_kind_of_value_a_question_asks_for(question: str, kind: str | None) -> None:
    assert asked_value(question) == kind


def test_values_are_normalised() -> None:
    assert values("just the one dog, and a second one coming", "number") == {"1", "2"}
    assert values("my girlfriend Chloe and I went to Bristol. Great trip", "name") == {"chloe", "bristol"}
    assert values("moved to Thursdays at 7pm", "time") == {"thursday", "7pm"}


@pytest.mark.parametrize(("question", "older", "newer", "changed"), [
    ("How much is my rent?", "rent is 1400 a month", "landlord renewed the lease at 1650", True),
    ("What's my number?", "My number is 555-0142", "New phone, same number, 555-0142 still.", False),
    ("What's my number?", "My number is 555-0142", "Save my friend Ana's number: 555-0199.", False),
    ("What's the baby's name?", "the baby's name is Ella!", "her cousin took Ella, so we're going with Nora", True),
    ("Where do I live?", "I live in Berlin", "Running along the river in Belém", False),
    ("How much is my rent?", "What's a fair rent?", "rent is 1650 now", False),
])
def test_a_new_value(question: str, older: str, newer: str, changed: bool) -> None:
    assert new_value(question, older, newer) is changed


def test_a_count_reads_an_addition() -> None:
    assert counts("How many cats do I have?") and not counts("Do I have a cat?")
    assert additions("we adopted a second beagle") == 1.0
    assert additions("not buying another one") == 0.0
    assert additions("we're still six") == 0.0


@pytest.mark.parametrize(("question", "older", "newer", "changed"), [
    ("How much is my grocery budget?", "My weekly grocery budget is 120 dollars.",
     "Groceries are pricier so the budget is 150 a week, and I'm also trying organic eggs.", True),
    ("How much is my grocery budget?", "My weekly grocery budget is 120 dollars.",
     "I also have a small fun budget, 150 a week.", False),
    ("How many chickens do we have?", "We have three chickens.", "The chickens laid six eggs today!", False),
    ("How many employees does my bakery have?", "My bakery has four employees.",
     "Hired two more people for the weekend rush, so we're six staff now.", True),
    ("How many grandchildren do I have?", "We have three grandchildren.",
     "Our daughter had a baby girl last week, grandchild number four!", True),
])
def test_a_cue_qualifies_its_own_clause_and_a_number_counts_the_noun_after_it(question: str, older: str, newer: str,
                                                                             changed: bool) -> None:
    assert new_value(question, older, newer) is changed


def test_a_member_joining_or_leaving_changes_a_count() -> None:
    from engram.changes.values import membership_changes

    assert membership_changes("Pepper passed away last night.") == 1.0
    assert membership_changes("Our son Mateo was born on Tuesday!") == 1.0
    assert membership_changes("We painted the kitchen.") == 0.0
