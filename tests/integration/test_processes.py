"""Real processes against one SQLite file: persistence, concurrent writers, crash safety."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from engram import Memory
from engram.embed.base import Embedder

WRITER = textwrap.dedent("""
    import sys
    from engram import Memory
    from engram.embed.onnx_dynamic import OnnxDynamicInt8Embedder
    path, tag, batches, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    memory = Memory(path=path, embedder=OnnxDynamicInt8Embedder())
    for b in range(batches):
        result = memory.add([f"{tag} batch {b} message {i}" for i in range(size)], user_id=tag)
        print(f"ACK {b} {len(result['results'])}", flush=True)
    memory.close()
""")


def run_writer(path: Path, tag: str, batches: int, size: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, str(batches), str(size)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_data_persists_across_processes(db_path: Path, embedder: Embedder) -> None:
    writer = run_writer(db_path, "alice", 2, 3)
    _, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    with Memory(path=str(db_path), embedder=embedder) as memory:
        assert memory.get_all(user_id="alice")["total"] == 6
        hit = memory.search("alice batch 1 message 2", user_id="alice", limit=1)["results"][0]
        assert hit["memory"] == "alice batch 1 message 2"


def test_two_processes_write_at_once_without_errors(db_path: Path, embedder: Embedder) -> None:
    Memory(path=str(db_path), embedder=embedder).close()
    writers = [run_writer(db_path, tag, 15, 4) for tag in ("p1", "p2", "p3")]
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        assert "locked" not in err
        assert out.count("ACK") == 15
    with Memory(path=str(db_path), embedder=embedder) as memory:
        for tag in ("p1", "p2", "p3"):
            assert memory.get_all(user_id=tag)["total"] == 60


def test_killed_writer_leaves_consistent_store(db_path: Path, embedder: Embedder) -> None:
    Memory(path=str(db_path), embedder=embedder).close()
    trials = 3
    for trial in range(trials):
        writer = run_writer(db_path, f"k{trial}", 1000, 5)
        acknowledged = 0
        assert writer.stdout is not None
        deadline = time.monotonic() + 120
        while acknowledged < 3 + trial and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if line.startswith("ACK"):
                acknowledged += 1
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
        with Memory(path=str(db_path), embedder=embedder) as memory:
            total = memory.get_all(user_id=f"k{trial}", limit=10_000)["total"]
            episodes = memory.stats(user_id=f"k{trial}")["episodes"]
        assert total >= acknowledged * 5
        assert total % 5 == 0, "a batch was half-written"
        assert episodes == total
    connection = sqlite3.connect(db_path)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert connection.execute("INSERT INTO memories_fts(memories_fts) VALUES ('integrity-check')").fetchall() == []
    orphans = connection.execute("SELECT count(*) FROM memories m LEFT JOIN vectors v ON v.memory_id = m.id "
                                 "WHERE v.memory_id IS NULL").fetchone()[0]
    assert orphans == 0
    connection.close()


def _thread_worker(path: str, tag: str, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    from engram.embed.onnx_dynamic import OnnxDynamicInt8Embedder

    memory = Memory(path=path, embedder=OnnxDynamicInt8Embedder())
    errors = 0
    for i in range(10):
        try:
            memory.add(f"{tag} note {i}", user_id="shared")
            memory.search(f"{tag} note", user_id="shared")
        except Exception:
            errors += 1
    memory.close()
    queue.put(errors)


def test_concurrent_add_and_search_from_processes(db_path: Path, embedder: Embedder) -> None:
    Memory(path=str(db_path), embedder=embedder).close()
    context = mp.get_context("spawn")
    queue: mp.Queue = context.Queue()  # type: ignore[type-arg]
    workers = [context.Process(target=_thread_worker, args=(str(db_path), f"w{i}", queue)) for i in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [queue.get(timeout=5) for _ in workers] == [0, 0, 0]
    with Memory(path=str(db_path), embedder=embedder) as memory:
        assert memory.get_all(user_id="shared")["total"] == 30
