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

import re
from dataclasses import dataclass

_FLAGS = re.IGNORECASE | re.MULTILINE
_NEGATION = re.compile(r"\b(?:never|not|don't|dont|do\s+not|no\s+one\s+should|nobody\s+should|won't|shouldn't|"
                       r"must\s+not|mustn't|cannot|can't|avoid)\b(?:\s+\w+){0,3}\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class PatternRule:
    """A named signal: ``regex`` matching the text contributes ``weight`` to the score."""

    name: str
    weight: float
    regex: re.Pattern[str]
    negatable: bool = False
    unless: re.Pattern[str] | None = None

    def matches(self, text: str) -> bool:
        """True when the rule fires on ``text``: negatable rules not right after a negation, rules
        with ``unless`` not when that pattern occurs in the same sentence."""
        for match in self.regex.finditer(text):
            if self.negatable and _NEGATION.search(text[max(0, match.start() - 40):match.start()]):
                continue
            if self.unless is not None and self.unless.search(_sentence_around(text, match.start(), match.end())):
                continue
            return True
        return False


def _sentence_around(text: str, start: int, end: int) -> str:
    left = max(text.rfind(mark, 0, start) for mark in ".!?\n")
    rights = [position for position in (text.find(mark, end) for mark in ".!?\n") if position != -1]
    return text[left + 1:min(rights) if rights else len(text)]


def rule(name: str, weight: float, pattern: str, *, negatable: bool = False, unless: str | None = None) -> PatternRule:
    """A case-insensitive, multi-line ``PatternRule``."""
    return PatternRule(name, weight, re.compile(pattern, _FLAGS), negatable,
                       re.compile(unless, _FLAGS) if unless else None)


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
