"""Extraction: episodes in, dated and sourced facts out. A pure step: no storage access.

Call budget: one LLM call per batch of up to ``batch_size`` episodes (and ``max_batch_chars``
characters), plus at most ``llm.max_attempts - 1`` repair re-asks when a reply is unusable. A batch
that still fails is reported in ``failed_episode_ids``; its episodes stay pending for a retry."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engram.errors import LLMError, ValidationError
from engram.llm import prompts
from engram.llm.base import LLM, UsageLog
from engram.models import Episode

_ISO_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_MAX_KEYS = 8


class FactKind(StrEnum):
    FACT = "fact"
    PREFERENCE = "preference"
    PLAN = "plan"
    EVENT = "event"


_KINDS = frozenset(kind.value for kind in FactKind)


class RawFact(BaseModel):
    """One item as the model returns it. Lenient: odd shapes are coerced, not rejected; the
    schema-only bounds (``json_schema_extra``) steer constrained decoders without failing replies."""

    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1, json_schema_extra={"maxLength": 240})
    kind: str = Field(default=FactKind.FACT.value, json_schema_extra={"enum": [kind.value for kind in FactKind]})
    speaker: str | None = None
    when: str | None = None
    sources: list[str] = Field(default_factory=list, json_schema_extra={"maxItems": 6})
    keys: list[str] = Field(default_factory=list, json_schema_extra={"maxItems": 5})

    @field_validator("when", "speaker", "kind", mode="before")
    @classmethod
    def _scalar_to_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    @field_validator("sources", "keys", mode="before")
    @classmethod
    def _to_text_list(cls, value: Any) -> Any:
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        return [str(item) for item in items if isinstance(item, str | int) and str(item).strip()]


class ExtractionOutput(BaseModel):
    """The JSON object the extraction prompt asks for."""

    facts: list[RawFact] = Field(json_schema_extra={"maxItems": 40})


class ExtractedFact(BaseModel):
    """A validated fact: sources are ids of the given episodes, time resolved to a date."""

    text: str
    kind: str
    speaker: str | None = None
    refers_to: date | None = None
    time_granularity: str | None = None
    time_expression: str | None = None
    source_episode_ids: list[str]
    observed_at: datetime
    keys: list[str] = Field(default_factory=list)


class DroppedFact(BaseModel):
    text: str
    reason: str


class ExtractionResult(BaseModel):
    """Facts from all batches that succeeded, and the episodes of the batches that failed."""

    facts: list[ExtractedFact] = Field(default_factory=list)
    processed_episode_ids: list[str] = Field(default_factory=list)
    failed_episode_ids: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    dropped: list[DroppedFact] = Field(default_factory=list)
    llm_calls: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed_episode_ids


def extract_facts(
    llm: LLM,
    episodes: Sequence[Episode],
    *,
    speakers: Mapping[str, str] | None = None,
    batch_size: int = 20,
    max_batch_chars: int = 12_000,
    usage: UsageLog | None = None,
    instructions: str | None = None,
) -> ExtractionResult:
    """Extract facts from ``episodes`` with one LLM call per batch (``instructions``: the application's
    additions to the extraction prompt).

    ``speakers`` maps a role (``"user"``, ``"assistant"``) to the name shown to the model when an
    episode has no ``name``. Never raises for a failed batch: see ``failed_episode_ids``."""
    if batch_size < 1:
        raise ValidationError("must be at least 1", field="batch_size")
    result = ExtractionResult()
    seen: dict[str, ExtractedFact] = {}
    with_text = [episode for episode in episodes if episode.content.strip()]
    for batch in _batches(with_text, batch_size, max_batch_chars):
        result.llm_calls += 1
        lines = [_message_line(index, episode, speakers) for index, episode in enumerate(batch, start=1)]
        try:
            output, _ = llm.complete_model(prompts.extraction_messages(lines, instructions), ExtractionOutput,
                                           name="extract", usage=usage)
        except LLMError as error:
            result.failed_episode_ids += [episode.id for episode in batch]
            result.errors.append(error.message)
            continue
        result.processed_episode_ids += [episode.id for episode in batch]
        for raw in output.facts:
            fact, problem = _validate(raw, batch, speakers)
            if fact is None:
                result.dropped.append(DroppedFact(text=raw.text, reason=problem))
            elif (key := normalize_fact_text(fact.text)) in seen:
                _merge(seen[key], fact)
            else:
                seen[key] = fact
                result.facts.append(fact)
    result.processed_episode_ids += [episode.id for episode in episodes if not episode.content.strip()]
    return result


def normalize_fact_text(text: str) -> str:
    """Case, accents, punctuation and spacing folded: equal for texts that say the same words."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w\s]", " ", folded).split())


def resolve_time(expression: str | None, base: datetime) -> tuple[date | None, str | None]:
    """The date an expression refers to (``"next Friday"``, ``"2023-05"``) and its granularity
    (``day``/``week``/``month``/``year``), relative to ``base``; ``(None, None)`` if unknown.

    ISO forms are read directly; other expressions are parsed as English by ``dateparser``."""
    text = (expression or "").strip()
    if not text or text.lower() in {"null", "none", "unknown", "n/a"}:
        return None, None
    if match := _ISO_DATE.match(text):
        year, month, day = match.groups()
        try:
            resolved = date(int(year), int(month or 1), int(day or 1))
        except ValueError:
            return None, None
        return resolved, "day" if day else "month" if month else "year"
    parsed = _date_parser(base.astimezone(UTC).replace(tzinfo=None)).get_date_data(text)
    if parsed is None or parsed.date_obj is None:
        return None, None
    period = parsed.period or "day"
    moment = parsed.date_obj.date()
    if period == "week":
        moment -= timedelta(days=moment.weekday())
    elif period == "month":
        moment = moment.replace(day=1)
    elif period == "year":
        moment = moment.replace(month=1, day=1)
    return moment, period


@lru_cache(maxsize=64)
def _date_parser(base: datetime) -> Any:
    from dateparser.date import DateDataParser

    return DateDataParser(languages=["en"],
                          settings={"RELATIVE_BASE": base, "PREFER_DATES_FROM": "current_period"})


def _batches(episodes: list[Episode], batch_size: int, max_chars: int) -> list[list[Episode]]:
    batches: list[list[Episode]] = []
    current: list[Episode] = []
    size = 0
    for episode in episodes:
        length = len(episode.content)
        if current and (len(current) >= batch_size or size + length > max_chars):
            batches.append(current)
            current, size = [], 0
        current.append(episode)
        size += length
    if current:
        batches.append(current)
    return batches


def speaker_name(episode: Episode, speakers: Mapping[str, str] | None) -> str:
    """The name a message is attributed to: its ``name``, else the mapped role, else the role."""
    return episode.name or (speakers or {}).get(episode.role) or episode.role


def _message_line(index: int, episode: Episode, speakers: Mapping[str, str] | None) -> str:
    moment = episode.occurred_at.astimezone(UTC)
    return (f"[m{index}] {moment:%Y-%m-%d} ({moment:%A}) | {prompts.quote(speaker_name(episode, speakers))} "
            f"({episode.role}): {prompts.quote(episode.content)}")


def _validate(raw: RawFact, batch: list[Episode], speakers: Mapping[str, str] | None
              ) -> tuple[ExtractedFact | None, str]:
    """A checked fact, or None and the reason it was dropped. Sources never leave ``batch``."""
    text = " ".join(raw.text.split())
    if not text:
        return None, "empty text"
    sources = _resolve_sources(raw.sources, batch)
    if not sources:
        if len(batch) != 1:
            return None, f"no valid source among {raw.sources!r}"
        sources = [batch[0]]
    names = {speaker_name(episode, speakers) for episode in batch}
    trusted = len(sources) > 1 and raw.speaker in names
    speaker = raw.speaker if trusted else speaker_name(sources[0], speakers)
    observed_at = max(episode.occurred_at for episode in sources)
    refers_to, granularity = resolve_time(raw.when, sources[0].occurred_at)
    kind = raw.kind.strip().lower()
    keys = list(dict.fromkeys(key.strip() for key in raw.keys if key.strip()))[:_MAX_KEYS]
    return ExtractedFact(
        text=text,
        kind=kind if kind in _KINDS else FactKind.FACT.value,
        speaker=speaker,
        refers_to=refers_to,
        time_granularity=granularity,
        time_expression=raw.when.strip() if raw.when and raw.when.strip() else None,
        source_episode_ids=[episode.id for episode in sources],
        observed_at=observed_at,
        keys=keys,
    ), ""


def _resolve_sources(references: list[str], batch: list[Episode]) -> list[Episode]:
    by_id = {episode.id: episode for episode in batch}
    chosen: dict[str, Episode] = {}
    for reference in references:
        reference = reference.strip()
        if reference in by_id:
            chosen[reference] = by_id[reference]
        elif (position := prompts.label_position(reference, "m", len(batch))) is not None:
            chosen[batch[position].id] = batch[position]
    return list(chosen.values())


def _merge(kept: ExtractedFact, duplicate: ExtractedFact) -> None:
    kept.source_episode_ids = list(dict.fromkeys(kept.source_episode_ids + duplicate.source_episode_ids))
    kept.keys = list(dict.fromkeys(kept.keys + duplicate.keys))[:_MAX_KEYS]
    kept.observed_at = max(kept.observed_at, duplicate.observed_at)
    if kept.refers_to is None:
        kept.refers_to, kept.time_granularity = duplicate.refers_to, duplicate.time_granularity
        kept.time_expression = duplicate.time_expression
