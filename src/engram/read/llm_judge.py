"""Read-time supersession judged by the configured LLM (``EngramConfig.read_time_llm``).

The shipped models (``engram.read.replaced.ModelJudge``) decide about three pairs in four right on statements
nobody tuned them on, while read time would reach current-fact@1 0.90-0.96 on the blind update sets if every
pair were judged right (``engram bench updates --ceiling``; docs/BENCHMARKS.md). A change told indirectly ("the
commute from Zaandam is killing me" after "I live in Utrecht") needs world knowledge that a small model lacks
and an LLM has. ``LLMJudge`` asks the LLM, in one call per question that has window pairs, whether each pair's
newer turn replaced the older (``replaced``: probability 1), left it holding (``both_hold``: 0) or does not bear
on the question (``unrelated``: between read time's thresholds, which moves nothing). The turns are quoted as
data with their dates and speakers. A failed call, or a pair the reply skips, is decided by the fallback judge
(the shipped models): the LLM can only add to the offline decision, never break a search."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engram.errors import LLMError
from engram.llm import prompts
from engram.llm.base import LLM
from engram.models import MemoryItem
from engram.read.query import SearchQuery
from engram.read.replace_model import read_model
from engram.read.replaced import NO_OPINION, ModelJudge, PairJudge, ReadPair, best_ranked_first

#: Most pairs one question sends to the model (the window holds at most a few; the best-ranked go first).
MAX_PAIRS = 8
#: Characters of a turn shown to the model.
TURN_CHARS = 500


class PairLabel(StrEnum):
    REPLACED = "replaced"
    BOTH_HOLD = "both_hold"
    UNRELATED = "unrelated"


#: The probability read time gets for each label: a replacement acts, co-existence gives the older its place
#: back, and "unrelated" moves nothing (``NO_OPINION``).
LABEL_PROBABILITY = {PairLabel.REPLACED: 1.0, PairLabel.BOTH_HOLD: 0.0, PairLabel.UNRELATED: NO_OPINION}


class PairJudgement(BaseModel):
    """The model's judgement of one pair (``pair``: its label, "p1", ...), validated."""

    model_config = ConfigDict(extra="ignore")

    pair: str
    label: PairLabel

    @field_validator("pair", mode="before")
    @classmethod
    def _number_to_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("label", mode="before")
    @classmethod
    def _known_label(cls, value: Any) -> Any:
        return value.strip().lower().replace(" ", "_").replace("-", "_") if isinstance(value, str) else value


class PairJudgements(BaseModel):
    """The JSON object the read-time judge's prompt asks for."""

    judgements: list[PairJudgement] = Field(json_schema_extra={"maxItems": MAX_PAIRS})


@dataclass
class LLMJudge:
    """A ``PairJudge`` that asks ``llm`` (see the module docstring); ``fallback`` decides what the LLM does not."""

    llm: LLM
    fallback: PairJudge

    def probabilities(self, pairs: Sequence[ReadPair], query: SearchQuery, ranking: Sequence[str]) -> list[float]:
        """The label probability of each pair the model judged, the fallback's for the others."""
        asked = best_ranked_first(pairs, ranking)[:MAX_PAIRS]
        try:
            labels = self._ask([pairs[index] for index in asked], query)
        except LLMError:
            labels = {}
        judged = {asked[number]: LABEL_PROBABILITY[label] for number, label in labels.items()}
        if len(judged) == len(pairs):
            return [judged[index] for index in range(len(pairs))]
        fallback = self.fallback.probabilities(pairs, query, ranking)
        return [judged.get(index, fallback[index]) for index in range(len(pairs))]

    def _ask(self, pairs: Sequence[ReadPair], query: SearchQuery) -> dict[int, PairLabel]:
        """One LLM call: the label of each of ``pairs`` the reply names, by position. Raises ``LLMError``."""
        blocks = []
        for number, pair in enumerate(pairs, start=1):
            blocks += [f"[p{number}] older: {_line(pair.older)}", f"     newer: {_line(pair.newer)}"]
        messages = prompts.read_judge_messages(blocks, query.text, query.tense,
                                               query.moment.astimezone(UTC).date().isoformat())
        output, _ = self.llm.complete_model(messages, PairJudgements, name="read_judge")
        labels: dict[int, PairLabel] = {}
        for judgement in output.judgements:
            index = prompts.label_position(judgement.pair, "p", len(pairs))
            if index is not None:
                labels.setdefault(index, judgement.label)
        return labels


def _line(memory: MemoryItem) -> str:
    """``(date, speaker) text`` of a turn, quoted and cut to ``TURN_CHARS``."""
    text = memory.memory if len(memory.memory) <= TURN_CHARS else memory.memory[:TURN_CHARS] + "..."
    return f"({memory.began_at.astimezone(UTC).date().isoformat()}, {memory.speaker or 'user'}) {prompts.quote(text)}"


class _NoOpinion:
    """A judge that moves nothing: every pair between read time's thresholds."""

    def probabilities(self, pairs: Sequence[ReadPair], query: SearchQuery, ranking: Sequence[str]) -> list[float]:
        return [NO_OPINION] * len(pairs)


def llm_judge(llm: LLM, embedder_signature: str, *, read_pairs: bool = True) -> LLMJudge:
    """An ``LLMJudge`` whose fallback is the shipped models for ``embedder_signature`` (with the pair reader when
    ``read_pairs``), or no opinion on any pair when no read model ships."""
    model = read_model(embedder_signature)
    return LLMJudge(llm, ModelJudge(model, read_pairs) if model is not None else _NoOpinion())
