"""Experience memory through the public API: cases stored and recalled by task similarity, lessons
distilled by a scripted LLM with citations, and the REST, Client, CLI and bench forms."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engram import Memory
from engram.bench.experience import render_markdown, run_experience
from engram.client import Client
from engram.embed.base import Embedder
from engram.errors import PermissionDeniedError, ValidationError
from engram.llm.openai_compat import OpenAICompatLLM
from support.fake_openai import FakeOpenAIServer, Reply
from support.service import running_service


def record(memory: Memory, user: str = "bot") -> dict[str, str]:
    failed = memory.add_experience(task="Deploy the web app to staging", outcome="failure",
                                   steps=["restart the web server"], user_id=user, metadata={"ticket": 12})
    worked = memory.add_experience(task="Deploy the web app to staging", outcome="success",
                                   steps=["run the migration", "deploy"], lesson="migrate before deploying",
                                   user_id=user)
    dinner = memory.add_experience(task="Book a table for dinner", outcome="success", steps=["call them"],
                                   user_id=user)
    return {"failed": failed["id"], "worked": worked["id"], "dinner": dinner["id"]}


def test_cases_are_recalled_by_task_similarity_with_outcome_steps_and_lesson(memory: Memory) -> None:
    ids = record(memory)
    found = memory.search_experiences("push the website to the staging environment", user_id="bot")
    assert found["lesson"] is None  # offline: cases as they are
    top = found["results"][:2]
    assert {case["id"] for case in top} == {ids["failed"], ids["worked"]}
    assert found["results"][-1]["id"] == ids["dinner"] and found["results"][-1]["score"] < top[1]["score"]
    worked = next(case for case in top if case["outcome"] == "success")
    assert worked["steps"] == ["run the migration", "deploy"] and worked["lesson"] == "migrate before deploying"
    failed = next(case for case in top if case["outcome"] == "failure")
    assert failed["metadata"] == {"ticket": 12} and failed["lesson"] is None

    only_failures = memory.search_experiences("deploy the site", user_id="bot", outcome="failure")["results"]
    assert [case["id"] for case in only_failures] == [ids["failed"]]
    assert memory.search_experiences("deploy the site", user_id="other")["results"] == []
    item = memory.get(ids["worked"])
    assert item["kind"] == "experience" and item["metadata"]["outcome"] == "success"
    assert memory.get_all(user_id="bot", filters={"kind": "experience"})["total"] == 3
    assert memory.history(ids["worked"])[0]["event"] == "ADD"


def test_bad_cases_are_typed_errors_and_nothing_is_written(memory: Memory) -> None:
    for arguments, field in (({"task": "", "outcome": "success"}, "task"),
                             ({"task": "x", "outcome": "maybe"}, "outcome"),
                             ({"task": "x", "outcome": "success", "steps": "one"}, "steps"),
                             ({"task": "x", "outcome": "success", "steps": [""]}, "steps"),
                             ({"task": "x", "outcome": "success", "lesson": 3}, "lesson"),
                             ({"task": "x", "outcome": "success", "metadata": {"outcome": "x"}}, "metadata")):
        with pytest.raises(ValidationError) as error:
            memory.add_experience(**arguments, user_id="bot")  # type: ignore[arg-type]
        assert error.value.field == field
    with pytest.raises(ValidationError) as error:
        memory.search_experiences("x", user_id="bot", outcome="meh")
    assert error.value.field == "outcome"
    assert memory.get_all(user_id="bot")["total"] == 0


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer().start()
    yield server
    server.stop()


def test_lessons_are_distilled_with_citations(store_url: str, embedder: Embedder,
                                              fake_openai: FakeOpenAIServer) -> None:
    llm = OpenAICompatLLM(base_url=fake_openai.url, model="fake", timeout_s=5, max_retries=0)
    with Memory(url=store_url, embedder=embedder, llm=llm) as memory:
        memory.reset()
        fake_openai.queue(Reply.json({"lesson": "Restarting does not deploy anything.", "citations": ["c1"]}))
        failed = memory.add_experience(task="Deploy the web app", outcome="failure", steps=["restart"], user_id="bot")
        assert failed["lesson"] == "Restarting does not deploy anything." and failed["lesson_source"] == "llm"
        assert failed["lesson_cites"] == [failed["id"]]
        given = memory.add_experience(task="Deploy the web app", outcome="success", steps=["migrate"],
                                      lesson="Migrate first.", user_id="bot")
        assert given["lesson_source"] == "given" and fake_openai.chat_calls == 1

        fake_openai.queue(Reply.json({"lesson": "Migrate, never just restart.", "citations": ["c1", "c2", "c9"]}))
        found = memory.search_experiences("deploy the app", user_id="bot")
        assert found["lesson"]["text"] == "Migrate, never just restart."
        assert set(found["lesson"]["cites"]) == {failed["id"], given["id"]}
        assert "restart" in json.dumps(fake_openai.chat_requests[-1].body)

        fake_openai.queue(Reply.error(400))
        kept = memory.add_experience(task="Deploy again", outcome="success", steps=["migrate"], user_id="bot")
        assert kept["lesson"] is None and kept["notes"]
        assert memory.search_experiences("deploy", user_id="bot", distil=False)["lesson"] is None


def test_rest_client_and_cli(memory: Memory, store_url: str, tmp_path: Path) -> None:
    record(memory, "bob")
    with running_service(memory, store_url) as service, Client(service.url, api_key=service.tokens["alice"]) as c:
        added = c.add_experience(task="Renew the TLS certificate", outcome="success", steps=["certbot --dns"])
        assert added["user_id"] == "alice"
        found = c.search_experiences("refresh the HTTPS cert", limit=3)
        assert [case["id"] for case in found["results"]] == [added["id"]]
        with pytest.raises(PermissionDeniedError):
            c.search_experiences("deploy", user_id="bob")
    db = str(tmp_path / "cli.db")

    def run(*args: str) -> dict:
        done = subprocess.run([sys.executable, "-m", "engram.cli", "experience", *args, "--db", db, "--json",
                               "-u", "ana"], capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    run("add", "--task", "Water the plants", "--outcome", "failure", "--step", "use cold water", "--step", "at noon")
    found = run("search", "watering the garden plants")
    assert found["results"][0]["steps"] == ["use cold water", "at noon"]


def test_experience_bench_avoids_known_failures(tmp_path: Path, embedder: Embedder) -> None:
    results = run_experience(tmp_path, rounds=4, seed=3, embedder=embedder)
    overall = results["overall"]
    assert overall["with"]["repeat_failure"] == 0.0
    assert overall["with"]["success"] > overall["without"]["success"]
    assert results["per_round"]["with"][-1]["success"] == 1.0
    assert "| all |" in render_markdown(results, "engram bench experience")
