"""Supersession at read time (``engram.read.replaced``): a change that the write path leaves unlinked
still ranks first for a question about the present; a question about what came before finds the older
fact; co-existing facts and another person's news keep the query's own ranking."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from engram import Memory
from engram.read.query import SearchQuery
from engram.read.replaced import ReadPair
from support.settle import settled

OLD = "Our dog walker is Jamie, he takes Bramble out at noon on weekdays."
NEW = "Jamie went back to uni, so Bramble's got a new walker, Priti. She does 1pm and sends the best photos."


def _say(memory: Memory, text: str, when: str) -> str:
    message = {"role": "user", "name": "Beth", "content": text}
    return str(memory.add(message, user_id="beth", timestamp=when)["results"][0]["id"])


def _ranked(memory: Memory, question: str) -> list[str]:
    hits = memory.search(question, user_id="beth", reference_date="2024-09-01")["results"]
    return [hit["id"] for hit in hits]


def _walker_changed(memory: Memory) -> tuple[str, str]:
    old = _say(memory, OLD, "2023-02-10T09:00:00Z")
    _say(memory, "Can you give me a recipe for a quick weeknight curry?", "2023-09-01T19:00:00Z")
    new = _say(memory, NEW, "2024-06-20T18:00:00Z")
    return old, new


def test_an_unlinked_change_ranks_the_newer_fact_first_for_the_present(memory: Memory) -> None:
    old, new = _walker_changed(memory)
    assert memory.get(old)["valid_to"] is None, "the write path leaves this change unlinked"
    ranked = _ranked(memory, "Who walks my dog?")
    assert ranked[0] == new
    assert old in ranked, "the older fact stays findable"


def test_a_question_about_before_finds_the_older_fact(memory: Memory) -> None:
    old, new = _walker_changed(memory)
    ranked = _ranked(memory, "Who was my dog walker before Priti?")
    assert ranked.index(old) < ranked.index(new)


def test_co_existing_facts_and_other_peoples_news_keep_their_rank(memory: Memory) -> None:
    dog = _say(memory, "I have a dog, a scruffy terrier mix called Pixel.", "2023-02-04T11:00:00Z")
    car = _say(memory, "I drive a Mazda MX-5, the most impractical car I've ever owned.", "2023-02-04T11:05:00Z")
    _say(memory, "I also adopted a cat last weekend, a grey tabby called Moth. Pixel is very confused.",
         "2023-10-21T15:00:00Z")
    _say(memory, "My colleague Ben bought a Porsche 911 and now he won't shut up about it.", "2024-03-02T10:00:00Z")
    assert _ranked(memory, "Do I have a dog?")[0] == dog
    assert _ranked(memory, "What car do I drive?")[0] == car
    assert all(item["valid_to"] is None for item in memory.get_all(user_id="beth")["results"])


def test_the_demo_finds_the_move_to_lisbon_first(memory: Memory) -> None:
    from importlib import resources

    sample = json.loads(resources.files("engram.data").joinpath("sample_conversation.json").read_text("utf-8"))
    for session in sample["sessions"]:
        memory.add(session["messages"], user_id=sample["user_id"], timestamp=session["date"])
    hits = memory.search("Where does Maya live now?", user_id=sample["user_id"], limit=3,
                         reference_date="2024-07-01T00:00:00Z")["results"]
    assert "moved to Lisbon" in hits[0]["memory"]


def test_a_newer_turn_that_did_not_replace_the_older_gives_its_place_back(memory: Memory) -> None:
    job = _say(memory, "I'm an analyst at a bank in Leeds, fixed income mostly.", "2023-01-25T09:00:00Z")
    hedge = _say(memory, "I'm still at the bank, but I might also start tutoring maths at weekends someday.",
                 "2023-10-05T18:00:00Z")
    assert settled(memory, "beth", "Where do I work?", [hedge, job])[0] == job
    old, new = _walker_changed(memory)
    assert settled(memory, "beth", "Who walks my dog?", [new, old])[0] == new, "a change keeps its place"


def test_the_window_reaches_past_the_turns_of_one_conversation(memory: Memory) -> None:
    old = _say(memory, "Our dog walker is Jamie, he takes Bramble out at noon on weekdays.", "2023-02-10T09:00:00Z")
    echo = str(memory.add({"role": "assistant", "content": "Noon walks with Jamie sound good for Bramble!"},
                          user_id="beth", timestamp="2023-02-10T09:00:30Z")["results"][0]["id"])
    follow = _say(memory, "Jamie is great with her, she adores him.", "2023-02-10T09:01:00Z")
    new = _say(memory, NEW, "2024-06-20T18:00:00Z")
    assert settled(memory, "beth", "Who walks my dog?", [old, echo, follow, new])[0] == new


def test_the_recipe_decides_whether_the_pair_reader_reads_the_pairs(tmp_path: Path) -> None:
    """With ``pair_reader`` on (the default) a question about the present that has window pairs loads and runs the
    pair reader; with it off the reader is never built. Write-time closing is off, so the pair stays unlinked."""
    from engram.read.pair_reader import pair_reader

    built = {}
    for reader in (False, True):
        pair_reader.cache_clear()
        with Memory.from_config({"path": str(tmp_path / f"{reader}.db"), "supersession": False,
                                 "retrieval": {"pair_reader": reader}}) as memory:
            memory.add("I live in a flat in Kreuzberg, Berlin.", user_id="u", timestamp="2023-03-01T10:00:00Z")
            memory.add("How do I boil an egg?", user_id="u", timestamp="2023-08-01T10:00:00Z")
            memory.add("The commute from our new place in Potsdam is brutal.", user_id="u",
                       timestamp="2024-03-01T10:00:00Z")
            assert memory.search("Where do I live now?", user_id="u", reference_date="2024-04-01")["results"]
        built[reader] = pair_reader.cache_info().currsize
    assert built == {False: 0, True: 1}


class _Verdict:
    """A read-time judge that gives every pair the same probability and records what it was asked."""

    def __init__(self, probability: float) -> None:
        self.probability = probability
        self.asked: list[tuple[str, str, str]] = []

    def probabilities(self, pairs: Sequence[ReadPair], query: SearchQuery, ranking: Sequence[str]) -> list[float]:
        self.asked += [(query.text, pair.older.id, pair.newer.id) for pair in pairs]
        return [self.probability] * len(pairs)


def test_a_judge_set_on_the_memory_decides_read_time(memory: Memory) -> None:
    old, new = _walker_changed(memory)
    never, always = _Verdict(0.0), _Verdict(1.0)
    memory.pair_judge = never
    assert _ranked(memory, "Who walks my dog?")[0] == old, "not replaced: the older fact keeps its place"
    assert never.asked == [("Who walks my dog?", old, new)]
    memory.pair_judge = always
    assert _ranked(memory, "Who walks my dog?")[0] == new
    assert _ranked(memory, "Who was my dog walker before Priti?")[0] == old
    memory.pair_judge = None
    assert _ranked(memory, "Who walks my dog?")[0] == new, "back to the shipped models"
