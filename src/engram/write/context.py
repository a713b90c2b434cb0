"""Write path, conversation context: what a turn is *found by*, as opposed to what it *returns*.

A verbatim turn is returned as it was said, but indexed under more than its own words:

- ``context_keys``: the text of the turns around it in its conversation (an answer such as
  "Street Fighter!" is found by the question that preceded it);
- its stored vector: its own embedding (``"Speaker: text"``) mixed with its neighbours',
  ``unit(v + sum(w ** distance * v_neighbour))``, so dense search also sees the exchange around it.

A turn's neighbours come from the store, not from the call that wrote it: the turns of exactly the same
scope, in event order (``valid_from``, then insertion), at most ``CONTEXT_TURNS`` places away and at most
``CONVERSATION_GAP`` apart in event time, quarantined turns excluded. So one ``add`` per turn, as agents
write, indexes a conversation exactly as one ``add`` per session does. Whenever a turn arrives, changes,
is released from quarantine or goes away, the context of the turns around it is rebuilt (``refresh``)
from the turns' own embeddings kept beside the mixed ones: no turn ever keeps the words or the vector of
a deleted, edited or quarantined neighbour.

Measured on LoCoMo (docs/BENCHMARKS.md, "Retrieval ablations"): the context keys and the vector mix
are the two largest single gains of the offline read path."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from engram.embed.base import normalize_rows
from engram.models import CONVERSATION_GAP, MemoryItem
from engram.store.base import Store, TurnContext

#: Weight of each adjacent neighbour's vector in a turn's stored vector (fitted on LoCoMo, checked
#: leave-one-out); a neighbour at distance d weighs ``NEIGHBOUR_VECTOR_WEIGHT ** d``.
NEIGHBOUR_VECTOR_WEIGHT = 0.5
#: How many turns on each side count as context.
CONTEXT_TURNS = 3
#: Characters of each neighbour's text kept in the context keys.
MAX_NEIGHBOUR_KEY_CHARS = 500


def neighbours(turns: Sequence[MemoryItem], width: int = CONTEXT_TURNS) -> list[list[tuple[int, int]]]:
    """For each turn of a sequence in conversation order, ``(position, distance)`` of its neighbours:
    the turns of the same scope at most ``width`` places and ``CONVERSATION_GAP`` away, nearest first."""
    scopes = [(turn.user_id, turn.agent_id, turn.run_id) for turn in turns]
    times = [turn.began_at for turn in turns]
    found: list[list[tuple[int, int]]] = []
    for index in range(len(turns)):
        window = range(max(0, index - width), min(len(turns), index + width + 1))
        near = [(other, abs(other - index)) for other in window if other != index and scopes[other] == scopes[index]
                and abs(times[other] - times[index]) <= CONVERSATION_GAP]
        found.append(sorted(near, key=lambda pair: (pair[1], pair[0])))
    return found


def context_of(turns: Sequence[MemoryItem], index: int, near: Sequence[tuple[int, int]],
               vectors: Mapping[str, np.ndarray]) -> TurnContext:
    """The context of ``turns[index]``: its neighbours' text in conversation order, and its own vector
    mixed with theirs (``vectors`` holds the turns' own embeddings). While a store is being re-embedded
    (``engram.reembed``) a neighbour may still have a vector of the old model's dimension: it is left out
    of the mix, which the re-embedding computes again anyway."""
    keys = "\n".join(turns[position].memory[:MAX_NEIGHBOUR_KEY_CHARS] for position, _ in sorted(near))
    mixed = np.array(vectors[turns[index].id], dtype=np.float32, copy=True)
    for position, distance in near:
        neighbour = vectors[turns[position].id]
        if neighbour.shape == mixed.shape:
            mixed += NEIGHBOUR_VECTOR_WEIGHT ** distance * neighbour
    return TurnContext(keys=keys, vector=normalize_rows(mixed[None, :])[0])


def batch_vectors(memories: Sequence[MemoryItem], turn_vectors: np.ndarray) -> dict[str, np.ndarray]:
    """Each memory's vector mixed with its neighbours inside one batch only (no store): what the guard
    compares with the scope's recent memories before anything is written."""
    own = {memory.id: turn_vectors[index] for index, memory in enumerate(memories)}
    return {memories[index].id: context_of(memories, index, near, own).vector
            for index, near in enumerate(neighbours(memories))}


def refresh(store: Store, anchors: Sequence[MemoryItem], *, removed: Collection[str] = (),
            contiguous: bool = False) -> dict[str, TurnContext]:
    """The new context of every stored turn whose neighbourhood changed around ``anchors``: turns just
    written, edited or released (already applied in the current transaction), or about to be deleted
    (their ids in ``removed``, still stored). ``contiguous`` anchors (one ``add`` batch, in order) are
    looked up as one span; others one by one. Non-turn anchors are ignored."""
    turns = [anchor for anchor in anchors if anchor.is_turn]
    if not turns:
        return {}
    if contiguous:
        ordered = sorted(turns, key=lambda turn: turn.began_at)
        spans = [(ordered[0], ordered[-1])]
    else:
        spans = [(turn, turn) for turn in turns]
    wanted = {turn.id for turn in turns}
    updates: dict[str, TurnContext] = {}
    for first, last in spans:
        sequence = store.turns_around(first.id, last.id, 2 * CONTEXT_TURNS)
        positions = [index for index, turn in enumerate(sequence) if turn.id in wanted]
        affected = {sequence[i].id for p in positions
                    for i in range(max(0, p - CONTEXT_TURNS), min(len(sequence), p + CONTEXT_TURNS + 1))}
        kept = [turn for turn in sequence if turn.id not in removed]
        vectors = store.get_turn_vectors([turn.id for turn in kept])
        for index, near in enumerate(neighbours(kept)):
            turn = kept[index]
            if turn.id in affected and turn.id in vectors and all(kept[p].id in vectors for p, _ in near):
                updates[turn.id] = context_of(kept, index, near, vectors)
    return updates
