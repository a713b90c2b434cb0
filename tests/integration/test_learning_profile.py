"""``Memory.profile`` through the public API: extractive offline, abstractive with a scripted LLM, cached,
current facts only, cited, within budget; and its CLI, REST and Client forms."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engram import Memory
from engram.client import Client
from engram.embed.base import Embedder
from engram.errors import PermissionDeniedError, ValidationError
from engram.llm.openai_compat import OpenAICompatLLM
from support.fake_openai import FakeOpenAIServer, Reply
from support.service import running_service

LIFE = ["Hi there, how are you?", "My name is Ana and I work as a nurse at Santa Maria hospital",
        "I live in Lisbon with my wife Rita", "I'm allergic to peanuts", "I love hiking on weekends",
        "What should I cook tonight?", "I just had coffee this morning", "The weather is grey"]


def add_life(memory: Memory, user: str = "ana") -> dict[str, str]:
    results = memory.add(LIFE, user_id=user, infer=False)["results"]
    return {text: r["id"] for text, r in zip(LIFE, results, strict=True)}


def test_extractive_profile_selects_stable_first_person_facts_with_citations(memory: Memory) -> None:
    ids = add_life(memory)
    profile = memory.profile(user_id="ana")
    assert profile["mode"] == "extractive" and not profile["cached"]
    cited = {i for line in profile["lines"] for i in line["memory_ids"]}
    assert cited == {ids[LIFE[1]], ids[LIFE[2]], ids[LIFE[3]], ids[LIFE[4]]}
    categories = [line["category"] for line in profile["lines"]]
    assert categories == sorted(categories, key=["who", "where", "work", "people", "preferences",
                                                 "constraints"].index)
    assert "constraints" in categories and "where" in categories
    assert "peanuts" in profile["text"] and "coffee" not in profile["text"] and "cook" not in profile["text"]
    for line in profile["lines"]:
        assert all(i[:8] in profile["text"] for i in line["memory_ids"]) and line["reasons"]
    assert profile["tokens"] <= 300 and profile["tokens"] == -(-len(profile["text"]) // 4)


def test_profile_respects_the_budget(memory: Memory) -> None:
    add_life(memory)
    small = memory.profile(user_id="ana", max_tokens=30)
    assert 0 < len(small["lines"]) < 4 and len(small["text"]) <= 30 * 4


def test_profile_uses_current_facts_only_and_refreshes_when_memories_change(memory: Memory) -> None:
    ids = add_life(memory)
    assert memory.profile(user_id="ana")["cached"] is False
    assert memory.profile(user_id="ana")["cached"] is True
    memory.update(ids[LIFE[2]], "I live in Porto with my wife Rita")
    changed = memory.profile(user_id="ana")
    assert not changed["cached"] and "Porto" in changed["text"] and "Lisbon" not in changed["text"]
    memory.delete(ids[LIFE[3]])
    assert "peanuts" not in memory.profile(user_id="ana")["text"]
    superseded = memory.get(ids[LIFE[4]])
    memory.store.apply(_superseded(superseded))
    assert "hiking" not in memory.profile(user_id="ana", refresh=True)["text"]
    assert memory.profile(user_id="bob")["lines"] == []


def _superseded(item: dict) -> object:
    from datetime import UTC, datetime

    from engram.models import MemoryItem
    from engram.store.base import ChangeSet

    current = MemoryItem.model_validate(item)
    return ChangeSet(memories=[current.model_copy(update={"valid_to": datetime(2024, 1, 1, tzinfo=UTC)})])


def test_profile_bad_input(memory: Memory) -> None:
    with pytest.raises(ValidationError) as error:
        memory.profile(user_id="ana", max_tokens=5)
    assert error.value.field == "max_tokens"
    with pytest.raises(ValidationError):
        memory.profile()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer().start()
    yield server
    server.stop()


def test_abstractive_profile_with_an_llm_cites_and_is_cached(store_url: str, embedder: Embedder,
                                                            fake_openai: FakeOpenAIServer) -> None:
    llm = OpenAICompatLLM(base_url=fake_openai.url, model="fake", timeout_s=5, max_retries=0)
    with Memory(url=store_url, embedder=embedder, llm=llm) as memory:
        memory.reset()
        ids = add_life(memory)
        fake_openai.queue(Reply.json({"lines": [
            {"category": "who", "text": "Ana, a nurse at Santa Maria", "citations": ["m1"]},
            {"category": "constraints", "text": "Allergic to peanuts", "citations": ["m2", "m99"]},
            {"category": "where", "text": "An invented fact", "citations": []}]}))
        profile = memory.profile(user_id="ana")
        assert profile["mode"] == "abstractive"
        assert [line["text"] for line in profile["lines"]] == ["Ana, a nurse at Santa Maria", "Allergic to peanuts"]
        assert profile["lines"][0]["memory_ids"][0] in ids.values()
        assert len(profile["lines"][1]["memory_ids"]) == 1
        assert fake_openai.chat_calls == 1
        assert memory.profile(user_id="ana")["cached"]
        memory.add("The weather is still grey", user_id="ana", infer=False)
        assert not memory.profile(user_id="ana")["cached"]
        assert fake_openai.chat_calls == 1  # the selected memories did not change: no new LLM call
        fake_openai.queue(Reply.error(400))
        memory.add("I moved to Porto", user_id="ana", infer=False)
        fallback = memory.profile(user_id="ana")
        assert fallback["mode"] == "extractive" and fallback["notes"]


def test_profile_rest_client_and_cli(memory: Memory, store_url: str, tmp_path: Path) -> None:
    add_life(memory, "alice")
    add_life(memory, "bob")
    with running_service(memory, store_url) as service, Client(service.url, api_key=service.tokens["alice"]) as c:
        profile = c.profile(max_tokens=100)
        assert profile["scope"] == {"user_id": "alice"} and profile["lines"]
        with pytest.raises(PermissionDeniedError):
            c.profile(user_id="bob")
    db = str(tmp_path / "cli.db")
    with Memory(path=db) as local:
        add_life(local)
    done = subprocess.run([sys.executable, "-m", "engram.cli", "profile", "--user-id", "ana", "--db", db, "--json"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "peanuts" in json.loads(done.stdout)["text"]
