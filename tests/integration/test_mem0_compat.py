"""mem0 2.x code running on Engram: mem0's own documentation examples (its README, the docstrings of
mem0ai 2.2.1's ``Memory`` and its quickstart), unchanged except ``from engram import Memory``, on every
store backend. ``Memory()`` finds its store through ``ENGRAM_DATABASE_URL``. See docs/MEM0.md."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engram import AsyncMemory, Memory
from engram.compat.mem0_config import engram_config_from_mem0
from engram.embed.base import Embedder
from engram.errors import ConfigurationError, NotFoundError, ValidationError
from engram.llm.openai_compat import OpenAICompatLLM
from support.fake_openai import FakeOpenAIServer, Reply

PG_URL = os.environ.get("ENGRAM_TEST_PG_URL")
MOVIE_CHAT = [
    {"role": "user", "content": "I'm planning to watch a movie tonight. Any recommendations?"},
    {"role": "assistant", "content": "How about thriller movies? They can be quite engaging."},
    {"role": "user", "content": "I'm not a big fan of thriller movies but I love sci-fi movies."},
    {"role": "assistant", "content": "Got it! I'll avoid thriller recommendations and suggest sci-fi movies."},
]


@pytest.fixture
def mem0_env(store_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty store that a bare ``Memory()`` opens, as mem0's examples construct it."""
    monkeypatch.setenv("ENGRAM_DATABASE_URL", store_url)
    with Memory(url=store_url) as fresh:
        fresh.reset()
    return store_url


@pytest.fixture
def m(mem0_env: str, embedder: Embedder) -> Iterator[Memory]:
    """What mem0's docs call ``m = Memory()`` (the shared test embedder saves a model load)."""
    instance = Memory(embedder=embedder)
    yield instance
    instance.close()


class _ChatCompletions:
    """Stands in for ``openai.OpenAI().chat.completions`` in mem0's README example (no network here)."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def create(self, model: str, messages: list[dict[str, str]]) -> Any:
        self.prompts.append(messages[0]["content"])
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content="Noted!"))])


def test_readme_chat_with_memories(mem0_env: str) -> None:
    openai_client = SimpleNamespace(chat=SimpleNamespace(completions=_ChatCompletions()))
    memory = Memory()

    # mem0 README, "Basic Usage", verbatim (only the OpenAI client above is a stand-in)
    def chat_with_memories(message: str, user_id: str = "default_user") -> str:
        # Retrieve relevant memories
        relevant_memories = memory.search(query=message, filters={"user_id": user_id}, top_k=3)
        memories_str = "\n".join(f"- {entry['memory']}" for entry in relevant_memories["results"])

        # Generate Assistant response
        system_prompt = f"You are a helpful AI. Answer the question based on query and memories.\nUser Memories:\n{memories_str}"  # noqa: E501
        messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": message}]
        response = openai_client.chat.completions.create(model="gpt-5-mini", messages=messages)
        assistant_response = response.choices[0].message.content

        # Create new memories from the conversation
        messages.append({"role": "assistant", "content": assistant_response})
        memory.add(messages, user_id=user_id)

        return assistant_response

    chat_with_memories("My favourite food is mushroom risotto.")
    chat_with_memories("What is my favourite food?")
    second_prompt = openai_client.chat.completions.prompts[1]
    assert "- My favourite food is mushroom risotto." in second_prompt
    assert "You are a helpful AI" not in second_prompt.split("User Memories:")[1]  # system turns are not memories
    memory.close()


def test_quickstart_add_get_search_update_history_delete(m: Memory) -> None:
    result = m.add(MOVIE_CHAT, user_id="alice", metadata={"category": "movies"})
    assert [r["event"] for r in result["results"]] == ["ADD"] * 4

    all_memories = m.get_all(filters={"user_id": "alice"})
    assert len(all_memories["results"]) == 4
    memory_id = next(r["id"] for r in all_memories["results"] if "love sci-fi" in r["memory"])
    specific_memory = m.get(memory_id)
    assert specific_memory is not None and specific_memory["metadata"] == {"category": "movies"}

    related_memories = m.search(query="What kind of movies does alice like?", filters={"user_id": "alice"})
    assert memory_id in [hit["id"] for hit in related_memories["results"][:3]]

    assert m.update(memory_id=memory_id, data="Loves sci-fi movies")["message"] == "Memory updated successfully!"
    assert m.update(memory_id=memory_id, text="Likes to play tennis on weekends")["message"] == \
        "Memory updated successfully!"  # the docstring example of mem0's update
    history = m.history(memory_id=memory_id)
    assert [h["event"] for h in history] == ["ADD", "UPDATE", "UPDATE"]
    assert history[1]["old_memory"] == "I'm not a big fan of thriller movies but I love sci-fi movies."
    assert history[2]["new_memory"] == "Likes to play tennis on weekends"

    m.delete(memory_id=memory_id)
    assert m.get(memory_id) is None
    assert m.history(memory_id)[-1]["is_deleted"] is True
    m.add("one more", user_id="bob")
    m.delete_all(user_id="alice")
    assert m.get_all(filters={"user_id": "alice"})["results"] == []
    m.delete_all("bob")  # mem0's delete_all takes the ids positionally too
    assert m.get_all(filters={"user_id": "bob"})["results"] == []
    m.reset()


def test_history_rows_carry_mem0_keys(m: Memory) -> None:
    message = {"role": "user", "name": "alice", "content": "I play the cello"}
    memory_id = m.add(message, user_id="alice")["results"][0]["id"]
    m.update(memory_id, "I play the cello and the piano")
    rows = m.history(memory_id)
    mem0_keys = {"id", "memory_id", "old_memory", "new_memory", "event", "created_at", "updated_at", "is_deleted",
                 "actor_id", "role"}
    assert all(mem0_keys <= set(row) for row in rows)
    assert [(r["event"], r["is_deleted"], r["role"], r["actor_id"]) for r in rows] == \
        [("ADD", False, "user", "alice"), ("UPDATE", False, "user", "alice")]
    assert all(r["updated_at"] == r["created_at"] for r in rows)


def test_top_k_limit_and_rerank(m: Memory) -> None:
    m.add([f"note number {i} about gardening" for i in range(25)], user_id="bob", infer=False)
    assert len(m.search("gardening", filters={"user_id": "bob"})["results"]) == 20  # mem0's default top_k
    assert len(m.search("gardening", filters={"user_id": "bob"}, top_k=3, rerank=True)["results"]) == 3
    assert len(m.search("gardening", user_id="bob", limit=4, top_k=4)["results"]) == 4
    assert len(m.get_all(filters={"user_id": "bob"}, top_k=5)["results"]) == 5
    with pytest.raises(ValidationError) as both:
        m.search("gardening", user_id="bob", limit=4, top_k=5)
    assert both.value.field == "top_k"
    with pytest.raises(ValidationError) as rerank:
        m.search("gardening", user_id="bob", rerank="yes")  # type: ignore[arg-type]
    assert rerank.value.field == "rerank"
    with pytest.raises(ValidationError) as zero:
        m.get_all(user_id="bob", top_k=0)
    assert zero.value.field == "top_k"


def test_wildcard_filter_means_key_present(m: Memory) -> None:
    m.add("Trip to Kyoto in April", user_id="alice", metadata={"category": "travel"})
    m.add("Dentist on Monday", user_id="alice", metadata={"category": None})
    m.add("Bought new running shoes", user_id="alice")
    m.add("Likes sushi", user_id="alice", agent_id="food-bot", metadata={"category": "*"})
    listed = m.get_all(filters={"user_id": "alice", "category": "*"})["results"]
    assert sorted(r["memory"] for r in listed) == ["Dentist on Monday", "Likes sushi", "Trip to Kyoto in April"]
    found = m.search("Kyoto trip", filters={"user_id": "alice", "category": "*"})["results"]
    assert "Bought new running shoes" not in [r["memory"] for r in found]
    assert [r["memory"] for r in m.get_all(filters={"user_id": "alice", "NOT": {"category": "*"}})["results"]] == \
        ["Bought new running shoes"]
    literal = m.get_all(filters={"user_id": "alice", "category": {"eq": "*"}})["results"]
    assert [r["memory"] for r in literal] == ["Likes sushi"]
    with_agent = m.get_all(filters={"user_id": "alice", "agent_id": "*"})["results"]
    assert [r["memory"] for r in with_agent] == ["Likes sushi"]
    with pytest.raises(ValidationError):
        m.get_all(filters={"user_id": "*"})  # a wildcard is no scope


def test_expiration_date(m: Memory) -> None:
    today = datetime.now(UTC).date()
    old = m.add("Temporary door code 4411", user_id="carol", expiration_date="2020-01-31")["results"][0]["id"]
    kept = m.add("Door code is 7788 this week", user_id="carol",
                 expiration_date=(today + timedelta(days=7)).isoformat())["results"][0]["id"]
    today_only = m.add("Parking in bay 12 today", user_id="carol", expiration_date=today)["results"][0]["id"]
    assert m.get(old)["valid_to"].startswith("2020-02-01T00:00:00")  # type: ignore[index]
    assert {r["id"] for r in m.get_all(filters={"user_id": "carol"})["results"]} == {kept, today_only}
    assert old not in [r["id"] for r in m.search("door code", filters={"user_id": "carol"})["results"]]
    assert old in [r["id"] for r in m.get_all(filters={"user_id": "carol"}, show_expired=True)["results"]]
    assert old in [r["id"] for r in m.search("door code", filters={"user_id": "carol"}, show_expired=True)["results"]]
    m.update(old, expiration_date=None)  # mem0: None clears it
    m.update(kept, metadata={"reviewed": True}, expiration_date="2020-06-30")
    assert {r["id"] for r in m.get_all(filters={"user_id": "carol"})["results"]} == {old, today_only}
    assert m.get(kept)["memory"] == "Door code is 7788 this week"  # type: ignore[index]
    with pytest.raises(ValidationError) as bad:
        m.add("x", user_id="carol", expiration_date="31/01/2020")
    assert bad.value.field == "expiration_date"


@pytest.mark.parametrize(("field", "value"), [
    ("expiration_date", "31/01/2020"), ("expiration_date", "9999-12-31"), ("expiration_date", 20200131),
    ("prompt", ""), ("prompt", "bad\x00byte"), ("top_k", -1), ("top_k", True), ("rerank", "yes"),
    ("memory_type", "semantic")])
def test_bad_mem0_arguments_raise_validation_errors_before_any_write(tmp_path: Path, embedder: Embedder,
                                                                      field: str, value: Any) -> None:
    with Memory(path=str(tmp_path / "e.db"), embedder=embedder) as m:
        call = m.search if field in ("top_k", "rerank") else m.add
        with pytest.raises(ValidationError) as raised:
            call("hello", user_id="u", **{field: value})
        assert raised.value.field == field
        assert m.stats()["episodes"] == 0


def test_memory_type_and_prompt_without_llm(m: Memory) -> None:
    procedural = m.add(MOVIE_CHAT, agent_id="agent1", memory_type="procedural_memory")
    case = procedural["results"][0]
    assert case["kind"] == "experience" and case["event"] == "ADD"
    found = m.search_experiences(case["memory"], agent_id="agent1")["results"]
    assert found[0]["id"] == case["id"] and found[0]["outcome"] == "success" and found[0]["steps"]
    with pytest.raises(ValidationError, match="memory_type"):
        m.add("x", user_id="a", memory_type="semantic")
    assert m.episodes(user_id="a") == []  # nothing half-written
    added = m.add("I prefer window seats", user_id="a", prompt="Only extract travel preferences.")
    assert added["infer"] == "offline" and added["results"][0]["memory"] == "I prefer window seats"


def test_missing_ids_behave_as_in_mem0(m: Memory) -> None:
    assert m.get("no-such-id") is None
    for call in (lambda: m.delete("no-such-id"), lambda: m.update("no-such-id", data="x")):
        with pytest.raises(ValueError) as raised:
            call()
        assert isinstance(raised.value, NotFoundError) and isinstance(raised.value, KeyError)


def test_metadata_only_update_keeps_text_and_other_keys(m: Memory) -> None:
    memory_id = m.add("Prefers aisle seats", user_id="dan", metadata={"category": "travel", "source": "chat"})[
        "results"][0]["id"]
    m.update(memory_id, metadata={"category": "flights"})
    item = m.get(memory_id)
    assert item is not None and item["memory"] == "Prefers aisle seats"
    assert item["metadata"] == {"category": "flights", "source": "chat"}
    with pytest.raises(ValidationError):
        m.update(memory_id)
    with pytest.raises(ValidationError) as both:
        m.update(memory_id, text="a", data="b")
    assert both.value.field == "data"


def test_async_memory_takes_the_same_arguments(mem0_env: str) -> None:
    async def scenario() -> None:
        am = AsyncMemory()
        added = await am.add("Allergic to peanuts", user_id="erin", expiration_date=date(2999, 1, 1))
        found = await am.search("allergy", filters={"user_id": "erin"}, top_k=1, rerank=False)
        assert found["results"][0]["id"] == added["results"][0]["id"]
        assert await am.get("missing") is None
        await am.close()

    asyncio.run(scenario())


def test_prompt_and_expiry_reach_llm_extraction(store_url: str, embedder: Embedder) -> None:
    server = FakeOpenAIServer().start()
    try:
        llm = OpenAICompatLLM(base_url=server.url, model="fake", timeout_s=2, max_retries=1)
        with Memory(url=store_url, embedder=embedder, llm=llm) as m:
            m.reset()
            server.queue(Reply.json({"facts": [{"text": "Maya is vegetarian", "kind": "fact", "speaker": "Maya",
                                                "sources": ["m1"], "keys": ["vegetarian"]}]}),
                         Reply.json({"decisions": []}))
            result = m.add([{"role": "user", "name": "Maya", "content": "I'm vegetarian now."}], user_id="maya",
                           prompt="Extract only dietary facts.", expiration_date="2020-01-01")
            system = server.chat_requests[0].body["messages"][0]["content"]
            assert system.rstrip().endswith("Extract only dietary facts.")
            fact = next(r for r in result["results"] if r["kind"] != "episode")
            assert m.get(fact["id"])["valid_to"].startswith("2020-01-02")  # type: ignore[index]
            assert m.get_all(filters={"user_id": "maya"})["results"] == []
    finally:
        server.stop()


def test_from_config_mem0_shapes(tmp_path: Path, embedder: Embedder) -> None:
    history = str(tmp_path / "history.db")
    config = {"llm": {"provider": "ollama", "config": {"model": "llama3.1:8b", "ollama_base_url": "http://h:11434"}},
              "history_db_path": history, "version": "v1.1"}
    with Memory.from_config(config) as m:
        assert m.config.path == history and m.config.llm.base_url == "http://h:11434/v1"
        assert m.config.llm.model == "llama3.1:8b" and m.llm is not None
    mapped = engram_config_from_mem0({
        "llm": {"provider": "azure_openai", "config": {"azure_kwargs": {
            "azure_endpoint": "https://r.openai.azure.com/", "azure_deployment": "gpt-4o", "api_key": "k"}}},
        "embedder": {"provider": "openai", "config": {"model": "text-embedding-3-small", "embedding_dims": 512,
                                                      "api_key": "k", "openai_base_url": "http://e/v1"}},
        "vector_store": {"provider": "pgvector", "config": {"user": "me", "password": "p@ss", "host": "db",
                                                            "port": 5433, "dbname": "mem"}},
        "retrieval": "fast"})
    assert mapped["llm"] == {"provider": "openai", "base_url": "https://r.openai.azure.com/openai/v1",
                             "api_key": "k", "model": "gpt-4o"}
    assert mapped["embedder"]["dimensions"] == 512 and mapped["embedder"]["base_url"] == "http://e/v1"
    assert mapped["url"] == "postgresql://me:p%40ss@db:5433/mem" and mapped["retrieval"] == "fast"
    for bad, named in [({"vector_store": {"provider": "qdrant", "config": {"path": "/tmp/q"}}}, "qdrant"),
                       ({"llm": {"provider": "anthropic", "config": {"model": "claude"}}}, "anthropic"),
                       ({"embedder": {"provider": "gemini", "config": {}}}, "gemini"),
                       ({"reranker": {"provider": "cohere", "config": {}}}, "reranker")]:
        with pytest.raises(ConfigurationError, match=named):
            Memory.from_config({**bad, "history_db_path": history})
    with Memory.from_config({"path": history, "retrieval": "fast"}) as native:  # Engram's own shape still works
        assert native.recipe.name == "fast"


@pytest.mark.skipif(not PG_URL, reason="ENGRAM_TEST_PG_URL is not set")
def test_from_config_pgvector_connection_string(embedder: Embedder) -> None:
    config = {"vector_store": {"provider": "pgvector", "config": {"connection_string": PG_URL,
                                                                  "collection_name": "mem0"}}}
    with Memory.from_config(config) as m:
        m.reset()
        m.add("Stored in PostgreSQL", user_id="pg")
        assert m.get_all(filters={"user_id": "pg"})["results"][0]["memory"] == "Stored in PostgreSQL"
        assert type(m.store).__name__ == "PostgresStore"


def copy_from_mem0(mem0_memory: Any, engram_memory: Memory, user_ids: list[str]) -> int:
    """The migration script of docs/MEM0.md: each mem0 memory becomes one Engram memory, verbatim."""
    copied = 0
    for user_id in user_ids:
        rows = mem0_memory.get_all(filters={"user_id": user_id}, top_k=100_000)["results"]
        for row in rows:
            engram_memory.add(
                {"role": row.get("role") or "user", "content": row["memory"],
                 **({"name": row["actor_id"]} if row.get("actor_id") else {})},
                user_id=row.get("user_id"), agent_id=row.get("agent_id"), run_id=row.get("run_id"),
                metadata=row.get("metadata"), timestamp=row.get("created_at"),
                expiration_date=row.get("expiration_date"), infer=False)
            copied += 1
    return copied


def test_migration_script_copies_mem0_rows(m: Memory) -> None:
    mem0_rows = [  # the shape mem0 2.2.1's get_all returns
        {"id": "1b0c", "memory": "Loves sci-fi movies", "hash": "h", "created_at": "2025-03-01T10:00:00+00:00",
         "updated_at": "2025-03-01T10:00:00+00:00", "user_id": "alice", "role": "user",
         "metadata": {"category": "movies"}},
        {"id": "2c1d", "memory": "Booked a hotel in Rome", "hash": "h", "created_at": "2025-04-02T09:30:00+00:00",
         "updated_at": "2025-04-02T09:30:00+00:00", "user_id": "alice", "agent_id": "travel", "actor_id": "alice",
         "role": "user", "expiration_date": "2999-12-31"},
    ]
    mem0_memory = SimpleNamespace(get_all=lambda filters, top_k: {"results": [
        row for row in mem0_rows if row["user_id"] == filters["user_id"]]})
    assert copy_from_mem0(mem0_memory, m, ["alice"]) == 2
    movies = m.get_all(filters={"user_id": "alice", "category": "movies"})["results"][0]
    assert movies["memory"] == "Loves sci-fi movies" and movies["valid_from"].startswith("2025-03-01T10:00")
    rome = m.search("hotel", filters={"user_id": "alice", "agent_id": "travel"})["results"][0]
    assert rome["sources"][0]["name"] == "alice" and rome["valid_to"].startswith("3000-01-01")


@pytest.mark.parametrize(("mem0", "expected"), [
    ({"llm": {"provider": "lmstudio", "config": {}}},
     {"llm": {"provider": "openai", "base_url": "http://localhost:1234/v1", "api_key": "lm-studio",
              "model": "lmstudio-community/Meta-Llama-3.1-70B-Instruct-GGUF/Meta-Llama-3.1-70B-Instruct-IQ2_M.gguf"}}),
    ({"llm": {"provider": "vllm", "config": {"model": "qwen", "vllm_base_url": "http://gpu:8000/v1"}}},
     {"llm": {"provider": "openai", "base_url": "http://gpu:8000/v1", "api_key": "vllm-api-key", "model": "qwen"}}),
    ({"embedder": {"provider": "ollama", "config": {"model": "nomic-embed-text", "embedding_dims": 768}}},
     {"embedder": {"provider": "openai", "base_url": "http://localhost:11434/v1", "api_key": None,
                   "model": "nomic-embed-text", "dimensions": None}}),
    ({"embedder": {"provider": "huggingface", "config": {"model": "BAAI/bge-small-en-v1.5"}}},
     {"embedder": {"provider": "sentence-transformers", "model": "BAAI/bge-small-en-v1.5"}}),
    ({"vector_store": {"provider": "pgvector", "config": {"user": "u", "password": "p", "host": "h", "port": 5432,
                                                          "sslmode": "require", "collection_name": "c"}}},
     {"url": "postgresql://u:p@h:5432/postgres?sslmode=require"}),
])
def test_mem0_config_mapping(mem0: dict[str, Any], expected: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "VLLM_API_KEY", "VLLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert engram_config_from_mem0(mem0) == expected


def test_mem0_config_refusals_name_the_part() -> None:
    for bad, field in [({"vector_store": {"provider": "pgvector", "config": {"connection_pool": object()}}},
                        "vector_store.config.connection_pool"),
                       ({"llm": {"provider": "azure_openai", "config": {"azure_kwargs": {}}}},
                        "azure_kwargs.azure_endpoint"),
                       ({"custom_instructions": "only travel"}, "custom_instructions"),
                       ({"llm": {"provider": "openai", "config": {}, "extra": 1}}, "llm")]:
        with pytest.raises(ConfigurationError) as raised:
            engram_config_from_mem0(bad)
        assert raised.value.field == field and raised.value.hint
