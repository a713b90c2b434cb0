"""Fitting the constants Engram ships, reproducibly: L2-regularised logistic regression by Newton's
method (deterministic: same data, same weights, on any machine), and the provenance written with them
(the data's sha256, the seed, the settings and a leave-one-group-out report)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def fit_logistic(features: np.ndarray, labels: np.ndarray, *, l2: float = 1.0, iterations: int = 50,
                 sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Weights and bias minimising the weighted log loss + ``l2/2 * |w|^2`` (the bias is not penalised)."""
    rows, columns = features.shape
    design = np.hstack([features.astype(np.float64), np.ones((rows, 1))])
    target = labels.astype(np.float64)
    weight = np.ones(rows) if sample_weight is None else sample_weight.astype(np.float64)
    penalty = np.full(columns + 1, l2)
    penalty[-1] = 0.0
    theta = np.zeros(columns + 1)
    for _ in range(iterations):
        probability = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -60, 60)))
        gradient = design.T @ (weight * (probability - target)) + penalty * theta
        curvature = design.T @ (design * (weight * probability * (1 - probability))[:, None]) + np.diag(penalty + 1e-9)
        step = np.linalg.solve(curvature, gradient)
        theta -= step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return theta[:-1], float(theta[-1])


def labelled_matrix(examples: Sequence[Any], names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The feature rows (``example.features`` in ``names`` order) and the 0/1 labels (``example.label``)."""
    return (np.array([[example.features[name] for name in names] for example in examples], dtype=np.float64),
            np.array([example.label for example in examples], dtype=np.float64))


def sha256_of(path: str | Path) -> str:
    """The sha256 of a file's bytes (which data a fit came from)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def leave_one_group_out(groups: Sequence[str], fit: Callable[[list[int]], Any],
                        score: Callable[[Any, list[int]], dict[str, float]]) -> dict[str, dict[str, float]]:
    """For each group: fit on the other groups' rows, score on its own rows."""
    report = {}
    for group in sorted(set(groups)):
        train = [index for index, name in enumerate(groups) if name != group]
        test = [index for index, name in enumerate(groups) if name == group]
        report[group] = score(fit(train), test)
    return report


def rounded(values: dict[str, float], digits: int = 4) -> dict[str, float]:
    """Weights rounded for shipping (and for a stable, readable diff when refitted)."""
    return {name: round(float(value), digits) for name, value in values.items()}


def write_model(path: Path, model: dict[str, Any]) -> None:
    """Write a fitted model's JSON (sorted keys, so a refit that changes nothing leaves no diff)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model, indent=2, sort_keys=True) + "\n", encoding="utf-8")
