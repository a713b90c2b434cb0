"""The storage interface. The write and read pipelines talk to storage only through ``Store``;
SQL and dialect details live in the implementations (``sqlite.py``, ``postgres.py``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engram.errors import ConfigurationError
from engram.filters import FilterNode
from engram.models import Episode, ExtractionState, HistoryEvent, MemoryItem, MemoryStatus, Scope

if TYPE_CHECKING:
    import numpy as np

#: The ``meta`` key under which a store records the signature of the embedder its vectors came from.
EMBEDDER_SETTING = "embedder"


@dataclass(frozen=True)
class TurnContext:
    """What a turn is found by besides its own words: the text of its neighbours (``context_keys``)
    and its stored vector (its own embedding mixed with its neighbours')."""

    keys: str
    vector: np.ndarray


@dataclass
class ChangeSet:
    """Everything one public write changes. ``Store.apply`` commits it atomically: all or nothing.

    Applied in this order: insert ``episodes``; set ``update_episode_extraction`` states; upsert
    ``memories`` by id (the new row replaces the old one, with its sources, FTS entry and, when given in
    ``vectors``, its unit-length float32 embedding; ``turn_vectors`` holds a turn's own embedding before
    neighbour mixing); set the ``context`` of turns (their ``context_keys``, FTS entry and stored
    vector); delete ``delete_memories`` (with sources, vectors and
    index entries); delete ``delete_episodes``; delete each of ``delete_episodes_if_orphaned`` that no
    remaining memory cites; blank ``old_memory``/``new_memory`` of every history event of the memories in
    ``erase_history_text`` (content-free tombstones stay), and set the scope ids of every history event of
    the memories in ``history_scopes`` (erasure keeps only keyed hashes of them); insert ``history``."""

    episodes: list[Episode] = field(default_factory=list)
    memories: list[MemoryItem] = field(default_factory=list)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    turn_vectors: dict[str, np.ndarray] = field(default_factory=dict)
    context: dict[str, TurnContext] = field(default_factory=dict)
    history: list[HistoryEvent] = field(default_factory=list)
    delete_memories: list[str] = field(default_factory=list)
    delete_episodes: list[str] = field(default_factory=list)
    delete_episodes_if_orphaned: list[str] = field(default_factory=list)
    erase_history_text: list[str] = field(default_factory=list)
    history_scopes: dict[str, Scope] = field(default_factory=dict)
    update_episode_extraction: dict[str, ExtractionState] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.episodes or self.memories or self.history or self.delete_memories or self.delete_episodes
                    or self.delete_episodes_if_orphaned or self.erase_history_text or self.update_episode_extraction
                    or self.context)



#: Most turns ``Store.turns_around`` returns between its two anchors.
MAX_TURN_SPAN = 20_000


@dataclass(frozen=True)
class Candidate:
    """A memory id with one retrieval signal's raw score (higher is better)."""

    memory_id: str
    score: float


@dataclass
class CandidatePool:
    """A search's candidates read together (:meth:`Store.candidate_pool`): each signal's ranked list, the
    pooled memories (the lexical list's, then the dense list's not already in it, each once, in that order)
    and the query vector's similarity to each pooled memory that has a vector (its dense score when it has
    one)."""

    lexical: list[Candidate] | None
    dense: list[Candidate] | None
    memories: list[MemoryItem]
    similarity: dict[str, float]

    @property
    def rankings(self) -> dict[str, list[Candidate]]:
        """The ranked lists by signal name (``lexical``, ``dense``), only those that were asked for."""
        return {name: found for name, found in (("lexical", self.lexical), ("dense", self.dense))
                if found is not None}


@dataclass(frozen=True)
class ListQuery:
    """Which memories to list: a scope (required by the facade), optional filters, paging."""

    scope: Scope
    node: FilterNode | None = None
    limit: int = 100
    offset: int = 0
    include_invalid: bool = True
    include_quarantined: bool = False
    include_archived: bool = False
    kinds: tuple[str, ...] = ()

    def statuses(self) -> tuple[str, ...] | None:
        """The memory statuses this query selects (None: every status)."""
        if self.include_quarantined and self.include_archived:
            return None
        extra = ((MemoryStatus.QUARANTINED.value,) if self.include_quarantined else ()) + (
            (MemoryStatus.ARCHIVED.value,) if self.include_archived else ())
        return (MemoryStatus.ACTIVE.value, *extra)


@dataclass(frozen=True)
class RecentText:
    """A stored memory as the guard compares a new record with it (``Store.recent_texts``)."""

    id: str
    text: str
    writer: str
    vector: np.ndarray | None  # its stored vector; None when it has none


class Store(ABC):
    """Durable home of episodes, memories, history and their lexical and vector indexes."""

    @abstractmethod
    def apply(self, changes: ChangeSet) -> None:
        """Commit ``changes`` in one transaction (inside ``locked`` when one is open)."""

    @abstractmethod
    def locked(self, scope: Scope) -> AbstractContextManager[None]:
        """Serialise read-decide-write sequences for ``scope`` across threads and processes.

        Reads and ``apply`` calls made inside see a consistent state and commit together."""

    @abstractmethod
    def get_memories(self, ids: Sequence[str]) -> list[MemoryItem]:
        """The memories with these ids, in the given order; unknown ids are skipped."""

    @abstractmethod
    def memories_citing(self, episode_ids: Sequence[str], *, kind: str | None = None) -> list[MemoryItem]:
        """Memories (optionally of one kind) whose sources include any of these episodes."""

    @abstractmethod
    def list_memories(self, query: ListQuery) -> list[MemoryItem]:
        """Memories in a scope matching the filters, newest first."""

    def recent_texts(self, query: ListQuery) -> list[RecentText]:
        """The id, text, writer and stored vector of each memory ``list_memories(query)`` returns, in its
        order; stores override it to skip building whole memories (the guard reads it at every add)."""
        memories = self.list_memories(query)
        vectors = self.get_vectors([memory.id for memory in memories])
        return [RecentText(memory.id, memory.memory, memory.writer, vectors.get(memory.id)) for memory in memories]

    @abstractmethod
    def count_memories(self, query: ListQuery) -> int:
        """How many memories ``list_memories`` would return without paging."""

    @abstractmethod
    def get_episodes(self, ids: Sequence[str]) -> list[Episode]:
        """The episodes with these ids, in the given order; unknown ids are skipped."""

    @abstractmethod
    def list_episodes(self, scope: Scope, *, limit: int = 1000, offset: int = 0,
                      extraction: ExtractionState | None = None) -> list[Episode]:
        """Episodes in a scope in event-time order (optionally only one extraction state)."""

    @abstractmethod
    def history(self, memory_id: str) -> list[HistoryEvent]:
        """Every recorded change to a memory, oldest first."""

    @abstractmethod
    def lexical_search(self, terms: Sequence[str], query: ListQuery) -> list[Candidate]:
        """BM25-ranked active, valid memories in scope containing any of ``terms``."""

    @abstractmethod
    def vector_search(self, vector: np.ndarray, query: ListQuery) -> list[Candidate]:
        """Active, valid memories in scope by cosine similarity to ``vector``."""

    @abstractmethod
    def get_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored embeddings of these memories."""

    def candidate_pool(self, terms: Sequence[str], lexical: ListQuery | None, vector: np.ndarray | None,
                       dense: ListQuery | None) -> CandidatePool:
        """The lexical search of ``terms`` (unless ``lexical`` is None), the vector search of ``vector``
        (unless ``dense`` or ``vector`` is None), the memories they found, and ``vector``'s inner product with
        each of them (when given). Here: those calls one after another; a store with round trips to a
        server makes them one."""
        lexical_found = None if lexical is None else self.lexical_search(terms, lexical)
        dense_found = None if dense is None or vector is None else self.vector_search(vector, dense)
        pool = list(dict.fromkeys(c.memory_id for c in [*(lexical_found or []), *(dense_found or [])]))
        memories = self.get_memories(pool)
        similarity = {c.memory_id: c.score for c in dense_found or []}
        missing = [memory_id for memory_id in pool if memory_id not in similarity]
        if vector is not None and missing:
            import numpy  # a search has it loaded already; importing this module must not

            similarity.update((memory_id, float(numpy.dot(stored, vector)))
                              for memory_id, stored in self.get_vectors(missing).items())
        return CandidatePool(lexical_found, dense_found, memories, similarity)

    @abstractmethod
    def get_turn_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Each memory's own embedding before neighbour mixing (its stored vector when none was kept)."""

    @abstractmethod
    def memory_ids(self, *, after: str = "", limit: int = 1000) -> list[str]:
        """Up to ``limit`` ids of stored memories greater than ``after``, in id order (a resumable walk)."""

    @abstractmethod
    def replace_vectors(self, vectors: Mapping[str, np.ndarray], turn_vectors: Mapping[str, np.ndarray], *,
                        embedder: str, dim: int | None = None) -> None:
        """For re-embedding (``engram.reembed``), in one transaction: replace the stored vector of each existing
        memory in ``vectors`` (and a turn's own vector from ``turn_vectors``; unknown ids are skipped) and
        record ``embedder`` as the store's embedder setting. Vectors may change dimension: a backend with a
        fixed dimension relaxes it, and fixes it again (rebuilding its index) when ``dim`` says that every
        stored vector now has that dimension."""

    @abstractmethod
    def turns_around(self, first_id: str, last_id: str, width: int) -> list[MemoryItem]:
        """The conversation around two stored turns of one scope, in event order: the ``width`` turns
        before ``first_id``, every turn from ``first_id`` to ``last_id`` (at most ``MAX_TURN_SPAN``), and
        the ``width`` turns after ``last_id``. Turns are the ``episode``-kind memories of exactly that
        scope that are not quarantined, ordered by event time (``valid_from``), then by insertion."""

    def turns_around_each(self, ids: Sequence[str], width: int) -> dict[str, list[MemoryItem]]:
        """``turns_around(id, id, width)`` of each of ``ids``, by id. Here: one call each; a store with
        round trips to a server makes them a few."""
        return {memory_id: self.turns_around(memory_id, memory_id, width) for memory_id in dict.fromkeys(ids)}

    @abstractmethod
    def scope_ids(self, scope: Scope) -> tuple[list[str], list[str]]:
        """All memory ids and episode ids stored in ``scope`` (for delete_all and erasure)."""

    @abstractmethod
    def scope_counts(self, scope: Scope | None = None) -> list[tuple[Scope, str, int]]:
        """``(scope, kind, count)`` for every stored scope inside ``scope`` (all when None): ``kind`` is
        ``"episodes"``, or ``"status:<status>"`` for memories."""

    @abstractmethod
    def touch(self, ids: Sequence[str]) -> None:
        """Record that these memories were recalled (strength/recency signals)."""

    @abstractmethod
    def reset(self) -> None:
        """Remove everything from the store (all scopes), the record of the embedder its vectors came from
        (``EMBEDDER_SETTING``) included: an empty store takes whichever embedder writes to it next."""

    @abstractmethod
    def stats(self, scope: Scope | None = None) -> dict[str, int | str]:
        """Counts of episodes, memories, history events and the backend's facts."""

    @abstractmethod
    def iter_all(self) -> Iterator[Episode | MemoryItem | HistoryEvent]:
        """Every record, for export and migration (episodes first, then memories, then history)."""

    @abstractmethod
    def setting(self, key: str, default: str) -> str:
        """The store-wide setting ``key``, recorded as ``default`` on first use (atomic across processes)."""

    def embedder_signature(self, signature: str) -> str:
        """Record the embedder signature on first use; return the one the store was built with."""
        return self.setting(EMBEDDER_SETTING, signature)

    @abstractmethod
    def check_integrity(self, user_prefix: str = "") -> dict[str, Any]:
        """Whether the store's rows hold together: ``{"ok": bool, "orphans": {check: count}}`` plus the
        backend's own checks (``engram.store.integrity``); memories and episodes are counted only for user
        ids starting with ``user_prefix``."""

    @abstractmethod
    def purge(self) -> None:
        """Physically erase what deletes left behind: index segments, free pages, write-ahead log."""

    def backup(self, target: str) -> None:
        """Write a consistent online snapshot of the whole store to ``target``."""
        raise ConfigurationError(f"{type(self).__name__} has no built-in backup", field="target",
                                 hint="use `engram export` (lossless JSON lines) or the database's own tools")

    def restore(self, source: str) -> None:
        """Replace the store's whole content with the snapshot at ``source`` (made by ``backup``)."""
        raise ConfigurationError(f"{type(self).__name__} has no built-in restore", field="source",
                                 hint="use `engram import` of an export, or the database's own tools")

    @abstractmethod
    def close(self) -> None:
        """Release connections and files."""
