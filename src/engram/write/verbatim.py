"""Write path, offline derivation: every conversational episode becomes one verbatim memory.

The memory's text is the message itself; once stored, its context keys hold the text of the
neighbouring turns (``engram.write.context``), so a turn is found by its context without changing what
is returned or what it cites. The speaker's name is not a key: the ranker matches names explicitly
(``speaker`` feature), and as a key it would make every turn of a person match any question naming them."""

from __future__ import annotations

from datetime import datetime

from engram.models import Episode, MemoryItem, MemoryKind, SourceRef, content_hash

#: Roles whose messages are instructions to a model, not things that happened: kept as episodes only.
NON_MEMORY_ROLES = frozenset({"system", "developer"})


def source_ref(episode: Episode) -> SourceRef:
    """The citation of an episode."""
    return SourceRef(id=episode.id, occurred_at=episode.occurred_at, role=episode.role, name=episode.name,
                     metadata=episode.metadata)


def verbatim_memories(episodes: list[Episode], *, valid_to: datetime | None = None) -> list[MemoryItem]:
    """One ``episode``-kind memory per remembered episode, citing exactly that episode (valid until
    ``valid_to`` when given: ``add(expiration_date=...)``)."""
    return [
        MemoryItem(
            memory=episode.content, kind=MemoryKind.EPISODE.value, user_id=episode.user_id, agent_id=episode.agent_id,
            run_id=episode.run_id, metadata=dict(episode.metadata), sources=[source_ref(episode)],
            valid_from=episode.occurred_at, valid_to=valid_to, created_at=episode.recorded_at,
            updated_at=episode.recorded_at, hash=content_hash(episode.content), writer=episode.role,
        )
        for episode in episodes
        if episode.role not in NON_MEMORY_ROLES
    ]
