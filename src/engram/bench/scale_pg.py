"""``engram bench pg-scale``: the PostgreSQL store on realistic text.

Two measurements: full-search latency on the largest LoCoMo conversation (one scope) next to the
SQLite store holding the same turns, as the baseline measured in the same run; and HNSW recall@10
against the exact top 10 on a corpus store of ``n`` recombined LoCoMo memories
(``engram.bench.scale_corpus``), for several ``ef_search`` values, with their latency."""

from __future__ import annotations

import json
import os
import random
import struct
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engram.bench import metrics
from engram.bench.runner import machine_info
from engram.bench.scale import timed
from engram.bench.scale_corpus import _EPOCH, NOISE_NORM, CorpusEmbedder, ScaleCorpus
from engram.config import HNSW_GRAPH
from engram.embed.base import Embedder
from engram.errors import ValidationError

if TYPE_CHECKING:
    from engram.store.postgres import PostgresStore

#: ``meta`` key recording which corpus a benchmark store holds.
_CORPUS_MARKER = "bench_corpus"
#: Schema of the conversation store, rebuilt by every run.
_CONVERSATION_SCHEMA = "engram_bench_conversation"


def parse_graph(text: str) -> tuple[int, int]:
    """``"24,128"`` -> ``(24, 128)``, an HNSW ``(m, ef_construction)`` within pgvector's bounds; a
    ValidationError naming ``graph`` (or a ConfigurationError naming the bound) otherwise."""
    from engram.store.postgres_schema import check_graph

    parts = text.replace(" ", "").split(",")
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise ValidationError(f"expected m,ef_construction (e.g. 24,128), got {text!r}", field="graph")
    return check_graph(int(parts[0]), int(parts[1]))


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
    """Search p50/p95 (full read path) and lexical search on PostgreSQL and on SQLite holding the same
    conversation, the two stores alternating question by question so that both see the same load."""
    from engram import Memory
    from engram.models import Scope
    from engram.store.base import ListQuery
    from engram.terms import query_terms

    messages, questions = conversation_messages(data)
    questions = (questions * (queries // max(1, len(questions)) + 1))[:queries]
    sqlite_path = out_dir / "conversation.db"
    for stale in out_dir.glob("conversation.db*"):
        stale.unlink()
    _drop_schema(url, _CONVERSATION_SCHEMA)
    stores = {"postgres": (None, _schema_url(url, _CONVERSATION_SCHEMA)), "sqlite": (str(sqlite_path), None)}
    memories = {name: Memory(path, store_url, embedder=CorpusEmbedder(corpus))
                for name, (path, store_url) in stores.items()}
    timings: dict[str, dict[str, list[float]]] = {name: {"search": [], "lexical": []} for name in memories}
    query = ListQuery(scope=Scope(user_id="bench"), limit=100, include_invalid=False)
    try:
        for memory in memories.values():
            memory.delete_all(user_id="bench")
            for start in range(0, len(messages), 50):
                memory.add(messages[start:start + 50], user_id="bench", infer=False)
            memory.store.purge()  # fresh planner statistics (delete_all's purge analysed empty tables)
            memory.search(questions[0], user_id="bench")
        loadavg_before = os.getloadavg()
        for text in questions:
            for name, memory in memories.items():
                timings[name]["search"].append(timed(memory.search, text, user_id="bench"))
                timings[name]["lexical"].append(timed(memory.store.lexical_search, query_terms(text), query))
    finally:
        for memory in memories.values():
            memory.close()
    for stale in out_dir.glob("conversation.db*"):
        stale.unlink()
    results: dict[str, Any] = {"turns": len(messages), "queries": len(questions)}
    for name, parts in timings.items():
        results[name] = {part: metrics.latency_summary(seconds) for part, seconds in parts.items()}
    results["loadavg_before"] = loadavg_before
    results["loadavg"] = os.getloadavg()
    return results


def copy_load(store: PostgresStore, corpus: ScaleCorpus, total: int, *, seed: int) -> None:
    """Fill ``store`` with ``total`` corpus memories in one scope (``user-0``) through ``COPY``, the way a bulk
    import would: the HNSW and full-text indexes are dropped during the load, the full-text ones rebuilt after
    it (the HNSW index by :func:`build_graph`).

    Only what a vector search reads is written: memory rows (scope, kind, dates) with their vectors. Their
    text is left empty (a vector search reads none, and its full-text columns were most of the load's
    time); no episodes, sources or history. Memory ids are ``c0000000``... in corpus row order."""
    from engram.store.postgres_schema import ensure_vector_dim

    dim = corpus.dim
    header = struct.pack(">hh", dim, 0)
    with store._pool.connection() as connection:
        store.reset()
        store.embedder_signature(CorpusEmbedder(corpus).signature)
        with connection.transaction():
            ensure_vector_dim(connection, dim, store.hnsw_graph)
        connection.execute("DROP INDEX IF EXISTS vectors_hnsw")
        connection.execute("DROP INDEX IF EXISTS memories_text_search")
        connection.execute("DROP INDEX IF EXISTS memories_keys_search")
        row = 0
        for _, _, vectors, moments in corpus.rows(total, seed):
            dates = [_EPOCH + timedelta(seconds=float(moment)) for moment in moments]
            ids = [f"c{row + index:07d}" for index in range(len(dates))]
            row += len(dates)
            with connection.transaction(), connection.cursor() as cursor:
                with cursor.copy("COPY memories (id, text, kind, user_id, valid_from, created_at, updated_at, hash) "
                                 "FROM STDIN") as copy:
                    for memory_id, date in zip(ids, dates, strict=True):
                        copy.write_row((memory_id, "", "episode", "user-0", date, date, date, memory_id))
                with cursor.copy("COPY vectors (memory_id, embedding) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["text", "bytea"])
                    for memory_id, vector in zip(ids, vectors.astype(">f4"), strict=True):
                        copy.write_row((memory_id, header + vector.tobytes()))
        connection.execute("SET maintenance_work_mem = '3GB'")
        connection.execute("CREATE INDEX memories_text_search ON memories USING gin (text_tsv)")
        connection.execute("CREATE INDEX memories_keys_search ON memories USING gin (keys_tsv)")
        connection.execute("ANALYZE memories, vectors")


def build_graph(store: PostgresStore, m: int, ef_construction: int) -> bool:
    """(Re)build ``vectors_hnsw`` with graph degree ``m`` and build list ``ef_construction`` unless it already
    has them; True when it was built."""
    wanted = [f"m={m}", f"ef_construction={ef_construction}"]
    with store._pool.connection() as connection:
        row = connection.execute("SELECT reloptions FROM pg_class WHERE oid = to_regclass('vectors_hnsw')").fetchone()
        if row is not None and sorted(row[0] or []) == sorted(wanted):
            return False
        connection.execute("DROP INDEX IF EXISTS vectors_hnsw")
        connection.execute("SET maintenance_work_mem = '3GB'")
        connection.execute(f"CREATE INDEX vectors_hnsw ON vectors USING hnsw (embedding vector_ip_ops) "
                           f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})")
        connection.execute("ANALYZE vectors")
    return True


def measure_recall(url: str, corpus: ScaleCorpus, total: int, ef_values: Sequence[int], *, queries: int,
                   seed: int, graph: tuple[int, int] = HNSW_GRAPH) -> dict[str, Any]:
    """HNSW recall@10 and latency per ``ef_search`` on a store of ``total`` corpus memories in one scope
    (loaded once in its own schema by :func:`copy_load`, reused while its marker says so; its HNSW index is
    rebuilt when ``graph``, its ``(m, ef_construction)``, changes). The exact top 10 is numpy over the same
    vectors, regenerated from the corpus (float32 round-trips exactly)."""
    from engram.models import Scope
    from engram.store.base import ListQuery
    from engram.store.postgres import PostgresStore

    store = PostgresStore(_schema_url(url, f"engram_bench_corpus_{total}"), hnsw_ef_search=max(ef_values))
    marker = json.dumps({"signature": corpus.signature, "turns": len(corpus.turns), "total": total, "seed": seed,
                         "noise": NOISE_NORM, "rows": "vectors"})
    try:
        began = time.perf_counter()
        if store.setting(_CORPUS_MARKER, "") != marker:
            copy_load(store, corpus, total, seed=seed)
            with store._pool.connection() as connection:
                connection.execute("UPDATE meta SET value = %s WHERE key = %s", (marker, _CORPUS_MARKER))
        load_seconds = time.perf_counter() - began
        began = time.perf_counter()
        graph_seconds = time.perf_counter() - began if build_graph(store, *graph) else None
        matrix = np.concatenate([vectors for _, _, vectors, _ in corpus.rows(total, seed)])
        rng = random.Random(seed)
        picks = [corpus.question_vectors[rng.randrange(len(corpus.questions))] for _ in range(queries)]
        exact = [{f"c{i:07d}" for i in np.argpartition(-(matrix @ vector), 10)[:10]} for vector in picks]
        del matrix
        query = ListQuery(scope=Scope(user_id="user-0"), limit=10, include_invalid=False)
        sweep = []
        for ef in ef_values:
            store.hnsw_ef_search = ef
            store.vector_search(picks[0], query)
            found, seconds = [], []
            for vector in picks:
                began_query = time.perf_counter()
                found.append({c.memory_id for c in store.vector_search(vector, query)})
                seconds.append(time.perf_counter() - began_query)
            recall = float(np.mean([len(a & b) / 10 for a, b in zip(exact, found, strict=True)]))
            sweep.append({"ef_search": ef, "recall_at_10": recall, "latency": metrics.latency_summary(seconds),
                          "loadavg": os.getloadavg()})
    finally:
        store.close()
    return {"n": total, "m": graph[0], "ef_construction": graph[1], "load_seconds": load_seconds,
            "graph_seconds": graph_seconds, "sweep": sweep, "loadavg": os.getloadavg()}


def run_pg_scale(url: str, data: Path, out_dir: Path, *, embedder: Embedder, sizes: Sequence[int],
                 ef_values: Sequence[int], queries: int = 200, seed: int = 13,
                 graph: tuple[int, int] = HNSW_GRAPH) -> dict[str, Any]:
    """Both measurements (no recall sweep when ``sizes`` is empty), the recall sweep on HNSW graphs of
    ``graph`` = ``(m, ef_construction)``; the corpus embeddings are cached under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = ScaleCorpus.from_locomo(data, embedder, out_dir / "cache")
    return {
        "benchmark": "pg-scale",
        "machine": machine_info(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "conversation": measure_conversation(url, data, corpus, out_dir, queries=queries),
        "recall": [measure_recall(url, corpus, total, ef_values, queries=queries, seed=seed, graph=graph)
                   for total in sizes],
    }


def render_pg_scale_markdown(results: dict[str, Any]) -> str:
    """The report: search latency next to SQLite (and their ratio), then recall and latency per
    ef_search and size."""
    conversation = results["conversation"]
    lines = ["# PostgreSQL scale benchmark", "", f"- command: `{results.get('command') or '-'}`",
             f"- date {results['created_at']}; load average {_load(conversation['loadavg_before'])} before and "
             f"{_load(conversation['loadavg'])} after the latency part", "",
             f"Search on one LoCoMo conversation ({conversation['turns']} turns, {conversation['queries']} "
             "questions, full read path, lookup embedder; the two stores alternate question by question):", "",
             "| store | search p50 ms | search p95 ms | lexical p50 ms | lexical p95 ms |", "|---|---|---|---|---|"]
    for name in ("postgres", "sqlite"):
        row = conversation[name]
        lines.append(f"| {name} | {row['search']['p50_ms']:.1f} | {row['search']['p95_ms']:.1f} | "
                     f"{row['lexical']['p50_ms']:.1f} | {row['lexical']['p95_ms']:.1f} |")
    ratios = [conversation["postgres"][part][key] / max(conversation["sqlite"][part][key], 1e-9)
              for part in ("search", "lexical") for key in ("p50_ms", "p95_ms")]
    lines.append("| postgres / sqlite | " + " | ".join(f"{ratio:.2f}x" for ratio in ratios) + " |")
    if results["recall"]:
        lines += ["", "HNSW recall@10 against the exact top 10 (questions as queries):", "",
                  "| n | m, ef_construction | load s | graph build s | ef_search | recall@10 | p50 ms | p95 ms "
                  "| load average |", "|---|---|---|---|---|---|---|---|---|"]
        for size in results["recall"]:
            built = "-" if size["graph_seconds"] is None else f"{size['graph_seconds']:.0f}"
            for row in size["sweep"]:
                lines.append(f"| {size['n']:,} | {size['m']}, {size['ef_construction']} | "
                             f"{size['load_seconds']:.0f} | {built} | {row['ef_search']} | "
                             f"{row['recall_at_10']:.3f} | {row['latency']['p50_ms']:.1f} | "
                             f"{row['latency']['p95_ms']:.1f} | {_load(row['loadavg'])} |")
    return "\n".join(lines) + "\n"


def _load(loadavg: Sequence[float]) -> str:
    return f"{loadavg[0]:.1f}"


def _schema_url(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def _drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
