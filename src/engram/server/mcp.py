"""The MCP server: Engram's memory as tools for assistants, on the official ``mcp`` SDK.

The scope is fixed when the server starts (``--user-id``/``--agent-id``/``--run-id``, the
``ENGRAM_MCP_*`` environment, or an API key): no tool takes a scope id, ``filters`` may not name
one, and memories outside the scope are reported as not found. Tools run in worker threads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from engram.errors import ConfigurationError, EngramError, NotFoundError, ValidationError
from engram.filters import parse_filters
from engram.memory import Memory
from engram.models import Scope
from engram.server.auth import Principal, require_visible, visible
from engram.server.mcp_learning import LEARNING_TOOL_NAMES, add_learning_tools
from engram.server.runtime import is_loopback

TOOL_NAMES = ("add_memory", "search_memories", "get_memory", "list_memories", "update_memory", "delete_memory",
              "memory_history", *LEARNING_TOOL_NAMES)
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)
INSTRUCTIONS = ("Long-term memory for this user. Call search_memories before answering questions about the "
                "user's past, preferences or plans; call add_memory to remember new durable facts. Results cite "
                "their source episodes; 'abstain': true means memory probably holds nothing relevant.")


@contextmanager
def _tool_errors() -> Iterator[None]:
    """Engram errors reach the model as tool errors naming the typed error and the field."""
    try:
        yield
    except EngramError as error:
        raise ToolError(f"{type(error).__name__}: {error}") from error


def _no_scope_in(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    if filters is not None and not parse_filters(filters).scope.is_empty():
        raise ValidationError("may not name user_id, agent_id or run_id: the scope is set by the server",
                              field="filters")
    return filters


def _text_argument(text: str | None, content: str | None) -> str:
    """The memory text of a tool call: ``text``, or ``content`` (its older name), not both."""
    if text is not None and content is not None:
        raise ValidationError("give the text once, as text (content is its older name)", field="text")
    value = text if text is not None else content
    if value is None:
        raise ValidationError("is required", field="text")
    return value


def build_mcp_server(memory: Memory, scope: Scope, *, name: str = "engram") -> MCPServer:
    """An MCP server whose tools read and write ``memory`` inside ``scope`` only."""
    if scope.is_empty():
        raise ConfigurationError("the MCP server needs a scope", field="user_id",
                                 hint="pass --user-id (or ENGRAM_MCP_USER_ID), --agent-id, or an API key")
    server: MCPServer = MCPServer(name=name, instructions=INSTRUCTIONS)
    ids: dict[str, Any] = dict(scope.items())
    caller = Principal(key_id=None, scope=scope, admin=False)

    def owned(memory_id: str) -> dict[str, Any]:
        item = memory.get(memory_id)
        if item is None:
            raise NotFoundError(f"no memory with id {memory_id!r}", field="memory_id")
        require_visible(caller, Scope(user_id=item["user_id"], agent_id=item["agent_id"], run_id=item["run_id"]),
                        memory_id)
        return item

    @server.tool(annotations=WRITES)
    def add_memory(text: str | None = None, role: str = "user", metadata: dict[str, Any] | None = None,
                   timestamp: str | None = None, content: str | None = None) -> dict[str, Any]:
        """Remember a message or fact (``text``) verbatim. ``timestamp`` (ISO-8601) is when it happened
        (default: now). ``content`` is an older name for ``text``."""
        with _tool_errors():
            return memory.add({"role": role, "content": _text_argument(text, content)}, **ids, metadata=metadata,
                              timestamp=timestamp)

    @server.tool(annotations=READ_ONLY)
    def search_memories(query: str, limit: int = 10, reference_date: str | None = None,
                        filters: dict[str, Any] | None = None) -> dict[str, Any]:
        """Memories relevant to ``query``, best first, with sources and an ``abstain`` flag.
        ``reference_date`` (ISO-8601) is "now" for time words like "last week"."""
        with _tool_errors():
            return memory.search(query, **ids, limit=limit, reference_date=reference_date,
                                 filters=_no_scope_in(filters))

    @server.tool(annotations=READ_ONLY)
    def get_memory(memory_id: str) -> dict[str, Any]:
        """One memory by id."""
        with _tool_errors():
            return owned(memory_id)

    @server.tool(annotations=READ_ONLY)
    def list_memories(limit: int = 50, offset: int = 0, filters: dict[str, Any] | None = None) -> dict[str, Any]:
        """A page of memories, newest first, and the total count. ``filters`` match metadata and columns."""
        with _tool_errors():
            return memory.get_all(**ids, limit=limit, offset=offset, filters=_no_scope_in(filters))

    @server.tool(annotations=WRITES)
    def update_memory(memory_id: str, text: str | None = None, metadata: dict[str, Any] | None = None,
                      content: str | None = None) -> dict[str, Any]:
        """Replace a memory's text (its history keeps the old text). ``content`` is an older name for ``text``."""
        with _tool_errors():
            new_text = _text_argument(text, content)
            owned(memory_id)
            return memory.update(memory_id, new_text, metadata=metadata)

    @server.tool(annotations=DESTRUCTIVE)
    def delete_memory(memory_id: str) -> dict[str, Any]:
        """Delete a memory everywhere it lives."""
        with _tool_errors():
            owned(memory_id)
            return memory.delete(memory_id)

    @server.tool(annotations=READ_ONLY)
    def memory_history(memory_id: str) -> dict[str, Any]:
        """Every change to a memory, oldest first (also after it was deleted)."""
        with _tool_errors():
            events = memory.history(memory_id)
            in_scope = [visible(caller, Scope(user_id=e["user_id"], agent_id=e["agent_id"], run_id=e["run_id"]))
                        for e in events]
            if not events or not all(in_scope):
                raise NotFoundError(f"no memory with id {memory_id!r}", field="memory_id")
            return {"memory_id": memory_id, "events": events}

    add_learning_tools(server, memory, ids, owned, _tool_errors, WRITES, READ_ONLY)

    if memory.llm is not None:
        @server.tool(annotations=READ_ONLY)
        def answer(question: str, reference_date: str | None = None, limit: int = 10) -> dict[str, Any]:
            """Answer a question from memory, citing the memories used, or abstain when memory does not know.
            ``reference_date`` (ISO-8601) is "now" for the question."""
            with _tool_errors():
                return memory.answer(question, **ids, limit=limit, reference_date=reference_date)

    return server


def run_mcp_server(server: MCPServer, *, transport: str = "stdio", host: str = "127.0.0.1",
                   port: int = 8766) -> None:
    """Serve over stdio, or streamable HTTP at ``http://host:port/mcp`` (loopback only: no auth)."""
    if transport == "stdio":
        server.run("stdio")
    elif transport == "http":
        if not is_loopback(host):
            raise ConfigurationError(f"the MCP HTTP transport has no authentication; bind a loopback host, not "
                                     f"{host!r}", field="host", hint="put an authenticating proxy in front of it")
        server.run("streamable-http", host=host, port=port)
    else:
        raise ConfigurationError(f"unknown transport {transport!r}", field="transport", hint="use stdio or http")
