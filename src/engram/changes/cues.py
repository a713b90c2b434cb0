"""Features of "does this newer turn replace that older one?", for the offline supersession model.

A pair is an older and a newer turn of the same speaker on the same topic (similar embeddings). Whether
the newer one replaces the older or merely adds to it is in how it is said: change words ("moved",
"switched", "now", "anymore", "instead"), or words of co-existence ("also", "another", "still"),
hedges ("might", "thinking about"), temporary states ("this week", "rental"), the past ("as a kid"),
or another subject ("my brother just moved to Rome"). ``pair_features`` measures these; the weights
that combine them (``engram.write.supersede.CHANGE_MODEL``) are fitted by ``engram bench fit-updates``
on the development scenarios and checked on the blind holdout."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from engram.changes.slots import Statement

_FLAGS = re.IGNORECASE
CHANGE = re.compile(r"\b(?:moved|relocated|switched|swapped|changed|replaced|traded|sold|quit|left|gave up|"
                    r"given up|dropped|retired|upgraded|promoted|started|starting|joined|new|finally|passed|"
                    r"went(?! (?:to|out|for|on|with|home|there|through|shopping|over|and)\b)|"
                    r"gone|bumped|engaged|married|proposed|broke up|split|divorced|rebranded|renamed|"
                    r"transferred|took|taken|got|bought|picked up|signed|hit|turned|became|become|since|"
                    r"from now on|official|officially|no more|ended|cancell?ed|pulled out|turns out|"
                    r"turned out|after all|dropped to|down to|up to|done with|settling into|settled into)\b", _FLAGS)
NOW = re.compile(r"\b(?:now|these days|currently|anymore|any more|no longer|instead|nowadays|at this point|"
                 r"not .{0,30}? anymore)\b", _FLAGS)
#: Words that add a thing to what there was ("I also adopted a cat"): co-existence, except for a count, which
#: they change ("How many cats do I have?"). "still" before a want or a lack ("still need lunch ideas", "still
#: no reply") continues that, not the older fact.
ADDITION = r"also|too|as well|another|(?:my|our|the) other|second|added|adding|both|in addition|besides|along with"
COEXIST = re.compile(rf"\b(?:{ADDITION}|still(?!\s+(?:need|needs|want|wants|looking|trying|waiting|no|not)\b)|"
                     r"same as (?:ever|always|before|usual)|same old|as ever|as usual|main thing|stick with|stays|kept|"
                     r"keeping|unchanged|(?:didn't|did not|hasn't|has not) change)\b",
                     _FLAGS)
_ADDS = re.compile(rf"\b(?:{ADDITION})\b", _FLAGS)
HEDGE = re.compile(r"\b(?:might|may|maybe|perhaps|would|could|should|thinking (?:about|of)|considering|"
                   r"been considering|plan(?:ning)? to|hope|hoping|want to|wanna|wish|someday|one day|if i|"
                   r"if we|i'd love|not happening|offered|turned (?:it )?down|keeps saying|thought i'd|thinks|"
                   r"people (?:at work )?think|rumou?r|not going anywhere|decided not|not ready)\b", _FLAGS)
TEMPORARY = re.compile(r"\b(?:this week|next week|for (?:a|one|two|three|the) (?:week|weeks|days|weekend|month)|"
                       r"this weekend|for now|temporar\w*|rental|in the shop|covering|staying at|visiting|"
                       r"visit|back from|trip|hotel|stopover|holiday|vacation|conference|client project|"
                       r"one-off|for a couple of|juice|cleanse|while they|until|tonight|"
                       r"this (?:mon|tues|wednes|thurs|fri|satur|sun)day)\b", _FLAGS)
PAST = re.compile(r"\b(?:as a (?:kid|child|teen|teenager)|growing up|when i was|back in (?:19|20)\d\d|"
                  r"used to|years ago|in (?:high school|college|uni)|for a summer|once upon)\b", _FLAGS)
#: The people (and teams) a statement can be about besides the speaker: "my sister", "our manager".
_KIN = (r"brother|sister|wife|husband|partner|mom|mum|mother|dad|father|son|daughter|cousin|friend|mate|colleague|"
        r"coworker|boss|manager|twin|uncle|aunt|niece|nephew|neighbou?r|roommate|flatmate|grandma|grandpa|parents|team")
THIRD_PARTY = re.compile(rf"^\W*(?:my|our|his|her)\s+(?:\w+\s+)?(?:{_KIN}|kid|buddy)\b|"
                         r"^\W*(?:people|the guys|everyone|my other|the \w+ team)\b", _FLAGS)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|me|my|mine|we|we're|we've|us|our)\b", _FLAGS)
RELATIVE = re.compile(rf"\b(?:my|our|his|her)\s+(?:\w+\s+)?(?:{_KIN}|kids?|children|boyfriend|girlfriend|"
                      r"fianc[ée]e?)\b", _FLAGS)

#: A relative followed by their name ("my sister Leila"): the relative's word and the name.
_RELATIVE_NAMED = re.compile(rf"\b(?:my|our|his|her)\s+(?:\w+\s+)?({_KIN}|kids?|boyfriend|girlfriend|fianc[ée]e?)\s+"
                             r"((?-i:[A-Z])[\w'’]+)", _FLAGS)

FEATURES = ("similarity", "change", "now", "coexist", "hedge", "temporary", "past", "other_subject",
            "slot_conflict", "slot_same", "closest", "question")


@lru_cache(maxsize=8192)
def _count(pattern: re.Pattern[str], text: str, cap: int = 2) -> float:
    return float(min(cap, len(pattern.findall(text))))


@lru_cache(maxsize=4096)
def _third_party(text: str, after_third_party: bool = False) -> bool:
    """The text is mainly about someone else: it opens with "my brother ...", "our team ..." or a name, or, told
    after a turn about someone else (``after_third_party``), with "he", "she" or "they", who are that person:
    the speaker is "I"."""
    first = re.split(r"[.!?;]", text.strip(), maxsplit=1)[0]
    if THIRD_PARTY.search(first) or (after_third_party and _PRONOUN.search(first)):
        return True
    words = _WORD.findall(first)
    return bool(words) and words[0][:1].isupper() and words[0].lower() not in _FIRST_WORDS and len(words) > 2 \
        and words[1].lower() in ("is", "was", "has", "had", "just", "got", "and", "moved", "started", "went",
                                 "finally", "took", "bought", "lives", "works")


_PRONOUN = re.compile(r"^\W*(?:he|she|they|he's|she's|they're|he'd|she'd|they've)\b", _FLAGS)


_FIRST_WORDS = frozenset("""i i'm im we we're my our so ok okay yes yeah no well hey hi big small new quick
just finally turns turned got moved started picked switched sold traded passed back had gave since the a an
update ugh oh ha funny weird good great""".split())


def pair_features(older: str, newer: str, similarity: float, older_statements: list[Statement],
                  newer_statements: list[Statement], closest: bool) -> dict[str, float]:
    """The features of (older turn, newer turn of the same speaker) named in ``FEATURES``."""
    slots_old = {s.slot: s.value for s in older_statements}
    shared = [s for s in newer_statements if s.slot in slots_old]
    return {
        "similarity": similarity,
        "change": _count(CHANGE, newer),
        "now": _count(NOW, _without_qualified(NOW, newer, _ADDS)),
        "coexist": _count(COEXIST, _without_qualified(COEXIST, newer, _NEGATION)),
        "hedge": _count(HEDGE, _statements_only(newer)),
        "temporary": _count(TEMPORARY, _without_qualified(_DATED, _without_qualified(TEMPORARY, newer, _SIMILE),
                                                          _STARTS)),
        "past": _count(PAST, newer),
        "other_subject": float(_third_party(newer, _third_party(older)) != _third_party(older)),
        "slot_conflict": float(any(slots_old[s.slot] != s.value for s in shared)),
        "slot_same": float(any(slots_old[s.slot] == s.value for s in shared)),
        "closest": float(closest),
        "question": float(asks_only(newer)),
    }


_ASKING_OPENER = re.compile(r"^\W*(?:can|could|would|will|do|does|did|is|are|was|were|have|has|should|shall|may|"
                            r"what|what's|whats|which|who|whom|whose|where|when|why|how|any)\b", _FLAGS)
_NEGATION = re.compile(r"\b(?:not|no|never|don't|dont|doesn't|didn't|won't|wont|wouldn't|couldn't|isn't|aren't|"
                       r"wasn't|weren't|haven't|hasn't|can't|cannot)\s+(?:\w+\s+){0,2}$", _FLAGS)
_SIMILE = re.compile(r"\b(?:like|as if|as though)\s+(?:an?\s+|the\s+)?$", _FLAGS)
_STARTS = re.compile(r"\b(?:start|starts|starting|begin|begins|beginning|first)\b", _FLAGS)
#: A date a few days off ("next week", "tonight"), which a temporary stay or a one-off has ("in Paris next week",
#: "yoga's cancelled tonight") and so has the start of a lasting state ("I start a PhD next week", "first
#: valentine's with Hannah tonight").
_DATED = re.compile(r"\b(?:(?:this|next) (?:week|weekend)|tonight|this (?:mon|tues|wednes|thurs|fri|satur|sun)day)\b",
                    _FLAGS)


@lru_cache(maxsize=4096)
def _without_qualified(pattern: re.Pattern[str], text: str, before: re.Pattern[str]) -> str:
    """``text`` without the matches of ``pattern`` whose clause, up to the match, ``before`` finds: a negation
    at most three words before (``_NEGATION``: "not buying another one" says there is no other one; "not going
    anywhere, still on cardiology" still says "still"), a comparison (``_SIMILE``: "feels like a holiday" is no
    holiday), a start (``_STARTS``: "I start a PhD next week", "first valentine's with Hannah tonight" date the
    start of a lasting state, they do not bound one) or an addition (``_ADDS``: "I run on weekends as well now"
    is a new thing, not a new state)."""
    kept, start = [], 0
    for match in pattern.finditer(text):
        clause = max(text.rfind(mark, 0, match.start()) for mark in ".!?;,\n") + 1
        if before.search(text[clause:match.start()]):
            kept.append(text[start:match.start()])
            start = match.end()
    return "".join(kept) + text[start:]


@lru_cache(maxsize=4096)
def _statements_only(text: str) -> str:
    """``text`` without the sentences that open as questions: a hedge in a question asks for advice ("what
    should we not miss?", "should I be worried?"), it does not doubt what the turn tells ("thinking maybe
    someday I'd do an MBA?" does)."""
    return " ".join(sentence for sentence in _SENTENCE.findall(text) if not _ASKING_OPENER.search(sentence.strip()))


def additions(text: str) -> float:
    """How many words (at most 2) add a thing to what there was ("we adopted a second beagle"), less the denied
    ones ("not buying another one")."""
    return _count(_ADDS, _without_qualified(_ADDS, text, _NEGATION))


def in_first_person(text: str) -> bool:
    """The text speaks of its speaker ("What do I drink in the morning?", "Where's my passport?")."""
    return bool(_FIRST_PERSON.search(text))


def asks_only(text: str) -> bool:
    """The turn only asks (every sentence a question, nothing said of the speaker: "Best car games for long
    drives with kids?"): it states no fact, so it neither replaces nor is replaced."""
    return only_questions(text) and not _FIRST_PERSON.search(text)


def only_questions(text: str) -> bool:
    """Every sentence of the turn is a question ("How do I cook a steak medium-rare?"): a request to the
    assistant, which rarely states a new fact of the speaker's."""
    sentences = [sentence.strip() for sentence in _SENTENCE.findall(text) if sentence.strip(" .!?")]
    return bool(sentences) and all(sentence.endswith("?") for sentence in sentences)


def is_request(text: str) -> bool:
    """Every sentence opens as a question, with or without its question mark ("Can you check my booking?",
    "how do i transfer a car title"): the turn asks and tells nothing ("My cat is 16 and drinking a lot, should
    I worry?" tells something)."""
    sentences = [sentence.strip() for sentence in _SENTENCE.findall(text) if sentence.strip(" .!?")]
    return bool(sentences) and all(_ASKING_OPENER.search(sentence) for sentence in sentences)


_DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
#: Days and months: capitalised words that name no one ("What do I do on Wednesday nights?").
CALENDAR = frozenset([*_DAYS, *"""january february march april may june july august september october november
december""".split()])
_CALENDAR = CALENDAR | {f"{day}s" for day in _DAYS}
_POSSESSIVES = frozenset({"my", "our", "his", "her", "the"})


def _name_form(word: str) -> str:
    """``word`` without the punctuation around it and a possessive "'s"."""
    return word.strip("?!.,;:'’\"").removesuffix("'s").removesuffix("’s")


def _names(text: str) -> list[str]:
    """The capitalised words of ``text`` after its first that may name a person (not "I", a day or a month)."""
    words = [_name_form(word) for word in text.split()[1:]]
    return [word.lower() for word in words if word[:1].isupper() and word not in ("I", "I'm", "I've", "I'd")
            and word.lower() not in _CALENDAR]


def names_someone_else(text: str) -> bool:
    """A question names someone other than the speaker ("Where does my sister live?", "What does Omar do?")."""
    return bool(RELATIVE.search(text) or _names(text))


def asks_of_named_person(question: str) -> bool:
    """The question names someone and asks something of them ("Where does Jo work?"), not who someone is ("Who
    is my flatmate?", "Who walked Bramble before Priti?": there the answer is a name)."""
    return bool(_names(question)) and not _WHO.search(question)


_WHO = re.compile(r"\bwho(?:m|se)?\b", _FLAGS)


def people_asked_about(question: str) -> set[str]:
    """The relatives and names a question asks about ("Who is my girlfriend?": {"girlfriend"})."""
    relatives = {match.group(0).lower().split()[-1] for match in RELATIVE.finditer(question)}
    return relatives | set(_names(question))


def news_of_someone_not_asked(asked: set[str], text: str, named_in: Sequence[str] = ()) -> bool:
    """The text opens with another person than those a question asks about: a relative ("My mate Jack just got
    engaged" for "Who is my girlfriend?") or, given ``named_in`` (the texts around it, which use it as a name),
    a name ("Mia quit nursing!!" for "Where does Jo work?" after "Jo's at St Thomas' and Mia's at King's"). A
    name given to a relative asked about ("my sister Leila") is that relative. Pass ``named_in`` only for a
    question that names the person and asks something of them, not who someone is ("Who is my flatmate?",
    "Who walked Bramble before Priti?": the answer is a name)."""
    first = re.split(r"[.!?;]", text.strip(), maxsplit=1)[0]
    opener = THIRD_PARTY.search(first)
    named = set(opener.group(0).lower().split()) - _POSSESSIVES if opener else set()
    if not named and first[:1].isupper():
        word = _name_form(first.split()[0]).lower()
        names = {name for other in named_in for name in _names(other)}
        named = {word} if word in names and word not in _FIRST_WORDS else set()
    aliases = {match.group(2).lower() for other in named_in for match in _RELATIVE_NAMED.finditer(other)
               if match.group(1).lower() in asked}
    return bool(named) and not named & (asked | aliases)


def other_person_than_asked(asks_about_someone_else: bool, newer: str) -> bool:
    """The question and the newer turn are about different people: one about the speaker, the other mainly
    about someone else (``names_someone_else`` of the question; "he"/"she" opening the turn is the one asked
    about)."""
    return asks_about_someone_else != _third_party(newer, asks_about_someone_else)


def opens_about_someone_else(text: str) -> bool:
    """The text opens with another person ("My colleague Ben bought...", "my parents just moved..."): news
    about them, which never replaces what the speaker said of themself."""
    return bool(THIRD_PARTY.search(re.split(r"[.!?;]", text.strip(), maxsplit=1)[0]))
