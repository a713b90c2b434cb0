"""The facade: ``Memory`` (sync; ``engram.async_memory.AsyncMemory`` is its generated async twin).

Each public method validates its input, resolves the scope, and hands off to the write pipeline
(``engram.write``) or the read pipeline (``engram.read``); storage is reached only through ``Store``."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from engram.arguments import (
    flag_argument,
    limit_argument,
    memory_id_argument,
    offset_argument,
    scope_argument,
    text_argument,
    threshold_argument,
    validate_metadata,
    validate_scope,
)
from engram.compat import mem0 as compat
from engram.config import EngramConfig
from engram.errors import ConfigurationError, NotFoundError, ValidationError
from engram.filters import Condition, parse_filters
from engram.learning import DEFAULT_PROFILE_TOKENS
from engram.learning.strength import FORGET_THRESHOLD
from engram.models import (
    MemoryItem,
    MemoryStatus,
    Scope,
    SearchResponse,
)
from engram.providers import make_embedder, make_llm, open_store
from engram.read.recipes import RetrievalRecipe, resolve_recipe
from engram.store.base import ListQuery, Store
from engram.textcheck import check_text
from engram.timeutil import to_utc

if TYPE_CHECKING:  # the pipelines are imported by the methods that run them: light commands start fast
    from engram.embed.base import Embedder
    from engram.guard import Guard
    from engram.learning.profile import ProfileCache
    from engram.llm.base import LLM
    from engram.read.replaced import PairJudge
    from engram.write.pipeline import WriteContext

class Memory:
    """Long-term memory for agents. Embedded SQLite by default::

        m = Memory()                      # ./engram.db (or $ENGRAM_HOME/engram.db)
        m = Memory(path="team.db")
        m = Memory(url="postgresql://...")
    """

    def __init__(self, path: str | None = None, url: str | None = None, *, config: EngramConfig | None = None,
                 store: Store | None = None, embedder: Embedder | None = None, llm: LLM | None = None) -> None:
        base = config or EngramConfig()
        if path is not None or url is not None:
            base = base.model_copy(update={"path": path, "url": url})
        self.config = base
        self.recipe: RetrievalRecipe = resolve_recipe(base.retrieval)
        self._store = store if store is not None else open_store(base)
        self._embedder = embedder
        self.llm = llm if llm is not None else make_llm(base.llm)
        #: Who decides read-time supersession (``engram.read.replaced.PairJudge``); None: the shipped models.
        self.pair_judge: PairJudge | None = None
        self._embedder_lock = threading.Lock()
        self._embedder_checked = False

    @classmethod
    def from_config(cls, config: dict[str, Any] | EngramConfig) -> Memory:
        """Build from a config dict, e.g. ``{"path": "a.db", "embedder": {"provider": "openai", ...}}``,
        or from a mem0-style one (``{"llm": {"provider": ..., "config": {...}}, "vector_store": ...}``,
        mapped by ``engram.compat.mem0_config``; see docs/MEM0.md)."""
        if isinstance(config, EngramConfig):
            return cls(config=config)
        from engram.compat.mem0_config import config_from_dict

        return cls(config=config_from_dict(config))

    # -- providers ------------------------------------------------------------------------------

    @functools.cached_property
    def _profile_cache(self) -> ProfileCache:
        """Profiles built so far (created on first use: the profile code is imported then)."""
        from engram.learning.profile import ProfileCache

        return ProfileCache()

    @functools.cached_property
    def guard(self) -> Guard | None:
        """The poisoning guard (built on first write: its rules compile their patterns), or None when off."""
        from engram.guard import screen

        return screen.Guard(self.config.guard_threshold) if self.config.guard else None

    @functools.cached_property
    def _llm_pair_judge(self) -> PairJudge | None:
        """The LLM's read-time judge (``engram.read.llm_judge``) when ``read_time_llm`` is on and an LLM is set."""
        from engram.read.llm_judge import llm_judge

        if not self.config.read_time_llm or self.llm is None:
            return None
        return llm_judge(self.llm, self.embedder.signature, read_pairs=self.recipe.pair_reader)

    @property
    def store(self) -> Store:
        return self._store

    @property
    def embedder(self) -> Embedder:
        """The embedder, built on first use and checked against the one the store was built with."""
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = make_embedder(self.config.embedder)
            if not self._embedder_checked:
                stored = self._store.embedder_signature(self._embedder.signature)
                if stored != self._embedder.signature:
                    from engram.reembed import signature_error

                    raise signature_error(stored, self._embedder.signature)
                self._embedder_checked = True
            return self._embedder

    # -- write ----------------------------------------------------------------------------------

    def add(self, messages: Any, *, user_id: str | None = None, agent_id: str | None = None,
            run_id: str | None = None, metadata: dict[str, Any] | None = None, timestamp: Any = None,
            infer: bool = True, filters: dict[str, Any] | None = None, expiration_date: Any = None,
            memory_type: str | None = None, prompt: str | None = None) -> dict[str, Any]:
        """Remember ``messages`` (a string, a ``{"role","content"[,"name"]}`` dict, or a list of them).

        Every message is kept losslessly as an episode with ``timestamp`` (or its own ``timestamp`` key) as
        its event time. ``expiration_date`` (``YYYY-MM-DD``: valid through that day, UTC; or a datetime) is
        when the memories stop being valid (``valid_to``): expired ones leave search and get_all. ``prompt``
        adds instructions to the LLM fact extraction. ``memory_type`` is mem0's (see docs/MEM0.md).
        Returns ``{"results": [{"id", "memory", "event", ...}], "episodes": [...]}``."""
        if compat.is_procedural(memory_type):
            task, steps = compat.procedural_case(messages)
            case = self.add_experience(task=task, outcome="success", steps=steps, metadata=metadata, user_id=user_id,
                                       agent_id=agent_id, run_id=run_id)
            return {"results": [{"id": case["id"], "memory": task, "event": "ADD", "kind": case["kind"]}],
                    "episodes": [], "infer": "off", "notes": case["notes"]}
        from engram.write.pipeline import run_add

        valid_to = compat.expiration_to_valid_to(expiration_date)
        instructions = compat.extraction_instructions(prompt)
        scope = self._scope(user_id, agent_id, run_id, filters)
        extra = validate_metadata(metadata, self.config.limits)
        response = run_add(self._writer(), messages, scope=scope, metadata=extra, timestamp=timestamp,
                           infer_facts=bool(infer), valid_to=valid_to, instructions=instructions)
        return response.model_dump(mode="json")

    def maintain(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                 limit: int = 1000) -> dict[str, Any]:
        """Retry LLM extraction for episodes left pending (all scopes when none is given)."""
        if self.llm is None:
            raise ConfigurationError("maintain needs an LLM", field="llm", hint="set ENGRAM_LLM_BASE_URL and _MODEL")
        from engram.write.scope_ops import run_maintain

        scope = validate_scope(user_id, agent_id, run_id, self.config.limits, required=False)
        return run_maintain(self._writer(), scope, limit_argument(limit, self.config.limits))

    def update(self, memory_id: str, text: str | None = None, metadata: dict[str, Any] | None = None,
               expiration_date: Any = compat.UNSET, data: str | None = None) -> dict[str, Any]:
        """Replace a memory's text (``data`` is mem0's older name for it) and/or set metadata keys (the given
        keys are set, the others kept, as in mem0) and/or its ``expiration_date`` (``None`` clears it); the
        old text stays in its history. New text passes the same poisoning guard as ``add`` (a suspicious
        edit is quarantined)."""
        from engram.write.pipeline import run_update

        text = compat.update_text(text, data, metadata, expiration_date)
        validity = compat.validity_update(expiration_date)
        if text is None or metadata is not None:
            stored = self._get_item(memory_id)
            text, metadata = stored.memory if text is None else text, compat.merged_metadata(stored.metadata, metadata)
        text = text_argument(text, "text", max_chars=self.config.limits.max_content_chars)
        new_metadata = validate_metadata(metadata, self.config.limits) if metadata is not None else None
        updated = run_update(self._writer(), self._get_item(memory_id), text, new_metadata, validity=validity)
        return {"message": "Memory updated successfully!", "id": memory_id, "memory": text,
                "status": updated.status}

    def delete(self, memory_id: str) -> dict[str, Any]:
        """Delete a memory everywhere it lives (row, indexes, history text, its neighbours' context keys),
        keeping a content-free tombstone; a verbatim memory's own episode goes with it when nothing else
        cites it, and a fact it had superseded becomes current again. An unknown id raises
        ``NotFoundError`` (a ``ValueError``, as mem0 raises, and a ``KeyError``)."""
        from engram.write.pipeline import run_delete

        current = self._get_item(memory_id)
        with self._store.locked(current.scope):
            run_delete(self._store, [self._get_item(memory_id)])
        self._store.purge()
        return {"message": "Memory deleted successfully!", "id": memory_id}

    def delete_all(self, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None, *,
                   filters: dict[str, Any] | None = None) -> dict[str, Any]:
        """Delete every memory and episode of one scope (at least one id is required). With filters beyond
        the scope ids, only the memories that match them go (quarantined and superseded ones included),
        each with its own episode when nothing else cites it."""
        from engram.write.scope_ops import run_delete_scope

        scope = self._scope(user_id, agent_id, run_id, filters)
        memories, episodes = run_delete_scope(self._store, scope, parse_filters(filters).node)
        return {"message": "Memories deleted successfully!", "deleted_memories": memories,
                "deleted_episodes": episodes}

    def quarantined(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                    limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """Memories the guard quarantined (all scopes when none is given), newest first, with its verdict."""
        scope = validate_scope(user_id, agent_id, run_id, self.config.limits, required=False)
        query = ListQuery(scope=scope, node=Condition("status", "eq", MemoryStatus.QUARANTINED.value),
                          include_quarantined=True, limit=limit_argument(limit, self.config.limits),
                          offset=offset_argument(offset))
        return {"results": [item.model_dump(mode="json") for item in self._store.list_memories(query)],
                "total": self._store.count_memories(query)}

    def release(self, memory_id: str) -> dict[str, Any]:
        """Let a quarantined memory back into search (an admin decision, recorded in its history)."""
        from engram.write.pipeline import run_release

        current = self._get_item(memory_id)
        if current.status != MemoryStatus.QUARANTINED.value:
            raise ValidationError("is not quarantined", field="memory_id")
        run_release(self._store, current)
        return {"message": "Memory released from quarantine", "id": memory_id}

    def reset(self) -> None:
        """Remove everything, for every scope; the emptied store takes the embedder that writes to it next."""
        with self._embedder_lock:
            self._store.reset()
            self._embedder_checked = False
        self._store.purge()

    def backup(self, target: str) -> None:
        """Write a consistent online snapshot of the store to ``target`` (SQLite: a database file)."""
        self._store.backup(target)

    def restore(self, source: str) -> None:
        """Replace the store's content with a snapshot made by ``backup``."""
        self._store.restore(source)

    # -- read -----------------------------------------------------------------------------------

    def search(self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
               run_id: str | None = None, filters: dict[str, Any] | None = None, limit: int | None = None,
               reference_date: Any = None, threshold: float | None = None, explain: bool = False,
               top_k: int | None = None, rerank: bool = False, show_expired: bool = False,
               as_of: Any = None, include_archived: bool = False) -> dict[str, Any]:
        """Memories relevant to ``query`` in one scope, best first, with their sources.

        Returns ``{"results": [...], "abstain": bool, "confidence": float}``: ``abstain`` says memory
        probably holds nothing relevant. ``reference_date`` is "now" for the question (recency, time words).
        ``as_of`` answers as memory stood then: later memories are left out, and the facts valid at that
        date rank over those that had been superseded by then. Without it, a question about the present
        prefers current facts over superseded ones, and one about the past does not. ``top_k`` is mem0's
        name for ``limit`` (20 when neither is given; both only if equal); ``rerank`` is accepted and
        changes nothing (results are always ranked by the retrieval recipe); ``show_expired`` also returns
        memories whose validity ended (``expiration_date``)."""
        limit = compat.result_limit(limit, top_k)
        compat.check_rerank(rerank)
        show = compat.check_show_expired(show_expired)
        response = self._search(query, self._scope(user_id, agent_id, run_id, filters),
                                filters, limit, reference_date, threshold, explain, as_of, show_expired=show,
                                include_archived=include_archived)
        return response.model_dump(mode="json", exclude={"results": {"__all__": {"explain"}}} if not explain else None)

    def _search(self, query: Any, scope: Scope, filters: Any, limit: Any, reference_date: Any, threshold: Any,
                explain: bool, as_of: Any = None, *, show_expired: bool = False,
                include_archived: bool = False) -> SearchResponse:
        from engram.read.pipeline import run_search
        from engram.read.query import build_query

        text = text_argument(query, "query", max_chars=self.config.limits.max_query_chars)
        search_query = build_query(
            text, scope=scope, node=parse_filters(filters).node,
            limit=limit_argument(limit, self.config.limits), threshold=threshold_argument(threshold),
            reference_date=to_utc(reference_date, field="reference_date") if reference_date is not None else None,
            as_of=to_utc(as_of, field="as_of") if as_of is not None else None, show_expired=show_expired,
            include_archived=flag_argument(include_archived, "include_archived"),
        )
        return run_search(self._store, self.embedder, search_query, self.recipe, explain=explain,
                          judge=self.pair_judge or self._llm_pair_judge)

    def answer(self, question: str, *, user_id: str | None = None, agent_id: str | None = None,
               run_id: str | None = None, filters: dict[str, Any] | None = None, limit: int = 10,
               reference_date: Any = None) -> dict[str, Any]:
        """Answer ``question`` from memory with the configured LLM, citing the memories used (and their
        source episodes), or abstain ("I don't know") when memory does not hold the answer."""
        if self.llm is None:
            raise ConfigurationError("answer needs an LLM", field="llm",
                                     hint="set ENGRAM_LLM_BASE_URL and ENGRAM_LLM_MODEL, or pass llm=...")
        scope = self._scope(user_id, agent_id, run_id, filters)
        from engram.read.answer import cited_answer

        found = self._search(question, scope, filters, limit, reference_date, None, False)
        when = to_utc(reference_date, field="reference_date") if reference_date is not None else None
        return cited_answer(self.llm, question, found, when)

    def get(self, memory_id: str) -> dict[str, Any] | None:
        """One memory by id, or ``None`` when there is none (as in mem0)."""
        try:
            return self._get_item(memory_id).model_dump(mode="json")
        except NotFoundError:
            return None

    def get_all(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                filters: dict[str, Any] | None = None, limit: int | None = None, offset: int = 0,
                top_k: int | None = None, show_expired: bool = False,
                include_archived: bool = False) -> dict[str, Any]:
        """Memories of one scope matching ``filters``, newest first: ``{"results": [...], "total": n}``.
        ``top_k`` is mem0's name for ``limit`` (100 when neither is given). Superseded versions are listed;
        expired memories (``add(expiration_date=...)``) only with ``show_expired``, archived ones only with
        ``include_archived``."""
        limit = compat.result_limit(limit, top_k, default=100)
        node = parse_filters(filters).node
        node = node if compat.check_show_expired(show_expired) else compat.without_expired(node)
        scope = self._scope(user_id, agent_id, run_id, filters)
        archived = flag_argument(include_archived, "include_archived")
        query = ListQuery(scope=scope, node=node, limit=limit_argument(limit, self.config.limits),
                          offset=offset_argument(offset), include_archived=archived)
        items = self._store.list_memories(query)
        return {"results": [item.model_dump(mode="json") for item in items],
                "total": self._store.count_memories(query)}

    def history(self, memory_id: str) -> list[dict[str, Any]]:
        """Every change to a memory, oldest first (also after it was deleted), with mem0's keys too
        (``updated_at``, ``is_deleted``, ``actor_id``, ``role``); NotFoundError for an id that never existed."""
        if not isinstance(memory_id, str) or not memory_id:
            raise ValidationError("must be a non-empty string", field="memory_id")
        check_text(memory_id, "memory_id")
        events = self._store.history(memory_id)
        if not events:
            raise NotFoundError(f"no memory with id {memory_id!r}", field="memory_id")
        found = self._store.get_memories([memory_id])
        return compat.mem0_history(events, found[0] if found else None)

    def episodes(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                 limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
        """The raw record of one scope, in event-time order."""
        scope = self._scope(user_id, agent_id, run_id, None)
        found = self._store.list_episodes(scope, limit=limit_argument(limit, self.config.limits),
                                          offset=offset_argument(offset))
        return [episode.model_dump(mode="json") for episode in found]

    def stats(self, *, user_id: str | None = None, agent_id: str | None = None,
              run_id: str | None = None) -> dict[str, Any]:
        """Counts of episodes, memories and history events (whole store, or one scope)."""
        scope = validate_scope(user_id, agent_id, run_id, self.config.limits, required=False)
        return dict(self._store.stats(None if scope.is_empty() else scope))

    def scopes(self, *, user_id: str | None = None, agent_id: str | None = None,
               run_id: str | None = None) -> list[dict[str, Any]]:
        """Every stored scope (inside the given ids, or all), with its counts of episodes and of
        memories by status: ``[{"user_id", "agent_id", "run_id", "episodes", "memories", "statuses"}]``."""
        scope = validate_scope(user_id, agent_id, run_id, self.config.limits, required=False)
        from engram.write.scope_ops import scope_summaries

        return scope_summaries(self._store.scope_counts(None if scope.is_empty() else scope))

    # -- learning from use (engram.learning) ------------------------------------------------------

    def feedback(self, memory_id: str, useful: bool = True, note: str | None = None, *,
                 given_by: str | None = None) -> dict[str, Any]:
        """Record that a memory was useful (or not), who said so (``given_by``) and why (``note``), as a
        ``FEEDBACK`` history event. Useful: its strength grows (and an archived memory is restored);
        not useful: it fades sooner. Returns the memory's new strength."""
        from engram.learning import facade as learning

        return learning.give_feedback(self, memory_id, useful, note, given_by)

    def strength(self, memory_id: str, *, reference_date: Any = None) -> dict[str, Any]:
        """How strongly a memory is remembered now (or at ``reference_date``): ``strength``, ``uses``,
        ``stability_days``, ``last_used_at`` (formula in docs/LEARNING.md)."""
        from engram.learning import facade as learning

        return learning.strength(self, memory_id, reference_date)

    def forget(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
               threshold: float = FORGET_THRESHOLD, dry_run: bool = False,
               reference_date: Any = None) -> dict[str, Any]:
        """Archive the active memories (all scopes when none is given) whose strength at ``reference_date``
        (default now) is below ``threshold``. Nothing is deleted: archived memories leave default search and
        ``get_all``, stay readable with ``include_archived=True`` and return when marked useful. Returns a
        report of every memory archived (or, with ``dry_run``, that would be)."""
        from engram.learning import facade as learning

        return learning.forget(self, user_id=user_id, agent_id=agent_id, run_id=run_id, threshold=threshold,
                               dry_run=dry_run, reference_date=reference_date)

    def profile(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                max_tokens: int = DEFAULT_PROFILE_TOKENS, refresh: bool = False) -> dict[str, Any]:
        """A short, current, cited summary of a scope's stable facts (who, where, work, people, preferences,
        constraints) within ``max_tokens`` (characters / 4). Superseded, archived and quarantined memories are
        left out. Offline it quotes the most profile-worthy memories; with an LLM it rewrites them. Every line
        cites its memory ids. Cached per scope and rebuilt only when the scope's memories change."""
        from engram.learning import facade as learning

        return learning.profile(self, user_id=user_id, agent_id=agent_id, run_id=run_id, max_tokens=max_tokens,
                                refresh=refresh)

    def add_experience(self, *, task: str, outcome: str, steps: list[str] | None = None, lesson: str | None = None,
                       metadata: dict[str, Any] | None = None, user_id: str | None = None,
                       agent_id: str | None = None, run_id: str | None = None) -> dict[str, Any]:
        """Remember one attempt at a task: ``outcome`` "success" or "failure", the ``steps`` taken and, when
        known, the ``lesson``. With an LLM and no lesson, one is distilled from the case. Recalled by
        similarity of the task with ``search_experiences`` (mem0's ``procedural_memory`` maps here)."""
        from engram.learning import experience_api

        return experience_api.add_experience(self, task=task, outcome=outcome, steps=steps, lesson=lesson,
                                             metadata=metadata, user_id=user_id, agent_id=agent_id, run_id=run_id)

    def search_experiences(self, task: str, *, user_id: str | None = None, agent_id: str | None = None,
                           run_id: str | None = None, limit: int = 5, outcome: str | None = None,
                           distil: bool = True) -> dict[str, Any]:
        """The past cases most similar to ``task`` (only successes or failures with ``outcome``), each with
        its outcome, steps and lesson: ``{"results": [...], "lesson": ...}``. With an LLM (and ``distil``),
        ``lesson`` is one lesson drawn from these cases, ``{"text", "cites": [case ids]}``; offline None."""
        from engram.learning import experience_api

        return experience_api.search_experiences(self, task, user_id=user_id, agent_id=agent_id, run_id=run_id,
                                                 limit=limit, outcome=outcome, distil=distil)

    def export_training(self, format: str = "sft", *, user_id: str | None = None, agent_id: str | None = None,
                        run_id: str | None = None, min_trust: str = "assistant", replay: str | None = None,
                        replay_ratio: float = 0.0, seed: int = 0) -> dict[str, Any]:
        """Memory as fine-tuning rows in TRL's conversational formats: ``sft`` (facts as grounded question /
        answer pairs, successful experiences as instruction / response) or ``preference`` (failed cases'
        steps rejected, successful ones chosen). ``replay`` (a JSONL file of general samples in the same
        format) mixes in ``replay_ratio`` samples per memory row. Quarantined, archived, superseded, erased
        and less-than-``min_trust`` memories are left out. Returns ``{"rows": [...], "manifest": {...}}``;
        the manifest lists every memory id used."""
        from engram.learning import training_api

        return training_api.export_training(self, fmt=format, user_id=user_id, agent_id=agent_id, run_id=run_id,
                                            min_trust=min_trust, replay=replay, replay_ratio=replay_ratio, seed=seed)

    # -- transfer -------------------------------------------------------------------------------

    def export(self) -> Iterator[dict[str, Any]]:
        """Every record (episodes, memories with embeddings, history) as JSON-ready dicts."""
        from engram.transfer import export_records

        return export_records(self._store)

    def import_records(self, records: Iterable[dict[str, Any]], *, batch_size: int = 500,
                       skip_existing: bool = False) -> dict[str, int]:
        """Load records produced by ``export`` (lossless); returns counts per record type. Active memories
        pass the poisoning guard as in ``add`` (a dump is outside input); ``skip_existing`` leaves out
        records the store already holds instead of refusing the import."""
        from engram.transfer import import_records

        return import_records(self._store, records, embedder=self.embedder, batch_size=batch_size,
                              skip_existing=skip_existing, guard=self.guard)

    def reembed(self, embedder: Embedder | None = None, *, batch_size: int = 64, max_batches: int | None = None,
                progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
        """Move the store to ``embedder`` (default: the configured one) in place: every memory's vectors are
        computed again, in batches committed one by one; an interrupted run resumes where it stopped, and the
        store's embedder signature changes when all is done (see ``engram.reembed``). ``max_batches`` stops
        early; ``progress(phase, done, total)`` is called after each batch. Returns the ``ReembedReport``."""
        from engram.reembed import reembed_store

        target = embedder if embedder is not None else self._embedder
        target = target if target is not None else make_embedder(self.config.embedder)
        report = reembed_store(self._store, target, batch_size=batch_size, max_batches=max_batches,
                               progress=progress)
        if report.finished:
            with self._embedder_lock:
                self._embedder, self._embedder_checked = target, False
        return report.to_dict()

    def close(self) -> None:
        """Release the store's connections."""
        self._store.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers --------------------------------------------------------------------------------

    def _writer(self) -> WriteContext:
        """The collaborators of the write pipeline (loads the embedder on first use)."""
        from engram.write.pipeline import WriteContext

        return WriteContext(store=self._store, embedder=self.embedder, config=self.config, guard=self.guard,
                            llm=self.llm)

    def _scope(self, user_id: Any, agent_id: Any, run_id: Any, filters: Any) -> Scope:
        return scope_argument(user_id, agent_id, run_id, filters, self.config.limits)

    def _get_item(self, memory_id: Any) -> MemoryItem:
        found = self._store.get_memories([memory_id_argument(memory_id)])
        if not found:
            raise NotFoundError(f"no memory with id {memory_id!r}", field="memory_id")
        return found[0]


def __getattr__(name: str) -> Any:
    """``engram.memory.AsyncMemory`` (its home before it moved to ``engram.async_memory``)."""
    if name == "AsyncMemory":
        from engram.async_memory import AsyncMemory

        return AsyncMemory
    raise AttributeError(f"module 'engram.memory' has no attribute {name!r}")
