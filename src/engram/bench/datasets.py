"""Benchmark data sets (LoCoMo, LongMemEval) loaded into one normalised form.

A :class:`Conversation` is one haystack: the sessions to ingest into a fresh store and the
questions asked afterwards. Turn ids are ``"<session_id>:<index>"`` strings (LoCoMo's own
``dia_id`` such as ``"D1:3"``; LongMemEval ``"<session id>:<turn index>"``), so the session of
any turn id is the part before the last colon."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from engram.errors import ValidationError

LOCOMO_CATEGORIES: dict[int, str] = {
    1: "multi-hop",
    2: "temporal",
    3: "open-domain",
    4: "single-hop",
    5: "adversarial",
}
LONGMEMEVAL_TYPES: tuple[str, ...] = (
    "single-session-user",
    "single-session-assistant",
    "single-session-preference",
    "multi-session",
    "temporal-reasoning",
    "knowledge-update",
)
ABSTENTION_CATEGORY = "abstention"
#: The role a LoCoMo speaker is ingested as (``load_locomo``).
SpeakerRole = Literal["user", "assistant"]

_SESSION_KEY = re.compile(r"session_(\d+)")
_EVIDENCE_ID = re.compile(r"D:?(\d+):(\d+)")
_LOCOMO_DATE_FORMATS = ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y", "%I:%M %p on %B %d, %Y")
_LONGMEMEVAL_DATE_FORMATS = ("%Y/%m/%d (%a) %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d")


@dataclass(frozen=True)
class Turn:
    """One utterance to ingest. ``text`` is what every system indexes."""

    turn_id: str
    session_id: str
    speaker: str
    role: str
    text: str


@dataclass(frozen=True)
class Session:
    """A dated group of turns, ingested with ``date`` as the event time."""

    session_id: str
    date: datetime
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class Question:
    """A question with the turns that hold its answer.

    ``should_abstain`` marks questions whose answer is not in the conversation (LoCoMo category 5,
    LongMemEval ``_abs``); they are scored only for abstention. ``retrieval_scored`` is true for
    the others when they have at least one usable evidence turn."""

    question_id: str
    question: str
    answer: str
    category: str
    evidence_turns: tuple[str, ...]
    evidence_sessions: tuple[str, ...]
    reference_date: datetime
    should_abstain: bool = False

    @property
    def retrieval_scored(self) -> bool:
        return not self.should_abstain and bool(self.evidence_turns or self.evidence_sessions)


@dataclass
class Conversation:
    """One haystack: sessions to ingest into a fresh store, then questions to ask."""

    conversation_id: str
    sessions: list[Session]
    questions: list[Question]
    quirks: dict[str, int] = field(default_factory=dict)

    @property
    def turns(self) -> list[Turn]:
        return [turn for session in self.sessions for turn in session.turns]


def session_of(turn_id: str) -> str:
    """The session part of a turn id (``"D3:7"`` -> ``"D3"``)."""
    return turn_id.rsplit(":", 1)[0]


def normalise_evidence_ids(raw: Any) -> tuple[list[str], int]:
    """Clean LoCoMo evidence ids; return ``(ids, number of entries dropped)``.

    Handles ``"D8:6; D9:17"`` (two ids in one string), ``"D:11:26"`` (stray colon), ``"D30:05"``
    (zero-padded turn) and drops what cannot be read (``"D"``, ``""``). Order is kept, duplicates
    removed."""
    if raw is None:
        return [], 0
    entries = raw if isinstance(raw, list) else [raw]
    ids: list[str] = []
    dropped = 0
    for entry in entries:
        parts = [part.strip() for part in re.split(r"[;,]", str(entry))]
        for part in parts:
            match = _EVIDENCE_ID.fullmatch(part.replace(" ", ""))
            if match is None:
                dropped += 1
                continue
            turn_id = f"D{int(match.group(1))}:{int(match.group(2))}"
            if turn_id not in ids:
                ids.append(turn_id)
    return ids, dropped


def parse_locomo_date(text: str) -> datetime:
    """Parse a LoCoMo session date such as ``"1:56 pm on 8 May, 2023"`` (taken as UTC)."""
    cleaned = " ".join(text.split())
    for pattern in _LOCOMO_DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValidationError(f"unreadable LoCoMo date {text!r}", field="session_date_time")


def parse_longmemeval_date(text: str) -> datetime:
    """Parse a LongMemEval date such as ``"2023/05/20 (Sat) 02:21"`` (taken as UTC)."""
    cleaned = " ".join(text.split())
    for pattern in _LONGMEMEVAL_DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValidationError(f"unreadable LongMemEval date {text!r}", field="question_date")


def _read_json_list(path: str | Path, dataset: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"no such file: {path}", field="data") from None
    except json.JSONDecodeError as error:
        raise ValidationError(f"not valid JSON ({error})", field="data") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValidationError(f"expected a JSON list of {dataset} samples", field="data")
    return data


def locomo_turn_text(raw_turn: dict[str, Any]) -> str:
    """The text of a LoCoMo turn; image turns get their caption appended."""
    text = str(raw_turn.get("text", "")).strip()
    caption = raw_turn.get("blip_caption")
    if caption:
        text = f"{text} [shares an image: {str(caption).strip()}]".strip()
    return text


def _locomo_sessions(conversation: dict[str, Any], speaker_prefix: bool,
                     second_speaker_role: SpeakerRole) -> list[Session]:
    speaker_a = conversation.get("speaker_a")
    numbers = sorted(
        int(match.group(1)) for key in conversation if (match := _SESSION_KEY.fullmatch(key))
    )
    sessions: list[Session] = []
    for number in numbers:
        raw_turns = conversation.get(f"session_{number}") or []
        date_text = conversation.get(f"session_{number}_date_time")
        if not raw_turns:
            continue
        if not date_text:
            raise ValidationError(f"session_{number} has no date", field=f"session_{number}_date_time")
        session_id = f"D{number}"
        turns: list[Turn] = []
        for index, raw_turn in enumerate(raw_turns, start=1):
            speaker = str(raw_turn.get("speaker", ""))
            text = locomo_turn_text(raw_turn)
            if not text:
                continue
            turn_id, _ = normalise_evidence_ids(raw_turn.get("dia_id", f"{session_id}:{index}"))
            turns.append(Turn(
                turn_id=turn_id[0] if turn_id else f"{session_id}:{index}",
                session_id=session_id,
                speaker=speaker,
                role="user" if speaker == speaker_a else second_speaker_role,
                text=f"{speaker}: {text}" if speaker_prefix and speaker else text,
            ))
        sessions.append(Session(session_id, parse_locomo_date(str(date_text)), tuple(turns)))
    return sessions


def load_locomo(path: str | Path, *, speaker_prefix: bool = True,
                second_speaker_role: SpeakerRole = "user") -> list[Conversation]:
    """Load a LoCoMo file (list of samples with ``conversation`` and ``qa``).

    LoCoMo is two people talking: both speak as role ``user``, told apart by ``Turn.speaker`` (the
    message's ``name``). ``second_speaker_role="assistant"`` ingests ``speaker_b`` as the assistant
    instead, to measure how the assistant-turn policy treats turns that carry facts.
    ``speaker_prefix`` writes turns as ``"Speaker: text"`` for every system alike. Evidence ids
    are normalised; ids naming turns absent from the conversation are dropped and counted in
    ``Conversation.quirks``."""
    conversations: list[Conversation] = []
    for position, sample in enumerate(_read_json_list(path, "LoCoMo")):
        raw_conversation = sample.get("conversation")
        if not isinstance(raw_conversation, dict):
            raise ValidationError(f"sample {position} has no conversation object", field="conversation")
        conversation_id = str(sample.get("sample_id", f"locomo-{position}"))
        sessions = _locomo_sessions(raw_conversation, speaker_prefix, second_speaker_role)
        if not sessions:
            raise ValidationError(f"{conversation_id} has no sessions", field="conversation")
        known_turns = {turn.turn_id for session in sessions for turn in session.turns}
        last_date = max(session.date for session in sessions)
        quirks = {"malformed_evidence": 0, "unknown_evidence": 0, "no_evidence": 0, "missing_answer": 0}
        questions: list[Question] = []
        for number, qa in enumerate(sample.get("qa") or []):
            category = int(qa.get("category", 0))
            evidence, dropped = normalise_evidence_ids(qa.get("evidence"))
            quirks["malformed_evidence"] += dropped
            usable = [turn_id for turn_id in evidence if turn_id in known_turns]
            quirks["unknown_evidence"] += len(evidence) - len(usable)
            if "answer" not in qa:
                quirks["missing_answer"] += 1
            should_abstain = category == 5
            if not usable and not should_abstain:
                quirks["no_evidence"] += 1
            answer = qa.get("answer", qa.get("adversarial_answer", ""))
            questions.append(Question(
                question_id=f"{conversation_id}:q{number}",
                question=str(qa.get("question", "")),
                answer=str(answer),
                category=LOCOMO_CATEGORIES.get(category, f"category-{category}"),
                evidence_turns=tuple(usable),
                evidence_sessions=tuple(dict.fromkeys(session_of(turn_id) for turn_id in usable)),
                reference_date=last_date,
                should_abstain=should_abstain,
            ))
        conversations.append(Conversation(conversation_id, sessions, questions, quirks))
    return conversations


def _longmemeval_sessions(sample: dict[str, Any]) -> tuple[list[Session], list[str]]:
    raw_sessions = sample.get("haystack_sessions") or []
    session_ids = [str(item) for item in sample.get("haystack_session_ids") or []]
    dates = sample.get("haystack_dates") or []
    if len(session_ids) != len(raw_sessions) or len(dates) != len(raw_sessions):
        raise ValidationError(
            "haystack_sessions, haystack_session_ids and haystack_dates differ in length",
            field="haystack_sessions",
        )
    sessions: list[Session] = []
    evidence: list[str] = []
    for session_id, date_text, raw_turns in zip(session_ids, dates, raw_sessions, strict=True):
        turns: list[Turn] = []
        for index, raw_turn in enumerate(raw_turns):
            text = str(raw_turn.get("content", "")).strip()
            if not text:
                continue
            turn_id = f"{session_id}:{index}"
            role = str(raw_turn.get("role", "user"))
            turns.append(Turn(turn_id, session_id, role, role, text))
            if raw_turn.get("has_answer"):
                evidence.append(turn_id)
        sessions.append(Session(session_id, parse_longmemeval_date(str(date_text)), tuple(turns)))
    return sessions, evidence


def load_longmemeval(path: str | Path) -> list[Conversation]:
    """Load a LongMemEval file (``longmemeval_s`` / ``_m`` / ``_oracle``): one conversation per question.

    Evidence turns are those flagged ``has_answer``; evidence sessions are ``answer_session_ids``.
    Question ids ending in ``_abs`` are abstention questions."""
    conversations: list[Conversation] = []
    for position, sample in enumerate(_read_json_list(path, "LongMemEval")):
        question_id = str(sample.get("question_id", f"lme-{position}"))
        sessions, evidence_turns = _longmemeval_sessions(sample)
        if not sessions:
            raise ValidationError(f"{question_id} has no haystack sessions", field="haystack_sessions")
        known_sessions = {session.session_id for session in sessions}
        answer_sessions = [str(item) for item in sample.get("answer_session_ids") or []]
        usable_sessions = [item for item in answer_sessions if item in known_sessions]
        should_abstain = question_id.endswith("_abs")
        date_text = sample.get("question_date")
        reference = (parse_longmemeval_date(str(date_text)) if date_text
                     else max(session.date for session in sessions))
        question = Question(
            question_id=question_id,
            question=str(sample.get("question", "")),
            answer=str(sample.get("answer", "")),
            category=str(sample.get("question_type", "unknown")),
            evidence_turns=tuple(evidence_turns),
            evidence_sessions=tuple(usable_sessions),
            reference_date=reference,
            should_abstain=should_abstain,
        )
        quirks = {"unknown_evidence": len(answer_sessions) - len(usable_sessions),
                  "no_turn_evidence": int(not evidence_turns and not should_abstain)}
        conversations.append(Conversation(question_id, sessions, [question], quirks))
    return conversations
