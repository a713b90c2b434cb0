"""Property-based tests: tenant isolation under random operations, and fuzzed input that may only ever
produce typed errors, never a crash or a corrupted store."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engram import Memory
from engram.embed.onnx_dynamic import OnnxDynamicInt8Embedder
from engram.errors import EngramError

EMBEDDER = OnnxDynamicInt8Embedder()
USERS = ("ann", "bob", "cyd", "dee")
AGENTS = (None, "planner", "coder")
WORDS = st.sampled_from(["garden", "invoice", "trip", "guitar", "doctor", "recipe", "meeting", "password"])


def canary(user: str, agent: str | None) -> str:
    return f"canary{user}{agent or 'none'}".lower()


class IsolationMachine(RuleBasedStateMachine):
    """Random adds, searches, lists, updates and deletes across scopes; every read checks its scope."""

    def __init__(self) -> None:
        super().__init__()
        self.memory: Memory | None = None
        self.ids: dict[tuple[str, str | None], list[str]] = {}

    @initialize()
    def open_store(self) -> None:
        import tempfile

        self.folder = tempfile.mkdtemp(prefix="engram-prop-")
        self.memory = Memory(path=str(Path(self.folder) / "p.db"), embedder=EMBEDDER)

    def teardown(self) -> None:
        if self.memory is not None:
            self.memory.close()
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)

    def check_scope(self, results: list[dict[str, Any]], user: str, agent: str | None) -> None:
        for item in results:
            assert item["user_id"] == user
            if agent is not None:
                assert item["agent_id"] == agent
            for other in USERS:
                if other != user:
                    assert f"canary{other}" not in item["memory"].lower()

    @rule(user=st.sampled_from(USERS), agent=st.sampled_from(AGENTS), words=st.lists(WORDS, min_size=1, max_size=4))
    def add(self, user: str, agent: str | None, words: list[str]) -> None:
        assert self.memory is not None
        text = f"{' '.join(words)} {canary(user, agent)}"
        result = self.memory.add(text, user_id=user, agent_id=agent)
        self.ids.setdefault((user, agent), []).extend(r["id"] for r in result["results"])

    @rule(user=st.sampled_from(USERS), agent=st.sampled_from(AGENTS), words=st.lists(WORDS, min_size=1, max_size=3))
    def search(self, user: str, agent: str | None, words: list[str]) -> None:
        assert self.memory is not None
        query = " ".join(words) + " " + " ".join(canary(u, None) for u in USERS)
        self.check_scope(self.memory.search(query, user_id=user, agent_id=agent, limit=20)["results"], user, agent)

    @rule(user=st.sampled_from(USERS), agent=st.sampled_from(AGENTS))
    def list_all(self, user: str, agent: str | None) -> None:
        assert self.memory is not None
        self.check_scope(self.memory.get_all(user_id=user, agent_id=agent)["results"], user, agent)

    @rule(user=st.sampled_from(USERS), data=st.data())
    def update_or_delete(self, user: str, data: st.DataObject) -> None:
        assert self.memory is not None
        owned = [(key, memory_id) for key, ids in self.ids.items() if key[0] == user for memory_id in ids]
        if not owned:
            return
        (key, memory_id) = data.draw(st.sampled_from(owned))
        if data.draw(st.booleans()):
            self.memory.update(memory_id, f"updated {canary(*key)}")
        else:
            self.memory.delete(memory_id)
            self.ids[key].remove(memory_id)

    @rule(user=st.sampled_from(USERS))
    def delete_user(self, user: str) -> None:
        assert self.memory is not None
        self.memory.delete_all(user_id=user)
        for key in [key for key in self.ids if key[0] == user]:
            self.ids[key] = []

    @invariant()
    def counts_match(self) -> None:
        if self.memory is None:
            return
        for user in USERS:
            expected = sum(len(ids) for key, ids in self.ids.items() if key[0] == user)
            assert self.memory.get_all(user_id=user)["total"] == expected


IsolationMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=40, deadline=None,
                                              suppress_health_check=[HealthCheck.too_slow])
TestIsolation = IsolationMachine.TestCase

JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=30)
ODD_TIMESTAMPS = st.one_of(st.none(), st.integers(min_value=-10**13, max_value=10**13), st.floats(),
                           st.text(max_size=30), st.datetimes(),
                           st.sampled_from(["2024-02-30", "0000-01-01", "9999-12-31T23:59:59Z"]))
MESSAGES = st.one_of(
    st.text(max_size=200), st.binary(max_size=50),
    st.dictionaries(st.sampled_from(["role", "content", "name", "timestamp", "metadata", "bogus"]), JSON_VALUES,
                    max_size=5),
    st.lists(st.one_of(st.text(max_size=50),
                       st.dictionaries(st.sampled_from(["role", "content"]), st.text(max_size=30))), max_size=4),
    JSON_VALUES,
)
FILTERS = st.one_of(JSON_VALUES, st.dictionaries(st.sampled_from(["AND", "OR", "NOT", "tag", "user_id", "kind"]),
                                                  JSON_VALUES, max_size=3))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=MESSAGES, metadata=JSON_VALUES, timestamp=ODD_TIMESTAMPS, filters=FILTERS,
       query=st.text(max_size=100))
def test_fuzzed_api_input_only_raises_typed_errors(tmp_path_factory: Any, messages: Any, metadata: Any,
                                                   timestamp: Any, filters: Any, query: str) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz.db"
    with Memory(path=str(path), embedder=EMBEDDER) as memory:
        before = memory.stats(user_id="fuzz")
        try:
            result = memory.add(messages, user_id="fuzz", metadata=metadata, timestamp=timestamp)
            added = len(result["episodes"])
        except EngramError:
            added = 0
        after = memory.stats(user_id="fuzz")
        assert after["episodes"] == before["episodes"] + added
        for call in (lambda: memory.search(query, user_id="fuzz", filters=filters),
                     lambda: memory.get_all(user_id="fuzz", filters=filters)):
            with contextlib.suppress(EngramError):
                call()
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    connection.close()
