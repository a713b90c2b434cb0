"""The LLM write and read paths through ``Memory``, against a real local OpenAI-compatible server
that each test scripts (good, malformed and failing replies)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from engram import Memory
from engram.config import EngramConfig, LLMConfig
from engram.embed.base import Embedder
from engram.errors import ConfigurationError
from engram.llm.openai_compat import OpenAICompatLLM
from support.fake_openai import FakeOpenAIServer, Reply

SESSION = [
    {"role": "user", "name": "Maya", "content": "I moved to Lisbon last week."},
    {"role": "assistant", "content": "How exciting! Do you like it?"},
    {"role": "user", "name": "Maya", "content": "Yes. Also I'm vegetarian now."},
]


def facts(*items: tuple[str, list[str]]) -> Reply:
    return Reply.json({"facts": [{"text": text, "kind": "fact", "speaker": "Maya", "sources": sources,
                                  "keys": ["Lisbon"]} for text, sources in items]})


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    instance = FakeOpenAIServer().start()
    yield instance
    instance.stop()


@pytest.fixture
def memory(store_url: str, embedder: Embedder, server: FakeOpenAIServer) -> Iterator[Memory]:
    llm = OpenAICompatLLM(base_url=server.url, model="fake", timeout_s=2, max_retries=1)
    instance = Memory(url=store_url, embedder=embedder, llm=llm)
    instance.reset()
    yield instance
    instance.close()


def test_infer_extracts_facts_with_sources_and_fact_keys(memory: Memory, server: FakeOpenAIServer) -> None:
    server.queue(Reply.json({"judgements": [{"record": "r1", "label": "consistent", "confidence": 0.9}]}),
                 facts(("Maya moved to Lisbon", ["m1"]), ("Maya is vegetarian", ["m3"])))
    result = memory.add(SESSION, user_id="maya", timestamp="2024-03-02T10:00:00Z")
    assert result["infer"] == "llm" and result["pending"] == []
    added = [r for r in result["results"] if r["kind"] == "fact"]
    assert [r["memory"] for r in added] == ["Maya moved to Lisbon", "Maya is vegetarian"]
    assert added[0]["episode_ids"] == [result["episodes"][0]]
    assert result["usage"]["by_name"] == {"consensus": 1, "extract": 1}, \
        "the assistant turn is checked by the guard; no stored facts yet: no consolidation call"
    fact = memory.get(added[1]["id"])
    assert fact["sources"][0]["id"] == result["episodes"][2]
    turn = memory.search("vegetarian", user_id="maya", filters={"kind": "episode"}, limit=1)["results"][0]
    assert turn["memory"] == SESSION[2]["content"] and "vegetarian" in turn["index_keys"]
    assert [e["extraction"] for e in memory.episodes(user_id="maya")] == ["done"] * 3


def test_update_keeps_old_version_and_history(memory: Memory, server: FakeOpenAIServer) -> None:
    server.queue(facts(("Maya lives in Lisbon", ["m1"])))
    first = memory.add(SESSION[:1], user_id="maya")
    old_id = next(r["id"] for r in first["results"] if r["kind"] == "fact")
    server.queue(facts(("Maya lives in Porto", ["m1"])),
                 Reply.json({"decisions": [{"fact": "f1", "action": "UPDATE", "target": "c1",
                                            "text": "Maya lives in Porto", "reason": "moved"}]}))
    second = memory.add("I moved to Porto.", user_id="maya")
    update = next(r for r in second["results"] if r["event"] == "UPDATE")
    assert update["previous_memory"] == "Maya lives in Lisbon"
    old = memory.get(old_id)
    assert old["valid_to"] is not None and old["metadata"]["superseded_by"] == update["id"]
    assert [e["event"] for e in memory.history(old_id)] == ["ADD", "UPDATE"]
    current = memory.search("where does Maya live", user_id="maya", filters={"kind": "fact"})["results"]
    assert [hit["memory"] for hit in current] == ["Maya lives in Porto", "Maya lives in Lisbon"]
    assert current[1]["valid_to"] is not None, "the superseded version ranks after the current one"
    assert memory.get_all(user_id="maya", filters={"kind": "fact"})["total"] == 2


def test_exact_duplicate_is_noop_without_llm_call(memory: Memory, server: FakeOpenAIServer) -> None:
    server.queue(facts(("Maya is vegetarian", ["m1"])))
    memory.add("I'm vegetarian.", user_id="maya")
    server.queue(facts(("Maya is vegetarian", ["m1"])))
    again = memory.add("Still vegetarian, by the way.", user_id="maya")
    assert [r["event"] for r in again["results"] if r["kind"] != "episode"] == ["NOOP"]
    assert server.chat_calls == 2, "the duplicate is resolved offline: no consolidation call"
    fact = memory.get_all(user_id="maya", filters={"kind": "fact"})["results"][0]
    assert len(fact["sources"]) == 2, "the new episode is attached as another source"


@pytest.mark.parametrize("failure", [
    [Reply.text("this is not json at all")] * 3,
    [Reply.error(500)] * 6,
    [Reply.timeout(3)] * 6,
    [Reply.text("")] * 3,
])
def test_llm_failure_never_loses_messages(memory: Memory, server: FakeOpenAIServer, failure: list[Reply]) -> None:
    server.queue(*failure)
    result = memory.add(SESSION, user_id="maya")
    assert sorted(result["pending"]) == sorted(result["episodes"])
    assert any("pending" in note for note in result["notes"])
    assert len(memory.episodes(user_id="maya")) == 3
    assert memory.search("Lisbon", user_id="maya")["results"], "verbatim memories are searchable anyway"
    assert server.chat_calls <= 6, "retries are bounded"
    server.reset()
    server.queue(facts(("Maya moved to Lisbon", ["m1"])))
    report = memory.maintain(user_id="maya")
    assert report["processed"] == 3 and report["still_pending"] == 0
    assert [r["memory"] for r in report["results"] if r["event"] == "ADD"] == ["Maya moved to Lisbon"]


def test_prose_wrapped_json_is_repaired(memory: Memory, server: FakeOpenAIServer) -> None:
    payload = json.dumps({"facts": [{"text": "Maya likes fado", "sources": ["m1"]}]})
    server.queue(Reply.text(f"Sure! Here you go:\n```json\n{payload}\n```\nAnything else?"))
    result = memory.add("I love fado music.", user_id="maya")
    assert [r["memory"] for r in result["results"] if r["kind"] == "fact"] == ["Maya likes fado"]


def test_answer_cites_memories_and_abstains(memory: Memory, server: FakeOpenAIServer) -> None:
    server.queue(facts(("Maya is vegetarian", ["m3"])))
    memory.add(SESSION, user_id="maya")
    server.reset()
    server.queue(Reply.json({"answer": "She is vegetarian.", "citations": ["M1"], "abstain": False}))
    reply = memory.answer("What does Maya eat?", user_id="maya")
    assert reply["answer"] == "She is vegetarian." and not reply["abstained"]
    assert len(reply["citations"]) == 1 and reply["citations"][0]["sources"]
    prompt = json.dumps(server.chat_requests[-1].body)
    assert "<memories>" in prompt or "memories" in prompt.lower()
    assert reply["usage"]["calls"] == 1
    server.queue(Reply.json({"answer": "I don't know.", "citations": [], "abstain": True}))
    assert memory.answer("What is Maya's blood type?", user_id="maya")["abstained"]


def test_answer_without_llm_is_a_configuration_error(tmp_path: Path, embedder: Embedder) -> None:
    with Memory(path=str(tmp_path / "x.db"), embedder=embedder) as memory, pytest.raises(ConfigurationError):
        memory.answer("anything?", user_id="u")


def test_llm_configured_from_environment(tmp_path: Path, server: FakeOpenAIServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAM_LLM_BASE_URL", server.url)
    monkeypatch.setenv("ENGRAM_LLM_MODEL", "fake")
    memory = Memory(config=EngramConfig(path=str(tmp_path / "env.db"), llm=LLMConfig()))
    assert memory.llm is not None
    memory.close()
    monkeypatch.delenv("ENGRAM_LLM_MODEL")
    with pytest.raises(ConfigurationError, match="model"):
        Memory(config=EngramConfig(path=str(tmp_path / "env2.db"), llm=LLMConfig()))


CONCURRENT_WRITER = textwrap.dedent("""
    import sys
    from engram import Memory
    from engram.embed.onnx_dynamic import OnnxDynamicInt8Embedder
    from engram.llm.openai_compat import OpenAICompatLLM
    memory = Memory(path=sys.argv[1], embedder=OnnxDynamicInt8Embedder(),
                    llm=OpenAICompatLLM(base_url=sys.argv[2], model="fake"))
    result = memory.add("I am allergic to peanuts.", user_id="maya")
    print(sorted(r["event"] for r in result["results"] if r["kind"] != "episode"))
""")


def test_concurrent_processes_adding_the_same_fact_store_it_once(tmp_path: Path, embedder: Embedder) -> None:
    server = FakeOpenAIServer().start()
    try:
        server.default = facts(("Maya is allergic to peanuts", ["m1"]))
        db = tmp_path / "c.db"
        Memory(path=str(db), embedder=embedder).close()
        writers = [subprocess.Popen([sys.executable, "-c", CONCURRENT_WRITER, str(db), server.url],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        outputs = [writer.communicate(timeout=300) for writer in writers]
        assert all(writer.returncode == 0 for writer in writers), outputs
        with Memory(path=str(db), embedder=embedder) as memory:
            stored = memory.get_all(user_id="maya", filters={"kind": "fact"})
            assert stored["total"] == 1, "one fact, however many writers raced"
            assert len(stored["results"][0]["sources"]) == 3
    finally:
        server.stop()
