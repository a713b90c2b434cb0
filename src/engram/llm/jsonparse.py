"""A tolerant reader for the JSON object inside a model's reply.

It accepts what models commonly wrap around or break in JSON: ``<think>`` blocks, code fences,
prose before and after, trailing commas, single-quoted strings, Python's ``True/False/None``
and ``//`` comments. It never guesses missing content: a reply without one complete object is
an error (:class:`JSONParseError`), which the caller turns into a repair request."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

_LEADING_THINK_BLOCKS = re.compile(r"\A\s*(?:<think>.*?</think>\s*)+", re.DOTALL | re.IGNORECASE)
_CODE_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_PY_CONSTANTS = {"True": "true", "False": "false", "None": "null"}
_VALUE_OPENERS = "{[,:"
_WORD = re.compile(r"[A-Za-z_]+")
_NON_SPACE = re.compile(r"\S")
_MAX_OBJECT_STARTS = 8


class JSONParseError(ValueError):
    """The reply holds no usable JSON object; the message says why, briefly."""


def parse_json_object(text: str) -> dict[str, Any]:
    """The first JSON object found in ``text``, repaired where that is safe."""
    cleaned = strip_thinking(text).strip().lstrip("\ufeff")
    if not cleaned:
        raise JSONParseError("the reply was empty")
    first_error: JSONParseError | None = None
    for candidate in _candidates(cleaned):
        try:
            value = _loads(candidate)
        except JSONParseError as error:
            first_error = first_error or error
            continue
        if isinstance(value, dict):
            return value
        first_error = first_error or JSONParseError(f"expected a JSON object, got {type(value).__name__}")
    if "{" not in cleaned or first_error is None:
        raise JSONParseError(f"no JSON object found in the reply (it starts {cleaned[:40]!r})")
    raise first_error


def strip_thinking(text: str) -> str:
    """``text`` without the ``<think>...</think>`` blocks it opens with (reasoning models put them before the
    answer in content); the same tags later, e.g. inside a JSON string of the answer, are the answer's."""
    return _LEADING_THINK_BLOCKS.sub("", text, count=1)


def _candidates(text: str) -> Iterator[str]:
    seen: set[str] = set()
    fenced = [match.group(1).strip() for match in _CODE_FENCE.finditer(text)]
    for candidate in [text, *fenced, *_balanced_objects(text)]:
        if candidate and candidate not in seen:
            seen.add(candidate)
            yield candidate


def _loads(candidate: str) -> Any:
    try:
        return json.loads(candidate, strict=False)
    except json.JSONDecodeError as error:
        first = error
    try:
        return json.loads(_repair(candidate), strict=False)
    except json.JSONDecodeError:
        where = f"line {first.lineno} column {first.colno}"
        raise JSONParseError(f"invalid JSON ({first.msg} at {where})") from None


def _balanced_objects(text: str) -> Iterator[str]:
    """Spans ``{...}`` whose braces balance outside strings, in order of their start."""
    starts = 0
    position = text.find("{")
    while position != -1 and starts < _MAX_OBJECT_STARTS:
        starts += 1
        end = _object_end(text, position)
        if end is not None:
            yield text[position:end]
        position = text.find("{", position + 1)


def _object_end(text: str, start: int) -> int | None:
    depth = 0
    index = start
    previous = "{"
    while index < len(text):
        char = text[index]
        if char == '"' or (char == "'" and previous in _VALUE_OPENERS):
            closing = _string_end(text, index, char)
            if closing is None:
                return None
            index = closing
            previous = char
            continue
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index + 1
        if not char.isspace():
            previous = char
        index += 1
    return None


def _string_end(text: str, start: int, quote: str) -> int | None:
    """Index just past the string opened by ``quote`` at ``start``, or None if unterminated."""
    index = start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == quote:
            return index + 1
        index += 1
    return None


def _repair(text: str) -> str:
    """Fix trailing commas, single-quoted strings, Python constants and comments outside strings."""
    out: list[str] = []
    last = "{"  # the last significant character written; a value may follow it
    index = 0
    while index < len(text):
        char = text[index]
        piece = char
        if char == '"':
            end = _string_end(text, index, '"') or len(text)
            piece = text[index:end]
        elif char == "'" and last in _VALUE_OPENERS and (closing := _string_end(text, index, "'")) is not None:
            end, piece = closing, json.dumps(_unescape_single(text[index + 1:closing - 1]))
        elif char == "," and _next_significant(text, index + 1) in ("}", "]"):
            end, piece = index + 1, ""
        elif text.startswith("//", index):
            newline = text.find("\n", index)
            end, piece = (len(text) if newline == -1 else newline), ""
        elif text.startswith("/*", index):
            close = text.find("*/", index + 2)
            end, piece = (len(text) if close == -1 else close + 2), ""
        elif (word := _WORD.match(text, index)) is not None:
            end, piece = word.end(), _PY_CONSTANTS.get(word.group(0), word.group(0))
        else:
            end = index + 1
        out.append(piece)
        if piece.strip():
            last = piece.strip()[-1]
        index = end
    return "".join(out)


def _unescape_single(body: str) -> str:
    return body.replace("\\'", "'").replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t")


def _next_significant(text: str, start: int) -> str:
    match = _NON_SPACE.search(text, start)
    return match.group(0) if match else ""
