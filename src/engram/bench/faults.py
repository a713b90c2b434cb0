"""``engram bench faults``: crash safety under ``kill -9``.

Each trial starts a fresh writer process (``python -m engram.bench.faults --writer ...``) that adds
batches of messages to one store shared by all trials (``infer=False``, guard off, the synthetic
embedder, so the time goes to the store and not to a model). It prints ``SEND n`` before and
``ACK n`` after every ``Memory.add``. A random delay (drawn from the seed) after its first ACK, the
writer gets SIGKILL. The store is then reopened and checked: every acknowledged batch is stored whole
(texts, episodes, vectors, sources), no batch is partly stored, and the store passes its integrity
checks (SQLite ``integrity_check``, the FTS5 check, orphan counts; orphan counts on PostgreSQL)."""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engram.bench.runner import machine_info
from engram.bench.scale import SyntheticEmbedder, synthetic_text
from engram.config import EngramConfig
from engram.errors import ValidationError
from engram.providers import open_store

MAX_BATCHES = 100_000
PAGE = 5_000
MAX_REPORTED_FAILURES = 20
@dataclass(frozen=True)
class FaultSettings:
    """Trials (one killed writer each), messages per add, the seed of the kill delays, and the store."""

    trials: int = 30
    batch: int = 5
    seed: int = 11
    max_delay_ms: int = 300
    url: str | None = None
    dim: int = 384
    start_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        for name in ("trials", "batch", "dim"):
            if getattr(self, name) < 1:
                raise ValidationError("must be at least 1", field=name)
        if self.max_delay_ms < 0:
            raise ValidationError("must not be negative", field="max_delay_ms")
        if self.url is not None and not self.url.startswith(("postgresql://", "postgresql+psycopg://")):
            raise ValidationError("must be a postgresql:// URL (SQLite runs on a file under --out)", field="url")


def batch_texts(tag: str, number: int, size: int) -> list[str]:
    """The messages of batch ``number`` of writer ``tag``: the same in the writer and the checker."""
    rng = random.Random(f"{tag}:{number}")
    return [f"{tag} batch {number} " + synthetic_text(rng, index) for index in range(size)]


def _config(url: str) -> EngramConfig:
    return EngramConfig(url=url, guard=False)


def writer_main(url: str, tag: str, size: int, dim: int) -> None:
    """Add batches to the store at ``url`` until killed, announcing each on stdout."""
    from engram import Memory

    memory = Memory(config=_config(url), embedder=SyntheticEmbedder(dim))
    for number in range(MAX_BATCHES):
        print(f"SEND {number}", flush=True)
        memory.add(batch_texts(tag, number, size), user_id=tag, metadata={"batch": number}, infer=False)
        print(f"ACK {number}", flush=True)
    memory.close()


def _kill_writer(url: str, tag: str, settings: FaultSettings, delay_s: float) -> tuple[list[str], int, str]:
    """Start a writer, SIGKILL it ``delay_s`` after its first ACK; its stdout lines, exit code and stderr."""
    command = [sys.executable, "-m", "engram.bench.faults", "--writer", url, tag, str(settings.batch),
               str(settings.dim)]
    lines: list[str] = []
    first_ack = threading.Event()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line.strip())
                if line.startswith("ACK"):
                    first_ack.set()
            first_ack.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            if first_ack.wait(settings.start_timeout_s) and process.poll() is None:
                time.sleep(delay_s)
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            process.wait()
            reader.join()
        errors.seek(0)
        return lines, process.returncode, errors.read()[-2000:]


def _pages(fetch: Callable[[int, int], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = fetch(PAGE, len(rows))
        rows.extend(page)
        if len(page) < PAGE:
            return rows


def batch_states(memory: Any, tag: str, size: int, dim: int) -> dict[int, str]:
    """``complete`` or ``partial`` for every batch of ``tag`` with anything stored (absent ones are left out).

    Complete: ``size`` memories and ``size`` episodes with the expected texts, each memory with a
    finite ``dim``-long vector and citing exactly its own batch's episode."""
    memories = _pages(lambda limit, offset: memory.get_all(user_id=tag, limit=limit, offset=offset)["results"])
    episodes = _pages(lambda limit, offset: memory.episodes(user_id=tag, limit=limit, offset=offset))
    vectors = memory.store.get_vectors([item["id"] for item in memories])
    episode_batch = {episode["id"]: episode["metadata"].get("batch") for episode in episodes}
    expected: dict[int, list[str]] = {}
    found: dict[int, dict[str, list[bool]]] = {}

    def texts(number: int) -> list[str]:
        return expected.setdefault(number, batch_texts(tag, number, size))

    for episode in episodes:
        number = int(episode["metadata"].get("batch", -1))
        good = episode["content"] in texts(number)
        found.setdefault(number, {"memories": [], "episodes": []})["episodes"].append(good)
    for item in memories:
        number = int(item["metadata"].get("batch", -1))
        vector = vectors.get(item["id"])
        sources = [source["id"] for source in item["sources"]]
        good = (item["memory"] in texts(number) and vector is not None
                and np.shape(vector) == (dim,) and bool(np.isfinite(vector).all())
                and len(sources) == 1 and episode_batch.get(sources[0]) == number)
        found.setdefault(number, {"memories": [], "episodes": []})["memories"].append(good)
    return {number: "complete" if all(len(seen[key]) == size and all(seen[key]) for key in seen) else "partial"
            for number, seen in found.items()}


def store_checks(settings: FaultSettings, path: Path, prefix: str) -> dict[str, Any]:
    """``Store.check_integrity`` of the run's store (orphans counted for the run's users, and store-wide
    for dangling rows)."""
    config = EngramConfig(url=settings.url) if settings.url is not None else EngramConfig(path=str(path))
    store = open_store(config)
    try:
        return store.check_integrity(prefix)
    finally:
        store.close()


def _trial(number: int, settings: FaultSettings, url: str, tag: str, delay_s: float) -> dict[str, Any]:
    from engram import Memory

    lines, code, stderr = _kill_writer(url, tag, settings, delay_s)
    sent = [int(line.split()[1]) for line in lines if line.startswith("SEND")]
    acked = {int(line.split()[1]) for line in lines if line.startswith("ACK")}
    in_flight = sent[-1] if sent and sent[-1] not in acked else None
    with Memory(config=_config(url), embedder=SyntheticEmbedder(settings.dim)) as memory:
        states = batch_states(memory, tag, settings.batch, settings.dim)
    return {
        "trial": number,
        "delay_ms": round(delay_s * 1000, 1),
        "killed": code == -signal.SIGKILL,
        "writer_error": None if code == -signal.SIGKILL else f"exit {code}: {stderr.strip()}",
        "kill": "mid_batch" if in_flight is not None else "between_batches" if acked else "before_first_ack",
        "acknowledged": len(acked),
        "in_flight_committed": None if in_flight is None else states.get(in_flight) == "complete",
        "lost_acknowledged": sorted(n for n in acked if states.get(n) != "complete"),
        "half_written": sorted(n for n, state in states.items() if state == "partial"),
        "unexpected": sorted(n for n in states if n not in sent),
    }


def run_faults(settings: FaultSettings, out_dir: Path,
               on_trial: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the trials against one store (a fresh SQLite file under ``out_dir``, or ``settings.url``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "faults.db"
    if settings.url is None:
        for stale in out_dir.glob(f"{path.name}*"):
            stale.unlink()
    url = settings.url or f"sqlite:///{path}"
    prefix = f"faults-{uuid.uuid4().hex[:8]}-"
    rng = random.Random(settings.seed)
    rows: list[dict[str, Any]] = []
    failed_checks: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    started = time.perf_counter()
    for number in range(settings.trials):
        row = _trial(number, settings, url, f"{prefix}t{number}", rng.uniform(0, settings.max_delay_ms) / 1000)
        checks = store_checks(settings, path, prefix)
        row["store_ok"] = checks["ok"]
        if not checks["ok"]:
            failed_checks.append({"trial": number, **checks})
        rows.append(row)
        if on_trial is not None:
            on_trial(row)
    result = summarise(settings, rows, checks, failed_checks, time.perf_counter() - started)
    if settings.url is None:
        result["store"] = str(path)
        if result["ok"]:
            for item in out_dir.glob(f"{path.name}*"):
                item.unlink()
            result["store"] = None
    return result


def summarise(settings: FaultSettings, rows: Sequence[dict[str, Any]], checks: dict[str, Any],
              failed_checks: Sequence[dict[str, Any]], wall: float) -> dict[str, Any]:
    """The report: kill counts, acknowledged and lost batches, integrity, and every failure."""
    failures = [f"trial {row['trial']}: {row['writer_error']}" for row in rows if row["writer_error"]]
    failures += [f"trial {row['trial']}: no ACK within {settings.start_timeout_s:.0f} s" for row in rows
                 if row["kill"] == "before_first_ack" and not row["writer_error"]]
    for key in ("lost_acknowledged", "half_written", "unexpected"):
        failures += [f"trial {row['trial']}: {key} batches {row[key]}" for row in rows if row[key]]
    failures += [f"trial {check['trial']}: store check failed" for check in failed_checks]
    in_flight = [row["in_flight_committed"] for row in rows if row["in_flight_committed"] is not None]
    delays = [row["delay_ms"] for row in rows]
    safe = asdict(settings)
    if settings.url:
        from engram.store.urls import redact_url

        safe["url"] = redact_url(settings.url)
    return {
        "benchmark": "faults",
        "backend": "postgresql" if settings.url else "sqlite",
        "settings": safe,
        "machine": machine_info(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "trials": len(rows),
        "kills": {kind: sum(row["kill"] == kind for row in rows)
                  for kind in ("mid_batch", "between_batches", "before_first_ack")},
        "in_flight_batches": {"committed": sum(in_flight), "rolled_back": len(in_flight) - sum(in_flight)},
        "kill_delay_ms": {"min": min(delays), "median": statistics.median(delays), "max": max(delays)},
        "acknowledged_batches": sum(row["acknowledged"] for row in rows),
        "acknowledged_messages": sum(row["acknowledged"] for row in rows) * settings.batch,
        "lost_acknowledged": sum(len(row["lost_acknowledged"]) for row in rows),
        "half_written": sum(len(row["half_written"]) for row in rows),
        "unexpected_batches": sum(len(row["unexpected"]) for row in rows),
        "writer_errors": sum(bool(row["writer_error"]) for row in rows),
        "integrity": {"ok": not failed_checks, "checked_after_trials": len(rows),
                      "failed_after_trials": [check["trial"] for check in failed_checks], "final": checks,
                      "first_failure": failed_checks[0] if failed_checks else None},
        "wall_seconds": round(wall, 2),
        "ok": not failures,
        "failures": failures[:MAX_REPORTED_FAILURES],
        "per_trial": list(rows),
    }


def summary_lines(results: dict[str, Any]) -> list[str]:
    """A few lines for the terminal."""
    kills = results["kills"]
    flight = results["in_flight_batches"]
    return [
        f"{results['trials']} writers killed ({results['backend']}) in {results['wall_seconds']:.1f} s: "
        f"{kills['mid_batch']} mid-batch, {kills['between_batches']} between batches, "
        f"{kills['before_first_ack']} before the first ACK",
        f"in-flight batches: {flight['committed']} committed, {flight['rolled_back']} rolled back",
        f"acknowledged batches {results['acknowledged_batches']}, lost {results['lost_acknowledged']}, "
        f"half-written {results['half_written']}, unexpected {results['unexpected_batches']}, "
        f"writer errors {results['writer_errors']}",
        f"integrity: {'ok' if results['integrity']['ok'] else 'FAILED'}; "
        f"{'PASS' if results['ok'] else 'FAIL: ' + '; '.join(results['failures'])}",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m engram.bench.faults --writer URL TAG BATCH DIM``: the process the benchmark kills."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--writer", nargs=4, metavar=("URL", "TAG", "BATCH", "DIM"), required=True)
    url, tag, size, dim = parser.parse_args(argv).writer
    writer_main(url, tag, int(size), int(dim))


if __name__ == "__main__":
    main()
