"""``engram bench pg-scale``: the PostgreSQL store on realistic text.

Two measurements: full-search latency on the largest LoCoMo conversation (one scope) next to the
SQLite store holding the same turns, as the baseline measured in the same run; and HNSW recall@10
against the exact top 10 on a corpus store of ``n`` recombined LoCoMo memories
(``engram.bench.scale_corpus``), for several ``ef_search`` values, with their latency."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engram.bench import metrics
from engram.bench.runner import machine_info
from engram.bench.scale import timed
from engram.bench.scale_corpus import CorpusEmbedder, ScaleCorpus, bulk_load, scope_plan
from engram.embed.base import Embedder
from engram.errors import ValidationError


def conversation_messages(data: Path) -> tuple[list[dict[str, str]], list[str]]:
    """The turns (as messages) and questions of the LoCoMo conversation with the most turns."""
    samples = json.loads(Path(data).read_text(encoding="utf-8"))
    best: tuple[list[dict[str, str]], list[str]] = ([], [])
    for sample in samples:
        conversation = sample.get("conversation", {})
        turns = [{"role": "user", "name": str(turn.get("speaker") or "user"), "content": str(turn["text"])}
                 for key, session in conversation.items() if key.startswith("session_") and isinstance(session, list)
                 for turn in session if str(turn.get("text", "")).strip()]
        if len(turns) > len(best[0]):
            best = (turns, [str(item["question"]) for item in sample.get("qa", []) if item.get("question")])
    if not best[0]:
        raise ValidationError(f"{data} holds no conversation turns", field="data")
    return best


def measure_conversation(url: str, data: Path, corpus: ScaleCorpus, out_dir: Path, *, queries: int) -> dict[str, Any]:
    """Search p50/p95 (full read path) on PostgreSQL and on SQLite holding the same conversation."""
    from engram import Memory
    from engram.models import Scope
    from engram.read.query import query_terms
    from engram.store.base import ListQuery

    messages, questions = conversation_messages(data)
    questions = (questions * (queries // max(1, len(questions)) + 1))[:queries]
    sqlite_path = out_dir / "conversation.db"
    for stale in out_dir.glob("conversation.db*"):
        stale.unlink()
    results: dict[str, Any] = {"turns": len(messages), "queries": len(questions)}
    for name, path, store_url in (("postgres", None, _schema_url(url, "engram_bench_conversation")),
                                  ("sqlite", str(sqlite_path), None)):
        memory = Memory(path, store_url, embedder=CorpusEmbedder(corpus))
        try:
            memory.delete_all(user_id="bench")
            for start in range(0, len(messages), 50):
                memory.add(messages[start:start + 50], user_id="bench", infer=False)
            memory.search(questions[0], user_id="bench")
            search = [timed(memory.search, text, user_id="bench") for text in questions]
            query = ListQuery(scope=Scope(user_id="bench"), limit=100, include_invalid=False)
            lexical = [timed(memory._store.lexical_search, query_terms(text), query) for text in questions]
        finally:
            memory.close()
        results[name] = {"search": metrics.latency_summary(search), "lexical": metrics.latency_summary(lexical)}
    for stale in out_dir.glob("conversation.db*"):
        stale.unlink()
    results["loadavg"] = os.getloadavg()
    return results


def measure_recall(url: str, corpus: ScaleCorpus, total: int, ef_values: Sequence[int], *, queries: int,
                   seed: int) -> dict[str, Any]:
    """HNSW recall@10 and latency per ``ef_search`` on a store of ``total`` corpus memories in one scope
    (built once in its own schema, reused while it holds that many)."""
    from engram.models import Scope
    from engram.store.base import ListQuery
    from engram.store.postgres import PostgresStore, unpack_vector

    store = PostgresStore(_schema_url(url, f"engram_bench_corpus_{total}"))
    try:
        began = time.perf_counter()
        if store.stats()["memories"] != total:
            store.reset()
            bulk_load(store, corpus, scope_plan(total, 1), seed=seed, batch=2000)
        load_seconds = time.perf_counter() - began
        with store._connection() as connection:
            rows = connection.execute("SELECT memory_id, vector_send(embedding) FROM vectors").fetchall()
        ids = [row[0] for row in rows]
        matrix = np.stack([unpack_vector(row[1]) for row in rows])
        rng = random.Random(seed)
        picks = [corpus.question_vectors[rng.randrange(len(corpus.questions))] for _ in range(queries)]
        exact = [{ids[i] for i in np.argpartition(-(matrix @ vector), 10)[:10]} for vector in picks]
        query = ListQuery(scope=Scope(user_id="user-0"), limit=10, include_invalid=False)
        sweep = []
        for ef in ef_values:
            store.hnsw_ef_search = ef
            found, seconds = [], []
            for vector in picks:
                began_query = time.perf_counter()
                found.append({c.memory_id for c in store.vector_search(vector, query)})
                seconds.append(time.perf_counter() - began_query)
            recall = float(np.mean([len(a & b) / 10 for a, b in zip(exact, found, strict=True)]))
            sweep.append({"ef_search": ef, "recall_at_10": recall, "latency": metrics.latency_summary(seconds)})
    finally:
        store.close()
    return {"n": total, "load_seconds": load_seconds, "sweep": sweep, "loadavg": os.getloadavg()}


def run_pg_scale(url: str, data: Path, out_dir: Path, *, embedder: Embedder, sizes: Sequence[int],
                 ef_values: Sequence[int], queries: int = 200, seed: int = 13) -> dict[str, Any]:
    """Both measurements; the corpus embeddings are cached under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = ScaleCorpus.from_locomo(data, embedder, out_dir / "cache")
    return {
        "benchmark": "pg-scale",
        "machine": machine_info(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "conversation": measure_conversation(url, data, corpus, out_dir, queries=queries),
        "recall": [measure_recall(url, corpus, total, ef_values, queries=queries, seed=seed) for total in sizes],
    }


def render_pg_scale_markdown(results: dict[str, Any]) -> str:
    """The report: search latency next to SQLite, then recall and latency per ef_search and size."""
    conversation = results["conversation"]
    lines = ["# PostgreSQL scale benchmark", "", f"- command: `{results.get('command') or '-'}`",
             f"- date {results['created_at']}; load average {conversation['loadavg'][0]:.1f} after the latency part",
             "", f"Search on one LoCoMo conversation ({conversation['turns']} turns, {conversation['queries']} "
             "questions, full read path, lookup embedder):", "",
             "| store | search p50 ms | search p95 ms | lexical p50 ms | lexical p95 ms |", "|---|---|---|---|---|"]
    for name in ("postgres", "sqlite"):
        row = conversation[name]
        lines.append(f"| {name} | {row['search']['p50_ms']:.1f} | {row['search']['p95_ms']:.1f} | "
                     f"{row['lexical']['p50_ms']:.1f} | {row['lexical']['p95_ms']:.1f} |")
    lines += ["", "HNSW recall@10 against the exact top 10 (questions as queries):", "",
              "| n | ef_search | recall@10 | p50 ms | p95 ms |", "|---|---|---|---|---|"]
    for size in results["recall"]:
        for row in size["sweep"]:
            lines.append(f"| {size['n']:,} | {row['ef_search']} | {row['recall_at_10']:.3f} | "
                         f"{row['latency']['p50_ms']:.1f} | {row['latency']['p95_ms']:.1f} |")
    return "\n".join(lines) + "\n"


def _schema_url(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"
