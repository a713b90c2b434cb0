"""End to end: the benchmark runners and ``engram bench`` on the tiny fixtures, real stores."""

from __future__ import annotations

import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engram.bench.cli import bench_app
from engram.bench.datasets import load_locomo, load_longmemeval
from engram.bench.locomo import run_locomo
from engram.bench.longmemeval import run_longmemeval
from engram.bench.qa import QAJudge, judge_from_environment, parse_verdict
from engram.bench.runner import RunSettings
from engram.bench.systems import EngramSystem
from engram.embed.base import Embedder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SETTINGS = RunSettings(ks=(1, 5, 20), budgets=(50, 500), depth=20)


class CountingProgress:
    def __init__(self) -> None:
        self.total = 0
        self.done = 0

    def start(self, total: int) -> None:
        self.total = total

    def advance(self, description: str, amount: int) -> None:
        self.done += amount


def _in_unit_range(value: float | None) -> bool:
    return value is not None and 0.0 <= value <= 1.0


def test_locomo_run_writes_reports_with_sane_numbers(tmp_path: Path, embedder: Embedder) -> None:
    progress = CountingProgress()
    run = run_locomo(FIXTURES / "locomo_tiny.json", SETTINGS, tmp_path, embedder=embedder, progress=progress,
                     command="test")
    results = run.results
    for name in ("results.json", "questions.jsonl", "report.md"):
        assert (tmp_path / name).stat().st_size > 0
    pngs = sorted(path.name for path in tmp_path.glob("*.png"))
    assert pngs == ["recall_at_k.png", "recall_vs_budget.png", "search_latency.png"]
    assert progress.total == progress.done == 11 * 3
    assert results["questions"] == {"total": 11, "retrieval_scored": 7, "abstention": 3}
    assert set(results["systems"]) == {"engram", "bm25", "dense"}
    for name, summary in results["systems"].items():
        overall = summary["overall"]
        assert overall["questions"] == 7
        assert all(_in_unit_range(overall[f"recall@{k}"]) for k in SETTINGS.ks), name
        assert overall["recall@1"] <= overall["recall@5"] <= overall["recall@20"]
        assert overall["tokens@1"] <= overall["tokens@20"]
        assert summary["ingest"]["turns"] == 13
        assert summary["search_latency"]["count"] == 11
        assert summary["search_latency"]["p50_ms"] > 0
        assert _in_unit_range(summary["abstention"]["auroc"])
        assert not summary["errors"]
    # every conversation has at most 20 turns: systems that return every turn find all evidence
    assert results["systems"]["dense"]["overall"]["recall@20"] == 1.0
    assert results["systems"]["engram"]["overall"]["recall@20"] == 1.0
    assert results["systems"]["engram"]["abstention"]["questions"] == 11
    assert results["full_context"]["tokens_per_query"] > results["systems"]["engram"]["overall"]["tokens@5"]
    assert "engram/bm25" in results["ratios"] and "engram/dense" in results["ratios"]
    assert set(results["systems"]["engram"]["per_category"]) == {"single-hop", "temporal", "multi-hop"}
    assert results["quirks"]["malformed_evidence"] == 1
    records = [json.loads(line) for line in (tmp_path / "questions.jsonl").read_text().splitlines()]
    assert len(records) == 33 and {record["system"] for record in records} == {"engram", "bm25", "dense"}
    report = (tmp_path / "report.md").read_text()
    assert "| recall@5 |" in report and "## Per category" in report and "![recall@k per system]" in report
    assert not list(tmp_path.glob("stores/*")), "per-conversation stores are removed"


def test_longmemeval_run_scores_turns_and_sessions(tmp_path: Path, embedder: Embedder) -> None:
    run = run_longmemeval(FIXTURES / "longmemeval_tiny.json", SETTINGS, tmp_path, embedder=embedder,
                          systems=("engram", "bm25"))
    results = run.results
    assert results["conversations"] == 4
    assert results["questions"] == {"total": 4, "retrieval_scored": 3, "abstention": 1}
    engram = results["systems"]["engram"]
    assert engram["overall"]["session_recall@20"] == 1.0
    assert engram["overall"]["recall@20"] == 1.0  # averaged over the 2 questions with turn evidence
    assert engram["per_category"]["single-session-preference"]["recall@20"] is None
    assert engram["per_category"]["single-session-preference"]["session_recall@20"] == 1.0
    assert results["systems"]["bm25"]["abstention"]["precision"] is None


def test_cli_locomo_json_and_limit(tmp_path: Path) -> None:
    result = CliRunner().invoke(bench_app, [
        "locomo", "--data", str(FIXTURES / "locomo_tiny.json"), "--out", str(tmp_path), "--limit", "1",
        "--k", "1,5", "--budget", "100", "--systems", "bm25,dense", "--json",
    ])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["conversations"] == 1
    assert payload["settings"]["ks"] == [1, 5]
    assert set(payload["systems"]) == {"bm25", "dense"}
    assert (tmp_path / "report.md").exists()


def test_cli_rejects_bad_options(tmp_path: Path) -> None:
    result = CliRunner().invoke(bench_app, ["locomo", "--data", str(FIXTURES / "locomo_tiny.json"),
                                            "--out", str(tmp_path), "--k", "1,x"])
    assert result.exit_code == 2
    assert "k:" in result.output
    result = CliRunner().invoke(bench_app, ["locomo", "--data", str(FIXTURES / "locomo_tiny.json"),
                                            "--out", str(tmp_path), "--systems", "engram,mem0"])
    assert result.exit_code == 2


@pytest.mark.slow
def test_cli_scale_and_concurrency_small(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(bench_app, ["scale", "--data", str(FIXTURES / "locomo_tiny.json"), "--n", "300",
                                       "--spread", "300:3", "--queries", "5", "--add-scope", "50", "--add-samples", "3",
                                       "--ann-min", "200", "--no-embedder-cost", "--no-keep",
                                       "--out", str(tmp_path / "scale"), "--json"])
    assert result.exit_code == 0, result.output
    scale = json.loads(result.stdout)
    assert [(row["shape"], row["n"], row["scopes"]) for row in scale["stores"]] == [("single", 300, 1),
                                                                                  ("spread", 300, 3)]
    for row in scale["stores"]:
        assert row["file_bytes"] > 0 and row["bytes_per_memory"] > 0 and row["rss_mb"] > 0
        assert row["search"]["count"] == 5 and row["vector_exact"]["count"] == 5
        assert 0.0 <= row["recall_at_10_vs_exact"] <= 1.0
        assert 0.0 < row["search_recall_at_10_vs_exact"] <= 1.0
    assert scale["stores"][0]["ann_used"] and not scale["stores"][1]["ann_used"]
    assert scale["add"]["add"]["count"] == 3
    assert (tmp_path / "scale" / "scale.md").exists()
    assert not list((tmp_path / "scale").glob("*.db*"))
    result = runner.invoke(bench_app, ["concurrency", "--processes", "3", "--operations", "30",
                                       "--out", str(tmp_path / "conc"), "--json"])
    assert result.exit_code == 0, result.output
    concurrency = json.loads(result.stdout)
    assert concurrency["errors"] == 0
    assert concurrency["consistent"]
    assert concurrency["operations"] == 90


class _JudgeHandler(BaseHTTPRequestHandler):
    """A one-route OpenAI-compatible server: CORRECT when the prompt's gold answer is Pottery."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        verdict = "CORRECT" if "Gold answer: Pottery" in prompt else "yes" if "unanswerable" in prompt else "WRONG"
        reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": verdict}}],
                            "usage": {"prompt_tokens": 10, "completion_tokens": 1}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        return


def test_qa_judge_against_a_local_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JudgeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("ENGRAM_LLM_BASE_URL", f"http://127.0.0.1:{server.server_port}/v1")
        monkeypatch.setenv("ENGRAM_LLM_MODEL", "judge")
        judge, note = judge_from_environment("locomo")
        assert judge is not None and "judge" in note
        pottery, temporal, *_, adversarial, _ = load_locomo(FIXTURES / "locomo_tiny.json")[0].questions
        assert judge.judge(pottery, "She took up pottery.")
        assert not judge.judge(temporal, "In 2021.")
        assert not judge.judge(pottery, "   ")
        assert judge.judge(adversarial, "The conversation does not say.")
        assert "off-by-one" in QAJudge(judge.llm, "longmemeval").prompt(
            load_longmemeval(FIXTURES / "longmemeval_tiny.json")[1].questions[0], "10 days")
    finally:
        server.shutdown()
        server.server_close()
    monkeypatch.delenv("ENGRAM_LLM_BASE_URL")
    assert judge_from_environment("locomo") == (None, "QA skipped: ENGRAM_LLM_BASE_URL is not set")


@pytest.mark.parametrize(("reply", "verdict"), [("CORRECT", True), ("**Correct.**", True), ("yes", True),
                                                ("WRONG", False), ("incorrect", False), ("No.", False), ("", False)])
def test_judge_verdict_parsing(reply: str, verdict: bool) -> None:
    assert parse_verdict(reply) is verdict


def test_locomo_with_llm_ingests_with_infer_and_answers(tmp_path: Path, embedder: Embedder,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """With an OpenAI-compatible endpoint: ingestion runs add(infer=True), QA answers with Memory.answer."""
    from support.fake_openai import FakeOpenAIServer, Reply

    server = FakeOpenAIServer().start()

    def respond(body: dict[str, object]) -> Reply:
        text = json.dumps(body)
        if "CORRECT or WRONG" in text:
            return Reply.text("CORRECT")
        if '"name": "answer"' in text or "answer_output" in text.lower() or "<memories>" in text:
            return Reply.json({"answer": "a scripted answer", "citations": [], "abstain": False})
        return Reply.json({"facts": [{"text": "a scripted fact", "sources": ["m1"]}]})

    server.responder = respond
    monkeypatch.setenv("ENGRAM_LLM_BASE_URL", server.url)
    monkeypatch.setenv("ENGRAM_LLM_MODEL", "fake")
    try:
        run = run_locomo(FIXTURES / "locomo_tiny.json", SETTINGS, tmp_path / "out", systems=("engram",),
                         embedder=embedder, infer=True, qa=True)
    finally:
        server.stop()
    bodies = [json.dumps(request.body) for request in server.chat_requests]
    assert any("CORRECT or WRONG" in body for body in bodies), "the judge was called"
    assert any("scripted fact" not in body and "facts" in body for body in bodies), "extraction was called"
    engram_qa = run.results["systems"]["engram"]["qa"]
    assert engram_qa["questions"] > 0
    assert all(engram_qa["per_category"][c] == 1.0 for c in ("multi-hop", "temporal", "single-hop")), engram_qa
    assert any('"name": "extract"' in body or "extract" in body for body in bodies)


def test_a_shared_store_holds_every_conversation_a_user_each_and_ranks_as_separate_stores(
        tmp_path: Path, embedder: Embedder) -> None:
    def ranked(run_dir: Path, shared: bool) -> dict[str, list[list[str]]]:
        run_locomo(FIXTURES / "locomo_tiny.json", SETTINGS, run_dir, systems=("engram",), embedder=embedder,
                   qa=False, shared_store=shared)
        records = [json.loads(line) for line in (run_dir / "questions.jsonl").read_text().splitlines()]
        return {record["question_id"]: record["ranked_turns"] for record in records}

    separate, shared = ranked(tmp_path / "separate", False), ranked(tmp_path / "shared", True)
    assert shared == separate and len(shared) == 11
    system = EngramSystem(embedder, shared_store=True)
    conversations = load_locomo(FIXTURES / "locomo_tiny.json")
    for conversation in conversations:
        system.ingest(conversation, tmp_path)
        system.close()
    with sqlite3.connect(tmp_path / "engram-shared.db") as connection:
        users = {row[0] for row in connection.execute("SELECT DISTINCT user_id FROM memories")}
    assert users == {conversation.conversation_id for conversation in conversations} and len(users) == 2
