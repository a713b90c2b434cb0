"""Write path, quarantine: every new memory passes the poisoning guard (``engram.guard.screen``) before it is stored.

The guard sees the record, who wrote it (role, name, metadata) and the scope's recent records; a
suspicious record is still stored (nothing acknowledged is lost) but with ``status="quarantined"``,
which search and listing exclude until an admin releases it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engram.models import Episode, MemoryItem, MemoryStatus, Scope
from engram.store.base import ListQuery, RecentText, Store

if TYPE_CHECKING:
    from engram.guard import Guard, Verdict
    from engram.guard.screen import Screening

RECENT_CONTEXT = 30


@dataclass
class PreparedScreening:
    """The screening of a batch before its vectors exist: the scope's recent records (oldest first) and each
    new memory's ``Guard.prepare`` (provenance and pattern signals)."""

    recent: list[RecentText]
    screenings: list[Screening]


def prepare_screening(guard: Guard, store: Store, scope: Scope, memories: Sequence[MemoryItem],
                      episodes: dict[str, Episode]) -> PreparedScreening:
    """What the guard needs of ``memories`` besides their vectors (the write path runs it while they are
    being embedded): the scope's recent records and each memory's pattern signals."""
    recent = list(reversed(store.recent_texts(ListQuery(scope=scope, limit=RECENT_CONTEXT))))
    screenings = []
    for memory in memories:
        source = episodes.get(memory.source_ids[0]) if memory.source_ids else None
        screenings.append(guard.prepare(memory.memory, role=source.role if source else memory.writer,
                                        metadata=source.metadata if source else memory.metadata,
                                        name=source.name if source else None))
    return PreparedScreening(recent=recent, screenings=screenings)


def judge_memories(guard: Guard, prepared: PreparedScreening, memories: Sequence[MemoryItem],
                   vectors: dict[str, np.ndarray]) -> tuple[list[MemoryItem], list[Verdict]]:
    """The ``prepare``d memories with provenance (``writer``) set and suspicious ones quarantined, and their
    verdicts: each is judged against the scope's recent records and the batch's earlier memories."""
    from engram.guard import GuardContext

    texts = [memory.text for memory in prepared.recent]
    writers = [memory.writer for memory in prepared.recent]
    rows = [memory.vector for memory in prepared.recent if memory.vector is not None]
    aligned = len(rows) == len(texts)
    screened = []
    verdicts = []
    for memory, screening in zip(memories, prepared.screenings, strict=True):
        vector = vectors.get(memory.id)
        with_vectors = aligned and vector is not None and bool(rows)
        context = GuardContext(
            recent_texts=texts[-RECENT_CONTEXT:], recent_writers=writers[-RECENT_CONTEXT:],
            recent_embeddings=np.stack(rows[-RECENT_CONTEXT:]) if with_vectors else None,
            embedding=vector if with_vectors else None,
        )
        verdict = guard.judge(screening, context)
        update: dict[str, object] = {"writer": verdict.writer}
        if verdict.quarantine:
            update["status"] = MemoryStatus.QUARANTINED.value
            update["metadata"] = {**memory.metadata, "guard": verdict.to_dict()}
        screened.append(memory.model_copy(update=update))
        verdicts.append(verdict)
        texts.append(memory.memory)
        writers.append(verdict.writer)
        if aligned and vector is not None:
            rows.append(vector)
        else:
            aligned = False
    return screened, verdicts


def screen_memories(guard: Guard, store: Store, scope: Scope, memories: Sequence[MemoryItem],
                    vectors: dict[str, np.ndarray], episodes: dict[str, Episode]
                    ) -> tuple[list[MemoryItem], list[Verdict]]:
    """The memories with provenance (``writer``) set and suspicious ones quarantined, and their verdicts."""
    return judge_memories(guard, prepare_screening(guard, store, scope, memories, episodes), memories, vectors)


def screen_text(guard: Guard | None, store: Store, memory: MemoryItem, text: str, role: str,
                vector: np.ndarray) -> Verdict | None:
    """The guard's verdict on ``text`` replacing ``memory``'s, written by ``role`` (None without a guard):
    an edit passes the same screening as an ``add``."""
    if guard is None:
        return None
    edited = memory.model_copy(update={"memory": text, "writer": role})
    return screen_memories(guard, store, memory.scope, [edited], {memory.id: vector}, {})[1][0]
