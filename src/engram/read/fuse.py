"""Read path, step 3: fuse the ranked lists of each signal into one ranking."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from engram.store.base import Candidate


@dataclass
class Fused:
    """A candidate after fusion: its fused score and, per signal, its rank and raw score."""

    memory_id: str
    score: float
    components: dict[str, float] = field(default_factory=dict)


def reciprocal_rank_fusion(rankings: Mapping[str, Sequence[Candidate]], weights: Mapping[str, float],
                           k: float) -> list[Fused]:
    """Weighted RRF: ``score = sum_s w_s / (k + rank_s)`` with 1-based ranks, normalised so that a
    candidate ranked first by every weighted signal scores 1.0. Ties keep first-seen order."""
    total_weight = sum(weights.get(signal, 0.0) for signal in rankings) or 1.0
    best = total_weight / (k + 1)
    fused: dict[str, Fused] = {}
    for signal, candidates in rankings.items():
        weight = weights.get(signal, 0.0)
        for rank, candidate in enumerate(candidates, start=1):
            entry = fused.setdefault(candidate.memory_id, Fused(candidate.memory_id, 0.0))
            entry.score += weight / (k + rank) / best
            entry.components[f"{signal}_rank"] = float(rank)
            entry.components[signal] = candidate.score
    return sorted(fused.values(), key=lambda item: -item.score)
