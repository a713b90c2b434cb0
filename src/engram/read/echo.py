"""Read path, step 3c (first part): the user's own words before the assistant's reply to them.

An assistant's reply often restates what the user just said in the words a question uses ("Nice. Matcha has
less caffeine..." after "matcha in the morning is my thing now"; "Plug in, the car handles payment through
your Tesla account" after "first road trip in the Model 3"), and can then outrank it. For a question about
the user's facts (asked in the first person) the user's turn is the source and the reply derives from it:
among the best-ranked candidates, a reply that ranks above the user turn it answers swaps scores with it,
unless that turn is a request that tells nothing (then the reply is the source: "Your dentist appointment
is on Thursday" after "Can you check my booking?"). Questions about what the assistant said
(``SearchQuery.about_assistant``) and searches not in the first person ("colourful glazing") keep the
assistant's words where they rank. Only the order of candidates already ranked near the top changes;
nothing is read from the store."""

from __future__ import annotations

from collections.abc import Sequence

from engram.models import CONVERSATION_GAP, MemoryItem
from engram.read.fuse import Fused
from engram.read.query import SearchQuery
from engram.read.replaced import READ_DEPTH
from engram.trust import TrustLevel

#: How deep in the ranking a reply and the user turn it answers are looked for: the depth of read-time
#: supersession's window, so both steps see the same candidates.
ECHO_DEPTH = READ_DEPTH


def answered_turn(reply: MemoryItem, candidates: Sequence[MemoryItem]) -> MemoryItem | None:
    """The user turn among ``candidates`` that ``reply`` (an assistant turn) answers: the latest user turn of
    the same scope before it, closer than ``CONVERSATION_GAP``; None when that turn is a request that tells
    nothing (``is_request``: "Can you check my booking?"; the reply is then the source of what it says) or
    when no turn is known to come before (turns of one ``add`` share their time)."""
    from engram.changes.cues import is_request

    earlier = [memory for memory in candidates
               if memory.is_turn and memory.trust == TrustLevel.USER and memory.scope == reply.scope
               and memory.began_at < reply.began_at and reply.began_at - memory.began_at < CONVERSATION_GAP]
    source = max(earlier, key=lambda memory: memory.began_at, default=None)
    return None if source is None or is_request(source.memory) else source


def user_words_first(ranked: Sequence[Fused], memories: Sequence[MemoryItem], query: SearchQuery) -> list[Fused]:
    """``ranked`` with each assistant reply among the ``ECHO_DEPTH`` best that ranks above the user turn it
    answers (also among them) swapping scores with that turn, for a question in the first person (about the
    user's own facts: "What car do I drive?"); unchanged for other searches ("colourful glazing" finds the
    reply that says it) and for a question about what the assistant said."""
    from engram.changes.cues import in_first_person

    if query.about_assistant or not in_first_person(query.text):
        return list(ranked)
    by_id = {memory.id: memory for memory in memories}
    top = [by_id[item.memory_id] for item in ranked[:ECHO_DEPTH] if item.memory_id in by_id]
    scores = {item.memory_id: item for item in ranked}
    swapped: set[str] = set()
    for reply in top:
        if not reply.is_turn or reply.trust != TrustLevel.ASSISTANT or reply.id in swapped:
            continue
        source = answered_turn(reply, top)
        if source is None or source.id in swapped or scores[source.id].score >= scores[reply.id].score:
            continue
        given, kept = scores[reply.id], scores[source.id]
        scores[source.id] = Fused(source.id, given.score, {**kept.components, "answered_by_reply": 1.0})
        scores[reply.id] = Fused(reply.id, kept.score, {**given.components, "reply_to_user": 1.0})
        swapped.update((reply.id, source.id))
    return sorted(scores.values(), key=lambda entry: -entry.score)
