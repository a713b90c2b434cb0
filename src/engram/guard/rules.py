"""The building blocks of the guard's pattern rules: ``PatternRule`` and shared vocabulary.

A rule is a named regular expression with a weight. Weights: >= 0.6 quarantines alone (at the
default threshold 0.5), 0.3-0.5 needs a second signal, <= 0.25 is supporting context only. Several
rules may share a name (one reason per family); a text gets the highest weight among the matching
rules of a name. ``negatable`` rules do not fire right after a negation ("never", "don't", "no one
should"), so advice such as "never share your password" is not read as a request for it; rules
with ``unless`` do not fire when that pattern occurs in the same sentence.

The rules themselves live in ``directive_rules`` (instructions aimed at the assistant) and
``content_rules`` (payloads: commands, credentials, redirections, fabricated precedents)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from engram.guard.engine import Matcher, Prefilter, compile_linear, spans, subject

_FLAGS = re.IGNORECASE | re.MULTILINE
_NEGATION = re.compile(r"\b(?:never|not|don't|dont|do\s+not|no\s+one\s+should|nobody\s+should|won't|shouldn't|"
                       r"must\s+not|mustn't|cannot|can't|avoid)\b(?:\s+\w+){0,3}\s*$", re.IGNORECASE)
#: How far before a match a negation is looked for (characters).
NEGATION_REACH = 40
_SENTENCE_MARKS = re.compile(r"[.!?\n]")


@dataclass(frozen=True)
class PatternRule:
    """A named signal: ``regex`` matching the text contributes ``weight`` to the score.

    ``excluded_start`` and ``excluded_next`` (Python patterns, matched at the start of a match
    and right after its end) discard a match, as a look-around would, except that the search
    resumes after the discarded match rather than one character into it (the main pattern runs on
    the linear-time engine, which has no look-around; resuming after it keeps one pass)."""

    name: str
    weight: float
    regex: Matcher
    negatable: bool = False
    unless: Matcher | None = None
    excluded_start: re.Pattern[str] | None = None
    excluded_next: re.Pattern[str] | None = None

    def matches(self, text: str, searchable: str | bytes | None = None) -> bool:
        """True when the rule fires on ``text``: negatable rules not right after a negation, rules
        with ``unless`` not when that pattern occurs in the same sentence. ``searchable`` is
        ``subject(text)`` when the caller already has it."""
        sentences: _Sentences | None = None
        for start, end in self._spans(text, subject(text) if searchable is None else searchable):
            if self.negatable and _NEGATION.search(text[max(0, start - NEGATION_REACH):start]):
                continue
            if self.unless is not None:
                sentences = sentences or _Sentences(text)
                if sentences.contains(self.unless, start, end):
                    continue
            return True
        return False

    def _spans(self, text: str, searchable: str | bytes) -> Iterator[tuple[int, int]]:
        """Match spans left to right, without those an exclusion discards (the search resumes
        after a discarded match, so one pass over the text suffices)."""
        for start, end in spans(self.regex, searchable):
            if not self._excluded(text, start, end):
                yield start, end

    def _excluded(self, text: str, start: int, end: int) -> bool:
        return bool((self.excluded_start is not None and self.excluded_start.match(text, start))
                    or (self.excluded_next is not None and self.excluded_next.match(text, end)))


class _Sentences:
    """The sentences of a text (split at ``. ! ? newline``), each checked against a pattern once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.marks = [match.start() for match in _SENTENCE_MARKS.finditer(text)]
        self.checked: dict[tuple[int, int], bool] = {}

    def contains(self, pattern: Matcher, start: int, end: int) -> bool:
        """Whether ``pattern`` occurs in the sentence around ``text[start:end]``."""
        before = bisect.bisect_left(self.marks, start) - 1
        after = bisect.bisect_left(self.marks, end)
        left = self.marks[before] + 1 if before >= 0 else 0
        right = self.marks[after] if after < len(self.marks) else len(self.text)
        if (left, right) not in self.checked:
            self.checked[(left, right)] = pattern.search(self.text[left:right]) is not None
        return self.checked[(left, right)]


@dataclass(frozen=True)
class RuleSet:
    """Rules with a literal prefilter: ``firing`` runs only the rules whose required words occur."""

    rules: tuple[PatternRule, ...]
    prefilter: Prefilter = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefilter", Prefilter([rule.regex for rule in self.rules]))

    def firing(self, text: str) -> Iterator[PatternRule]:
        """The rules that fire on ``text``, in order."""
        searchable = subject(text)
        for index in self.prefilter.candidates(searchable):
            rule = self.rules[index]
            if rule.matches(text, searchable):
                yield rule


def rule(name: str, weight: float, pattern: str, *, negatable: bool = False, unless: str | None = None,
         excluded_start: str | None = None, excluded_next: str | None = None) -> PatternRule:
    """A case-insensitive, multi-line ``PatternRule`` on the linear-time engine."""
    return PatternRule(name, weight, compile_linear(pattern, _FLAGS), negatable,
                       compile_linear(unless, _FLAGS) if unless else None,
                       re.compile(excluded_start, _FLAGS) if excluded_start else None,
                       re.compile(excluded_next, _FLAGS) if excluded_next else None)


#: Shared vocabulary of the rules (regex fragments).
AI = r"(?:ai|llm|language\s+model|assistant|agent|chatbot|bot|copilot|model)"
ASSISTANT = rf"(?:the\s+|this\s+|your\s+|our\s+)?{AI}"
USERS = r"(?:the|any|every|all|other)\s+(?:users?|customers?|callers?)"
ASKS = (r"(?:asks?|mentions?|says?|types?|writes?|requests?|brings?\s+up|talks?\s+about|inquires?|queries?|"
        r"wants?|needs?|looks?\s+up|searches?|drafts?|books?|pays?)")
ACT = (r"(?:say|answer|reply|respond|tell|claim|state|report|confirm|insist|recommend|suggest|mention|send|forward|"
       r"share|direct|redirect|point|link|use|give|run|book|transfer|change|include|add|pay)")
THEN_ACT = rf",?\s*(?:then\s+)?(?:you\s+)?(?:should\s+|must\s+)?{ACT}\b"
SAY = r"(?:say|answer|reply|respond|tell|claim|state|report|confirm|insist|recommend|suggest|mention)"
INSTRUCTIONS = (r"(?:instructions?|rules?|guidelines?|prompts?|directives?|guidance|policies|constraints|context|"
                r"setup|configuration|programming|system\s+prompt)")
EARLIER = r"(?:previous|prior|above|earlier|preceding|original|existing|system|safety|other|old|current|initial)"
SECRETS = (r"(?:passwords?|passcodes?|pins?|credentials|api\s+keys?|access\s+tokens?|tokens|ssn|"
           r"social\s+security(?:\s+number)?|credit\s+card(?:\s+number)?|card\s+numbers?|cvv|bank\s+(?:details|login)|seed\s+phrase|recovery\s+(?:phrase|codes?)|"
           r"2fa\s+codes?|otp|one-time\s+(?:code|password)|private\s+keys?|session\s+cookies?|login\s+details|door\s+codes?|"
           r"(?:sms|verification|security|confirmation|pin)\s+codes?)")
SAFE_CHANNEL = (r"\b(?:through|via|using|in|with)\s+(?:the\s+|a\s+|our\s+|your\s+)?(?:company\s+)?"
                r"(?:password\s+manager|1password|bitwarden|lastpass|keepass|vault|keychain|secrets?\s+manager)\b")
