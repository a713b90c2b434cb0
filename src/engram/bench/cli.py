"""``engram bench``: a typer sub-app with ``locomo``, ``longmemeval``, ``scale`` and ``concurrency``.

Progress and tables go to stderr when ``--json`` prints the results JSON to stdout."""

from __future__ import annotations

import json
import shlex
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from engram.bench.report import (
    fmt,
    ordered_systems,
    plot_scale,
    render_concurrency_markdown,
    render_scale_markdown,
    write_json,
)
from engram.bench.runner import RunSettings
from engram.bench.suite import SYSTEM_NAMES, SuiteRun
from engram.errors import EngramError, ValidationError
from engram.store.vector_index import ANN_MIN_VECTORS

bench_app = typer.Typer(help="Benchmarks: retrieval accuracy (LoCoMo, LongMemEval), scale and concurrency.",
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


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=False)


def _console(json_output: bool) -> Console:
    return Console(stderr=json_output)


def _command() -> str:
    """The command line as ``engram bench ...``, whether run as ``engram bench`` or ``python -m``."""
    arguments = sys.argv[1:]
    if arguments[:1] == ["bench"]:
        arguments = arguments[1:]
    return "engram bench " + " ".join(shlex.quote(argument) for argument in arguments)


def _fail(error: EngramError) -> None:
    Console(stderr=True).print(f"[red]error[/red] {error}")
    raise typer.Exit(2)


def summary_table(run: SuiteRun) -> Table:
    """A compact terminal table of the headline numbers."""
    results = run.results
    systems = results["systems"]
    names = ordered_systems(list(systems))
    ks = results["settings"]["ks"]
    table = Table(title=f"{results['benchmark']}: {results['questions']['retrieval_scored']} scored questions")
    table.add_column("metric")
    for name in names:
        table.add_column(name, justify="right")
    keys = [f"recall@{k}" for k in ks] + [f"ndcg@{max(ks)}"]
    keys += [f"recall@{b}tok" for b in results["settings"]["budgets"]] + [f"tokens@{max(ks)}"]
    for key in keys:
        table.add_row(key, *(fmt(systems[name]["overall"].get(key), 0 if key.startswith("tokens") else 3)
                             for name in names))
    table.add_row("search p95 ms", *(fmt(systems[name]["search_latency"]["p95_ms"], 2) for name in names))
    table.add_row("abstention AUROC", *(fmt(systems[name]["abstention"]["auroc"]) for name in names))
    return table


def _accuracy(benchmark: str, data: Path, k: str, budget: str, out: Path, limit: int | None, depth: int,
              systems: str, qa: bool, json_output: bool, **options: Any) -> None:
    from engram.bench.locomo import run_locomo
    from engram.bench.longmemeval import run_longmemeval

    console = _console(json_output)
    try:
        settings = RunSettings(ks=parse_ints(k, "k"), budgets=parse_ints(budget, "budget"), depth=depth, limit=limit)
        names = parse_systems(systems)
        runner = run_locomo if benchmark == "locomo" else run_longmemeval
        with _progress(console) as progress:
            run = runner(data, settings, out, systems=names, progress=RichProgress(progress), qa=qa,
                         command=_command(), **options)
    except EngramError as error:
        _fail(error)
        return
    if json_output:
        typer.echo(run.files["json"].read_text(encoding="utf-8"))
        return
    console.print(summary_table(run))
    console.print(f"QA: {run.results['qa']['note']}")
    console.print(f"Report: {run.files['markdown']}  (JSON: {run.files['json']})")


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
DEFAULT_SYSTEMS = ",".join(SYSTEM_NAMES)


@bench_app.command()
def locomo(
    data: DataOption,
    k: KOption = "1,5,10,20",
    budget: BudgetOption = "500,1000,2000",
    out: OutOption = Path("bench-out/locomo"),
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="first N conversations only")] = None,
    depth: DepthOption = 100,
    systems: SystemsOption = DEFAULT_SYSTEMS,
    recipe: RecipeOption = None,
    speaker_prefix: Annotated[bool, typer.Option(
        "--speaker-prefix/--no-speaker-prefix", help="index turns as 'Speaker: text' (all systems alike)")] = True,
    qa: QAOption = True,
    infer: InferOption = False,
    stream: Annotated[bool, typer.Option("--stream", help="Engram ingests one add per turn, in order (as agents "
                                         "write), instead of one add per session")] = False,
    speaker_b_as_assistant: Annotated[bool, typer.Option(
        "--speaker-b-as-assistant", help="ingest the second speaker as role 'assistant' (default: both speak as "
        "'user', by name), to measure the assistant-turn policy on turns that carry facts")] = False,
    json_output: JsonOption = False,
) -> None:
    """LoCoMo evidence retrieval: Engram next to BM25 and dense baselines."""
    _accuracy("locomo", data, k, budget, out, limit, depth, systems, qa, json_output, recipe=recipe,
              speaker_prefix=speaker_prefix, infer=infer, stream=stream,
              second_speaker_role="assistant" if speaker_b_as_assistant else "user")


@bench_app.command()
def longmemeval(
    data: DataOption,
    k: KOption = "1,5,10,20",
    budget: BudgetOption = "500,1000,2000",
    out: OutOption = Path("bench-out/longmemeval"),
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="first N questions only")] = None,
    depth: DepthOption = 100,
    systems: SystemsOption = DEFAULT_SYSTEMS,
    recipe: RecipeOption = None,
    qa: QAOption = True,
    infer: InferOption = False,
    json_output: JsonOption = False,
) -> None:
    """LongMemEval evidence retrieval (one fresh store per question)."""
    _accuracy("longmemeval", data, k, budget, out, limit, depth, systems, qa, json_output, recipe=recipe,
              infer=infer)


@bench_app.command()
def scale(
    data: DataOption,
    n: Annotated[str, typer.Option("--n", help="single-scope store sizes (memories)")] = "100000,1000000",
    spread: Annotated[str, typer.Option("--spread", help="TOTAL:SCOPES stores, comma-separated")] = "1000000:10000",
    queries: Annotated[int, typer.Option("--queries", min=1, help="searches timed per store")] = 300,
    add_scope: Annotated[int, typer.Option("--add-scope", min=1, help="memories in the scope adds go to")] = 10_000,
    add_samples: Annotated[int, typer.Option("--add-samples", min=1, help="single-turn adds timed")] = 200,
    ann_min: Annotated[int, typer.Option("--ann-min", min=1, help="scope size from which the IVF index is used")] = (
        ANN_MIN_VECTORS),
    embedder_cost: Annotated[bool, typer.Option("--embedder-cost/--no-embedder-cost",
                                                help="also time the default embedder")] = True,
    keep: Annotated[bool, typer.Option("--keep/--no-keep", help="keep the stores in --out for reuse")] = True,
    out: OutOption = Path("bench-out/scale"),
    json_output: JsonOption = False,
) -> None:
    """Search p50/p95, recall of the vector index, RSS and bytes per memory of stores of realistic text
    (recombined LoCoMo turns) in one scope and spread over many scopes; cost of one add."""
    from engram.bench.scale import ScaleSettings, run_scale
    from engram.bench.suite import default_embedder

    console = _console(json_output)
    try:
        shapes = tuple(parse_spread(part) for part in spread.split(",") if part.strip())
        settings = ScaleSettings(single=parse_ints(n, "n") if n.strip() else (), spread=shapes, queries=queries,
                                 add_scope=add_scope, add_samples=add_samples, ann_min_vectors=ann_min)

        def show(row: dict[str, Any]) -> None:
            console.print(f"{row['shape']} n={row['n']:,} over {row['scopes']:,} scopes: search p50 "
                          f"{row['search']['p50_ms']:.1f} ms p95 {row['search']['p95_ms']:.1f} ms, recall@10 "
                          f"{row['recall_at_10_vs_exact']:.3f}, RSS {row['rss_mb']:.0f} MiB")

        with console.status("measuring (each store in its own process)"):
            results = run_scale(settings, data, out, embedder=default_embedder(), embedder_cost=embedder_cost,
                                on_row=show, keep_files=keep)
    except EngramError as error:
        _fail(error)
        return
    results["command"] = _command()
    plots = plot_scale(results, out)
    results["plots"] = plots
    write_json(out / "scale.json", results)
    (out / "scale.md").write_text(render_scale_markdown(results, plots), encoding="utf-8")
    if json_output:
        typer.echo(json.dumps(results, indent=2, default=str))
    else:
        console.print(f"Report: {out / 'scale.md'}")


@bench_app.command()
def ingest(
    data: DataOption,
    conversations: Annotated[int | None, typer.Option("--conversations", min=1,
                                                      help="first N conversations only")] = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="runs per mode (turns/s is their median)")] = 3,
    modes: Annotated[str, typer.Option("--modes", help="turn, session, import (comma-separated)")] = (
        "turn,session,import"),
    vs: Annotated[str | None, typer.Option("--vs", help="'mem0': mem0 (infer=False, offline, same embedder) in the "
                                                         "same run, when mem0ai is installed")] = None,
    profile: Annotated[bool, typer.Option("--profile", help="also profile each step of an add (cProfile)")] = False,
    synchronous: Annotated[str, typer.Option("--sqlite-synchronous", help="Engram's SQLite synchronous mode "
                                             "(FULL, the default, syncs at every commit; NORMAL, OFF)")] = "FULL",
    out: OutOption = Path("bench-out/ingest"),
    json_output: JsonOption = False,
) -> None:
    """Write speed: LoCoMo turns/s with one add per turn, per session and via import (p50/p95 per add, the
    embedder's share), optionally next to mem0."""
    from engram.bench.ingest import IngestSettings, iter_modes, run_ingest, write_ingest_report
    from engram.bench.suite import default_embedder

    console = _console(json_output)
    try:
        if vs not in (None, "mem0"):
            raise ValidationError(f"cannot compare with {vs!r}; the one system offered is mem0", field="vs")
        settings = IngestSettings(conversations=conversations, repeats=repeats, modes=tuple(iter_modes(modes)),
                                  vs_mem0=vs == "mem0", profile=profile, synchronous=synchronous)
        with _progress(console) as progress:
            results = run_ingest(data, settings, embedder=default_embedder(), progress=RichProgress(progress))
    except EngramError as error:
        _fail(error)
        return
    results["command"] = _command()
    files = write_ingest_report(results, out)
    if json_output:
        typer.echo(files["json"].read_text(encoding="utf-8"))
        return
    console.print(files["markdown"].read_text(encoding="utf-8"), markup=False, highlight=False)
    console.print(f"Report: {files['markdown']}  (JSON: {files['json']})")


@bench_app.command("pg-scale")
def pg_scale(
    data: DataOption,
    url: Annotated[str, typer.Option("--url", help="postgresql://... (benchmark schemas are created in it)")],
    n: Annotated[str, typer.Option("--n", help="corpus store sizes for the HNSW recall sweep")] = "100000",
    recall: Annotated[bool, typer.Option("--recall/--no-recall", help="run the HNSW recall sweep")] = True,
    ef: Annotated[str, typer.Option("--ef", help="ef_search values to sweep")] = "40,64,100,200,400",
    queries: Annotated[int, typer.Option("--queries", min=1, help="searches per measurement")] = 200,
    graph: Annotated[str, typer.Option("--graph", help="HNSW m,ef_construction of the recall stores")] = "16,64",
    out: OutOption = Path("bench-out/pg-scale"),
    json_output: JsonOption = False,
) -> None:
    """PostgreSQL: search latency next to SQLite on one conversation; HNSW recall@10 per ef_search."""
    from engram.bench.scale_pg import parse_graph, render_pg_scale_markdown, run_pg_scale
    from engram.bench.suite import default_embedder

    console = _console(json_output)
    try:
        with console.status("measuring"):
            sizes = parse_ints(n, "n") if recall else ()
            results = run_pg_scale(url, data, out, embedder=default_embedder(), sizes=sizes,
                                   ef_values=parse_ints(ef, "ef"), queries=queries,
                                   graph=parse_graph(graph))
    except EngramError as error:
        _fail(error)
        return
    results["command"] = _command()
    write_json(out / "pg-scale.json", results)
    (out / "pg-scale.md").write_text(render_pg_scale_markdown(results), encoding="utf-8")
    if json_output:
        typer.echo(json.dumps(results, indent=2, default=str))
    else:
        console.print(f"Report: {out / 'pg-scale.md'}")


def parse_spread(text: str) -> tuple[int, int]:
    """``"1000000:10000"`` -> ``(1000000, 10000)``; a ValidationError naming ``spread`` otherwise."""
    total, _, scopes = text.partition(":")
    values = parse_ints(total, "spread") + parse_ints(scopes or "x", "spread")
    return values[0], values[1]


@bench_app.command()
def concurrency(
    processes: Annotated[int, typer.Option("--processes", min=1, help="worker processes")] = 4,
    operations: Annotated[int, typer.Option("--operations", min=1, help="operations per worker")] = 200,
    add_fraction: Annotated[float, typer.Option("--add-fraction", min=0.0, max=1.0, help="share of adds")] = 0.5,
    users: Annotated[int, typer.Option("--users", min=1, help="users shared by the workers")] = 2,
    out: OutOption = Path("bench-out/concurrency"),
    json_output: JsonOption = False,
) -> None:
    """Several processes adding and searching one store file: throughput, errors, latency."""
    from engram.bench.concurrency import ConcurrencySettings, run_concurrency

    console = _console(json_output)
    try:
        settings = ConcurrencySettings(processes=processes, operations=operations, add_fraction=add_fraction,
                                       users=users)
        with console.status(f"{processes} processes working on one store"):
            results = run_concurrency(settings, out)
    except EngramError as error:
        _fail(error)
        return
    results["command"] = _command()
    write_json(out / "concurrency.json", results)
    (out / "concurrency.md").write_text(render_concurrency_markdown(results), encoding="utf-8")
    if json_output:
        typer.echo(json.dumps(results, indent=2, default=str))
    else:
        console.print(render_concurrency_markdown(results))
    if results["errors"] or not results["consistent"]:
        raise typer.Exit(1)


@bench_app.command()
def faults(
    trials: Annotated[int, typer.Option("--trials", min=1, help="writer processes killed")] = 30,
    batch: Annotated[int, typer.Option("--batch", min=1, help="messages per add call")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="seed of the random kill delays")] = 11,
    max_delay_ms: Annotated[int, typer.Option("--max-delay-ms", min=0,
                                              help="kill within this long after the first ACK")] = 300,
    url: Annotated[str | None, typer.Option("--url", help="postgresql://... (default: a SQLite file in --out)")] = None,
    out: OutOption = Path("bench-out/faults"),
    json_output: JsonOption = False,
) -> None:
    """Crash safety: writers killed with SIGKILL mid-add; acknowledged adds must survive whole."""
    from engram.bench.faults import FaultSettings, run_faults, summary_lines

    console = _console(json_output)
    try:
        settings = FaultSettings(trials=trials, batch=batch, seed=seed, max_delay_ms=max_delay_ms, url=url)
        with _progress(console) as progress:
            hook = RichProgress(progress)
            hook.start(trials)
            results = run_faults(settings, out, on_trial=lambda row: hook.advance(
                f"trial {row['trial'] + 1}: {row['kill'].replace('_', ' ')}", 1))
    except EngramError as error:
        _fail(error)
        return
    results["command"] = _command()
    write_json(out / "faults.json", results)
    if json_output:
        typer.echo(json.dumps(results, indent=2, default=str))
    else:
        console.print("\n".join(summary_lines(results)))
        console.print(f"Results: {out / 'faults.json'}")
    if not results["ok"]:
        raise typer.Exit(1)


class RedTeamSplit(StrEnum):
    """The parts of the red-team set: tuned on, or never seen while tuning."""

    DEV = "dev"
    HOLDOUT = "holdout"


@bench_app.command()
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
    console = _console(False)
    for label in ("without_guard", "with_guard"):
        data = results[label]
        success = data["attack_success"]
        console.print(f"{label}: attack success {success['all']:.1%} (dev {success.get('split:dev', 0):.1%}, "
                      f"holdout {success.get('split:holdout', 0):.1%}); attacks quarantined "
                      f"{data['attacks_quarantined']:.1%}; benign quarantined {data['benign_quarantined']:.1%}")
    console.print(f"Results: {out / 'redteam.json'}")


@bench_app.command()
def updates(
    data: Annotated[str, typer.Option("--data", help="bundled split (dev, holdout) or a scenario JSON file")] = "dev",
    out: OutOption = Path("bench-out/updates"),
    json_output: JsonOption = False,
) -> None:
    """Facts that change: current-fact@1, past and as_of questions, supersession detection and false
    supersession on distractors; with and without the offline detector, one add per turn."""
    from engram.bench.suite import default_embedder
    from engram.bench.updates import load_scenarios, run_updates

    console = _console(json_output)
    try:
        total = len(load_scenarios(data)[1]) * 2
        with _progress(console) as progress:
            hook = RichProgress(progress)
            hook.start(total)
            results = run_updates(data, out, default_embedder(), on_scenario=lambda: hook.advance(data, 1))
    except EngramError as error:
        _fail(error)
        return
    results["command"] = _command()
    write_json(out / "updates.json", results)
    if json_output:
        typer.echo(json.dumps(results, indent=2))
        return
    table = Table(title=f"{results['data']}: {results['updates']} updates, {results['distractors']} distractors")
    table.add_column("metric")
    for label in ("engram", "without_supersession"):
        table.add_column(label, justify="right")
    kinds = ("current_fact", "still_true", "past", "as_of")
    for label_name, path in [*((f"{kind}@1", ("questions", kind, "at_1")) for kind in kinds),
                             ("supersession recall", ("supersession", "detection_recall", "")),
                             ("false supersession", ("supersession", "false_supersession_rate", ""))]:
        table.add_row(label_name, *(fmt(_lookup(results[label], path)) for label in ("engram", "without_supersession")))
    console.print(table)
    console.print(f"Results: {out / 'updates.json'}")


def _lookup(data: dict[str, Any], path: tuple[str, str, str]) -> Any:
    """``data[a][b][c]`` (``c`` empty: ``data[a][b]``), None where a key is missing."""
    value: Any = data
    for key in (part for part in path if part):
        value = value.get(key) if isinstance(value, dict) else None
    return value


@bench_app.command("fit-updates")
def fit_updates_command(
    out: Annotated[Path | None, typer.Option("--out", help="write the model here instead of into the package")] = None,
    json_output: JsonOption = False,
) -> None:
    """Refit the offline supersession model on the dev scenarios (deterministic: re-running reproduces
    the shipped engram/data/models/change_model.json); report dev, leave-one-kind-out and holdout."""
    from engram.bench.fit_updates import fit_updates
    from engram.bench.suite import default_embedder

    result = fit_updates(default_embedder(), out)
    if json_output:
        typer.echo(json.dumps(result, indent=2))
        return
    console = _console(False)
    for name, entry in result["report"].items():
        console.print(f"{name}: precision {entry['precision']:.3f}, recall {entry['recall']:.3f}")
    console.print("model: " + ", ".join(f"{name} {value:+.2f}" for name, value in result["model"].items()))


@bench_app.command("feedback")
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
        _fail(error)
        return
    _report(out, "feedback", results, render_markdown(results, _command()), json_output)


@bench_app.command("experience")
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
    _report(out, "experience", results, render_markdown(results, _command()), json_output)


def _report(out: Path, name: str, results: dict[str, Any], markdown: str, json_output: bool) -> None:
    """Write ``out/<name>.json`` and ``.md``; print the JSON (``--json``) or the Markdown."""
    write_json(out / f"{name}.json", results)
    (out / f"{name}.md").write_text(markdown, encoding="utf-8")
    if json_output:
        typer.echo(json.dumps(results, indent=2))
        return
    _console(json_output).print(markdown)


@bench_app.command("fit")
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

    console = _console(json_output)
    with console.status("fitting the ranker (one conversation at a time)") as status:
        result = fit_ranker(data, default_embedder(), out, on_conversation=lambda name: status.update(f"pooled {name}"),
                            facts=None if facts == "none" else facts)
    if json_output:
        typer.echo(json.dumps(result, indent=2))
        return
    for name, value in result["report"].items():
        console.print(f"{name}: {round(value, 4) if isinstance(value, float) else value}")


@bench_app.command("calibration")
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


if __name__ == "__main__":
    bench_app()
