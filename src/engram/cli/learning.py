"""Commands of memory that learns from use: feedback, strength (and ``maintain --forget``'s report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

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


experience_app = typer.Typer(help="Experience memory: past attempts at tasks and their lessons.",
                             no_args_is_help=True)
app.add_typer(experience_app, name="experience")


@experience_app.command("add")
def experience_add(
    task: Annotated[str, typer.Option("--task", help="what was attempted")],
    outcome: Annotated[str, typer.Option("--outcome", help="success or failure")],
    step: Annotated[list[str] | None, typer.Option("--step", help="a step taken (repeat for each)")] = None,
    lesson: Annotated[str | None, typer.Option("--lesson", help="what was learned")] = None,
    db: DbOption = None, url: UrlOption = None, user_id: UserOption = None, agent_id: AgentOption = None,
    run_id: RunOption = None, as_json: JsonOption = False,
) -> None:
    """Remember one attempt at a task (with an LLM and no --lesson, a lesson is distilled)."""
    with open_memory(db, url, create=True) as memory:
        result = memory.add_experience(task=task, outcome=outcome, steps=step or [], lesson=lesson,
                                       user_id=user_id, agent_id=agent_id, run_id=run_id)
    emit(result, as_json, lambda r: console.print(f"[green]ADD[/] {r['id']}  {r['outcome']}: {r['task']}"
                                                  + (f"\n  lesson: {r['lesson']}" if r["lesson"] else "")))


@experience_app.command("search")
def experience_search(
    task: Annotated[str, typer.Argument(help="the task at hand")],
    limit: Annotated[int, typer.Option("--limit", "-k")] = 5,
    outcome: Annotated[str | None, typer.Option("--outcome", help="only success or failure cases")] = None,
    db: DbOption = None, url: UrlOption = None, user_id: UserOption = None, agent_id: AgentOption = None,
    run_id: RunOption = None, as_json: JsonOption = False,
) -> None:
    """The past cases most similar to a task, with outcome, steps and lesson."""
    with open_memory(db, url) as memory:
        result = memory.search_experiences(task, user_id=user_id, agent_id=agent_id, run_id=run_id, limit=limit,
                                           outcome=outcome)

    def render(r: dict[str, Any]) -> None:
        from rich.table import Table

        table = Table(title=f"experience: {task}")
        for column in ("score", "outcome", "task", "steps", "lesson"):
            table.add_column(column)
        for case in r["results"]:
            table.add_row(f"{case['score']:.2f}", case["outcome"], case["task"], "; ".join(case["steps"]),
                          case["lesson"] or "")
        console.print(table)
        if r["lesson"]:
            console.print(f"lesson: {r['lesson']['text']} (from {', '.join(r['lesson']['cites'])})")
    emit(result, as_json, render)


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
        from rich.table import Table

        verb = "would archive" if r["dry_run"] else "archived"
        table = Table(title=f"{verb} {r['archived']} of {r['examined']} memories (strength < {r['threshold']})")
        for column in ("id", "strength", "uses", "last used", "memory"):
            table.add_column(column)
        for item in r["memories"]:
            table.add_row(item["id"], f"{item['strength']:.3f}", str(item["uses"]), item["last_used_at"][:10],
                          str(item["memory"])[:80])
        console.print(table)
    emit(result, as_json, render)


def write_training(db: str | None, url: str | None, *, out: Path | None, format: str, min_trust: str,
                   replay: Path | None, replay_ratio: float, seed: int, user_id: str | None, agent_id: str | None,
                   run_id: str | None) -> None:
    """``engram export --format sft|preference``: rows to OUT (or stdout), the manifest beside them."""
    with open_memory(db, url) as memory:
        result = memory.export_training(format, user_id=user_id, agent_id=agent_id, run_id=run_id,
                                        min_trust=min_trust, replay=str(replay) if replay else None,
                                        replay_ratio=replay_ratio, seed=seed)
    lines = [json.dumps(row, ensure_ascii=False) + "\n" for row in result["rows"]]
    if out is None:
        for line in lines:
            typer.echo(line, nl=False)
        return
    out.write_text("".join(lines), encoding="utf-8")
    manifest = out.with_name(out.name + ".manifest.json")
    manifest.write_text(json.dumps(result["manifest"], indent=2) + "\n", encoding="utf-8")
    console.print(f"{result['manifest']['rows']} rows ({result['manifest']['replay_rows']} replay) to {out}; "
                  f"{len(result['manifest']['memory_ids'])} memories used, listed in {manifest}", markup=False)
