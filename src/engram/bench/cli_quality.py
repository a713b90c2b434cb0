"""``engram bench`` commands that measure memory quality beyond retrieval (red team, facts that change,
feedback, experience) and refit the shipped models (``fit``, ``fit-updates``, ``calibration``)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from engram.bench.cli_support import (
    QUALITY_PANEL,
    DataOption,
    JsonOption,
    KOption,
    OutOption,
    RichProgress,
    command_line,
    console_for,
    fail,
    parse_ints,
    progress_bar,
    write_report,
)
from engram.bench.report import fmt, write_json
from engram.errors import EngramError


class RedTeamSplit(StrEnum):
    """The parts of the red-team set: tuned on, or never seen while tuning."""

    DEV = "dev"
    HOLDOUT = "holdout"


def redteam(
    out: OutOption = Path("bench-out/redteam"),
    users: Annotated[int | None, typer.Option("--users", min=1, help="first N red-team users only")] = None,
    split: Annotated[RedTeamSplit | None, typer.Option("--split", help="only the dev (tuned-on) or holdout "
                                                       "(blind) users")] = None,
    json_output: JsonOption = False,
) -> None:
    """Memory poisoning: attack success (poisoned record in the top 5 for its target) with and without
    the guard, and the guard's false positives on benign records."""
    from engram.bench.redteam import run_redteam
    from engram.bench.suite import default_embedder

    results = run_redteam(out, default_embedder(), limit_users=users, split=split.value if split else None)
    if json_output:
        typer.echo(json.dumps(results, indent=2))
        return
    console = console_for(False)
    for label in ("without_guard", "with_guard"):
        data = results[label]
        success = data["attack_success"]
        console.print(f"{label}: attack success {success['all']:.1%} (dev {success.get('split:dev', 0):.1%}, "
                      f"holdout {success.get('split:holdout', 0):.1%}); attacks quarantined "
                      f"{data['attacks_quarantined']:.1%}; benign quarantined {data['benign_quarantined']:.1%}")
    console.print(f"Results: {out / 'redteam.json'}")


def updates(
    data: Annotated[str, typer.Option("--data", help="bundled split (dev, holdout, holdout2, holdout3, holdout4, "
                                                     "holdout5, holdout6, holdout7; pairs3, pairs4: fresh "
                                                     "writers' pairs) or a scenario JSON file")] = "dev",
    out: OutOption = Path("bench-out/updates"),
    ceiling: Annotated[bool, typer.Option("--ceiling", help="also run with read time's pairs judged by the "
                                                            "scenarios' own answers (column knowing_judge)")] = False,
    json_output: JsonOption = False,
) -> None:
    """Facts that change: current-fact@1, past and as_of questions, supersession detection and false
    supersession on distractors; with and without the offline detector, one add per turn; with --ceiling, also
    with read time judged right on every pair."""
    from engram.bench.suite import default_embedder
    from engram.bench.updates import load_scenarios, run_updates

    console = console_for(json_output)
    try:
        total = len(load_scenarios(data)[1]) * (3 if ceiling else 2)
        with progress_bar(console) as progress:
            hook = RichProgress(progress)
            hook.start(total)
            results = run_updates(data, out, default_embedder(), on_scenario=lambda: hook.advance(data, 1),
                                  ceiling=ceiling)
    except EngramError as error:
        fail(error)
        return
    results["command"] = command_line()
    write_json(out / "updates.json", results)
    if json_output:
        typer.echo(json.dumps(results, indent=2))
        return
    table = Table(title=f"{results['data']}: {results['updates']} updates, {results['distractors']} distractors")
    table.add_column("metric")
    labels = [label for label in ("engram", "without_supersession", "knowing_judge") if label in results]
    for label in labels:
        table.add_column(label, justify="right")
    kinds = ("current_fact", "still_true", "past", "as_of")
    for label_name, path in [*((f"{kind}@1", ("questions", kind, "at_1")) for kind in kinds),
                             ("supersession recall", ("supersession", "detection_recall", "")),
                             ("false supersession", ("supersession", "false_supersession_rate", ""))]:
        table.add_row(label_name, *(fmt(_lookup(results[label], path)) for label in labels))
    console.print(table)
    console.print(f"Results: {out / 'updates.json'}")


def _lookup(data: dict[str, Any], path: tuple[str, str, str]) -> Any:
    """``data[a][b][c]`` (``c`` empty: ``data[a][b]``), None where a key is missing."""
    value: Any = data
    for key in (part for part in path if part):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def fit_updates_command(
    out: Annotated[Path | None, typer.Option("--out", help="write the model here instead of into the package")] = None,
    json_output: JsonOption = False,
) -> None:
    """Refit the offline supersession model on the dev scenarios and the read models of read-time
    supersession on the written training pairs and the seen update sets (deterministic: re-running
    reproduces the shipped engram/data/models/change_model.json; about 5 minutes); report dev,
    leave-one-kind-out and holdout, and the read models leave-one-source-out."""
    from engram.bench.fit_updates import fit_updates
    from engram.bench.suite import default_embedder

    result = fit_updates(default_embedder(), out)
    if json_output:
        typer.echo(json.dumps(result, indent=2))
        return
    console = console_for(False)
    for name, entry in result["report"].items():
        console.print(f"{name}: precision {entry['precision']:.3f}, recall {entry['recall']:.3f}")
    console.print("model: " + ", ".join(f"{name} {value:+.2f}" for name, value in result["model"].items()))


def fit_pair_reader_command(
    out: Annotated[Path | None, typer.Option("--out", help="write pair_reader.npz/.json into this folder instead "
                                                           "of the package's models folder")] = None,
    held_out: Annotated[str, typer.Option("--held-out", help="comma-separated sources to leave out of the fit and "
                                                             "score the reader on (e.g. holdout4)")] = "",
    leave_one_source_out: Annotated[bool, typer.Option("--leave-one-source-out", help=(
        "also fit once per source left out and report each (7 more fits: about an hour on 2 CPU cores, minutes "
        "on a GPU)"))] = False,
    device: Annotated[str, typer.Option("--device", help="torch device to train on (cpu, cuda)")] = "cpu",
    examples: Annotated[Path | None, typer.Option("--examples", help=(
        "a file caching the training rows: read when it holds today's training data, else written (saves about "
        "2 minutes)"))] = None,
    json_output: JsonOption = False,
) -> None:
    """Fine-tune the pair reader of read-time supersession (a MiniLM cross-encoder, low-rank adapters) on the
    read examples of fit-updates and counter-examples of unrelated news; seeded, writes
    engram/data/models/pair_reader.npz/.json; about 9 minutes on 2 CPU cores. Needs torch (only for fitting)."""
    from engram.bench.fit_pair_reader import fit_pair_reader
    from engram.bench.suite import default_embedder

    sources = [name.strip() for name in held_out.split(",") if name.strip()]
    with progress_bar(console_for(json_output)) as bar:
        tasks: dict[str, Any] = {}

        def advance(label: str, done: int, steps: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(f"fitting the pair reader ({label})", total=steps)
            bar.update(tasks[label], completed=done)

        try:
            manifest = fit_pair_reader(default_embedder(), out, held_out=sources,
                                       leave_one_source_out=leave_one_source_out, device=device, examples=examples,
                                       progress=advance)
        except EngramError as exc:
            fail(exc)
    if json_output:
        typer.echo(json.dumps(manifest, indent=2))
        return
    console = console_for(False)
    for kind in ("held_out", "leave_one_source_out"):
        for source, entry in manifest["report"].get(kind, {}).items():
            console.print(f"{kind} {source}: accuracy {entry['accuracy']:.3f} over {entry['pairs']:.0f} pairs")
    console.print(f"{manifest['examples']} examples, weights sha256 {manifest['weights_sha256'][:12]}")


def feedback(
    data: DataOption,
    k: KOption = "5,10",
    out: OutOption = Path("bench-out/feedback"),
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="first N conversations only")] = None,
    json_output: JsonOption = False,
) -> None:
    """Feedback on earlier questions' evidence: recall on later ones by strength weight, and what forgetting
    would archive (docs/LEARNING.md)."""
    from engram.bench.feedback import render_markdown, run_feedback

    try:
        results = run_feedback(data, out, ks=parse_ints(k, "k"), limit=limit)
    except EngramError as error:
        fail(error)
        return
    write_report(out, "feedback", results, render_markdown(results, command_line()), json_output)


def experience(
    rounds: Annotated[int, typer.Option("--rounds", min=1, max=100, help="rounds of recurring tasks")] = 6,
    seed: Annotated[int, typer.Option("--seed", help="seed of the scripted environment")] = 7,
    out: OutOption = Path("bench-out/experience"),
    json_output: JsonOption = False,
) -> None:
    """Scripted recurring tasks: success and repeat-failure rate per round with and without experience
    memory (a mechanism test; docs/LEARNING.md)."""
    from engram.bench.experience import render_markdown, run_experience

    results = run_experience(out, rounds=rounds, seed=seed)
    write_report(out, "experience", results, render_markdown(results, command_line()), json_output)


def fit_command(
    data: DataOption,
    out: Annotated[Path | None, typer.Option("--out", help="write the model here instead of into the package")] = None,
    facts: Annotated[str, typer.Option("--facts", help="fact-update scenarios the score is also calibrated on "
                                       "(dev, holdout, a JSON file, or none)")] = "dev",
    json_output: JsonOption = False,
) -> None:
    """Refit the learned ranker on LoCoMo-format data (deterministic: re-running on the same data and
    embedder reproduces engram/data/models/ranker.json); report recall@10 in-sample and leave-one-
    conversation-out."""
    from engram.bench.fit_ranker import fit_ranker
    from engram.bench.suite import default_embedder

    console = console_for(json_output)
    with console.status("fitting the ranker (one conversation at a time)") as status:
        result = fit_ranker(data, default_embedder(), out, on_conversation=lambda name: status.update(f"pooled {name}"),
                            facts=None if facts == "none" else facts)
    if json_output:
        typer.echo(json.dumps(result, indent=2))
        return
    for name, value in result["report"].items():
        console.print(f"{name}: {round(value, 4) if isinstance(value, float) else value}")


def calibration_command(
    out: Annotated[Path, typer.Option("--out", help="folder for the reliability plot")] = Path("docs/bench"),
    model: Annotated[Path | None, typer.Option("--model", exists=True, dir_okay=False,
                                               help="a ranker.json (default: the shipped one)")] = None,
    json_output: JsonOption = False,
) -> None:
    """How well the ranker's score reads as a probability, per store size (10, 50, 200 turns, full
    conversations): the reliability tables ``engram bench fit`` measured, in-sample and leave-one-
    conversation-out, as markdown tables and a plot (``ranker_calibration.png`` in ``--out``)."""
    from engram.bench.calibration import PLOT_FILE, in_size_order, markdown_table, plot_reliability
    from engram.read.recipes import RANKER_MODEL_PATH

    report = json.loads((model or RANKER_MODEL_PATH).read_text(encoding="utf-8"))["report"]
    plot = plot_reliability(report, out / PLOT_FILE)
    if json_output:
        typer.echo(json.dumps({"plot": str(plot) if plot else None,
                               "in_sample": report["calibration_in_sample"],
                               "leave_one_conversation_out": report["calibration_leave_one_conversation_out"]},
                              indent=2))
        return
    for title, key in (("In-sample", "calibration_in_sample"),
                       ("Leave one conversation out", "calibration_leave_one_conversation_out")):
        typer.echo(f"## {title}\n\n{markdown_table(in_size_order(report, key))}")
    typer.echo(f"plot: {plot}" if plot else "plot not drawn: matplotlib (the bench extra) is not installed")


def register(app: typer.Typer) -> None:
    """Add these commands to ``app`` (``engram bench``), grouped in their own ``--help`` panel."""
    commands = (("redteam", redteam), ("updates", updates), ("fit-updates", fit_updates_command),
                ("fit-pair-reader", fit_pair_reader_command),
                ("feedback", feedback), ("experience", experience), ("fit", fit_command),
                ("calibration", calibration_command))
    for name, command in commands:
        app.command(name, rich_help_panel=QUALITY_PANEL)(command)
