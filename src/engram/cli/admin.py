"""Administrative commands: erase a scope for good, back up and restore a store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from engram.cli.common import (
    AgentOption,
    DbOption,
    JsonOption,
    RunOption,
    UrlOption,
    UserOption,
    app,
    console,
    emit,
    fail,
    open_memory,
)
from engram.errors import NotFoundError


@app.command()
def erase(
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    db: DbOption = None, url: UrlOption = None, user_id: UserOption = None, agent_id: AgentOption = None,
    run_id: RunOption = None, as_json: JsonOption = False,
) -> None:
    """Erase everything of one scope: memories, episodes, history text, index entries, free pages and WAL."""
    if not (user_id or agent_id or run_id):
        raise fail("erase needs --user-id, --agent-id or --run-id")
    if not yes and not as_json:
        typer.confirm(f"Erase all data of user={user_id} agent={agent_id} run={run_id}?", abort=True)
    with open_memory(db, url) as memory:
        result = memory.delete_all(user_id=user_id, agent_id=agent_id, run_id=run_id)
    emit(result, as_json, lambda r: console.print(
        f"erased {r['deleted_memories']} memories and {r['deleted_episodes']} episodes"))


@app.command()
def backup(
    out: Annotated[Path, typer.Option("--out", "-o", help="snapshot file to write")],
    db: DbOption = None, url: UrlOption = None, as_json: JsonOption = False,
) -> None:
    """Write a consistent online snapshot of the store (safe while other processes write)."""
    if out.exists():
        raise fail(f"{out} exists; choose a new file")
    with open_memory(db, url) as memory:
        memory.backup(str(out))
        counts = memory.stats()
    emit({"backup": str(out), "episodes": counts["episodes"], "memories": counts["memories"]}, as_json,
         lambda r: console.print(f"backed up {r['memories']} memories and {r['episodes']} episodes to {r['backup']}"))


@app.command()
def restore(
    source: Annotated[Path, typer.Option("--from", help="snapshot made by `engram backup`", exists=True,
                                         dir_okay=False)],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    db: DbOption = None, url: UrlOption = None, as_json: JsonOption = False,
) -> None:
    """Replace the store's whole content with a snapshot."""
    if not yes and not as_json:
        typer.confirm("Replace the whole store with the snapshot?", abort=True)
    with open_memory(db, url) as memory:
        memory.restore(str(source))
        counts = memory.stats()
    emit({"restored": str(source), "episodes": counts["episodes"], "memories": counts["memories"]}, as_json,
         lambda r: console.print(f"restored {r['memories']} memories and {r['episodes']} episodes"))


quarantine_app = typer.Typer(help="Review records the poisoning guard quarantined.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")


@quarantine_app.command("list")
def quarantine_list(
    limit: Annotated[int, typer.Option("--limit", "-k")] = 100,
    db: DbOption = None, url: UrlOption = None, user_id: UserOption = None, agent_id: AgentOption = None,
    run_id: RunOption = None, as_json: JsonOption = False,
) -> None:
    """List quarantined memories with the guard's reasons (all scopes unless one is given)."""
    with open_memory(db, url) as memory:
        result = memory.quarantined(user_id=user_id, agent_id=agent_id, run_id=run_id, limit=limit)

    def render(r: dict[str, Any]) -> None:
        table = Table(title=f"{r['total']} quarantined")
        for column in ("id", "user", "writer", "score", "reasons", "memory"):
            table.add_column(column, overflow="fold")
        for item in r["results"]:
            verdict = item["metadata"].get("guard", {})
            table.add_row(item["id"], str(item["user_id"]), item["writer"], f"{verdict.get('score', 0):.2f}",
                          ", ".join(verdict.get("reasons", [])[:3]), item["memory"][:200])
        console.print(table)
    emit(result, as_json, render)


@quarantine_app.command("release")
def quarantine_release(memory_id: str, db: DbOption = None, url: UrlOption = None,
                       as_json: JsonOption = False) -> None:
    """Let a quarantined memory back into search."""
    with open_memory(db, url) as memory:
        result = memory.release(memory_id)
    emit(result, as_json, lambda r: console.print(r["message"]))


@quarantine_app.command("drop")
def quarantine_drop(memory_id: str, db: DbOption = None, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Delete a quarantined memory for good."""
    with open_memory(db, url) as memory:
        item = memory.get(memory_id)
        if item is None:
            raise NotFoundError(f"no memory with id {memory_id!r}", field="memory_id")
        if item["status"] != "quarantined":
            raise fail(f"{memory_id} is not quarantined; use `engram delete`")
        result = memory.delete(memory_id)
    emit(result, as_json, lambda r: console.print(r["message"]))
