"""The learning MCP tools (feedback, profile, experience), called through the MCP server in process:
they work inside the server's scope and never outside it."""

from __future__ import annotations

import asyncio
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError

from engram import Memory
from engram.models import Scope
from engram.server.mcp import build_mcp_server


def call(server: Any, tool: str, **arguments: Any) -> tuple[bool, Any]:
    """(is_error, structured result or the error text)."""
    try:
        result = asyncio.run(server.call_tool(tool, arguments))
    except ToolError as error:
        return True, str(error)
    return bool(result.is_error), result.structured_content


def test_learning_tools_stay_in_scope(memory: Memory) -> None:
    mine = memory.add("I'm allergic to peanuts", user_id="alice", infer=False)["results"][0]["id"]
    theirs = memory.add("I'm allergic to cats", user_id="bob", infer=False)["results"][0]["id"]
    server = build_mcp_server(memory, Scope(user_id="alice"))

    error, result = call(server, "memory_feedback", memory_id=mine, useful=True, note="kept me safe")
    assert not error and result["uses"] == 2
    assert memory.history(mine)[-1]["metadata"]["given_by"] == "mcp"
    error, text = call(server, "memory_feedback", memory_id=theirs, useful=False)
    assert error and "NotFoundError" in text and memory.strength(theirs)["uses"] == 0

    error, profile = call(server, "memory_profile")
    assert not error and "peanuts" in profile["text"] and "cats" not in profile["text"]

    error, added = call(server, "add_experience", task="Deploy the app", outcome="failure", steps=["restart"])
    assert not error and memory.get(added["id"])["user_id"] == "alice"
    memory.add_experience(task="Deploy the app", outcome="success", steps=["migrate"], user_id="bob")
    error, found = call(server, "search_experiences", task="deploy our application")
    assert not error and [case["id"] for case in found["results"]] == [added["id"]]
