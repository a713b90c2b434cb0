"""``engram bench serve`` end to end on each backend: a real server process, concurrent clients,
no errors, every acknowledged add readable, reports written, and nothing left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engram.bench.serve import ServeBenchSettings, bench_targets, run_serve_bench
from engram.errors import ValidationError
from engram.store.key_store import open_key_store


def test_serve_benchmark_runs_clean(store_url: str, tmp_path: Path) -> None:
    if store_url.startswith("sqlite:///"):
        targets = bench_targets(str(tmp_path / "bench.db"), None, tmp_path, "synthetic")
    else:
        from engram.store.urls import postgres_location

        targets = bench_targets(None, postgres_location(store_url)[0], tmp_path, "synthetic")
        assert targets[0][1].endswith("schema=engram_bench_serve_synthetic")
    settings = ServeBenchSettings(clients=3, duration_s=1.5, add_fraction=0.5, prefill=5, embedder="synthetic")
    results = run_serve_bench(settings, targets, tmp_path / "out")

    (row,) = results["backends"]
    assert results["ok"] and row["errors"] == 0 and row["missing_memories"] == 0
    assert row["operations"] > 0 and row["add"]["count"] > 0 and row["search"]["count"] > 0
    assert row["acknowledged_memories"] >= 3 * 5 and row["readable_memories"] == row["acknowledged_memories"]
    assert row["all"]["p50_ms"] <= row["all"]["p99_ms"]
    assert json.loads((tmp_path / "out" / "serve.json").read_text())["backends"][0]["backend"] == row["backend"]
    assert "| backend | ops/s" in (tmp_path / "out" / "serve.md").read_text()
    assert not list(tmp_path.glob("bench.db*"))
    if row["backend"] == "postgres":
        with open_key_store(url=targets[0][1]) as keys:
            assert not [key for key in keys.list_keys() if key.name == "engram bench serve"]


def test_serve_benchmark_bounds(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as too_many:
        ServeBenchSettings(clients=1000)
    assert too_many.value.field == "clients"
    with pytest.raises(ValidationError):
        ServeBenchSettings(duration_s=3600)
    existing = tmp_path / "mine.db"
    existing.write_bytes(b"data")
    with pytest.raises(ValidationError) as refused:
        bench_targets(str(existing), None, tmp_path)
    assert refused.value.field == "db" and existing.read_bytes() == b"data"
    assert bench_targets(None, "postgresql://u@h/db", tmp_path)[0][1].endswith("?schema=engram_bench_serve")
