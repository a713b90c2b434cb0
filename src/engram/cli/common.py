"""Shared pieces of the CLI: the app, common options, opening the store, output helpers.

Heavy modules (the Memory facade, numpy, the embedder, rich tables) are imported inside the
commands that need them, so that ``engram --help`` and light commands start quickly."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from engram import __version__
from engram.cli.group import EngramGroup
from engram.errors import ConfigurationError, EngramError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from rich.console import Console

    from engram.memory import Memory

app = typer.Typer(name="engram", help="Engram: long-term memory for LLM agents (embedded SQLite by default).",
                  cls=EngramGroup, no_args_is_help=True, add_completion=False)


@cache
def rich_console(*, stderr: bool = False) -> Console:
    """The rich console for stdout (or stderr), created on first use: rich takes a while to import
    and ``--json`` output never needs it."""
    from rich.console import Console

    return Console(stderr=stderr)


class _LazyConsole:
    """Stands for ``rich_console(stderr=...)`` in ``console.print(...)`` calls without importing rich."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr

    def __getattr__(self, name: str) -> Any:
        return getattr(rich_console(stderr=self._stderr), name)


console: Console = cast("Console", _LazyConsole(stderr=False))
err_console: Console = cast("Console", _LazyConsole(stderr=True))

DbOption = Annotated[str | None, typer.Option(
    "--db", help="SQLite file (default: $ENGRAM_HOME/engram.db or ./engram.db)")]
UrlOption = Annotated[str | None, typer.Option("--url", help="store URL: sqlite:///file.db or postgresql://...")]
UserOption = Annotated[str | None, typer.Option("--user-id", "-u", help="user scope")]
AgentOption = Annotated[str | None, typer.Option("--agent-id", help="agent scope")]
RunOption = Annotated[str | None, typer.Option("--run-id", help="run/session scope")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of tables (errors as JSON on stderr)")]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"engram {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                help="print the version and exit")] = False) -> None:
    """Engram: long-term memory for LLM agents (embedded SQLite by default)."""


def fail(error: EngramError | str) -> EngramError:
    """The error to raise for a command that cannot go on (a string is a usage error); the app
    reports it on one line (JSON with ``--json``) and exits with its code."""
    return ValidationError(error) if isinstance(error, str) else error


def existing(item: dict[str, Any] | None, memory_id: str) -> dict[str, Any]:
    """``item`` as returned by ``Memory.get``; NotFoundError when there is none."""
    if item is None:
        raise NotFoundError(f"no memory with id {memory_id!r}", field="memory_id")
    return item


def store_args(db: str | None, url: str | None) -> str:
    """The ``--db``/``--url`` options to repeat in a suggested command (with a leading space)."""
    return f" --db {db}" if db else (f" --url '{url}'" if url else "")


def store_file(db: str | None, url: str | None) -> Path | None:
    """The SQLite file ``--db``/``--url`` (or the environment) names; None for a server database."""
    from engram.config import EngramConfig
    from engram.store.urls import store_target

    target = store_target(EngramConfig(path=db, url=url).resolved_url())
    return Path(target.location).expanduser() if target.backend == "sqlite" else None


def require_store(db: str | None, url: str | None) -> None:
    """Refuse an SQLite file that does not exist (commands that only read or change existing records)."""
    file = store_file(db, url)
    if file is not None and not file.exists():
        raise ConfigurationError(f"no store at {file}; create it with engram add or engram init", field="db")


@contextmanager
def created_store(db: str | None, url: str | None, *, create: bool) -> Iterator[None]:
    """Without ``create``, refuse a missing SQLite file; with it, remove the file again when it was
    new and the command failed, so that a failing command leaves nothing behind."""
    if not create:
        require_store(db, url)
        yield
        return
    file = store_file(db, url)
    fresh = file is not None and not file.exists()
    try:
        yield
    except BaseException:
        if fresh and file is not None:
            for leftover in (file, file.with_name(file.name + "-wal"), file.with_name(file.name + "-shm")):
                with suppress(OSError):
                    leftover.unlink()
        raise


@contextmanager
def open_memory(db: str | None, url: str | None, *, create: bool = False) -> Iterator[Memory]:
    """A Memory for the command, closed afterwards. Only commands that add records pass
    ``create=True``; the others refuse a store that does not exist."""
    from engram.memory import Memory

    with created_store(db, url, create=create):
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
    """A table of memories (with their search scores when ``scores``)."""
    from rich.table import Table

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
