"""Retrieval, token, latency and abstention metrics. Pure functions over plain data.

A ranked result list is given as ``covered``: for each hit in rank order, the ids (turns or
sessions) it provides evidence from, taken from the hit's provenance. Memories of any
granularity are scored alike: a summary citing three turns covers all three."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from engram.errors import ValidationError

CHARS_PER_TOKEN = 4.0


def approx_tokens(text: str) -> float:
    """Token count approximated as characters / 4, the same for every system."""
    return len(text) / CHARS_PER_TOKEN


def _check_k(k: int) -> None:
    if k < 1:
        raise ValidationError(f"k must be at least 1, got {k}", field="k")


def covered_in_top_k(covered: Sequence[Iterable[str]], k: int) -> set[str]:
    """All ids provided by the first ``k`` hits."""
    _check_k(k)
    found: set[str] = set()
    for ids in covered[:k]:
        found.update(ids)
    return found


def recall_at_k(covered: Sequence[Iterable[str]], evidence: Iterable[str], k: int) -> float:
    """Fraction of the evidence ids provided by the top ``k`` hits."""
    wanted = set(evidence)
    if not wanted:
        raise ValidationError("recall needs at least one evidence id", field="evidence")
    return len(wanted & covered_in_top_k(covered, k)) / len(wanted)


def hit_at_k(covered: Sequence[Iterable[str]], evidence: Iterable[str], k: int) -> float:
    """1.0 when any evidence id is provided by the top ``k`` hits, else 0.0."""
    return 1.0 if set(evidence) & covered_in_top_k(covered, k) else 0.0


def complete_at_k(covered: Sequence[Iterable[str]], evidence: Iterable[str], k: int) -> float:
    """1.0 when every evidence id is provided by the top ``k`` hits (LongMemEval's recall_all)."""
    wanted = set(evidence)
    return 1.0 if wanted and wanted <= covered_in_top_k(covered, k) else 0.0


def ndcg_at_k(covered: Sequence[Iterable[str]], evidence: Iterable[str], k: int) -> float:
    """NDCG@k where a hit's gain is the number of evidence ids it adds that no earlier hit gave.

    The ideal ranking places one evidence id per rank, so for one-turn-per-hit systems this is
    the usual binary NDCG with duplicates counted once; a hit covering several ids can reach the
    ideal sooner, and the value is capped at 1."""
    _check_k(k)
    wanted = set(evidence)
    if not wanted:
        raise ValidationError("NDCG needs at least one evidence id", field="evidence")
    seen: set[str] = set()
    dcg = 0.0
    for rank, ids in enumerate(covered[:k], start=1):
        new = (set(ids) & wanted) - seen
        seen |= new
        dcg += len(new) / math.log2(rank + 1)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(wanted), k) + 1))
    return min(1.0, dcg / ideal)


def hits_within_budget(texts: Sequence[str], budget_tokens: float) -> int:
    """How many leading hits fit in ``budget_tokens`` (taken in rank order, stopping at the first
    hit that would overflow)."""
    if budget_tokens <= 0:
        raise ValidationError(f"budget must be positive, got {budget_tokens}", field="budget")
    used = 0.0
    for count, text in enumerate(texts):
        used += approx_tokens(text)
        if used > budget_tokens:
            return count
    return len(texts)


def recall_at_budget(covered: Sequence[Iterable[str]], texts: Sequence[str],
                     evidence: Iterable[str], budget_tokens: float) -> float:
    """Evidence recall of the hits that fit in a token budget (0.0 when even the first does not)."""
    wanted = set(evidence)
    if not wanted:
        raise ValidationError("recall needs at least one evidence id", field="evidence")
    count = hits_within_budget(texts, budget_tokens)
    if count == 0:
        return 0.0
    return recall_at_k(covered, wanted, count)


def context_tokens(texts: Sequence[str], k: int) -> float:
    """Approximate tokens of the top ``k`` hit texts."""
    _check_k(k)
    return sum(approx_tokens(text) for text in texts[:k])


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not 0 <= q <= 100:
        raise ValidationError(f"percentile must be within 0..100, got {q}", field="q")
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/mean/max of latencies, in milliseconds."""
    millis = [value * 1000.0 for value in seconds]
    if not millis:
        return {"count": 0, "p50_ms": math.nan, "p95_ms": math.nan, "p99_ms": math.nan,
                "mean_ms": math.nan, "max_ms": math.nan}
    return {
        "count": len(millis),
        "p50_ms": percentile(millis, 50),
        "p95_ms": percentile(millis, 95),
        "p99_ms": percentile(millis, 99),
        "mean_ms": sum(millis) / len(millis),
        "max_ms": max(millis),
    }


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve of ``scores`` predicting ``labels`` (ties count one half).

    None when either class is absent."""
    if len(scores) != len(labels):
        raise ValidationError("scores and labels differ in length", field="labels")
    positives = [score for score, label in zip(scores, labels, strict=True) if label]
    negatives = [score for score, label in zip(scores, labels, strict=True) if not label]
    if not positives or not negatives:
        return None
    ranked = sorted((score, index) for index, score in enumerate(scores))
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(ranked):
        end = start
        while end + 1 < len(ranked) and ranked[end + 1][0] == ranked[start][0]:
            end += 1
        average_rank = (start + end) / 2 + 1
        for position in range(start, end + 1):
            ranks[ranked[position][1]] = average_rank
        start = end + 1
    positive_rank_sum = sum(rank for rank, label in zip(ranks, labels, strict=True) if label)
    count_pos, count_neg = len(positives), len(negatives)
    return (positive_rank_sum - count_pos * (count_pos + 1) / 2) / (count_pos * count_neg)


def abstention_metrics(abstained: Sequence[bool] | None, confidences: Sequence[float],
                       should_abstain: Sequence[bool]) -> dict[str, float | int | None]:
    """Precision and recall of an explicit abstain signal, and AUROC of low confidence.

    ``abstained`` is None for systems with no explicit signal (only AUROC is reported)."""
    result: dict[str, float | int | None] = {
        "questions": len(should_abstain),
        "should_abstain": sum(should_abstain),
        "precision": None,
        "recall": None,
        "f1": None,
        "auroc": auroc([-value for value in confidences], list(should_abstain)),
    }
    if abstained is None:
        return result
    if len(abstained) != len(should_abstain):
        raise ValidationError("abstained and should_abstain differ in length", field="abstained")
    true_pos = sum(1 for said, truth in zip(abstained, should_abstain, strict=True) if said and truth)
    said_count = sum(abstained)
    truth_count = sum(should_abstain)
    precision = true_pos / said_count if said_count else None
    recall = true_pos / truth_count if truth_count else None
    result["precision"] = precision
    result["recall"] = recall
    result["abstained"] = said_count
    if precision is not None and recall is not None and precision + recall > 0:
        result["f1"] = 2 * precision * recall / (precision + recall)
    elif precision is not None or recall is not None:
        result["f1"] = 0.0
    return result


def mean_of(records: Iterable[Mapping[str, float | None]], key: str) -> float | None:
    """Mean of ``record[key]`` over records where it is present and not None."""
    values = [value for record in records if (value := record.get(key)) is not None]
    return sum(values) / len(values) if values else None
