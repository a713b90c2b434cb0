"""``engram bench locomo``: evidence retrieval on LoCoMo (categories 1-4; 5 for abstention)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engram.bench.datasets import SpeakerRole, load_locomo
from engram.bench.runner import ProgressHook, RunSettings
from engram.bench.suite import SYSTEM_NAMES, SuiteRun, build_systems, default_embedder, run_suite
from engram.embed.base import Embedder

BENCHMARK = "locomo"


def run_locomo(data: str | Path, settings: RunSettings, out_dir: Path, *,
               systems: Sequence[str] = SYSTEM_NAMES, embedder: Embedder | None = None,
               progress: ProgressHook | None = None, qa: bool = True, recipe: str | None = None,
               speaker_prefix: bool = True, infer: bool = False, stream: bool = False, shared_store: bool = False,
               command: str = "", second_speaker_role: SpeakerRole = "user") -> SuiteRun:
    """Load a LoCoMo file, run the systems on it and write the report into ``out_dir``.

    ``speaker_prefix`` gives every system turns written ``"Speaker: text"`` (LoCoMo questions
    name the speakers); ``recipe`` names Engram's retrieval recipe; ``infer`` ingests through the
    configured LLM (``ENGRAM_LLM_*``); ``stream`` adds one turn per call, in order, as agents write;
    ``shared_store`` writes every conversation into one store, a user each, each conversation's questions
    asked after it is written; ``second_speaker_role`` is the role ``speaker_b`` speaks as (``load_locomo``)."""
    conversations = load_locomo(data, speaker_prefix=speaker_prefix, second_speaker_role=second_speaker_role)
    built = build_systems(systems, embedder or default_embedder(), recipe=recipe, infer=infer, stream=stream,
                          shared_store=shared_store)
    return run_suite(BENCHMARK, conversations, built, settings, out_dir, progress=progress, qa=qa,
                     data_file=str(data), command=command, recipe=recipe)
