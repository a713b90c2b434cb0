"""``engram.Client`` against a real server: the same calls and return shapes as ``Memory``, and
the same typed errors, rebuilt from the problem-details responses."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from engram import Memory
from engram.client import Client
from engram.errors import (
    AuthenticationError,
    FeatureUnavailableError,
    FilterError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ScopeMissingError,
    StorageError,
    ValidationError,
)
from engram.server.rest import ServerLimits
from support.service import Service, running_service


@pytest.fixture
def service(memory: Memory, store_url: str) -> Iterator[Service]:
    with running_service(memory, store_url) as running:
        yield running


def session(api: Any, user: str) -> dict[str, Any]:
    """The same calls, on ``Memory`` or ``Client``; returns what a caller would look at."""
    added = api.add([{"role": "user", "content": "I moved to Lisbon in March", "name": "Maya"},
                     {"role": "assistant", "content": "How do you like it?"}],
                    user_id=user, timestamp=datetime(2024, 3, 2, 9, 15, tzinfo=UTC), metadata={"channel": "chat"})
    first = added["results"][0]["id"]
    hits = api.search("Where does Maya live?", user_id=user, top_k=2, reference_date="2024-07-01")
    page = api.get_all(user_id=user, filters={"channel": "chat"}, limit=1, offset=1)
    updated = api.update(first, "I moved to Porto in May")
    api.update(first, metadata={"reviewed": True})
    item = api.get(first)
    history = api.history(first)
    deleted = api.delete(first)
    wiped = api.delete_all(user_id=user)
    return {
        "add": [(r["event"], r["memory"], r["kind"]) for r in added["results"]], "add_keys": sorted(added),
        "search": [h["memory"] for h in hits["results"]], "search_keys": sorted(hits),
        "hit_keys": sorted(hits["results"][0]), "page": (len(page["results"]), page["total"]),
        "update": sorted(updated), "item": (item["memory"], item["metadata"], item["sources"][0]["name"]),
        "item_keys": sorted(item), "history": [(e["event"], e["old_memory"], e["new_memory"]) for e in history],
        "history_keys": sorted(history[0]), "missing": api.get("no-such-id"),
        "delete": sorted(deleted), "delete_all": (wiped["deleted_memories"], wiped["deleted_episodes"]),
    }


def test_client_is_a_drop_in_for_memory(service: Service, memory: Memory) -> None:
    embedded = session(memory, "maya-embedded")
    with service.client("admin") as client:
        remote = session(client, "maya-remote")
        assert client.health()["status"] == "ok"
    assert remote == embedded
    assert embedded["search"][0] == "I moved to Lisbon in March"
    assert embedded["item"][:2] == ("I moved to Porto in May", {"channel": "chat", "reviewed": True})
    assert embedded["missing"] is None
    assert {"is_deleted", "updated_at", "role", "actor_id"} <= set(embedded["history_keys"])


def test_client_raises_the_same_typed_errors(service: Service, memory: Memory) -> None:
    bob_id = memory.add("bob's secret", user_id="bob")["results"][0]["id"]
    with service.client("alice") as alice:
        assert alice.get(bob_id) is None
        with pytest.raises(NotFoundError) as missing:
            alice.delete(bob_id)
        assert missing.value.field == "memory_id" and missing.value.http_status == 404
        with pytest.raises(NotFoundError):
            alice.history(bob_id)
        with pytest.raises(PermissionDeniedError) as denied:
            alice.search("secret", user_id="bob")
        assert denied.value.field == "user_id"
        with pytest.raises(ValidationError) as invalid:
            alice.search("x", limit=0)
        assert invalid.value.field == "limit"
        with pytest.raises(ValidationError) as empty_id:
            alice.get("")
        assert empty_id.value.field == "memory_id"
        with pytest.raises(FilterError):
            alice.get_all(filters={"x": {"between": 1}})
        with pytest.raises(PermissionDeniedError):
            alice.reset()
        with pytest.raises(FeatureUnavailableError) as no_llm:
            alice.answer("what is bob's secret?")
        assert no_llm.value.field == "llm" and no_llm.value.http_status == 503
        assert alice.get_all()["total"] == 0
    with service.client("admin") as admin, pytest.raises(ScopeMissingError):
        admin.get_all()
    with Client(service.url, api_key="egk_wrong") as stranger, pytest.raises(AuthenticationError):
        stranger.get_all(user_id="alice")
    assert memory.get(bob_id)["memory"] == "bob's secret"


def test_admin_client_reset(service: Service, memory: Memory) -> None:
    memory.add("something", user_id="carol")
    with service.client("admin") as admin:
        assert admin.reset() is None
    assert memory.get_all(user_id="carol")["total"] == 0


def test_rate_limit_error_carries_retry_after(memory: Memory, store_url: str) -> None:
    with running_service(memory, store_url, limits=ServerLimits(rate_per_second=0.2, burst=1)) as service, \
            service.client("alice") as alice:
        alice.get_all()
        with pytest.raises(RateLimitError) as limited:
            alice.get_all()
        assert limited.value.retry_after >= 1 and limited.value.http_status == 429


def test_unreachable_server_is_a_storage_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", api_key="egk_x", timeout=5) as client, \
            pytest.raises(StorageError) as unreachable:
        client.get_all(user_id="u")
    assert "cannot reach" in unreachable.value.message
