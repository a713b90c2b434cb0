"""Read-time supersession (``engram.read.replaced``) without change words: a newer turn that gives the value a
question asks for another value replaces the older one; a count question reads an addition as a change; news
of another named person than the one asked about replaces nothing."""

from __future__ import annotations

from engram import Memory
from support.settle import settled


def _say(memory: Memory, text: str, when: str) -> str:
    message = {"role": "user", "name": "Noor", "content": text}
    return str(memory.add(message, user_id="noor", timestamp=when)["results"][0]["id"])


def test_a_new_value_told_without_a_change_word_ranks_first(memory: Memory) -> None:
    old = _say(memory, "my rent is 1200 a month for a studio near the park, is that normal for Leeds?",
               "2023-02-01T10:00:00Z")
    new = _say(memory, "the landlord sent the renewal, 1350 a month for the studio from March. is that fair?",
               "2024-02-01T10:00:00Z")
    assert settled(memory, "noor", "How much is my rent?", [old, new])[0] == new
    assert memory.get(old)["valid_to"] is None, "nothing is closed at write time"


def test_a_value_of_someone_else_replaces_nothing(memory: Memory) -> None:
    old = _say(memory, "My number is 0612 345 678, put it on the booking form.", "2023-02-01T10:00:00Z")
    new = _say(memory, "Save my brother Karim's number for the party: 0699 876 543.", "2023-09-01T10:00:00Z")
    assert settled(memory, "noor", "What's my phone number?", [old, new])[0] == old


def test_an_addition_changes_a_count(memory: Memory) -> None:
    old = _say(memory, "I have one cat, a grey tabby called Miso. Best brush for a short-haired cat?",
               "2023-02-01T10:00:00Z")
    new = _say(memory, "we adopted another cat last week, a kitten called Tofu. how do I introduce the cats?",
               "2023-09-01T10:00:00Z")
    assert settled(memory, "noor", "How many cats do I have?", [old, new])[0] == new
    assert settled(memory, "noor", "Do I have a grey tabby?", [old, new])[0] == old, "an addition elsewhere"


def test_news_of_another_named_person_keeps_the_asked_persons_fact(memory: Memory) -> None:
    old = _say(memory, "my neighbours are both teachers, Priya's at Oak Hill Primary and Tom's at the grammar school",
               "2023-02-01T10:00:00Z")
    new = _say(memory, "Tom quit teaching!! he's driving a taxi now and loves it. Priya thinks he's mad",
               "2023-09-01T10:00:00Z")
    assert settled(memory, "noor", "Where does Priya work?", [new, old])[0] == old
    assert settled(memory, "noor", "What does Tom do now?", [old, new])[0] == new
