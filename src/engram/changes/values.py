"""What kind of value a question asks for, and whether a newer turn gives it a new one.

A change is often told without any change word: "landlord renewed the lease at 1650" after "rent is 1400",
"we're going with Nora" after "the baby's name is Ella", "first valentine's with Hannah" after "my girlfriend
Chloe". What tells it is the value: the question asks for a number, a name or a time, both turns state one,
and the newer one states a value the older did not. ``new_value`` measures that for the read model of
read-time supersession (``engram.read.replaced``), where the question says which value matters. Places are
left out: a newer turn of the same speaker names places for many reasons ("running along the river in Belém"
after "I just moved to Lisbon").

A question that counts ("How many dogs do I have?") reads co-existence words the other way round
(``counts``): "we adopted a second beagle" or "the other two" says the count changed; so do the words of a
member joining or leaving the group counted (``membership_changes``: "baby Theo arrived", "Pepper passed away",
"we hired two more"), whoever the turn opens with ("Our daughter had a baby girl" for "How many grandchildren
do I have?").

A cue qualifies its own clause and what follows it in the sentence, not what came before: in "Landlord put it
up to £1,080 from October, so the budget needs another look", "another" says nothing of the new rent."""

from __future__ import annotations

import re
from functools import lru_cache

from engram.changes.cues import CALENDAR, RELATIVE, qualified

_FLAGS = re.IGNORECASE
_COUNT = re.compile(r"\bhow\s+many\b", _FLAGS)
_COUNTED = re.compile(r"\bhow\s+many\s+([^\W\d_]+)", _FLAGS)
#: Nouns of people, which count whoever the question counts ("six staff", "three kids", "seven people").
_PEOPLE = frozenset("people persons staff members employees kids children folks adults".split())
_ASKS_NUMBER = re.compile(r"\bhow\s+(?:much|many|old|often|far)\b|\b(?:number|weight|weigh|salary|rent|price|cost|"
                          r"age|budget|score)\b", _FLAGS)
_ASKS_NAME = re.compile(r"\bwho(?:m|se)?\b|\bnam(?:e|es|ed|ing)\b|\bcall(?:ed)?\b", _FLAGS)
_ASKS_TIME = re.compile(r"^\W*when\b|\bwhat\s+(?:time|day|date)\b|\bwhich\s+(?:days?|date)\b", _FLAGS)
_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve", "- - second third "
                 "fourth fifth sixth seventh eighth ninth tenth eleventh twelfth")
#: A number word, or an ordinal from "second" ("a second beagle" makes two; "my first car" counts nothing), as its
#: digits.
_AS_DIGITS = {word: str(value) for words in _NUMBER_WORDS for value, word in enumerate(words.split()) if word != "-"}
_AS_DIGITS["none"] = "0"
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?|\b(?:" + "|".join(_AS_DIGITS) + r")\b", _FLAGS)
_TIME = re.compile(r"\b(?:mon|tues|wednes|thurs|fri|satur|sun)days?\b|\b(?:january|february|march|april|june|july|"
                   r"august|september|october|november|december)\b|\b\d{1,2}(?::\d{2})?\s*(?:am|pm)\b|"
                   r"\b\d{1,2}(?:st|nd|rd|th)\b|\b(?:mornings?|evenings?|nights?|weekends?)\b", _FLAGS)
#: Clauses: the parts of a sentence joined by "so", "but", "and", "because" ("my husband's cousin named her
#: daughter Ella, so we're going with Nora").
_CLAUSE = re.compile(r"[;,]+|\s(?:so|but|and|because)\s", _FLAGS)
_SENTENCES = re.compile(r"[.!?\n]+")
#: A member joining or leaving a group: for a question that counts, a change of the count.
_MEMBERSHIP = re.compile(r"\b(?:born|arrived|adopted|welcomed|hired|onboarded|recruited|joined|passed away|died|"
                         r"lost|put down|rehomed|moved out|moved in|more|fewer|had a (?:baby|son|daughter|boy|girl)|"
                         r"gave birth)\b", _FLAGS)
#: A name as a possessive ("Lucía's").
_POSSESSIVE_NAME = re.compile(r"\b[A-Z]\w*['’]s\b")
_SENTENCE_START = re.compile(r"(?:^|[.!?\n]\s*)\W*$")
#: Capitalised words that name no one: the speaker, days and months.
_NOT_NAMES = frozenset({"i", "i'm", "i've", "i'd", "i'll"}) | CALENDAR


def asked_value(question: str) -> str | None:
    """The kind of value ``question`` asks for: ``time`` ("When is my wedding?"), ``number`` ("How much is my
    rent?", "What's my number?"), ``name`` ("Who am I dating?", "What are we naming the baby?"), or None."""
    if _ASKS_TIME.search(question):
        return "time"
    if _ASKS_NUMBER.search(question):
        return "number"
    return "name" if _ASKS_NAME.search(question) else None


def counts(question: str) -> bool:
    """The question asks for a count ("How many cats do I have?")."""
    return bool(_COUNT.search(question))


def membership_changes(text: str) -> float:
    """How many words (at most 2) tell of a member joining or leaving a group ("Pepper passed away", "we
    onboarded two more")."""
    return float(min(2, len(_MEMBERSHIP.findall(text))))


@lru_cache(maxsize=4096)
def values(text: str, kind: str) -> frozenset[str]:
    """The values of ``kind`` (see ``asked_value``) that ``text`` states, normalised (number words as digits)."""
    if kind == "number":
        return frozenset(_AS_DIGITS.get(found.lower(), found.replace(",", "")) for found in _NUMBER.findall(text))
    if kind == "time":
        return frozenset(found.lower().rstrip("s") for found in _TIME.findall(text))
    return frozenset(match.group(0).lower() for match in re.finditer(r"[A-Z][\w'’]*", text)
                     if match.group(0).lower() not in _NOT_NAMES
                     and not _SENTENCE_START.search(text[:match.start()]))


def new_value(question: str, older: str, newer: str) -> bool:
    """Both turns state a value of the kind ``question`` asks for, and the newer one states one the older did
    not, in a clause that names no one else (in "save my friend Lucía's number: 699 876 543" the number is
    Lucía's) and that no cue of co-existence, hedge, temporary state or the past qualifies, in it or earlier
    in its sentence (``engram.changes.cues.qualified``; for a count, words of addition are no such cue): it
    gives the same slot another value."""
    kind = asked_value(question)
    if kind is None:
        return False
    before = values(older, kind)
    if not before:
        return False
    counting = counts(question)
    counted = _COUNTED.search(question)
    for sentence in _SENTENCES.split(newer):
        for clause in _CLAUSE.split(sentence):
            if qualified(clause, counting=counting):
                break
            found = _counts_of(clause, counted.group(1)) if counted else values(clause, kind)
            if found - before and not (RELATIVE.search(clause) or _POSSESSIVE_NAME.search(clause)):
                return True
    return False


def _counts_of(clause: str, counted: str) -> frozenset[str]:
    """The numbers of ``clause`` that may count ``counted`` (the noun after "how many"): not those followed by
    another plural noun, which they count ("the chickens laid six eggs" for "How many chickens?"), unless it
    names people ("we're six staff now")."""
    found = set()
    for match in _NUMBER.finditer(clause):
        following = re.match(r"\s+([^\W\d_]+)", clause[match.end():])
        word = following.group(1).lower() if following else ""
        if word.endswith("s") and word[:4] != counted.lower()[:4] and word not in _PEOPLE:
            continue
        found.add(_AS_DIGITS.get(match.group(0).lower(), match.group(0).replace(",", "")))
    return frozenset(found)
