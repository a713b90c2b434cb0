"""Benchmark output: the results JSON, per-question JSONL, a Markdown report and PNG plots.

matplotlib is the optional ``bench`` extra; it is imported lazily with the Agg backend, and the
report says so when it is missing instead of failing."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SYSTEM_ORDER = ("engram", "bm25", "dense")
PLOT_FILES = {"recall_at_k": "recall_at_k.png", "recall_vs_budget": "recall_vs_budget.png",
              "latency": "search_latency.png"}


def ordered_systems(names: Sequence[str]) -> list[str]:
    """Engram first, then the baselines, then anything else alphabetically."""
    known = [name for name in SYSTEM_ORDER if name in names]
    return known + sorted(name for name in names if name not in SYSTEM_ORDER)


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: ``-`` for missing or NaN values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON (NaN written as null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_without_nan(data), indent=2, default=str) + "\n", encoding="utf-8")


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write one JSON object per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(_without_nan(row), default=str) + "\n")


def _without_nan(data: Any) -> Any:
    if isinstance(data, float) and math.isnan(data):
        return None
    if isinstance(data, dict):
        return {key: _without_nan(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_without_nan(value) for value in data]
    return data


def describe_machine(machine: dict[str, Any]) -> str:
    """``"2 cores, AMD EPYC, Python 3.11.7, load 1.2"``."""
    text = f"{machine['cores']} cores, {machine['cpu']}, Python {machine['python']}"
    if machine.get("load_average") is not None:
        text += f", load average {machine['load_average']:.1f} at start"
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def headline_k(ks: Sequence[int]) -> int:
    """The cut-off used in the per-category table: 10 when measured, else the largest k."""
    return 10 if 10 in ks else max(ks)


def side_by_side_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the main table: metrics down, systems and Engram's ratios across."""
    systems = results["systems"]
    names = ordered_systems(list(systems))
    ratio_names = [key for key in results.get("ratios", {}) if key.startswith("engram/") and "full" not in key]
    header = ["metric", *names, *ratio_names]
    ks, budgets = results["settings"]["ks"], results["settings"]["budgets"]
    keys = [f"recall@{k}" for k in ks] + [f"hit@{k}" for k in ks] + [f"ndcg@{k}" for k in ks]
    keys += [f"session_recall@{k}" for k in ks] + [f"recall@{b}tok" for b in budgets] + [f"tokens@{k}" for k in ks]
    rows: list[list[str]] = []
    for key in keys:
        values = [systems[name]["overall"].get(key) for name in names]
        if all(value is None for value in values):
            continue
        digits = 0 if key.startswith("tokens") else 3
        ratio_cells = [fmt(results["ratios"][ratio].get(key), 2) for ratio in ratio_names]
        rows.append([key, *(fmt(value, digits) for value in values), *ratio_cells])
    full = results.get("full_context", {}).get("tokens_per_query")
    rows.append(["full-context tokens/query", *(fmt(full, 0) for _ in names), *("" for _ in ratio_names)])
    rows.append(["ingest turns/s", *(fmt(systems[n]["ingest"]["turns_per_s"], 0) for n in names),
                 *("" for _ in ratio_names)])
    for percentile in ("p50_ms", "p95_ms"):
        rows.append([f"search {percentile.replace('_ms', '')} ms",
                     *(fmt(systems[n]["search_latency"][percentile], 2) for n in names),
                     *("" for _ in ratio_names)])
    return header, rows


def render_markdown(results: dict[str, Any], plots: dict[str, str] | None = None) -> str:
    """The human-readable report of one accuracy run."""
    systems = results["systems"]
    names = ordered_systems(list(systems))
    machine = results["machine"]
    questions = results["questions"]
    lines = [
        f"# {results['benchmark']} retrieval benchmark",
        "",
        f"- command: `{results.get('command') or '-'}`",
        f"- data: `{results.get('data_file') or '-'}`: {results['conversations']} conversations, "
        f"{questions['total']} questions ({questions['retrieval_scored']} scored for retrieval, "
        f"{questions['abstention']} abstention)",
        f"- machine: {describe_machine(machine)}; date {results['created_at']}",
        f"- search depth {results['settings']['depth']} hits; Engram recipe "
        f"{results['settings'].get('engram_recipe', 'default')}; tokens = characters / 4; "
        f"wall time {fmt(results.get('wall_seconds'), 1)} s",
    ]
    quirks = {key: value for key, value in results.get("quirks", {}).items() if value}
    if quirks:
        lines.append("- data quirks handled: " + ", ".join(f"{key} {value}" for key, value in sorted(quirks.items())))
    header, rows = side_by_side_rows(results)
    lines += ["", "## Systems side by side", "", *_table(header, rows)]
    full_ratio = results.get("ratios", {}).get("engram/full_context_tokens")
    if full_ratio:
        lines += ["", "Engram's context tokens as a fraction of the full history: "
                  + ", ".join(f"{key} {fmt(value, 3)}" for key, value in full_ratio.items())]
    k = headline_k(results["settings"]["ks"])
    categories = sorted({cat for name in names for cat in systems[name]["per_category"]})
    cat_header = ["category", "n", *(f"{name} R@{k}" for name in names), *(f"{name} nDCG@{k}" for name in names)]
    cat_rows = []
    for category in categories:
        first = systems[names[0]]["per_category"].get(category, {})
        cat_rows.append([
            category, fmt(first.get("questions")),
            *(fmt(systems[n]["per_category"].get(category, {}).get(f"recall@{k}")) for n in names),
            *(fmt(systems[n]["per_category"].get(category, {}).get(f"ndcg@{k}")) for n in names),
        ])
    lines += ["", "## Per category", "", *_table(cat_header, cat_rows)]
    abstention_rows = []
    for name in names:
        data = systems[name]["abstention"]
        signal = "abstain flag + confidence" if "abstained" in data else "top score only"
        abstention_rows.append([name, signal, fmt(data.get("precision")), fmt(data.get("recall")),
                                fmt(data.get("f1")), fmt(data.get("auroc"))])
    lines += ["", f"## Abstention ({questions['abstention']} of {questions['total']} questions should abstain)", "",
              *_table(["system", "signal", "precision", "recall", "F1", "AUROC (low confidence)"], abstention_rows)]
    lines += ["", "## QA accuracy", ""]
    qa_systems = [name for name in names if "qa" in systems[name]]
    if qa_systems:
        qa_rows = [[name, fmt(systems[name]["qa"]["accuracy"]), fmt(systems[name]["qa"]["questions"]),
                    fmt(systems[name]["qa"]["latency"]["p50_ms"], 0)] for name in qa_systems]
        lines += _table(["system", "accuracy", "judged", "answer p50 ms"], qa_rows)
    else:
        lines.append(f"Not measured: {results.get('qa', {}).get('note') or 'no LLM endpoint configured'}.")
    errors = {name: systems[name]["errors"] for name in names if systems[name].get("errors")}
    if errors:
        lines += ["", "## Errors", ""] + [f"- {name}: {len(items)} ({items[0]})" for name, items in errors.items()]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{title}]({file})" for title, file in plots.items()]
    elif plots is not None:
        lines += ["", "Plots not drawn: matplotlib (the `bench` extra) is not installed."]
    return "\n".join(lines) + "\n"


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def plot_results(results: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Draw recall@k per system, recall vs token budget and search latency; return ``{title: file}``."""
    pyplot = _pyplot()
    if pyplot is None:
        return {}
    systems = results["systems"]
    names = ordered_systems(list(systems))
    ks, budgets = results["settings"]["ks"], results["settings"]["budgets"]
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn: dict[str, str] = {}

    figure, axes = pyplot.subplots(figsize=(6, 4))
    for name in names:
        axes.plot(ks, [systems[name]["overall"].get(f"recall@{k}") or 0.0 for k in ks], marker="o", label=name)
    axes.set(xlabel="k (hits)", ylabel="evidence recall@k", title=f"{results['benchmark']}: recall@k", ylim=(0, 1))
    axes.grid(alpha=0.3)
    axes.legend()
    drawn["recall@k per system"] = _save(figure, out_dir / PLOT_FILES["recall_at_k"], pyplot)

    figure, axes = pyplot.subplots(figsize=(6, 4))
    for index, name in enumerate(names):
        color = f"C{index}"
        axes.plot(budgets, [systems[name]["overall"].get(f"recall@{b}tok") or 0.0 for b in budgets],
                  marker="o", color=color, label=f"{name} (budget)")
        axes.plot([systems[name]["overall"].get(f"tokens@{k}") or 0.0 for k in ks],
                  [systems[name]["overall"].get(f"recall@{k}") or 0.0 for k in ks],
                  linestyle=":", marker="x", color=color, label=f"{name} (top-k)")
    full = results.get("full_context", {}).get("tokens_per_query")
    title = f"{results['benchmark']}: recall vs context budget"
    if full:
        title += f" (full history ~{full:,.0f} tokens)"
    axes.set(xlabel="context tokens (characters / 4)", ylabel="evidence recall", title=title, ylim=(0, 1))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    drawn["recall vs token budget"] = _save(figure, out_dir / PLOT_FILES["recall_vs_budget"], pyplot)

    figure, axes = pyplot.subplots(figsize=(6, 4))
    percentiles = ("p50_ms", "p95_ms", "p99_ms")
    width = 0.8 / max(1, len(names))
    for position, name in enumerate(names):
        values = [systems[name]["search_latency"].get(p) or 0.0 for p in percentiles]
        axes.bar([index + position * width for index in range(len(percentiles))], values, width, label=name)
    axes.set_xticks([index + width * (len(names) - 1) / 2 for index in range(len(percentiles))],
                    [p.replace("_ms", "") for p in percentiles])
    axes.set(ylabel="search latency (ms)", title=f"{results['benchmark']}: search latency")
    axes.grid(alpha=0.3, axis="y")
    axes.legend()
    drawn["search latency percentiles"] = _save(figure, out_dir / PLOT_FILES["latency"], pyplot)
    return drawn


def _save(figure: Any, path: Path, pyplot: Any) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path.name


def write_report(results: dict[str, Any], records: Sequence[dict[str, Any]], out_dir: Path) -> dict[str, Path]:
    """Write ``results.json``, ``questions.jsonl``, ``report.md`` and the plots into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = plot_results(results, out_dir)
    paths = {"json": out_dir / "results.json", "questions": out_dir / "questions.jsonl",
             "markdown": out_dir / "report.md"}
    results["plots"] = plots
    write_json(paths["json"], results)
    write_jsonl(paths["questions"], records)
    paths["markdown"].write_text(render_markdown(results, plots), encoding="utf-8")
    for file in plots.values():
        paths[file] = out_dir / file
    return paths


def render_scale_markdown(results: dict[str, Any], plots: dict[str, str] | None = None) -> str:
    """The report of a scale run: one row per store, the exact vector scan beside the index, the add cost."""
    machine = results["machine"]
    settings = results["settings"]
    corpus = results["corpus"]
    lines = [
        "# Scale benchmark",
        "",
        f"- command: `{results.get('command') or '-'}`",
        f"- machine: {describe_machine(machine)}; date {results['created_at']}",
        f"- corpus: {corpus['turns']:,} LoCoMo turns recombined in pairs, {corpus['questions']:,} LoCoMo questions "
        f"as queries; source vectors from `{corpus['embedder']}`",
        f"- {settings['queries']} searches per store (limit {settings['top_k']}) in random scopes; "
        f"IVF index for scopes of {settings['ann_min_vectors']:,}+ vectors",
        f"- {results['note']}",
        "",
    ]
    header = ["shape", "n", "scopes", "search p50 ms", "p95 ms", "lexical p95 ms", "store-wide lexical p95 ms",
              "vector p95 ms",
              "exact scan p95 ms", "recall@10", "lexical recall@10", "search recall@10", "cold ms", "bytes/memory",
              "RSS MiB", "load avg"]
    rows = [[row["shape"], f"{row['n']:,}", f"{row['scopes']:,}", fmt(row["search"]["p50_ms"], 1),
             fmt(row["search"]["p95_ms"], 1), fmt(row["lexical"]["p95_ms"], 1),
             fmt(row.get("lexical_storewide", {}).get("p95_ms"), 1), fmt(row["vector"]["p95_ms"], 1),
             fmt(row["vector_exact"]["p95_ms"], 1), fmt(row["recall_at_10_vs_exact"], 3),
             fmt(row.get("lexical_recall_at_10_vs_exact"), 3), fmt(row.get("search_recall_at_10_vs_exact"), 3),
             fmt(row["cold_search_ms"], 0), fmt(row["bytes_per_memory"], 0), fmt(row["rss_mb"], 0),
             fmt(row["loadavg"][0], 1)] for row in results["stores"]]
    lines += _table(header, rows)
    add = results["add"]
    lines += ["", f"One `add` of a single turn (infer=False, lookup embedder) into a scope of "
              f"{add['scope_memories']:,} memories: p50 {fmt(add['add']['p50_ms'], 1)} ms, "
              f"p95 {fmt(add['add']['p95_ms'], 1)} ms (load average {fmt(add['loadavg'][0], 1)})."]
    embedding = results.get("embedding")
    if embedding:
        lines += ["", f"Embedding cost ({embedding['embedder']}): {embedding['texts_per_s']:,.0f} texts/s in batches "
                  f"of 64, one query {fmt(embedding['query']['p50_ms'], 2)} ms p50 / "
                  f"{fmt(embedding['query']['p95_ms'], 2)} ms p95."]
    if plots:
        lines += ["", *(f"![{title}]({file})" for title, file in plots.items())]
    return "\n".join(lines) + "\n"


def plot_scale(results: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Search latency percentiles against n per shape, with the exact vector scan; ``{title: file}``."""
    pyplot = _pyplot()
    if pyplot is None or not results["stores"]:
        return {}
    figure, axes = pyplot.subplots(figsize=(6, 4))
    for shape in dict.fromkeys(row["shape"] for row in results["stores"]):
        rows = sorted((row for row in results["stores"] if row["shape"] == shape), key=lambda row: row["n"])
        sizes = [row["n"] for row in rows]
        axes.plot(sizes, [row["search"]["p95_ms"] for row in rows], "-o", label=f"{shape}: search p95")
        axes.plot(sizes, [row["vector_exact"]["p95_ms"] for row in rows], ":s", label=f"{shape}: exact scan p95")
    axes.set(xscale="log", yscale="log", xlabel="memories in the store", ylabel="latency (ms)",
             title="search latency vs store size")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=8)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {"search latency vs n": _save(figure, out_dir / "scale_latency.png", pyplot)}


def render_concurrency_markdown(results: dict[str, Any]) -> str:
    """The report of a concurrency run."""
    settings = results["settings"]
    machine = results["machine"]
    lines = [
        "# Concurrency benchmark",
        "",
        f"- command: `{results.get('command') or '-'}`",
        f"- machine: {describe_machine(machine)}; date {results['created_at']}",
        f"- {settings['processes']} processes x {settings['operations']} operations "
        f"({settings['add_fraction']:.0%} adds) on one SQLite file, {settings['users']} shared users",
        "",
        *_table(["operations", "errors", "ops/s", "adds/s", "consistent"],
                [[str(results["operations"]), str(results["errors"]), fmt(results["ops_per_s"], 0),
                  fmt(results["adds_per_s"], 0), "yes" if results["consistent"] else "NO"]]),
        "",
        *_table(["operation", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                [[name, str(results[name]["count"]), fmt(results[name]["p50_ms"], 2), fmt(results[name]["p95_ms"], 2),
                  fmt(results[name]["p99_ms"], 2), fmt(results[name]["max_ms"], 2)] for name in ("add", "search")]),
    ]
    if results["error_samples"]:
        lines += ["", "Errors:", *(f"- {error}" for error in results["error_samples"])]
    return "\n".join(lines) + "\n"
