"""``engram bench concurrency``: several processes adding and searching one store file at once.

Every worker opens its own ``Memory`` on the same SQLite file, waits at a barrier, then runs a
mix of single-message adds and searches on users shared between workers. Reported: throughput,
errors (must be zero), latency percentiles per operation, and a final count check (every add
that returned must be stored)."""

from __future__ import annotations

import multiprocessing
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engram.bench import metrics
from engram.bench.runner import machine_info
from engram.bench.scale import WORDS, SyntheticEmbedder, store_size_bytes, synthetic_text
from engram.errors import ValidationError

MAX_REPORTED_ERRORS = 20
PREFILL_NUMBERS = 10_000_000
MAX_LISTED = 10_000


@dataclass(frozen=True)
class ConcurrencySettings:
    """Workers, operations per worker, share of adds, and how many users they share."""

    processes: int = 4
    operations: int = 200
    add_fraction: float = 0.5
    users: int = 2
    prefill: int = 200
    dim: int = 384
    seed: int = 5

    def __post_init__(self) -> None:
        for name in ("processes", "operations", "users"):
            if getattr(self, name) < 1:
                raise ValidationError("must be at least 1", field=name)
        if self.prefill + self.processes * self.operations > MAX_LISTED * self.users:
            raise ValidationError(f"at most {MAX_LISTED} memories per user can be counted", field="operations")
        if not 0.0 <= self.add_fraction <= 1.0:
            raise ValidationError("must be within 0..1", field="add_fraction")
        if self.prefill < 0:
            raise ValidationError("must not be negative", field="prefill")


def _worker(worker: int, settings: dict[str, Any], path: str, barrier: Any, queue: Any) -> None:
    from engram import Memory

    config = ConcurrencySettings(**settings)
    rng = random.Random(config.seed * 1000 + worker)
    latencies: dict[str, list[float]] = {"add": [], "search": []}
    errors: list[str] = []
    added: dict[str, int] = {}
    memory = None
    try:
        memory = Memory(path=path, embedder=SyntheticEmbedder(config.dim))
        barrier.wait()
        began_all = time.perf_counter()
        for step in range(config.operations):
            user = f"user-{rng.randrange(config.users)}"
            operation = "add" if rng.random() < config.add_fraction else "search"
            began = time.perf_counter()
            try:
                if operation == "add":
                    text = synthetic_text(rng, worker * 1_000_000 + step)
                    memory.add(text, user_id=user, infer=False)
                    added[user] = added.get(user, 0) + 1
                else:
                    memory.search(" ".join(rng.sample(WORDS, 3)), user_id=user, limit=10)
            except Exception as error:  # counted and reported; the benchmark must see every failure
                errors.append(f"{operation}: {type(error).__name__}: {error}")
                continue
            latencies[operation].append(time.perf_counter() - began)
        queue.put({"worker": worker, "latencies": latencies, "errors": errors, "added": added,
                   "seconds": time.perf_counter() - began_all})
    except Exception as error:  # a worker that cannot start is one error, not a hang
        queue.put({"worker": worker, "latencies": latencies, "errors": [*errors, f"worker: {error!r}"],
                   "added": added, "seconds": 0.0})
    finally:
        if memory is not None:
            memory.close()


def _prefill(path: Path, settings: ConcurrencySettings) -> dict[str, int]:
    from engram import Memory

    rng = random.Random(settings.seed)
    counts: dict[str, int] = {}
    memory = Memory(path=str(path), embedder=SyntheticEmbedder(settings.dim))
    try:
        for user_number in range(settings.users):
            user = f"user-{user_number}"
            share = settings.prefill // settings.users
            if share:
                memory.add([{"role": "user", "content": synthetic_text(rng, PREFILL_NUMBERS + user_number * share + i)}
                            for i in range(share)], user_id=user, infer=False)
            counts[user] = share
    finally:
        memory.close()
    return counts


def _stored_counts(path: Path, settings: ConcurrencySettings) -> dict[str, int]:
    from engram import Memory

    memory = Memory(path=str(path), embedder=SyntheticEmbedder(settings.dim))
    try:
        return {f"user-{number}": len(memory.get_all(user_id=f"user-{number}", limit=MAX_LISTED)["results"])
                for number in range(settings.users)}
    finally:
        memory.close()


def run_concurrency(settings: ConcurrencySettings, out_dir: Path) -> dict[str, Any]:
    """Run the workers on one fresh store file under ``out_dir`` and summarise what they saw."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "concurrency.db"
    for stale in out_dir.glob(f"{path.name}*"):
        stale.unlink()
    expected = _prefill(path, settings)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(settings.processes)
    queue = context.Queue()
    workers = [context.Process(target=_worker, args=(number, asdict(settings), str(path), barrier, queue))
               for number in range(settings.processes)]
    started = time.perf_counter()
    for process in workers:
        process.start()
    reports = [queue.get() for _ in workers]
    for process in workers:
        process.join()
    wall = time.perf_counter() - started
    add_latencies = [value for report in reports for value in report["latencies"]["add"]]
    search_latencies = [value for report in reports for value in report["latencies"]["search"]]
    errors = [error for report in reports for error in report["errors"]]
    for report in reports:
        for user, count in report["added"].items():
            expected[user] = expected.get(user, 0) + count
    stored = _stored_counts(path, settings)
    busy = max((report["seconds"] for report in reports), default=0.0)
    operations = len(add_latencies) + len(search_latencies)
    result = {
        "benchmark": "concurrency",
        "settings": asdict(settings),
        "machine": machine_info(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "operations": operations,
        "errors": len(errors),
        "error_samples": errors[:MAX_REPORTED_ERRORS],
        "wall_seconds": wall,
        "ops_per_s": operations / busy if busy else None,
        "adds_per_s": len(add_latencies) / busy if busy else None,
        "add": metrics.latency_summary(add_latencies),
        "search": metrics.latency_summary(search_latencies),
        "expected_memories": expected,
        "stored_memories": stored,
        "consistent": expected == stored,
        "file_bytes": store_size_bytes(path),
    }
    for item in out_dir.glob(f"{path.name}*"):
        item.unlink()
    return result
