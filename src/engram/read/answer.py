"""Answering from memory: search hits in, a short answer with citations (or an abstention) out.

One LLM call per question, none when there are no hits. Memories are quoted as data inside a
``<memories>`` block; citations are restricted to the hits that were shown to the model."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engram.errors import ValidationError
from engram.llm import prompts
from engram.llm.base import LLM, UsageLog
from engram.models import AnswerResponse, SearchHit, SearchResponse
from engram.timeutil import utcnow

ABSTAIN_TEXT = "I don't know"
_ABSTAIN_PHRASES = frozenset({"i don't know", "i do not know", "unknown", "not mentioned", "no information"})


class AnswerOutput(BaseModel):
    """The JSON object the answering prompt asks for."""

    model_config = ConfigDict(extra="ignore")

    answer: str = Field(default="", json_schema_extra={"maxLength": 300})
    citations: list[str] = Field(default_factory=list, json_schema_extra={"maxItems": 10})
    abstain: bool = False

    @field_validator("answer", mode="before")
    @classmethod
    def _answer_to_text(cls, value: Any) -> Any:
        return "" if value is None else str(value) if isinstance(value, int | float) else value

    @field_validator("citations", mode="before")
    @classmethod
    def _to_text_list(cls, value: Any) -> Any:
        items = [] if value is None else value if isinstance(value, list) else [value]
        return [str(item) for item in items if isinstance(item, str | int)]

    @model_validator(mode="after")
    def _answer_or_abstain(self) -> AnswerOutput:
        if not self.abstain and not self.answer.strip():
            raise ValueError("answer is empty but abstain is false")
        return self


class Answer(BaseModel):
    """The answer, the ids of the memories it cites (all among the hits), and whether it abstained."""

    answer: str
    cited_ids: list[str] = Field(default_factory=list)
    abstained: bool = False
    llm_calls: int = 0


def answer_question(
    llm: LLM,
    question: str,
    hits: Sequence[SearchHit],
    reference_date: datetime | None = None,
    *,
    max_memories: int = 30,
    usage: UsageLog | None = None,
) -> Answer:
    """Answer ``question`` from ``hits`` (best first; the first ``max_memories`` are shown).

    ``reference_date`` is "today" for relative questions (default: now). Raises ``LLMError`` when
    the model fails after its bounded retries."""
    if not question or not question.strip():
        raise ValidationError("must be a non-empty string", field="question")
    shown = list(hits)[:max_memories]
    if not shown:
        return Answer(answer=ABSTAIN_TEXT, abstained=True)
    today = (reference_date or utcnow()).astimezone(UTC)
    lines = [_memory_line(index, hit) for index, hit in enumerate(shown, start=1)]
    output, _ = llm.complete_model(prompts.answer_messages(lines, question.strip(), f"{today:%Y-%m-%d (%A)}"),
                                   AnswerOutput, name="answer", usage=usage)
    text = " ".join(output.answer.split())
    if output.abstain or text.casefold().rstrip(".!") in _ABSTAIN_PHRASES:
        return Answer(answer=ABSTAIN_TEXT, abstained=True, llm_calls=1)
    return Answer(answer=text, cited_ids=_cited_ids(output.citations, shown), llm_calls=1)


def cited_answer(llm: LLM, question: str, found: SearchResponse, reference_date: datetime | None) -> dict[str, Any]:
    """``Memory.answer``'s reply: the answer to ``question`` from the hits of ``found``, the hits it cites,
    every hit shown, and the LLM usage."""
    usage = UsageLog()
    reply = answer_question(llm, question, found.results, reference_date, usage=usage)
    cited = [hit for hit in found.results if hit.id in set(reply.cited_ids)]
    return AnswerResponse(answer=reply.answer, abstained=reply.abstained, citations=cited, memories=found.results,
                          usage=usage.summary().to_dict()).model_dump(mode="json")


def memory_date(hit: SearchHit) -> datetime:
    """When a memory was said: its earliest source episode, else its validity start, else creation."""
    if hit.sources:
        return min(source.occurred_at for source in hit.sources)
    return hit.valid_from or hit.created_at


def _memory_line(index: int, hit: SearchHit) -> str:
    speaker = next((source.name or source.role for source in hit.sources), None)
    parts = [f"[m{index}]", f"date={memory_date(hit).astimezone(UTC):%Y-%m-%d}"]
    if speaker:
        parts.append(f"speaker={prompts.quote(speaker)}")
    parts.append(f"kind={prompts.quote(hit.kind)}:")
    return " ".join(parts) + " " + prompts.quote(hit.memory)


def _cited_ids(citations: list[str], shown: list[SearchHit]) -> list[str]:
    by_id = {hit.id for hit in shown}
    cited: dict[str, None] = {}
    for citation in citations:
        reference = citation.strip()
        if reference in by_id:
            cited[reference] = None
        elif (position := prompts.label_position(reference, "m", len(shown))) is not None:
            cited[shown[position].id] = None
    return list(cited)
