"""What ``engram reembed`` costs beyond the embedder: ``python -m engram.bench.reembed_speed --data
locomo.json --url URL [--turns 2000]``.

Stores the first ``--turns`` LoCoMo turns (one ``add`` per session) with one word-level static model
(``engram.bench.word_model``, 64-d; static models embed thousands of texts per second), then moves the
store to another (96-d) and prints the wall and process CPU time of the re-embedding. The store at
``--url`` is reset first: use a scratch file or schema."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from engram.bench.word_model import write_word_model
from engram.embed import build_embedder
from engram.memory import Memory


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="LoCoMo JSON (a list of samples)")
    parser.add_argument("--url", required=True, help="scratch store URL (it is reset)")
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    options = parser.parse_args(argv)
    sessions = [(sample["sample_id"], turns) for sample in json.loads(options.data.read_text())
                for key, turns in sample["conversation"].items()
                if key.startswith("session_") and isinstance(turns, list)]
    words = [turn["text"] for _, turns in sessions for turn in turns]
    with tempfile.TemporaryDirectory() as folder:
        old = build_embedder("static", model=str(write_word_model(Path(folder) / "old", words, dim=64, seed=1)))
        new = build_embedder("static", model=str(write_word_model(Path(folder) / "new", words, dim=96, seed=2)))
        with Memory(url=options.url, embedder=old) as memory:
            memory.reset()
            stored = 0
            for index, (sample_id, turns) in enumerate(sessions):
                if stored >= options.turns:
                    break
                memory.add([{"role": "user", "name": turn["speaker"], "content": turn["text"]} for turn in turns],
                           user_id=sample_id, timestamp=f"2024-02-{index % 28 + 1:02d}T10:00:00Z", infer=False)
                stored += len(turns)
        load = os.getloadavg()[0]
        with Memory(url=options.url, embedder=new) as memory:
            start, cpu = time.perf_counter(), time.process_time()
            report = memory.reembed(batch_size=options.batch_size)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"memories": report["memories"], "wall_s": round(wall, 2), "process_cpu_s": round(cpu, 2),
                      "memories_per_s": round(report["memories"] / wall, 1),
                      "load": [round(load, 1), round(os.getloadavg()[0], 1)], "report": report}))


if __name__ == "__main__":
    main()
