"""The current fact over the stale one, offline: a change closes the old fact (valid_to, superseded_by,
history), questions about the present rank the current fact first, the past and ``as_of`` still find the
old one, co-existing facts stay open, and deleting the newer fact reopens the older one."""

from __future__ import annotations

from pathlib import Path

from engram import Memory
from engram.config import EngramConfig
from engram.embed.base import Embedder

OLD = {"role": "user", "name": "Maya", "content": "I live in Berlin, in a small flat in Neukölln."}
NEW = {"role": "user", "name": "Maya", "content": "We finally moved to Lisbon last week! Boxes everywhere."}
FILLER = {"role": "user", "name": "Maya", "content": "Can you suggest a quick pasta recipe for tonight?"}


def _history(memory: Memory) -> tuple[str, str]:
    old = memory.add(OLD, user_id="maya", timestamp="2023-03-02T10:00:00Z")["results"][0]["id"]
    memory.add(FILLER, user_id="maya", timestamp="2023-08-01T18:00:00Z")
    new = memory.add(NEW, user_id="maya", timestamp="2024-02-11T09:00:00Z")["results"][0]["id"]
    return old, new


def _top(memory: Memory, question: str, **options: str) -> str:
    return str(memory.search(question, user_id="maya", **options)["results"][0]["id"])


def test_a_change_closes_the_old_fact_and_links_both(memory: Memory) -> None:
    old, new = _history(memory)
    stale = memory.get(old)
    assert stale["valid_to"] is not None and stale["valid_to"].startswith("2024-02-11")
    assert stale["metadata"]["superseded_by"] == new
    assert memory.get(new)["metadata"]["supersedes"] == [old]
    assert memory.get(new)["valid_to"] is None
    assert [event["event"] for event in memory.history(old)] == ["ADD", "INVALIDATE"]


def test_present_questions_rank_the_current_fact_first(memory: Memory) -> None:
    old, new = _history(memory)
    assert _top(memory, "Where do I live now?", reference_date="2024-06-01") == new
    assert _top(memory, "Which city do I live in?") == new
    ranked = [hit["id"] for hit in memory.search("Where do I live?", user_id="maya")["results"]]
    assert ranked.index(new) < ranked.index(old), "the stale fact stays findable, below the current one"


def test_the_past_and_as_of_still_find_the_old_fact(memory: Memory) -> None:
    old, new = _history(memory)
    assert _top(memory, "Where did I live before Lisbon?") == old
    assert _top(memory, "Where do I live?", as_of="2023-09-01") == old
    assert new not in [hit["id"] for hit in memory.search("Lisbon", user_id="maya", as_of="2023-09-01")["results"]]


def test_co_existing_facts_are_not_superseded(memory: Memory) -> None:
    dog = memory.add({"role": "user", "name": "Maya", "content": "I have a dog, a scruffy terrier called Pixel."},
                     user_id="maya", timestamp="2023-03-02T10:00:00Z")["results"][0]["id"]
    memory.add({"role": "user", "name": "Maya", "content": "I also adopted a cat last weekend, a grey tabby."},
               user_id="maya", timestamp="2023-09-10T10:00:00Z")
    memory.add({"role": "user", "name": "Maya", "content": "My brother just moved to Rome for his new job."},
               user_id="maya", timestamp="2023-10-10T10:00:00Z")
    assert memory.get(dog)["valid_to"] is None
    assert all(item["valid_to"] is None for item in memory.get_all(user_id="maya")["results"])


def test_deleting_the_newer_fact_reopens_the_older_one(memory: Memory) -> None:
    old, new = _history(memory)
    memory.delete(new)
    reopened = memory.get(old)
    assert reopened["valid_to"] is None and "superseded_by" not in reopened["metadata"]
    assert memory.history(old)[-1]["actor"] == "supersede.reopen"
    assert _top(memory, "Where do I live now?") == old


def test_supersession_can_be_turned_off(tmp_path: Path, embedder: Embedder) -> None:
    with Memory(path=str(tmp_path / "off.db"), embedder=embedder, config=EngramConfig(supersession=False)) as memory:
        old, _ = _history(memory)
        assert memory.get(old)["valid_to"] is None
