"""``engram reembed``: move a store to another embedder in place, resumably (see ``engram.reembed``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from engram.cli.common import DbOption, JsonOption, UrlOption, app, console, emit, open_memory, rich_console, store_args
from engram.embed import PROVIDERS

if TYPE_CHECKING:
    from engram.embed.base import Embedder

EXIT_INTERRUPTED = 130
"""Ctrl-C: the batches committed so far are kept; running the command again resumes."""


def target_embedder(provider: str | None, model: str | None, base_url: str | None, dimensions: int | None,
                    tokenizer: str | None) -> Embedder:
    """The embedder configured by the environment (``ENGRAM_EMBED_*``), with each given option overriding
    its field."""
    from engram.config import EmbedderConfig
    from engram.providers import make_embedder

    given = {"provider": provider, "model": model, "base_url": base_url, "dimensions": dimensions,
             "tokenizer": tokenizer}
    return make_embedder(EmbedderConfig().model_copy(update={k: v for k, v in given.items() if v is not None}))


@app.command()
def reembed(
    provider: Annotated[str | None, typer.Option(
        help=f"embedder provider, as ENGRAM_EMBED_PROVIDER ({', '.join(PROVIDERS)}; default: the configured one)")
    ] = None,
    model: Annotated[str | None, typer.Option(help="provider's model, as ENGRAM_EMBED_MODEL")] = None,
    base_url: Annotated[str | None, typer.Option(help="embeddings server, as ENGRAM_EMBED_BASE_URL")] = None,
    dimensions: Annotated[int | None, typer.Option(help="vector size to ask for, as ENGRAM_EMBED_DIMENSIONS")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="tokenizer file, as ENGRAM_EMBED_TOKENIZER")] = None,
    batch_size: Annotated[int, typer.Option(help="memories embedded and committed per transaction")] = 64,
    max_batches: Annotated[int | None, typer.Option(help="stop after this many batches (run again to resume)")] = None,
    db: DbOption = None, url: UrlOption = None, as_json: JsonOption = False,
) -> None:
    """Re-embed every memory with another embedder, in place (resumable; Ctrl-C and run again to resume)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    embedder = target_embedder(provider, model, base_url, dimensions, tokenizer)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=rich_console(stderr=True), disable=as_json)
    tasks: dict[str, Any] = {}

    def advance(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            label = "embedding memories" if phase == "embed" else "mixing turn vectors"
            tasks[phase] = progress.add_task(label, total=total)
        progress.update(tasks[phase], completed=done, total=total)

    with open_memory(db, url) as memory, progress:
        try:
            result = memory.reembed(embedder, batch_size=batch_size, max_batches=max_batches, progress=advance)
        except KeyboardInterrupt:
            progress.stop()
            console.print(f"[yellow]interrupted[/]: the batches done so far are kept; run `engram reembed"
                          f"{store_args(db, url)}` again to resume", highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None
    emit(result, as_json, lambda r: console.print(_summary(r, store_args(db, url)), highlight=False))


def _summary(report: dict[str, Any], again: str) -> str:
    if report["finished"] and not report["batches"]:
        return f"the store already uses {report['target']} ({report['memories']} memories); nothing to do"
    head = (f"re-embedded {report['memories']} memories from {report['source']} to {report['target']}"
            if report["finished"] else f"stopped in the {report['phase']} phase after {report['batches']} batches; "
            f"run `engram reembed{again}` again to finish")
    return (f"{head} ({report['embedded']} embedded, {report['mixed']} turn vectors mixed, {report['batches']} "
            f"batches, {report['seconds']:.1f} s{', resumed' if report['resumed'] else ''})")
