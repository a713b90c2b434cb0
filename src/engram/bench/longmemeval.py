"""``engram bench longmemeval``: evidence retrieval on LongMemEval (``_s``, ``_m``, ``_oracle``).

Each question has its own haystack, so each question gets a fresh store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engram.bench.datasets import load_longmemeval
from engram.bench.runner import ProgressHook, RunSettings
from engram.bench.suite import SYSTEM_NAMES, SuiteRun, build_systems, default_embedder, run_suite
from engram.embed.base import Embedder

BENCHMARK = "longmemeval"


def run_longmemeval(data: str | Path, settings: RunSettings, out_dir: Path, *,
                    systems: Sequence[str] = SYSTEM_NAMES, embedder: Embedder | None = None,
                    progress: ProgressHook | None = None, qa: bool = True, recipe: str | None = None,
                    infer: bool = False, command: str = "") -> SuiteRun:
    """Load a LongMemEval file, run the systems on it and write the report into ``out_dir``."""
    conversations = load_longmemeval(data)
    built = build_systems(systems, embedder or default_embedder(), recipe=recipe, infer=infer)
    return run_suite(BENCHMARK, conversations, built, settings, out_dir, progress=progress, qa=qa,
                     data_file=str(data), command=command, recipe=recipe)
