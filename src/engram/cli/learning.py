"""Commands of memory that learns from use: feedback, strength (and ``maintain --forget``'s report)."""

from __future__ import annotations

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
    open_memory,
)


@app.command()
def feedback(
    memory_id: Annotated[str, typer.Argument(help="the memory the feedback is about")],
    useful: Annotated[bool, typer.Option("--useful/--not-useful", help="was it useful?")] = True,
    note: Annotated[str | None, typer.Option("--note", help="why (kept in the memory's history)")] = None,
    given_by: Annotated[str | None, typer.Option("--given-by", help="who gives the feedback")] = None,
    db: DbOption = None, url: UrlOption = None, as_json: JsonOption = False,
) -> None:
    """Mark a memory useful (it grows stronger; an archived one is restored) or not useful."""
    with open_memory(db, url) as memory:
        result = memory.feedback(memory_id, useful=useful, note=note, given_by=given_by)
    emit(result, as_json, lambda r: console.print(
        f"{'useful' if r['useful'] else 'not useful'}: {r['id']} strength {r['strength']:.3f} ({r['uses']} uses)"
        + ("; restored from the archive" if r["restored"] else "")))


@app.command()
def strength(memory_id: str, db: DbOption = None, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """How strongly a memory is remembered now, and why."""
    with open_memory(db, url) as memory:
        result = memory.strength(memory_id)
    emit(result, as_json, lambda r: console.print(
        f"{r['id']}: strength {r['strength']:.3f}, {r['uses']} uses, stability {r['stability_days']:.0f} days, "
        f"last used {r['last_used_at']}, {r['status']}"))


@app.command()
def profile(
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="budget (characters / 4)")] = 300,
    refresh: Annotated[bool, typer.Option("--refresh", help="rebuild even if nothing changed")] = False,
    db: DbOption = None, url: UrlOption = None, user_id: UserOption = None, agent_id: AgentOption = None,
    run_id: RunOption = None, as_json: JsonOption = False,
) -> None:
    """The scope's profile: its stable facts in a few cited lines."""
    with open_memory(db, url) as memory:
        result = memory.profile(user_id=user_id, agent_id=agent_id, run_id=run_id, max_tokens=max_tokens,
                                refresh=refresh)

    def render(r: dict[str, Any]) -> None:
        console.print(r["text"] or "[dim]no profile-worthy memories yet[/]", markup=False)
        console.print(f"[dim]{r['mode']}, {r['tokens']}/{r['max_tokens']} tokens, from "
                      f"{r['memories_considered']} memories[/]")
        for note in r["notes"]:
            console.print(f"[yellow]{note}[/]")
    emit(result, as_json, render)


def run_forget(db: str | None, url: str | None, *, user_id: str | None, agent_id: str | None, run_id: str | None,
               threshold: float, dry_run: bool, as_json: bool) -> None:
    """``engram maintain --forget``: archive weak memories and print what was archived."""
    with open_memory(db, url) as memory:
        result = memory.forget(user_id=user_id, agent_id=agent_id, run_id=run_id, threshold=threshold,
                               dry_run=dry_run)

    def render(r: dict[str, Any]) -> None:
        verb = "would archive" if r["dry_run"] else "archived"
        table = Table(title=f"{verb} {r['archived']} of {r['examined']} memories (strength < {r['threshold']})")
        for column in ("id", "strength", "uses", "last used", "memory"):
            table.add_column(column)
        for item in r["memories"]:
            table.add_row(item["id"], f"{item['strength']:.3f}", str(item["uses"]), item["last_used_at"][:10],
                          str(item["memory"])[:80])
        console.print(table)
    emit(result, as_json, render)
