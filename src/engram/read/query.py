"""Read path, step 1: understand the query: scope, filters, search terms, reference date, time range."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from engram.filters import And, Condition, FilterNode
from engram.models import Scope, TimeRange
from engram.read.timeparse import parse_time_range
from engram.terms import query_terms
from engram.timeutil import to_storage, utcnow

_HYPOTHETICAL = re.compile(r"\b(?:would|might|likely|could|probably)\b", re.IGNORECASE)
_WHEN = re.compile(r"^\W*(?:when|how\s+long)\b", re.IGNORECASE)
_PAST = re.compile(r"\b(?:did|was|were|had|used\s+to|before|previously|formerly|originally|earlier"
                   r"|back\s+(?:when|in|then)|ago|old|former|ex|last\s+(?:year|month|time)|first|until|prior)\b",
                   re.IGNORECASE)
#: A question that asks for several things: "both", "in common", "how many", "kinds of" (plural: "what kind of"
#: asks for one), a plural right after What/Which and before the auxiliary of the question ("What books has
#: she read?", "Which cities did he visit?"; "What motivates her?" is a verb), or the present perfect, which
#: gathers over time ("Where has she camped?", "What has he tried?"; not "has been", a state or a duration).
_SEVERAL = re.compile(
    r"\b(?:both|in\s+common|how\s+many|(?:kinds|types|sorts)\s+of)\b"
    r"|^\W*(?:what|which)\s+(?:\w+\s+){0,2}?\w+s\s+(?:do|does|did|has|have|had|are|were|can|could|will)\b"
    r"|\b(?:has|have)\s+\w+(?:\s+\w+)?\s+(?:ever\s+)?(?!been\b)\w+(?:ed|en|ne|wn|ght|ung|ade|ept|id)\b",
    re.IGNORECASE)
_BEFORE = re.compile(r"\b(?:before|previously|used\s+to|formerly|old|former|ex|prior|originally)\b", re.IGNORECASE)
_SPEECH_ACT = (r"(?:told|said|say|tell|mentioned?|recommended|recommend|suggested|suggest|gave|give|provided|provide"
               r"|listed|list|shared|share|explained|explain|described|describe|named|name|proposed|propose|wrote"
               r"|write|offered|offer|advised|advise|came\s+up\s+with|come\s+up\s+with|pointed\s+out|showed|show"
               r"|answered|answer|called|call|reminded|warned)")
#: Words of a question about what the assistant said that name the act of saying, not what was said: its
#: answer rarely repeats them, the user's request before it often does ("Can you recommend a book?").
SPEECH_ACT_WORDS = frozenset("""
told tell said say mentioned mention recommended recommend recommendation recommendations suggested suggest
suggestion suggestions gave give provided provide listed shared explained described proposed offered advised
advice reminded remind
""".split())
_ABOUT_ASSISTANT = re.compile(
    rf"\byou\s+(?:(?:just|already|once|also|previously|earlier)\s+)?(?:told|said|mentioned|recommended|suggested|gave|"
    rf"provided|listed|shared|explained|described|named|proposed|wrote|offered|advised|came\s+up\s+with"
    rf"|pointed\s+out|showed|answered|called|reminded|warned)\b"
    rf"|\b(?:did|had|have)\s+you\s+(?:(?:just|already|ever|once|previously)\s+)?{_SPEECH_ACT}\b"
    r"|\byour\s+(?:(?:previous|earlier|last|first|original)\s+)?(?:recommendations?|suggestions?|advice|answers?"
    r"|responses?|repl(?:y|ies)|lists?|explanations?)\b"
    r"|\bremind\s+me\s+(?:of\s+)?what\s+you\b",
    re.IGNORECASE)


@dataclass(frozen=True)
class SearchQuery:
    """A validated search request, ready for candidate generation."""

    text: str
    terms: tuple[str, ...]
    scope: Scope
    node: FilterNode | None
    limit: int
    reference_date: datetime | None
    threshold: float | None
    time_range: TimeRange | None = None
    form: str = "default"
    as_of: datetime | None = None
    tense: str = "present"

    @property
    def moment(self) -> datetime:
        """The instant the question is asked about: ``as_of``, else the reference date, else now."""
        return self.as_of or self.reference_date or utcnow()
    show_expired: bool = False
    include_archived: bool = False
    about_assistant: bool = False
    several: bool = False


def query_form(text: str) -> str:
    """The form of a question, for the ranker's router: ``when`` ("When did...", "How long..."),
    ``hypothetical`` ("Would she likely...": inference from what a person said), or ``default``."""
    if _WHEN.search(text):
        return "when"
    if _HYPOTHETICAL.search(text):
        return "hypothetical"
    return "default"


def asks_for_several(text: str) -> bool:
    """True when the question asks for several things, which are often told on different days: a list ("What
    books has she read?", "What kinds of..."), a count ("How many..."), a comparison ("What do they both like?")."""
    return bool(_SEVERAL.search(text.replace("’", "'")))


def query_tense(text: str) -> str:
    """``before`` when the question asks what preceded something ("Where did I live before Lisbon?", "my
    old number"), ``past`` when it asks how things were ("Where did I work in 2022?"), else ``present``
    (current facts are preferred over superseded ones)."""
    if _BEFORE.search(text):
        return "before"
    return "past" if _PAST.search(text) else "present"


def asks_about_assistant(text: str) -> bool:
    """True when the question asks what the assistant itself said ("What did you recommend for Lisbon?",
    "You told me about a book...", "your suggestion"): its statements are then what is asked for
    (``engram.read.roles``). Requests for new advice ("What would you recommend?") are not."""
    return bool(_ABOUT_ASSISTANT.search(text.replace("’", "'")))


def build_query(text: str, *, scope: Scope, node: FilterNode | None, limit: int, threshold: float | None,
                reference_date: datetime | None, as_of: datetime | None = None,
                show_expired: bool = False, include_archived: bool = False) -> SearchQuery:
    """A search request: its content terms, form and tense, whether it asks what the assistant said (then
    without the terms that name the act of saying, ``SPEECH_ACT_WORDS``), and the time range the text names,
    resolved against ``reference_date`` (or ``as_of``, or now). With ``as_of``, memories that began later are
    left out; ``show_expired`` keeps memories whose validity simply ended, ``include_archived`` archived ones."""
    if as_of is not None:
        cutoff = Condition("valid_from", "lte", to_storage(as_of))
        node = cutoff if node is None else And((node, cutoff))
    anchor = reference_date or as_of or utcnow()
    about_assistant = asks_about_assistant(text)
    terms = query_terms(text)
    if about_assistant:
        terms = tuple(term for term in terms if term not in SPEECH_ACT_WORDS) or terms
    return SearchQuery(text=text, terms=terms, scope=scope, node=node, limit=limit,
                       reference_date=reference_date, threshold=threshold,
                       time_range=parse_time_range(text, anchor), form=query_form(text), as_of=as_of,
                       tense=query_tense(text), show_expired=show_expired,
                       include_archived=include_archived, about_assistant=about_assistant,
                       several=asks_for_several(text))
