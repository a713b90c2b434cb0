"""Offline reading of "who has which attribute with which value" in a sentence, for supersession.

``statements(text, speaker)`` finds statements such as "I live in Berlin" (``self``, ``residence``,
``berlin``), "We finally moved to Lisbon" (``self``, ``residence``, ``lisbon``), "my sister works at
Stripe" (``sister``, ``employer``, ``stripe``) or "Tom and I broke up" (``self``, ``partner``, ended).
An attribute here is single-valued: a newer statement of the same subject and attribute with another
value replaces the older one. Things that co-exist (pets, hobbies, friends, allergies) are not
attributes, so "I also adopted a cat" never ends "I have a dog". Only explicit patterns count; a
sentence matches nothing rather than something doubtful. Hypotheticals, questions, plans and
reported wishes ("I might move to Paris", "thinking about quitting") are skipped.

``SLOT_KEYS`` gives each attribute the words a question about it uses ("Where do I live now?" for a
turn that says "we moved to Lisbon"), added to the turn's own index keys when the turn tells the statement
as a change (``engram.write.supersede.with_statements``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from engram.changes.grammar import ACCUSTOMED

#: Words that questions about an attribute use, added to the index keys of a turn stating it.
SLOT_KEYS: dict[str, str] = {
    "residence": "live lives living home moved based",
    "employer": "work works working job employer company",
    "role": "work job role position title",
    "partner": "partner relationship dating together boyfriend girlfriend married",
    "phone": "phone number call contact",
    "email": "email address contact",
    "address": "address live",
    "vehicle": "car drive drives vehicle",
    "diet": "diet eat food",
    "school": "study studies school university college",
    "age": "age old",
    "name": "name called",
    "schedule": "schedule when day time",
    "plan": "plan when where",
    "favourite": "favorite favourite",
    "count": "how many",
    "habit": "still",
}

_SUBJECT_WORDS = (r"sister|brother|mom|mum|mother|dad|father|son|daughter|wife|husband|partner|boyfriend|"
                  r"girlfriend|fianc[ée]e?|boss|manager|friend|best friend|roommate|flatmate|cousin|aunt|uncle|"
                  r"grandma|grandmother|grandpa|grandfather|neighbou?r|colleague|coworker|kid|niece|nephew")
_NAME = r"[A-Z][a-z'’]+(?:\s[A-Z][a-z'’]+)?"
_VALUE = r"(?P<value>[^.!?,;\n]{1,60}?)"
_END = r"(?=\s*(?:[.!?,;\n]|$|\s(?:now|and|but|since|because|last|this|next|for|with|after|so|which|where|"
_END += r"who|on|in|at|from|starting|as of|these days|right now|at the moment)\b))"
_HEDGES = re.compile(r"\b(?:might|may|maybe|perhaps|would|could|should|thinking (?:about|of)|considering|"
                     r"plan(?:ning)? to|hope to|hoping to|want to|wanna|wish|someday|if i|if we|dream|"
                     r"going to|gonna|will|'ll|" + ACCUSTOMED + r"used to|as a kid|as a child|when i was|years ago|"
                     r"back then|"
                     r"in the past|not sure|do you|did you|are you|have you|visit(?:ed|ing)?|trip to|"
                     r"vacation|holiday|staying at|this week|for the weekend)\b", re.IGNORECASE)
_NUMBER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
                 "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "a": "1", "an": "1",
                 "no": "0", "zero": "0"}
_CLAUSE = re.compile(r"[^.!?;\n]+")
_STOP_VALUE = re.compile(r"^(?:the|a|an|my|our|his|her|their|this|that)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    """``subject`` has ``attribute`` = ``value`` (``None``: the attribute ended, e.g. "I quit my job")."""

    subject: str
    attribute: str
    value: str | None

    @property
    def slot(self) -> str:
        """``subject|attribute``: what a newer statement must share to replace this one."""
        return f"{self.subject}|{self.attribute}"


def stated_slots(attributes: Sequence[str]) -> set[str]:
    """The slots (``subject|attribute``) of a memory's stored ``attributes`` (``subject|attribute=value``)."""
    return {entry.split("=", 1)[0] for entry in attributes}


@dataclass(frozen=True)
class Pattern:
    attribute: str
    regex: re.Pattern[str]
    ends: bool = False


def _p(attribute: str, pattern: str, *, ends: bool = False) -> Pattern:
    return Pattern(attribute, re.compile(pattern, re.IGNORECASE), ends)


_I = r"(?P<subj>\bi|\bwe|\bmy (?:" + _SUBJECT_WORDS + r")(?: " + _NAME + r")?|\b" + _NAME + r")"
_ADV = r"(?:\s+(?:now|currently|still|actually|officially|finally|just|recently|also|both))*"
_BE = r"(?:\s+(?:am|'m|’m|is|'s|’s|are|'re|’re))"
_HAVE = r"(?:\s+(?:have|'ve|’ve|has|had))?"
#: The present perfect of a state that goes on ("I've lived in Glasgow since 2015", "she's worked at Aldi for ten
#: years"): only with the span it has lasted, without which it may be an experience ("I've lived in Paris").
_PERFECT = r"(?:\s+(?:have|has)|'ve|’ve|'s|’s)" + r"(?:\s+(?:now|just|always|also|actually))*"
_SPAN = r"(?=\s+(?:for|since|all (?:my|our|her|his) li(?:fe|ves))\b)"
_PLACE = r"(?P<value>(?-i:[A-Z])[\w'’-]+(?:\s(?-i:[A-Z])[\w'’-]+)?)"

PATTERNS: tuple[Pattern, ...] = (
    _p("residence", _I + _ADV + r"(?:" + _BE + r")?" + _ADV + r"\s+(?:live|lives|living|reside|resides|residing|"
       r"based)\s+(?:in|at|near|outside(?: of)?|on)\s+" + _VALUE + _END),
    _p("residence", _I + _HAVE + _ADV + r"\s+(?:moved|relocated)(?:\s+(?:back|over|out|away|house))?\s+(?:to|into|in)"
       r"\s+(?:a\s+new\s+\w+\s+in\s+)?" + _VALUE + _END),
    _p("residence", r"(?P<subj>\bour|\bmy)\s+new\s+(?:place|flat|apartment|house|home|condo|digs)\s+in\s+" + _PLACE),
    _p("residence", r"(?P<subj>\bour|\bmy)\s+new\s+(?:place|flat|apartment|house|home|condo|digs)\s+(?:is\s+)?"
       r"(?:in|at)\s+" + _VALUE + _END),
    _p("residence", _I + _PERFECT + r"\s+(?:lived|been living|been based)\s+(?:in|at|near)\s+" + _VALUE + _SPAN),
    _p("residence", r"(?P<subj>\bi|\bwe)(?:" + _BE + r")?\s+(?:settl(?:ed|ing)|moving)\s+in(?:to)?\s+(?:our|my|the)\s+"
       r"(?:new\s+)?(?:place|flat|apartment|house|home)\s+in\s+" + _VALUE + _END),
    _p("employer", _I + _ADV + r"(?:" + _BE + r")?" + _ADV + r"\s+(?:work|works|working|employed)\s+(?:at|for|with)\s+"
       + _VALUE + _END),
    _p("employer", _I + _PERFECT + r"\s+(?:worked|been working)\s+(?:at|for)\s+" + _VALUE + _SPAN),
    _p("employer", _I + _HAVE + _ADV + r"\s+(?:started|began)\s+(?:a\s+new\s+job\s+|working\s+|my\s+new\s+job\s+|"
       r"a\s+job\s+)?(?:at|with|for)\s+" + _VALUE + _END),
    _p("employer", _I + _HAVE + _ADV + r"\s+joined\s+" + _VALUE + _END),
    _p("employer", _I + _HAVE + _ADV + r"\s+(?:got|accepted|took|landed|signed)\s+(?:a|an|the)\s+(?:new\s+)?"
       r"(?:job|position|role|offer)\s+(?:at|with)\s+" + _VALUE + _END),
    _p("employer", _I + r"(?:" + _BE + r"|\s+was|\s+were|\s+got)?" + _ADV + r"\s+(?:hired|recruited)\s+(?:at|by)\s+"
       + _VALUE + _END),
    _p("employer", r"(?P<subj>\bmy|\bhis|\bher)\s+new\s+(?:job|employer|company|workplace)\s+is\s+(?:at\s+|with\s+)?"
       + _VALUE + _END),
    _p("employer", _I + _HAVE + _ADV + r"\s+(?:quit|left|resigned from|lost)\s+(?:my|his|her|the)\s+job\b", ends=True),
    _p("employer", _I + r"(?:" + _BE + r"|\s+was|\s+got)\s+(?:laid off|fired|let go)\b", ends=True),
    _p("role", _I + _ADV + r"(?:" + _BE + r")?" + _ADV + r"\s+(?:work|works|working)\s+as\s+(?:a|an)\s+"
       + _VALUE + _END),
    _p("role", _I + _HAVE + _ADV + r"(?:" + _BE + r"|\s+got|\s+was|\s+been)?\s+promoted\s+to\s+(?:a\s+|an\s+)?"
       + _VALUE + _END),
    _p("partner", r"(?P<subj>\bmy|\bhis|\bher)\s+(?:new\s+)?(?:boyfriend|girlfriend|partner|husband|wife|fianc[ée]e?|"
       r"spouse)(?:'s name is|’s name is|,| is| named| called)?\s+(?P<value>" + _NAME + r")\b"),
    _p("partner", _I + _ADV + r"(?:" + _BE + r")" + _ADV + r"\s+(?:dating|seeing|engaged to|married to|"
       r"going out with)\s+(?P<value>" + _NAME + r")\b"),
    _p("partner", _I + _HAVE + _ADV + r"\s+(?:started dating|got engaged to|married|got married to)\s+(?P<value>"
       + _NAME + r")\b"),
    _p("partner", r"(?P<subj>\bi|\bwe|\b" + _NAME + r"\s+and\s+i|\bi\s+and\s+" + _NAME + r")" + _HAVE + _ADV +
       r"\s+(?:broke up|split up|separated|divorced|called it off|ended things)\b", ends=True),
    _p("partner", _I + _ADV + _BE + _ADV + r"\s+(?:single|divorced|separated)\b", ends=True),
    _p("phone", r"(?P<subj>\bmy|\bhis|\bher|\bour)\s+(?:new\s+)?(?:phone|cell|mobile)?\s*(?:number|phone)\s*"
       r"(?:is|:|changed to|is now)\s*(?P<value>\+?\d[\d\s().-]{5,}\d)"),
    _p("email", r"(?P<subj>\bmy|\bhis|\bher|\bour)\s+(?:new\s+)?(?:e-?mail|email address)(?:\s+address)?\s*"
       r"(?:is|:|changed to|is now)\s*(?P<value>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"),
    _p("address", r"(?P<subj>\bmy|\bour)\s+(?:new\s+)?(?:home\s+|mailing\s+|street\s+)?address\s+(?:is|:|is now)\s+"
       r"(?P<value>[^.!?;\n]{4,80})"),
    _p("vehicle", _I + _ADV + r"\s+(?:drive|drives|driving)\s+(?:a|an|the)\s+(?:new\s+|used\s+)?" + _VALUE + _END),
    _p("vehicle", r"(?P<subj>\bmy|\bour)\s+(?:new\s+)?car\s+is\s+(?:a|an)\s+" + _VALUE + _END),
    _p("vehicle", _I + _HAVE + _ADV + r"\s+(?:bought|got|picked up|leased)\s+(?:a|an)\s+(?:new\s+|used\s+)?"
       r"(?P<value>(?:\w+\s+)?(?:car|truck|suv|van|motorcycle|motorbike|scooter|ev|tesla|prius|civic|corolla|"
       r"model [3sxy]|jeep|volvo|subaru|mini|golf|jetta))\b"),
    _p("diet", _I + _HAVE + _ADV + r"(?:" + _BE + r"|\s+went|\s+gone|\s+became|\s+turned|\s+been)" + _ADV +
       r"\s+(?:fully\s+|strictly\s+|a\s+)?(?P<value>vegan|vegetarian|pescatarian|keto|paleo|gluten[- ]free|"
       r"dairy[- ]free|carnivore|plant[- ]based)\b"),
    _p("diet", _I + _HAVE + _ADV + r"\s+(?:stopped|quit) being\s+(?:a\s+)?(?:vegan|vegetarian|pescatarian|keto)\b",
       ends=True),
    _p("school", _I + _ADV + _BE + _ADV + r"\s+(?:studying|majoring in|doing (?:a|my) (?:degree|masters|master's|phd|"
       r"bachelor's) in)\s+" + _VALUE + _END),
    _p("school", _I + _HAVE + _ADV + r"\s+(?:switched|changed)\s+(?:my\s+)?major\s+to\s+" + _VALUE + _END),
    _p("age", _I + _HAVE + _ADV + r"(?:" + _BE + r"|\s+just\s+turned|\s+turned)\s+(?P<value>\d{1,3})"
       r"(?:\s+years?\s+old|\s+now|\s+today|\s+this\s+year)"),
    _p("name", r"(?P<subj>\bcall me|\bmy name is|\bi go by|\bi'm going by|\bplease call me)\s+(?P<value>"
       + _NAME + r")"),
    _p("favourite", r"(?P<subj>\bmy|\bour|\bhis|\bher)\s+(?:new\s+|current\s+|absolute\s+|all-time\s+)?"
       r"fav(?:ou?rite)?\s+(?P<what>[a-z]+(?:\s[a-z]+)?)\s+"
       r"(?:is|are|has to be|these days is|right now is|now is)\s+" + _VALUE + _END),
    _p("count", _I + _HAVE + _ADV + r"\s+(?:have|has|got|'ve got)\s+(?P<value>\d+|one|two|three|four|five|six|seven|"
       r"eight|nine|ten|eleven|twelve|no)\s+(?P<what>kids|children|cats|dogs|employees|reports|direct reports|"
       r"grandkids|grandchildren|siblings|roommates|people on (?:my|the) team|chickens|horses|plants)\b"),
    _p("count", r"(?P<subj>\bmy|\bour)\s+(?P<what>team|class|band|family|household)\s+(?:is|has|now has|grew to|"
       r"shrank to|is now|went to|is down to|is up to)\s+(?P<value>\d+|one|two|three|four|five|six|seven|eight|nine|"
       r"ten|eleven|twelve)\b"),
    _p("schedule", r"(?P<subj>\bmy|\bour|\bthe)\s+(?P<what>[a-z]+(?:\s[a-z]+)?)\s+(?:class|classes|lesson|lessons|"
       r"practice|meeting|meetings|session|sessions|appointment|shift|shifts|club|rehearsal|standup|training)\s+"
       r"(?:is|are|was|were|got|has|have|'s)?\s*(?:now\s+|been\s+|finally\s+)?(?:moved|changed|switched|"
       r"rescheduled|pushed|is|are|on|at)?\s*(?:to\s+|on\s+|at\s+)?(?P<value>(?:mondays?|tuesdays?|wednesdays?|"
       r"thursdays?|fridays?|saturdays?|sundays?|weekends?|mornings?|evenings?|\d{1,2}(?::\d{2})?\s*(?:am|pm))"
       r"(?:\s*(?:and|&|,|at)\s*(?:mondays?|tuesdays?|wednesdays?|thursdays?|fridays?|saturdays?|sundays?|"
       r"\d{1,2}(?::\d{2})?\s*(?:am|pm)))*)"),
    _p("plan", r"(?P<subj>\bmy|\bour|\bthe)\s+(?P<what>trip|wedding|party|vacation|holiday|flight|surgery|exam|"
       r"interview|concert|reunion|honeymoon|move|appointment|launch|deadline)\s+(?:is|was|got|has been|'s)?\s*"
       r"(?:now\s+|officially\s+)?(?:moved|pushed|rescheduled|postponed|changed|switched|booked|set|planned)?\s*"
       r"(?:back\s+)?(?:to|for|on|in)\s+" + _VALUE + _END),
)


_SPEAKER_WORDS = frozenset({"i", "i'm", "i've", "i'd", "we", "we're", "we've", "our", "call", "please"})


def _subject(raw: str, speaker: str) -> str | None:
    """The subject a matched phrase names: the speaker for I/we/my/our; a relative ("sister") or a
    name ("ana") for third parties; None for pronouns that cannot be resolved here."""
    words = raw.strip().lower().replace("’", "'").split()
    if not words:
        return None
    if words[0] in _SPEAKER_WORDS or raw.lower().startswith(("my name", "i go", "i'm going")):
        return speaker
    if words[0] == "my":
        if len(words) == 1:
            return speaker
        rest = words[1:]
        names = [word for word in raw.split()[1:] if word[:1].isupper()]
        return names[-1].lower() if names else " ".join(rest)
    if words[0] in ("his", "her", "the"):
        return None if words[0] != "the" else speaker
    if words[-1] == "i" or words[0] == "i":
        return speaker
    return words[0] if raw.strip()[:1].isupper() else None


def normalise_value(value: str) -> str:
    """A value compared across statements: lower-cased, articles and punctuation dropped, numbers as digits."""
    text = _STOP_VALUE.sub("", value.strip().lower().replace("’", "'"))
    words = [_NUMBER_WORDS.get(word, word) for word in re.findall(r"[\w@.+-]+", text)]
    return " ".join(word.strip(".") for word in words if word.strip("."))


def statements(text: str, speaker: str) -> list[Statement]:
    """The single-valued attribute statements ``text`` makes, ``speaker`` being who says it (parsed once
    per text and speaker: the supersession check reads the same stored turns again and again)."""
    return list(_parsed_statements(text, speaker))


@lru_cache(maxsize=8192)
def _parsed_statements(text: str, speaker: str) -> tuple[Statement, ...]:
    found: dict[str, Statement] = {}
    for clause in _CLAUSE.findall(text):
        if "?" in clause or _HEDGES.search(clause):
            continue
        for pattern in PATTERNS:
            match = pattern.regex.search(clause)
            if match is None:
                continue
            subject = _subject(match.group("subj"), speaker)
            if subject is None:
                continue
            groups = match.groupdict()
            attribute = pattern.attribute
            if groups.get("what"):
                attribute = f"{attribute}:{normalise_value(groups['what'])}"
            value = None if pattern.ends else normalise_value(groups.get("value") or "")
            if value == "" or (value is not None and value in ("here", "there", "it", "that", "this")):
                continue
            found.setdefault(f"{subject}|{attribute}", Statement(subject, attribute, value))
    return tuple(found.values())
