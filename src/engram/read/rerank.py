"""Read path, step 3 (learned recipes): describe each candidate by a few cheap features and rank by a
linear model whose weights were fitted on LoCoMo and checked leave-one-conversation-out.

Features of a candidate memory (all computed from the candidate pool, no extra index):

- ``lexical``: its BM25 score over text + index keys, divided by the best in the pool (1 for the best
  lexical match; BM25's term weights depend on the store's size, a share of the best does much less:
  in a one-memory store a match scores ~1e-6 but is still the best one);
- ``dense``: cosine similarity of the query and its stored vector;
- ``name_free_dense``: the same with the names of the speakers the query names left out of the query
  ("Would Caroline pursue writing?" -> "Would pursue writing?"): a name in the query pulls its vector toward
  everything that person said and everything said to them; without it the vector finds the topic, and
  ``speaker`` says whose turn it is (``dense`` itself when the query names no speaker);
- ``speaker``: 1 when the person who said it is named in the query;
- ``time_match`` / ``time_near``: its event time falls in the query's time range / in the range or
  the 14 days after it (events are told a little after they happen);
- ``time_mention``: its text says when something happens (a date, "last week": what "When..." asks for);
- ``day_lexical`` / ``day_dense``: the mean of the (up to) 3 best ``lexical`` / ``dense`` values of the
  pool memories from the same day: a conversation that matches as a whole lifts each of its turns (a
  memory alone on its day has its own values, whatever the size of the store);
- ``length``: ``log(1 + characters)``: longer turns carry more facts.

For a question that asks for several things (``engram.read.query.asks_for_several``: a list, a count, a
comparison), whose pieces are usually told on different days, each memory's linear score is then lowered by
``day_repeat_penalty`` (fitted by ``engram bench fit``) for every higher-ranked memory of its own day
(``spread_days``): one day's turns no longer fill the top of the list.

The score is ``sigmoid(bias + sum(weight_f * feature_f))``: the probability that the memory is relevant
to the query, calibrated by ``engram bench fit`` on stores of 10, 50, 200 and all turns of each LoCoMo
conversation (each size weighted alike), so that it reads the same in a tiny store and a large one."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from engram.models import MemoryItem, TimeRange
from engram.read.fuse import Fused
from engram.read.timeparse import mentions_time

FEATURES = ("lexical", "dense", "speaker", "time_match", "time_near", "time_mention", "day_lexical", "day_dense",
            "length", "name_free_dense")
#: A best BM25 at least this high means some memory shares a distinctive word with the query (BM25 of a
#: distinctive term match is typically 2-15; in a tiny store every term is common and BM25 is ~0).
DISTINCTIVE_BM25 = 1.0
#: How many of a day's best pool values its ``day_*`` features average.
DAY_TOP = 3
#: Days after a query's time range that still count as ``time_near``.
TIME_NEAR_DAYS = 14
_NAME_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


@dataclass
class Scored:
    """A candidate with its feature values and linear score (before the sigmoid)."""

    memory: MemoryItem
    features: dict[str, float]
    linear: float = 0.0
    contributions: dict[str, float] = field(default_factory=dict)


def query_names(text: str) -> frozenset[str]:
    """The lower-cased words of the query, possessives stripped ("Ana's" -> "ana"), to match names."""
    return frozenset(word.lower() for word in _NAME_WORD.findall(text.replace("’", "'")) if len(word) > 1)


def speaker_named(memory: MemoryItem, names: frozenset[str]) -> bool:
    """True when some word of the memory's speaker name (2+ letters) is among the query's words."""
    speaker = memory.speaker
    return bool(speaker) and any(part.lower() in names for part in _NAME_WORD.findall(speaker or "")
                                 if len(part) > 1)


def named_speaker_words(memories: Sequence[MemoryItem], query_text: str) -> set[str]:
    """The words of the query (lower-cased) that name a speaker of one of ``memories``."""
    names = query_names(query_text)
    return {part.lower() for memory in memories for part in _NAME_WORD.findall(memory.speaker or "")
            if part.lower() in names}


def without_words(text: str, words: set[str]) -> str:
    """``text`` with these words (any case, possessive included) removed."""
    if not words:
        return text
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, sorted(words))) + r")(?:['’]s)?\b", re.IGNORECASE)
    return " ".join(pattern.sub(" ", text).split())


def memory_day(memory: MemoryItem) -> date:
    """The UTC day a memory's event happened (its validity start, else its creation)."""
    return memory.began_at.date()


def candidate_features(memories: Sequence[MemoryItem], lexical: Mapping[str, float], dense: Mapping[str, float],
                       query_text: str, time_range: TimeRange | None,
                       name_free: Mapping[str, float] | None = None) -> list[Scored]:
    """Feature values of every candidate memory (see the module docstring); ``name_free``: the similarity of
    each to the query without the speakers' names (``engram.read.pipeline.name_free_similarity``; missing
    entries, or all when None, take the ``dense`` value)."""
    best_lexical = max(lexical.values(), default=0.0)
    names = query_names(query_text)
    scored = []
    for memory in memories:
        raw = lexical.get(memory.id, 0.0)
        features = {
            "lexical": raw / best_lexical if best_lexical > 0 else 0.0,
            "dense": dense.get(memory.id, 0.0),
            "name_free_dense": (name_free or dense).get(memory.id, dense.get(memory.id, 0.0)),
            "speaker": float(speaker_named(memory, names)),
            "time_mention": float(mentions_time(memory.memory)),
            "length": math.log1p(len(memory.memory)),
        }
        features.update(time_features(memory, time_range))
        scored.append(Scored(memory, features))
    add_day_features(scored)
    return scored


def time_features(memory: MemoryItem, time_range: TimeRange | None) -> dict[str, float]:
    """``time_match`` and ``time_near`` of one memory (0 when the query names no time)."""
    if time_range is None:
        return {"time_match": 0.0, "time_near": 0.0}
    moment = memory.began_at
    after_start = time_range.start is None or moment >= time_range.start
    before_end = time_range.end is None or moment < time_range.end
    near_end = time_range.end is None or moment < time_range.end + timedelta(days=TIME_NEAR_DAYS)
    return {"time_match": float(after_start and before_end), "time_near": float(after_start and near_end)}


def add_day_features(scored: Sequence[Scored]) -> None:
    """Set ``day_lexical``/``day_dense``: the mean of the (up to) ``DAY_TOP`` best values of the same day."""
    by_day: dict[date, list[Scored]] = defaultdict(list)
    for item in scored:
        by_day[memory_day(item.memory)].append(item)
    for group in by_day.values():
        for name in ("lexical", "dense"):
            best = sorted((item.features[name] for item in group), reverse=True)[:DAY_TOP]
            value = sum(best) / len(best)
            for item in group:
                item.features[f"day_{name}"] = value


def linear_scores(scored: Sequence[Scored], weights: Mapping[str, float]) -> None:
    """Set each candidate's ``linear`` score and per-feature ``contributions`` (weight * value)."""
    for item in scored:
        item.contributions = {name: weights.get(name, 0.0) * item.features.get(name, 0.0) for name in FEATURES}
        item.linear = sum(item.contributions.values())


def day_repeats(linear: Sequence[float], days: Sequence[date]) -> list[int]:
    """For each candidate (its linear score and day), how many candidates of the same day score higher."""
    seen: dict[date, int] = defaultdict(int)
    repeats = [0] * len(linear)
    for index in sorted(range(len(linear)), key=lambda index: -linear[index]):
        repeats[index] = seen[days[index]]
        seen[days[index]] += 1
    return repeats


def spread_days(scored: Sequence[Scored], penalty: float) -> None:
    """Lower each candidate's ``linear`` score by ``penalty`` for every candidate of the same day ranked above
    it (recorded as the ``day_repeat`` contribution). Ranking by the result equals picking, one at a time,
    the best score less ``penalty`` per memory already picked from its day."""
    if penalty <= 0:
        return
    repeats = day_repeats([item.linear for item in scored], [memory_day(item.memory) for item in scored])
    for item, count in zip(scored, repeats, strict=True):
        if count:
            item.contributions["day_repeat"] = -penalty * count
            item.linear -= penalty * count


def sigmoid(value: float) -> float:
    """The logistic function, safe for large magnitudes."""
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    exp = math.exp(value)
    return exp / (1.0 + exp)


def rank(scored: Sequence[Scored], bias: float) -> list[Fused]:
    """Candidates best first as ``Fused`` entries: score ``sigmoid(bias + linear)``, features and
    weighted contributions as components (for ``explain``)."""
    ordered = sorted(scored, key=lambda item: -item.linear)
    return [
        Fused(item.memory.id, sigmoid(bias + item.linear),
              {**item.features, **{f"w_{name}": value for name, value in item.contributions.items()},
               "linear": item.linear})
        for item in ordered
    ]
