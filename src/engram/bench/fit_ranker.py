"""``engram bench fit``: fit the learned ranker's weights on LoCoMo-format data, reproducibly.

Every conversation is ingested through ``Memory.add`` (one add per session); for every question with
evidence, the read path's own candidate step and features (``engram.read.pipeline`` /
``engram.read.rerank``) describe each pooled candidate, labelled 1 when it cites an evidence turn. The
feature weights, plus one offset per feature for each question form (``when``, ``hypothetical``), are
fitted listwise on the full conversations (deterministic gradient ascent from zero). The score
``sigmoid(bias + linear)`` is then calibrated (the linear score's scale and the bias, by Newton's method)
on stores of several sizes: each conversation in full and subsampled to ``STORE_SIZES`` turns (the
evidence turns of a few questions plus turns drawn with a fixed seed), each size weighing alike, so that
the score is the probability that a memory is relevant in a tiny store as in a large one. The report gives
recall@10 of the pooled ranking (full conversations; overall and per question category) and the reliability
of the score per store size, in-sample and leave-one-conversation-out (each conversation scored by a model
fitted on the others).
Two settings are chosen by cross-validation, together: the L2 penalty of the per-form offsets (``form_l2``,
from ``FORM_L2_GRID``: a form's offsets rest on its few questions, ``hypothetical`` on about 30) and the
``day_repeat_penalty`` of questions that ask for several things (``engram.read.rerank.spread_days``, from
``DAY_REPEAT_GRID``): the pair with the best mean recall@10 on held-out conversations (each scored by the model
fitted on the others with that ``form_l2``). The leave-one-conversation-out report chooses the pair for each
held-out conversation the same way from the other conversations alone (nested), so the held-out conversation
picks nothing."""

from __future__ import annotations

import json
import random
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np

from engram.bench.calibration import by_store_size
from engram.bench.datasets import Conversation, Question, load_locomo
from engram.bench.fitting import fit_logistic, rounded, sha256_of, write_model
from engram.bench.systems import EngramSystem, turn_ids_of_hit
from engram.bench.updates import ingest_turns, load_scenarios
from engram.embed.base import Embedder
from engram.read.pipeline import dense_scores, gather_candidates, name_free_similarity
from engram.read.query import SearchQuery, build_query
from engram.read.recipes import RANKER_MODEL_PATH, RECIPES
from engram.read.rerank import FEATURES, Scored, candidate_features, day_repeats, memory_day

FORMS = ("hypothetical", "when")
L2 = 1.0
#: The listwise fit's L2 penalty on the feature weights (and the smallest one tried on the per-form offsets).
L2_LISTWISE = 0.001
#: The L2 penalties tried on the per-form offsets (``form_l2``): the fit keeps the one, with the day-repeat
#: penalty, with the best held-out recall@10.
FORM_L2_GRID = (L2_LISTWISE, 0.1, 1.0, 5.0, 20.0)
ITERATIONS = 1200
STEP = 5.0
SEED = 0  # the fit is deterministic (Newton's method from zero); recorded for the provenance format
TOP_K = 10
#: Sizes (turns) of the subsampled stores the score is calibrated on, besides each full conversation.
STORE_SIZES = (10, 50, 200)
FULL = "full"
#: The day-repeat penalties tried (linear-score units; 0 is none): the fit keeps the one with the best recall@10.
DAY_REPEAT_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5)
#: The store size label of the fact-update scenarios' pools (a handful of turns per user).
FACTS = "facts"
#: The listwise weights already fitted, per set of full conversations and ``form_l2`` (folds share them).
Directions = dict[tuple[frozenset[str], float], np.ndarray]


@dataclass
class Pool:
    """The candidates of one question: feature rows, whether each cites evidence, the turns each cites,
    the size of the store they come from (``FULL`` or a number of turns), whether the question asks for
    several things, each candidate's day, and the question's category (LoCoMo's, for the report)."""

    conversation: str
    form: str
    features: np.ndarray
    labels: np.ndarray
    cited: list[tuple[str, ...]]
    evidence: frozenset[str]
    store_size: str = FULL
    several: bool = False
    days: tuple[date, ...] = ()
    category: str = ""


class _RepeatingEmbedder(Embedder):
    """Remembers every vector it computed: subsampled stores embed the same texts again (the default
    embedder embeds one text at a time, so a remembered vector is the one it would compute)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self._vectors: dict[tuple[str, str], np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [text for text in dict.fromkeys(texts) if ("doc", text) not in self._vectors]
        if missing:
            self._vectors.update(zip((("doc", text) for text in missing), self.inner.embed(missing), strict=True))
        return np.array([self._vectors["doc", text] for text in texts], dtype=np.float32).reshape(len(texts), self.dim)

    def embed_query(self, text: str) -> np.ndarray:
        if ("query", text) not in self._vectors:
            self._vectors["query", text] = self.inner.embed_query(text)
        return self._vectors["query", text]

    @property
    def signature(self) -> str:
        return self.inner.signature


def scored_candidates(memory: Any, embedder: Embedder, text: str, user_id: str, reference_date: datetime | None,
                      as_of: datetime | None = None) -> tuple[SearchQuery, list[Scored]]:
    """The query and the features of every pooled candidate of ``text``, as the read path sees them."""
    query = build_query(text, scope=memory._scope(user_id, None, None, None), node=None, limit=100, threshold=None,
                        reference_date=reference_date, as_of=as_of)
    vector = embedder.embed_query(query.text)
    rankings = gather_candidates(memory.store, vector, query, RECIPES["balanced"])
    lexical = {c.memory_id: c.score for c in rankings.get("lexical", [])}
    ids = list(dict.fromkeys([*lexical, *(c.memory_id for c in rankings.get("dense", []))]))
    memories = memory.store.get_memories(ids)
    dense = dense_scores(memory.store, vector, rankings.get("dense", []), ids)
    name_free = name_free_similarity(memory.store, embedder, query, memories, dense)
    return query, candidate_features(memories, lexical, dense, query.text, query.time_range, name_free)


def pool_of(conversation: str, query: SearchQuery, scored: Sequence[Scored], cited: list[tuple[str, ...]],
            evidence: frozenset[str], store_size: str, category: str = "") -> Pool:
    """A question's pool: its candidates' feature rows, labelled 1 when they cite evidence."""
    return Pool(conversation, query.form, np.array([[item.features[name] for name in FEATURES] for item in scored]),
                np.array([bool(evidence & set(turns)) for turns in cited], dtype=np.float64), cited, evidence,
                store_size, query.several, tuple(memory_day(item.memory) for item in scored), category)


def question_pools(conversation: Conversation, embedder: Embedder, workdir: Path, store_size: str = FULL,
                   questions: Sequence[Question] | None = None) -> list[Pool]:
    """Ingest one conversation and describe the candidate pool of each of ``questions`` (default: every
    question with evidence)."""
    system = EngramSystem(embedder)
    system.ingest(conversation, workdir)
    pools = []
    try:
        for question in conversation.questions if questions is None else questions:
            if not question.retrieval_scored:
                continue
            query, scored = scored_candidates(system._memory, embedder, question.question,
                                              conversation.conversation_id, question.reference_date)
            cited = [turn_ids_of_hit(item.memory.model_dump(mode="json")) for item in scored]
            pools.append(pool_of(conversation.conversation_id, query, scored, cited,
                                 frozenset(question.evidence_turns), store_size, question.category))
    finally:
        system.close()
    return pools


def fact_pools(scenarios: str, embedder: Embedder, workdir: Path) -> list[Pool]:
    """Pools of the fact-update scenarios (``engram bench updates``; ``dev`` is bundled): a few dated
    first-person turns per user, one ``add`` each, and questions such as "What city do I live in?" whose
    answer is one turn. This is what a new user's store looks like, and what LoCoMo (long dialogues
    between two named people, questions in the third person) does not show the calibration."""
    from engram import Memory

    _, loaded = load_scenarios(scenarios)
    pools = []
    with Memory(path=str(workdir / "facts.db"), embedder=embedder) as memory:
        for scenario in loaded:
            ids = ingest_turns(memory, scenario)
            for question in scenario["questions"]:
                as_of = question.get("as_of") if question["kind"] == "as_of" else None
                query, scored = scored_candidates(memory, embedder, question["question"], scenario["id"],
                                                  parse_instant(question.get("reference_date")), parse_instant(as_of))
                wanted = frozenset(ids[index] for index in [question["answer_turn"], *question.get("also_correct", [])])
                pools.append(pool_of(f"facts:{scenario['kind']}", query, scored,
                                     [(item.memory.id,) for item in scored], wanted, FACTS))
    return pools


def parse_instant(value: str | None) -> datetime | None:
    """An ISO-8601 instant of the scenario files, or None."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def subsampled_stores(conversation: Conversation, size: int) -> Iterator[tuple[Conversation, list[Question]]]:
    """Stores of ``size`` turns drawn from ``conversation``, with the questions each is asked: questions are
    grouped (shuffled with a fixed seed) while their evidence turns fill at most half the store, and the
    rest is drawn from the other turns. Questions whose evidence alone would fill more are left out."""
    turns = {turn.turn_id for turn in conversation.turns}
    if len(turns) <= size:
        return
    draw = random.Random(zlib.crc32(f"{SEED}:{conversation.conversation_id}:{size}".encode()))
    questions = [q for q in conversation.questions if q.retrieval_scored and turns & set(q.evidence_turns)]
    draw.shuffle(questions)
    groups: list[tuple[list[Question], set[str]]] = []
    for question in questions:
        evidence = turns & set(question.evidence_turns)
        if len(evidence) > size // 2:
            continue
        if not groups or len(groups[-1][1] | evidence) > size // 2:
            groups.append(([], set()))
        groups[-1][0].append(question)
        groups[-1][1].update(evidence)
    for group, evidence in groups:
        kept = evidence | set(draw.sample(sorted(turns - evidence), size - len(evidence)))
        sessions = [replace(session, turns=tuple(turn for turn in session.turns if turn.turn_id in kept))
                    for session in conversation.sessions]
        yield replace(conversation, sessions=[session for session in sessions if session.turns]), group


def conversation_pools(conversation: Conversation, embedder: Embedder, workdir: Path) -> list[Pool]:
    """The question pools of a conversation in full and of its stores subsampled to ``STORE_SIZES``."""
    pools = question_pools(conversation, embedder, workdir)
    for size in STORE_SIZES:
        for store, questions in subsampled_stores(conversation, size):
            pools.extend(question_pools(store, embedder, workdir, str(size), questions))
    return pools


def design(pool: Pool) -> np.ndarray:
    """A pool's feature rows with the per-form offset columns (zero unless the question has that form)."""
    extra = [pool.features * (pool.form == form) for form in FORMS]
    return np.hstack([pool.features, *extra])


def listwise_weights(pools: Sequence[Pool], *, form_l2: float = L2_LISTWISE, iterations: int = ITERATIONS,
                     step: float = STEP) -> np.ndarray:
    """Weights maximising, over the questions, the softmax share of the pool's score mass that falls on
    evidence (ListNet-style), by full-batch gradient ascent from zero with a fixed step: deterministic. The
    feature weights are penalised by ``L2_LISTWISE``, the per-form offsets by ``form_l2``; the penalty's part of
    each step is implicit (a division), which stays stable however large the penalty is for the questions."""
    usable = [pool for pool in pools if pool.labels.any()]
    matrix = np.vstack([design(pool) for pool in usable])
    labels = np.concatenate([pool.labels for pool in usable])
    starts = np.cumsum([0, *(len(pool.labels) for pool in usable[:-1])])
    owner = np.repeat(np.arange(len(usable)), [len(pool.labels) for pool in usable])
    weights = np.zeros(matrix.shape[1])
    shrink = np.full(matrix.shape[1], 1.0 + step * form_l2 / len(usable))
    shrink[:len(FEATURES)] = 1.0 + step * L2_LISTWISE / len(usable)
    for _ in range(iterations):
        scores = matrix @ weights
        shares = np.exp(scores - np.maximum.reduceat(scores, starts)[owner])
        everything = shares / np.add.reduceat(shares, starts)[owner]
        wanted = shares * labels / np.add.reduceat(shares * labels, starts)[owner]
        weights = (weights + step * (matrix.T @ (wanted - everything)) / len(usable)) / shrink
    return weights


def size_weights(pools: Sequence[Pool]) -> np.ndarray:
    """One weight per candidate so that every store size weighs alike in the calibration (mean weight 1)."""
    sizes = np.concatenate([[pool.store_size] * len(pool.labels) for pool in pools])
    names, counts = np.unique(sizes, return_counts=True)
    per_size = dict(zip(names, len(sizes) / (len(names) * counts), strict=True))
    return np.array([per_size[size] for size in sizes])


def fit(pools: Sequence[Pool], directions: Directions | None = None, form_l2: float = L2_LISTWISE) -> dict[str, Any]:
    """The ranker's weights and per-form offsets (listwise, on the full conversations), then a logistic
    calibration of the linear score (scale and bias) on the stores of every size, each size weighing alike,
    so that ``sigmoid(bias + linear)`` is the probability that a candidate is evidence. ``score_scale`` is
    that calibration's scale over the scale of the same calibration on the conversations alone: the fact
    scenarios flatten the score, and the read path's factors (trust, role, currency), chosen on dialogue,
    keep their strength by multiplying the odds by ``factor ** score_scale``. ``form_l2``: the L2 penalty of
    the per-form offsets. ``directions`` keeps the listwise weights per set of full conversations and
    ``form_l2``, for folds that share them."""
    full = [pool for pool in pools if pool.store_size == FULL]
    key = (frozenset(pool.conversation for pool in full), form_l2)
    cache = {} if directions is None else directions
    if key not in cache:
        cache[key] = listwise_weights(full, form_l2=form_l2)
    direction = cache[key]
    linear = np.concatenate([design(pool) @ direction for pool in pools])
    labels = np.concatenate([pool.labels for pool in pools])
    scale, bias = fit_logistic(linear[:, None], labels, l2=0.0, sample_weight=size_weights(pools))
    weights = direction * float(scale[0])
    conversations = [pool for pool in pools if pool.store_size != FACTS]
    dialogue_scale, _ = fit_logistic(np.concatenate([design(pool) @ direction for pool in conversations])[:, None],
                                     np.concatenate([pool.labels for pool in conversations]), l2=0.0,
                                     sample_weight=size_weights(conversations))
    count = len(FEATURES)
    model = {"feature_weights": rounded(dict(zip(FEATURES, weights[:count], strict=True))),
             "form_weights": {form: rounded(dict(zip(FEATURES, weights[count * (i + 1):count * (i + 2)], strict=True)))
                              for i, form in enumerate(FORMS)},
             "feature_bias": round(bias, 4), "score_scale": round(float(scale[0] / dialogue_scale[0]), 4)}
    return model


@dataclass
class Fold:
    """A held-out conversation: the models fitted on the other pools, one per ``FORM_L2_GRID`` value, and its
    recall@10 with each of them and each penalty of ``DAY_REPEAT_GRID`` (rows: ``form_l2``; columns: penalty)."""

    models: list[dict[str, Any]]
    recalls: np.ndarray


def held_out(pools: Sequence[Pool], directions: Directions) -> dict[str, Fold]:
    """For each LoCoMo conversation of ``pools``: its ``Fold`` (none with fewer than two conversations)."""
    names = sorted({pool.conversation for pool in pools if pool.store_size == FULL})
    result: dict[str, Fold] = {}
    if len(names) < 2:
        return result
    for name in names:
        models = [fit([pool for pool in pools if pool.conversation != name], directions, form_l2)
                  for form_l2 in FORM_L2_GRID]
        own = [pool for pool in pools if pool.conversation == name]
        result[name] = Fold(models, np.array([[recall_at_k({**model, "day_repeat_penalty": penalty}, own)
                                               for penalty in DAY_REPEAT_GRID] for model in models]))
    return result


def cross_validated_setting(recalls: Sequence[np.ndarray]) -> tuple[int, int]:
    """The indexes in ``FORM_L2_GRID`` and ``DAY_REPEAT_GRID`` of the pair with the best mean held-out
    recall@10 (``Fold.recalls`` of each held-out conversation; on a tie the smallest ``form_l2``, then the
    smallest penalty; without folds the smallest ``form_l2`` and no penalty)."""
    if not recalls:
        return 0, 0
    mean = np.mean(np.array(recalls), axis=0)
    row, column = np.unravel_index(int(np.argmax(mean)), mean.shape)
    return int(row), int(column)


def model_weights(model: dict[str, Any]) -> np.ndarray:
    """The model's feature weights and per-form offsets, in ``design`` column order (0 for a feature that a
    model fitted before the feature existed does not name)."""
    return np.array([*(model["feature_weights"].get(name, 0.0) for name in FEATURES),
                     *(model["form_weights"][form].get(name, 0.0) for form in FORMS for name in FEATURES)])


def ranked_linear(model: dict[str, Any], pool: Pool) -> np.ndarray:
    """The linear score of each candidate of ``pool`` as the read path ranks them: less the model's
    ``day_repeat_penalty`` per higher-ranked candidate of its day when the question asks for several things."""
    linear = design(pool) @ model_weights(model)
    penalty = model.get("day_repeat_penalty", 0.0)
    if pool.several and penalty > 0:
        linear = linear - penalty * np.array(day_repeats(list(linear), pool.days))
    return linear


def question_recalls(model: dict[str, Any], pools: Sequence[Pool], k: int = TOP_K) -> list[tuple[Pool, float]]:
    """Each question (full conversations only) with the share of its evidence turns cited by its top ``k``
    pooled candidates."""
    recalls = []
    for pool in pools:
        if pool.store_size != FULL:
            continue
        order = np.argsort(-ranked_linear(model, pool), kind="stable")[:k]
        covered = {turn for index in order for turn in pool.cited[index]} & pool.evidence
        recalls.append((pool, len(covered) / len(pool.evidence)))
    return recalls


def recall_at_k(model: dict[str, Any], pools: Sequence[Pool], k: int = TOP_K) -> float:
    """Mean share of each question's evidence turns cited by its top ``k`` pooled candidates (full
    conversations only)."""
    recalls = [recall for _, recall in question_recalls(model, pools, k)]
    return float(np.mean(recalls)) if recalls else 0.0


def per_category(recalls: Sequence[tuple[Pool, float]]) -> dict[str, float]:
    """Mean recall per question category (and ``all``), rounded for the report."""
    grouped: dict[str, list[float]] = defaultdict(list)
    for pool, recall in recalls:
        grouped[pool.category].append(recall)
        grouped["all"].append(recall)
    return {category: round(float(np.mean(values)), 4) for category, values in sorted(grouped.items())}


def scores_of(model: dict[str, Any], pool: Pool) -> np.ndarray:
    """The score ``sigmoid(bias + linear)`` of each candidate of ``pool``."""
    linear = ranked_linear(model, pool) + model["feature_bias"]
    return 1.0 / (1.0 + np.exp(-np.clip(linear, -60, 60)))


def calibration_sizes(pools: Sequence[Pool]) -> list[str]:
    """The store sizes among ``pools``, smallest first (the fact scenarios, the subsampled stores, full)."""
    present = {pool.store_size for pool in pools}
    return [size for size in (FACTS, *(str(size) for size in STORE_SIZES), FULL) if size in present]


def calibration(scored: Sequence[tuple[Pool, np.ndarray]]) -> dict[str, dict[str, Any]]:
    """Reliability of the scores (each pool with its candidates' scores) per store size."""
    top: dict[str, list[float]] = defaultdict(list)
    for pool, scores in scored:
        if len(scores):
            top[pool.store_size].append(float(scores.max()))
    order = calibration_sizes([pool for pool, _ in scored])
    ordered = sorted(scored, key=lambda entry: order.index(entry[0].store_size))
    return by_store_size(np.concatenate([scores for _, scores in ordered]),
                         np.concatenate([pool.labels for pool, _ in ordered]),
                         [pool.store_size for pool, scores in ordered for _ in scores], top)


def fit_ranker(data: str | Path, embedder: Embedder, out: Path | None = None,
               on_conversation: Callable[[str], None] | None = None, facts: str | None = "dev") -> dict[str, Any]:
    """Fit on every conversation of ``data`` (and the fact-update scenarios ``facts``, for the calibration);
    report recall@10 and the score's reliability per store size, in-sample and leave-one-out (a LoCoMo
    conversation, or a kind of fact, at a time); write the model JSON (into the package, or ``out``)."""
    conversations = load_locomo(data)
    pools: list[Pool] = []
    repeating = _RepeatingEmbedder(embedder)
    with TemporaryDirectory() as folder:
        for conversation in conversations:
            pools.extend(conversation_pools(conversation, repeating, Path(folder)))
            if on_conversation is not None:
                on_conversation(conversation.conversation_id)
        if facts is not None:
            pools.extend(fact_pools(facts, repeating, Path(folder)))
    directions: Directions = {}
    folds = held_out(pools, directions)
    row, column = cross_validated_setting([fold.recalls for fold in folds.values()])
    setting = {"form_l2": FORM_L2_GRID[row], "day_repeat_penalty": DAY_REPEAT_GRID[column]}
    model = {**fit(pools, directions, FORM_L2_GRID[row]), **setting}
    held_out_recall: dict[str, float] = {}
    held_out_settings: dict[str, dict[str, float]] = {}
    held_out_scores: list[tuple[Pool, np.ndarray]] = []
    held_out_questions: list[tuple[Pool, float]] = []
    for name in sorted({pool.conversation for pool in pools}):
        own = [pool for pool in pools if pool.conversation == name]
        if name in folds:  # the setting chosen without this conversation: by the folds of the others
            inner = held_out([pool for pool in pools if pool.conversation != name], directions)
            row, column = cross_validated_setting([fold.recalls for fold in inner.values()])
            held_out_settings[name] = {"form_l2": FORM_L2_GRID[row], "day_repeat_penalty": DAY_REPEAT_GRID[column]}
            held_out_recall[name] = float(folds[name].recalls[row, column])
            others = {**folds[name].models[row], **held_out_settings[name]}
        else:
            others = {**fit([pool for pool in pools if pool.conversation != name], directions, model["form_l2"]),
                      **setting}
        held_out_scores.extend((pool, scores_of(others, pool)) for pool in own)
        held_out_questions.extend(question_recalls(others, own))
    shipped = json.loads(RANKER_MODEL_PATH.read_text(encoding="utf-8"))
    full = [pool for pool in pools if pool.store_size == FULL]
    report = {"recall@10_in_sample": recall_at_k(model, pools),
              "recall@10_leave_one_conversation_out": float(np.mean(list(held_out_recall.values()))),
              "recall@10_per_held_out_conversation": held_out_recall,
              "recall@10_per_category_in_sample": per_category(question_recalls(model, pools)),
              "recall@10_per_category_leave_one_conversation_out": per_category(held_out_questions),
              "recall@10_weights_before": recall_at_k(shipped, pools),
              "setting_per_held_out_conversation": held_out_settings,
              "recall@10_per_held_out_conversation_by_form_l2_and_day_repeat_penalty": {
                  name: {str(form_l2): dict(zip(map(str, DAY_REPEAT_GRID), map(float, recalls), strict=True))
                         for form_l2, recalls in zip(FORM_L2_GRID, fold.recalls, strict=True)}
                  for name, fold in folds.items()},
              "calibration_in_sample": calibration([(pool, scores_of(model, pool)) for pool in pools]),
              "calibration_leave_one_conversation_out": calibration(held_out_scores),
              "store_sizes": calibration_sizes(pools),
              "questions": len(full), "candidates": int(sum(len(p.labels) for p in full)),
              "calibration_questions": len(pools), "calibration_candidates": int(sum(len(p.labels) for p in pools))}
    result = {**model, "features": list(FEATURES), "forms": list(FORMS), "data_sha256": sha256_of(data),
              "facts": facts, "seed": SEED, "l2": L2, "embedder": embedder.signature, "report": report}
    write_model(out or RANKER_MODEL_PATH, result)
    return result
