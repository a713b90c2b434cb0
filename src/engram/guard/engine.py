"""The guard's regular-expression engine: linear time in the input, whatever the input.

Python's ``re`` backtracks, so a pattern such as ``\\n\\s*[-*]?\\s*always`` takes cubic time on a
run of newlines (issue 12: 2,000 newlines took 75 s). The guard therefore compiles its patterns
with RE2 (``google-re2``), whose automata run in time linear in the text, and uses RE2's literal
prefilter (``FilteredRE2``) so that a rule is only run on a text containing the words it needs.

RE2 has no look-around and no back-references; the guard's patterns use neither (the few rules
that need "not followed by" say so with ``PatternRule.excluded_next`` and friends, checked in
Python on the match). Python's classes are Unicode-aware and RE2's are ASCII, so ``\\s``, ``\\w``
and ``\\d`` are translated to their Unicode equivalents before compiling; ``\\b`` stays RE2's ASCII
word boundary, which can only find more keyword matches (a keyword glued to a non-ASCII letter),
never fewer.

Without RE2 (``google-re2`` is a dependency; the fallback is for a platform with no wheel),
patterns fall back to Python's ``re`` and a warning is logged. The rules are written without
competing adjacent repetitions and run on windows of bounded length, so their time stays linear
in the record's length (about 1 s of CPU per 200,000 characters instead of 40-60 ms); a few
helper scans (``<img`` and ``![`` links, ``eval(`` call syntax) remain quadratic in Python's
engine on crafted input without their closing ``>``, ``]`` or ``)``."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from typing import Any, TypeAlias

try:
    import re2
except ImportError:  # pragma: no cover - exercised only where google-re2 has no wheel
    re2 = None

#: True when patterns run on RE2 (linear time); False on the ``re`` fallback.
LINEAR = re2 is not None
if not LINEAR:  # pragma: no cover - exercised only where google-re2 has no wheel
    logging.getLogger("engram.guard").warning(
        "google-re2 is not installed: the poisoning guard falls back to Python's re engine, which is "
        "slower and not linear-time on every crafted input; install google-re2")

#: The characters Python's ``\s`` matches in a str pattern (``str.isspace``; none above U+3000).
_PYTHON_SPACES = frozenset(char for char in map(chr, range(0x3001)) if char.isspace())
_CLASS_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}


def _class_items(chars: frozenset[str]) -> str:
    return "".join(f"\\x{{{ord(char):x}}}" for char in sorted(chars))


_SPACE_CLASS = _class_items(_PYTHON_SPACES)
_WORD_CLASS = r"\p{L}\p{N}_"
_OUTSIDE_CLASS = {"s": f"[{_SPACE_CLASS}]", "S": f"[^{_SPACE_CLASS}]", "w": f"[{_WORD_CLASS}]",
                  "W": f"[^{_WORD_CLASS}]", "d": r"\p{Nd}", "D": r"\P{Nd}"}
_INSIDE_CLASS = {"s": _SPACE_CLASS, "w": _WORD_CLASS, "d": r"\p{Nd}"}


#: A compiled pattern: ``re.Pattern[str]`` on the fallback, RE2's pattern object otherwise (RE2's
#: binding ships no type information). Both offer ``search``, ``finditer``, ``findall`` and ``sub``.
Matcher: TypeAlias = Any


def subject(text: str) -> str | bytes:
    """``text`` in the form the engine matches fastest: ASCII text as bytes for RE2 (offsets are the
    same, and RE2's binding skips its per-match offset translation)."""
    return text.encode("ascii") if re2 is not None and text.isascii() else text


def spans(matcher: Matcher, searchable: str | bytes) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of the successive non-overlapping matches of ``matcher`` in ``searchable``.

    On RE2 with bytes this calls the compiled program directly (``_regexp.Match``, pinned by the
    ``google-re2<2`` requirement): the public ``finditer`` builds a match object per match, which
    dominated texts made of thousands of discarded matches."""
    if re2 is None or not isinstance(searchable, bytes):
        for match in matcher.finditer(searchable):
            yield match.start(), match.end()
        return
    program, position, length = matcher._regexp, 0, len(searchable)
    while position <= length:
        start, end = program.Match(re2._Anchor.UNANCHORED, searchable, position, length)[0]
        if start < 0:
            return
        yield start, end
        position = end if end > start else end + 1


def compile_linear(pattern: str, flags: int = 0) -> Matcher:
    """``pattern`` (Python syntax, no look-around) compiled for linear-time matching.

    ``flags`` may combine ``re.IGNORECASE``, ``re.MULTILINE`` and ``re.DOTALL``. Raises
    ``ValueError`` for a pattern RE2 cannot run, so a new rule cannot silently lose the bound."""
    if re2 is None:
        return re.compile(pattern, flags)
    try:
        return re2.compile(to_re2_syntax(pattern, flags), _options())
    except re2.error as exc:
        raise ValueError(f"pattern is not supported by the linear-time engine: {pattern[:80]!r}") from exc


def to_re2_syntax(pattern: str, flags: int = 0) -> str:
    """``pattern`` rewritten for RE2 with Python's (Unicode) meaning of ``\\s \\w \\d`` and their
    negations, and ``flags`` as an inline group."""
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            if in_class and escaped in _INSIDE_CLASS:
                out.append(_INSIDE_CLASS[escaped])
            elif in_class and escaped in "SWD":
                raise ValueError(f"negated class escape \\{escaped} inside [...] is not supported: {pattern[:80]!r}")
            elif not in_class and escaped in _OUTSIDE_CLASS:
                out.append(_OUTSIDE_CLASS[escaped])
            else:
                out.append(pattern[index:index + 2])
            index += 2
            continue
        if not in_class and pattern.startswith("[^\\S", index):
            index = _append_spaces_except(pattern, index, out)
            continue
        if char == "[" and not in_class:
            in_class = True
            out.append(char)
            index += 1
            for prefix in ("^]", "^", "]"):
                if pattern.startswith(prefix, index):
                    out.append(prefix)
                    index += len(prefix)
                    break
            continue
        if char == "]" and in_class:
            in_class = False
        out.append(char)
        index += 1
    inline = "".join(letter for flag, letter in ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"))
                     if flags & flag)
    body = "".join(out)
    return f"(?{inline}){body}" if inline else body


def _append_spaces_except(pattern: str, index: int, out: list[str]) -> int:
    """Translate ``[^\\S...]`` (whitespace except the listed characters) at ``pattern[index]``;
    returns the index after the class."""
    position, excluded = index + 4, set()
    while position < len(pattern) and pattern[position] != "]":
        if pattern[position] == "\\" and pattern[position + 1:position + 2] in _CLASS_ESCAPES:
            excluded.add(_CLASS_ESCAPES[pattern[position + 1]])
            position += 2
        elif pattern[position] == "\\":
            raise ValueError(f"unsupported escape in [^\\S...]: {pattern[:80]!r}")
        else:
            excluded.add(pattern[position])
            position += 1
    out.append(f"[{_class_items(_PYTHON_SPACES - excluded)}]")
    return position + 1


class Prefilter:
    """Which of many patterns (compiled by ``compile_linear``) can possibly match a text, from the
    literal words each requires.

    Built on RE2's ``FilteredRE2``: a pattern is skipped only when the text lacks a literal that
    every match of it must contain, so the prefilter never hides a match. Without RE2 every
    pattern is a candidate."""

    def __init__(self, patterns: Sequence[Matcher]) -> None:
        self._count = len(patterns)
        self._filter: Any = None
        if re2 is not None:
            self._filter = re2.Filter()
            for pattern in patterns:
                self._filter.Add(pattern.pattern, _options())
            self._filter.Compile()

    def candidates(self, text: str | bytes) -> Sequence[int]:
        """Indices (in insertion order) of the patterns that may match ``text``."""
        if self._filter is None:
            return range(self._count)
        return self._filter.Match(text, potential=True) or ()


def _options() -> Any:
    options = re2.Options()
    options.max_mem = 64 << 20
    options.log_errors = False
    return options
