"""Unit tests of the small pipeline steps: time parsing, filters, query terms, fusion, ingestion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from engram.arguments import validate_metadata, validate_scope
from engram.config import Limits
from engram.errors import FilterError, ScopeMissingError, ValidationError
from engram.filters import And, Condition, Not, Or, parse_filters
from engram.models import Scope
from engram.read.fuse import reciprocal_rank_fusion
from engram.store.base import Candidate
from engram.terms import query_terms
from engram.timeutil import from_storage, to_storage, to_utc
from engram.write.ingest import to_episodes


def test_to_utc_accepts_common_forms() -> None:
    expected = datetime(2024, 5, 8, 13, 56, tzinfo=UTC)
    assert to_utc("2024-05-08T13:56:00Z", field="t") == expected
    assert to_utc("2024-05-08T15:56:00+02:00", field="t") == expected
    assert to_utc(datetime(2024, 5, 8, 13, 56), field="t") == expected
    assert to_utc(datetime(2024, 5, 8, 8, 56, tzinfo=timezone(timedelta(hours=-5))), field="t") == expected
    assert to_utc(expected.timestamp(), field="t") == expected
    for bad in ("", "May 8", float("nan"), 1e20, True, [], object()):
        with pytest.raises(ValidationError) as info:
            to_utc(bad, field="when")
        assert info.value.field == "when"


def test_storage_format_sorts_like_time() -> None:
    times = [datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC),
             datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)]
    stored = [to_storage(t) for t in times]
    assert stored == sorted(stored)
    assert [from_storage(s) for s in stored] == times


def test_parse_filters_lifts_scope_and_builds_tree() -> None:
    parsed = parse_filters({"AND": [{"user_id": "u"}, {"agent_id": "a"}, {"tag": "x"}], "n": {"gte": 1, "lt": 3}})
    assert parsed.scope == Scope(user_id="u", agent_id="a")
    assert parsed.node == And((Condition("tag", "eq", "x"), And((Condition("n", "gte", 1), Condition("n", "lt", 3)))))
    parsed = parse_filters({"OR": [{"k": {"in": ["a", "b"]}}, {"NOT": {"k": None}}]})
    assert parsed.node == Or((Condition("k", "in", ("a", "b")), Not(Condition("k", "eq", None))))
    assert parse_filters({"created_at": {"gte": "2024-01-01"}}).node == Condition(
        "created_at", "gte", "2024-01-01T00:00:00.000000Z")
    assert parse_filters(None).node is None


@pytest.mark.parametrize("bad", [[], {"x": {}}, {"x": {"$regex": "a"}}, {"AND": []}, {"NOT": []},
                                 {"x": {"in": "ab"}}, {"x": {"gt": True}}, {"x": [1, 2]}])
def test_parse_filters_rejects(bad: object) -> None:
    with pytest.raises(FilterError):
        parse_filters(bad)


def test_parse_filters_limits_depth() -> None:
    node: dict[str, object] = {"x": 1}
    for _ in range(40):
        node = {"NOT": node}
    with pytest.raises(FilterError, match="deeper"):
        parse_filters(node)


def test_query_terms_drop_stopwords_and_dedupe() -> None:
    assert query_terms("What did Caroline say about the Caroline's painting?") == (
        "caroline", "say", "caroline's", "painting")
    assert query_terms("Who is he?") == ("who", "is", "he")
    assert query_terms("") == ()


def test_rrf_hand_computed() -> None:
    rankings = {"lexical": [Candidate("a", 9.0), Candidate("b", 5.0)],
                "dense": [Candidate("b", 0.9), Candidate("c", 0.8)]}
    fused = reciprocal_rank_fusion(rankings, {"lexical": 1.0, "dense": 1.0}, k=1.0)
    best = 2.0 / 2.0
    scores = {item.memory_id: item.score for item in fused}
    assert scores["b"] == pytest.approx((1 / 3 + 1 / 2) / best)
    assert scores["a"] == pytest.approx((1 / 2) / best)
    assert scores["c"] == pytest.approx((1 / 3) / best)
    assert [item.memory_id for item in fused] == ["b", "a", "c"]
    weighted = reciprocal_rank_fusion(rankings, {"lexical": 3.0, "dense": 1.0}, k=1.0)
    assert weighted[0].memory_id == "a"
    top = reciprocal_rank_fusion({"x": [Candidate("a", 1.0)], "y": [Candidate("a", 1.0)]}, {"x": 1, "y": 1}, k=60)
    assert top[0].score == pytest.approx(1.0)


def test_validate_scope() -> None:
    limits = Limits()
    assert validate_scope("u", None, "r", limits, required=True) == Scope(user_id="u", run_id="r")
    with pytest.raises(ScopeMissingError):
        validate_scope(None, None, None, limits, required=True)
    assert validate_scope(None, None, None, limits, required=False).is_empty()
    with pytest.raises(ValidationError):
        validate_scope("x" * 300, None, None, limits, required=True)


def test_to_episodes_merges_metadata_and_times() -> None:
    episodes = to_episodes(
        [{"role": "User", "content": "hi", "name": "Al", "metadata": {"a": 2}}, "second"],
        scope=Scope(user_id="u"), metadata={"a": 1, "b": 1}, timestamp="2024-01-01T00:00:00Z", limits=Limits())
    assert [e.role for e in episodes] == ["user", "user"]
    assert episodes[0].metadata == {"a": 2, "b": 1} and episodes[1].metadata == {"a": 1, "b": 1}
    assert episodes[0].occurred_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert episodes[0].name == "Al" and episodes[0].hash != episodes[1].hash
    content = [{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}]
    parts = to_episodes({"content": content},
                        scope=Scope(user_id="u"), metadata={}, timestamp=None, limits=Limits())
    assert parts[0].content == "a\nb"


def test_metadata_limits() -> None:
    limits = Limits(max_metadata_depth=3, max_metadata_bytes=100)
    assert validate_metadata({"a": {"b": [1, 2.5, None, True]}}, limits) == {"a": {"b": [1, 2.5, None, True]}}
    with pytest.raises(ValidationError, match="deeper"):
        validate_metadata({"a": {"b": {"c": {"d": {"e": 1}}}}}, limits)
    with pytest.raises(ValidationError, match="larger"):
        validate_metadata({"a": "x" * 200}, limits)
