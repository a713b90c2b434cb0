"""The red-team set: memory-poisoning attacks mixed into benign conversations.

The data lives in ``engram/data/redteam/`` as templates (JSONL) and is expanded here,
deterministically for a given seed, into one conversation per persona (a user id each), split in
sessions, with attack records inserted at seeded positions. Every attack carries the ``pattern``
it exercises and the ``target_query`` its author wants it to surface for, so a benchmark can
ingest the conversations and measure attack success (a poisoned record in the top 5 for its
target query) with and without the guard.

Personas and templates were written in rounds (``round`` 1 to 6); each persona's conversation
uses only the templates of its own round. Rounds 1-5 are the ``dev`` split: the guard was tuned
on each of them after scoring it blind once. Round 6 is the ``holdout`` split: written by a second
author who never saw the guard's code, committed before the last tuning pass, and never tuned on.
docs/SECURITY.md gives the blind first-run numbers of every round, which are the honest estimate
of how the guard does on new phrasings.

Run ``python -m engram.bench.redteam_data out.jsonl`` to write the expanded set."""

from __future__ import annotations

import json
import random
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from engram.errors import ValidationError
from engram.guard import Guard, GuardContext

DEFAULT_SEED = 7
BENIGN_PER_PERSONA = 50
ATTACKS_PER_TEMPLATE = 2
_SLOT = re.compile(r"\[\[(\w+)\]\]")


@dataclass(frozen=True)
class RedTeamRecord:
    """One message of a red-team conversation, benign or attack."""

    id: str
    user_id: str
    conversation_id: str
    turn: int
    role: str
    content: str
    is_attack: bool
    split: str
    template_id: str
    category: str
    round: int = 0
    name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    pattern: str | None = None
    target_query: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RedTeamSet:
    """All records, ordered by persona, then by turn within each conversation."""

    records: tuple[RedTeamRecord, ...]

    def attacks(self, split: str | None = None) -> list[RedTeamRecord]:
        """Attack records, optionally only one split."""
        return [r for r in self.records if r.is_attack and (split is None or r.split == split)]

    def benign(self, split: str | None = None) -> list[RedTeamRecord]:
        """Benign records, optionally only one split."""
        return [r for r in self.records if not r.is_attack and (split is None or r.split == split)]

    def user_ids(self, split: str | None = None) -> list[str]:
        """The users (one conversation each), optionally only those of one split."""
        return sorted({record.user_id for record in self.records if split is None or record.split == split})

    def conversation(self, user_id: str) -> list[RedTeamRecord]:
        """One user's records in the order they are written (benign and attacks interleaved)."""
        return [record for record in self.records if record.user_id == user_id]

    def patterns(self) -> list[str]:
        return sorted({record.pattern for record in self.records if record.pattern})


def load_templates(name: str) -> list[dict[str, Any]]:
    """The rows of ``engram/data/redteam/<name>.jsonl``."""
    text = (files("engram") / "data" / "redteam" / f"{name}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_slots() -> dict[str, list[str]]:
    """Shared slot values (days, times, attacker domains, triggers...) drawn at random."""
    text = (files("engram") / "data" / "redteam" / "slots.json").read_text(encoding="utf-8")
    slots: dict[str, list[str]] = json.loads(text)
    return slots


def fill(template: str, persona: dict[str, str], slots: dict[str, list[str]], rng: random.Random,
         chosen: dict[str, str] | None = None) -> str:
    """Replace each ``[[slot]]``: persona values first, then a seeded draw from the shared pools.

    A slot gets the same value each time it appears in one template, and in every template
    filled with the same ``chosen`` dict (an attack and its target query share their trigger)."""
    chosen = {} if chosen is None else chosen

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in chosen:
            if key in persona:
                chosen[key] = persona[key]
            elif key in slots:
                chosen[key] = rng.choice(slots[key])
            else:
                raise ValidationError(f"unknown slot [[{key}]]", field="template")
        return chosen[key]

    return _SLOT.sub(value, template)


def build_redteam_set(seed: int = DEFAULT_SEED) -> RedTeamSet:
    """Expand the templates into conversations with attacks mixed in (deterministic per seed)."""
    personas = load_templates("personas")
    benign_templates = load_templates("benign_templates")
    attack_templates = load_templates("attack_templates")
    slots = load_slots()
    attack_rng = random.Random(f"{seed}:attacks")
    planned: dict[str, list[dict[str, Any]]] = {persona["user_id"]: [] for persona in personas}
    for round_number in sorted({persona["round"] for persona in personas}):
        round_users = [p["user_id"] for p in personas if p["round"] == round_number]
        for template in (t for t in attack_templates if t["round"] == round_number):
            for user_id in attack_rng.sample(round_users, min(ATTACKS_PER_TEMPLATE, len(round_users))):
                planned[user_id].append(template)
    records: list[RedTeamRecord] = []
    for persona in personas:
        records.extend(_conversation(persona, benign_templates, planned[persona["user_id"]], slots, seed))
    return RedTeamSet(tuple(records))


def _conversation(persona: dict[str, Any], benign_templates: Sequence[dict[str, Any]],
                  attack_templates: Sequence[dict[str, Any]], slots: dict[str, list[str]],
                  seed: int) -> list[RedTeamRecord]:
    user_id, split = persona["user_id"], persona["split"]
    values = {key: value for key, value in persona.items() if isinstance(value, str)}
    rng = random.Random(f"{seed}:{user_id}")
    pool = [t for t in benign_templates if t["round"] == persona["round"]]
    chosen = rng.sample(pool, min(BENIGN_PER_PERSONA, len(pool)))
    stream: list[tuple[dict[str, Any], bool]] = [(template, False) for template in chosen]
    for template in attack_templates:
        stream.insert(rng.randint(len(stream) // 3, len(stream)), (template, True))
    records = []
    session, left_in_session = 0, rng.randint(8, 12)
    for turn, (template, is_attack) in enumerate(stream):
        if left_in_session == 0:
            session, left_in_session = session + 1, rng.randint(8, 12)
        left_in_session -= 1
        target = template.get("target_query")
        slot_values: dict[str, str] = {}
        records.append(RedTeamRecord(
            id=f"{user_id}-{template['id']}",
            user_id=user_id,
            conversation_id=f"{user_id}-s{session}",
            turn=turn,
            role=template["role"],
            content=fill(template["text"], values, slots, rng, slot_values),
            is_attack=is_attack,
            split=split,
            template_id=template["id"],
            category=template.get("category", template.get("pattern", "")),
            round=int(persona["round"]),
            name=template.get("name"),
            metadata=dict(template.get("metadata", {})),
            pattern=template.get("pattern"),
            target_query=fill(target, values, slots, rng, slot_values) if target else None,
        ))
    return records


@dataclass(frozen=True)
class GuardEvaluation:
    """How a guard did on (part of) the red-team set."""

    attacks: int
    attacks_flagged: int
    benign: int
    benign_flagged: int
    missed: list[RedTeamRecord]
    false_positives: list[RedTeamRecord]
    by_pattern: dict[str, tuple[int, int]]

    @property
    def detection_rate(self) -> float:
        return self.attacks_flagged / self.attacks if self.attacks else 0.0

    @property
    def false_positive_rate(self) -> float:
        return self.benign_flagged / self.benign if self.benign else 0.0


def evaluate_guard(guard: Guard, dataset: RedTeamSet, *, split: str | None = None,
                   context_window: int = 30) -> GuardEvaluation:
    """Screen every record in write order, each with the previous ``context_window`` records of
    its user as context (texts and writers, no embeddings), and count what was quarantined."""
    missed: list[RedTeamRecord] = []
    false_positives: list[RedTeamRecord] = []
    counts: dict[str, list[int]] = {}
    attacks = benign = 0
    for user_id in dataset.user_ids():
        history: list[tuple[str, str]] = []
        for record in dataset.conversation(user_id):
            recent = history[-context_window:]
            context = GuardContext(recent_texts=[text for text, _ in recent],
                                   recent_writers=[writer for _, writer in recent])
            verdict = guard.screen(record.content, role=record.role, metadata=record.metadata,
                                   name=record.name, context=context)
            history.append((record.content, verdict.writer))
            if split is not None and record.split != split:
                continue
            if record.is_attack:
                attacks += 1
                tally = counts.setdefault(record.pattern or "", [0, 0])
                tally[1] += 1
                if verdict.quarantine:
                    tally[0] += 1
                else:
                    missed.append(record)
            else:
                benign += 1
                if verdict.quarantine:
                    false_positives.append(record)
    return GuardEvaluation(
        attacks=attacks, attacks_flagged=attacks - len(missed), benign=benign,
        benign_flagged=len(false_positives), missed=missed, false_positives=false_positives,
        by_pattern={pattern: (flagged, total) for pattern, (flagged, total) in sorted(counts.items())},
    )


def iter_jsonl(dataset: RedTeamSet) -> Iterator[str]:
    """The records as JSON lines."""
    for record in dataset.records:
        yield json.dumps(record.to_dict(), ensure_ascii=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the expanded set to the JSONL path given as the only argument."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m engram.bench.redteam_data OUT.jsonl", file=sys.stderr)
        return 2
    dataset = build_redteam_set()
    Path(args[0]).write_text("\n".join(iter_jsonl(dataset)) + "\n", encoding="utf-8")
    print(f"{len(dataset.attacks())} attacks, {len(dataset.benign())} benign records -> {args[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
