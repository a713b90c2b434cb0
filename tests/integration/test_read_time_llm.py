"""Read-time supersession judged by the LLM (``read_time_llm``, ``engram.read.llm_judge``), through ``Memory``
against a real local OpenAI-compatible server that each test scripts; the offline models decide whenever the
LLM does not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engram import Memory
from engram.config import EngramConfig, LLMConfig
from engram.embed.base import Embedder
from engram.llm.openai_compat import OpenAICompatLLM
from support.fake_openai import FakeOpenAIServer, Reply

OLD = "Our dog walker is Jamie, he takes Bramble out at noon on weekdays."
NEW = "Jamie went back to uni, so Bramble's got a new walker, Priti. She does 1pm and sends the best photos."


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    instance = FakeOpenAIServer().start()
    yield instance
    instance.stop()


def open_memory(store_url: str, embedder: Embedder, server: FakeOpenAIServer, **settings: Any) -> Memory:
    llm = OpenAICompatLLM(base_url=server.url, model="fake", timeout_s=2, max_retries=1)
    config = EngramConfig(url=store_url, llm=LLMConfig(base_url=None), guard_consensus=False, **settings)
    instance = Memory(config=config, embedder=embedder, llm=llm)
    instance.reset()
    return instance


@pytest.fixture
def memory(store_url: str, embedder: Embedder, server: FakeOpenAIServer) -> Iterator[Memory]:
    instance = open_memory(store_url, embedder, server, read_time_llm=True)
    yield instance
    instance.close()


def walker_changed(memory: Memory) -> tuple[str, str]:
    said = []
    for text, when in ((OLD, "2023-02-10T09:00:00Z"), ("Can you give me a quick curry recipe?", "2023-09-01T19:00:00Z"),
                       (NEW, "2024-06-20T18:00:00Z")):
        message = {"role": "user", "name": "Beth", "content": text}
        said.append(str(memory.add(message, user_id="beth", timestamp=when, infer=False)["results"][0]["id"]))
    return said[0], said[2]


def first(memory: Memory, question: str) -> str:
    return str(memory.search(question, user_id="beth", reference_date="2024-09-01")["results"][0]["id"])


def judged(label: str) -> Reply:
    return Reply.json({"judgements": [{"pair": "p1", "label": label}]})


def test_the_llm_decides_which_statement_holds_now(memory: Memory, server: FakeOpenAIServer) -> None:
    old, new = walker_changed(memory)
    server.queue(judged("both_hold"))
    assert first(memory, "Who walks my dog?") == old, "the LLM says the older still holds"
    prompt = server.chat_requests[-1].body["messages"][-1]["content"]
    assert "<question>Who walks my dog?</question>" in prompt and "(asks about the present)" in prompt
    assert f"[p1] older: (2023-02-10, Beth) {OLD}" in prompt and f"newer: (2024-06-20, Beth) {NEW}" in prompt
    assert "Today's date: 2024-09-01" in prompt
    server.queue(judged("replaced"), judged("replaced"))
    assert first(memory, "Who walks my dog?") == new
    assert first(memory, "Who was my dog walker before Priti?") == old
    assert server.chat_calls == 3, "one call per question with a pair"


def test_a_failed_or_partial_reply_leaves_the_decision_to_the_offline_models(memory: Memory,
                                                                             server: FakeOpenAIServer) -> None:
    _, new = walker_changed(memory)
    server.queue(*[Reply.text("I cannot tell, sorry.")] * 4)
    assert first(memory, "Who walks my dog?") == new, "the shipped models find the change"
    server.reset()
    server.queue(Reply.json({"judgements": [{"pair": "p7", "label": "both_hold"}]}))
    assert first(memory, "Who walks my dog?") == new, "a judgement of no pair shown is ignored"
    server.reset()
    server.queue(Reply(status=500), Reply(status=500), Reply(status=500))
    assert first(memory, "Who walks my dog?") == new


def test_unrelated_moves_nothing_and_other_questions_ask_nothing(memory: Memory, server: FakeOpenAIServer) -> None:
    old, new = walker_changed(memory)
    server.queue(judged("unrelated"))
    ranked = [hit["id"] for hit in memory.search("Who walks my dog?", user_id="beth",
                                                  reference_date="2024-09-01")["results"]]
    assert {old, new} <= set(ranked)
    calls = server.chat_calls
    memory.search("Who was my dog walker in 2023?", user_id="beth", reference_date="2024-09-01")
    assert server.chat_calls == calls, "a question about how things were (not now, not before) asks nothing"


def test_off_by_default_and_without_an_llm(store_url: str, embedder: Embedder, server: FakeOpenAIServer) -> None:
    memory = open_memory(store_url, embedder, server)
    assert memory.config.read_time_llm is False
    _, new = walker_changed(memory)
    assert first(memory, "Who walks my dog?") == new
    assert server.chat_calls == 0
    memory.close()
    offline = Memory(config=EngramConfig(url=store_url, llm=LLMConfig(base_url=None), read_time_llm=True),
                     embedder=embedder)
    assert first(offline, "Who walks my dog?") == new, "no LLM: the offline models decide"
    offline.close()


def test_the_environment_turns_it_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENGRAM_READ_TIME_LLM", "true")
    assert EngramConfig().read_time_llm is True
    with Memory.from_config({"read_time_llm": False, "path": str(tmp_path / "a.db")}) as memory:
        assert memory.config.read_time_llm is False
