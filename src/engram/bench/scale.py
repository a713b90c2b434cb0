"""``engram bench scale``: index cost at growing sizes, with the embedding cost stated apart.

Each size runs in a fresh process (so peak RSS is per size) on a fresh store file. Memories are
synthetic texts spread over many users; their vectors come from :class:`SyntheticEmbedder`
(clustered pseudo-random vectors derived from the text, no model), so add and search timings
measure the store and the read path, not the model. The real embedder is timed separately, and
the same run times a brute-force numpy scan over the same vectors as the reference."""

from __future__ import annotations

import multiprocessing
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
from engram.embed.base import Embedder
from engram.errors import ValidationError

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


@dataclass(frozen=True)
class ScaleSettings:
    """One scale run: memory counts, how many users they are spread over, queries per size."""

    sizes: tuple[int, ...] = (10_000, 100_000)
    users: int = 100
    queries: int = 300
    batch: int = 500
    top_k: int = 10
    dim: int = 384
    seed: int = 13

    def __post_init__(self) -> None:
        if not self.sizes or min(self.sizes) < 1:
            raise ValidationError("sizes must be positive", field="n")
        for name in ("users", "queries", "batch", "top_k"):
            if getattr(self, name) < 1:
                raise ValidationError("must be at least 1", field=name)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB.

    Read from ``VmHWM`` in ``/proc/self/status`` where it exists: ``ru_maxrss`` survives ``exec``,
    so in a spawned child it would still include the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def store_size_bytes(path: Path) -> int:
    """Bytes on disk of a store file and its companions (``-wal``, ``-shm``, sidecar indexes)."""
    return sum(item.stat().st_size for item in path.parent.glob(f"{path.name}*") if item.is_file())


def add_batches(size: int, users: int, batch: int) -> list[tuple[int, int, int]]:
    """``(user, first number, count)`` per ``add`` call: ``size`` memories spread evenly over
    ``users`` (the first users get one more when it does not divide), at most ``batch`` per call."""
    plan = []
    number = 0
    for user in range(min(users, size)):
        share = size // users + (1 if user < size % users else 0)
        for offset in range(0, share, batch):
            count = min(batch, share - offset)
            plan.append((user, number, count))
            number += count
    return plan


def measure_size(size: int, settings: ScaleSettings, path: Path) -> dict[str, Any]:
    """Fill a fresh store with ``size`` memories, then time searches and the numpy reference."""
    from engram import Memory

    for stale in path.parent.glob(f"{path.name}*"):
        stale.unlink()
    embedder = SyntheticEmbedder(settings.dim)
    rng = random.Random(settings.seed)
    memory = Memory(path=str(path), embedder=embedder)
    texts_by_user: dict[int, list[str]] = {}
    add_seconds = 0.0
    try:
        for user, start, count in add_batches(size, settings.users, settings.batch):
            texts = [synthetic_text(rng, start + offset) for offset in range(count)]
            texts_by_user.setdefault(user, []).extend(texts)
            began = time.perf_counter()
            memory.add([{"role": "user", "content": text} for text in texts], user_id=f"user-{user}", infer=False)
            add_seconds += time.perf_counter() - began
        queries = [(user, " ".join(rng.choice(texts_by_user[user]).split()[2:6]))
                   for user in (rng.choice(list(texts_by_user)) for _ in range(settings.queries))]
        memory.search(queries[0][1], user_id=f"user-{queries[0][0]}", limit=settings.top_k)
        search_seconds = []
        for user, query in queries:
            began = time.perf_counter()
            memory.search(query, user_id=f"user-{user}", limit=settings.top_k)
            search_seconds.append(time.perf_counter() - began)
    finally:
        memory.close()
    rss_store = peak_rss_mb()
    reference = numpy_reference(embedder, texts_by_user, [query for _, query in queries],
                                [user for user, _ in queries], settings.top_k)
    return {
        "n": size,
        "users": len(texts_by_user),
        "add_seconds": add_seconds,
        "add_per_s": size / add_seconds if add_seconds else None,
        "search": metrics.latency_summary(search_seconds),
        "file_bytes": store_size_bytes(path),
        "peak_rss_mb": rss_store,
        "numpy_reference": reference,
    }


def numpy_reference(embedder: Embedder, texts_by_user: dict[int, list[str]], queries: list[str],
                    users: list[int], top_k: int) -> dict[str, Any]:
    """Brute-force top-k by dot product over all vectors and over the queried user's vectors."""
    owners = np.concatenate([np.full(len(texts), user) for user, texts in texts_by_user.items()])
    matrix = embedder.embed([text for texts in texts_by_user.values() for text in texts])
    query_vectors = embedder.embed(queries)
    rows_of = {user: np.flatnonzero(owners == user) for user in texts_by_user}
    global_seconds, scoped_seconds = [], []
    for vector, user in zip(query_vectors, users, strict=True):
        began = time.perf_counter()
        _top_k(matrix @ vector, top_k)
        global_seconds.append(time.perf_counter() - began)
        began = time.perf_counter()
        rows = rows_of[user]
        rows[_top_k(matrix[rows] @ vector, top_k)]
        scoped_seconds.append(time.perf_counter() - began)
    return {"all_vectors": metrics.latency_summary(global_seconds),
            "user_vectors": metrics.latency_summary(scoped_seconds)}


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    if len(scores) <= k:
        return np.argsort(-scores)
    best = np.argpartition(-scores, k)[:k]
    return best[np.argsort(-scores[best])]


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


def _child(size: int, settings: dict[str, Any], path: str, queue: Any) -> None:
    try:
        queue.put(measure_size(size, ScaleSettings(**settings), Path(path)))
    except Exception as error:  # reported to the parent, which raises it
        queue.put({"n": size, "error": f"{type(error).__name__}: {error}"})


def run_scale(settings: ScaleSettings, out_dir: Path, *, embedder: Embedder | None = None,
              on_size: Callable[[dict[str, Any]], None] | None = None, keep_files: bool = False) -> dict[str, Any]:
    """Measure every size in its own process, plus the real embedder's cost; return the results."""
    out_dir.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    rows = []
    for size in settings.sizes:
        queue = context.Queue()
        path = out_dir / f"scale-{size}.db"
        process = context.Process(target=_child, args=(size, asdict(settings), str(path), queue))
        process.start()
        row = queue.get()
        process.join()
        if "error" in row:
            raise RuntimeError(f"scale run at n={size} failed: {row['error']}")
        rows.append(row)
        if not keep_files:
            for item in out_dir.glob(f"{path.name}*"):
                item.unlink()
        if on_size is not None:
            on_size(row)
    return {
        "benchmark": "scale",
        "settings": asdict(settings),
        "machine": machine_info(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "sizes": rows,
        "embedding": measure_embedder(embedder) if embedder is not None else None,
        "note": "add/search use synthetic vectors (index cost only); 'embedding' is the model's cost",
    }
