"""Search terms of a text: its lower-cased content words, stopwords dropped. Shared by the read path
(lexical search of a question) and the write path (the lexical lookups of supersession and consolidation)."""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
MAX_TERMS = 64

STOPWORDS = frozenset("""
a about above after again against all also am an and any are aren't as at be because been before being
below between both but by can can't cannot could couldn't d did didn't do does doesn't doing don't down
during each few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here
here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself
just let's ll m me more most mustn't my myself no nor not of off on once only or other ought our ours
ourselves out over own re s same shan't she she'd she'll she's should shouldn't so some such t than that
that's the their theirs them themselves then there there's these they they'd they'll they're they've this
those through to too under until up ve very was wasn't we we'd we'll we're we've were weren't what what's
when when's where where's which while who who's whom why why's with won't would wouldn't y you you'd you'll
you're you've your yours yourself yourselves
""".split())


def query_terms(text: str) -> tuple[str, ...]:
    """Lower-cased content words of ``text`` (stopwords dropped unless nothing else is left), deduplicated."""
    words = [w.lower().replace("’", "'") for w in _WORD.findall(text)]
    content = [w for w in words if w not in STOPWORDS] or words
    return tuple(dict.fromkeys(content))[:MAX_TERMS]
