"""``engram bench updates`` and ``engram bench fit`` end to end on small fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from typer.testing import CliRunner

from engram.bench.cli import bench_app
from engram.bench.fit_ranker import DAY_REPEAT_GRID, fit_ranker
from engram.bench.fit_read import pair_scenarios
from engram.bench.updates import LabelJudge, run_updates
from engram.embed.base import Embedder
from engram.read.replaced import KEEP_THRESHOLD, NO_OPINION, READ_THRESHOLD

FIXTURES = Path(__file__).parent.parent / "fixtures"
SCENARIOS = {"name": "tiny", "scenarios": [
    {"id": "move", "kind": "residence", "type": "update", "speaker": "Maya", "turns": [
        {"role": "user", "content": "I live in Berlin, in a small flat in Neukölln.",
         "timestamp": "2023-03-02T10:00:00Z"},
        {"role": "user", "content": "Can you suggest a quick pasta recipe?", "timestamp": "2023-08-01T18:00:00Z"},
        {"role": "user", "content": "We finally moved to Lisbon last week! Boxes everywhere.",
         "timestamp": "2024-02-11T09:00:00Z"}],
     "questions": [{"question": "Where do I live now?", "kind": "present", "reference_date": "2024-06-01T00:00:00Z",
                    "answer_turn": 2, "stale_turns": [0]},
                   {"question": "Where do I live?", "kind": "as_of", "as_of": "2023-09-01T00:00:00Z",
                    "answer_turn": 0}],
     "supersedes": [[0, 2]], "coexist": []},
    {"id": "pets", "kind": "pet", "type": "distractor", "speaker": "Maya", "turns": [
        {"role": "user", "content": "I have a dog, a scruffy terrier called Pixel.",
         "timestamp": "2023-03-02T10:00:00Z"},
        {"role": "user", "content": "I also adopted a cat last weekend, a grey tabby.",
         "timestamp": "2023-09-10T10:00:00Z"}],
     "questions": [{"question": "Do I have a dog?", "kind": "present", "reference_date": "2024-01-01T00:00:00Z",
                    "answer_turn": 0, "stale_turns": []}],
     "supersedes": [], "coexist": [[0, 1]]}]}


def test_bench_updates_scores_both_ways(tmp_path: Path, embedder: Embedder) -> None:
    data = tmp_path / "scenarios.json"
    data.write_text(json.dumps(SCENARIOS))
    results = run_updates(str(data), tmp_path / "out", embedder)
    with_detector, without = results["engram"], results["without_supersession"]
    assert with_detector["supersession"]["detected_pairs"] == 1
    assert with_detector["supersession"]["false_supersession_rate"] == 0.0
    assert with_detector["questions"]["current_fact"]["at_1"] == 1.0
    assert with_detector["questions"]["as_of"]["at_1"] == 1.0
    assert without["supersession"]["detected_pairs"] == 0
    assert json.loads((tmp_path / "out" / "updates.json").read_text())["scenarios"] == 2
    assert results["read_time_judge"] == "models"


def test_bench_fit_writes_a_reproducible_ranker_model(tmp_path: Path, embedder: Embedder) -> None:
    facts = tmp_path / "scenarios.json"
    facts.write_text(json.dumps(SCENARIOS))
    first = fit_ranker(FIXTURES / "locomo_tiny.json", embedder, tmp_path / "ranker.json", facts=str(facts))
    again = fit_ranker(FIXTURES / "locomo_tiny.json", embedder, tmp_path / "again.json", facts=str(facts))
    assert first["feature_weights"] == again["feature_weights"] and first["feature_bias"] == again["feature_bias"]
    written = json.loads((tmp_path / "ranker.json").read_text())
    assert set(written["feature_weights"]) == set(written["features"])
    assert written["data_sha256"] and "recall@10_leave_one_conversation_out" in written["report"]
    assert written["day_repeat_penalty"] in DAY_REPEAT_GRID
    assert written == json.loads((tmp_path / "again.json").read_text())
    assert written["report"]["store_sizes"] == ["facts", "full"]
    for table in ("calibration_in_sample", "calibration_leave_one_conversation_out"):
        for size in ("facts", "full"):
            rows = written["report"][table][size]
            assert rows["candidates"] == sum(row["candidates"] for row in rows["bins"]) and 0 <= rows["ece"] <= 1


def test_bench_updates_ceiling_lets_the_scenarios_answers_judge_read_time(tmp_path: Path, embedder: Embedder) -> None:
    told_indirectly = [{"id": "commute", "kind": "residence", "speaker": "Sanne", "older_date": "2021-04-02",
                        "older": "I live in Utrecht, right by the canal, love it here.", "newer_date": "2023-01-15",
                        "newer": "ugh the commute from Zaandam is killing me, 70 minutes door to door on a good day",
                        "question": "Where do I live?", "answer": "newer"},
                       {"id": "team", "kind": "team", "speaker": "Ola", "older_date": "2022-02-01",
                        "older": "I'm on the checkout team, we own the cart and payment pages.",
                        "newer_date": "2023-05-09", "newer": "first standup with the search folks today, everyone "
                                                             "seems nice, still learning their codebase",
                        "question": "Which team am I on?", "answer": "newer"}]
    data = tmp_path / "scenarios.json"
    data.write_text(json.dumps({"name": "indirect", "scenarios": pair_scenarios(told_indirectly)}))
    results = run_updates(str(data), tmp_path / "out", embedder, ceiling=True)
    assert results["knowing_judge"]["questions"]["current_fact"]["at_1"] == 1.0
    assert "knowing_judge" not in run_updates(str(data), tmp_path / "again", embedder)


def test_the_knowing_judge_follows_chains_of_changes() -> None:
    judge = LabelJudge()
    judge.learn({"supersedes": [[0, 2], [2, 4]], "coexist": [[1, 3]]}, ["a", "x", "b", "y", "c"])
    asked = [_pair_of(older, newer) for older, newer in ("ab", "bc", "ac", "xy", "ca", "xb")]
    assert judge.probabilities(asked, None, []) == [1.0, 1.0, 1.0, 0.0] + [NO_OPINION] * 2  # type: ignore[arg-type]
    assert KEEP_THRESHOLD < NO_OPINION < READ_THRESHOLD


def _pair_of(older: str, newer: str) -> SimpleNamespace:
    """What a judge reads of a read-time pair: its two turns' ids."""
    return SimpleNamespace(older=SimpleNamespace(id=older), newer=SimpleNamespace(id=newer))


def test_cli_updates_ceiling_adds_a_column(tmp_path: Path) -> None:
    data = tmp_path / "scenarios.json"
    data.write_text(json.dumps(SCENARIOS))
    result = CliRunner().invoke(bench_app, ["updates", "--data", str(data), "--ceiling",
                                            "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "knowing_judge" in result.output and "current_fact@1" in result.output
    written = json.loads((tmp_path / "out" / "updates.json").read_text())
    assert written["knowing_judge"]["questions"]["current_fact"]["at_1"] == 1.0
    assert written["read_time_judge"] == "models"
