"""Through ``Memory.search``: a question that asks for several things lowers each memory by the recipe's
``day_repeat_penalty`` per higher-ranked memory of its day; a question about one thing does not."""

from __future__ import annotations

from engram import Memory

TURNS = [("I played tennis with my coach today.", "2023-05-08T10:00:00Z"),
         ("Tennis again this afternoon, my serve is getting better.", "2023-05-08T15:00:00Z"),
         ("After tennis I stretched for twenty minutes.", "2023-05-08T18:00:00Z"),
         ("I tried swimming for the first time this morning.", "2023-06-20T09:00:00Z")]


def repeats(memory: Memory, question: str) -> list[float]:
    hits = memory.search(question, user_id="ana", explain=True)["results"]
    return [hit["explain"].get("w_day_repeat", 0.0) for hit in hits]


def test_several_things_spread_over_days(memory: Memory) -> None:
    for text, when in TURNS:
        memory.add([{"role": "user", "content": text}], user_id="ana", timestamp=when, infer=False)
    memory.recipe = memory.recipe.model_copy(update={"day_repeat_penalty": 0.5})
    several = repeats(memory, "What sports has Ana tried?")
    assert sorted(several) == [-1.0, -0.5, 0.0, 0.0]  # two later tennis turns of the same day lose 0.5 each
    assert repeats(memory, "What did Ana do this morning?") == [0.0] * len(TURNS)
    memory.recipe = memory.recipe.model_copy(update={"day_repeat_penalty": 0.0})
    assert repeats(memory, "What sports has Ana tried?") == [0.0] * len(TURNS)
