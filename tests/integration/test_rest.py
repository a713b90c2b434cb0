"""The REST API on a real uvicorn server (127.0.0.1, free port) over each backend: every route,
tenant isolation through every endpoint, admin-only operations, limits, problem details, metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from engram import Memory
from engram.embed.base import Embedder
from engram.errors import ConfigurationError
from engram.llm import OpenAICompatLLM
from engram.server.rest import ServerLimits, create_app
from engram.server.runtime import BackgroundServer, check_bind, is_loopback
from support.fake_openai import FakeOpenAIServer, Reply
from support.service import Service, running_service

PROBLEM_KEYS = {"type", "title", "status", "detail", "error", "code", "field", "hint", "instance"}


@pytest.fixture
def service(memory: Memory, store_url: str) -> Iterator[Service]:
    with running_service(memory, store_url) as running:
        yield running


def problem(response: httpx.Response, status: int, error: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status and body["error"] == error and body["type"].startswith("urn:engram:error:")
    if field is not None:
        assert body["field"] == field, body
    return body


def test_every_route_round_trip(service: Service) -> None:
    with service.http("alice") as alice:
        added = alice.post("/v1/memories", json={
            "messages": [{"role": "user", "content": "I play the cello in a quartet", "name": "Alice"},
                         {"role": "user", "content": "My sister lives in Porto"}],
            "timestamp": "2024-03-02T09:15:00Z", "metadata": {"channel": "chat"}}).json()
        assert [event["event"] for event in added["results"]] == ["ADD", "ADD"]
        cello = added["results"][0]["id"]

        hits = alice.post("/v1/memories/search", json={"query": "musical instrument", "limit": 1}).json()
        assert hits["results"][0]["id"] == cello and "abstain" in hits and "confidence" in hits

        got = alice.get(f"/v1/memories/{cello}").json()
        assert got == service.memory.get(cello)
        assert got["user_id"] == "alice" and got["metadata"] == {"channel": "chat"}

        listed = alice.get("/v1/memories", params={"filters": json.dumps({"channel": "chat"})}).json()
        assert listed["total"] == 2 and {item["id"] for item in listed["results"]} >= {cello}

        updated = alice.put(f"/v1/memories/{cello}", json={"text": "I play the viola in a quartet"}).json()
        assert updated["memory"] == "I play the viola in a quartet"
        events = alice.get(f"/v1/memories/{cello}/history").json()
        assert [e["event"] for e in events] == ["ADD", "UPDATE"]
        assert events[1]["old_memory"] == "I play the cello in a quartet"

        assert alice.delete(f"/v1/memories/{cello}").json()["id"] == cello
        problem(alice.get(f"/v1/memories/{cello}"), 404, "NotFoundError", "memory_id")
        assert [e["event"] for e in alice.get(f"/v1/memories/{cello}/history").json()][-1] == "DELETE"

        wiped = alice.delete("/v1/memories", params={"user_id": "alice"}).json()
        assert wiped["deleted_memories"] == 1
        assert alice.get("/v1/memories").json()["total"] == 0

        problem(alice.post("/v1/answer", json={"question": "What do I play?"}), 503, "FeatureUnavailableError", "llm")
    with service.http(None) as anonymous:
        health = anonymous.get("/healthz").json()
        assert health["status"] == "ok" and health["auth"] is True and health["llm"] is False
        assert "/v1/memories/search" in anonymous.get("/openapi.json").json()["paths"]
        assert anonymous.get("/docs").status_code == 200
        assert "engram_http_requests_total" in anonymous.get("/metrics").text


def test_keys_isolate_tenants_through_every_endpoint(service: Service) -> None:
    secret = "Bob's bank PIN is 4921qz"  # "qz": never part of a hex id or hash in a response
    bob_id = service.memory.add(secret, user_id="bob")["results"][0]["id"]
    planner_id = service.memory.add("planner note for alice", user_id="alice", agent_id="planner")["results"][0]["id"]
    alice_id = service.memory.add("alice's own note", user_id="alice")["results"][0]["id"]
    with service.http("alice") as alice:
        refused = [
            (alice.get(f"/v1/memories/{bob_id}"), 404),
            (alice.put(f"/v1/memories/{bob_id}", json={"text": "hijacked"}), 404),
            (alice.delete(f"/v1/memories/{bob_id}"), 404),
            (alice.get(f"/v1/memories/{bob_id}/history"), 404),
            (alice.get("/v1/memories", params={"user_id": "bob"}), 403),
            (alice.get("/v1/memories", params={"filters": json.dumps({"user_id": "bob"})}), 403),
            (alice.post("/v1/memories/search", json={"query": "bank PIN", "user_id": "bob"}), 403),
            (alice.post("/v1/memories/search", json={"query": "PIN", "filters": {"AND": [{"user_id": "bob"}]}}), 403),
            (alice.post("/v1/memories", json={"messages": "planted", "user_id": "bob"}), 403),
            (alice.delete("/v1/memories", params={"user_id": "bob"}), 403),
            (alice.post("/v1/answer", json={"question": "PIN?", "user_id": "bob"}), 503),
        ]
        for response, status in refused:
            assert response.status_code == status, response.text
            assert "4921qz" not in response.text
        own = alice.post("/v1/memories/search", json={"query": "bank PIN 4921qz", "limit": 50}).json()
        assert "4921qz" not in json.dumps(own) and all(hit["user_id"] == "alice" for hit in own["results"])
        assert {item["id"] for item in alice.get("/v1/memories").json()["results"]} == {planner_id, alice_id}
    with service.http("alice-planner") as planner:
        assert planner.get(f"/v1/memories/{alice_id}").status_code == 404
        assert [item["id"] for item in planner.get("/v1/memories").json()["results"]] == [planner_id]
        assert planner.get("/v1/memories", params={"agent_id": "other"}).status_code == 403
    assert service.memory.get(bob_id)["memory"] == secret
    assert [e["event"] for e in service.memory.history(bob_id)] == ["ADD"]
    with service.http("admin") as admin:
        assert admin.get(f"/v1/memories/{bob_id}").json()["memory"] == secret
        assert admin.get("/v1/memories", params={"user_id": "bob"}).json()["total"] == 1


def test_reset_needs_an_admin_key(service: Service) -> None:
    service.memory.add("keep me", user_id="bob")
    with service.http("alice") as alice:
        problem(alice.post("/v1/reset"), 403, "PermissionDeniedError")
    assert service.memory.get_all(user_id="bob")["total"] == 1
    with service.http("admin") as admin:
        assert admin.post("/v1/reset").status_code == 200
        problem(admin.get("/v1/memories"), 400, "ScopeMissingError", "user_id")
    assert service.memory.get_all(user_id="bob")["total"] == 0


def test_missing_unknown_and_revoked_keys_get_401(service: Service) -> None:
    with service.http(None) as anonymous:
        response = anonymous.get("/v1/memories")
        problem(response, 401, "AuthenticationError", "authorization")
        assert response.headers["www-authenticate"].startswith("Bearer")
        problem(anonymous.get("/v1/memories", headers={"Authorization": "Bearer egk_not-a-key"}), 401,
                "AuthenticationError")
        assert anonymous.get("/v1/memories", headers={"X-API-Key": service.tokens["bob"]}).status_code == 200
    service.keys.revoke(service.key_ids["bob"])
    with service.http("bob") as bob:
        problem(bob.get("/v1/memories"), 401, "AuthenticationError")


def test_errors_are_problem_details_naming_the_field(service: Service) -> None:
    with service.http("alice") as alice:
        problem(alice.post("/v1/memories/search", json={"limit": 3}), 422, "ValidationError", "query")
        problem(alice.post("/v1/memories/search", json={"query": "   "}), 422, "ValidationError", "query")
        problem(alice.post("/v1/memories/search", json={"query": "x", "limit": 0}), 422, "ValidationError", "limit")
        body = problem(alice.post("/v1/memories", json={"messages": "hi", "userid": "x"}), 422, "ValidationError",
                       "userid")
        assert body["errors"][0]["type"] == "extra_forbidden"
        problem(alice.post("/v1/memories", content=b"{not json", headers={"content-type": "application/json"}),
                422, "ValidationError")
        problem(alice.post("/v1/memories", json={"messages": [{"role": "user"}]}), 422, "ValidationError",
                "messages[0].content")
        problem(alice.post("/v1/memories", json={"messages": "x", "timestamp": "yesterday-ish"}), 422,
                "ValidationError", "timestamp")
        problem(alice.get("/v1/memories", params={"filters": "{bad"}), 422, "ValidationError", "filters")
        problem(alice.get("/v1/memories", params={"filters": json.dumps({"x": {"between": 1}})}), 422, "FilterError")
        problem(alice.get("/v1/memories/does-not-exist"), 404, "NotFoundError", "memory_id")
        problem(alice.get("/v1/nothing-here"), 404, "NotFoundError")
        problem(alice.patch("/v1/memories"), 405, "EngramError")


def test_pagination(service: Service) -> None:
    service.memory.add([f"note number {i}" for i in range(25)], user_id="alice")
    with service.http("alice") as alice:
        pages = [alice.get("/v1/memories", params={"limit": 10, "offset": offset}).json() for offset in (0, 10, 20)]
        assert [len(page["results"]) for page in pages] == [10, 10, 5]
        assert all(page["total"] == 25 for page in pages)
        assert len({item["id"] for page in pages for item in page["results"]}) == 25
        problem(alice.get("/v1/memories", params={"limit": 1001}), 422, "ValidationError", "limit")
        problem(alice.get("/v1/memories", params={"offset": -1}), 422, "ValidationError", "offset")
        problem(alice.post("/v1/memories/search", json={"query": "note", "limit": 5000}), 422, "ValidationError",
                "limit")


def test_request_body_limit_413(memory: Memory, store_url: str) -> None:
    with running_service(memory, store_url, limits=ServerLimits(max_body_bytes=4096, rate_per_second=0)) as service, \
            service.http("alice") as alice:
        big = {"messages": "x" * 10_000}
        problem(alice.post("/v1/memories", json=big), 413, "PayloadTooLargeError", "body")

        def chunks() -> Iterator[bytes]:
            yield b'{"messages": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}'

        problem(alice.post("/v1/memories", content=chunks(), headers={"content-type": "application/json"}), 413,
                "PayloadTooLargeError")
        assert alice.post("/v1/memories", json={"messages": "small"}).status_code == 200
    assert memory.get_all(user_id="alice")["total"] == 1


def test_rate_limit_429_per_key(memory: Memory, store_url: str) -> None:
    with running_service(memory, store_url, limits=ServerLimits(rate_per_second=0.5, burst=3)) as service, \
            service.http("alice") as alice, service.http("bob") as bob:
        statuses = [alice.get("/v1/memories").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = alice.get("/v1/memories")
        problem(limited, 429, "RateLimitError")
        assert int(limited.headers["retry-after"]) >= 1
        assert bob.get("/v1/memories").status_code == 200


def test_metrics_count_requests_by_route_and_status(service: Service) -> None:
    with service.http("alice") as alice:
        for _ in range(3):
            alice.post("/v1/memories", json={"messages": "count me"})
        alice.get("/v1/memories/missing-id")
    with service.http(None) as anonymous:
        anonymous.get("/v1/memories")
        text = anonymous.get("/metrics").text
    assert 'engram_http_requests_total{method="POST",route="/v1/memories",status="200"} 3' in text
    assert 'engram_http_requests_total{method="GET",route="/v1/memories/{memory_id}",status="404"} 1' in text
    assert 'engram_http_requests_total{method="GET",route="/v1/memories",status="401"} 1' in text
    assert 'engram_http_request_duration_seconds_bucket{method="POST",route="/v1/memories",status="200",le="+Inf"} 3' \
        in text
    assert "# TYPE engram_http_request_duration_seconds histogram" in text


def test_no_auth_only_on_loopback(memory: Memory) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("::")
    with pytest.raises(ConfigurationError) as refused:
        check_bind("0.0.0.0", auth=False)
    assert refused.value.field == "host"
    check_bind("0.0.0.0", auth=True)
    with pytest.raises(ConfigurationError):
        create_app(memory, keys=None, auth=True)
    with BackgroundServer(create_app(memory, auth=False)) as server, httpx.Client(base_url=server.url) as http:
        assert http.post("/v1/memories", json={"messages": "open", "user_id": "u"}).status_code == 200
        assert http.get("/v1/memories", params={"user_id": "u"}).json()["total"] == 1


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer().start()
    yield server
    server.stop()


def test_answer_with_an_llm_stays_in_the_key_scope(memory: Memory, store_url: str, embedder: Embedder,
                                                   fake_openai: FakeOpenAIServer) -> None:
    llm = OpenAICompatLLM(base_url=fake_openai.url, model="fake", timeout_s=5, max_retries=0)
    answering = Memory(url=store_url, embedder=embedder, llm=llm)
    cello = answering.add("I play the cello in a quartet", user_id="alice", infer=False)["results"][0]["id"]
    answering.add("Bob's bank PIN is 4921qz", user_id="bob", infer=False)
    fake_openai.queue(Reply.json({"answer": "The cello.", "citations": ["m1"], "abstain": False}))
    try:
        with running_service(answering, store_url) as service, service.http("alice") as alice:
            assert alice.get("/healthz").json()["llm"] is True
            problem(alice.post("/v1/answer", json={"question": "Bob's PIN?", "user_id": "bob"}), 403,
                    "PermissionDeniedError", "user_id")
            reply = alice.post("/v1/answer", json={"question": "Which instrument do I play?", "limit": 5}).json()
    finally:
        answering.close()
    assert reply["answer"] == "The cello." and not reply["abstained"]
    assert [hit["id"] for hit in reply["citations"]] == [cello]
    assert fake_openai.chat_calls == 1
    assert "4921qz" not in json.dumps(fake_openai.chat_requests[0].body)
