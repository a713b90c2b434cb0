"""Lossless export and import: JSON lines of ``{"type": "episode"|"memory"|"history", "data": {...}}``.

Memory records carry their embedding (base64 float32) and the embedder signature, so an import into a
store with the same embedder restores vectors bit for bit; otherwise the text is embedded again."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError as PydanticValidationError

from engram.embed.base import Embedder
from engram.errors import ValidationError
from engram.models import Episode, HistoryEvent, MemoryItem, MemoryStatus
from engram.store.base import ChangeSet, Store
from engram.write.context import refresh
from engram.write.keys import embedding_input

if TYPE_CHECKING:
    from engram.guard import Guard

RECORD_TYPES: dict[str, type[Episode] | type[MemoryItem] | type[HistoryEvent]] = {
    "episode": Episode, "memory": MemoryItem, "history": HistoryEvent}


def export_records(store: Store) -> Iterator[dict[str, Any]]:
    """Every record of ``store`` (episodes, then memories with vectors, then history)."""
    signature = store.stats().get("embedder", "")
    pending: list[MemoryItem] = []
    for record in store.iter_all():
        if isinstance(record, MemoryItem):
            pending.append(record)
            if len(pending) >= 500:
                yield from _memory_records(store, pending, str(signature))
                pending = []
            continue
        yield from _memory_records(store, pending, str(signature))
        pending = []
        kind = "episode" if isinstance(record, Episode) else "history"
        yield {"type": kind, "data": record.model_dump(mode="json")}
    yield from _memory_records(store, pending, str(signature))


def _memory_records(store: Store, memories: list[MemoryItem], signature: str) -> Iterator[dict[str, Any]]:
    if not memories:
        return
    vectors = store.get_vectors([memory.id for memory in memories])
    turn_vectors = store.get_turn_vectors([memory.id for memory in memories if memory.is_turn])
    for memory in memories:
        record: dict[str, Any] = {"type": "memory", "data": memory.model_dump(mode="json")}
        vector = vectors.get(memory.id)
        if vector is not None:
            record["vector"] = _encode(vector)
            record["embedder"] = signature
            if memory.id in turn_vectors:
                record["turn_vector"] = _encode(turn_vectors[memory.id])
        yield record


def _encode(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode("ascii")


def import_records(store: Store, records: Iterable[dict[str, Any]], *, embedder: Embedder,
                   batch_size: int = 500, skip_existing: bool = False, guard: Guard | None = None) -> dict[str, int]:
    """Write exported records into ``store`` in batches (each batch one transaction).

    Records whose id the store already holds are refused with a ValidationError before anything of
    their batch is written, or, with ``skip_existing``, left out and counted under ``"skipped"``. With a
    ``guard``, every active memory's text is screened as written by its recorded writer, as ``add`` does:
    a dump is outside input, so a suspicious memory arrives quarantined (counted under "quarantined")."""
    counts = {"episode": 0, "memory": 0, "history": 0, "quarantined": 0}
    skipped = 0
    pending: list[tuple[str, Episode | MemoryItem | HistoryEvent, dict[str, Any]]] = []
    for line_number, record in enumerate(records, start=1):
        kind, item = _parse(record, line_number)
        pending.append((kind, item, record))
        if len(pending) >= batch_size:
            skipped += _write_batch(store, pending, embedder, counts, skip_existing=skip_existing, guard=guard)
            pending = []
    skipped += _write_batch(store, pending, embedder, counts, skip_existing=skip_existing, guard=guard)
    result = {**counts, "skipped": skipped} if skip_existing else dict(counts)
    if guard is None:
        del result["quarantined"]
    return result


def _existing_ids(store: Store, items: list[Episode | MemoryItem | HistoryEvent]) -> set[str]:
    episodes = [item.id for item in items if isinstance(item, Episode)]
    memories = [item.id for item in items if isinstance(item, MemoryItem)]
    events = {item.id for item in items if isinstance(item, HistoryEvent)}
    found = {episode.id for episode in store.get_episodes(episodes)} if episodes else set()
    found |= {memory.id for memory in store.get_memories(memories)} if memories else set()
    for memory_id in {item.memory_id for item in items if isinstance(item, HistoryEvent)}:
        found |= {event.id for event in store.history(memory_id)} & events
    return found


def screened(guard: Guard, memory: MemoryItem) -> MemoryItem:
    """``memory`` as the guard lets it in: quarantined (with the verdict in its metadata) when its text is
    suspicious for its writer; memories already quarantined stay so."""
    if memory.status != MemoryStatus.ACTIVE.value:
        return memory
    verdict = guard.screen(memory.memory, role=memory.writer, metadata=memory.metadata)
    if not verdict.quarantine:
        return memory
    return memory.model_copy(update={"status": MemoryStatus.QUARANTINED.value,
                                     "metadata": {**memory.metadata, "guard": verdict.to_dict()}})


def _write_batch(store: Store, pending: list[tuple[str, Episode | MemoryItem | HistoryEvent, dict[str, Any]]],
                 embedder: Embedder, counts: dict[str, int], *, skip_existing: bool, guard: Guard | None) -> int:
    """Write one batch in one transaction; returns how many records were skipped as already present."""
    existing = _existing_ids(store, [item for _, item, _ in pending]) if pending else set()
    if existing and not skip_existing:
        kind, item, _ = next(entry for entry in pending if entry[1].id in existing)
        raise ValidationError(f"{len(existing)} records of this import already exist in the store (e.g. {kind} "
                              f"{item.id}); was it imported before?", field="records",
                              hint="import with --skip-existing (Python: skip_existing=True) to add only new ones")
    batch = ChangeSet()
    to_embed: list[MemoryItem] = []
    for kind, item, record in pending:
        if item.id in existing:
            continue
        counts[kind] += 1
        if isinstance(item, Episode):
            batch.episodes.append(item)
        elif isinstance(item, MemoryItem):
            if guard is not None:
                checked = screened(guard, item)
                counts["quarantined"] += checked.status != item.status
                item = checked
            batch.memories.append(item)
            same_model = record.get("embedder") == embedder.signature
            if record.get("vector") and same_model:
                batch.vectors[item.id] = _decode(record["vector"])
                if record.get("turn_vector"):
                    batch.turn_vectors[item.id] = _decode(record["turn_vector"])
            else:
                to_embed.append(item)
        else:
            batch.history.append(item)
    _flush(store, batch, to_embed, embedder)
    return len(existing)


def _parse(record: object, line_number: int) -> tuple[str, Episode | MemoryItem | HistoryEvent]:
    field = f"records[{line_number}]"
    valid = isinstance(record, dict) and record.get("type") in RECORD_TYPES and isinstance(record.get("data"), dict)
    if not valid:
        raise ValidationError("expected {\"type\": \"episode\"|\"memory\"|\"history\", \"data\": {...}}", field=field)
    assert isinstance(record, dict)
    kind = str(record["type"])
    try:
        return kind, RECORD_TYPES[kind].model_validate(record["data"])
    except PydanticValidationError as exc:
        raise ValidationError(f"invalid {kind} record: {exc.errors()[0]['msg']}", field=field) from None


def _decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.float32).copy()


def _flush(store: Store, batch: ChangeSet, to_embed: list[MemoryItem], embedder: Embedder) -> None:
    """Apply one batch; memories without a usable vector are embedded again, and the turns among them
    get their conversation context rebuilt from their neighbours."""
    if to_embed:
        matrix = embedder.embed([embedding_input(memory) for memory in to_embed])
        batch.vectors.update({memory.id: matrix[i] for i, memory in enumerate(to_embed)})
        batch.turn_vectors.update({memory.id: matrix[i] for i, memory in enumerate(to_embed) if memory.is_turn})
    store.apply(batch)
    turns = [memory for memory in to_embed if memory.is_turn]
    if turns:
        store.apply(ChangeSet(context=refresh(store, turns)))


def migrate(source: Store, target: Store, *, embedder: Embedder, batch_size: int = 500,
            guard: Guard | None = None) -> dict[str, int]:
    """Copy everything from ``source`` into the empty ``target`` (episodes, memories with their
    embeddings, history) and verify the counts; ids and timestamps are kept. With a ``guard``, active
    memories are screened on the way in, as by ``import_records``."""
    counts = target.stats()
    if int(counts["episodes"]) or int(counts["memories"]) or int(counts["history_events"]):
        raise ValidationError("the target store is not empty", field="to",
                              hint="migrate into a new database (or reset the target first)")
    copied = import_records(target, export_records(source), embedder=embedder, batch_size=batch_size, guard=guard)
    before, after = source.stats(), target.stats()
    for key in ("episodes", "memories", "history_events"):
        if before[key] != after[key]:
            raise ValidationError(f"{key}: {before[key]} in the source but {after[key]} in the target", field="to")
    return copied
