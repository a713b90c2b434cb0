"""Which memories belong in a profile, offline: first-person, stable statements about who someone is.

Each current memory (active, not superseded, not an experience case) is matched against cue patterns
per category, in the order a profile is read: who, where, work, people, preferences, constraints.
Its score is the category's weight, plus a bonus for a first-person statement by the user and for
strength, minus penalties for questions, passing events (today, this morning, just...) and length.
Memories below ``MIN_SCORE`` (no cue, or a cue drowned by penalties) are left out."""

from __future__ import annotations

import re
from dataclasses import dataclass

from engram.models import MemoryItem

#: Categories in reading order, with their cue patterns (case-insensitive, word-bounded).
CATEGORY_CUES: dict[str, tuple[str, ...]] = {
    "who": (r"my name is", r"call me", r"i was born", r"years old", r"my birthday", r"i identify as",
            r"i(?: am|'m) an? (?:man|woman|mom|mother|dad|father|parent|single|widow(?:er)?|retiree|trans \w+)"),
    "where": (r"i live", r"i'm living", r"living in", r"moved to", r"i'm from", r"i am from", r"based in",
              r"my home", r"my hometown", r"we live"),
    "work": (r"i work", r"my job", r"i'm working", r"my boss", r"my company", r"my team", r"colleague",
             r"i study", r"my degree", r"career", r"my (?:role|position)", r"engineer", r"teacher", r"nurse",
             r"developer", r"doctor", r"student"),
    "people": (r"my (?:wife|husband|partner|spouse|girlfriend|boyfriend|fianc[ée]e?)",
               r"my (?:son|daughter|kids?|children|child|baby)", r"my (?:mom|mother|dad|father|parents?)",
               r"my (?:brother|sister|siblings?|grandma|grandmother|grandpa|grandfather|family)",
               r"my (?:best )?friends?", r"my (?:dog|cat|pet|puppy|kitten)", r"married", r"named \w+"),
    "preferences": (r"i (?:really )?(?:love|like|enjoy|prefer|adore)", r"i (?:hate|dislike|can't stand)",
                    r"i don't like", r"my favou?rite", r"i'm (?:a )?(?:vegetarian|vegan)", r"i usually",
                    r"i always", r"i'm into", r"my hobby", r"hobbies", r"passionate about",
                    r"(?:big |huge )?fan of"),
    "constraints": (r"allergic", r"allergy", r"allergies", r"intolerant", r"can't eat", r"cannot eat",
                    r"don't eat", r"diabetic", r"gluten", r"i never", r"i must", r"i can't", r"i cannot",
                    r"medication", r"disability", r"please don't", r"do not (?:call|email|contact)"),
}
CATEGORY_WEIGHTS: dict[str, float] = {"who": 3.0, "where": 2.5, "work": 2.0, "people": 2.0,
                                      "preferences": 1.5, "constraints": 3.0}
_CUES = {category: re.compile(r"\b(?:" + "|".join(cues) + r")\b", re.IGNORECASE)
         for category, cues in CATEGORY_CUES.items()}
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|my|me|we|our)\b", re.IGNORECASE)
_PASSING = re.compile(r"\b(?:today|tonight|this (?:morning|afternoon|evening|week)|yesterday|right now|just|"
                      r"last night|tomorrow|at the moment|currently)\b", re.IGNORECASE)
#: Memories scoring below this are not profile material.
MIN_SCORE = 1.5
#: Characters after which a memory starts losing score (long messages are rarely a stable fact).
LONG_CHARS = 220


@dataclass(frozen=True)
class ProfileCandidate:
    """A memory selected for the profile: its category, score and the text shown."""

    memory: MemoryItem
    category: str
    score: float
    reasons: tuple[str, ...]


def is_current(memory: MemoryItem) -> bool:
    """Active, never superseded (no ``valid_to``, no ``metadata.superseded_by``), and not an experience."""
    return (memory.status == "active" and memory.valid_to is None
            and not memory.metadata.get("superseded_by") and memory.kind != "experience")


def score_memory(memory: MemoryItem, strength: float = 1.0) -> ProfileCandidate | None:
    """The memory as a profile candidate, or None when it is not profile material."""
    text = memory.memory
    matched = [category for category, pattern in _CUES.items() if pattern.search(text)]
    if not matched or not is_current(memory):
        return None
    category = max(matched, key=lambda name: CATEGORY_WEIGHTS[name])
    score, reasons = CATEGORY_WEIGHTS[category], [f"cue:{category}"]
    if _FIRST_PERSON.search(text):
        score += 1.0
        reasons.append("first-person")
    if memory.writer == "user":
        score += 0.5
        reasons.append("said by the user")
    if memory.kind == "fact":
        score += 0.5
        reasons.append("extracted fact")
    if text.rstrip().endswith("?"):
        score -= 2.5
        reasons.append("question")
    if _PASSING.search(text):
        score -= 1.5
        reasons.append("passing event")
    if len(text) > LONG_CHARS:
        score -= min(2.0, (len(text) - LONG_CHARS) / LONG_CHARS)
        reasons.append("long")
    score += min(1.0, max(0.0, strength - 1.0))
    if score < MIN_SCORE:
        return None
    return ProfileCandidate(memory=memory, category=category, score=round(score, 4), reasons=tuple(reasons))
