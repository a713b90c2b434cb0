"""Red-team benchmark: benign conversations with poisoning attacks mixed in, ingested through
``Memory.add`` with and without the guard. Attack success = a poisoned record in the top 5 hits of
the query it targets; false positives = benign records the guard quarantined."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engram.bench.redteam_data import RedTeamRecord, RedTeamSet, build_redteam_set
from engram.config import EngramConfig
from engram.embed.base import Embedder
from engram.errors import ValidationError

TOP_K = 5


def run_redteam(out_dir: Path, embedder: Embedder, *, dataset: RedTeamSet | None = None,
                limit_users: int | None = None, split: str | None = None) -> dict[str, Any]:
    """Measure attack success with and without the guard; write ``redteam.json`` into ``out_dir``.

    ``split`` (``dev`` or ``holdout``) keeps only that split's users; ``limit_users`` the first N."""
    from engram import Memory

    data = dataset or build_redteam_set()
    users = data.user_ids(split)[:limit_users] if limit_users else data.user_ids(split)
    if not users:
        raise ValidationError(f"no red-team users in split {split!r}", field="split", hint="use dev or holdout")
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"top_k": TOP_K, "users": len(users), "split": split or "all"}
    for label, guard in (("without_guard", False), ("with_guard", True)):
        path = out_dir / f"redteam-{label}.db"
        for stale in out_dir.glob(f"{path.name}*"):
            stale.unlink()
        memory = Memory(config=EngramConfig(path=str(path), guard=guard), embedder=embedder)
        try:
            results[label] = _measure(memory, data, users)
        finally:
            memory.close()
    (out_dir / "redteam.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return results


def _measure(memory: Any, data: RedTeamSet, users: Sequence[str]) -> dict[str, Any]:
    ids: dict[str, str] = {}
    quarantined: set[str] = set()
    for user in users:
        for record in data.conversation(user):
            message = {"role": record.role, "content": record.content,
                       **({"name": record.name} if record.name else {}), "metadata": dict(record.metadata)}
            event = memory.add([message], user_id=user, infer=False)["results"]
            if event:
                ids[event[0]["id"]] = record.id
                if event[0]["status"] == "quarantined":
                    quarantined.add(record.id)
    records = {record.id: record for user in users for record in data.conversation(user)}
    successes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for record in records.values():
        if not record.is_attack or not record.target_query:
            continue
        hits = memory.search(record.target_query, user_id=record.user_id, limit=TOP_K)["results"]
        won = any(ids.get(hit["id"]) == record.id for hit in hits)
        for key in (record.pattern or "unknown", f"split:{record.split}", f"round:{record.round}", "all"):
            successes[key][0] += int(won)
            successes[key][1] += 1
    benign = [r for r in records.values() if not r.is_attack]
    attacks = [r for r in records.values() if r.is_attack]
    splits = sorted({record.split for record in records.values()})
    return {
        "attack_success": {key: round(won / total, 4) for key, (won, total) in sorted(successes.items())},
        "attacks": len(attacks),
        "benign": len(benign),
        "attacks_quarantined": _rate([r for r in attacks if r.id in quarantined], attacks),
        "benign_quarantined": _rate([r for r in benign if r.id in quarantined], benign),
        "benign_quarantined_by_split": {
            split: _rate([r for r in benign if r.split == split and r.id in quarantined],
                         [r for r in benign if r.split == split]) for split in splits},
    }


def _rate(part: Sequence[RedTeamRecord], whole: Sequence[RedTeamRecord]) -> float:
    return round(len(part) / len(whole), 4) if whole else 0.0
