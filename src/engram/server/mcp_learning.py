"""MCP tools of memory that learns from use, registered by ``engram.server.mcp.build_mcp_server``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from engram.memory import Memory

LEARNING_TOOL_NAMES = ("memory_feedback", "memory_profile", "add_experience", "search_experiences")


def add_learning_tools(server: MCPServer, memory: Memory, ids: dict[str, Any],
                       owned: Callable[[str], dict[str, Any]], errors: Callable[[], Any],
                       writes: ToolAnnotations, read_only: ToolAnnotations) -> None:
    """Register the learning tools; ``owned`` checks a memory is in the server's scope, ``errors`` turns
    Engram errors into tool errors."""

    @server.tool(annotations=writes)
    def memory_feedback(memory_id: str, useful: bool = True, note: str | None = None) -> dict[str, Any]:
        """Say whether a memory was useful for the task at hand (``note``: why). Useful memories grow
        stronger and rank as such; memories never used fade and may be archived."""
        with errors():
            owned(memory_id)
            return memory.feedback(memory_id, useful=useful, note=note, given_by="mcp")

    @server.tool(annotations=read_only)
    def memory_profile(max_tokens: int = 300) -> dict[str, Any]:
        """The user's profile: who they are, where they live, work, people, preferences and constraints
        (allergies, rules), in a few lines that cite their memories. Read it at the start of a conversation."""
        with errors():
            return memory.profile(**ids, max_tokens=max_tokens)

    @server.tool(annotations=writes)
    def add_experience(task: str, outcome: str, steps: list[str] | None = None,
                       lesson: str | None = None) -> dict[str, Any]:
        """Record an attempt at a task: ``outcome`` "success" or "failure", the steps taken, and the lesson if
        you know one, so that the next similar task can reuse what worked and avoid what failed."""
        with errors():
            return memory.add_experience(task=task, outcome=outcome, steps=steps, lesson=lesson, **ids)

    @server.tool(annotations=read_only)
    def search_experiences(task: str, limit: int = 5, outcome: str | None = None) -> dict[str, Any]:
        """Past attempts at tasks similar to ``task``, with outcome, steps and lesson. Call it before a task:
        reuse approaches that succeeded, avoid ones that failed."""
        with errors():
            return memory.search_experiences(task, **ids, limit=limit, outcome=outcome)
