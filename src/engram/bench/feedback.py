"""``engram bench feedback``: does feedback help later questions, and does forgetting lose what they need?

Per LoCoMo conversation (a fresh SQLite store, turns stored verbatim): the questions with evidence are
taken in order and split in half. Every evidence turn of an *earlier* question is marked useful
(``Memory.feedback``), as a user or an agent that found it useful would. Then the *later* questions are
searched with the strength bonus at several weights (weight 0 is exactly "no feedback": strength plays no
part in ranking), and recall@k is reported for the later questions that share an evidence turn with an
earlier one and for the others. Forgetting is simulated with ``Memory.forget(dry_run=True)`` at several
horizons (days after the feedback): how many memories it would archive and how much of the later questions'
evidence would have been archived."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from engram.bench.datasets import Conversation, Question, load_locomo
from engram.bench.metrics import recall_at_k
from engram.bench.systems import turn_ids_of_hit, turn_metadata
from engram.embed.base import Embedder
from engram.timeutil import utcnow

WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)
HORIZONS_DAYS = (30, 90, 180, 365, 730)


def run_feedback(data: str | Path, workdir: Path, *, ks: Sequence[int] = (5, 10), limit: int | None = None,
                 weights: Sequence[float] = WEIGHTS, horizons: Sequence[int] = HORIZONS_DAYS,
                 embedder: Embedder | None = None) -> dict[str, Any]:
    """Run the measurement over the conversations in ``data``; returns the results as a JSON-ready dict."""
    conversations = load_locomo(data)[:limit]
    workdir.mkdir(parents=True, exist_ok=True)
    recall: dict[str, dict[str, list[float]]] = {}
    forgetting: dict[int, dict[str, int]] = {h: dict.fromkeys(
        ("memories", "archived", "later_evidence", "later_evidence_archived", "shared_evidence",
         "shared_evidence_archived", "later_questions", "later_questions_losing"), 0) for h in horizons}
    counts = {"conversations": 0, "earlier": 0, "later_shared": 0, "later_other": 0}
    for conversation in conversations:
        _one_conversation(conversation, workdir, ks, weights, horizons, recall, forgetting, counts, embedder)
    return {
        "benchmark": "feedback (LoCoMo)", "data": str(data), "counts": counts, "ks": list(ks),
        "recall": {key: {group: round(sum(v) / len(v), 4) if v else None for group, v in groups.items()}
                   for key, groups in recall.items()},
        "forgetting": {str(h): {**f, "archived_share": _share(f["archived"], f["memories"]),
                                "later_evidence_lost": _share(f["later_evidence_archived"], f["later_evidence"]),
                                "shared_evidence_lost": _share(f["shared_evidence_archived"], f["shared_evidence"]),
                                "later_questions_losing_share": _share(f["later_questions_losing"],
                                                                       f["later_questions"])}
                       for h, f in forgetting.items()},
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _one_conversation(conversation: Conversation, workdir: Path, ks: Sequence[int], weights: Sequence[float],
                      horizons: Sequence[int], recall: dict[str, dict[str, list[float]]],
                      forgetting: dict[int, dict[str, int]], counts: dict[str, int],
                      embedder: Embedder | None) -> None:
    from engram import Memory

    path = workdir / f"feedback-{conversation.conversation_id}.db"
    for stale in workdir.glob(f"{path.name}*"):
        stale.unlink()
    user = conversation.conversation_id
    memory_of: dict[str, str] = {}
    with Memory(path=str(path), embedder=embedder) as memory:
        for session in conversation.sessions:
            if not session.turns:
                continue
            added = memory.add([{"role": t.role, "name": t.speaker, "content": t.text,
                                 "metadata": turn_metadata(session, t.turn_id)} for t in session.turns],
                               user_id=user, timestamp=session.date, infer=False)
            memory_of.update(zip((t.turn_id for t in session.turns), (r["id"] for r in added["results"]),
                                 strict=True))
        questions = [q for q in conversation.questions if q.retrieval_scored and set(q.evidence_turns) & set(memory_of)]
        half = len(questions) // 2
        earlier, later = questions[:half], questions[half:]
        fed = {turn for q in earlier for turn in q.evidence_turns if turn in memory_of}
        for turn in sorted(fed):
            memory.feedback(memory_of[turn], useful=True, note="evidence of an earlier question", given_by="bench")
        counts["conversations"] += 1
        counts["earlier"] += len(earlier)
        groups = {q.question_id: "shared" if set(q.evidence_turns) & fed else "other" for q in later}
        counts["later_shared"] += sum(1 for g in groups.values() if g == "shared")
        counts["later_other"] += sum(1 for g in groups.values() if g == "other")
        base = memory.recipe
        for weight in weights:
            memory.recipe = base.model_copy(update={"strength_weight": weight})
            for question in later:
                evidence = [t for t in question.evidence_turns if t in memory_of]
                hits = memory.search(question.question, user_id=user, limit=max(ks),
                                     reference_date=question.reference_date)["results"]
                covered = [turn_ids_of_hit(hit) for hit in hits]
                for k in ks:
                    slot = recall.setdefault(f"w={weight}:recall@{k}", {"shared": [], "other": [], "all": []})
                    value = recall_at_k(covered, evidence, k)
                    slot[groups[question.question_id]].append(value)
                    slot["all"].append(value)
        memory.recipe = base
        now = utcnow()
        for horizon in horizons:
            report = memory.forget(user_id=user, dry_run=True, reference_date=now + timedelta(days=horizon))
            _count_losses(forgetting[horizon], report, memory_of, later, fed)


def _count_losses(tally: dict[str, int], report: dict[str, Any], memory_of: dict[str, str],
                  later: Sequence[Question], fed: set[str]) -> None:
    archived = {entry["id"] for entry in report["memories"]}
    tally["memories"] += report["examined"]
    tally["archived"] += len(archived)
    for question in later:
        evidence = [memory_of[t] for t in question.evidence_turns if t in memory_of]
        lost = [m for m in evidence if m in archived]
        shared = [memory_of[t] for t in question.evidence_turns if t in fed]
        tally["later_evidence"] += len(evidence)
        tally["later_evidence_archived"] += len(lost)
        tally["shared_evidence"] += len(shared)
        tally["shared_evidence_archived"] += sum(1 for m in shared if m in archived)
        tally["later_questions"] += 1
        tally["later_questions_losing"] += 1 if lost else 0


def render_markdown(results: dict[str, Any], command: str) -> str:
    """The results as the Markdown tables docs/LEARNING.md quotes."""
    counts = results["counts"]
    lines = [f"`{command}` (load {results['load']}): {counts['conversations']} conversations, "
             f"{counts['earlier']} earlier questions given feedback, {counts['later_shared']} later questions "
             f"sharing evidence with them, {counts['later_other']} other later questions.", "",
             "| strength_weight | " + " | ".join(f"recall@{k} shared | recall@{k} other | recall@{k} all"
                                               for k in results["ks"]) + " |",
             "|---|" + "---|" * (3 * len(results["ks"]))]
    weights = sorted({key.split(":")[0] for key in results["recall"]}, key=lambda w: float(w[2:]))
    for weight in weights:
        cells = []
        for k in results["ks"]:
            row = results["recall"][f"{weight}:recall@{k}"]
            cells += [f"{row[g]:.3f}" if row[g] is not None else "-" for g in ("shared", "other", "all")]
        lines.append(f"| {weight[2:]} | " + " | ".join(cells) + " |")
    lines += ["", "| days unused | memories archived | later evidence archived | shared evidence archived | "
              "later questions losing evidence |", "|---|---|---|---|---|"]
    for horizon, f in results["forgetting"].items():
        lines.append(f"| {horizon} | {f['archived']}/{f['memories']} ({f['archived_share']:.1%}) | "
                     f"{f['later_evidence_archived']}/{f['later_evidence']} ({f['later_evidence_lost']:.1%}) | "
                     f"{f['shared_evidence_archived']}/{f['shared_evidence']} | "
                     f"{f['later_questions_losing']}/{f['later_questions']} "
                     f"({f['later_questions_losing_share']:.1%}) |")
    return "\n".join(lines) + "\n"
