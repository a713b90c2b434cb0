"""``engram bench scale``: search, memory and write cost of SQLite stores of realistic text at growing
sizes, in two shapes: one scope holding every memory, and memories spread over many small scopes.

The corpus is recombined LoCoMo turns with vectors derived from the real embedder's vectors of
their source turns (``engram.bench.scale_corpus``); stores are bulk-loaded through ``Store.apply``
and kept under the output folder for reuse. Each store is measured in a fresh process (so RSS is per
store). Searches run the full read path with a lookup embedder (microseconds), so timings measure the
store and the read path, not the model, whose cost is measured apart. The same run times the exact
vector scan as the baseline of the IVF index and measures the index's recall@10 against it.

This module also holds the synthetic vocabulary and embedder other benchmarks use."""

from __future__ import annotations

import multiprocessing
import os
import random
import resource
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engram.bench import metrics
from engram.bench.runner import machine_info
from engram.bench.scale_corpus import NOISE_NORM, CorpusEmbedder, ScaleCorpus, ensure_store
from engram.embed.base import Embedder
from engram.errors import ValidationError
from engram.store.vector_index import ANN_MIN_VECTORS

WORDS: tuple[str, ...] = (
    "coffee", "tea", "garden", "hiking", "paris", "london", "tokyo", "berlin", "guitar", "piano", "violin",
    "soccer", "tennis", "chess", "novel", "poem", "doctor", "nurse", "teacher", "engineer", "dog", "cat",
    "parrot", "horse", "birthday", "wedding", "concert", "museum", "beach", "mountain", "river", "lake",
    "pizza", "sushi", "pasta", "salad", "running", "cycling", "swimming", "yoga", "meeting", "project",
    "deadline", "budget", "invoice", "flight", "hotel", "train", "ticket", "passport", "camera", "laptop",
    "phone", "tomato", "apple", "orange", "lemon", "bread", "cheese", "sister", "brother", "mother", "father",
    "friend", "neighbour", "colleague", "manager", "school", "university", "exam", "lecture", "thesis",
    "painting", "drawing", "photo", "movie", "series", "podcast", "album", "song", "dance", "theatre",
    "festival", "market", "recipe", "kitchen", "allergy", "peanut", "gluten", "vegan", "medicine", "dentist",
    "appointment", "insurance", "rent", "mortgage", "car", "bike", "bus", "airport",
)
TOPICS = 64
#: Searches run before the timed ones (the first is reported as the cold search).
WARM_UP_SEARCHES = 10


class SyntheticEmbedder(Embedder):
    """Deterministic clustered unit vectors from a text's hash: costs microseconds, no model.

    A text's vector is a topic centroid (picked by the hash) plus noise, so the vector set has
    the cluster structure real embeddings have without their cost."""

    def __init__(self, dim: int = 384, *, seed: int = 7) -> None:
        if dim < 2:
            raise ValidationError("dim must be at least 2", field="dim")
        self.dim = dim
        self.name = f"synthetic-{seed}"
        centroids = np.random.default_rng(seed).standard_normal((TOPICS, dim)).astype(np.float32)
        self._centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.empty((len(texts), self.dim), dtype=np.float32)
        for index, text in enumerate(texts):
            code = zlib.crc32(text.encode("utf-8"))
            noise = np.random.default_rng(code).standard_normal(self.dim).astype(np.float32)
            row = self._centroids[code % TOPICS] + 0.08 * noise
            rows[index] = row / np.linalg.norm(row)
        return rows


def synthetic_text(rng: random.Random, number: int) -> str:
    """A short memory-like sentence with a unique marker."""
    words = rng.sample(WORDS, rng.randint(6, 14))
    return f"note {number}: " + " ".join(words)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB.

    Read from ``VmHWM`` in ``/proc/self/status`` where it exists: ``ru_maxrss`` survives ``exec``,
    so in a spawned child it would still include the parent's peak."""
    peak = _proc_status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _proc_status_mb(key: str) -> float | None:
    """A ``kB`` field of ``/proc/self/status`` in MiB, or None where it is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def store_size_bytes(path: Path) -> int:
    """Bytes on disk of a store file and its companions (``-wal``, ``-shm``, sidecar indexes)."""
    return sum(item.stat().st_size for item in path.parent.glob(f"{path.name}*") if item.is_file())


@dataclass(frozen=True)
class ScaleSettings:
    """One scale run: single-scope sizes, spread shapes ``(total, scopes)``, queries per store, and the
    add-cost probe (single-turn adds into one scope of ``add_scope`` memories)."""

    single: tuple[int, ...] = (100_000, 1_000_000)
    spread: tuple[tuple[int, int], ...] = ((1_000_000, 10_000),)
    queries: int = 300
    top_k: int = 10
    add_scope: int = 10_000
    add_samples: int = 200
    ann_min_vectors: int = ANN_MIN_VECTORS
    seed: int = 13

    def __post_init__(self) -> None:
        if not self.single and not self.spread:
            raise ValidationError("give at least one store size", field="n")
        if min([*self.single, *(total for total, _ in self.spread)], default=1) < 1:
            raise ValidationError("sizes must be positive", field="n")
        for total, scopes in self.spread:
            if not 1 <= scopes <= total:
                raise ValidationError("a spread needs 1 <= scopes <= total", field="spread")
        for name in ("queries", "top_k", "add_scope", "add_samples"):
            if getattr(self, name) < 1:
                raise ValidationError("must be at least 1", field=name)


def current_rss_mb() -> float:
    """Resident memory of this process now, MiB (0 where ``/proc`` is missing)."""
    return _proc_status_mb("VmRSS") or 0.0


def measure_store(corpus: ScaleCorpus, shape: str, total: int, scopes: int, settings: ScaleSettings,
                  path: Path) -> dict[str, Any]:
    """Build (or reuse) one store, then time full searches, each signal alone, the baselines (the exact
    vector scan; the lexical search over the whole FTS index before the scope filter), the IVF index's
    recall@10 against the exact scan, and the full search's top results against a search with both signals
    exact (every vector scanned, every lexical match scored)."""
    from engram import Memory
    from engram.models import Scope
    from engram.store.base import ListQuery
    from engram.store.sqlite import SQLiteStore
    from engram.terms import query_terms

    began = time.perf_counter()
    built = ensure_store(path, corpus, total, scopes, seed=settings.seed)
    load_seconds = time.perf_counter() - began
    scopes = min(scopes, total)
    rng = random.Random(settings.seed)
    picks = [(rng.randrange(scopes), rng.randrange(len(corpus.questions))) for _ in range(settings.queries)]
    embedder = CorpusEmbedder(corpus)
    store = SQLiteStore(path, ann_min_vectors=settings.ann_min_vectors)
    exact_store = SQLiteStore(path, ann_min_vectors=total + 1, exact_lexical=True)
    memory = Memory(store=store, embedder=embedder)
    exact_memory = Memory(store=exact_store, embedder=embedder)
    try:
        began = time.perf_counter()
        memory.search(corpus.questions[0], user_id="user-0", limit=settings.top_k)
        cold_seconds = time.perf_counter() - began
        for warm_up in corpus.questions[1:WARM_UP_SEARCHES]:  # the read path imports some modules lazily
            memory.search(warm_up, user_id="user-0", limit=settings.top_k)
        timings: dict[str, list[float]] = {"search": [], "lexical": [], "lexical_storewide": [], "vector": [],
                                           "vector_exact": []}
        overlaps, lexical_overlaps, search_overlaps = [], [], []
        for scope_number, question in picks:  # alone first: the baselines below walk the whole store's pages
            timings["search"].append(timed(memory.search, corpus.questions[question], user_id=f"user-{scope_number}",
                                           limit=settings.top_k))
        for scope_number, question in picks:
            text, user = corpus.questions[question], f"user-{scope_number}"
            query = ListQuery(scope=Scope(user_id=user), limit=settings.top_k, include_invalid=False)
            vector = embedder.embed_query(text)
            timings["lexical"].append(timed(store.lexical_search, query_terms(text), query))
            timings["lexical_storewide"].append(timed(store._lexical, query_terms(text), query, by_user=False,
                                                   prune=False))
            timings["vector"].append(timed(store.vector_search, vector, query))
            timings["vector_exact"].append(timed(exact_store.vector_search, vector, query))
            exact_terms = store._lexical(query_terms(text), query, by_user=False, prune=False)
            lexical_overlaps.append(len({c.memory_id for c in store.lexical_search(query_terms(text), query)}
                                        & {c.memory_id for c in exact_terms}) / max(1, len(exact_terms)))
            wanted = {c.memory_id for c in exact_store.vector_search(vector, query)}
            found = {c.memory_id for c in store.vector_search(vector, query)}
            overlaps.append(len(wanted & found) / max(1, len(wanted)))
            search_overlaps.append(_top_overlap(memory.search(text, user_id=user, limit=settings.top_k),
                                                exact_memory.search(text, user_id=user, limit=settings.top_k)))
    finally:
        memory.close()
        exact_memory.close()
    file_bytes = store_size_bytes(path)
    return {
        "shape": shape, "n": total, "scopes": scopes, "scope_size": total // scopes,
        "built": built, "load_seconds": load_seconds, "load_per_s": total / load_seconds if built else None,
        "cold_search_ms": cold_seconds * 1000,
        **{name: metrics.latency_summary(values) for name, values in timings.items()},
        "ann_used": total // scopes >= settings.ann_min_vectors,
        "recall_at_10_vs_exact": float(np.mean(overlaps)),
        "lexical_recall_at_10_vs_exact": float(np.mean(lexical_overlaps)),
        "search_recall_at_10_vs_exact": float(np.mean(search_overlaps)),
        "file_bytes": file_bytes, "bytes_per_memory": file_bytes / total,
        "peak_rss_mb": peak_rss_mb(), "rss_mb": current_rss_mb(), "loadavg": os.getloadavg(),
    }


def _top_overlap(found: dict[str, Any], exact: dict[str, Any]) -> float:
    """The share of the exact search's results that the search also returned."""
    wanted = {hit["id"] for hit in exact["results"]}
    return len(wanted & {hit["id"] for hit in found["results"]}) / max(1, len(wanted))


def measure_add(corpus: ScaleCorpus, settings: ScaleSettings, path: Path) -> dict[str, Any]:
    """p50/p95 of ``Memory.add`` of one turn (``infer=False``) into a scope of ``add_scope`` memories, with the
    lookup embedder (microseconds), so the figure is the write path without the model."""
    from engram import Memory

    ensure_store(path, corpus, settings.add_scope, 1, seed=settings.seed)
    rng = random.Random(settings.seed)
    memory = Memory(path=str(path), embedder=CorpusEmbedder(corpus))
    seconds = []
    try:
        memory.add([{"role": "user", "content": "warm-up"}], user_id="user-0", infer=False)
        for number in range(settings.add_samples):
            turn = corpus.turns[rng.randrange(len(corpus.turns))]
            message = {"role": "user", "name": turn.speaker, "content": f"{turn.text} ({number})"}
            seconds.append(timed(memory.add, [message], user_id="user-0", infer=False))
    finally:
        memory.close()
    for item in path.parent.glob(f"{path.name}*"):
        item.unlink()
    return {"scope_memories": settings.add_scope, "add": metrics.latency_summary(seconds), "loadavg": os.getloadavg()}


def timed(action: Callable[..., object], *args: Any, **kwargs: Any) -> float:
    """Seconds ``action(*args, **kwargs)`` takes."""
    began = time.perf_counter()
    action(*args, **kwargs)
    return time.perf_counter() - began


def measure_embedder(embedder: Embedder, *, texts: int = 512, queries: int = 100, seed: int = 3) -> dict[str, Any]:
    """Throughput of ``embedder`` on batches of synthetic sentences and its single-query latency."""
    rng = random.Random(seed)
    sample = [synthetic_text(rng, number) for number in range(texts)]
    embedder.embed(sample[:8])
    began = time.perf_counter()
    for start in range(0, len(sample), 64):
        embedder.embed(sample[start:start + 64])
    batch_seconds = time.perf_counter() - began
    single = []
    for text in sample[:queries]:
        began = time.perf_counter()
        embedder.embed_query(text)
        single.append(time.perf_counter() - began)
    return {"embedder": embedder.signature, "texts_per_s": texts / batch_seconds,
            "query": metrics.latency_summary(single)}


def _child(job: tuple[Any, ...], queue: Any) -> None:
    try:
        kind, corpus, settings, path, total, scopes = job
        if kind == "add":
            queue.put(measure_add(corpus, settings, Path(path)))
        else:
            queue.put(measure_store(corpus, kind, total, scopes, settings, Path(path)))
    except Exception as error:  # reported to the parent, which raises it
        queue.put({"error": f"{type(error).__name__}: {error}"})


def _in_process(job: tuple[Any, ...]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(job, queue))
    process.start()
    row: dict[str, Any] = queue.get()
    process.join()
    if "error" in row:
        raise RuntimeError(f"scale run {job[0]} failed: {row['error']}")
    return row


def run_scale(settings: ScaleSettings, data: Path, out_dir: Path, *, embedder: Embedder, embedder_cost: bool = True,
              on_row: Callable[[dict[str, Any]], None] | None = None, keep_files: bool = True) -> dict[str, Any]:
    """Measure every store in its own process (single-scope sizes, then spreads, then the add cost), plus
    the real embedder's cost; return the results. Stores stay in ``out_dir`` for reuse unless
    ``keep_files`` is false."""
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = ScaleCorpus.from_locomo(data, embedder, out_dir / "cache")
    jobs = [("single", total, 1, out_dir / f"single-{total}.db") for total in settings.single]
    jobs += [("spread", total, scopes, out_dir / f"spread-{total}-{scopes}.db") for total, scopes in settings.spread]
    rows = []
    for shape, total, scopes, path in jobs:
        row = _in_process((shape, corpus, settings, str(path), total, scopes))
        rows.append(row)
        if not keep_files:
            for item in out_dir.glob(f"{path.name}*"):
                item.unlink()
        if on_row is not None:
            on_row(row)
    add = _in_process(("add", corpus, settings, str(out_dir / f"add-{settings.add_scope}.db"), 0, 0))
    return {
        "benchmark": "scale",
        "settings": asdict(settings),
        "machine": machine_info(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "corpus": {"source": str(data), "turns": len(corpus.turns), "questions": len(corpus.questions),
                   "embedder": corpus.signature, "noise_norm": NOISE_NORM},
        "stores": rows,
        "add": add,
        "embedding": measure_embedder(embedder) if embedder_cost else None,
        "note": ("memories are two LoCoMo turns recombined; vectors are the real embedder's vectors of the "
                 f"source turns mixed, plus noise of norm {NOISE_NORM}, renormalised; stores bulk-loaded through "
                 "Store.apply; searches use a lookup embedder; 'embedding' is the model's cost"),
    }
