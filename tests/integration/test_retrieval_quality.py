"""The read path's retrieval features end to end through the public API, on real stores."""

from __future__ import annotations

from engram import Memory
from engram.config import EngramConfig
from engram.embed.base import Embedder

TOURNAMENT = [
    {"role": "user", "name": "Nate", "content": "I won my second video game tournament last week!"},
    {"role": "assistant", "name": "Joanna", "content": "Wow, congrats! Which one was it this time?"},
    {"role": "user", "name": "Nate", "content": "Street Fighter, the local one. Turns out I'm really good."},
    {"role": "assistant", "name": "Joanna", "content": "I've been writing a new screenplay about a road trip."},
]


def test_an_answer_is_found_through_the_question_before_it(memory: Memory) -> None:
    added = memory.add(TOURNAMENT, user_id="u", timestamp="2022-05-02T10:00:00Z")
    hits = memory.search("Which tournament did Nate win?", user_id="u", limit=3)["results"]
    answer = next(hit for hit in hits if hit["memory"].startswith("Street Fighter"))
    assert answer["sources"] == [memory.get(added["results"][2]["id"])["sources"][0]]
    assert [source["id"] for source in answer["sources"]] == [added["episodes"][2]]


def test_dates_in_the_question_prefer_memories_of_that_time(memory: Memory) -> None:
    memory.add([{"role": "user", "name": "Ana", "content": "I cooked a big pot of lentil soup today."}], user_id="u",
               timestamp="2023-05-08T18:00:00Z")
    memory.add([{"role": "user", "name": "Ana", "content": "I cooked a mushroom risotto today."}], user_id="u",
               timestamp="2023-09-14T18:00:00Z")
    for question, expected in (("What did Ana cook on 8 May, 2023?", "lentil"),
                               ("What did Ana cook in September 2023?", "risotto")):
        result = memory.search(question, user_id="u", limit=1, reference_date="2023-12-01T00:00:00Z")
        assert expected in result["results"][0]["memory"]
        assert result["time_range"]["expression"]


def test_confidence_drops_when_the_match_was_said_by_someone_else(memory: Memory) -> None:
    turns = [("Ana", "I adopted a grey cat called Miso."), ("Bo", "Lovely! How old is she?"),
             ("Ana", "About two years, the shelter thinks."), ("Bo", "Shelters do great work."),
             ("Ana", "They do. How was your weekend?"), ("Bo", "I spent the weekend hiking in the Alps."),
             ("Ana", "That sounds wonderful."), ("Bo", "The views from the ridge were stunning.")]
    memory.add([{"role": "user", "name": name, "content": text} for name, text in turns], user_id="u")
    asked_right = memory.search("What pet did Ana adopt?", user_id="u")
    asked_wrong = memory.search("What pet did Bo adopt?", user_id="u")
    assert not asked_right["abstain"]
    assert asked_wrong["confidence"] < asked_right["confidence"] - 0.1


def test_explain_shows_features_and_weighted_contributions(memory: Memory) -> None:
    memory.add(TOURNAMENT, user_id="u")
    explain = memory.search("Nate tournament", user_id="u", limit=1, explain=True)["results"][0]["explain"]
    assert {"lexical", "dense", "speaker", "time_match", "day_lexical", "w_lexical", "linear", "fused"} <= set(explain)
    assert explain["speaker"] == 1.0


def test_rrf_recipe_still_ranks(tmp_path: object, embedder: Embedder) -> None:
    with Memory(path=str(tmp_path) + "/rrf.db", embedder=embedder, config=EngramConfig(retrieval="rrf")) as memory:
        memory.add(TOURNAMENT, user_id="u")
        result = memory.search("screenplay road trip", user_id="u", limit=2, explain=True)
        assert "screenplay" in result["results"][0]["memory"]
        assert "lexical_rank" in result["results"][0]["explain"]
