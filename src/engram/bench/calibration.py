"""How well the ranker's score reads as a probability: reliability tables per store size (written into
``ranker.json`` by ``engram bench fit``) and ``engram bench calibration``, which draws them as a plot and a
markdown table.

A reliability table bins the candidates by predicted probability and gives, per bin, how many there are,
their mean prediction and the share that is really evidence; ``ece`` (expected calibration error) is the
candidate-weighted mean gap between the two."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

BINS = 10
PLOT_FILE = "ranker_calibration.png"
SIZE_NAMES = {"facts": "fact scenarios (a few turns)", "full": "full conversations"}


def reliability(predicted: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """Reliability of ``predicted`` probabilities against 0/1 ``labels``: per-bin rows and the summary."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    gap = 0.0
    for low, high in pairwise(edges):
        inside = (predicted >= low) & ((predicted < high) | (high == 1.0))
        if inside.any():
            mean_predicted, observed = float(predicted[inside].mean()), float(labels[inside].mean())
            gap += abs(mean_predicted - observed) * int(inside.sum())
            rows.append({"from": round(float(low), 2), "to": round(float(high), 2), "candidates": int(inside.sum()),
                         "predicted": round(mean_predicted, 4), "observed": round(observed, 4)})
    count = max(1, len(labels))
    return {"bins": rows, "candidates": len(labels), "ece": round(gap / count, 4),
            "mean_predicted": round(float(predicted.mean()) if len(predicted) else 0.0, 4),
            "observed_rate": round(float(labels.mean()) if len(labels) else 0.0, 4)}


def by_store_size(predicted: np.ndarray, labels: np.ndarray, sizes: Sequence[str],
                  top: Mapping[str, Sequence[float]]) -> dict[str, dict[str, Any]]:
    """A reliability table per store size, with the mean score of each question's best candidate (``top``)."""
    size_of = np.array(sizes)
    tables = {}
    for size in dict.fromkeys(sizes):
        inside = size_of == size
        tables[size] = {**reliability(predicted[inside], labels[inside]),
                        "mean_top_score": round(float(np.mean(top[size])), 4) if top.get(size) else 0.0,
                        "mean_evidence_score": round(float(predicted[inside & (labels > 0)].mean()), 4)
                        if (inside & (labels > 0)).any() else 0.0}
    return tables


def markdown_table(tables: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per store size and probability bin: candidates, mean predicted, observed rate."""
    lines = ["| store size | predicted | candidates | mean predicted | observed rate |", "|---|---|---|---|---|"]
    for size, table in tables.items():
        for row in table["bins"]:
            lines.append(f"| {size} | {row['from']:.1f}-{row['to']:.1f} | {row['candidates']} | "
                         f"{row['predicted']:.3f} | {row['observed']:.3f} |")
    lines += ["", "| store size | candidates | ECE | mean predicted | observed rate | mean top score | "
              "mean evidence score |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {size} | {t['candidates']} | {t['ece']:.3f} | {t['mean_predicted']:.3f} | {t['observed_rate']:.3f} | "
              f"{t['mean_top_score']:.3f} | {t['mean_evidence_score']:.3f} |" for size, t in tables.items()]
    return "\n".join(lines) + "\n"


def in_size_order(report: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The report's tables under ``key``, smallest store first (the file's keys are sorted as text)."""
    tables = report[key]
    return {size: tables[size] for size in report.get("store_sizes", tables) if size in tables}


def plot_reliability(report: Mapping[str, Any], path: Path) -> Path | None:
    """Draw the in-sample and leave-one-conversation-out reliability curves per store size into ``path``
    (None when matplotlib, the ``bench`` extra, is missing)."""
    from engram.bench.report import _pyplot

    pyplot = _pyplot()
    if pyplot is None:
        return None
    figure, panels = pyplot.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for panel, key, title in ((panels[0], "calibration_in_sample", "in-sample"),
                              (panels[1], "calibration_leave_one_conversation_out", "leave one conversation out")):
        panel.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
        for index, (size, table) in enumerate(in_size_order(report, key).items()):
            bins = [row for row in table["bins"] if row["candidates"] >= 5]
            name = f"{size} turns" if size.isdigit() else SIZE_NAMES.get(size, size)
            panel.plot([row["predicted"] for row in bins], [row["observed"] for row in bins], marker="o",
                       color=f"C{index}", label=f"{name} (ECE {table['ece']:.3f})")
        panel.set(xlabel="predicted score", title=f"ranker score, {title}", xlim=(0, 1), ylim=(0, 1))
        panel.grid(alpha=0.3)
        panel.legend(fontsize=8)
    panels[0].set_ylabel("observed share that is evidence")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path
