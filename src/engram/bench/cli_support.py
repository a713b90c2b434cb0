"""What the ``engram bench`` commands share: the typer app they register on, argument parsers, option
types, the progress bar and console, and report writing."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from engram.bench.report import write_json
from engram.bench.suite import SYSTEM_NAMES
from engram.errors import EngramError, ValidationError

#: The ``--help`` panels the bench commands are grouped in.
ACCURACY_PANEL = "Retrieval accuracy"
SPEED_PANEL = "Speed and robustness"
QUALITY_PANEL = "Memory quality and model fitting"

bench_app = typer.Typer(help="Benchmarks: retrieval accuracy, speed and robustness, memory quality; model fitting.",
                        no_args_is_help=True)


def parse_ints(text: str, field: str) -> tuple[int, ...]:
    """``"1,5,10"`` -> ``(1, 5, 10)``; a ValidationError naming ``field`` otherwise."""
    try:
        values = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValidationError(f"expected comma-separated integers, got {text!r}", field=field) from None
    if not values or min(values) < 1:
        raise ValidationError(f"expected positive integers, got {text!r}", field=field)
    return tuple(sorted(set(values)))


def parse_systems(text: str) -> tuple[str, ...]:
    """``"engram,bm25"`` -> ``("engram", "bm25")``, checked against the known systems."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in SYSTEM_NAMES]
    if unknown or not names:
        raise ValidationError(f"unknown systems {unknown}; choose from {', '.join(SYSTEM_NAMES)}", field="systems")
    return names


class RichProgress:
    """A rich progress bar fed by the runner."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("starting", total=None)

    def start(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def advance(self, description: str, amount: int) -> None:
        self.progress.update(self.task, description=description, advance=amount)


def progress_bar(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=False)


def console_for(json_output: bool) -> Console:
    return Console(stderr=json_output)


def command_line() -> str:
    """The command line as ``engram bench ...``, whether run as ``engram bench`` or ``python -m``."""
    arguments = sys.argv[1:]
    if arguments[:1] == ["bench"]:
        arguments = arguments[1:]
    return "engram bench " + " ".join(shlex.quote(argument) for argument in arguments)


def fail(error: EngramError) -> None:
    Console(stderr=True).print(f"[red]error[/red] {error}")
    raise typer.Exit(2)


def parse_spread(text: str) -> tuple[int, int]:
    """``"1000000:10000"`` -> ``(1000000, 10000)``; a ValidationError naming ``spread`` otherwise."""
    total, _, scopes = text.partition(":")
    values = parse_ints(total, "spread") + parse_ints(scopes or "x", "spread")
    return values[0], values[1]


def write_report(out: Path, name: str, results: dict[str, Any], markdown: str, json_output: bool) -> None:
    """Write ``out/<name>.json`` and ``.md``; print the JSON (``--json``) or the Markdown."""
    write_json(out / f"{name}.json", results)
    (out / f"{name}.md").write_text(markdown, encoding="utf-8")
    if json_output:
        typer.echo(json.dumps(results, indent=2))
        return
    console_for(json_output).print(markdown)


DataOption = Annotated[Path, typer.Option("--data", exists=True, dir_okay=False, readable=True,
                                          help="benchmark JSON file")]
KOption = Annotated[str, typer.Option("--k", help="cut-offs for recall@k, hit@k, NDCG@k")]
BudgetOption = Annotated[str, typer.Option("--budget", help="token budgets (characters / 4)")]
DepthOption = Annotated[int, typer.Option("--depth", min=1, help="hits asked for per search")]
SystemsOption = Annotated[str, typer.Option("--systems", help="systems to compare")]
RecipeOption = Annotated[str | None, typer.Option("--recipe", help="Engram retrieval recipe (fast, balanced, best)")]
QAOption = Annotated[bool, typer.Option("--qa/--no-qa", help="QA accuracy when ENGRAM_LLM_BASE_URL is set")]
InferOption = Annotated[bool, typer.Option("--infer/--no-infer", help="Engram ingests with the LLM (ENGRAM_LLM_*)")]
JsonOption = Annotated[bool, typer.Option("--json", help="print the results JSON to stdout")]
OutOption = Annotated[Path, typer.Option("--out", help="output folder")]
