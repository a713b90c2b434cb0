"""``engram bench feedback`` on the tiny LoCoMo fixture: the report's shape and its invariants."""

from __future__ import annotations

from pathlib import Path

from engram.bench.feedback import render_markdown, run_feedback
from engram.embed.base import Embedder

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_feedback_bench_reports_recall_by_weight_and_forgetting(tmp_path: Path, embedder: Embedder) -> None:
    results = run_feedback(FIXTURES / "locomo_tiny.json", tmp_path, ks=(1, 5), weights=(0.0, 1.0),
                           horizons=(1, 10_000), embedder=embedder)
    counts = results["counts"]
    assert counts["conversations"] == 2 and counts["earlier"] >= 1
    assert counts["later_shared"] + counts["later_other"] >= 2
    for key in ("w=0.0:recall@1", "w=0.0:recall@5", "w=1.0:recall@5"):
        assert 0.0 <= results["recall"][key]["all"] <= 1.0
    assert results["forgetting"]["1"]["archived"] == 0
    forever = results["forgetting"]["10000"]
    assert forever["archived"] == forever["memories"] > 0 and forever["later_evidence_lost"] == 1.0
    table = render_markdown(results, "engram bench feedback")
    assert "| 1.0 |" in table and "| 10000 |" in table
