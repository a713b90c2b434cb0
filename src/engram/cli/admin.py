"""Administrative commands: erase a scope for good, back up and restore a store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
