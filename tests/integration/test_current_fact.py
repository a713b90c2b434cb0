"""The current fact first, on the kinds of miss found in the fact-update scenarios (issue 11): the
assistant's reply ranking above the user's own words (``engram.read.echo``), and a plainly stated older
fact collecting the question words that only a change needs (``engram.write.supersede.with_statements``),
and another person's news ranked above the fact a question asks about (``engram.read.replaced``)."""

from __future__ import annotations

import pytest

from engram import Memory
from support.settle import settled


def _say(memory: Memory, role: str, text: str, when: str) -> str:
    message = {"role": role, "content": text, **({"name": "Rui"} if role == "user" else {})}
    return str(memory.add(message, user_id="rui", timestamp=when)["results"][0]["id"])


def _ranked(memory: Memory, question: str) -> list[str]:
    hits = memory.search(question, user_id="rui", reference_date="2024-06-01T00:00:00Z")["results"]
    return [hit["id"] for hit in hits]


def test_the_users_words_rank_above_the_assistants_reply_to_them(memory: Memory) -> None:
    _say(memory, "user", "my usual order is an oat milk flat white, like 3 a day. is that too much caffeine?",
         "2023-03-22T09:00:00Z")
    _say(memory, "assistant", "Three flat whites is roughly 400mg caffeine, about the upper recommended daily limit.",
         "2023-03-22T09:00:40Z")
    told = _say(memory, "user", "quit coffee 3 weeks ago. the headaches are finally gone. matcha in the morning is "
                "my thing now", "2023-10-09T08:00:00Z")
    reply = _say(memory, "assistant", "Nice. Matcha has less caffeine and a gentler lift in the morning; ceremonial "
                 "grade is best for drinking straight.", "2023-10-09T08:00:40Z")
    ranked = _ranked(memory, "What do I drink in the morning currently?")
    assert ranked[0] == told
    assert reply in ranked, "the reply stays findable"


def test_a_reply_to_a_request_keeps_its_place(memory: Memory) -> None:
    _say(memory, "user", "can you check when my dentist appointment is", "2024-03-01T10:00:00Z")
    answer = _say(memory, "assistant", "Your dentist appointment is on Thursday at 10 am with Dr. Patel.",
                  "2024-03-01T10:00:30Z")
    assert _ranked(memory, "Who is my dentist?")[0] == answer


def test_a_question_about_what_the_assistant_said_keeps_its_reply_first(memory: Memory) -> None:
    _say(memory, "user", "I'm going to Lisbon in May and I love seafood.", "2024-02-01T10:00:00Z")
    answer = _say(memory, "assistant", "For seafood in Lisbon I recommend Cervejaria Ramiro, go early.",
                  "2024-02-01T10:00:30Z")
    assert _ranked(memory, "Which seafood place in Lisbon did you recommend?")[0] == answer


def test_only_a_fact_told_as_a_change_gets_the_question_words_of_its_state(memory: Memory) -> None:
    stated = _say(memory, "user", "I live in Berlin, in a flat near the canal.", "2023-01-10T09:00:00Z")
    moved = _say(memory, "user", "We finally moved to Lisbon last week!", "2024-02-10T09:00:00Z")
    assert memory.get(stated)["attributes"] == ["rui|residence=berlin"]
    assert "moved" not in memory.get(stated)["index_keys"], "a plain statement already has its question's words"
    assert "live" in memory.get(moved)["index_keys"].split()
    assert _ranked(memory, "Where do I live now?")[0] == moved


def test_news_of_someone_the_question_does_not_ask_about_gives_the_older_fact_its_place(memory: Memory) -> None:
    mine = _say(memory, "user", "My girlfriend Ava and I just celebrated two years together.", "2023-01-14T10:00:00Z")
    mate = _say(memory, "user", "My mate Jack just got engaged to his girlfriend, so I'm best man apparently.",
                "2023-08-27T20:00:00Z")
    assert settled(memory, "rui", "Who is my girlfriend?", [mate, mine])[0] == mine


@pytest.mark.parametrize(("question", "someone_else"), [
    ("What do I do on Wednesday nights?", False),
    ("Where am I going in April?", False),
    ("Where does Jo work?", True),
    ("Who is my girlfriend?", True),
])
def test_a_day_or_a_month_in_a_question_names_no_one(question: str, someone_else: bool) -> None:
    from engram.changes.cues import names_someone_else

    assert names_someone_else(question) is someone_else


def test_a_search_not_about_the_user_keeps_the_reply_that_matches_it(memory: Memory) -> None:
    _say(memory, "user", "Next week we try glazing.", "2024-05-02T10:05:00Z")
    reply = _say(memory, "assistant", "Glazing is where it gets colourful.", "2024-05-02T10:06:00Z")
    assert _ranked(memory, "colourful glazing")[0] == reply


def test_facts_dated_in_the_first_hours_of_year_one_are_compared_without_overflow(memory: Memory) -> None:
    # an event time within CONVERSATION_GAP of datetime.min made `began_at - gap` overflow (a fuzzed REST body)
    old = _say(memory, "user", "I live in Berlin.", "0001-01-01T00:10:00Z")
    new = _say(memory, "user", "We finally moved to Lisbon, I live in Lisbon now.", "0001-01-01T01:30:00Z")
    assert set(_ranked(memory, "Where do I live now?")[:2]) == {old, new}
