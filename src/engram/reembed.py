"""Re-embedding a store in place: every memory's vectors computed again by another embedder, resumably.

A store records the signature of the embedder that filled it and refuses any other (``Memory.embedder``).
:func:`reembed_store` moves a store to a new embedder without copying it:

1. **embed**: memories are walked in id order, ``batch_size`` at a time; each batch's texts are embedded
   by the new embedder and its vectors replaced (a turn's own vector and, for now, its stored one) in one
   transaction that also records the progress;
2. **mix**: the same walk again, without the embedder: each turn's stored vector becomes its own new
   vector mixed with its conversation neighbours' (``engram.write.context``), as a fresh write would
   have made it;
3. the store's embedder setting becomes the new signature (PostgreSQL also fixes the vector dimension
   again and rebuilds its HNSW index).

While it is under way the store's embedder setting holds a progress marker (``reembed:{...}``) instead of
a signature, so an interrupted run (Ctrl-C, a crash, SIGKILL) loses at most the batch it was in, and
the next run resumes where it stopped. Meanwhile the store holds vectors of both models: anything that
embeds or searches (``add``, ``search``, ``update``, imports; any embedder) is refused with
:class:`~engram.errors.ReembedPendingError`; reads that need no vectors (``get``, ``get_all``,
``history``, ``stats``) and deletes keep working. An export made meanwhile carries the marker, so an
import embeds its memories again. Run one re-embedding of a store at a time."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engram.embed.base import Embedder
from engram.errors import ConfigurationError, ReembedPendingError, ValidationError
from engram.models import MemoryItem
from engram.store.base import Store
from engram.write.context import CONTEXT_TURNS, context_of, neighbours
from engram.write.keys import embedding_input

#: Prefix of the embedder setting while a re-embedding is under way (the rest is its JSON progress).
PENDING_PREFIX = "reembed:"
DEFAULT_BATCH_SIZE = 64
PHASES = ("embed", "mix")

#: Called after each committed batch with ``(phase, memories done in that phase, memories in the store)``.
ProgressCallback = Callable[[str, int, int], None]


@dataclass
class ReembedState:
    """Progress of a re-embedding, kept in the store's embedder setting until it is done."""

    source: str
    target: str
    phase: str = "embed"
    after: str = ""
    done: int = 0
    total: int = 0

    def marker(self) -> str:
        return PENDING_PREFIX + json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def parse(cls, setting: str) -> ReembedState | None:
        """The state a marker holds; None for a plain signature."""
        if not setting.startswith(PENDING_PREFIX):
            return None
        try:
            state = cls(**json.loads(setting[len(PENDING_PREFIX):]))
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"unreadable re-embedding progress in the store: {exc}", field="embedder",
                                     hint="run `engram reembed` again to start over") from None
        if state.phase not in PHASES:
            raise ConfigurationError(f"unknown re-embedding phase {state.phase!r}", field="embedder",
                                     hint="run `engram reembed` again to start over")
        return state


@dataclass
class ReembedReport:
    """What one :func:`reembed_store` call did. ``finished``: the store now uses ``target``."""

    source: str
    target: str
    finished: bool
    resumed: bool
    memories: int
    embedded: int
    mixed: int
    batches: int
    seconds: float
    phase: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The settings that select the embedders of earlier defaults, by the signature their stores record.
EARLIER_DEFAULTS = {"onnx:all-MiniLM-L6-v2-int8:384": "ENGRAM_EMBED_PROVIDER=onnx"}


def embedder_hint(stored: str) -> str:
    """How to open a store built with another embedder: select that one, or move the data to a new store."""
    setting = EARLIER_DEFAULTS.get(stored)
    same = f"select it ({setting}, the default before 0.2)" if setting else "configure the same embedder"
    return (f"{same}, or move the store to the configured one in place with `engram reembed` "
            "(Memory.reembed())")


def signature_error(stored: str, wanted: str) -> ConfigurationError:
    """The error for opening a store recorded as ``stored`` with an embedder of signature ``wanted``:
    a ``ReembedPendingError`` while a re-embedding is under way, else a ``ConfigurationError`` saying how
    to open it (``embedder_hint``)."""
    state = ReembedState.parse(stored)
    if state is not None:
        return ReembedPendingError(
            f"this store is being re-embedded from {state.source!r} to {state.target!r} ({state.phase} phase, "
            f"{state.done} of {state.total} memories done); its vectors are not usable until that finishes",
            field="embedder", hint="run `engram reembed` (or Memory.reembed()) with the target embedder to finish")
    return ConfigurationError(f"this store was built with embedder {stored!r}, not {wanted!r}", field="embedder",
                              hint=embedder_hint(stored))


def reembed_store(store: Store, embedder: Embedder, *, batch_size: int = DEFAULT_BATCH_SIZE,
                  max_batches: int | None = None, progress: ProgressCallback | None = None) -> ReembedReport:
    """Re-embed every memory of ``store`` with ``embedder``, resuming an interrupted run to the same target.

    Each batch of ``batch_size`` memories is committed in its own transaction with the progress; the
    store's embedder signature changes only when everything is done. ``max_batches`` stops after that many
    batches (the next call resumes). A pending run to another target starts over for the new one (every
    vector is computed again from the text, so nothing is lost). A store already on ``embedder`` is left as
    it is."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError("must be a positive integer", field="batch_size")
    if max_batches is not None and (isinstance(max_batches, bool) or not isinstance(max_batches, int)
                                    or max_batches < 0):
        raise ValidationError("must be a non-negative integer or None", field="max_batches")
    started = time.perf_counter()
    target = embedder.signature
    stored = store.embedder_signature(target)
    state = ReembedState.parse(stored)
    resumed = state is not None and state.target == target
    total = int(store.stats()["memories"])
    if state is None and stored == target:
        return ReembedReport(stored, target, True, False, total, 0, 0, 0, round(time.perf_counter() - started, 3),
                             "done")
    if state is None or state.target != target:
        state = ReembedState(source=state.source if state else stored, target=target, total=total)
    state.total = total
    counts = {"embed": 0, "mix": 0, "batches": 0}
    while max_batches is None or counts["batches"] < max_batches:
        ids = store.memory_ids(after=state.after, limit=batch_size)
        if not ids:
            if state.phase == "mix":
                store.replace_vectors({}, {}, embedder=target, dim=embedder.dim)
                return _report(state, True, resumed, counts, started)
            state.phase, state.after, state.done = "mix", "", 0
            store.replace_vectors({}, {}, embedder=state.marker())
            continue
        memories = store.get_memories(ids)
        vectors, turn_vectors = (_embedded(memories, embedder) if state.phase == "embed"
                                 else (_mixed(store, memories), {}))
        state.after, state.done = ids[-1], state.done + len(ids)
        store.replace_vectors(vectors, turn_vectors, embedder=state.marker())
        counts[state.phase] += len(vectors)
        counts["batches"] += 1
        if progress is not None:
            progress(state.phase, min(state.done, total), total)
    return _report(state, False, resumed, counts, started)


def _embedded(memories: list[MemoryItem], embedder: Embedder) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each memory's new own vector, twice: as its own vector and, until the mix phase, as its stored one."""
    if not memories:
        return {}, {}
    matrix = np.asarray(embedder.embed([embedding_input(memory) for memory in memories]), dtype=np.float32)
    if matrix.shape != (len(memories), embedder.dim):
        raise ConfigurationError(f"the embedder returned vectors of shape {matrix.shape}, expected "
                                 f"({len(memories)}, {embedder.dim})", field="embedder")
    vectors = {memory.id: matrix[index] for index, memory in enumerate(memories)}
    return vectors, vectors


def _mixed(store: Store, memories: list[MemoryItem]) -> dict[str, np.ndarray]:
    """The stored vector of each turn among ``memories``: its own vector mixed with its neighbours', as
    ``engram.write.context.refresh`` computes it (turns outside any conversation keep their own)."""
    placed: list[tuple[list[MemoryItem], int, list[tuple[int, int]]]] = []
    around = store.turns_around_each([memory.id for memory in memories if memory.is_turn], CONTEXT_TURNS)
    for memory in memories:
        if not memory.is_turn:
            continue
        sequence = around[memory.id]
        position = next((index for index, turn in enumerate(sequence) if turn.id == memory.id), None)
        if position is not None:
            placed.append((sequence, position, neighbours(sequence)[position]))
    own = store.get_turn_vectors(list({turn.id for sequence, _, _ in placed for turn in sequence}))
    return {sequence[position].id: context_of(sequence, position, near, own).vector
            for sequence, position, near in placed
            if sequence[position].id in own and all(sequence[p].id in own for p, _ in near)}


def _report(state: ReembedState, finished: bool, resumed: bool, counts: dict[str, int],
            started: float) -> ReembedReport:
    return ReembedReport(source=state.source, target=state.target, finished=finished, resumed=resumed,
                         memories=state.total, embedded=counts["embed"], mixed=counts["mix"],
                         batches=counts["batches"], seconds=round(time.perf_counter() - started, 3),
                         phase="done" if finished else state.phase)
