"""Putting an accuracy run together: the embedder, the systems, the run and its report."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engram.bench.baselines import BM25System, DenseSystem
from engram.bench.datasets import Conversation
from engram.bench.qa import QAJudge, judge_from_environment
from engram.bench.report import write_report
from engram.bench.runner import ProgressHook, RunSettings, run_benchmark
from engram.bench.systems import EngramSystem, RetrievalSystem
from engram.config import EmbedderConfig, EngramConfig
from engram.embed.base import Embedder
from engram.errors import ValidationError

SYSTEM_NAMES = ("engram", "bm25", "dense")


def default_embedder() -> Embedder:
    """The configured embedder (``ENGRAM_EMBED_PROVIDER`` / ``ENGRAM_EMBED_MODEL`` ..., Engram's default
    when unset), loaded once and warmed up.

    Its query cache is off: systems share the embedder, and the one searching second must not
    find the question's vector already computed."""
    from engram.embed import CachedEmbedder
    from engram.providers import make_embedder

    embedder = make_embedder(EmbedderConfig())
    if isinstance(embedder, CachedEmbedder):
        embedder = embedder.inner
    embedder.embed(["warm-up"])
    return embedder


def build_systems(names: Sequence[str], embedder: Embedder, *, recipe: str | None = None,
                  infer: bool = False, stream: bool = False, shared_store: bool = False) -> list[RetrievalSystem]:
    """The systems named in ``names`` (``engram``, ``bm25``, ``dense``), sharing one embedder.

    ``recipe`` names Engram's retrieval recipe (default: the configured one); ``infer`` makes Engram
    ingest with ``add(..., infer=True)`` through the LLM configured in the environment; ``stream`` makes it
    add one turn per call; ``shared_store`` writes every conversation into one store, a user each."""
    unknown = [name for name in names if name not in SYSTEM_NAMES]
    if unknown or not names:
        raise ValidationError(f"unknown systems {unknown}; choose from {', '.join(SYSTEM_NAMES)}", field="systems")
    memory_options = {"config": EngramConfig(retrieval=recipe)} if recipe else None
    systems: list[RetrievalSystem] = []
    for name in dict.fromkeys(names):
        if name == "engram":
            systems.append(EngramSystem(embedder, infer=infer, stream=stream, shared_store=shared_store,
                                        memory_options=memory_options))
        elif name == "bm25":
            systems.append(BM25System())
        else:
            systems.append(DenseSystem(embedder))
    return systems


@dataclass
class SuiteRun:
    """What one accuracy run produced."""

    results: dict[str, Any]
    records: list[dict[str, Any]]
    files: dict[str, Path] = field(default_factory=dict)


def qa_judge(benchmark: str, systems: Sequence[RetrievalSystem], enabled: bool) -> tuple[QAJudge | None, str]:
    """The QA judge when asked for and possible, else None and why not."""
    if not enabled:
        return None, "QA not requested"
    judge, note = judge_from_environment(benchmark)
    if judge is None:
        return None, note
    from engram import Memory

    if not any(isinstance(system, EngramSystem) for system in systems) or not hasattr(Memory, "answer"):
        return None, "QA skipped: Memory.answer is not available"
    return judge, note


def run_suite(benchmark: str, conversations: Sequence[Conversation], systems: Sequence[RetrievalSystem],
              settings: RunSettings, out_dir: Path, *, progress: ProgressHook | None = None,
              qa: bool = True, data_file: str = "", command: str = "", recipe: str | None = None) -> SuiteRun:
    """Run ``systems`` over ``conversations`` and write the report files into ``out_dir``."""
    judge, note = qa_judge(benchmark, systems, qa)
    started = time.perf_counter()
    results, records = run_benchmark(benchmark, conversations, systems, settings, out_dir, progress=progress,
                                     qa=judge, data_file=data_file, command=command)
    results["qa"]["note"] = note
    results["settings"]["engram_recipe"] = recipe or "default"
    results["wall_seconds"] = time.perf_counter() - started
    files = write_report(results, records, out_dir)
    return SuiteRun(results, records, files)
