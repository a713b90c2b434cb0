"""Shared pieces of the CLI: the app, common options, output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from engram.errors import EngramError
from engram.memory import Memory

app = typer.Typer(name="engram", help="Engram: long-term memory for LLM agents (embedded SQLite by default).",
                  no_args_is_help=True, add_completion=False)
console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[str | None, typer.Option(
    "--db", help="SQLite file (default: $ENGRAM_HOME/engram.db or ./engram.db)")]
UrlOption = Annotated[str | None, typer.Option("--url", help="store URL: sqlite:///file.db or postgresql://...")]
UserOption = Annotated[str | None, typer.Option("--user-id", "-u", help="user scope")]
AgentOption = Annotated[str | None, typer.Option("--agent-id", help="agent scope")]
RunOption = Annotated[str | None, typer.Option("--run-id", help="run/session scope")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]


def fail(error: EngramError | str) -> typer.Exit:
    """Print an error to stderr and return the exit (code 2) to raise."""
    err_console.print(f"[bold red]error[/]: {error}", highlight=False)
    return typer.Exit(code=2)


@contextmanager
def clean_errors() -> Iterator[None]:
    """Turn Engram errors raised inside into a clean message and exit code 2."""
    try:
        yield
    except EngramError as exc:
        raise fail(exc) from exc


@contextmanager
def open_memory(db: str | None, url: str | None) -> Iterator[Memory]:
    """A Memory for the command, closed afterwards; Engram errors become a clean exit code 2."""
    with clean_errors():
        memory = Memory(path=db, url=url)
        try:
            yield memory
        finally:
            memory.close()


def emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """Print ``data`` as JSON or with ``render``."""
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    else:
        render(data)


def _sources_text(item: dict[str, Any]) -> str:
    parts = []
    for source in item.get("sources", []):
        who = source.get("name") or source.get("role")
        parts.append(f"{who} @ {source['occurred_at'][:16].replace('T', ' ')}")
    return "; ".join(parts)


def render_memories(items: list[dict[str, Any]], *, title: str, scores: bool = False) -> None:
    table = Table(title=title, show_lines=False)
    if scores:
        table.add_column("score", justify="right")
    table.add_column("memory", overflow="fold")
    table.add_column("kind")
    table.add_column("trust")
    table.add_column("source", overflow="fold")
    table.add_column("id", overflow="fold", style="dim")
    for item in items:
        row = [item["memory"], item["kind"], item.get("trust", ""), _sources_text(item), item["id"]]
        table.add_row(*([f"{item['score']:.3f}"] if scores else []), *row)
    console.print(table)


