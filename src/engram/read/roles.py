"""Read path: what an assistant's turn contributes to recall (issue 13, "whose words become memories").

Every message is kept as an episode, and every user and assistant message as a verbatim turn, so the
assistant's words are context of the user's turns (their context keys and mixed vectors,
``engram.write.context``) and stay findable. As a *result*, a memory is weighed by whose words the question
asks for (``engram.read.assemble``: ``trust_factor`` and ``role_factor``):

- an assistant's **acknowledgement** (a turn made only of thanks, "got it", praise, "I'll remember that"
  and questions back to the user) states nothing of its own: it is context and keeps ``context_weight``
  (50%) of its relevance, so the user's turn it answers comes first ("Got it, I'll remember your dietary
  needs." for "dietary restrictions?");
- an assistant's turn that **states something** (a recommendation, an answer, a fact it relays) keeps the
  share its trust level gives (``trust_weight``: 85%);
- for a question about **what the assistant said** ("what did you recommend ...?", "you told me ...",
  ``engram.read.query.asks_about_assistant``), the assistant is the authority on its own words: its
  statements keep all their relevance, and the user's words (the request it answered) are the context,
  keeping ``context_weight``.

With an LLM, extraction already skips acknowledgements and small talk (``engram.llm.prompts``); its facts
are weighed by the same trust and question rules.

An acknowledgement is recognised sentence by sentence: each sentence is a question (unless it proposes
something, "How about ...?", or leads with a statement, "I can bring it tomorrow, how does that sound?"), a
commitment to remember ("I'll keep that in mind"), or opens with a phatic phrase ("Got it", "Thanks", "Congratulations",
"That sounds great") followed by nothing, a few words, or a continuation of the same phrase ("on your new
job", "for telling me"). A sentence that goes on to say something ("Great, I recommend the Alfama
district") makes the turn a statement."""

from __future__ import annotations

import re
from functools import lru_cache

_SENTENCE = re.compile(r"[^.!?…]+(?:[.!?…]+|$)")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
_ADJECTIVE = (r"(?:great|good|wonderful|awesome|amazing|exciting|lovely|nice|fantastic|cool|fun|interesting"
              r"|impressive|incredible|brilliant|beautiful|sweet|perfect|excellent|terrific|helpful|smart|wise"
              r"|thoughtful|inspiring|understandable|tough|hard|sad|frustrating|rough|scary)")
_PHATIC = (
    r"well\s+done|oh|ah|aw+|wow|whoa|well|okay|ok|alright|all\s+right|yes|yeah|yep|sure|right|absolutely|certainly|indeed"
    r"|of\s+course|no\s+problem|no\s+worries|understood|noted|got\s+it|gotcha|i\s+see|i\s+understand"
    r"|thanks?(?:\s+you)?(?:\s+so\s+much|\s+very\s+much|\s+a\s+lot)?|you(?:'|’)?re\s+(?:very\s+|most\s+)?welcome"
    r"|my\s+pleasure|(?:i(?:'|’)?m\s+)?(?:happy|glad)\s+to\s+help|congratulations|congrats|kudos"
    r"|hi|hello|hey|bye|goodbye|take\s+care|cheers|good\s+(?:job|luck|idea|choice|question|point|morning"
    r"|afternoon|evening|night)|sounds\s+(?:like\s+(?:a\s+plan|fun|a\s+great\s+\w+)|good|great|lovely|fun"
    r"|wonderful|exciting|perfect)"
    rf"|(?:that|this|it)(?:(?:'|’)s|\s+is|\s+was|\s+sounds|\s+looks|\s+seems)(?:\s+(?:so|really|very|such|truly))?"
    rf"(?:\s+an?)?(?:\s+(?:really|very|so))?\s+{_ADJECTIVE}(?:\s+\w+)?"
    rf"|how\s+{_ADJECTIVE}|what\s+an?\s+{_ADJECTIVE}\s+\w+|(?:so|very|really)\s+{_ADJECTIVE}|{_ADJECTIVE}"
    r"|i(?:'|’)?m\s+(?:so\s+|really\s+|very\s+)?(?:glad|happy|sorry|thrilled|excited|proud)(?:\s+(?:to\s+hear|for\s+you))?"
)
_OPENER = re.compile(rf"^(?:(?:{_PHATIC})\b[\s,!.:;—–-]*)+", re.IGNORECASE)
#: Words that continue the phatic phrase rather than start a statement ("Congratulations on the new job").
_CONTINUATION = re.compile(r"^(?:on|for|about|to\s+hear|with|that\s+you|you\s+(?:did|made|got|found))\b",
                           re.IGNORECASE)
_COMMITMENT = re.compile(
    r"^(?:i(?:'|’)ll|i\s+will|i(?:'|’)ve|i\s+have|i(?:'|’)m\s+going\s+to|let\s+me)\s+(?:definitely\s+|be\s+sure\s+to\s+)?"
    r"(?:remember|note|noted|keep|make\s+(?:a\s+)?note|take\s+note|save|store|bear|jot)\b", re.IGNORECASE)
#: Questions that propose something ("How about this series?", "Have you tried the Alfama district?").
_SUGGESTION = re.compile(r"^(?:how|what)\s+about\b|^have\s+you\s+(?:tried|considered|thought\s+about|looked\s+into)\b"
                         r"|^why\s+(?:not|don(?:'|’)t\s+you)\b|^(?:would|do)\s+you\s+(?:like|want)\s+to\s+try\b"
                         r"|^maybe\b", re.IGNORECASE)
#: Words a sentence may keep after its phatic opener and still say nothing ("Thanks, Caroline!").
MAX_TRAILING_WORDS = 3
#: Words of a continuation that still belong to the phatic phrase ("Well done on finishing your first race").
MAX_CONTINUATION_WORDS = 12


def _says_nothing(sentence: str) -> bool:
    text = sentence.strip()
    if not _WORD.search(text):
        return True
    if text.endswith("?"):
        lead, comma, _ = text.rpartition(",")
        return not _SUGGESTION.match(text) and not (comma and not _says_nothing(lead))
    opener = _OPENER.match(text)
    rest = text[opener.end():].strip() if opener else text
    words = _WORD.findall(rest)
    if _COMMITMENT.match(rest) or not words:
        return True
    if opener is None:
        return False
    return len(words) <= MAX_TRAILING_WORDS or (bool(_CONTINUATION.match(rest))
                                                and len(words) <= MAX_CONTINUATION_WORDS)


@lru_cache(maxsize=8192)
def is_acknowledgement(text: str) -> bool:
    """True when no sentence of ``text`` states anything: only acknowledgements, thanks, praise, promises to
    remember, and questions back (see the module docstring). Cached: search asks it of every assistant turn
    among the candidates."""
    sentences = [match.group(0) for match in _SENTENCE.finditer(text.replace("\n", ". "))]
    return all(_says_nothing(sentence) for sentence in sentences)
