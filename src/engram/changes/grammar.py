"""Small rules of English shared by the statement patterns (``engram.changes.slots``) and the change cues
(``engram.changes.cues``)."""

from __future__ import annotations

#: Put before "used to": not after a form of "be" or "get", where "used to" is "accustomed to" ("I'm slowly
#: getting used to late dinners") and tells nothing of the past, unlike the habit of "I used to live in Coimbra".
ACCUSTOMED = "".join(rf"(?<!\b{word} )" for word in "get gets got getting gotten be am is are was were been being "
                     "i'm we're you're they're it's i’m we’re".split())
