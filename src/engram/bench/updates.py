"""``engram bench updates``: the current fact over the stale one, on dated scenarios.

Each scenario (``engram/data/updates_*.json``) is a conversation over months in which a fact changes
("I live in Berlin" ... "We finally moved to Lisbon"), or, for distractors, in which a newer turn does
not replace an older one ("I also adopted a cat"). Every turn goes through ``Memory.add`` one turn per
call, as agents write, into the scenario's own user; then each question is searched:

- ``present`` questions (asked at ``reference_date``): current-fact@1 (update scenarios: the current fact
  ranked first) and still-true@1 (distractors: the older fact, still true, ranked first);
- ``past`` questions: the old fact in the top 1 / top 3;
- ``as_of`` questions (``search(..., as_of=...)``): the fact valid then ranked first.

Supersession is scored directly too: detected pairs of update scenarios (recall), and the false
supersession rate: the share of distractor scenarios in which an older, still-true turn was closed.
The same run repeats everything with the write-time detector off (``supersession=False``); read-time
supersession (``engram.read.replaced``) stays on in both. With ``ceiling``, a third run (detector on) lets a
judge that knows each scenario's answers (``LabelJudge``) decide read time's pairs in place of the shipped
models: how far read time gets when every pair is judged right, and so how much of a miss is the judgment and
how much the ranking and the pairing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engram.config import EngramConfig
from engram.embed.base import Embedder
from engram.errors import ValidationError

if TYPE_CHECKING:
    from engram.read.query import SearchQuery
    from engram.read.replaced import ReadPair

SPLITS = {"dev": "updates_dev.json", "holdout": "updates_holdout.json", "holdout2": "updates_holdout2.json",
          "holdout3": "updates_holdout3.json", "holdout4": "updates_holdout4.json",
          "holdout5": "updates_holdout5.json", "holdout6": "updates_holdout6.json",
          "holdout7": "updates_holdout7.json"}
#: Written pairs run as scenarios (``fit_read.pair_scenarios``: the older turn, a filler, the newer turn, a
#: question a month later): fresh writers' pairs (helpers w20 and w21, session 8) that the read models are not
#: trained on (trained on, they lowered current-fact@1 on the blind sets; docs/BENCHMARKS.md, "Eighth session").
PAIR_SPLITS = {"pairs3": "update_pairs_eval3.json", "pairs4": "update_pairs_eval4.json"}


@dataclass(frozen=True)
class QuestionOutcome:
    """Where one question's expected turn ranked (0-based, None when not in the hits)."""

    scenario: str
    scenario_type: str
    kind: str
    question: str
    rank: int | None
    top: str


def load_scenarios(source: str) -> tuple[str, list[dict[str, Any]]]:
    """The scenarios of a bundled split (``SPLITS``: ``dev``, ``holdout``, ...; ``PAIR_SPLITS``: ``pairs3``,
    ``pairs4``) or of a JSON file path."""
    if source in PAIR_SPLITS:
        from engram.bench.fit_read import pair_scenarios

        data = json.loads(resources.files("engram").joinpath("data", PAIR_SPLITS[source]).read_text(encoding="utf-8"))
        return str(data["name"]), pair_scenarios(data["pairs"])
    if source in SPLITS:
        text = resources.files("engram").joinpath("data", SPLITS[source]).read_text(encoding="utf-8")
    else:
        path = Path(source)
        if not path.is_file():
            raise ValidationError(f"no scenario file at {source}", field="data",
                                  hint=f"use one of {', '.join([*SPLITS, *PAIR_SPLITS])} or a JSON file in the "
                                       "same schema")
        text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    scenarios = data.get("scenarios") if isinstance(data, dict) else None
    if not isinstance(scenarios, list) or not scenarios:
        raise ValidationError("expected {\"scenarios\": [...]}", field="data")
    return str(data.get("name", source)), scenarios


def ingest_turns(memory: Any, scenario: dict[str, Any]) -> list[str]:
    """Add each turn in its own call; return the memory id of each turn."""
    ids = []
    for turn in scenario["turns"]:
        message = {"role": turn["role"], "content": turn["content"]}
        if turn["role"] == "user":
            message["name"] = scenario.get("speaker") or "user"
        result = memory.add(message, user_id=scenario["id"], timestamp=turn["timestamp"], infer=False)
        ids.append(result["results"][0]["id"] if result["results"] else "")
    return ids


def _ask(memory: Any, scenario: dict[str, Any], ids: list[str]) -> list[QuestionOutcome]:
    outcomes = []
    for question in scenario["questions"]:
        options: dict[str, Any] = {"user_id": scenario["id"], "limit": 10}
        if question.get("reference_date"):
            options["reference_date"] = question["reference_date"]
        if question["kind"] == "as_of":
            options["as_of"] = question["as_of"]
        hits = [hit["id"] for hit in memory.search(question["question"], **options)["results"]]
        wanted = {ids[question["answer_turn"]], *(ids[i] for i in question.get("also_correct", []))}
        rank = next((position for position, hit in enumerate(hits) if hit in wanted), None)
        top = next((turn["content"] for turn, memory_id in zip(scenario["turns"], ids, strict=True)
                    if hits and memory_id == hits[0]), "")
        outcomes.append(QuestionOutcome(scenario["id"], scenario["type"], question["kind"], question["question"], rank,
                                        top))
    return outcomes


class LabelJudge:
    """A read-time judge (``engram.read.replaced.PairJudge``) that knows the answers. A pair's newer turn replaced
    the older (probability 1) when the scenario says so (``supersedes``, followed through chains: A by B and B by
    C means A by C); it did not (0) when the scenario says the two co-exist (``coexist``); of any other pair (a
    follow-up of the older conversation, an unrelated request) the scenario says nothing, and neither does the
    judge: it gives the probability between read time's two thresholds, which moves nothing. Scenarios are taught
    as they are ingested (``learn``)."""

    def __init__(self) -> None:
        self._verdicts: dict[tuple[str, str], float] = {}

    def learn(self, scenario: dict[str, Any], ids: Sequence[str]) -> None:
        """Record the verdicts on ``scenario``'s pairs by their memory ids."""
        following: dict[int, set[int]] = {}
        for older, newer in scenario["supersedes"]:
            following.setdefault(older, set()).add(newer)
        verdicts = {(older, newer): 0.0 for older, newer in scenario.get("coexist", [])}
        for start in following:
            reached, frontier = set(), list(following[start])
            while frontier:
                index = frontier.pop()
                if index not in reached:
                    reached.add(index)
                    frontier.extend(following.get(index, ()))
            verdicts.update({(start, index): 1.0 for index in reached})
        self._verdicts.update({(ids[older], ids[newer]): verdict for (older, newer), verdict in verdicts.items()
                               if ids[older] and ids[newer]})

    def probabilities(self, pairs: Sequence[ReadPair], query: SearchQuery, ranking: Sequence[str]) -> list[float]:
        """1.0 for each pair whose newer turn replaced the older, 0.0 for co-existing ones, else ``NO_OPINION``."""
        from engram.read.replaced import NO_OPINION

        return [self._verdicts.get((pair.older.id, pair.newer.id), NO_OPINION) for pair in pairs]


def _closed_pairs(memory: Any, ids: list[str]) -> set[tuple[int, int]]:
    """(older, newer) turn index pairs in which the older turn was superseded by the newer one."""
    position = {memory_id: index for index, memory_id in enumerate(ids)}
    pairs = set()
    for index, memory_id in enumerate(ids):
        newer = memory.get(memory_id)["metadata"].get("superseded_by") if memory_id else None
        if newer in position:
            pairs.add((index, position[newer]))
    return pairs


def run_scenarios(scenarios: list[dict[str, Any]], workdir: Path, embedder: Embedder, *, supersession: bool,
                  on_scenario: Callable[[], None] | None = None, knowing_judge: bool = False) -> dict[str, Any]:
    """Ingest and question every scenario with the detector on or off, read time judged by the shipped models
    or, with ``knowing_judge``, by a ``LabelJudge``; return the scores."""
    from engram import Memory

    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    outcomes: list[QuestionOutcome] = []
    detected = expected = false_closed = distractors = closed_any = 0
    with Memory(path=str(workdir / "updates.db"), embedder=embedder,
                config=EngramConfig(supersession=supersession)) as memory:
        judge = LabelJudge() if knowing_judge else None
        memory.pair_judge = judge
        for scenario in scenarios:
            ids = ingest_turns(memory, scenario)
            if judge is not None:
                judge.learn(scenario, ids)
            outcomes.extend(_ask(memory, scenario, ids))
            closed = _closed_pairs(memory, ids)
            if scenario["type"] == "update":
                wanted = {tuple(pair) for pair in scenario["supersedes"]}
                expected += len(wanted)
                detected += len(wanted & closed)
            else:
                distractors += 1
                older = {pair[0] for pair in scenario["coexist"]}
                false_closed += any(old in older for old, _ in closed)
                closed_any += bool(closed)
            if on_scenario is not None:
                on_scenario()
    shutil.rmtree(workdir, ignore_errors=True)
    return {"questions": _question_scores(outcomes),
            "supersession": {"expected_pairs": expected, "detected_pairs": detected,
                             "detection_recall": detected / expected if expected else None,
                             "distractor_scenarios": distractors,
                             "false_supersession_rate": false_closed / distractors if distractors else None,
                             "distractors_with_any_supersession": closed_any},
            "misses": [outcome.__dict__ for outcome in outcomes if outcome.rank != 0]}


def _question_scores(outcomes: list[QuestionOutcome]) -> dict[str, Any]:
    """Top-1 and top-3 per question kind; ``current_fact`` is the present questions of update scenarios
    (the current fact first), ``still_true`` those of distractors (the older fact, still true, first)."""
    scores: dict[str, Any] = {}
    groups = {kind: [outcome for outcome in outcomes if outcome.kind == kind] for kind in ("present", "past", "as_of")}
    groups["current_fact"] = [o for o in groups["present"] if o.scenario_type == "update"]
    groups["still_true"] = [o for o in groups["present"] if o.scenario_type != "update"]
    for kind, chosen in groups.items():
        if chosen:
            scores[kind] = {"n": len(chosen),
                            "at_1": sum(outcome.rank == 0 for outcome in chosen) / len(chosen),
                            "at_3": sum(outcome.rank is not None and outcome.rank < 3 for outcome in chosen)
                            / len(chosen)}
    return scores


def run_updates(source: str, out: Path, embedder: Embedder, *, on_scenario: Callable[[], None] | None = None,
                ceiling: bool = False) -> dict[str, Any]:
    """The scenarios of ``source`` with the supersession detector and without it (same run) and, with
    ``ceiling``, with the detector and read time judged by a ``LabelJudge`` (``knowing_judge``). The first two
    runs' read time is judged by the configured LLM when the environment turns ``read_time_llm`` on and names
    an LLM (``read_time_judge`` in the results says which)."""
    name, scenarios = load_scenarios(source)
    settings = EngramConfig()
    results: dict[str, Any] = {"data": name, "scenarios": len(scenarios),
                               "updates": sum(s["type"] == "update" for s in scenarios),
                               "distractors": sum(s["type"] != "update" for s in scenarios),
                               "read_time_judge": f"llm:{settings.llm.model or settings.llm.provider}"
                               if settings.read_time_llm and settings.llm.enabled else "models"}
    runs = [("engram", True, False), ("without_supersession", False, False)]
    for label, enabled, knowing in runs + ([("knowing_judge", True, True)] if ceiling else []):
        results[label] = run_scenarios(scenarios, out / "stores", embedder, supersession=enabled,
                                       on_scenario=on_scenario, knowing_judge=knowing)
    out.mkdir(parents=True, exist_ok=True)
    (out / "updates.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return results
