"""The public Python API end to end, on real stores of every backend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engram import AsyncMemory, Memory
from engram.embed.base import Embedder
from engram.errors import FilterError, NotFoundError, ScopeMissingError, ValidationError

CONVERSATION = [
    {"role": "user", "name": "Ana", "content": "I adopted a grey cat called Miso last spring."},
    {"role": "assistant", "content": "Miso is a lovely name! How is she settling in?"},
    {"role": "user", "name": "Ana", "content": "She loves sleeping on my keyboard while I write Rust code."},
    {"role": "user", "name": "Ana", "content": "My brother Luis is getting married in Porto in September."},
]


def ids(result: dict[str, Any]) -> list[str]:
    return [item["id"] for item in result["results"]]


def test_add_stores_episodes_and_verbatim_memories(memory: Memory) -> None:
    result = memory.add(CONVERSATION, user_id="ana", timestamp="2024-05-01T10:00:00Z", metadata={"topic": "life"})
    assert [r["event"] for r in result["results"]] == ["ADD"] * 4
    assert len(result["episodes"]) == 4
    assert result["infer"] == "offline" and result["notes"]
    item = memory.get(result["results"][0]["id"])
    assert item["memory"] == CONVERSATION[0]["content"]
    assert item["kind"] == "episode"
    assert item["metadata"] == {"topic": "life"}
    assert item["sources"][0]["id"] == result["episodes"][0]
    assert item["sources"][0]["name"] == "Ana"
    assert item["sources"][0]["occurred_at"] == "2024-05-01T10:00:00Z"
    episodes = memory.episodes(user_id="ana")
    assert [e["content"] for e in episodes] == [m["content"] for m in CONVERSATION]


def test_add_accepts_string_dict_and_per_message_timestamps(memory: Memory) -> None:
    memory.add("plain string message", user_id="u")
    memory.add({"role": "user", "content": "a dict message"}, user_id="u", infer=False)
    result = memory.add([{"role": "user", "content": "dated", "timestamp": 1_700_000_000}], user_id="u",
                        timestamp="2020-01-01T00:00:00Z")
    assert result["infer"] == "offline"
    dated = memory.get(result["results"][0]["id"])
    assert dated["sources"][0]["occurred_at"] == "2023-11-14T22:13:20Z"
    assert memory.get_all(user_id="u")["total"] == 3


def test_system_messages_are_kept_as_episodes_only(memory: Memory) -> None:
    result = memory.add([{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "hi there"}],
                        user_id="u")
    assert len(result["episodes"]) == 2
    assert [r["memory"] for r in result["results"]] == ["hi there"]


def test_search_finds_relevant_memory_with_sources(memory: Memory) -> None:
    memory.add(CONVERSATION, user_id="ana", timestamp="2024-05-01T10:00:00Z")
    result = memory.search("What pet did Ana adopt?", user_id="ana", limit=2)
    assert result["results"][0]["memory"] == CONVERSATION[0]["content"]
    assert result["results"][0]["sources"][0]["name"] == "Ana"
    assert result["results"][0]["score"] >= result["results"][1]["score"]
    assert not result["abstain"]
    wedding = memory.search("wedding in Portugal", user_id="ana", limit=1)
    assert "Porto" in wedding["results"][0]["memory"]


def test_search_explain_shows_component_scores(memory: Memory) -> None:
    memory.add(CONVERSATION, user_id="ana")
    hit = memory.search("cat keyboard", user_id="ana", limit=1, explain=True)["results"][0]
    assert {"lexical", "dense", "fused"} <= set(hit["explain"])


def test_scopes_are_hard_partitions(memory: Memory) -> None:
    memory.add("alice secret canary-alpha", user_id="alice")
    memory.add("bob secret canary-bravo", user_id="bob")
    memory.add("alice agent note canary-charlie", user_id="alice", agent_id="planner")
    for query in ("canary-bravo", "bob secret", "secret canary"):
        texts = [h["memory"] for h in memory.search(query, user_id="alice", limit=10)["results"]]
        assert all("bravo" not in t for t in texts)
    assert memory.get_all(user_id="alice")["total"] == 2
    assert memory.get_all(user_id="alice", agent_id="planner")["total"] == 1
    assert memory.get_all(agent_id="planner")["total"] == 1
    memory.delete_all(user_id="alice")
    assert memory.get_all(user_id="alice")["total"] == 0
    assert memory.get_all(user_id="bob")["total"] == 1
    assert [h["memory"] for h in memory.search("secret", user_id="bob")["results"]] == ["bob secret canary-bravo"]


def test_scope_ids_inside_filters_v2_style(memory: Memory) -> None:
    memory.add("in scope", user_id="u1")
    memory.add("other scope", user_id="u2")
    got = memory.get_all(filters={"AND": [{"user_id": "u1"}]})
    assert [r["memory"] for r in got["results"]] == ["in scope"]
    hits = memory.search("scope", filters={"user_id": "u2"})
    assert [h["memory"] for h in hits["results"]] == ["other scope"]
    with pytest.raises(ValidationError, match="user_id"):
        memory.get_all(user_id="u1", filters={"user_id": "u2"})


def test_missing_scope_is_a_clear_error(memory: Memory) -> None:
    for call in (lambda: memory.search("x"), lambda: memory.get_all(), lambda: memory.delete_all(),
                 lambda: memory.add("x")):
        with pytest.raises(ScopeMissingError) as info:
            call()
        assert info.value.field == "user_id"


def test_metadata_filters(memory: Memory) -> None:
    memory.add([{"role": "user", "content": f"note {i}", "metadata": {"priority": i, "tag": "ab"[i % 2],
                                                                       "due": f"2024-0{i + 1}-01"}}
                for i in range(5)], user_id="u")
    def texts(filters: dict[str, Any]) -> set[str]:
        return {r["memory"] for r in memory.get_all(user_id="u", filters=filters)["results"]}
    assert texts({"tag": "a"}) == {"note 0", "note 2", "note 4"}
    assert texts({"priority": {"gte": 3}}) == {"note 3", "note 4"}
    assert texts({"priority": {"in": [1, 2]}}) == {"note 1", "note 2"}
    assert texts({"priority": {"nin": [1, 2]}}) == {"note 0", "note 3", "note 4"}
    assert texts({"OR": [{"priority": 0}, {"priority": {"gt": 3}}]}) == {"note 0", "note 4"}
    assert texts({"AND": [{"tag": "a"}, {"priority": {"lt": 4}}]}) == {"note 0", "note 2"}
    assert texts({"NOT": {"tag": "a"}}) == {"note 1", "note 3"}
    assert texts({"due": {"gte": "2024-03-01", "lt": "2024-05-01"}}) == {"note 2", "note 3"}
    assert texts({"kind": "episode", "priority": {"ne": 0}}) == {"note 1", "note 2", "note 3", "note 4"}
    hits = memory.search("note", user_id="u", filters={"tag": "b"})
    assert {h["memory"] for h in hits["results"]} == {"note 1", "note 3"}
    now = datetime.now(UTC).isoformat()
    assert texts({"created_at": {"lte": now}}) == {f"note {i}" for i in range(5)}


@pytest.mark.parametrize("bad", [
    {"priority": {"between": [1, 2]}}, {"priority": {"in": []}}, {"AND": "x"}, {"OR": []}, "not a dict",
    {"priority": {"gt": None}}, {"x": {"contains": 3}}, {"created_at": {"gt": "yesterday-ish"}},
])
def test_malformed_filters_raise(memory: Memory, bad: Any) -> None:
    with pytest.raises(FilterError):
        memory.get_all(user_id="u", filters=bad)


def test_update_keeps_history_and_reembeds(memory: Memory) -> None:
    memory_id = memory.add("I live in Berlin", user_id="u")["results"][0]["id"]
    memory.update(memory_id, "I live in Lisbon now", metadata={"moved": True})
    item = memory.get(memory_id)
    assert item["memory"] == "I live in Lisbon now" and item["metadata"] == {"moved": True}
    events = memory.history(memory_id)
    assert [e["event"] for e in events] == ["ADD", "UPDATE"]
    assert events[1]["old_memory"] == "I live in Berlin" and events[1]["new_memory"] == "I live in Lisbon now"
    top = memory.search("Lisbon", user_id="u", limit=1)["results"][0]
    assert top["id"] == memory_id
    assert memory.episodes(user_id="u")[0]["content"] == "I live in Berlin"


def test_delete_removes_memory_and_leaves_tombstone(memory: Memory) -> None:
    first, second = ids(memory.add(["delete me canary-delta", "keep me"], user_id="u"))
    memory.delete(first)
    assert memory.get(first) is None
    assert [h["id"] for h in memory.search("canary-delta", user_id="u")["results"]] == [second]
    events = memory.history(first)
    assert events[-1]["event"] == "DELETE"
    assert all(e["old_memory"] is None and e["new_memory"] is None for e in events)
    assert [e["content"] for e in memory.episodes(user_id="u")] == ["keep me"]


def test_unknown_ids_raise_not_found(memory: Memory) -> None:
    assert memory.get("nope") is None
    for call in (lambda: memory.update("nope", "x"), lambda: memory.delete("nope"), lambda: memory.history("nope")):
        with pytest.raises(NotFoundError):
            call()


def test_reset_wipes_everything(memory: Memory) -> None:
    memory.add("one", user_id="a")
    memory.add("two", user_id="b")
    memory.reset()
    assert memory.stats()["memories"] == 0 and memory.stats()["episodes"] == 0


@pytest.mark.parametrize(("messages", "field"), [
    ("", "messages.content"),
    ("   ", "messages.content"),
    ([], "messages"),
    (None, "messages"),
    (42, "messages"),
    ([{"role": "user"}], "messages[0].content"),
    ([{"role": "user", "content": 5}], "messages[0].content"),
    ([{"role": "", "content": "x"}], "messages[0].role"),
    ([{"role": "martian", "content": "x"}], "messages[0].role"),
    ([{"content": "x", "bogus": 1}], "messages[0]"),
    ([{"content": "x", "timestamp": "next tuesday"}], "messages[0].timestamp"),
    ([{"content": "x", "metadata": "nope"}], "messages[0].metadata"),
    ("bad \ud800 surrogate", "messages.content"),
    (b"\xff\xfe invalid", "messages.content"),
    ("nul \x00 byte", "messages.content"),
    ("x" * 10_000_001, "messages.content"),
    (["ok", ""], "messages[1].content"),
])
def test_bad_input_is_rejected_and_store_unchanged(memory: Memory, messages: Any, field: str) -> None:
    memory.add("existing", user_id="u")
    before = memory.stats()
    with pytest.raises(ValidationError) as info:
        memory.add(messages, user_id="u")
    assert info.value.field == field
    assert memory.stats()["episodes"] == before["episodes"] and memory.stats()["memories"] == before["memories"]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"user_id": 5}, "user_id"), ({"user_id": ""}, "user_id"), ({"user_id": "u", "metadata": {"k": float("nan")}},
                                                                  "metadata.k"),
    ({"user_id": "u", "metadata": {1: "x"}}, "metadata"), ({"user_id": "u", "metadata": {"o": object()}}, "metadata.o"),
    ({"user_id": "u", "timestamp": "soon"}, "timestamp"), ({"user_id": "u", "timestamp": True}, "timestamp"),
    ({"user_id": "u", "metadata": {"big": "x" * 100_000}}, "metadata"),
])
def test_bad_arguments_name_the_field(memory: Memory, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        memory.add("hello", **kwargs)
    assert info.value.field == field
    assert memory.stats()["episodes"] == 0


def test_bad_search_arguments(memory: Memory) -> None:
    for kwargs, field in (({"limit": 0}, "limit"), ({"limit": "3"}, "limit"), ({"threshold": "x"}, "threshold"),
                          ({"reference_date": "whenever"}, "reference_date")):
        with pytest.raises(ValidationError) as info:
            memory.search("q", user_id="u", **kwargs)
        assert info.value.field == field
    with pytest.raises(ValidationError) as info:
        memory.search("", user_id="u")
    assert info.value.field == "query"


def test_threshold_and_limit(memory: Memory) -> None:
    memory.add([f"fact number {i} about gardening" for i in range(8)], user_id="u")
    assert len(memory.search("gardening", user_id="u", limit=3)["results"]) == 3
    assert memory.search("gardening", user_id="u", threshold=1.01)["results"] == []


def test_abstains_when_nothing_relevant(memory: Memory) -> None:
    memory.add(CONVERSATION, user_id="ana")
    unrelated = memory.search("quantum chromodynamics lattice gauge theory", user_id="ana")
    related = memory.search("Ana's cat Miso", user_id="ana")
    assert unrelated["abstain"] and not related["abstain"]
    assert unrelated["confidence"] < related["confidence"]
    empty = memory.search("anything", user_id="nobody")
    assert empty["results"] == [] and empty["abstain"]


def test_get_all_paginates_newest_first(memory: Memory) -> None:
    for i in range(5):
        memory.add(f"m{i}", user_id="u")
    page1 = memory.get_all(user_id="u", limit=2)
    page2 = memory.get_all(user_id="u", limit=2, offset=2)
    assert [r["memory"] for r in page1["results"]] == ["m4", "m3"]
    assert [r["memory"] for r in page2["results"]] == ["m2", "m1"]
    assert page1["total"] == 5


def test_async_twin_shares_behaviour(store_url: str, embedder: Any) -> None:
    async def scenario() -> None:
        async with AsyncMemory(url=store_url, embedder=embedder) as memory:
            await memory.reset()
            added = await asyncio.gather(*(memory.add(f"async note {i}", user_id="u") for i in range(5)))
            assert len(added) == 5
            result = await memory.search("async note 3", user_id="u", limit=1)
            assert result["results"][0]["memory"] == "async note 3"
            assert (await memory.get_all(user_id="u"))["total"] == 5
            with pytest.raises(ScopeMissingError):
                await memory.search("x")
    asyncio.run(scenario())


def test_from_config_and_bad_config(tmp_path: Any, embedder: Any) -> None:
    memory = Memory.from_config({"path": str(tmp_path / "c.db"), "retrieval": "fast"})
    assert memory.recipe.name == "fast"
    memory.close()
    from engram.errors import ConfigurationError
    with pytest.raises(ConfigurationError):
        Memory.from_config({"path": str(tmp_path / "d.db"), "retrieval": "nonexistent"})
    with pytest.raises(ConfigurationError):
        Memory.from_config({"nonsense_key": 1})
    with pytest.raises(ConfigurationError):
        Memory(url="mysql://x")


def test_results_show_trust_and_filters_select_by_it(memory: Memory) -> None:
    memory.add([{"role": "user", "content": "I keep the tea in the blue tin."},
                {"role": "assistant", "content": "Noted: the tea lives in the blue tin."},
                {"role": "tool", "name": "web", "content": "Tea tins: blue ones keep tea fresh longest."},
                {"role": "user", "content": "Tea guide says tins beat jars.",
                 "metadata": {"source": "Document:tea-guide.pdf"}}], user_id="u")

    def trusts(filters: dict[str, Any]) -> list[str]:
        return sorted(item["trust"] for item in memory.get_all(user_id="u", filters=filters)["results"])

    assert trusts({"trust": "user"}) == ["user"]
    assert trusts({"trust": {"gte": "assistant"}}) == ["assistant", "user"]
    assert trusts({"trust": {"lt": "assistant"}}) == ["document", "tool"]
    assert trusts({"trust": {"in": ["tool", "unknown"]}}) == ["tool"]
    assert trusts({"NOT": {"trust": "user"}}) == ["assistant", "document", "tool"]
    assert trusts({"writer": {"startswith": "document:"}}) == ["document"]
    hits = memory.search("where is the tea", user_id="u", filters={"trust": {"gte": "assistant"}})["results"]
    assert hits and {hit["trust"] for hit in hits} <= {"user", "assistant"}
    with pytest.raises(FilterError) as error:
        memory.get_all(user_id="u", filters={"trust": {"gte": "admin"}})
    assert "trust" in str(error.value) and "admin" in str(error.value)


def test_a_less_trusted_writer_ranks_below_the_same_words_from_the_user(memory: Memory) -> None:
    memory.add([{"role": "tool", "name": "scraper", "content": "The spare key is under the third flower pot."}],
               user_id="u")
    memory.add([{"role": "user", "content": "The spare key is under the third flower pot."}], user_id="u")
    hits = memory.search("where is the spare key", user_id="u", limit=2, explain=True)["results"]
    assert [hit["trust"] for hit in hits] == ["user", "tool"]
    assert hits[0]["explain"]["trust"] == 1.0 and hits[1]["explain"]["trust"] == pytest.approx(0.7)


def test_delete_all_with_filters_deletes_only_the_matches(memory: Memory) -> None:
    memory.add([{"role": "user", "content": "note to keep", "metadata": {"tag": "keep"}},
                {"role": "user", "content": "note to drop", "metadata": {"tag": "drop"}}], user_id="u")
    memory.add("another user's note to drop", user_id="v", metadata={"tag": "drop"})
    result = memory.delete_all(user_id="u", filters={"tag": "drop"})
    assert (result["deleted_memories"], result["deleted_episodes"]) == (1, 1)
    assert [item["memory"] for item in memory.get_all(user_id="u")["results"]] == ["note to keep"]
    assert [e["content"] for e in memory.episodes(user_id="u")] == ["note to keep"]
    assert memory.get_all(user_id="v")["total"] == 1


def test_an_unknown_role_lists_the_accepted_ones(tmp_path: Path, embedder: Embedder) -> None:
    with Memory(path=str(tmp_path / "r.db"), embedder=embedder) as memory, \
            pytest.raises(ValidationError) as error:
        memory.add({"role": "martian", "content": "greetings"}, user_id="u")
    assert error.value.field == "messages.role" and "assistant" in str(error.value) and "user" in str(error.value)
