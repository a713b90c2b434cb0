"""Service commands: ``engram serve`` (REST), ``engram keys create|list|revoke``, ``engram mcp``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from engram.cli.common import (
    AgentOption,
    DbOption,
    JsonOption,
    UrlOption,
    UserOption,
    app,
    console,
    created_store,
    emit,
    err_console,
    fail,
    open_memory,
    store_args,
)

if TYPE_CHECKING:
    from engram.store.key_store import KeyStore

keys_app = typer.Typer(help="API keys for `engram serve`, bound to a user/agent scope, stored hashed.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")

HostOption = Annotated[str, typer.Option("--host", help="address to bind (loopback by default)")]


@contextmanager
def _key_store(db: str | None, url: str | None, *, create: bool = False) -> Iterator[KeyStore]:
    from engram.store.key_store import open_key_store

    with created_store(db, url, create=create):
        keys = open_key_store(db, url)
        try:
            yield keys
        finally:
            keys.close()


@app.command()
def serve(
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8765,
    db: DbOption = None, url: UrlOption = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="no API keys (loopback hosts only; development)")] = False,
    max_body_bytes: Annotated[int, typer.Option(help="largest request body accepted (413 above)")] = 1_048_576,
    rate_limit: Annotated[float, typer.Option(help="requests per second per key (0 = unlimited)")] = 50.0,
    burst: Annotated[int, typer.Option(help="requests a key may send at once before the rate limit applies")] = 100,
    max_page_size: Annotated[int, typer.Option(help="largest `limit` for lists and searches")] = 1000,
    log_level: Annotated[str, typer.Option(help="uvicorn log level (debug adds an access log)")] = "info",
) -> None:
    """Serve the REST API (OpenAPI docs at /docs, Prometheus metrics at /metrics)."""
    from rich.panel import Panel

    from engram.server.rest import ServerLimits, create_app
    from engram.server.runtime import check_bind, run_server

    check_bind(host, auth=not no_auth)
    limits = ServerLimits(max_body_bytes=max_body_bytes, rate_per_second=rate_limit, burst=burst,
                          max_page_size=max_page_size)
    if no_auth:
        err_console.print(Panel(f"[bold]AUTHENTICATION IS OFF[/]: anyone who can reach {host}:{port} can read, "
                                "change and delete every memory of every user.\nUse --no-auth for local "
                                "development only; create API keys with `engram keys create`.",
                                title="[bold red]WARNING[/]", border_style="red"))
    with open_memory(db, url, create=True) as memory, _key_store(db, url) as keys:
        memory.embedder.embed(["warm up"])
        if not no_auth and not keys.list_keys():
            err_console.print("[yellow]no API keys yet[/]: every /v1 request will get 401. Create one with "
                              f"`engram keys create{store_args(db, url)} --user-id USER`")
        application = create_app(memory, keys=None if no_auth else keys, auth=not no_auth, limits=limits)
        err_console.print(f"Engram on http://{host}:{port} ({type(memory.store).__name__}); docs at /docs")
        run_server(application, host=host, port=port, log_level=log_level)


@keys_app.command("create")
def keys_create(
    user_id: UserOption = None, agent_id: AgentOption = None,
    admin: Annotated[bool, typer.Option("--admin", help="may use every scope and reset the store")] = False,
    name: Annotated[str | None, typer.Option(help="a label to recognise the key by")] = None,
    db: DbOption = None, url: UrlOption = None, as_json: JsonOption = False,
) -> None:
    """Create a key bound to --user-id and/or --agent-id (or --admin); the key is printed once."""
    with _key_store(db, url, create=True) as keys:
        key, token = keys.create(user_id=user_id, agent_id=agent_id, admin=admin, name=name)
    result = {"key": token, **key.model_dump(mode="json")}

    def render(r: dict[str, Any]) -> None:
        scope = ", ".join(f"{field}={r[field]}" for field in ("user_id", "agent_id") if r[field]) or "any scope"
        console.print(f"created {'admin ' if r['admin'] else ''}key [bold]{r['id']}[/] for {scope}")
        console.print(r["key"], markup=False, highlight=False)
        err_console.print("[yellow]store it now: it is kept only as a hash and cannot be shown again[/]")
    emit(result, as_json, render)


@keys_app.command("list")
def keys_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="include revoked keys")] = False,
    db: DbOption = None, url: UrlOption = None, as_json: JsonOption = False,
) -> None:
    """List keys (never the keys themselves: only their ids, prefixes and scopes)."""
    with _key_store(db, url) as keys:
        result = [key.model_dump(mode="json") for key in keys.list_keys(include_revoked=include_revoked)]

    def render(rows: list[dict[str, Any]]) -> None:
        from rich.table import Table

        table = Table(title=f"{len(rows)} API keys")
        for column in ("id", "prefix", "user_id", "agent_id", "admin", "name", "created", "revoked"):
            table.add_column(column, overflow="fold")
        for r in rows:
            table.add_row(r["id"], r["prefix"] + "…", r["user_id"] or "", r["agent_id"] or "",
                          "yes" if r["admin"] else "", r["name"] or "", r["created_at"][:19],
                          (r["revoked_at"] or "")[:19])
        console.print(table)
    emit(result, as_json, render)


@keys_app.command("revoke")
def keys_revoke(key_id: str, db: DbOption = None, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Revoke a key by id; requests with it get 401 from then on."""
    with _key_store(db, url) as keys:
        result = keys.revoke(key_id).model_dump(mode="json")
    emit(result, as_json, lambda r: console.print(f"revoked key {r['id']} ({r['prefix']}…)"))


@app.command("mcp")
def mcp_command(
    transport: Annotated[str, typer.Option(help="stdio, or http (streamable HTTP at /mcp, loopback only)")] = "stdio",
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8766,
    db: DbOption = None, url: UrlOption = None,
    user_id: Annotated[str | None, typer.Option("--user-id", "-u", envvar="ENGRAM_MCP_USER_ID",
                                                help="the scope every tool works in")] = None,
    agent_id: Annotated[str | None, typer.Option("--agent-id", envvar="ENGRAM_MCP_AGENT_ID")] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", envvar="ENGRAM_MCP_RUN_ID")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="ENGRAM_MCP_API_KEY",
                                                help="take the scope from this API key")] = None,
) -> None:
    """Serve memory to an assistant over MCP. The scope comes from these options, never from the model."""
    from engram.models import Scope
    from engram.server.auth import Principal, resolve_scope
    from engram.server.mcp import build_mcp_server, run_mcp_server

    with open_memory(db, url, create=True) as memory:
        ids: dict[str, Any] = {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}
        if api_key is not None:
            with _key_store(db, url) as keys:
                key = keys.authenticate(api_key)
            if key is None:
                raise fail("unknown or revoked API key (--api-key / ENGRAM_MCP_API_KEY)")
            ids = resolve_scope(Principal(key_id=key.id, scope=key.scope, admin=key.admin), **ids)
        server = build_mcp_server(memory, Scope(**{key: value or None for key, value in ids.items()}))
        memory.embedder.embed(["warm up"])
        run_mcp_server(server, transport=transport, host=host, port=port)
