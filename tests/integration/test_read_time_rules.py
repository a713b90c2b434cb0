"""Read-time supersession (``engram.read.replaced``), fifth session: a turn that corrects its speaker replaces
the value it corrects within the same conversation; a turn that ends a thing the older one names replaces it
however dissimilar the two are; two turns that state the same attribute are compared however dissimilar; a
member joining a group changes a count whoever the turn opens with; a request gets no place back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engram import Memory
from engram.config import EngramConfig
from engram.embed.base import Embedder
from support.settle import settled


@pytest.fixture
def read_only(store_url: str, embedder: Embedder) -> Iterator[Memory]:
    """A Memory whose write path closes nothing, so that only read time decides."""
    instance = Memory(url=store_url, embedder=embedder, config=EngramConfig(supersession=False))
    instance.reset()
    yield instance
    instance.close()


def _say(memory: Memory, text: str, when: str) -> str:
    message = {"role": "user", "name": "Ari", "content": text}
    return str(memory.add(message, user_id="ari", timestamp=when)["results"][0]["id"])


def test_a_correction_in_the_same_conversation_replaces_the_value_it_corrects(memory: Memory) -> None:
    old = _say(memory, "My flight to Toronto leaves on the 14th at 6pm.", "2024-05-02T14:00:00Z")
    new = _say(memory, "Sorry, I misread the ticket, the flight is on the 15th, still 6pm.", "2024-05-02T14:03:00Z")
    assert settled(memory, "ari", "When does my flight leave?", [old, new])[0] == new
    praise = _say(memory, "Actually, the airline has been great so far.", "2024-05-02T14:05:00Z")
    assert settled(memory, "ari", "When does my flight leave?", [new, praise])[0] == new, "no value: no change"


def test_a_turn_that_ends_a_named_thing_replaces_it(read_only: Memory) -> None:
    old = _say(read_only, "I drive a Peugeot 208 to work, small but fine for the city.", "2023-02-02T08:00:00Z")
    new = _say(read_only, "Sold the Peugeot and got an e-bike, honestly the best decision this year.",
               "2023-09-09T08:00:00Z")
    assert settled(read_only, "ari", "How do I get to work?", [old, new])[0] == new
    flatmate = _say(read_only, "My flatmate sold her Peugeot to her cousin.", "2023-10-01T08:00:00Z")
    assert settled(read_only, "ari", "What car do I drive?", [old, flatmate])[0] == old, "someone else's"


def test_two_turns_that_state_the_same_attribute_are_compared(memory: Memory) -> None:
    old = _say(memory, "I live in Tallinn, in the old town, cobblestones everywhere.", "2023-02-17T09:00:00Z")
    new = _say(memory, "Our new flat in Riga has a tiny balcony, perfect for tomatoes.", "2023-10-12T09:00:00Z")
    assert settled(memory, "ari", "Where do I live?", [old, new])[0] == new


def test_a_member_joining_changes_a_count_whoever_the_turn_opens_with(memory: Memory) -> None:
    old = _say(memory, "We have three grandchildren and they all call me Granny.", "2023-02-01T10:00:00Z")
    new = _say(memory, "Our daughter had a baby girl last week, grandchild number four!", "2024-03-01T10:00:00Z")
    assert settled(memory, "ari", "How many grandchildren do I have?", [old, new])[0] == new


def test_a_request_gets_no_place_back(memory: Memory) -> None:
    statement = _say(memory, "I teach maths at Hillside Secondary, years 9 to 11.", "2023-01-01T10:00:00Z")
    request = _say(memory, "How do I find tutoring students for Saturday mornings?", "2023-02-01T10:00:00Z")
    tutoring = _say(memory, "Also tutoring maths on Saturday mornings for a few weeks, some extra cash.",
                    "2023-09-01T10:00:00Z")
    ranking = settled(memory, "ari", "What's my main job?", [tutoring, request, statement])
    assert ranking[0] == statement, "the co-existing addition gives its place to the statement, not the request"
