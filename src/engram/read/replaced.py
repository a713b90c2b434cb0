"""Read path, step 3c: supersession at read time, among the best candidates of one question.

The write path closes a stale fact only when the change model is confident (a wrong closure hides a true
fact for good), so many changes told indirectly ("Austin summers are going to kill me" after "I'm based
in Portland") stay unlinked. A question narrows the doubt: two of its best candidates that are turns of
the same speaker from different conversations, on the same topic, are likely about the same thing. For
each such pair the read model (``engram.read.replace_model``: a logistic over the change model's cue
features, ``engram.changes.cues``, the two candidates' ranks, whom the question is about, the newer turn's
words and its embedding; fitted by ``engram bench fit-updates`` on about 2,900 written pairs and the seen
update sets' questions), with the pair reader's log-odds added (``engram.read.pair_reader``: a cross-encoder
that reads the question with both turns), gives the probability that the newer one replaced the older; from
``READ_THRESHOLD`` on, a question about the present ranks the newer one first and one about what came
before ranks the older one first (the two swap scores, so the window keeps its candidates). Below
``KEEP_THRESHOLD``, a question about the present ranks the older one first when the newer one, which
merely adds to it ("I also adopted a cat"), hedges, asks, or is another person's news, ranks above it.
The window is the best-ranked conversations, not turns: an assistant's echo of an older conversation
stands for what was said then. Nothing is stored: the next question decides again.

Who decides is a ``PairJudge``: by default ``ModelJudge`` (the two shipped models); a stronger one (an LLM, a
larger cross-encoder) can be set on ``Memory.pair_judge``, and ``engram bench updates --ceiling`` measures read
time with a judge that knows each scenario's answers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from engram.models import CONVERSATION_GAP, MemoryItem
from engram.read.fuse import Fused
from engram.read.pair_reader import PairReader, pair_reader, reader_segments
from engram.read.query import SearchQuery
from engram.read.replace_model import ReadModel, read_model, sigmoid
from engram.read.rerank import named_speaker_words, without_words
from engram.store.base import Store

#: How many of the best-ranked conversations' current turns are compared with each other. Three, not more:
#: in a store with many turns per speaker, a wider window pairs the top fact with unrelated news told with
#: change words (the demo's "Inês arrived yesterday! We went to..." after "I just moved to Lisbon").
READ_WINDOW = 3
#: How deep in the ranking the window's turns are looked for (6: the best turns of 3 conversations and
#: their assistant echoes and follow-ups; the demo's question pairs nothing wrong at this depth).
READ_DEPTH = 6
#: ``speaker_key`` of the assistant's turns.
ASSISTANT = "assistant"
#: Least probability that the newer candidate replaced the older for read time to act: even odds, the
#: decision that ranks the likelier current fact first (the write path, whose closures last, asks for
#: more: ``engram.write.supersede.REPLACE_THRESHOLD``).
READ_THRESHOLD = 0.5
#: Below it, a question about the present ranks the older candidate first when the newer one ranks above it
#: (the newer merely adds to it, asks, or is someone else's news). Not even odds: the ranker's own order
#: already favours the answer (LoCoMo recall@1 per turn: 0.421 without this direction, 0.414 at 0.2, 0.411
#: at 0.5; the holdout's present questions: the same at 0.2 and 0.5).
KEEP_THRESHOLD = 0.2
#: A probability between the two thresholds: the pair moves nothing (a judge with no opinion on it).
NO_OPINION = (KEEP_THRESHOLD + READ_THRESHOLD) / 2
#: How many tokens of a question's pairs the pair reader reads at most (``engram.read.pair_reader``; about
#: 0.2 ms a token on 2 cores): the pairs of its best-ranked turns first, each that still fits (a pair of two
#: chat lines is 30 to 50 tokens); the others are decided by the read model alone. LoCoMo's questions about
#: the present have up to 12 pairs of long turns (up to 128 tokens a pair): reading 3 of them took the
#: search's p95 to 117 ms, a budget of 96 tokens to 55 ms, 64 tokens to 34-41 ms (27 ms without the reader),
#: with the held-out update sets as good as with no budget (docs/BENCHMARKS.md, "Seventh session").
READER_TOKENS = 64
#: The read model's features: the change model's (``engram.changes.cues``; not ``closest``, which
#: here only tells a chain of changes from a single one, nor the attribute statements, which would cost
#: each search milliseconds per turn and weighed nothing in the fit), whether the newer candidate ranks
#: above the older, the log ratio of their relevance scores (within [-5, 5]), and whether the question
#: and the newer turn are about different people (one the speaker, the other someone else), and whether
#: the newer turn only asks ("How do I cook a steak?": a request, not news). For a question that counts, words
#: of addition are change words ("we adopted a second beagle" changes "How many dogs do I have?"; "still"
#: stays co-existence).
READ_FEATURES = ("similarity", "change", "now", "coexist", "hedge", "temporary", "past", "other_subject",
                 "newer_above", "relevance", "query_subject", "asks")


@dataclass(frozen=True)
class ReadPair:
    """An older and a newer candidate of the same speaker and the read model's features of the pair."""

    older: MemoryItem
    newer: MemoryItem
    features: dict[str, float]
    #: The newer candidate is another person's news than the question asks about: it replaces nothing
    #: (probability 0, not the read model's), but gives the older its place back when it ranks above it.
    others_news: bool = False
    #: The newer candidate gives the value the question asks for another value, and nothing in it says that
    #: the change is someone else's, added, hedged, temporary or past (``new_value``), or it ends a thing the
    #: older one names (``ends_named``: "Traded the Civic in for a Kia EV6"): it replaced the older one whatever
    #: the read model says of its words (a change told without a change word: "landlord renewed the lease at
    #: 1650" after "rent is 1400").
    new_value: bool = False
    #: The newer candidate's own embedding (``Store.get_turn_vectors``), which the read model may weigh.
    newer_vector: np.ndarray | None = None
    #: The question is about the speaker and the older candidate opens with another person ("My parents live
    #: near Porto" for "Where do I live?"): a newer turn that did not replace it keeps its place above it.
    older_others: bool = False


def _comparable(memory: MemoryItem, query: SearchQuery) -> bool:
    """A current turn (no stored supersession has already settled it at the question's moment)."""
    return memory.is_turn and (memory.valid_to is None or memory.valid_to > query.moment)


def read_window(ranked: Sequence[Fused], by_id: dict[str, MemoryItem], query: SearchQuery) -> list[MemoryItem]:
    """The current turns that state something among the ``READ_DEPTH`` best ranks and belong to the
    ``READ_WINDOW`` best-ranked conversations (turns closer in event time than ``CONVERSATION_GAP`` to a
    turn of a conversation belong to it): an assistant's echo or a follow-up of the same conversation does
    not push a later conversation's turn out of the window."""
    from engram.changes.cues import asks_only

    conversations: list[list[MemoryItem]] = []
    for item in ranked[:READ_DEPTH]:
        memory = by_id.get(item.memory_id)
        if memory is None or not _comparable(memory, query) or asks_only(memory.memory):
            continue
        joined = next((turns for turns in conversations
                       if any(abs(turn.began_at - memory.began_at) < CONVERSATION_GAP for turn in turns)), None)
        if joined is not None:
            joined.append(memory)
        elif len(conversations) < READ_WINDOW:
            conversations.append([memory])
    return [memory for turns in conversations for memory in turns]


def window_pairs(store: Store, ranked: Sequence[Fused], by_id: dict[str, MemoryItem],
                 query: SearchQuery) -> list[ReadPair]:
    """Every (older, newer) pair of turns from different conversations and on the same topic in the
    ``read_window``, the older said by the newer one's speaker or by the assistant (echoing what the user said
    then), with its features, and whether the newer one is another person's news (``ReadPair.others_news``): it
    opens with someone else when the question is about the speaker, or with another person than the question
    names. On the same topic: own-embedding similarity at least the write path's ``MIN_SIMILARITY``, or the two
    state the same attribute (their stored ``attributes``: "I live in Tallinn", "Our new flat in Riga"), or the
    newer ends a thing the older names (``ends_named``). A turn that corrects its speaker (``corrects``:
    "Actually it's Friday the 10th") pairs with the turns of its own conversation too, when it gives the value
    the question asks for another value."""
    from engram.changes.cues import (
        asks_of_named_person,
        corrects,
        names_someone_else,
        people_asked_about,
        relatives_named,
    )
    from engram.changes.pairs import speaker_key

    window = read_window(ranked, by_id, query)
    question = without_words(query.text, named_speaker_words(window, query.text))
    texts = [memory.memory for memory in window]
    context = _QuestionContext(query.text, names_someone_else(question), people_asked_about(question),
                               texts if asks_of_named_person(question) else [], relatives_named(texts))
    vectors = store.get_turn_vectors([memory.id for memory in window]) if len(window) > 1 else {}
    rank = {memory.id: position for position, memory in enumerate(window)}
    score = {item.memory_id: item.score for item in ranked}
    pairs = []
    for newer in window:
        if speaker_key(newer) == ASSISTANT or newer.id not in vectors:
            continue
        correcting = corrects(newer.memory)
        older = [m for m in window if m.id in vectors and speaker_key(m) in (speaker_key(newer), ASSISTANT)
                 and (newer.began_at - m.began_at > CONVERSATION_GAP
                      or (correcting and m.began_at < newer.began_at and speaker_key(m) != ASSISTANT))]
        similarity = {m.id: float(np.dot(vectors[m.id], vectors[newer.id])) for m in older}
        best = max(similarity.values(), default=0.0)
        for other in older:
            same_conversation = newer.began_at - other.began_at <= CONVERSATION_GAP
            pair = _pair(other, newer, similarity[other.id], similarity[other.id] == best, context,
                         newer_above=rank[newer.id] < rank[other.id],
                         relevance=_log_ratio(score[newer.id], score[other.id]), newer_vector=vectors[newer.id])
            if pair is not None and (not same_conversation or pair.new_value):
                pairs.append(pair)
    return pairs


@dataclass(frozen=True)
class _QuestionContext:
    """What a question says of the pairs it reads: its text, whether it asks about someone other than the
    speaker, the people it asks about, the texts that may name them (``news_of_someone_not_asked``), and the
    relatives the window's texts name (``relatives_named``, for ``opens_about_someone_else``)."""

    text: str
    asks_about_other: bool
    asked: set[str]
    named_in: list[str]
    relatives: frozenset[tuple[str, str]]


def _pair(older: MemoryItem, newer: MemoryItem, similarity: float, closest: bool, context: _QuestionContext, *,
          newer_above: bool, relevance: float, newer_vector: np.ndarray) -> ReadPair | None:
    """The ``ReadPair`` of two window turns, or None when they are not on the same topic (``window_pairs``)."""
    from engram.changes.cues import (
        additions,
        ends_named,
        news_of_someone_not_asked,
        only_questions,
        opens_about_someone_else,
        other_person_than_asked,
        pair_features,
    )
    from engram.changes.pairs import MIN_SIMILARITY
    from engram.changes.slots import stated_slots
    from engram.changes.values import counts, membership_changes, new_value

    ended = ends_named(older.memory, newer.memory)
    same_slot = bool(stated_slots(older.attributes) & stated_slots(newer.attributes))
    if similarity < MIN_SIMILARITY and not ended and not same_slot:
        return None
    features = pair_features(older.memory, newer.memory, similarity, [], [], closest)
    features["newer_above"] = float(newer_above)
    features["relevance"] = relevance
    features["query_subject"] = float(other_person_than_asked(context.asks_about_other, newer.memory))
    features["asks"] = float(only_questions(newer.memory))
    others_news = (news_of_someone_not_asked(context.asked, newer.memory, context.named_in)
                   if context.asks_about_other else opens_about_someone_else(newer.memory, context.relatives))
    people: tuple[str, ...] = ("other_subject", "query_subject")
    if counts(context.text):
        joined = membership_changes(newer.memory)
        added = additions(newer.memory) + joined
        features["change"] = min(2.0, features["change"] + added)
        features["coexist"] = max(0.0, features["coexist"] - added)
        if joined:
            # A member joining or leaving the group counted is news of the count, whoever the turn opens with.
            others_news, people = False, ()
    against_person = any(features[name] for name in people) or bool(features["asks"])
    valued = not against_person and new_value(context.text, older.memory, newer.memory)
    ended = ended and not against_person and not any(features[name] for name in _AGAINST)
    return ReadPair(older, newer, features, others_news, valued or ended, newer_vector,
                    not context.asks_about_other and opens_about_someone_else(older.memory, context.relatives))


#: The features that say a newer turn does not replace the older: someone else's news, an addition, a hedge, a
#: temporary state, the past, a question.
_AGAINST = ("coexist", "hedge", "temporary", "past", "other_subject", "query_subject", "asks")


def _log_ratio(newer: float, older: float) -> float:
    """``log(newer / older)`` of two relevance scores, within [-5, 5]."""
    return max(-5.0, min(5.0, math.log(max(newer, 1e-12) / max(older, 1e-12))))


def best_ranked_first(pairs: Sequence[ReadPair], ranking: Sequence[str]) -> list[int]:
    """The indices of ``pairs``, the pairs of the best-ranked turns first (by ``ranking``, ids best first)."""
    position = {memory_id: index for index, memory_id in enumerate(ranking)}
    return sorted(range(len(pairs)), key=lambda index: sorted((position[pairs[index].older.id],
                                                               position[pairs[index].newer.id])))


def pair_probabilities(pairs: Sequence[ReadPair], query: SearchQuery, model: ReadModel,
                       reader: PairReader | None, ranking: Sequence[str]) -> list[float]:
    """The probability that each pair's newer turn replaced the older (0 for another person's news, at least
    ``READ_THRESHOLD`` for a new value): the read model's log-odds plus, with a ``reader``, the pair reader's
    for the pairs of the best-ranked turns (by ``ranking``, ids best first) within ``READER_TOKENS``. The two read
    different things (the cue features and each turn's own words; the question read with both turns), and
    their sum is better held out than either alone (docs/BENCHMARKS.md, "Seventh session")."""
    read = [pair for pair in pairs if not pair.others_news]
    logits = {id(pair): model.logit(pair.features, pair.newer.memory, pair.newer_vector) for pair in read}
    if reader is not None and read:
        first = [read[index] for index in best_ranked_first(read, ranking)]
        segments = [reader_segments(query.text, query.tense, pair.older.memory, pair.newer.memory) for pair in first]
        encodings = reader.encode(segments)
        chosen = reader.affordable(encodings, READER_TOKENS)
        for index, logit in zip(chosen, reader.encoded_logits([encodings[index] for index in chosen]), strict=True):
            logits[id(first[index])] += float(logit)
    read_probability = {key: sigmoid(logit) for key, logit in logits.items()}
    return [0.0 if pair.others_news
            else max(read_probability[id(pair)], READ_THRESHOLD) if pair.new_value
            else read_probability[id(pair)] for pair in pairs]


class PairJudge(Protocol):
    """Decides a question's window pairs (``window_pairs``): the probability that each pair's newer turn replaced
    the older. ``ranking`` is the candidates' ids, best first."""

    def probabilities(self, pairs: Sequence[ReadPair], query: SearchQuery, ranking: Sequence[str]) -> list[float]:
        """One probability per pair, in order."""
        ...


@dataclass(frozen=True)
class ModelJudge:
    """The shipped judge: the read model, with the shipped pair reader's log-odds added when ``reads_pairs``
    (``pair_probabilities``; the reader is loaded on the first question that has pairs)."""

    model: ReadModel
    reads_pairs: bool = True

    def probabilities(self, pairs: Sequence[ReadPair], query: SearchQuery, ranking: Sequence[str]) -> list[float]:
        """``pair_probabilities`` of the pairs."""
        reader = pair_reader() if self.reads_pairs and pairs else None
        return pair_probabilities(pairs, query, self.model, reader, ranking)


def settle_read_time(store: Store, ranked: Sequence[Fused], memories: Sequence[MemoryItem],
                     query: SearchQuery, embedder_signature: str = "", *, read_pairs: bool = True,
                     judge: PairJudge | None = None) -> list[Fused]:
    """The likelier answer of each window pair first. For a question about the present, a candidate (best
    first) that the read model says a newer one replaced swaps scores with the newest of those when that
    one ranks lower, and a newer turn of the same speaker ranked above an older one that it did not
    replace (probability below ``KEEP_THRESHOLD``: "I also adopted a cat", "thinking about quitting")
    swaps with it; for a ``before`` question, each candidate swaps with the oldest one it replaced. A chain
    of replacements (A replaced by B, B by C) ends at its last link: with each link at least even odds, C
    is the likelier current fact (B is current only if A was replaced and B was not). A candidate takes
    part in one swap at most, and only the order inside the window changes. ``judge`` decides the pairs (default:
    ``ModelJudge`` of the shipped models for ``embedder_signature``, with the pair reader when ``read_pairs``)."""
    from engram.changes.cues import is_request
    from engram.changes.pairs import speaker_key

    if query.tense not in ("present", "before"):
        return list(ranked)
    if judge is None:
        model = read_model(embedder_signature)
        if model is None:
            return list(ranked)
        judge = ModelJudge(model, read_pairs)
    by_id = {memory.id: memory for memory in memories}
    present = query.tense == "present"
    replacements, keeps = [], []
    pairs = window_pairs(store, ranked, by_id, query)
    probabilities = judge.probabilities(pairs, query, [item.memory_id for item in ranked]) if pairs else []
    for pair, probability in zip(pairs, probabilities, strict=True):
        if probability >= READ_THRESHOLD:
            replacements.append((pair.older, pair.newer) if present else (pair.newer, pair.older))
        elif present and probability < KEEP_THRESHOLD and speaker_key(pair.older) != ASSISTANT \
                and not is_request(pair.older.memory) and not pair.older_others:
            keeps.append((pair.newer, pair.older))
    scores = {item.memory_id: item for item in ranked}
    for source, target in planned_swaps(replacements, keeps, list(scores), newest_first=present):
        given, kept = scores[source.id], scores[target.id]
        if kept.score < given.score:
            scores[target.id] = Fused(target.id, given.score, {**kept.components, "read_time_replaces": 1.0})
            scores[source.id] = Fused(source.id, kept.score, {**given.components, "read_time_replaced": 1.0})
    return sorted(scores.values(), key=lambda entry: -entry.score)


Move = tuple[MemoryItem, MemoryItem]


def planned_swaps(replacements: Sequence[Move], keeps: Sequence[Move], ranking: Sequence[str], *,
                  newest_first: bool) -> list[Move]:
    """The (source, target) pairs whose scores ``settle_read_time`` swaps (when the target ranks lower):
    each ``replacements`` source (best-ranked first, by ``ranking`` of ids) gives its place to the end of its
    chain of replacements (the newest link first, or the oldest with ``newest_first`` false, for a "before"
    question), each ``keeps`` source to its target; a candidate takes part in one swap at most."""
    direction = -1.0 if newest_first else 1.0
    following: dict[str, MemoryItem] = {}
    for source, target in sorted(replacements, key=lambda move: direction * move[1].began_at.timestamp()):
        following.setdefault(source.id, target)
    order = {memory_id: position for position, memory_id in enumerate(ranking)}
    moves = [(source, _chain_end(target, following)) for source, target in replacements] + list(keeps)
    settled: set[str] = set()
    swaps = []
    for source, target in sorted(moves, key=lambda move: (order[move[0].id],
                                                          direction * move[1].began_at.timestamp())):
        if source.id not in settled and target.id not in settled:
            swaps.append((source, target))
            settled.update((source.id, target.id))
    return swaps


def _chain_end(target: MemoryItem, following: dict[str, MemoryItem]) -> MemoryItem:
    """The last link of the chain of replacements from ``target`` (``following``: each candidate's preferred
    replacement), at most ``READ_WINDOW`` links on (the window holds no longer chain)."""
    for _ in range(READ_WINDOW):
        if target.id not in following:
            break
        target = following[target.id]
    return target
