"""``engram.jsonl``: JSON lines are read object by object, and the first bad line is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from engram.errors import ValidationError
from engram.jsonl import jsonl_objects
from engram.learning.training import read_replay


def test_objects_come_with_their_line_numbers_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"b": 2}\n', encoding="utf-8")
    assert list(jsonl_objects(path, field="file")) == [(1, {"a": 1}), (4, {"b": 2})]


@pytest.mark.parametrize(("content", "problem"), [('{"a": 1}\n{"a": \n', "rows.jsonl:2 is not JSON"),
                                                  ('{"a": 1}\n[1, 2]\n', "rows.jsonl:2 must be a JSON object")])
def test_the_first_bad_line_is_named_with_the_field(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValidationError, match=problem) as caught:
        list(jsonl_objects(path, field="replay"))
    assert caught.value.field == "replay"


def test_a_missing_replay_file_is_a_validation_error_on_replay(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read") as caught:
        read_replay(tmp_path / "absent.jsonl", "sft")
    assert caught.value.field == "replay"
