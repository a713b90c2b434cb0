"""Memory commands: init, add, search, list, get, update, delete, history, stats, answer, maintain."""

from __future__ import annotations

import json
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
    existing,
    fail,
    open_memory,
    render_memories,
    store_file,
)


@app.command()
def init(db: DbOption = None, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Create an empty store (an SQLite file, or the tables in a PostgreSQL database)."""
    file = store_file(db, url)
    created = file is not None and not file.exists()
    with open_memory(db, url, create=True) as memory:
        embedder = memory.embedder.signature
        counts = memory.stats()
    where = str(file) if file is not None else "the database"
    result = {"store": where, "created": created, "embedder": embedder, "memories": counts["memories"]}
    emit(result, as_json, lambda r: console.print(
        f"{'created an empty store' if r['created'] else 'a store already exists'} at {r['store']} "
        f"({r['memories']} memories; embedder {r['embedder']})", highlight=False, soft_wrap=True))


@app.command()
def add(
    text: Annotated[list[str], typer.Argument(help="message text(s); each becomes one episode")],
    role: Annotated[str, typer.Option(help="role of the messages")] = "user",
    name: Annotated[str | None, typer.Option(help="speaker name")] = None,
    timestamp: Annotated[str | None, typer.Option(help="event time, ISO-8601 (default: now)")] = None,
    metadata: Annotated[str | None, typer.Option(help="metadata as a JSON object")] = None,
    infer: Annotated[bool, typer.Option(help="extract facts with the configured LLM")] = False,
    db: DbOption = None, url: UrlOption = None, user_id: UserOption = None, agent_id: AgentOption = None,
    run_id: RunOption = None, as_json: JsonOption = False,
) -> None:
    """Remember one or more messages."""
    meta = _json_option(metadata, "--metadata")
    messages = [{"role": role, "content": t, **({"name": name} if name else {})} for t in text]
    with open_memory(db, url, create=True) as memory:
        result = memory.add(messages, user_id=user_id, agent_id=agent_id, run_id=run_id, metadata=meta,
                            timestamp=timestamp, infer=infer)

    def render(r: dict[str, Any]) -> None:
        for event in r["results"]:
            console.print(f"[green]{event['event']}[/] {event['id']}  {event['memory']}")
        for note in r.get("notes", []):
            console.print(f"[dim]{note}[/]")
    emit(result, as_json, render)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    limit: Annotated[int, typer.Option("--limit", "-k", help="number of results")] = 10,
    reference_date: Annotated[str | None, typer.Option(help="'now' for the question (ISO-8601)")] = None,
    filters: Annotated[str | None, typer.Option(help="filters as JSON, e.g. '{\"kind\": \"fact\"}'")] = None,
    explain: Annotated[bool, typer.Option(help="show each hit's component scores")] = False,
    include_archived: Annotated[bool, typer.Option("--include-archived", help="also archived memories")] = False,
    threshold: Annotated[float | None, typer.Option(help="leave out hits scoring below this (the score is the "
                                                    "probability, 0-1, that a memory is relevant)")] = None,
    db: DbOption = None, url: UrlOption = None, user_id: UserOption = None, agent_id: AgentOption = None,
    run_id: RunOption = None, as_json: JsonOption = False,
) -> None:
    """Search one scope's memories."""
    with open_memory(db, url) as memory:
        result = memory.search(query, user_id=user_id, agent_id=agent_id, run_id=run_id, limit=limit,
                               reference_date=reference_date, filters=_json_option(filters, "--filters"),
                               explain=explain, include_archived=include_archived, threshold=threshold)

    def render(r: dict[str, Any]) -> None:
        render_memories(r["results"], title=f"search: {query}", scores=True)
        verdict = "[yellow]probably nothing relevant in memory[/]" if r["abstain"] else "relevant memories found"
        console.print(f"confidence {r['confidence']:.2f}: {verdict}")
    emit(result, as_json, render)


@app.command("list")
def list_memories(
    limit: Annotated[int, typer.Option("--limit", "-k")] = 100,
    offset: Annotated[int, typer.Option()] = 0,
    filters: Annotated[str | None, typer.Option(help="filters as JSON")] = None,
    include_archived: Annotated[bool, typer.Option("--include-archived", help="also archived memories")] = False,
    db: DbOption = None, url: UrlOption = None, user_id: UserOption = None, agent_id: AgentOption = None,
    run_id: RunOption = None, as_json: JsonOption = False,
) -> None:
    """List one scope's memories, newest first."""
    with open_memory(db, url) as memory:
        result = memory.get_all(user_id=user_id, agent_id=agent_id, run_id=run_id, limit=limit, offset=offset,
                                filters=_json_option(filters, "--filters"), include_archived=include_archived)
    emit(result, as_json, lambda r: render_memories(r["results"], title=f"{r['total']} memories"))


@app.command()
def get(memory_id: str, db: DbOption = None, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Show one memory."""
    with open_memory(db, url) as memory:
        result = existing(memory.get(memory_id), memory_id)
    emit(result, as_json, lambda r: render_memories([r], title=memory_id))


@app.command()
def update(memory_id: str, text: str, metadata: Annotated[str | None, typer.Option(help="JSON object")] = None,
           db: DbOption = None, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Change a memory's text (the old text stays in its history)."""
    with open_memory(db, url) as memory:
        result = memory.update(memory_id, text, metadata=_json_option(metadata, "--metadata"))
    emit(result, as_json, lambda r: console.print(r["message"]))


@app.command()
def delete(
    memory_id: Annotated[str | None, typer.Argument(help="memory to delete")] = None,
    all_in_scope: Annotated[bool, typer.Option("--all", help="delete every memory and episode of the scope")] = False,
    db: DbOption = None, url: UrlOption = None, user_id: UserOption = None, agent_id: AgentOption = None,
    run_id: RunOption = None, as_json: JsonOption = False,
) -> None:
    """Delete one memory, or with --all everything in a scope."""
    if (memory_id is None) == (not all_in_scope):
        raise fail("give a MEMORY_ID, or --all with --user-id/--agent-id/--run-id")
    with open_memory(db, url) as memory:
        if all_in_scope:
            result = memory.delete_all(user_id=user_id, agent_id=agent_id, run_id=run_id)
        else:
            result = memory.delete(str(memory_id))
    emit(result, as_json, lambda r: console.print(r["message"]))


@app.command()
def history(memory_id: str, db: DbOption = None, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Show every change to a memory."""
    with open_memory(db, url) as memory:
        result = memory.history(memory_id)

    def render(events: list[dict[str, Any]]) -> None:
        from rich.table import Table

        table = Table(title=f"history of {memory_id}")
        for column in ("time", "event", "old", "new", "actor"):
            table.add_column(column, overflow="fold")
        for e in events:
            table.add_row(e["created_at"][:19], e["event"], e["old_memory"] or "", e["new_memory"] or "", e["actor"])
        console.print(table)
    emit(result, as_json, render)


@app.command()
def stats(db: DbOption = None, url: UrlOption = None, user_id: UserOption = None, agent_id: AgentOption = None,
          run_id: RunOption = None, as_json: JsonOption = False) -> None:
    """Counts of episodes, memories and history events."""
    with open_memory(db, url) as memory:
        result = memory.stats(user_id=user_id, agent_id=agent_id, run_id=run_id)

    def render(r: dict[str, Any]) -> None:
        from rich.table import Table

        table = Table(title="engram stats")
        table.add_column("what")
        table.add_column("value", justify="right")
        for key, value in r.items():
            table.add_row(key, str(value))
        console.print(table)
    emit(result, as_json, render)


def _json_option(value: str | None, option: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise fail(f"{option} is not valid JSON: {exc}") from None


@app.command()
def answer(
    question: Annotated[str, typer.Argument(help="the question to answer from memory")],
    limit: Annotated[int, typer.Option("--limit", "-k", help="memories shown to the LLM")] = 10,
    reference_date: Annotated[str | None, typer.Option(help="'now' for the question (ISO-8601)")] = None,
    db: DbOption = None, url: UrlOption = None, user_id: UserOption = None, agent_id: AgentOption = None,
    run_id: RunOption = None, as_json: JsonOption = False,
) -> None:
    """Answer a question from memory with the configured LLM (ENGRAM_LLM_*), citing sources."""
    with open_memory(db, url) as memory:
        result = memory.answer(question, user_id=user_id, agent_id=agent_id, run_id=run_id, limit=limit,
                               reference_date=reference_date)

    def render(r: dict[str, Any]) -> None:
        console.print(f"[bold]{r['answer']}[/]" + (" [yellow](abstained)[/]" if r["abstained"] else ""))
        if r["citations"]:
            render_memories(r["citations"], title="cited memories")
    emit(result, as_json, render)


@app.command()
def maintain(
    limit: Annotated[int, typer.Option("--limit", help="pending episodes to process")] = 1000,
    forget: Annotated[bool, typer.Option("--forget", help="archive weak memories instead (docs/LEARNING.md)")] = False,
    threshold: Annotated[float, typer.Option("--threshold", help="--forget: archive below this strength")] = 0.05,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="--forget: report, archive nothing")] = False,
    db: DbOption = None, url: UrlOption = None, user_id: UserOption = None, agent_id: AgentOption = None,
    run_id: RunOption = None, as_json: JsonOption = False,
) -> None:
    """Retry LLM fact extraction for messages whose extraction failed earlier; with --forget, archive
    memories whose strength has faded (never deleted; a report lists each one)."""
    if forget:
        from engram.cli.learning import run_forget

        run_forget(db, url, user_id=user_id, agent_id=agent_id, run_id=run_id, threshold=threshold,
                   dry_run=dry_run, as_json=as_json)
        return
    with open_memory(db, url) as memory:
        result = memory.maintain(user_id=user_id, agent_id=agent_id, run_id=run_id, limit=limit)
    emit(result, as_json, lambda r: console.print(
        f"processed {r['processed']} pending messages; {r['still_pending']} still pending"))
