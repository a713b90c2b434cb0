"""Cheap, offline scoring of text for instruction-like or manipulative content.

The signals come from the pattern rules (``directive_rules``, ``content_rules``), hidden-text
checks (``hidden``), link checks (``links``) and a few structural checks here (tool-call shapes,
chat transcripts, a question echoed by its own answer, rare nonsense tokens, repeated phrases).
The score of a text is the noisy-OR of the weights of the signals it shows, ``1 - prod(1 - w)``:
one strong signal or two moderate ones pass the usual 0.5 quarantine threshold, a single weak one
("from now on", a link to an unfamiliar site, "never" at the start of a sentence) does not. Text
smuggled invisibly (Unicode tag characters, base64) is decoded and scanned with the same rules;
quoted examples ("users keep typing 'ignore previous instructions'") are not."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice

from engram.guard.content_rules import CONTENT_RULES
from engram.guard.directive_rules import DIRECTIVE_RULES
from engram.guard.engine import compile_linear
from engram.guard.hidden import hidden_payloads, hidden_text_signals, strip_invisible
from engram.guard.intent_rules import INTENT_RULES
from engram.guard.links import url_signals
from engram.guard.rules import RuleSet

RULES = RuleSet(DIRECTIVE_RULES + CONTENT_RULES + INTENT_RULES)
_QUESTION_ECHO_WEIGHT = 0.45
_PARTIAL_ECHO_WEIGHT = 0.3
_RARE_TOKEN_WEIGHTS = {2: 0.3, 3: 0.45}
_MAX_WEIGHT = 0.95
_WINDOW = 4000
_WINDOW_OVERLAP = 400
_STOPWORDS = frozenset(
    "a an the is are was were be been of to in on at for with and or my your our their his her its what who "
    "where when which how do does did i me we you it this that there s".split()
)
_REPEATED_PHRASE_MAX_WORDS = 80
# Linear in Python's engine too (a span ends at the next fence or backtick), and cheaper per match.
_CODE_SPANS = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)
_URLS = re.compile(r"\b(?:https?://|www\.)\S+|(?<!\S)[^\s@]+@\S+", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*", re.UNICODE)
_VOWELS = frozenset("aeiouy")
_TOOL_CALL = compile_linear(
    r"[{,]\s*[\"'](?:tool|tool_calls?|function(?:_call)?|action|name|command|cmd|api|endpoint)[\"']\s*:\s*[\"'{\[]"
    r"[^{}]{0,400}?[\"'](?:arguments|args|parameters|params|action_input|payload)[\"']\s*:",
    re.IGNORECASE | re.DOTALL,
)
_JSON_SCHEMA = compile_linear(r"[\"']properties[\"']\s*:|[\"']type[\"']\s*:\s*[\"']object[\"']", re.IGNORECASE)
# Python's engine for these two: linear as written (each match starts at its own line or keyword
# and no two repetitions compete for the same characters) and cheaper per match than RE2's binding.
_TRANSCRIPT_LABEL = re.compile(r"^[^\S\n]*(human|user|assistant|ai|system|bot)\s*:", re.IGNORECASE | re.MULTILINE)
_QUOTED_MENTION = re.compile(
    r"\b(?:typ\w*|say\w*|said|writ\w*|phrases?|like|such\s+as|called|words?|e\.g\.)\s*(?:[:,]\s*)?"
    r"([\"'“‘])([^\"'”’\n]{3,120})[\"'”’]",
    re.IGNORECASE,
)
_QUESTION_AND_ANSWER = re.compile(r"\s*([^?\n]{12,200}\?)\s*([^?\n]{8,300})")
_CALL_SYNTAX = compile_linear(
    r"\b(?:call|invoke|use)\s+(?:the\s+)?(?:tool|function)\s+`?\w+`?\s*\(|"
    r"\b(?:send_email|send_message|transfer_funds|transfer_money|wire_transfer|execute_command|run_shell|http_request|"
    r"write_file|delete_file|make_payment|update_memory|add_memory|update_contact|book_\w+)\s*\("
    r"|\b(?:exec|eval|os\.system|subprocess\.\w+|Invoke-Expression|iex)\s*\([^)]*(?:https?://|curl|wget|rm\s+-rf|nc\s|"
    r"DownloadString|WebClient)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Signals:
    """Matched signal names with their (trust-adjusted) weights, and their noisy-OR score."""

    weights: dict[str, float]

    @property
    def score(self) -> float:
        return combine(self.weights.values())

    @property
    def reasons(self) -> list[str]:
        """Signal names, strongest first."""
        return sorted(self.weights, key=lambda name: (-self.weights[name], name))


def combine(weights: Iterable[float]) -> float:
    """Noisy-OR of weights in [0, 1]: the chance at least one independent signal is right."""
    remaining = 1.0
    for weight in weights:
        remaining *= 1.0 - min(max(float(weight), 0.0), 1.0)
    return round(1.0 - remaining, 4)


def score_patterns(text: str, *, trust_factor: float = 1.0) -> Signals:
    """Score ``text`` for instruction-like or manipulative patterns.

    ``trust_factor`` (>= 1 for less trusted writers) scales every weight, capped at 0.95: the
    same imperative is more suspicious inside a tool output than in a user's own message."""
    weights: dict[str, float] = {}
    for name, weight in hidden_text_signals(text).items():
        _add(weights, name, weight)
    visible = unicodedata.normalize("NFKC", strip_invisible(text))
    for index, body in enumerate([mask_quoted_mentions(visible), *hidden_payloads(text)]):
        for window in _windows(body):
            for rule in RULES.firing(window):
                _add(weights, rule.name if index == 0 else f"encoded_{rule.name}", rule.weight)
    for name, weight in url_signals(visible).items():
        _add(weights, name, weight)
    for name, weight in structural_signals(visible).items():
        _add(weights, name, weight)
    if trust_factor != 1.0:
        weights = {name: min(_MAX_WEIGHT, weight * trust_factor) for name, weight in weights.items()}
    return Signals(weights)


def mask_quoted_mentions(text: str) -> str:
    """``text`` with quoted examples blanked out ("users keep typing 'ignore previous
    instructions'"), so that talking about an attack is not read as one."""
    def blank(match: re.Match[str]) -> str:
        return match.group(0)[: match.start(2) - match.start(0)] + " " * len(match.group(2)) + match.group(0)[-1]

    if not any(quote in text for quote in "\"'“‘"):
        return text
    return _QUOTED_MENTION.sub(blank, text)


def structural_signals(text: str) -> dict[str, float]:
    """Tool-call payloads, chat transcripts, a question echoed by its own answer, rare tokens."""
    signals: dict[str, float] = {}
    if _CALL_SYNTAX.search(text) or (_TOOL_CALL.search(text) and not _JSON_SCHEMA.search(text)):
        signals["tool_call"] = 0.6
    if len({label.lower() for label in _TRANSCRIPT_LABEL.findall(text)}) >= 2:
        signals["transcript_injection"] = 0.55
    if question_echo(text):
        signals["question_echo"] = _QUESTION_ECHO_WEIGHT
    elif partial_question_echo(text):
        signals["question_echo"] = _PARTIAL_ECHO_WEIGHT
    rare = rare_token_count(text)
    if rare >= 2:
        signals["rare_tokens"] = _RARE_TOKEN_WEIGHTS[min(rare, 3)]
    if repeated_phrase(text):
        signals["repeated_phrase"] = 0.4
    return signals


def question_echo(text: str) -> bool:
    """True when the text opens with a question and the next sentence repeats it as an answer.

    Poisoned passages for a target question (PoisonedRAG) embed the question so that they rank
    first for it, then assert the attacker's answer."""
    overlap = _echo_overlap(text)
    return overlap is not None and overlap[0] >= (0.6 if overlap[1] > 2 else 1.0)


def partial_question_echo(text: str) -> bool:
    """A weaker echo: the answer repeats at least 40% of the question's content words."""
    overlap = _echo_overlap(text)
    return overlap is not None and overlap[1] > 2 and overlap[0] >= 0.4


def repeated_phrase(text: str) -> bool:
    """True when a phrase of 2-4 words recurs three or more times in a short text (a trigger
    repeated to dominate retrieval)."""
    words = [match.group(0).lower() for match in islice(_WORD.finditer(text), _REPEATED_PHRASE_MAX_WORDS + 1)]
    if len(words) > _REPEATED_PHRASE_MAX_WORDS:
        return False
    for size in (2, 3, 4):
        grams = [tuple(words[i:i + size]) for i in range(len(words) - size + 1)]
        counts: dict[tuple[str, ...], int] = {}
        for gram in grams:
            if len(set(gram)) == size and all(len(word) > 1 for word in gram):
                counts[gram] = counts.get(gram, 0) + 1
        if counts and max(counts.values()) >= 3:
            return True
    return False


def _echo_overlap(text: str) -> tuple[float, int] | None:
    # Only the last 200 characters of leading whitespace can be part of a match (the question is
    # at most 200 characters long); skipping the rest keeps this linear on whitespace runs.
    leading = len(text) - len(text.lstrip())
    match = _QUESTION_AND_ANSWER.match(text, max(0, leading - 200))
    if not match:
        return None
    question, answer = _content_words(match.group(1)), _content_words(match.group(2))
    if len(question) < 2:
        return None
    return len(question & answer) / len(question), len(question)


def rare_token_count(text: str) -> int:
    """How many prose tokens look like no word of any language (rare-trigger backdoors)."""
    prose = _CODE_SPANS.sub(" ", text) if "`" in text else text
    if "@" in prose or "://" in prose or "www." in prose.lower():
        prose = _URLS.sub(" ", prose)
    return sum(count for token, count in Counter(_WORD.findall(prose)).items() if _is_rare_token(token))


def _windows(text: str) -> list[str]:
    """Overlapping slices of long texts: the rules see at most ``_WINDOW`` characters at a time,
    which bounds the work of each rule on each slice (and of the ``re`` fallback's backtracking)."""
    if len(text) <= _WINDOW:
        return [text]
    step = _WINDOW - _WINDOW_OVERLAP
    return [text[start:start + _WINDOW] for start in range(0, len(text) - _WINDOW_OVERLAP, step)]


def _add(weights: dict[str, float], name: str, weight: float) -> None:
    weights[name] = max(weights.get(name, 0.0), weight)


def _content_words(text: str) -> set[str]:
    return {word for word in (w.lower() for w in _WORD.findall(text)) if word not in _STOPWORDS and len(word) > 1}


@lru_cache(maxsize=16384)
def _is_rare_token(token: str) -> bool:
    if not 4 <= len(token) <= 14 or not token.isascii() or token.isdigit() or token.isupper():
        return False
    lower = token.lower()
    letters = [c for c in lower if c.isalpha()]
    if not letters or re.search(r"(.)\1\1", lower):
        return False
    digits = sum(c.isdigit() for c in lower)
    if digits:
        if not re.search(r"[a-z]\d+[a-z]", lower) or digits > len(letters):
            return False
        return not re.fullmatch(r"[a-z]{1,3}\d{1,4}[a-z]{0,2}|\d{1,4}[a-z]{1,3}|[a-z]+\d[a-z]?", lower)
    vowels = sum(c in _VOWELS for c in letters)
    if vowels == 0:
        return True
    longest_consonant_run = max(len(run) for run in re.findall(r"[^aeiouy]+", lower) or [""])
    return longest_consonant_run >= 5 or (len(letters) >= 6 and vowels / len(letters) < 0.15)
