"""The benchmark protocol, the same for every system: per conversation a fresh index, every turn
ingested, every question searched; hits scored against evidence turns through their provenance."""

from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from engram.bench import metrics
from engram.bench.baselines import full_context_tokens
from engram.bench.datasets import Conversation, Question, session_of
from engram.bench.qa import QAJudge
from engram.bench.systems import RetrievalSystem, SearchOutcome
from engram.errors import ValidationError


class ProgressHook(Protocol):
    """Told the number of searches up front, then about each one as it is done."""

    def start(self, total: int) -> None:
        """``total`` searches will be run."""

    def advance(self, description: str, amount: int) -> None:
        """``amount`` more searches are done; ``description`` says what runs now."""

SUMMARY_KEYS_FOR_RATIOS = ("recall", "ndcg", "hit", "session_recall")


@dataclass(frozen=True)
class RunSettings:
    """What to measure: cut-offs ``ks``, token ``budgets``, and how many hits to ask for (``depth``)."""

    ks: tuple[int, ...] = (1, 5, 10, 20)
    budgets: tuple[int, ...] = (500, 1000, 2000)
    depth: int = 100
    limit: int | None = None

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1:
            raise ValidationError("every k must be a positive integer", field="k")
        if not self.budgets or min(self.budgets) <= 0:
            raise ValidationError("every budget must be positive", field="budget")
        if self.depth < max(self.ks):
            raise ValidationError(f"depth {self.depth} is below the largest k {max(self.ks)}", field="depth")
        if self.limit is not None and self.limit < 1:
            raise ValidationError("limit must be at least 1", field="limit")


@dataclass
class SystemTotals:
    """Counters one system accumulates over a run."""

    ingest_turns: int = 0
    ingest_seconds: float = 0.0
    search_seconds: list[float] = field(default_factory=list)
    qa_seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def score_question(question: Question, outcome: SearchOutcome, settings: RunSettings,
                   full_tokens: float) -> dict[str, Any]:
    """Every per-question metric for one system's search outcome."""
    covered_turns = [hit.turn_ids for hit in outcome.hits]
    covered_sessions = [tuple(dict.fromkeys(session_of(turn_id) for turn_id in ids)) for ids in covered_turns]
    texts = [hit.text for hit in outcome.hits]
    record: dict[str, Any] = {
        "question_id": question.question_id,
        "category": question.category,
        "should_abstain": question.should_abstain,
        "retrieval_scored": question.retrieval_scored,
        "confidence": outcome.confidence,
        "abstain": outcome.abstain,
        "full_context_tokens": full_tokens,
        "ranked_turns": [list(ids) for ids in covered_turns[:max(settings.ks)]],
    }
    for k in settings.ks:
        record[f"tokens@{k}"] = metrics.context_tokens(texts, k)
    turns, sessions = question.evidence_turns, question.evidence_sessions
    for k in settings.ks:
        record[f"recall@{k}"] = metrics.recall_at_k(covered_turns, turns, k) if turns else None
        record[f"hit@{k}"] = metrics.hit_at_k(covered_turns, turns, k) if turns else None
        record[f"ndcg@{k}"] = metrics.ndcg_at_k(covered_turns, turns, k) if turns else None
        record[f"session_recall@{k}"] = metrics.recall_at_k(covered_sessions, sessions, k) if sessions else None
        record[f"session_complete@{k}"] = metrics.complete_at_k(covered_sessions, sessions, k) if sessions else None
    for budget in settings.budgets:
        record[f"recall@{budget}tok"] = (metrics.recall_at_budget(covered_turns, texts, turns, budget)
                                         if turns else None)
    return record


def metric_keys(settings: RunSettings) -> list[str]:
    """The per-question metric names that are averaged, in report order."""
    keys: list[str] = []
    for prefix in ("recall", "hit", "ndcg", "session_recall", "session_complete", "tokens"):
        keys.extend(f"{prefix}@{k}" for k in settings.ks)
    keys.extend(f"recall@{budget}tok" for budget in settings.budgets)
    return keys


def summarise_records(records: Sequence[dict[str, Any]], settings: RunSettings) -> dict[str, Any]:
    """Means of every metric over the retrieval-scored records (``None`` when none apply)."""
    scored = [record for record in records if record["retrieval_scored"]]
    summary: dict[str, Any] = {"questions": len(scored)}
    for key in metric_keys(settings):
        summary[key] = metrics.mean_of(scored, key)
    return summary


def summarise_system(records: Sequence[dict[str, Any]], totals: SystemTotals, system: RetrievalSystem,
                     settings: RunSettings) -> dict[str, Any]:
    """Overall and per-category metrics, latency, ingest throughput and abstention of one system."""
    categories = sorted({record["category"] for record in records if record["retrieval_scored"]})
    summary: dict[str, Any] = {
        "overall": summarise_records(records, settings),
        "per_category": {
            category: summarise_records([r for r in records if r["category"] == category], settings)
            for category in categories
        },
        "ingest": {
            "turns": totals.ingest_turns,
            "seconds": totals.ingest_seconds,
            "turns_per_s": totals.ingest_turns / totals.ingest_seconds if totals.ingest_seconds else None,
        },
        "search_latency": metrics.latency_summary(totals.search_seconds),
        "abstention": metrics.abstention_metrics(
            [bool(r["abstain"]) for r in records] if system.has_abstain_signal else None,
            [float(r["confidence"]) for r in records],
            [bool(r["should_abstain"]) for r in records],
        ),
        "errors": totals.errors,
    }
    if any("qa_correct" in record for record in records):
        summary["qa"] = summarise_qa(records, totals)
    return summary


def summarise_qa(records: Sequence[dict[str, Any]], totals: SystemTotals) -> dict[str, Any]:
    """QA accuracy overall and per category (abstention questions counted under their category)."""
    judged = [record for record in records if "qa_correct" in record]
    by_category: dict[str, list[bool]] = {}
    for record in judged:
        key = "abstention" if record["should_abstain"] else record["category"]
        by_category.setdefault(key, []).append(bool(record["qa_correct"]))
    return {
        "questions": len(judged),
        "accuracy": sum(bool(record["qa_correct"]) for record in judged) / len(judged) if judged else None,
        "per_category": {key: sum(values) / len(values) for key, values in sorted(by_category.items())},
        "latency": metrics.latency_summary(totals.qa_seconds),
    }


def ratios(systems: dict[str, dict[str, Any]], settings: RunSettings, reference: str = "engram") -> dict[str, Any]:
    """Engram's overall metrics divided by each other system's, and its tokens over full context."""
    if reference not in systems:
        return {}
    mine = systems[reference]["overall"]
    keys = [f"{prefix}@{k}" for prefix in SUMMARY_KEYS_FOR_RATIOS for k in settings.ks]
    keys += [f"recall@{budget}tok" for budget in settings.budgets] + [f"tokens@{k}" for k in settings.ks]
    result: dict[str, Any] = {}
    for name, summary in systems.items():
        if name == reference:
            continue
        theirs = summary["overall"]
        result[f"{reference}/{name}"] = {
            key: (mine[key] / theirs[key]) if mine.get(key) is not None and theirs.get(key) else None
            for key in keys
        }
    return result


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, Python, platform and 1-minute load average of the machine running the benchmark
    (other work on a shared machine slows every timing)."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load: float | None = os.getloadavg()[0]
    except OSError:
        load = None
    return {"cores": os.cpu_count(), "cpu": cpu, "python": sys.version.split()[0],
            "platform": platform.platform(), "load_average": load}


def run_benchmark(dataset: str, conversations: Sequence[Conversation], systems: Sequence[RetrievalSystem],
                  settings: RunSettings, workdir: Path, *, progress: ProgressHook | None = None,
                  qa: QAJudge | None = None, data_file: str = "",
                  command: str = "") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run every system over every conversation; return ``(results, per-question records)``.

    Each system ingests each conversation into a fresh index under ``workdir`` (removed after),
    then searches every question with ``limit=settings.depth``. QA, when ``qa`` is given, is run
    for the systems that can answer."""
    selected = list(conversations)
    if settings.limit is not None:
        selected = selected[: settings.limit]
    names = [system.name for system in systems]
    if len(set(names)) != len(names):
        raise ValidationError(f"system names must be unique, got {names}", field="systems")
    totals = {system.name: SystemTotals() for system in systems}
    records: dict[str, list[dict[str, Any]]] = {system.name: [] for system in systems}
    stores = workdir / "stores"
    started = time.perf_counter()
    machine = machine_info()
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    if progress is not None:
        progress.start(sum(len(conversation.questions) for conversation in selected) * len(systems))
    for conversation in selected:
        full_tokens = full_context_tokens(conversation)
        for system in systems:
            if progress is not None:
                progress.advance(f"{system.name}: {conversation.conversation_id}", 0)
            shutil.rmtree(stores, ignore_errors=True)
            stores.mkdir(parents=True)
            _run_conversation(system, conversation, settings, stores, full_tokens, totals[system.name],
                              records[system.name], progress, qa)
    shutil.rmtree(stores, ignore_errors=True)
    summaries = {system.name: summarise_system(records[system.name], totals[system.name], system, settings)
                 for system in systems}
    scored = [question for conversation in selected for question in conversation.questions]
    results: dict[str, Any] = {
        "benchmark": dataset,
        "data_file": data_file,
        "command": command,
        "created_at": created_at,
        "machine": machine,
        "settings": {"ks": list(settings.ks), "budgets": list(settings.budgets), "depth": settings.depth,
                     "limit": settings.limit, "tokens": "characters / 4"},
        "conversations": len(selected),
        "questions": {
            "total": len(scored),
            "retrieval_scored": sum(question.retrieval_scored for question in scored),
            "abstention": sum(question.should_abstain for question in scored),
        },
        "quirks": _sum_quirks(selected),
        "systems": summaries,
        "full_context": {"tokens_per_query": metrics.mean_of(
            [{"tokens": full_context_tokens(c)} for c in selected for q in c.questions if q.retrieval_scored],
            "tokens")},
        "ratios": ratios(summaries, settings),
        "qa": {"enabled": qa is not None, "note": "" if qa is not None else "no LLM endpoint configured"},
        "wall_seconds": time.perf_counter() - started,
    }
    if "engram" in summaries and results["full_context"]["tokens_per_query"]:
        full = results["full_context"]["tokens_per_query"]
        results["ratios"]["engram/full_context_tokens"] = {
            f"tokens@{k}": (summaries["engram"]["overall"][f"tokens@{k}"] or 0.0) / full for k in settings.ks
        }
    flat = [{"system": name, **record} for name, items in records.items() for record in items]
    return results, flat


def _run_conversation(system: RetrievalSystem, conversation: Conversation, settings: RunSettings, stores: Path,
                      full_tokens: float, totals: SystemTotals, records: list[dict[str, Any]],
                      progress: ProgressHook | None, qa: QAJudge | None) -> None:
    began = time.perf_counter()
    system.ingest(conversation, stores)
    totals.ingest_seconds += time.perf_counter() - began
    totals.ingest_turns += len(conversation.turns)
    try:
        for question in conversation.questions:
            began = time.perf_counter()
            outcome = system.search(question, settings.depth)
            totals.search_seconds.append(time.perf_counter() - began)
            record = score_question(question, outcome, settings, full_tokens)
            record["conversation_id"] = conversation.conversation_id
            if qa is not None:
                _answer_and_judge(system, question, qa, totals, record)
            records.append(record)
            if progress is not None:
                progress.advance(f"{system.name}: {conversation.conversation_id}", 1)
    finally:
        system.close()


def _answer_and_judge(system: RetrievalSystem, question: Question, qa: QAJudge, totals: SystemTotals,
                      record: dict[str, Any]) -> None:
    began = time.perf_counter()
    try:
        answer = system.answer(question)
    except Exception as error:  # a failing answer is a wrong answer; the run goes on and says so
        totals.errors.append(f"answer {question.question_id}: {type(error).__name__}: {error}")
        answer = ""
    if answer is None:
        return
    totals.qa_seconds.append(time.perf_counter() - began)
    record["qa_answer"] = answer
    record["qa_correct"] = qa.judge(question, answer)


def _sum_quirks(conversations: Sequence[Conversation]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for conversation in conversations:
        for key, value in conversation.quirks.items():
            totals[key] = totals.get(key, 0) + value
    return totals
