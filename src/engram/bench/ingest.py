"""``engram bench ingest``: how fast memory is written, and where the time goes (issue 14).

LoCoMo conversations are written into fresh stores three ways, in the order they were said:

- ``turn``: one ``Memory.add`` per message (as a live agent writes);
- ``session``: one ``Memory.add`` per session (the whole session's messages);
- ``import``: the code path of ``engram import FILE`` on the same conversations (one add per session,
  with the file's turn and session ids in metadata).

Each mode runs ``repeats`` times into a new store; turns/s is the median over repeats, and p50/p95 are
over every add of every repeat. The embedder is wrapped in :class:`TimedEmbedder`, so each figure also
says how much of the time the model took and what is left without it. Turns per CPU-second (the
process's CPU time, the model's threads included) are given beside turns per second: on a shared
machine they move much less with the load. With ``vs_mem0`` (and ``mem0ai``
installed) mem0's ``Memory`` writes the same messages in the same run, repeat by repeat, with the same
embedder (``engram.bench.ingest_mem0``); the ratios compare the two on equal terms.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engram.bench.datasets import Conversation, load_locomo
from engram.bench.metrics import latency_summary
from engram.bench.runner import ProgressHook, machine_info
from engram.embed.base import Embedder, WrappingEmbedder
from engram.errors import ValidationError

MODES = ("turn", "session", "import")
ENGRAM = "engram"
MEM0 = "mem0"
JSON_FILE = "ingest.json"
MARKDOWN_FILE = "ingest.md"
PLOT_FILE = "ingest_throughput.png"
#: The figures compared between Engram and mem0.
RATIO_KEYS = ("turns_per_s", "turns_per_s_without_embedding", "turns_per_cpu_s", "turns_per_cpu_s_without_embedding")


class TimedEmbedder(WrappingEmbedder):
    """Any embedder, counting its calls, the texts it embedded, the seconds it took and the CPU seconds of
    the process meanwhile (the model's threads included). ``add`` runs the model on a background thread
    while its caller goes on screening: there the caller's CPU meanwhile is not the model's, and is left out
    (where the platform can read another thread's CPU clock)."""

    def __init__(self, inner: Embedder) -> None:
        super().__init__(inner)
        self.calls = 0
        self.texts = 0
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self._caller = threading.get_ident()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        started, cpu, caller = time.perf_counter(), time.process_time(), self._caller_cpu()
        try:
            return self.inner.embed(texts)
        finally:
            self._count(started, cpu, caller, len(texts))

    def embed_query(self, text: str) -> np.ndarray:
        started, cpu, caller = time.perf_counter(), time.process_time(), self._caller_cpu()
        try:
            return self.inner.embed_query(text)
        finally:
            self._count(started, cpu, caller, 1)

    def _caller_cpu(self) -> float:
        """CPU seconds of the thread that made this embedder, when the model runs on another one (else 0)."""
        if threading.get_ident() == self._caller or not hasattr(time, "pthread_getcpuclockid"):
            return 0.0
        try:
            return time.clock_gettime(time.pthread_getcpuclockid(self._caller))
        except OSError:  # that thread has ended
            return 0.0

    def _count(self, started: float, cpu: float, caller: float, texts: int) -> None:
        self.seconds += time.perf_counter() - started
        self.cpu_seconds += time.process_time() - cpu - (self._caller_cpu() - caller if caller else 0.0)
        self.calls += 1
        self.texts += texts

    def reset(self) -> None:
        """Start counting from zero (on the thread calling ``reset``, the one that adds)."""
        self.calls, self.texts, self.seconds, self.cpu_seconds = 0, 0, 0.0, 0.0
        self._caller = threading.get_ident()


@dataclass(frozen=True)
class IngestSettings:
    """What ``run_ingest`` measures."""

    conversations: int | None = None
    repeats: int = 3
    modes: tuple[str, ...] = MODES
    vs_mem0: bool = False
    profile: bool = False
    #: SQLite's ``synchronous`` for Engram's stores (Engram's default ``FULL`` syncs the file at every commit).
    synchronous: str = "FULL"

    def __post_init__(self) -> None:
        unknown = [mode for mode in self.modes if mode not in MODES]
        if unknown or not self.modes:
            raise ValidationError(f"unknown modes {unknown}; choose from {', '.join(MODES)}", field="modes")
        if self.repeats < 1:
            raise ValidationError("repeats must be at least 1", field="repeats")
        if self.conversations is not None and self.conversations < 1:
            raise ValidationError("conversations must be at least 1", field="conversations")


@dataclass(frozen=True)
class SessionBatch:
    """One session of one conversation: its user id, date and messages (as ``engram import`` writes them)."""

    user_id: str
    date: str
    messages: list[dict[str, Any]]


@dataclass
class Measurement:
    """One system writing every session once in one mode."""

    system: str
    mode: str
    turns: int
    seconds: float
    cpu_seconds: float
    embed_seconds: float
    embed_cpu_seconds: float
    embed_calls: int
    add_seconds: list[float] = field(default_factory=list)


def session_batches(conversations: Sequence[Conversation]) -> list[SessionBatch]:
    """Every session of ``conversations`` in order, with its messages."""
    return [SessionBatch(user_id=conversation.conversation_id, date=session.date.isoformat(),
                         messages=[{"role": turn.role, "content": turn.text, "name": turn.speaker,
                                    "metadata": {"turn_id": turn.turn_id, "session_id": session.session_id}}
                                   for turn in session.turns])
            for conversation in conversations for session in conversation.sessions if session.turns]


class _AddTimer:
    """Calls ``add`` and keeps how long each call took."""

    def __init__(self, add: Callable[..., Any]) -> None:
        self.add = add
        self.seconds: list[float] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.add(*args, **kwargs)
        finally:
            self.seconds.append(time.perf_counter() - started)


def _engram_adds(mode: str, batches: Sequence[SessionBatch], add: Callable[..., Any],
                 advance: Callable[[int], None]) -> None:
    for batch in batches:
        if mode == "turn":
            for message in batch.messages:
                add(message, user_id=batch.user_id, timestamp=batch.date, infer=False)
                advance(1)
        else:
            add(batch.messages, user_id=batch.user_id, timestamp=batch.date, infer=False)
            advance(len(batch.messages))


def measure_engram(mode: str, batches: Sequence[SessionBatch], embedder: TimedEmbedder, folder: Path,
                   advance: Callable[[int], None], data_file: Path | None = None,
                   synchronous: str = "FULL") -> Measurement:
    """Engram writing ``batches`` into a new SQLite store in ``folder`` (``import``: from ``data_file``)."""
    from engram.config import EngramConfig
    from engram.memory import Memory

    turns = sum(len(batch.messages) for batch in batches)
    config = EngramConfig(sqlite_synchronous=synchronous)
    with Memory(path=str(folder / "engram.db"), config=config, embedder=embedder) as memory:
        timer = _AddTimer(memory.add)
        embedder.reset()
        started, cpu = time.perf_counter(), time.process_time()
        if mode == "import":
            if data_file is None:
                raise ValidationError("the import mode needs the data file", field="data")
            _run_import(memory, data_file, timer, advance)
        else:
            _engram_adds(mode, batches, timer, advance)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Measurement(ENGRAM, mode, turns, seconds, cpu, embedder.seconds, embedder.cpu_seconds, embedder.calls,
                       timer.seconds)


def _run_import(memory: Any, data_file: Path, timer: _AddTimer, advance: Callable[[int], None]) -> None:
    """``engram import data_file`` in this process, each add timed (and counted as its messages)."""
    from rich.progress import Progress

    from engram.cli.io import import_dataset

    def add(messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        result = timer(messages, **kwargs)
        advance(len(messages))
        return result

    memory.add = add
    import_dataset(memory, data_file, "locomo", "", Progress(disable=True), set())


def measure_mem0(mode: str, batches: Sequence[SessionBatch], embedder: TimedEmbedder, folder: Path,
                 advance: Callable[[int], None]) -> Measurement:
    """mem0 (``infer=False``, offline, same embedder) writing ``batches`` one add per turn or per session."""
    from engram.bench.ingest_mem0 import mem0_session, offline_mem0

    turns = sum(len(batch.messages) for batch in batches)
    memory = offline_mem0(folder, embedder)
    timer = _AddTimer(memory.add)
    embedder.reset()
    started, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        messages = mem0_session(batch.messages)
        if mode == "turn":
            for message in messages:
                timer([message], user_id=batch.user_id, infer=False)
                advance(1)
        else:
            timer(messages, user_id=batch.user_id, infer=False)
            advance(len(messages))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    memory.vector_store.client.close()
    return Measurement(MEM0, mode, turns, seconds, cpu, embedder.seconds, embedder.cpu_seconds, embedder.calls,
                       timer.seconds)


def summarise(measurements: Sequence[Measurement]) -> dict[str, Any]:
    """Per system and mode: median turns/s over repeats (with and without the embedder's time), per-add
    latency percentiles over all repeats, the embedder's share of the time and its calls per add."""
    groups: dict[tuple[str, str], list[Measurement]] = {}
    for measurement in measurements:
        groups.setdefault((measurement.system, measurement.mode), []).append(measurement)
    summary: dict[str, Any] = {}
    for (system, mode), runs in groups.items():
        adds = [seconds for run in runs for seconds in run.add_seconds]
        summary.setdefault(system, {})[mode] = {
            "repeats": len(runs),
            "turns": runs[0].turns,
            "adds": len(runs[0].add_seconds),
            "turns_per_s": statistics.median(run.turns / run.seconds for run in runs),
            "turns_per_s_without_embedding": statistics.median(
                run.turns / max(run.seconds - run.embed_seconds, 1e-9) for run in runs),
            "turns_per_cpu_s": statistics.median(run.turns / max(run.cpu_seconds, 1e-9) for run in runs),
            "turns_per_cpu_s_without_embedding": statistics.median(
                run.turns / max(run.cpu_seconds - run.embed_cpu_seconds, 1e-9) for run in runs),
            "embedding_share": statistics.median(run.embed_seconds / run.seconds for run in runs),
            "embed_calls_per_add": statistics.median(run.embed_calls / max(len(run.add_seconds), 1) for run in runs),
            "per_add": latency_summary(adds),
            "turns_per_s_each_repeat": [run.turns / run.seconds for run in runs],
        }
    return summary


def ratios(summary: dict[str, Any]) -> dict[str, Any]:
    """Engram's turns/s over mem0's, per mode (``import`` against mem0's per-session adds)."""
    if MEM0 not in summary or ENGRAM not in summary:
        return {}
    found = {}
    for mode, engram in summary[ENGRAM].items():
        other = summary[MEM0].get("session" if mode == "import" else mode)
        if other:
            found[mode] = {key: engram[key] / other[key] for key in RATIO_KEYS}
    return found



def _subset_file(data: Path, conversations: int | None, folder: Path) -> Path:
    """The data file, or a copy of its first ``conversations`` conversations in ``folder``."""
    if conversations is None:
        return data
    raw = json.loads(data.read_text(encoding="utf-8"))
    subset = folder / "subset.json"
    subset.write_text(json.dumps(raw[:conversations]), encoding="utf-8")
    return subset


def run_ingest(data: Path, settings: IngestSettings, *, embedder: Embedder,
               progress: ProgressHook | None = None, notes: list[str] | None = None) -> dict[str, Any]:
    """Measure every mode ``settings.repeats`` times (mem0 too with ``vs_mem0``, when installed); return the
    results (``summary``, ``ratios``, each repeat's ``measurements``, settings, machine and load)."""
    from engram.bench.ingest_mem0 import mem0_available, mem0_version

    notes = [] if notes is None else notes
    conversations = load_locomo(data, speaker_prefix=False)[: settings.conversations]
    batches = session_batches(conversations)
    turns = sum(len(batch.messages) for batch in batches)
    with_mem0 = settings.vs_mem0 and mem0_available()
    if settings.vs_mem0 and not with_mem0:
        notes.append("mem0 skipped: mem0ai is not installed (pip install mem0ai to compare)")
    timed = TimedEmbedder(embedder)
    timed.embed(["warm-up"])
    plan = [(ENGRAM, mode) for mode in settings.modes]
    plan += [(MEM0, mode) for mode in settings.modes if with_mem0 and mode != "import"]
    if progress is not None:
        progress.start(turns * len(plan) * settings.repeats)
    load_before = machine_info()["load_average"]
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="engram-ingest-") as work:
        folder = Path(work)
        data_file = _subset_file(data, settings.conversations, folder) if "import" in settings.modes else None
        for repeat in range(settings.repeats):
            for system, mode in plan:
                target = folder / f"{system}-{mode}-{repeat}"
                target.mkdir()
                label = f"{system}, one add per {mode}" if mode != "import" else f"{system}, import"
                label += f" (repeat {repeat + 1})"

                def advance(amount: int, label: str = label) -> None:
                    if progress is not None:
                        progress.advance(label, amount)

                if system == ENGRAM:
                    measurements.append(measure_engram(mode, batches, timed, target, advance, data_file,
                                                       settings.synchronous))
                else:
                    measurements.append(measure_mem0(mode, batches, timed, target, advance))
        profiles = _profiles(settings, batches, timed, folder)
    summary = summarise(measurements)
    machine = machine_info()
    return {
        "benchmark": "ingest",
        "data": str(data),
        "conversations": len(conversations),
        "sessions": len(batches),
        "turns": turns,
        "embedder": embedder.name,
        "settings": {**asdict(settings), "modes": list(settings.modes)},
        "mem0": {"compared": with_mem0, "version": mem0_version() if with_mem0 else None},
        "summary": summary,
        "ratios": ratios(summary),
        "measurements": [asdict(m) for m in measurements],
        "machine": machine,
        "load_average": {"start": load_before, "end": machine["load_average"]},
        "profile": profiles,
        "notes": notes,
    }


def _profiles(settings: IngestSettings, batches: Sequence[SessionBatch], embedder: TimedEmbedder,
              folder: Path) -> dict[str, list[dict[str, Any]]]:
    """The step breakdown (``engram.bench.ingest_profile``) of the per-turn and per-session modes run."""
    if not settings.profile:
        return {}
    from engram.bench.ingest_profile import profile_modes

    return profile_modes(batches, embedder, folder, [mode for mode in ("turn", "session") if mode in settings.modes],
                         synchronous=settings.synchronous)


def _mode_label(mode: str) -> str:
    return "`engram import`" if mode == "import" else f"one add per {mode}"


def render_ingest_markdown(results: dict[str, Any], plots: dict[str, str] | None = None) -> str:
    """The results as a Markdown report (tables of turns/s, latency and embedding share)."""
    load = results["load_average"]
    lines = [f"# Ingest speed ({results['turns']} turns, {results['sessions']} sessions, "
             f"{results['conversations']} LoCoMo conversations)", "",
             f"Command: `{results.get('command', 'engram bench ingest')}`", "",
             f"Embedder: `{results['embedder']}`; Engram's SQLite synchronous="
             f"{results['settings']['synchronous']}; {results['settings']['repeats']} repeats (median turns/s); "
             f"load average {load['start']:.1f} at start, {load['end']:.1f} at end.", "",
             "| system | mode | turns/s | turns/s without embedding | turns per CPU-s | turns per CPU-s without "
             "embedding | embedding share | embed calls per add | per add p50 ms | per add p95 ms |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for system, modes in results["summary"].items():
        for mode, row in modes.items():
            lines.append(f"| {system} | {_mode_label(mode)} | {row['turns_per_s']:.1f} | "
                         f"{row['turns_per_s_without_embedding']:.1f} | {row['turns_per_cpu_s']:.1f} | "
                         f"{row['turns_per_cpu_s_without_embedding']:.1f} | {row['embedding_share']:.0%} | "
                         f"{row['embed_calls_per_add']:.2f} | {row['per_add']['p50_ms']:.1f} | "
                         f"{row['per_add']['p95_ms']:.1f} |")
    if results["ratios"]:
        lines += ["", "| Engram / mem0 | turns/s | without embedding | per CPU-s | per CPU-s without embedding |",
                  "|---|---|---|---|---|"]
        for mode, ratio in results["ratios"].items():
            lines.append(f"| {_mode_label(mode)} | " + " | ".join(f"{ratio[key]:.2f}x" for key in RATIO_KEYS) + " |")
    if results.get("profile"):
        from engram.bench.ingest_profile import render_breakdown

        lines += ["", "Where an add spends its time (cProfile, one more pass per mode):", "",
                  *render_breakdown(results["profile"])]
    lines += [""] + [f"- {note}" for note in results["notes"]]
    for title, file in (plots or {}).items():
        lines += ["", f"![{title}]({file})"]
    return "\n".join(lines) + "\n"


def plot_ingest(results: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Bars of turns/s per mode and system, with and without the embedder's time; ``{title: file}``."""
    from engram.bench.report import _pyplot, _save

    pyplot = _pyplot()
    if pyplot is None:
        return {}
    rows = [(system, mode, row) for system, modes in results["summary"].items() for mode, row in modes.items()]
    figure, axes = pyplot.subplots(figsize=(7, 4))
    positions = range(len(rows))
    axes.bar([p - 0.2 for p in positions], [row["turns_per_s"] for _, _, row in rows], 0.4, label="turns/s")
    axes.bar([p + 0.2 for p in positions], [row["turns_per_s_without_embedding"] for _, _, row in rows], 0.4,
             label="turns/s without embedding")
    axes.set_xticks(list(positions), [f"{system}\n{mode}" for system, mode, _ in rows])
    axes.set(ylabel="turns per second", title=f"ingest speed ({results['turns']} LoCoMo turns)")
    axes.grid(alpha=0.3, axis="y")
    axes.legend(fontsize=8)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {"ingest turns per second": _save(figure, out_dir / PLOT_FILE, pyplot)}


def write_ingest_report(results: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write the JSON, the Markdown report and the plot into ``out_dir``."""
    from engram.bench.report import write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    plots = plot_ingest(results, out_dir)
    results["plots"] = plots
    write_json(out_dir / JSON_FILE, results)
    (out_dir / MARKDOWN_FILE).write_text(render_ingest_markdown(results, plots), encoding="utf-8")
    return {"json": out_dir / JSON_FILE, "markdown": out_dir / MARKDOWN_FILE}


def iter_modes(text: str) -> Iterator[str]:
    """``"turn,session"`` -> the modes named, each checked."""
    for part in text.split(","):
        if part.strip():
            yield part.strip()
