"""``engram mcp`` as a real subprocess, driven by the official MCP SDK client over stdio: every
tool works, and the scope comes from the server's options, never from the model's arguments."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from typer.testing import CliRunner

from engram import Memory
from engram.embed.base import Embedder
from engram.server.mcp import TOOL_NAMES
from support.fake_openai import FakeOpenAIServer, Reply


def server_command(store_url: str, *options: str, llm_url: str | None = None) -> StdioServerParameters:
    env = {key: value for key, value in os.environ.items() if key.startswith(("ENGRAM_", "PYTHON", "PATH", "HOME"))
           and not key.startswith(("ENGRAM_MCP_", "ENGRAM_LLM_"))}
    if llm_url is not None:
        env.update(ENGRAM_LLM_BASE_URL=llm_url, ENGRAM_LLM_MODEL="fake", ENGRAM_LLM_MAX_RETRIES="0")
    return StdioServerParameters(command=sys.executable, args=["-m", "engram.cli", "mcp", "--url", store_url, *options],
                                 env=env)


async def call(client: Client, tool: str, **arguments: Any) -> tuple[bool, Any]:
    """(is_error, structured result or the error text)."""
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        return True, " ".join(getattr(part, "text", "") for part in result.content)
    return False, result.structured_content


async def exercise(store_url: str, bob_id: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with Client(server_command(store_url, "--user-id", "alice"), read_timeout_seconds=120) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        seen["tools"] = sorted(tools)
        seen["parameters"] = {name: sorted(tool.input_schema.get("properties", {})) for name, tool in tools.items()}

        error, added = await call(client, "add_memory", text="I keep two beehives in the garden",
                                  timestamp="2024-05-01T10:00:00Z", metadata={"source": "mcp"})
        assert not error, added
        memory_id = added["results"][0]["id"]
        seen["search"] = await call(client, "search_memories", query="insects", limit=3)
        seen["get"] = await call(client, "get_memory", memory_id=memory_id)
        seen["list"] = await call(client, "list_memories", limit=10, filters={"source": "mcp"})
        seen["update"] = await call(client, "update_memory", memory_id=memory_id, text="I keep three beehives")
        seen["history"] = await call(client, "memory_history", memory_id=memory_id)

        seen["foreign"] = {tool: await call(client, tool, **arguments) for tool, arguments in (
            ("get_memory", {"memory_id": bob_id}), ("update_memory", {"memory_id": bob_id, "text": "hijack"}),
            ("delete_memory", {"memory_id": bob_id}), ("memory_history", {"memory_id": bob_id}))}
        seen["scope_in_filters"] = await call(client, "list_memories", filters={"user_id": "bob"})
        seen["scope_argument"] = await call(client, "search_memories", query="bank", user_id="bob")
        seen["own_search"] = await call(client, "search_memories", query="bank PIN code", limit=20)
        seen["delete"] = await call(client, "delete_memory", memory_id=memory_id)
        seen["after_delete"] = await call(client, "get_memory", memory_id=memory_id)
    return seen


def test_mcp_tools_over_stdio_stay_in_their_scope(memory: Memory, store_url: str) -> None:
    bob_id = memory.add("Bob's bank PIN is 4921qz", user_id="bob")["results"][0]["id"]
    seen = asyncio.run(exercise(store_url, bob_id))

    assert seen["tools"] == sorted(TOOL_NAMES)
    for parameters in seen["parameters"].values():
        assert not {"user_id", "agent_id", "run_id"} & set(parameters)
    assert seen["search"][1]["results"][0]["memory"] == "I keep two beehives in the garden"
    assert seen["get"][1]["user_id"] == "alice" and seen["get"][1]["metadata"] == {"source": "mcp"}
    assert seen["list"][1]["total"] == 1
    assert seen["update"][1]["memory"] == "I keep three beehives"
    assert [event["event"] for event in seen["history"][1]["events"]] == ["ADD", "UPDATE"]
    for tool, (error, text) in seen["foreign"].items():
        assert error and "NotFoundError" in text, (tool, text)
    assert seen["scope_in_filters"][0] and "filters" in seen["scope_in_filters"][1]
    smuggled_error, smuggled = seen["scope_argument"]  # an extra user_id argument is ignored, never obeyed
    assert "4921qz" not in json.dumps(smuggled)
    assert smuggled_error or all(hit["user_id"] == "alice" for hit in smuggled["results"])
    assert "4921qz" not in json.dumps(seen["own_search"][1])
    assert not seen["delete"][0] and seen["after_delete"][0]

    assert memory.get(bob_id)["memory"] == "Bob's bank PIN is 4921qz"
    assert [event["event"] for event in memory.history(bob_id)] == ["ADD"]
    assert memory.get_all(user_id="alice")["total"] == 0


def test_mcp_needs_a_scope(store_url: str) -> None:
    import engram.cli.server  # noqa: F401  (registers the mcp command)
    from engram.cli.common import app

    result = CliRunner().invoke(app, ["mcp", "--url", store_url], env={"ENGRAM_MCP_USER_ID": ""})
    assert result.exit_code == 2
    assert "needs a scope" in result.output


def test_mcp_answer_tool_with_an_llm(tmp_path: Path, embedder: Embedder) -> None:
    db = tmp_path / "answer.db"
    with Memory(path=str(db), embedder=embedder) as memory:
        cello = memory.add("I play the cello in a quartet", user_id="alice")["results"][0]["id"]
        memory.add("Bob's bank PIN is 4921qz", user_id="bob")
    llm = FakeOpenAIServer().start()
    llm.queue(Reply.json({"answer": "The cello.", "citations": ["m1"], "abstain": False}))

    async def ask() -> tuple[list[str], tuple[bool, Any]]:
        command = server_command(f"sqlite:///{db}", "--user-id", "alice", llm_url=llm.url)
        async with Client(command, read_timeout_seconds=120) as client:
            tools = sorted(tool.name for tool in (await client.list_tools()).tools)
            return tools, await call(client, "answer", question="Which instrument do I play?")

    try:
        tools, (error, reply) = asyncio.run(ask())
    finally:
        llm.stop()
    assert tools == sorted([*TOOL_NAMES, "answer"])
    assert not error, reply
    assert reply["answer"] == "The cello." and [hit["id"] for hit in reply["citations"]] == [cello]
    assert llm.chat_calls == 1 and "4921qz" not in json.dumps(llm.chat_requests[0].body)
