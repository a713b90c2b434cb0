"""Tenant isolation across concurrent processes sharing one store (a SQLite file; PostgreSQL too when
ENGRAM_TEST_PG_URL is set).

Four writer processes start together (a barrier: none begins its rounds before all are ready, so
their rounds interleave without the test timing them), each owning one scope: two users alone, and one user shared by
two agents. For a fixed number of rounds each adds records carrying its own canary string, then searches
with a query naming every canary, lists and gets, and now and then updates or deletes one of its records.
Every read is checked inside the worker: only the reader's scope, no canary of another scope (anywhere
in the returned item: text, metadata, sources, index keys); a scope's list is exactly what the worker
knows it holds. The parent asserts no leak and no error (a ``database is locked`` included) and that
afterwards every scope holds exactly the records its writer had acknowledged."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sqlite3
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engram import Memory
from engram.embed.base import Embedder

PG_URL = os.environ.get("ENGRAM_TEST_PG_URL")
# (user_id, agent_id) of each worker: two users alone, one user shared by two agents.
SCOPES: list[tuple[str, str | None]] = [("ann", None), ("ben", None), ("cyd", "planner"), ("cyd", "coder")]
TAGS = ("alpha", "bravo", "charlie", "delta")
ROUNDS = 20
WORDS = ("garden", "invoice", "guitar", "doctor", "recipe", "meeting", "password", "holiday")


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store that several processes can open: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    if not PG_URL:
        pytest.skip("ENGRAM_TEST_PG_URL is not set (CI starts PostgreSQL with .ci/postgres.sh)")
    schema = f"t_iso_{uuid.uuid4().hex[:12]}"
    yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _worker(url: str, index: int, canaries: list[str], rounds: int, start: Any, results: Any) -> None:
    """One tenant's process: runs its rounds and always reports, whatever happened."""
    report: dict[str, Any] = {"index": index, "live": {}, "leaks": [], "errors": [], "reads": 0, "writes": 0}
    try:
        _tenant(url, index, canaries, rounds, start, report)
    except BaseException as error:
        report["errors"].append(f"worker {index} crashed: {type(error).__name__}: {error}\n{traceback.format_exc()}")
    finally:
        results.put(report)


def _tenant(url: str, index: int, canaries: list[str], rounds: int, start: Any, report: dict[str, Any]) -> None:
    """One tenant's writer: writes, reads and checks its own scope; notes in ``report`` what it saw and did."""
    user, agent = SCOPES[index]
    own = canaries[index]
    same_user = {canaries[i] for i, (other, _) in enumerate(SCOPES) if other == user}
    query = "note about " + " ".join(canaries)
    live: dict[str, str] = report["live"]  # id -> acknowledged text, for this worker's scope

    def check(operation: str, items: list[dict[str, Any]], *, agent_scoped: bool) -> None:
        report["reads"] += 1
        allowed = {own} if agent_scoped else same_user
        for item in items:
            text = json.dumps(item, ensure_ascii=False)
            foreign = [canary for canary in canaries if canary not in allowed and canary in text]
            wrong_scope = item.get("user_id") != user or (agent_scoped and item.get("agent_id") != agent)
            if foreign or wrong_scope:
                report["leaks"].append({"worker": index, "operation": operation, "id": item.get("id"),
                                        "user_id": item.get("user_id"), "agent_id": item.get("agent_id"),
                                        "foreign_canaries": foreign, "memory": str(item.get("memory"))[:200]})

    def attempt(operation: str, action: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return action(*args, **kwargs)
        except Exception as error:  # every failure is reported, "database is locked" above all
            report["errors"].append(f"worker {index} {operation}: {type(error).__name__}: {error}\n"
                                    f"{traceback.format_exc(limit=4)}")
            return None

    memory = attempt("open", lambda: Memory(url=url, embedder=_embedder()))
    try:
        start.wait(timeout=120)
    except Exception as error:
        report["errors"].append(f"worker {index} start: {type(error).__name__}: {error}")
    if memory is None:
        return
    scope = {"user_id": user, "agent_id": agent}
    for turn in range(rounds):
        texts = [f"{own} note {turn}{part} about {WORDS[(turn + index) % len(WORDS)]}" for part in "ab"]
        added = attempt("add", memory.add, texts, **scope, metadata={"owner": own, "turn": turn})
        if added is not None:
            report["writes"] += 1
            live.update({result["id"]: result["memory"] for result in added["results"]})
        found = attempt("search", memory.search, query, **scope, limit=50)
        if found is not None:
            check("search", found["results"], agent_scoped=True)
        listed = attempt("get_all", memory.get_all, **scope, limit=1000)
        if listed is not None:
            check("get_all", listed["results"], agent_scoped=True)
            shown = {item["id"]: item["memory"] for item in listed["results"]}
            if shown != live or listed["total"] != len(live):
                report["errors"].append(f"worker {index} get_all: scope shows {len(shown)} records "
                                        f"(total {listed['total']}), its writer acknowledged {len(live)}")
        if live:
            memory_id = sorted(live)[turn % len(live)]
            got = attempt("get", memory.get, memory_id)
            if got is not None:
                check("get", [got], agent_scoped=True)
                if got["memory"] != live[memory_id]:
                    report["errors"].append(f"worker {index} get {memory_id}: {got['memory']!r}")
        if agent is not None:  # user-wide reads see both agents of the shared user, never another user
            wide = attempt("search user", memory.search, query, user_id=user, limit=50)
            if wide is not None:
                check("search user", wide["results"], agent_scoped=False)
            wide_list = attempt("get_all user", memory.get_all, user_id=user, limit=1000)
            if wide_list is not None:
                check("get_all user", wide_list["results"], agent_scoped=False)
        if turn % 3 == 2 and live:
            memory_id = sorted(live)[0]
            text = f"{own} updated in round {turn}"
            if attempt("update", memory.update, memory_id, text) is not None:
                report["writes"] += 1
                live[memory_id] = text
        if turn % 4 == 3 and live:
            memory_id = sorted(live)[-1]
            if attempt("delete", memory.delete, memory_id) is not None:
                report["writes"] += 1
                del live[memory_id]
    memory.close()


def _embedder() -> Embedder:
    from engram.embed.onnx_dynamic import OnnxDynamicInt8Embedder

    return OnnxDynamicInt8Embedder()


def test_tenants_stay_isolated_across_concurrent_processes(shared_url: str, embedder: Embedder) -> None:
    with Memory(url=shared_url, embedder=embedder) as memory:
        assert memory.embedder is embedder  # creates the store and records its embedder before the race
    nonce = uuid.uuid4().hex[:8]
    canaries = [f"zq{tag}{nonce}" for tag in TAGS]
    context = mp.get_context("spawn")
    start = context.Barrier(len(SCOPES))
    results: mp.Queue = context.Queue()  # type: ignore[type-arg]
    workers = [context.Process(target=_worker, args=(shared_url, index, canaries, ROUNDS, start, results))
               for index in range(len(SCOPES))]
    for worker in workers:
        worker.start()
    try:
        reports = sorted((results.get(timeout=180) for _ in workers), key=lambda report: report["index"])
    finally:
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()
    assert [worker.exitcode for worker in workers] == [0] * len(workers)

    leaks = [leak for report in reports for leak in report["leaks"]]
    errors = [error for report in reports for error in report["errors"]]
    assert not leaks, json.dumps(leaks[:10], indent=1, ensure_ascii=False)
    assert not [error for error in errors if "locked" in error.lower()], errors
    assert not errors, "\n".join(errors[:10])
    for report in reports:
        reads_per_round = 3 + (2 if SCOPES[report["index"]][1] else 0)
        assert report["reads"] == ROUNDS * reads_per_round, report["reads"]
        assert report["writes"] == ROUNDS + ROUNDS // 3 + ROUNDS // 4

    with Memory(url=shared_url, embedder=embedder) as memory:
        for report in reports:
            user, agent = SCOPES[report["index"]]
            listed = memory.get_all(user_id=user, agent_id=agent, limit=1000)
            assert {item["id"]: item["memory"] for item in listed["results"]} == report["live"]
            assert listed["total"] == memory.stats(user_id=user, agent_id=agent)["memories"] == len(report["live"])
            assert all(canaries[report["index"]] in text for text in report["live"].values())
        for user in {user for user, _ in SCOPES}:
            expected = {memory_id for report in reports if SCOPES[report["index"]][0] == user
                        for memory_id in report["live"]}
            listed = memory.get_all(user_id=user, limit=1000)
            assert {item["id"] for item in listed["results"]} == expected and listed["total"] == len(expected)
        assert memory.stats()["memories"] == sum(len(report["live"]) for report in reports)
    if shared_url.startswith("sqlite:///"):
        connection = sqlite3.connect(shared_url.removeprefix("sqlite:///"))
        try:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            connection.execute("INSERT INTO memories_fts(memories_fts) VALUES ('integrity-check')")
        finally:
            connection.close()
