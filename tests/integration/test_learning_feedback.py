"""Feedback, strength and forgetting through the public API (Python, CLI, REST, Client), on every backend."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from engram import AsyncMemory, Memory
from engram.client import Client
from engram.errors import NotFoundError, PermissionDeniedError, ValidationError
from engram.learning.strength import BASE_STABILITY_DAYS, FORGET_THRESHOLD
from engram.timeutil import utcnow
from support.service import Service, running_service

FACTS = ["I live in Lisbon with my wife Rita", "I am allergic to peanuts", "The bus was late this morning"]


def added(memory: Memory, user: str = "ana") -> list[str]:
    return [r["id"] for r in memory.add(FACTS, user_id=user, infer=False)["results"]]


def test_feedback_is_recorded_in_history_and_strengthens(memory: Memory) -> None:
    lisbon, peanuts, _ = added(memory)
    fresh = memory.strength(lisbon)
    assert fresh["strength"] == pytest.approx(1.0, abs=1e-3) and fresh["uses"] == 0

    result = memory.feedback(lisbon, useful=True, note="answered where she lives", given_by="agent-7")
    assert result["useful"] and result["strength"] > fresh["strength"] and not result["restored"]
    event = memory.history(lisbon)[-1]
    assert event["event"] == "FEEDBACK" and event["actor"] == "feedback"
    assert event["metadata"]["useful"] is True
    assert event["metadata"]["note"] == "answered where she lives"
    assert event["metadata"]["given_by"] == "agent-7"
    assert event["created_at"]

    memory.feedback(peanuts, useful=True)
    down = memory.feedback(peanuts, useful=False, note="not relevant")
    assert down["uses"] == 0 and memory.history(peanuts)[-1]["metadata"]["useful"] is False


def test_strength_fades_with_time_unused(memory: Memory) -> None:
    lisbon, peanuts, _ = added(memory)
    memory.feedback(lisbon, useful=True)
    later = utcnow() + timedelta(days=BASE_STABILITY_DAYS)
    used, unused = memory.strength(lisbon, reference_date=later), memory.strength(peanuts, reference_date=later)
    assert unused["strength"] == pytest.approx(0.3679, abs=1e-3)  # e^-1 after one stability period
    assert used["strength"] > unused["strength"]
    assert memory.strength(peanuts, reference_date=later + timedelta(days=365))["strength"] < unused["strength"]


def test_forget_archives_weak_memories_reports_them_and_never_deletes(memory: Memory) -> None:
    lisbon, peanuts, bus = added(memory)
    memory.feedback(lisbon, useful=True)
    when = utcnow() + timedelta(days=200)

    dry = memory.forget(user_id="ana", dry_run=True, reference_date=when)
    assert dry["dry_run"] and dry["examined"] == 3 and dry["archived"] == 2
    assert {m["id"] for m in dry["memories"]} == {peanuts, bus}
    assert all(m["strength"] < FORGET_THRESHOLD and m["memory"] for m in dry["memories"])
    assert memory.get_all(user_id="ana")["total"] == 3  # nothing changed

    report = memory.forget(user_id="ana", reference_date=when)
    assert report["archived"] == 2 and not report["dry_run"]
    assert [m["id"] for m in memory.get_all(user_id="ana")["results"]] == [lisbon]
    assert memory.get_all(user_id="ana", include_archived=True)["total"] == 3
    assert memory.get(peanuts)["status"] == "archived"
    assert memory.history(peanuts)[-1]["event"] == "ARCHIVE"
    assert not [h for h in memory.search("peanut allergy", user_id="ana")["results"] if h["id"] == peanuts]
    with_archived = memory.search("peanut allergy", user_id="ana", include_archived=True)["results"]
    assert with_archived[0]["id"] == peanuts
    stats = memory.stats(user_id="ana")
    assert stats["memories_archived"] == 2 and stats["memories"] == 3

    restored = memory.feedback(peanuts, useful=True, note="needed for dinner")
    assert restored["restored"] and restored["status"] == "active"
    assert memory.search("peanut allergy", user_id="ana")["results"][0]["id"] == peanuts
    assert memory.forget(user_id="ana", dry_run=True)["archived"] == 0  # nothing is weak today


def test_forget_is_scoped_and_delete_all_removes_archived(memory: Memory) -> None:
    added(memory, "ana")
    bob = added(memory, "bob")
    when = utcnow() + timedelta(days=400)
    assert memory.forget(user_id="ana", reference_date=when)["archived"] == 3
    assert memory.get(bob[0])["status"] == "active"
    memory.delete_all(user_id="ana", filters={"kind": "episode"})
    assert memory.get_all(user_id="ana", include_archived=True)["total"] == 0


def test_bad_input_is_a_typed_error(memory: Memory) -> None:
    lisbon = added(memory)[0]
    with pytest.raises(ValidationError) as error:
        memory.feedback(lisbon, useful="yes")  # type: ignore[arg-type]
    assert error.value.field == "useful"
    with pytest.raises(ValidationError) as error:
        memory.feedback(lisbon, note="")
    assert error.value.field == "note"
    with pytest.raises(NotFoundError):
        memory.feedback("nope")
    with pytest.raises(ValidationError) as error:
        memory.forget(user_id="ana", threshold=-1)
    assert error.value.field == "threshold"
    with pytest.raises(ValidationError) as error:
        memory.search("x", user_id="ana", include_archived="yes")  # type: ignore[arg-type]
    assert error.value.field == "include_archived"
    assert len(memory.history(lisbon)) == 1  # no half-write


def test_strength_weight_ranks_strengthened_memories_first(memory: Memory) -> None:
    memory.add(["I play tennis on Mondays", "I play tennis on Fridays"], user_id="ana", infer=False)
    memory.recipe = memory.recipe.model_copy(update={"strength_weight": 1.0})
    before = [h["id"] for h in memory.search("when do I play tennis", user_id="ana")["results"]]
    loser = before[1]
    for _ in range(3):
        memory.feedback(loser, useful=True)
    after = memory.search("when do I play tennis", user_id="ana", explain=True)["results"]
    assert after[0]["id"] == loser and after[0]["explain"]["strength"] > 1


def test_async_twins(memory: Memory) -> None:
    lisbon = added(memory)[0]

    async def run() -> dict:
        async_memory = AsyncMemory(store=memory.store, embedder=memory.embedder)
        await async_memory.feedback(lisbon, useful=True)
        return await async_memory.forget(user_id="ana", dry_run=True)

    assert asyncio.run(run())["archived"] == 0
    assert memory.strength(lisbon)["uses"] == 2


@pytest.fixture
def service(memory: Memory, store_url: str) -> Iterator[Service]:
    with running_service(memory, store_url) as running:
        yield running


def test_rest_and_client(service: Service, memory: Memory) -> None:
    ana = added(memory, "alice")
    bob = added(memory, "bob")
    with Client(service.url, api_key=service.tokens["alice"]) as client:
        result = client.feedback(ana[0], useful=True, note="helpful")
        assert result["useful"] and result["given_by"] == service.key_ids["alice"]
        assert memory.history(ana[0])[-1]["metadata"]["note"] == "helpful"
        assert client.strength(ana[0])["uses"] == 2
        with pytest.raises(NotFoundError):
            client.feedback(bob[0], useful=True)
        report = client.forget(dry_run=True, reference_date=(utcnow() + timedelta(days=800)).isoformat())
        assert report["archived"] == 3 and {m["user_id"] for m in report["memories"]} == {"alice"}
        client.forget(reference_date=(utcnow() + timedelta(days=800)).isoformat())
        assert client.get_all(user_id="alice")["total"] == 0
        assert client.get_all(user_id="alice", include_archived=True)["total"] == 3
        assert client.search("peanuts", user_id="alice", include_archived=True)["results"]
        with pytest.raises(PermissionDeniedError):
            client.forget(user_id="bob")
    assert memory.get(bob[0])["status"] == "active"


def test_cli_feedback_strength_and_maintain_forget(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    with Memory(path=db) as memory:
        ids = added(memory)

    def run(*args: str) -> dict:
        done = subprocess.run([sys.executable, "-m", "engram.cli", *args, "--db", db, "--json"],
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert run("feedback", ids[0], "--useful", "--note", "good", "--given-by", "me")["uses"] == 2
    assert run("feedback", ids[1], "--not-useful")["useful"] is False
    assert run("strength", ids[0])["uses"] == 2
    report = run("maintain", "--forget", "--dry-run", "--threshold", "1.5", "-u", "ana")
    assert report["dry_run"] and report["archived"] == 2
    assert run("list", "-u", "ana")["total"] == 3
    assert run("maintain", "--forget", "--threshold", "1.5", "-u", "ana")["archived"] == 2
    assert run("list", "-u", "ana")["total"] == 1
    assert run("list", "-u", "ana", "--include-archived")["total"] == 3


def test_an_archived_memory_recalled_and_used_comes_back(memory: Memory) -> None:
    lisbon, peanuts, bus = added(memory)
    memory.forget(user_id="ana", reference_date=utcnow() + timedelta(days=400))
    assert memory.get(peanuts)["status"] == "archived"
    memory.search("peanut allergy", user_id="ana", include_archived=True)
    assert memory.get(peanuts)["status"] == "archived", "found is not used: a plain search records no use"
    memory.recipe = memory.recipe.model_copy(update={"reinforce": True})
    hits = memory.search("peanut allergy", user_id="ana", include_archived=True, limit=1)["results"]
    assert hits[0]["id"] == peanuts
    assert memory.get(peanuts)["status"] == "active" and memory.get(peanuts)["access_count"] == 1
    assert memory.history(peanuts)[-1]["actor"] == "recall"
    assert memory.get(bus)["status"] == "archived", "only what was returned comes back"
    assert lisbon
