"""Parsing the hand-written LoCoMo and LongMemEval fixtures, quirks included."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engram.bench.datasets import load_locomo, load_longmemeval, parse_locomo_date, parse_longmemeval_date
from engram.errors import ValidationError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LOCOMO = FIXTURES / "locomo_tiny.json"
LONGMEMEVAL = FIXTURES / "longmemeval_tiny.json"


def test_locomo_sessions_follow_session_keys_not_date_keys() -> None:
    first, second = load_locomo(LOCOMO)
    assert first.conversation_id == "conv-tiny-1"
    assert [session.session_id for session in first.sessions] == ["D1", "D2"]  # session_3 has only a date
    assert first.sessions[1].date == datetime(2023, 6, 27, 10, 37, tzinfo=UTC)
    assert len(first.turns) == 9 and len(second.turns) == 4
    assert first.turns[0].text == "Alice: Hi Bob! How was your weekend?"
    assert [turn.role for turn in first.turns[:2]] == ["user", "user"]  # two people talking, told apart by name
    assert [turn.speaker for turn in first.turns[:2]] == ["Alice", "Bob"]
    as_assistant = load_locomo(LOCOMO, second_speaker_role="assistant")[0]
    assert [turn.role for turn in as_assistant.turns[:2]] == ["user", "assistant"]


def test_locomo_image_turns_carry_their_caption() -> None:
    turn = next(turn for turn in load_locomo(LOCOMO)[0].turns if turn.turn_id == "D1:5")
    assert turn.text == "Alice: Look at the vase I made. [shares an image: a photo of a blue ceramic vase on a table]"
    plain = next(t for t in load_locomo(LOCOMO, speaker_prefix=False)[0].turns if t.turn_id == "D1:5")
    assert plain.text.startswith("Look at the vase")


def test_locomo_questions_evidence_quirks_and_answers() -> None:
    first, second = load_locomo(LOCOMO)
    questions = first.questions
    assert [q.category for q in questions] == ["single-hop", "temporal", "multi-hop", "multi-hop", "single-hop",
                                               "open-domain", "adversarial", "adversarial"]
    assert questions[1].answer == "2022"  # an integer answer
    assert questions[2].evidence_turns == ("D1:4", "D2:3")  # "D1:4; D2:3"
    assert questions[2].evidence_sessions == ("D1", "D2")
    assert questions[3].evidence_turns == ("D2:1",)  # "D:2:1" plus a bare "D"
    assert questions[4].evidence_turns == ("D1:5",)  # "D1:05"
    assert questions[5].evidence_turns == () and not questions[5].retrieval_scored  # empty evidence
    assert questions[6].should_abstain and questions[6].answer == "golden retriever"  # adversarial_answer
    assert not questions[6].retrieval_scored
    assert all(q.reference_date == datetime(2023, 6, 27, 10, 37, tzinfo=UTC) for q in questions)
    assert first.quirks == {"malformed_evidence": 1, "unknown_evidence": 0, "no_evidence": 1, "missing_answer": 2}
    assert second.questions[1].evidence_turns == ("D1:2", "D1:3")  # D9:9 names no turn
    assert second.quirks["unknown_evidence"] == 1
    assert sum(q.retrieval_scored for c in (first, second) for q in c.questions) == 7


def test_longmemeval_one_conversation_per_question() -> None:
    conversations = load_longmemeval(LONGMEMEVAL)
    assert [c.conversation_id for c in conversations] == ["lme-q1", "lme-q2", "lme-q3_abs", "lme-q4"]
    first = conversations[0]
    assert [s.session_id for s in first.sessions] == ["sharegpt_a1", "answer_q1_1", "ultrachat_b2"]
    assert first.sessions[0].date == datetime(2023, 5, 20, 2, 21, tzinfo=UTC)
    question = first.questions[0]
    assert question.evidence_turns == ("answer_q1_1:0",)
    assert question.evidence_sessions == ("answer_q1_1",)
    assert question.reference_date == datetime(2023, 5, 30, 23, 40, tzinfo=UTC)
    assert first.turns[1].role == "assistant"


def test_longmemeval_multi_session_abstention_and_preference() -> None:
    _, temporal, abstention, preference = load_longmemeval(LONGMEMEVAL)
    assert temporal.questions[0].evidence_turns == ("answer_q2_1:0", "answer_q2_2:0")
    assert abstention.questions[0].should_abstain
    assert abstention.questions[0].category == "knowledge-update"
    assert not abstention.questions[0].retrieval_scored
    pref = preference.questions[0]
    assert pref.evidence_turns == () and pref.evidence_sessions == ("answer_q4_1",)
    assert pref.retrieval_scored  # scored at session level only
    assert preference.quirks == {"unknown_evidence": 1, "no_turn_evidence": 1}


def test_dates() -> None:
    assert parse_locomo_date("12:09 am on 13 September, 2023") == datetime(2023, 9, 13, 0, 9, tzinfo=UTC)
    assert parse_longmemeval_date("2023/05/20 (Sat) 02:21") == datetime(2023, 5, 20, 2, 21, tzinfo=UTC)
    with pytest.raises(ValidationError) as error:
        parse_locomo_date("yesterday")
    assert error.value.field == "session_date_time"


def test_bad_files_raise_errors_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as error:
        load_locomo(tmp_path / "missing.json")
    assert error.value.field == "data"
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValidationError):
        load_locomo(broken)
    wrong_shape = tmp_path / "object.json"
    wrong_shape.write_text(json.dumps({"conversation": {}}))
    with pytest.raises(ValidationError):
        load_longmemeval(wrong_shape)
    mismatched = tmp_path / "lme.json"
    mismatched.write_text(json.dumps([{"question_id": "x", "haystack_sessions": [[]], "haystack_dates": [],
                                       "haystack_session_ids": ["s"]}]))
    with pytest.raises(ValidationError) as error:
        load_longmemeval(mismatched)
    assert error.value.field == "haystack_sessions"
