"""``engram bench ingest --profile``: where one ``Memory.add`` spends its time, step by step.

Engram writes the same sessions once more under ``cProfile`` (one add per turn, then one add per
session); the cumulative time of each write-path step is read from the profile and given per turn and
as a share of ``run_add``. Rows named "a > b" are part of row "a". The model runs on a background thread
while the guard prepares (``engram.write.pipeline.embed_and_prepare``): its own time is the last row, and
what the add waited for it is the "waiting for the model" row. cProfile slows pure-Python code more
than C code (SQLite, the model), so the shares are indicative; the benchmark's throughput figures are
measured without it.
"""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engram.bench.ingest import ENGRAM, SessionBatch, TimedEmbedder, measure_engram

#: The profiled functions: ``(label, file suffix, function name)``. Rows are cumulative times; the
#: nested ones (context rows inside store writes, FTS rows inside the transaction) are marked in their labels.
STEPS = (
    ("whole add (run_add)", "write/pipeline.py", "run_add"),
    ("validate, episodes, turns (draft_episodes)", "write/pipeline.py", "draft_episodes"),
    ("embedding, the guard's preparation beside it (embed_and_prepare)", "write/pipeline.py", "embed_and_prepare"),
    ("embedding > key text 'Speaker: text' (embedding_text)", "write/keys.py", "embedding_text"),
    ("embedding > guard: recent records, patterns, while the model runs (prepare_screening)", "write/quarantine.py",
     "prepare_screening"),
    ("embedding > waiting for the model (wait)", "concurrent/futures/_base.py", "wait"),
    ("guard verdicts: anomalies against the context (screen)", "write/pipeline.py", "screen"),
    ("commit, under the scope lock (commit)", "write/pipeline.py", "commit"),
    ("commit > supersession check (detect_supersessions)", "write/supersede.py", "detect_supersessions"),
    ("commit > neighbour context: reads and mixing (context.refresh)", "write/context.py", "refresh"),
    ("commit > store writes: rows, sources, vectors, FTS, history (Store.apply)", "store/sqlite.py", "apply"),
    ("commit > store writes > neighbour context rows (set_context)", "store/sqlite_write.py", "set_context"),
    ("commit > rest > FTS rows, each written once before COMMIT (FtsWrites.flush)", "store/sqlite_write.py", "flush"),
)
#: The steps ``run_add`` runs one after the other, and those of ``commit`` (the rest of each is its own row).
ADD_PARTS = ("draft_episodes", "embed_and_prepare", "screen", "commit")
COMMIT_PARTS = ("detect_supersessions", "refresh", "apply")
TRANSACTION_LABEL = "commit > rest: BEGIN, FTS rows, COMMIT (fsync)"
OTHER_LABEL = "rest of add (response, scope, metadata checks)"
#: The model runs on a background thread (cProfile sees only the thread calling ``add``): its time is the
#: embedder's own clock, beside the rows above, of which the wait for it is part.
MODEL_LABEL = "beside them: the model on its own thread (Embedder.embed)"


def _cumulative(stats: pstats.Stats, suffix: str, name: str) -> float:
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    return sum(row[3] for (file, _, function), row in table.items()
               if function == name and file.replace("\\", "/").endswith(suffix))


def breakdown(stats: pstats.Stats, turns: int) -> list[dict[str, Any]]:
    """Rows ``{"step", "ms_per_turn", "share"}`` from a profile of adds that wrote ``turns`` turns."""
    seconds = {label: _cumulative(stats, suffix, name) for label, suffix, name in STEPS}
    by_function = {name: seconds[label] for label, _, name in STEPS}
    total = by_function["run_add"] or 1e-9
    inside = sum(by_function[name] for name in COMMIT_PARTS)
    top = sum(by_function[name] for name in ADD_PARTS)
    rows = [*seconds.items()]
    rows.append((TRANSACTION_LABEL, max(by_function["commit"] - inside, 0.0)))
    rows.append((OTHER_LABEL, max(total - top, 0.0)))
    return [{"step": label, "ms_per_turn": 1000 * value / turns, "share": value / total} for label, value in rows]


def profile_modes(batches: Sequence[SessionBatch], embedder: TimedEmbedder, folder: Path,
                  modes: Sequence[str] = ("turn", "session"), *,
                  synchronous: str = "FULL") -> dict[str, list[dict[str, Any]]]:
    """The step breakdown of each of ``modes`` (a fresh store each), profiled with cProfile."""
    results = {}
    for mode in modes:
        target = folder / f"profile-{ENGRAM}-{mode}"
        target.mkdir(parents=True, exist_ok=True)
        profiler = cProfile.Profile()
        turns = sum(len(batch.messages) for batch in batches)
        profiler.enable()
        try:
            measured = measure_engram(mode, batches, embedder, target, _ignore, synchronous=synchronous)
        finally:
            profiler.disable()
        rows = breakdown(pstats.Stats(profiler), turns)
        model_ms = 1000 * measured.embed_seconds / turns
        add_ms = rows[0]["ms_per_turn"] or 1e-9
        rows.append({"step": MODEL_LABEL, "ms_per_turn": model_ms, "share": model_ms / add_ms})
        results[mode] = rows
    return results


def _ignore(_: int) -> None:
    return None


def render_breakdown(profiles: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Markdown table: one row per step, ms per turn and share of the add per profiled mode."""
    modes = list(profiles)
    header = "| step | " + " | ".join(f"one add per {mode}: ms/turn (share)" for mode in modes) + " |"
    lines = [header, "|---|" + "---|" * len(modes)]
    for index, row in enumerate(profiles[modes[0]]):
        cells = [f"{profiles[mode][index]['ms_per_turn']:.2f} ({profiles[mode][index]['share']:.0%})"
                 for mode in modes]
        lines.append(f"| {row['step']} | " + " | ".join(cells) + " |")
    return lines

