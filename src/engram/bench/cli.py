"""``engram bench``: retrieval accuracy (``locomo``, ``longmemeval``) and speed (``scale``, ``ingest``,
``pg-scale``, ``concurrency``, ``faults``); the quality and model-fitting commands are in
:mod:`engram.bench.cli_quality`, registered on the same app after these.

Progress and tables go to stderr when ``--json`` prints the results JSON to stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from engram.bench import cli_quality
from engram.bench.cli_support import (
    ACCURACY_PANEL,
    SPEED_PANEL,
    BudgetOption,
    DataOption,
    DepthOption,
    InferOption,
    JsonOption,
    KOption,
    OutOption,
    QAOption,
    RecipeOption,
    RichProgress,
    SystemsOption,
    bench_app,
    command_line,
    console_for,
    fail,
    parse_ints,
    parse_spread,
    parse_systems,
    progress_bar,
)
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

DEFAULT_SYSTEMS = ",".join(SYSTEM_NAMES)


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

    console = console_for(json_output)
    try:
        settings = RunSettings(ks=parse_ints(k, "k"), budgets=parse_ints(budget, "budget"), depth=depth, limit=limit)
        names = parse_systems(systems)
        runner = run_locomo if benchmark == "locomo" else run_longmemeval
        with progress_bar(console) as progress:
            run = runner(data, settings, out, systems=names, progress=RichProgress(progress), qa=qa,
                         command=command_line(), **options)
    except EngramError as error:
        fail(error)
        return
    if json_output:
        typer.echo(run.files["json"].read_text(encoding="utf-8"))
        return
    console.print(summary_table(run))
    console.print(f"QA: {run.results['qa']['note']}")
    console.print(f"Report: {run.files['markdown']}  (JSON: {run.files['json']})")


@bench_app.command(rich_help_panel=ACCURACY_PANEL)
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
    shared_store: Annotated[bool, typer.Option(
        "--shared-store", help="Engram writes every conversation into one store, a user each (a service with "
        "many users), instead of one store per conversation")] = False,
    speaker_b_as_assistant: Annotated[bool, typer.Option(
        "--speaker-b-as-assistant", help="ingest the second speaker as role 'assistant' (default: both speak as "
        "'user', by name), to measure the assistant-turn policy on turns that carry facts")] = False,
    json_output: JsonOption = False,
) -> None:
    """LoCoMo evidence retrieval: Engram next to BM25 and dense baselines."""
    _accuracy("locomo", data, k, budget, out, limit, depth, systems, qa, json_output, recipe=recipe,
              speaker_prefix=speaker_prefix, infer=infer, stream=stream, shared_store=shared_store,
              second_speaker_role="assistant" if speaker_b_as_assistant else "user")


@bench_app.command(rich_help_panel=ACCURACY_PANEL)
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


@bench_app.command(rich_help_panel=SPEED_PANEL)
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

    console = console_for(json_output)
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
        fail(error)
        return
    results["command"] = command_line()
    plots = plot_scale(results, out)
    results["plots"] = plots
    write_json(out / "scale.json", results)
    (out / "scale.md").write_text(render_scale_markdown(results, plots), encoding="utf-8")
    if json_output:
        typer.echo(json.dumps(results, indent=2, default=str))
    else:
        console.print(f"Report: {out / 'scale.md'}")


@bench_app.command(rich_help_panel=SPEED_PANEL)
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

    console = console_for(json_output)
    try:
        if vs not in (None, "mem0"):
            raise ValidationError(f"cannot compare with {vs!r}; the one system offered is mem0", field="vs")
        settings = IngestSettings(conversations=conversations, repeats=repeats, modes=tuple(iter_modes(modes)),
                                  vs_mem0=vs == "mem0", profile=profile, synchronous=synchronous)
        with progress_bar(console) as progress:
            results = run_ingest(data, settings, embedder=default_embedder(), progress=RichProgress(progress))
    except EngramError as error:
        fail(error)
        return
    results["command"] = command_line()
    files = write_ingest_report(results, out)
    if json_output:
        typer.echo(files["json"].read_text(encoding="utf-8"))
        return
    console.print(files["markdown"].read_text(encoding="utf-8"), markup=False, highlight=False)
    console.print(f"Report: {files['markdown']}  (JSON: {files['json']})")


@bench_app.command("pg-scale", rich_help_panel=SPEED_PANEL)
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

    console = console_for(json_output)
    try:
        with console.status("measuring"):
            sizes = parse_ints(n, "n") if recall else ()
            results = run_pg_scale(url, data, out, embedder=default_embedder(), sizes=sizes,
                                   ef_values=parse_ints(ef, "ef"), queries=queries,
                                   graph=parse_graph(graph))
    except EngramError as error:
        fail(error)
        return
    results["command"] = command_line()
    write_json(out / "pg-scale.json", results)
    (out / "pg-scale.md").write_text(render_pg_scale_markdown(results), encoding="utf-8")
    if json_output:
        typer.echo(json.dumps(results, indent=2, default=str))
    else:
        console.print(f"Report: {out / 'pg-scale.md'}")


@bench_app.command(rich_help_panel=SPEED_PANEL)
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

    console = console_for(json_output)
    try:
        settings = ConcurrencySettings(processes=processes, operations=operations, add_fraction=add_fraction,
                                       users=users)
        with console.status(f"{processes} processes working on one store"):
            results = run_concurrency(settings, out)
    except EngramError as error:
        fail(error)
        return
    results["command"] = command_line()
    write_json(out / "concurrency.json", results)
    (out / "concurrency.md").write_text(render_concurrency_markdown(results), encoding="utf-8")
    if json_output:
        typer.echo(json.dumps(results, indent=2, default=str))
    else:
        console.print(render_concurrency_markdown(results))
    if results["errors"] or not results["consistent"]:
        raise typer.Exit(1)


@bench_app.command(rich_help_panel=SPEED_PANEL)
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

    console = console_for(json_output)
    try:
        settings = FaultSettings(trials=trials, batch=batch, seed=seed, max_delay_ms=max_delay_ms, url=url)
        with progress_bar(console) as progress:
            hook = RichProgress(progress)
            hook.start(trials)
            results = run_faults(settings, out, on_trial=lambda row: hook.advance(
                f"trial {row['trial'] + 1}: {row['kill'].replace('_', ' ')}", 1))
    except EngramError as error:
        fail(error)
        return
    results["command"] = command_line()
    write_json(out / "faults.json", results)
    if json_output:
        typer.echo(json.dumps(results, indent=2, default=str))
    else:
        console.print("\n".join(summary_lines(results)))
        console.print(f"Results: {out / 'faults.json'}")
    if not results["ok"]:
        raise typer.Exit(1)


cli_quality.register(bench_app)

if __name__ == "__main__":
    bench_app()
