"""The write path as a pipeline, mirroring ``engram.read.pipeline``:

    messages -> episodes -> verbatim turns -> embeddings -> screening (guard, LLM consensus)
             -> commit [supersession, store, conversation context] -> LLM facts (``llm_pending``, optional)

Each step is a small function over an ``AddDraft``. The commit runs under the scope's lock: the new
records, the stale facts they supersede and the rebuilt context of the neighbouring turns are written
in one transaction. The LLM step runs after the commit, so an LLM failure never loses what was said.

``run_update``, ``run_delete`` and ``run_release`` are the other writes to a stored memory; each keeps
the conversation context of its neighbours true (``engram.write.context.refresh``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from concurrent.futures import wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from engram.config import EngramConfig
from engram.embed.base import Embedder
from engram.errors import EngramError, ValidationError
from engram.llm.base import LLM, UsageLog
from engram.models import (
    AddEvent,
    AddResponse,
    Episode,
    HistoryEvent,
    HistoryEventType,
    MemoryItem,
    MemoryStatus,
    Scope,
    content_hash,
)
from engram.store.base import ChangeSet, Store
from engram.timeutil import utcnow
from engram.write.context import batch_vectors, refresh
from engram.write.infer import infer
from engram.write.ingest import to_episodes
from engram.write.keys import embedding_input, turn_embeddings, turn_embeddings_soon
from engram.write.quarantine import PreparedScreening, judge_memories, prepare_screening, screen_text
from engram.write.verbatim import verbatim_memories

if TYPE_CHECKING:
    from engram.guard import Guard, Verdict

#: Store setting holding the random key of the erasure pseudonyms (created on first delete).
ERASURE_KEY_SETTING = "erasure_key"
OFFLINE_NOTE = ("no LLM configured: messages were stored verbatim (as with infer=False); "
                "set ENGRAM_LLM_BASE_URL / ENGRAM_LLM_MODEL to enable fact extraction")


@dataclass
class AddDraft:
    """What one ``add`` carries from step to step."""

    scope: Scope
    episodes: list[Episode]
    memories: list[MemoryItem] = field(default_factory=list)
    turn_vectors: dict[str, np.ndarray] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    usage: UsageLog = field(default_factory=UsageLog)


@dataclass(frozen=True)
class WriteContext:
    """The collaborators every write step may use."""

    store: Store
    embedder: Embedder
    config: EngramConfig
    guard: Guard | None = None
    llm: LLM | None = None


def run_add(context: WriteContext, messages: Any, *, scope: Scope, metadata: dict[str, Any], timestamp: Any,
            infer_facts: bool, valid_to: datetime | None = None, instructions: str | None = None) -> AddResponse:
    """Remember ``messages`` in ``scope`` (valid until ``valid_to`` when given; ``instructions`` added to the
    LLM extraction prompt); returns what was written (mem0-style ``results``)."""
    use_llm = infer_facts and context.llm is not None
    draft = draft_episodes(messages, scope=scope, metadata=metadata, timestamp=timestamp,
                           context=context, pending=use_llm, valid_to=valid_to)
    prepared = embed_and_prepare(draft, context)
    screen(draft, context, prepared)
    commit(draft, context)
    response = AddResponse(
        results=[AddEvent(id=m.id, memory=m.memory, event=HistoryEventType.ADD, kind=m.kind,
                          episode_ids=m.source_ids, status=m.status) for m in draft.memories],
        episodes=[episode.id for episode in draft.episodes],
        infer="llm" if use_llm else "offline" if infer_facts else "off",
        notes=[*draft.notes, *([OFFLINE_NOTE] if infer_facts and not use_llm else [])],
    )
    if use_llm:
        llm_pending(context, draft.episodes, draft.scope, response, draft.usage, instructions)
    if use_llm or draft.usage.summary().calls:
        response.usage = draft.usage.summary().to_dict()
    return response


def draft_episodes(messages: Any, *, scope: Scope, metadata: dict[str, Any], timestamp: Any,
                   context: WriteContext, pending: bool, valid_to: datetime | None = None) -> AddDraft:
    """Validate the messages into episodes (``pending`` LLM extraction when it will run) and their
    verbatim turns; nothing is stored yet."""
    episodes = to_episodes(messages, scope=scope, metadata=metadata, timestamp=timestamp,
                           limits=context.config.limits)
    if pending:
        episodes = [episode.model_copy(update={"extraction": "pending"}) for episode in episodes]
    return AddDraft(scope=scope, episodes=episodes, memories=verbatim_memories(episodes, valid_to=valid_to))


def embed_turns(draft: AddDraft, embedder: Embedder) -> None:
    """Embed every new turn once (its own embedding, before any neighbour mixing)."""
    _set_turn_vectors(draft, turn_embeddings(draft.memories, embedder))


def _set_turn_vectors(draft: AddDraft, matrix: np.ndarray) -> None:
    draft.turn_vectors = {memory.id: matrix[index] for index, memory in enumerate(draft.memories)}


def embed_and_prepare(draft: AddDraft, context: WriteContext) -> PreparedScreening | None:
    """Embed the new turns (``embed_turns``) and, with a guard, prepare their screening meanwhile: the
    model runs on a background thread while this one reads the scope's recent records and scores the
    turns' patterns, which need no vectors. Returns the prepared screening (None without a guard)."""
    if context.guard is None or not draft.memories:
        embed_turns(draft, context.embedder)
        return None
    pending = turn_embeddings_soon(draft.memories, context.embedder)
    try:
        prepared = _prepare_screening(draft, context.guard, context.store)
    finally:
        wait([pending])  # never leave the model running behind a failed add
    _set_turn_vectors(draft, pending.result())
    return prepared


def _prepare_screening(draft: AddDraft, guard: Guard, store: Store) -> PreparedScreening:
    episodes = {episode.id: episode for episode in draft.episodes}
    return prepare_screening(guard, store, draft.scope, draft.memories, episodes)


def screen(draft: AddDraft, context: WriteContext, prepared: PreparedScreening | None = None) -> None:
    """Set each turn's writer and quarantine suspicious ones (offline guard, then, with an LLM, the
    consensus check of less trusted records against related trusted memories); ``prepared``: the
    screening ``embed_and_prepare`` began."""
    if context.guard is None or not draft.memories:
        return
    matrix = np.stack([draft.turn_vectors[memory.id] for memory in draft.memories])
    vectors = batch_vectors(draft.memories, matrix)
    if prepared is None:
        prepared = _prepare_screening(draft, context.guard, context.store)
    draft.memories, draft.verdicts = judge_memories(context.guard, prepared, draft.memories, vectors)
    if context.llm is not None and context.config.guard_consensus:
        from engram.guard.consensus import consensus_check

        checked = consensus_check(context.llm, context.store, draft.memories, draft.verdicts, vectors,
                                  usage=draft.usage, min_confidence=context.config.guard_consensus_confidence)
        draft.memories = checked.memories
        draft.notes.extend(checked.notes)


def commit(draft: AddDraft, context: WriteContext) -> None:
    """Under the scope's lock: detect the facts the new turns supersede, store everything, then rebuild
    the conversation context of the new turns and of their stored neighbours, in one transaction."""
    from engram.write.supersede import SupersessionPlan, detect_supersessions  # its patterns compile on first write

    store = context.store
    with store.locked(draft.scope):
        superseded = (detect_supersessions(store, draft.memories, draft.turn_vectors) if context.config.supersession
                      else SupersessionPlan(new_memories=draft.memories))
        draft.memories = superseded.new_memories
        history = [HistoryEvent(memory_id=m.id, event=HistoryEventType.ADD, new_memory=m.memory, actor="add",
                                user_id=m.user_id, agent_id=m.agent_id, run_id=m.run_id) for m in draft.memories]
        store.apply(ChangeSet(episodes=draft.episodes, memories=[*draft.memories, *superseded.closed],
                              vectors=dict(draft.turn_vectors), turn_vectors=draft.turn_vectors,
                              history=[*history, *superseded.history]))
        store.apply(ChangeSet(context=refresh(store, draft.memories, contiguous=True)))
    draft.notes.extend(superseded.notes)


def llm_pending(context: WriteContext, episodes: list[Episode], scope: Scope, response: AddResponse,
                usage: UsageLog, instructions: str | None = None) -> None:
    """The LLM step: extract and consolidate facts from stored ``episodes`` into ``response``; on failure
    the episodes stay ``pending`` for ``engram maintain``."""
    assert context.llm is not None
    try:
        outcome = infer(context.store, context.embedder, context.llm, episodes, scope, usage, guard=context.guard,
                        instructions=instructions)
    except EngramError as exc:
        response.pending = [episode.id for episode in episodes]
        response.notes.append(f"fact extraction failed; messages kept as pending for `engram maintain`: {exc}")
    else:
        response.results.extend(outcome.events)
        response.pending = outcome.pending_episode_ids
        response.notes.extend(outcome.notes)


def run_update(context: WriteContext, current: MemoryItem, text: str, metadata: dict[str, Any] | None, *,
               writer_role: str = "user", validity: dict[str, Any] | None = None) -> MemoryItem:
    """Replace a memory's text (and metadata, and ``validity`` fields such as ``valid_to``, when given)
    after the guard screened the new text as written by ``writer_role``; the old text stays in history,
    the change's writer and verdict with it. A turn's neighbours are re-indexed with its new words."""
    from engram.write.supersede import restated

    own = context.embedder.embed([embedding_input(current.model_copy(update={"memory": text}))])[0]
    verdict = screen_text(context.guard, context.store, current, text, writer_role, own)
    with context.store.locked(current.scope):
        stored = context.store.get_memories([current.id])
        if not stored:
            raise ValidationError("was deleted while it was being updated", field="memory_id")
        current = stored[0]
        now = utcnow()
        new_metadata = dict(metadata if metadata is not None else current.metadata)
        update: dict[str, Any] = {"memory": text, "hash": content_hash(text), "updated_at": now,
                                  "metadata": new_metadata, **(validity or {})}
        event_metadata: dict[str, Any] = {}
        if verdict is not None:
            update["writer"] = verdict.writer
            event_metadata["writer"] = verdict.writer
            if verdict.quarantine:
                update["status"] = MemoryStatus.QUARANTINED.value
                new_metadata["guard"] = verdict.to_dict()
                event_metadata["guard"] = verdict.to_dict()
        updated = current.model_copy(update=update)
        if updated.is_turn:
            updated = restated(updated)
        event = HistoryEvent(memory_id=current.id, event=HistoryEventType.UPDATE, old_memory=current.memory,
                             new_memory=text, created_at=now, actor="update", user_id=current.user_id,
                             agent_id=current.agent_id, run_id=current.run_id, metadata=event_metadata)
        context.store.apply(ChangeSet(memories=[updated], vectors={current.id: own}, turn_vectors={current.id: own},
                                      history=[event]))
        context.store.apply(ChangeSet(context=refresh(context.store, [current])))
    return updated


def run_delete(store: Store, memories: Sequence[MemoryItem], *, delete_episodes: Sequence[str] = (),
               whole_scope: bool = False) -> None:
    """Delete ``memories`` (already read inside the caller's lock) everywhere they live, keeping
    content-free tombstones; re-index their neighbours without them, and reopen the facts that a
    deleted memory had superseded. ``whole_scope``: the scope is erased, so there is nothing to re-index
    or reopen, and its history keeps only keyed hashes of the scope ids (``pseudonym``)."""
    from engram.write.supersede import reopen_superseded

    ids = [memory.id for memory in memories]
    doomed = set(ids)
    hidden: dict[str, Scope] = {}
    if whole_scope:
        key = store.setting(ERASURE_KEY_SETTING, secrets.token_hex(32))
        hidden = {memory.id: pseudonymous_scope(memory.scope, key) for memory in memories}
    own_episodes = [source.id for memory in memories if memory.is_turn for source in memory.sources]
    tombstones = [HistoryEvent(memory_id=m.id, event=HistoryEventType.DELETE, actor="delete",
                               **hidden.get(m.id, m.scope).model_dump()) for m in memories]
    reopened, reopen_history = ([], []) if whole_scope else reopen_superseded(store, memories, doomed)
    contexts = {} if whole_scope else refresh(store, memories, removed=doomed)
    store.apply(ChangeSet(memories=reopened, context=contexts, delete_memories=ids,
                          delete_episodes=list(delete_episodes), delete_episodes_if_orphaned=own_episodes,
                          erase_history_text=ids, history_scopes=hidden, history=[*tombstones, *reopen_history]))


def pseudonym(value: str, key: str) -> str:
    """A keyed hash standing for an erased scope id (HMAC-SHA256 with the store's erasure key)."""
    return "erased:" + hmac.new(key.encode(), value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


def pseudonymous_scope(scope: Scope, key: str) -> Scope:
    """``scope`` with every id replaced by its ``pseudonym``."""
    return Scope(**{column: pseudonym(value, key) for column, value in scope.items()})


def run_release(store: Store, current: MemoryItem) -> None:
    """Let a quarantined memory back into search (recorded in its history); a released turn becomes
    its neighbours' context again."""
    with store.locked(current.scope):
        released = current.model_copy(update={"status": MemoryStatus.ACTIVE.value, "updated_at": utcnow()})
        event = HistoryEvent(memory_id=current.id, event=HistoryEventType.UPDATE, old_memory=current.memory,
                             new_memory=current.memory, actor="quarantine.release", user_id=current.user_id,
                             agent_id=current.agent_id, run_id=current.run_id, metadata={"status": "active"})
        store.apply(ChangeSet(memories=[released], history=[event]))
        store.apply(ChangeSet(context=refresh(store, [released])))
