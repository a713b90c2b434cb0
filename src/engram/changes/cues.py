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
from collections.abc import Collection, Sequence
from functools import lru_cache

from engram.changes.grammar import ACCUSTOMED
from engram.changes.slots import Statement

_FLAGS = re.IGNORECASE
#: Heads of a role ("made me art director", "made us team leads"): "make" with an object and a role is becoming it.
_ROLE = (r"lead|leads|director|manager|head|partner|captain|chair|president|supervisor|editor|chief|principal|"
         r"coordinator|officer|foreman|senior|associate|vp")
CHANGE = re.compile(r"\b(?:moved|relocated|switched|swapped|changed|replaced|traded|sold|quit|left|gave up|"
                    r"given up|dropped|retired|upgraded|promoted|started|starting|joined|new|finally|passed|"
                    r"went(?! (?:to|out|for|on|with|home|there|through|shopping|over|and)\b)|"
                    r"gone|bumped|engaged|married|proposed|broke up|split|divorced|rebranded|renamed|"
                    r"transferred|took|taken|got|bought|picked up|signed|hit|turned|became|become|since|"
                    r"from now on|official|officially|no more|ended|cancell?ed|pulled out|turns out|"
                    r"turned out|after all|dropped to|down to|up to|done with|settling into|settled into|appointed|"
                    r"accepted|"
                    rf"elected|made (?:me|us) (?:an? |the )?(?:\w+ )?(?:{_ROLE})|first (?:full )?(?:day|week|month|"
                    r"shift|term|semester)s? (?:as|at|in)|(?:the|our|my) (?:move|switch|swap|transition|relocation|"
                    r"changeover)|change of (?:plans?|heart|scenery))\b", _FLAGS)
NOW = re.compile(r"\b(?:now(?! and (?:then|again))|these days|currently|anymore|any more|no longer|instead|nowadays|"
                 r"at this point|not .{0,30}? anymore)\b", _FLAGS)
#: Words that add a thing to what there was ("I also adopted a cat"): co-existence, except for a count, which
#: they change ("How many cats do I have?"). "too" before an adjective or adverb is a degree ("too hectic", "too
#: much"), not an addition; it adds before a boundary, a conjunction, a verb or a preposition ("I got a cat too.",
#: "fans who love it too was"). "still" before a want or a lack ("still need lunch ideas", "still
#: no reply") continues that, and before a verb of adapting ("still unpacking", "still getting used to the
#: hills") it continues settling into a new state: neither is the older fact going on. "another" before a span of
#: time or an event ("renewed the lease for another year", "the budget needs another look") extends or repeats,
#: it adds no thing.
ADDITION = (r"also|too(?=\s*(?:[.,!?;:)]|$)|\s+(?:and|but|so|or|as|is|was|are|were|be|has|have|had|do|does|did|now|"
            r"i|we|you|he|she|they|it|for|in|on|at|with|because|since|when|lol|haha)\b)|as well|"
            r"another(?!\s+(?:year|month|week|day|night|hour|term|season|"
            r"round|look|go|try|shot|chance|time)s?\b)|(?:my|our|the) other|second|added|adding|both|"
            r"in addition|besides|along with")
COEXIST = re.compile(rf"\b(?:{ADDITION}|still(?!\s+(?:need|needs|want|wants|looking|trying|waiting|no|not|unpacking|"
                     r"settling|adjusting|getting used|getting settled)\b)|"
                     r"same as (?:ever|always|before|usual)|same old|as ever|as usual|main thing|stick with|stays|kept|"
                     r"keeping|unchanged|(?:didn't|did not|hasn't|has not) change)\b",
                     _FLAGS)
_ADDS = re.compile(rf"\b(?:{ADDITION})\b", _FLAGS)
HEDGE = re.compile(r"\b(?:might|may|maybe|perhaps|would|could|should|thinking (?:about|of)|considering|"
                   r"been considering|plan(?:ning)? to|hope|hoping|want to|wanna|wish|someday|one day|if i|"
                   r"if we|i'd love|not happening|offered|turned (?:it )?down|keeps saying|thought i'd|thinks|"
                   r"people (?:at work )?think|rumou?r|not going anywhere|decided not|not ready|would have|'d have|"
                   r"’d have|"
                   r"^\W*had (?:i|we|you|they|he|she)|if(?:\s+\w+){1,3}\s+(?:were|had))\b", _FLAGS)
TEMPORARY = re.compile(r"\b(?:this week|next week|for (?:a|one|two|three|the) (?:week|weeks|days|weekend|month)"
                       r"(?=\s*(?:[.,!?;:)]|$|\s(?:and|but|so|or|with|in|at|to|while|because|then)\b))|"
                       r"this weekend|for now|temporar\w*|rental|in the shop|covering|staying at|visiting|"
                       r"visit|back from|trip|hotel|stopover|holiday|vacation|conference|client project|"
                       r"one-off|for a couple of|juice|cleanse|while they|until|tonight|"
                       r"this (?:mon|tues|wednes|thurs|fri|satur|sun)day|sometimes|occasionally|once in a while|"
                       r"now and (?:then|again)|from time to time|every so often)\b", _FLAGS)
#: The past: "used to" of a habit, not of being accustomed ("getting used to the hills"), decades ("back in the 80s").
PAST = re.compile(r"\b(?:as a (?:kid|child|teen|teenager)|growing up|when i was|back in (?:19|20)\d\d|"
                  rf"{ACCUSTOMED}used to|years ago|in (?:high school|college|uni)|for a summer|once upon|"
                  r"(?:back )?in the (?:'|’)?(?:19|20)?\d0s|(?:back )?in the (?:fifties|sixties|seventies|eighties|"
                  r"nineties)|back in the day)\b", _FLAGS)
#: The people (and teams) a statement can be about besides the speaker: "my sister", "our manager".
_KIN = (r"brother|sister|wife|husband|partner|mom|mum|mother|dad|father|son|daughter|cousin|friend|mate|colleague|"
        r"coworker|boss|manager|twin|uncle|aunt|niece|nephew|neighbou?r|roommate|flatmate|grandma|grandpa|parent|"
        r"grandparent|grandmother|grandfather|in-law|family|team")
#: What may open a sentence before its subject: a lead-in ending in a colon ("Digging through old photos: my
#: family moved ...") or a phrase that reports the clause after it ("Turns out my grandparents moved ...",
#: "Apparently my cousin ...").
_LEAD_IN = (r"^\W*(?:[^:.!?]{1,40}:\s*)?(?:(?:it\s+)?turns out|turned out|apparently|guess what|fun fact|"
            r"(?:i\s+)?found out|(?:i\s+)?heard|so|oh|anyway|update)?(?:\s+that)?[\s,:-]*")
THIRD_PARTY = re.compile(rf"{_LEAD_IN}(?:my|our|his|her|the)\s+(?:\w+\s+)?((?:{_KIN})s?|kids?|buddy)\b|"
                         r"^\W*(?:people|the guys|everyone|my other|the \w+ team)\b", _FLAGS)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|me|my|mine|we|we're|we've|us|our)\b", _FLAGS)
RELATIVE = re.compile(rf"\b(?:my|our|his|her)\s+(?:\w+\s+)?(?:(?:{_KIN})s?|kids?|children|boyfriend|girlfriend|"
                      r"fianc[ée]e?)\b", _FLAGS)

#: A relative followed by their name ("my sister Leila"): the relative's word and the name.
_RELATIVE_NAMED = re.compile(rf"\b(?:my|our|his|her)\s+(?:\w+\s+)?((?:{_KIN})s?|kids?|boyfriend|girlfriend|"
                             r"fianc[ée]e?)\s+((?-i:[A-Z])[\w'’]+)", _FLAGS)

FEATURES = ("similarity", "change", "now", "coexist", "hedge", "temporary", "past", "other_subject",
            "slot_conflict", "slot_same", "closest", "question")


@lru_cache(maxsize=8192)
def _count(pattern: re.Pattern[str], text: str, cap: int = 2) -> float:
    return float(min(cap, len(pattern.findall(text))))


def _first_sentence(text: str) -> str:
    """``text`` up to its first sentence or clause end (``.``, ``!``, ``?``, ``;``)."""
    return re.split(r"[.!?;]", text.strip(), maxsplit=1)[0]


@lru_cache(maxsize=4096)
def _third_party(text: str, after_third_party: bool = False) -> bool:
    """The text is mainly about someone else: it opens with "my brother ...", "our team ..." or a name, or, told
    after a turn about someone else (``after_third_party``), with "he", "she" or "they", who are that person:
    the speaker is "I". A subject that joins someone to the speaker ("Nora and I are going to Lisbon", "me and
    my brother") is the speaker's news too."""
    first = _first_sentence(text)
    if _WITH_SPEAKER.search(first):
        return False
    if THIRD_PARTY.search(first) or (after_third_party and _PRONOUN.search(first)):
        return True
    words = _WORD.findall(first)
    return bool(words) and words[0][:1].isupper() and words[0].lower() not in _FIRST_WORDS and len(words) > 2 \
        and words[1].lower() in ("is", "was", "has", "had", "just", "got", "and", "moved", "started", "went",
                                 "finally", "took", "bought", "lives", "works")


#: Kin words that may name the same person ("my parents" and "my mum"), by group: two groups are two people.
_KIN_GROUPS = {word: group for group, words in {
    "parent": "parent parents mum mom mother dad father family",
    "partner": "partner wife husband boyfriend girlfriend fiance fiancé fiancee fiancée spouse",
    "grandparent": "grandparent grandparents grandma grandpa grandmother grandfather",
    "child": "kid kids son sons daughter daughters child children",
    "friend": "friend friends mate mates buddy",
    "work": "colleague colleagues coworker coworkers boss manager team",
}.items() for word in words.split()}


def _kin(text: str) -> str | None:
    """The kin group of the relative a text opens with ("My brother moved ...": "brother"), None for anyone else
    (the speaker, a name)."""
    opener = THIRD_PARTY.search(_first_sentence(text))
    if opener is None or opener.group(1) is None:
        return None
    word = opener.group(1).lower()
    return _KIN_GROUPS.get(word, word.removesuffix("s"))


def _other_subject(older: str, newer: str) -> bool:
    """The newer turn is about someone else than the older: one about the speaker and the other not (a "he" or
    "she" opening the newer after a turn about someone else is that person), or both about relatives of two
    kinds ("my brother moved to Gdańsk" after "my parents live in Kraków": a brother is no parent). A name may be
    any relative's ("Greg moved to Singapore" after "my manager is Greg"), so it tells no two people apart."""
    before = _third_party(older)
    if _third_party(newer, before) != before:
        return True
    if not before or _PRONOUN.search(newer):
        return False
    older_kin, newer_kin = _kin(older), _kin(newer)
    return older_kin is not None and newer_kin is not None and older_kin != newer_kin


_WITH_SPEAKER = re.compile(r"^\W*(?:me and\b|(?:\w+\s+){1,3}and (?:i|me)\b)", _FLAGS)
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
        "temporary": _count(TEMPORARY, _without_qualified(_DATED, _without_qualified(
            TEMPORARY, _without_qualified(TEMPORARY, newer, _SIMILE), _SINCE), _STARTS)),
        "past": _count(PAST, newer),
        "other_subject": float(_other_subject(older, newer)),
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
#: A start point ("since the conference in November", "ever since our vacation"): the event that a lasting
#: state dates from, not a temporary state.
_SINCE = re.compile(r"\b(?:since|ever since)\s+(?:\w+\s+){0,2}$", _FLAGS)
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
    is a new thing, not a new state) or a start point (``_SINCE``: "since the conference in November")."""
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


def qualified(clause: str, *, counting: bool = False) -> bool:
    """A cue of co-existence, a hedge, a temporary state or the past qualifies ``clause`` (for a question that
    counts, words of addition change the count and qualify nothing)."""
    features = pair_features("", clause, 0.0, [], [], False)
    coexist = features["coexist"] - (additions(clause) if counting else 0.0)
    return bool(coexist > 0 or features["hedge"] or features["temporary"] or features["past"])


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
    "Who walked Bramble before Priti?": the answer is a name). A group or relative named with "the" and a
    modifier ("The platform team next door ...") is not the speaker's own ("my team")."""
    first = _first_sentence(text)
    opener = THIRD_PARTY.search(first)
    if opener is not None and re.search(r"\bthe\s+\w+\s+\w+$", opener.group(0), _FLAGS):
        return True
    named = {(opener.group(1) or opener.group(0).split()[-1]).lower()} if opener else set()
    if not named and first[:1].isupper():
        word = _name_form(first.split()[0]).lower()
        names = {name for other in named_in for name in _names(other)}
        named = {word} if word in names and word not in _FIRST_WORDS else set()
    aliases = {name.lower() for relation, name in relatives_named(named_in) if relation in asked}
    return bool(named) and not named & (asked | aliases)


def other_person_than_asked(asks_about_someone_else: bool, newer: str) -> bool:
    """The question and the newer turn are about different people: one about the speaker, the other mainly
    about someone else (``names_someone_else`` of the question; "he"/"she" opening the turn is the one asked
    about)."""
    return asks_about_someone_else != _third_party(newer, asks_about_someone_else)


#: A verb that ends or gives up a thing, and the name of what it ends ("sold the Peugeot", "cancelled Virgin
#: Media", "I left Fairline last month").
_ENDING = re.compile(r"\b(?:sold|traded|cancell?ed|quit|left|ditched|dumped|dropped|gave up|given up|replaced|swapped|"
                     r"switched (?:away )?from|moved (?:out of|away from|from)|closed|returned|scrapped|broke up with|"
                     r"done with|no longer (?:at|with|in))\s+(?:(?:the|my|our|an?|old|in)\s+){0,2}"
                     r"((?-i:[A-Z])[\w'’-]+)", _FLAGS)
#: A correction of what was just said ("Actually it's Friday the 10th", "Sorry, I misread the ticket").
_CORRECTION = re.compile(r"^\W*(?:actually|sorry|correction|oops|wait|scratch that|i mean|i meant|my mistake|"
                         r"my bad)\b|\b(?:i misread|i was wrong|i got (?:it|that|the \w+) wrong|i was looking at the "
                         r"wrong)\b", _FLAGS)


def ends_named(older: str, newer: str) -> bool:
    """The newer turn ends or gives up a thing the older one names ("Traded the Civic in for a Kia EV6" after "I
    drive a 2012 Honda Civic"; "I left Fairline last month" after "I work at Fairline Insurance"): whatever their
    similarity, the two are about the same thing, and the newer says it is over."""
    names = {_name_form(word).lower() for word in older.split() if word[:1].isupper()} - _CALENDAR - _FIRST_WORDS
    return any(match.group(1).lower() in names for match in _ENDING.finditer(newer))


def corrects(text: str) -> bool:
    """The turn corrects what its speaker said before ("Actually it's Friday the 10th", "Sorry, I misread the
    ticket, the flight is on the 15th")."""
    return bool(_CORRECTION.search(text))


#: A sentence that opens with someone and the speaker together ("Inês and I moved to Porto").
_WITH_SPEAKER = re.compile(r"^\W*\S+\s+(?:and|&)\s+(?:i|me)\b", _FLAGS)


def relatives_named(texts: Sequence[str]) -> frozenset[tuple[str, str]]:
    """The relation (lower case) and name of each relative that ``texts`` name ("My sister Inês is visiting":
    ``("sister", "Inês")``)."""
    return frozenset((match.group(1).lower(), match.group(2)) for text in texts
                     for match in _RELATIVE_NAMED.finditer(text))


def opens_about_someone_else(text: str, relatives: Collection[tuple[str, str]] = frozenset()) -> bool:
    """The text opens with another person ("My colleague Ben bought...", "my parents just moved...", or the name
    of one of ``relatives`` (``relatives_named`` of the texts around it): "Inês arrived yesterday!" after "My
    sister Inês is visiting"), not with them and the speaker together: news about them, which never replaces what
    the speaker said of themself."""
    first = _first_sentence(text)
    if THIRD_PARTY.search(first):
        return True
    words = first.split()
    return bool(words) and _name_form(words[0]) in {name for _, name in relatives} and not _WITH_SPEAKER.match(first)
