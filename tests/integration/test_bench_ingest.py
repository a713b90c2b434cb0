"""``engram bench ingest`` on a tiny LoCoMo file, and the embedding calls of a batched add."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from engram import Memory
from engram.bench import ingest_mem0
from engram.bench.cli import bench_app
from engram.bench.datasets import load_locomo
from engram.bench.ingest import IngestSettings, TimedEmbedder, run_ingest, session_batches
from engram.embed.base import Embedder

FIXTURE = Path(__file__).parent.parent / "fixtures" / "locomo_tiny.json"
SESSION = ["Did you end up going to the climbing gym?", "Yes, on Tuesday, with my cousin Ray.", "How was it?",
           "Great, though my forearms are still sore.", "What did you climb?", "Mostly the orange routes.",
           "Impressive! Same time next week?", "Sure, Tuesday works.", "Should we invite Mia too?",
           "She is in Porto until Friday.", "Then the week after.", "Deal, I will book the wall."]
TURNS = sum(len(batch.messages) for batch in session_batches(load_locomo(FIXTURE, speaker_prefix=False)))


def test_cli_ingest_reports_every_mode_and_skips_mem0_when_absent(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_mem0, "mem0_available", lambda: False)
    result = CliRunner().invoke(bench_app, ["ingest", "--data", str(FIXTURE), "--repeats", "2", "--vs", "mem0",
                                            "--profile", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert results["turns"] == TURNS > 0 and results["conversations"] == 2
    assert set(results["summary"]) == {"engram"} and results["ratios"] == {}
    assert any("mem0 skipped" in note and "pip install mem0ai" in note for note in results["notes"])
    for mode in ("turn", "session", "import"):
        row = results["summary"]["engram"][mode]
        assert row["repeats"] == 2 and row["turns"] == TURNS
        assert row["turns_per_s"] > 0 and row["turns_per_s_without_embedding"] >= row["turns_per_s"]
        assert 0 < row["turns_per_cpu_s"] <= row["turns_per_cpu_s_without_embedding"]
        assert 0 < row["embedding_share"] < 1 and row["embed_calls_per_add"] == 1
        assert row["per_add"]["p50_ms"] <= row["per_add"]["p95_ms"]
    assert results["summary"]["engram"]["turn"]["adds"] == TURNS
    assert results["summary"]["engram"]["session"]["adds"] == results["sessions"] < TURNS
    steps = {row["step"]: row for row in results["profile"]["turn"]}
    assert steps["whole add (run_add)"]["share"] == 1
    assert steps["guard verdicts: anomalies against the context (screen)"]["ms_per_turn"] > 0
    assert steps["beside them: the model on its own thread (Embedder.embed)"]["ms_per_turn"] > 0
    report = (tmp_path / "ingest.md").read_text(encoding="utf-8")
    assert "one add per session" in report and "supersession check" in report and "mem0 skipped" in report
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "ingest_throughput.png").stat().st_size > 0


def test_cli_ingest_refuses_unknown_modes_and_systems(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(bench_app, ["ingest", "--data", str(FIXTURE), "--modes", "turn,bulk",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 2 and "modes" in result.output
    result = runner.invoke(bench_app, ["ingest", "--data", str(FIXTURE), "--vs", "zep", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "mem0" in result.output


def test_ingest_next_to_mem0_on_the_same_turns(tmp_path: Path, embedder: Embedder) -> None:
    if not ingest_mem0.mem0_available():  # not importorskip: mem0 must first be imported with telemetry off
        pytest.skip("mem0ai is not installed")
    results = run_ingest(FIXTURE, IngestSettings(repeats=1, modes=("turn", "session"), vs_mem0=True),
                         embedder=embedder)
    assert results["mem0"]["compared"] and results["mem0"]["version"]
    for mode in ("turn", "session"):
        assert results["summary"]["mem0"][mode]["turns"] == TURNS
        assert results["ratios"][mode]["turns_per_s"] > 0
    assert results["summary"]["mem0"]["session"]["embed_calls_per_add"] > 1, "mem0 embeds message by message"


def test_a_batched_add_calls_the_embedder_once(tmp_path: Path, embedder: Embedder) -> None:
    counted = TimedEmbedder(embedder)
    session = [{"role": "user" if index % 2 else "assistant", "name": "Bo" if index % 2 else "Ana", "content": text}
               for index, text in enumerate(SESSION)]
    with Memory(path=str(tmp_path / "batched.db"), embedder=counted) as memory:
        counted.reset()
        memory.add(session, user_id="batched", timestamp="2024-05-01T10:00:00Z")
        assert (counted.calls, counted.texts) == (1, len(session))
        counted.reset()
        for message in session:
            memory.add(message, user_id="streamed", timestamp="2024-05-01T10:00:00Z")
        assert (counted.calls, counted.texts) == (len(session), len(session))
        batched = memory.get_all(user_id="batched", limit=100)["results"]
        streamed = {item["memory"]: item for item in memory.get_all(user_id="streamed", limit=100)["results"]}
        vectors = memory.store.get_vectors([item["id"] for item in batched] + [s["id"] for s in streamed.values()])
    for item in batched:
        twin = streamed[item["memory"]]
        assert twin["context_keys"] == item["context_keys"]
        np.testing.assert_allclose(vectors[twin["id"]], vectors[item["id"]], atol=1e-5)
