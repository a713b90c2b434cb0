"""CLI commands that move data in and out: ``import``, ``export`` and the bundled ``demo``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    rich_console,
    store_args,
)
from engram.errors import ValidationError
from engram.jsonl import jsonl_objects

if TYPE_CHECKING:
    from rich.progress import Progress

    from engram.memory import Memory


def detect_format(path: Path) -> str:
    """``export`` (Engram JSONL), ``messages`` (JSONL of messages), ``locomo`` or ``longmemeval`` (JSON)."""
    with path.open(encoding="utf-8") as handle:
        head = handle.read(4096).lstrip()
    if head.startswith("["):
        return "longmemeval" if '"haystack_sessions"' in _read_text(path, 2_000_000) else "locomo"
    first = json.loads(head.splitlines()[0]) if head else {}
    return "export" if isinstance(first, dict) and "type" in first and "data" in first else "messages"


def _read_text(path: Path, limit: int) -> str:
    with path.open(encoding="utf-8") as handle:
        return handle.read(limit)


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    return (record for _, record in jsonl_objects(path, field="file"))


def _noting_users(records: Iterator[dict[str, Any]], users: set[str]) -> Iterator[dict[str, Any]]:
    """``records`` unchanged, adding the user id of each episode record to ``users``."""
    for record in records:
        data = record.get("data")
        if record.get("type") == "episode" and isinstance(data, dict) and isinstance(data.get("user_id"), str):
            users.add(data["user_id"])
        yield record


def _import_messages(memory: Memory, path: Path, scope: dict[str, str | None], progress: Progress,
                     users: set[str]) -> dict[str, int]:
    records = list(_jsonl(path))
    task = progress.add_task("importing messages", total=len(records))
    count = 0
    for number, record in enumerate(records, start=1):
        own = {key: record.pop(key, None) or scope[key] for key in ("user_id", "agent_id", "run_id")}
        if own["user_id"]:
            users.add(str(own["user_id"]))
        try:
            memory.add(record, infer=False, user_id=own["user_id"], agent_id=own["agent_id"], run_id=own["run_id"])
        except ValidationError as exc:
            raise ValidationError(exc.message, field=f"{path.name}:{number} {exc.field or ''}".strip(),
                                  hint=exc.hint) from None
        count += 1
        progress.advance(task)
    return {"messages": count}


def import_dataset(memory: Memory, path: Path, kind: str, user_prefix: str, progress: Progress,
                    users: set[str]) -> dict[str, int]:
    from engram.bench.datasets import load_locomo, load_longmemeval

    conversations = load_locomo(path, speaker_prefix=False) if kind == "locomo" else load_longmemeval(path)
    total = sum(len(c.sessions) for c in conversations)
    task = progress.add_task(f"importing {kind}", total=total)
    turns = 0
    for conversation in conversations:
        users.add(f"{user_prefix}{conversation.conversation_id}")
        for session in conversation.sessions:
            messages = [{"role": turn.role, "content": turn.text, "name": turn.speaker,
                         "metadata": {"turn_id": turn.turn_id, "session_id": session.session_id}}
                        for turn in session.turns]
            if messages:
                memory.add(messages, user_id=f"{user_prefix}{conversation.conversation_id}", timestamp=session.date,
                           infer=False)
            turns += len(messages)
            progress.advance(task)
    return {"conversations": len(conversations), "turns": turns}


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL (export or messages) or a "
                                                                              "LoCoMo/LongMemEval JSON file")],
    fmt: Annotated[str, typer.Option("--format", help="auto, export, messages, locomo, longmemeval")] = "auto",
    skip_existing: Annotated[bool, typer.Option("--skip-existing", help="export format: leave out records the "
                                                                         "store already has (and count them)")] = False,
    db: DbOption = None, url: UrlOption = None, user_id: UserOption = None, agent_id: AgentOption = None,
    run_id: RunOption = None, as_json: JsonOption = False,
) -> None:
    """Import records, messages or a benchmark data set (each conversation becomes user <prefix><id>)."""
    from rich.progress import Progress

    kind = detect_format(file) if fmt == "auto" else fmt
    if kind not in ("export", "messages", "locomo", "longmemeval"):
        raise fail(f"unknown --format {fmt!r}")
    users: set[str] = set()
    progress = Progress(console=rich_console(stderr=True), disable=as_json)
    with open_memory(db, url, create=True) as memory, progress:
        quarantined_before = memory.quarantined(limit=1)["total"]
        if kind == "export":
            counts = memory.import_records(_noting_users(_jsonl(file), users), skip_existing=skip_existing)
        elif kind == "messages":
            counts = _import_messages(memory, file, {"user_id": user_id, "agent_id": agent_id, "run_id": run_id},
                                      progress, users)
        else:
            counts = import_dataset(memory, file, kind, user_id or "", progress, users)
        quarantined = memory.quarantined(limit=1)["total"] - quarantined_before
    report = {"format": kind, **counts, "users": sorted(users), "quarantined": quarantined}
    emit(report, as_json, lambda r: _render_import(r, store_args(db, url)))


def _render_import(report: dict[str, Any], store_args: str) -> None:
    from rich.table import Table

    table = Table(title=f"imported {report['format']}")
    table.add_column("what")
    table.add_column("count", justify="right")
    names = {"conversations": "conversations", "turns": "turns", "messages": "messages", "episode": "episodes",
             "memory": "memories", "history": "history events", "skipped": "skipped (already in the store)"}
    for key, label in names.items():
        if key in report:
            table.add_row(label, str(report[key]))
    users = report["users"]
    table.add_row("users", str(len(users)))
    table.add_row("quarantined", str(report["quarantined"]))
    console.print(table)
    if users:
        shown = ", ".join(users[:20]) + (f" and {len(users) - 20} more" if len(users) > 20 else "")
        console.print(f"user ids: {shown}", highlight=False)
    if report["quarantined"]:
        console.print(f"[yellow]{report['quarantined']} records were quarantined by the poisoning guard[/]; "
                      f"review them with: engram quarantine list{store_args}", highlight=False)


@app.command()
def export(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="file to write (default: stdout)")] = None,
    format: Annotated[str, typer.Option("--format", help="records (lossless), sft or preference (training data)")
                      ] = "records",
    min_trust: Annotated[str, typer.Option("--min-trust", help="training data: least trusted writer kept")
                         ] = "assistant",
    replay: Annotated[Path | None, typer.Option("--replay", help="training data: JSONL of general samples")] = None,
    replay_ratio: Annotated[float, typer.Option("--replay-ratio", help="replay samples per memory row")] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="training data: shuffle seed")] = 0,
    db: DbOption = None, url: UrlOption = None, user_id: UserOption = None, agent_id: AgentOption = None,
    run_id: RunOption = None,
) -> None:
    """Export everything as JSON lines (lossless: import restores it), or, with --format sft|preference,
    memory as fine-tuning data (TRL conversational format) with a manifest of the memory ids used
    (OUT.manifest.json)."""
    if format != "records":
        from engram.cli.learning import write_training

        write_training(db, url, out=out, format=format, min_trust=min_trust, replay=replay,
                       replay_ratio=replay_ratio, seed=seed, user_id=user_id, agent_id=agent_id, run_id=run_id)
        return
    with open_memory(db, url) as memory:
        lines = (json.dumps(record, ensure_ascii=False) + "\n" for record in memory.export())
        if out is None:
            for line in lines:
                typer.echo(line, nl=False)
        else:
            with out.open("w", encoding="utf-8") as handle:
                handle.writelines(lines)

@app.command()
def demo(
    db: Annotated[str | None, typer.Option("--db", help="demo store (default: engram-demo.db in $ENGRAM_HOME "
                                                        "or the current folder); it is reset first")] = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest a bundled sample conversation and answer a few searches with their sources."""
    from importlib import resources

    sample = json.loads(resources.files("engram.data").joinpath("sample_conversation.json").read_text("utf-8"))
    path = db or str(Path(os.environ.get("ENGRAM_HOME", ".")) / "engram-demo.db")
    user = sample["user_id"]
    report: dict[str, Any] = {"db": path, "queries": []}
    with open_memory(path, None, create=True) as memory:
        memory.delete_all(user_id=user)
        for session in sample["sessions"]:
            memory.add(session["messages"], user_id=user, timestamp=session["date"])
        report["stats"] = memory.stats(user_id=user)
        for query in sample["queries"]:
            result = memory.search(query, user_id=user, limit=3, reference_date="2024-07-01T00:00:00Z")
            report["queries"].append({"query": query, **result})

    def render(r: dict[str, Any]) -> None:
        from rich.panel import Panel

        console.print(Panel.fit(f"Ingested {r['stats']['episodes']} messages from "
                                f"{len(sample['sessions'])} sessions into [bold]{r['db']}[/]", title="engram demo"))
        for item in r["queries"]:
            console.print(f"\n[bold cyan]Q:[/] {item['query']}")
            if item["abstain"]:
                console.print(f"   [yellow]memory probably holds nothing relevant[/] "
                              f"(confidence {item['confidence']:.2f}); closest:")
            for rank, hit in enumerate(item["results"], start=1):
                source = hit["sources"][0] if hit["sources"] else {}
                who = source.get("name") or source.get("role", "?")
                when = str(source.get("occurred_at", ""))[:10]
                console.print(f"   {rank}. {hit['memory']}  [dim]({who}, {when}, "
                              f"episode {source.get('id', '')[:8]})[/]")
    emit(report, as_json, render)


@app.command()
def migrate(
    source: Annotated[str, typer.Option("--from", help="source store URL (sqlite:///a.db or postgresql://...)")],
    target: Annotated[str, typer.Option("--to", help="empty target store URL")],
    as_json: JsonOption = False,
) -> None:
    """Move everything (episodes, memories, embeddings, history) from one store to another, losslessly."""
    from engram.transfer import migrate as migrate_stores

    with open_memory(None, source) as origin, open_memory(None, target, create=True) as destination:
        counts = migrate_stores(origin.store, destination.store, embedder=destination.embedder,
                                guard=destination.guard)
    emit({"from": source, "to": target, **counts}, as_json, lambda r: console.print(
        f"migrated {r['episode']} episodes, {r['memory']} memories, {r['history']} history events"))
