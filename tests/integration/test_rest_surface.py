"""The REST surface under load and bad input (issues 12 and 13): a slow request does not hold up the
others, unreadable bodies are ValidationErrors, JSON without a JSON content type is read when that
is safe, unknown ids are 404 for every key, and search hits carry the same fields as ``get``."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from mcp.server.mcpserver.exceptions import ToolError

from engram import Memory
from engram.embed.base import Embedder
from engram.server.mcp import build_mcp_server
from engram.server.rest import create_app
from engram.server.runtime import BackgroundServer
from support.service import Service, running_service


@pytest.fixture
def service(tmp_path: Path, embedder: Embedder) -> Iterator[Service]:
    memory = Memory(path=str(tmp_path / "rest.db"), embedder=embedder)
    try:
        with running_service(memory, f"sqlite:///{tmp_path / 'rest.db'}") as running:
            yield running
    finally:
        memory.close()


def _in_progress(client: httpx.Client) -> int:
    metrics = client.get("/metrics").text
    line = next(line for line in metrics.splitlines() if line.startswith("engram_http_requests_in_progress "))
    return int(float(line.split()[1]))


def test_a_slow_request_does_not_hold_up_health_or_other_tenants(service: Service) -> None:
    service.memory.add("Bob keeps his bicycle in the shed", user_id="bob", infer=False)
    messages = [{"role": "user", "content": f"note {i}: the quarterly report mentions warehouse shelf {i} "
                                            f"and the delivery schedule for route {i % 17}"} for i in range(400)]
    finished: dict[str, float] = {}
    outcome: dict[str, int] = {}

    def slow_add() -> None:
        with service.http("alice") as alice:
            response = alice.post("/v1/memories", json={"messages": messages, "infer": False}, timeout=600)
        finished["add"] = time.monotonic()
        outcome["add"] = response.status_code

    worker = threading.Thread(target=slow_add)
    worker.start()
    with service.http("bob") as bob:
        while _in_progress(bob) < 2 and "add" not in finished:  # this /metrics request and the add
            time.sleep(0.01)
        assert "add" not in finished, "the add finished before the other requests were sent; make it bigger"
        assert bob.get("/healthz").status_code == 200
        finished["healthz"] = time.monotonic()
        hits = bob.post("/v1/memories/search", json={"query": "where is the bicycle"}).json()["results"]
        finished["search"] = time.monotonic()
    worker.join()
    assert hits and hits[0]["user_id"] == "bob"
    assert outcome["add"] == 200
    assert finished["healthz"] < finished["add"] and finished["search"] < finished["add"]


def test_routes_that_use_the_memory_run_in_worker_threads(tmp_path: Path, embedder: Embedder) -> None:
    with Memory(path=str(tmp_path / "r.db"), embedder=embedder) as memory:
        app = create_app(memory, auth=False)
    routes = [route for route in app.routes if isinstance(route, APIRoute) and route.path.startswith("/v1")]
    assert len(routes) >= 10
    for route in routes:  # FastAPI runs plain functions in its thread pool, coroutines on the event loop
        assert not inspect.iscoroutinefunction(route.endpoint), route.path


def _problem(response: httpx.Response, status: int, error: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and body["status"] == status, body
    return body


def test_unreadable_bodies_are_validation_errors(service: Service) -> None:
    with service.http("alice") as alice:
        headers = {"content-type": "application/json"}
        bad_utf8 = alice.post("/v1/memories", content=b'{"messages": "caf\xe9 \xff"}', headers=headers)
        assert "UTF-8" in _problem(bad_utf8, 400, "ValidationError")["detail"]
        deep = b'{"messages": "x", "metadata": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
        too_deep = alice.post("/v1/memories", content=deep, headers=headers)
        assert "nested" in _problem(too_deep, 400, "ValidationError")["detail"]
        not_json = alice.post("/v1/memories", content=b"{messages: x}", headers=headers)
        _problem(not_json, 422, "ValidationError")


def test_json_without_a_json_content_type_is_read_when_a_key_is_sent(service: Service) -> None:
    body = json.dumps({"messages": "I moved to Lisbon in March", "infer": False}).encode()
    with service.http("alice") as alice:
        for content_type in (None, "application/x-www-form-urlencoded", "text/plain"):  # none, curl -d, browsers
            headers = {"content-type": content_type} if content_type else {}
            response = alice.post("/v1/memories", content=body, headers=headers)  # httpx adds no content type
            assert response.status_code == 200, (content_type, response.text)
        search = alice.post("/v1/memories/search", content=json.dumps({"query": "Lisbon"}).encode())
        assert search.status_code == 200 and search.json()["results"]


def test_without_a_key_the_content_type_must_say_json(tmp_path: Path, embedder: Embedder) -> None:
    with Memory(path=str(tmp_path / "open.db"), embedder=embedder) as memory, \
            BackgroundServer(create_app(memory, auth=False)) as server, httpx.Client(base_url=server.url) as http:
        body = json.dumps({"messages": "hello", "user_id": "a", "infer": False}).encode()
        refused = http.post("/v1/memories", content=body, headers={"content-type": "text/plain"})
        assert "Content-Type: application/json" in _problem(refused, 422, "ValidationError")["hint"]
        accepted = http.post("/v1/memories", content=body, headers={"content-type": "application/json"})
        assert accepted.status_code == 200


def test_unknown_id_history_is_404_for_every_key(service: Service) -> None:
    for who in ("alice", "admin"):
        with service.http(who) as client:
            _problem(client.get("/v1/memories/no-such-id/history"), 404, "NotFoundError")


def test_search_hits_show_the_same_fields_as_get(service: Service) -> None:
    added = service.memory.add("I play the cello", user_id="alice", infer=False)["results"][0]["id"]
    got = service.memory.get(added)
    assert any(value is None for value in got.values()), "the comparison needs a memory with null fields"
    hit = service.memory.search("cello", user_id="alice")["results"][0]
    assert set(hit) == set(got) | {"score"}
    explained = service.memory.search("cello", user_id="alice", explain=True)["results"][0]
    assert set(explained) == set(got) | {"score", "explain"}
    with service.http("alice") as alice:
        over_rest = alice.post("/v1/memories/search", json={"query": "cello"}).json()["results"][0]
        assert set(over_rest) == set(alice.get(f"/v1/memories/{added}").json()) | {"score"}


def test_mcp_tools_take_the_text_as_text_and_accept_content(tmp_path: Path, embedder: Embedder) -> None:
    from engram.models import Scope

    with Memory(path=str(tmp_path / "mcp.db"), embedder=embedder) as memory:
        server = build_mcp_server(memory, Scope(user_id="alice"))

        async def exercise() -> list[dict]:
            schemas = {tool.name: tool.input_schema["properties"] for tool in await server.list_tools()}
            assert "text" in schemas["add_memory"] and "text" in schemas["update_memory"]
            results = []
            for tool, arguments in (("add_memory", {"text": "I keep bees"}), ("add_memory", {"content": "I fish"})):
                results.append((await server.call_tool(tool, arguments)).structured_content)
            memory_id = results[0]["results"][0]["id"]
            for arguments in ({"memory_id": memory_id, "text": "I keep two hives"},
                              {"memory_id": memory_id, "content": "I keep three hives"}):
                results.append((await server.call_tool("update_memory", arguments)).structured_content)
            with pytest.raises(ToolError, match="text"):
                await server.call_tool("add_memory", {"text": "a", "content": "b"})
            return results

        results = asyncio.run(exercise())
        assert [r["results"][0]["memory"] for r in results[:2]] == ["I keep bees", "I fish"]
        assert memory.get(results[0]["results"][0]["id"])["memory"] == "I keep three hives"
