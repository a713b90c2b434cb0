"""Start-up time of light CLI commands (issue 13): ``python -m engram.bench.startup [--baseline-src DIR]``.

Runs ``engram --help``, ``engram get ID`` and ``engram list --user-id a`` on a one-memory SQLite store,
each ``--runs`` times in fresh processes, and prints the median wall time and CPU time (user + system of
the child). With ``--baseline-src`` (the ``src`` folder of another checkout), the same commands run with
that code first (``PYTHONPATH``), interleaved, so that both columns share the machine's load."""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(args: list[str], extra_env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of ``python -m engram.cli ARGS`` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "engram.cli", *args], capture_output=True, check=True,
                   env={**os.environ, "COLUMNS": "120", **extra_env})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-src", type=Path, default=None, help="src folder of the code to compare with")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        db = str(Path(folder) / "startup.db")
        added = subprocess.run([sys.executable, "-m", "engram.cli", "add", "I like green tea", "--user-id", "a",
                                "--db", db, "--json"], capture_output=True, text=True, check=True)
        memory_id = json.loads(added.stdout)["results"][0]["id"]
        commands = {"engram --help": ["--help"], "engram get ID": ["get", memory_id, "--db", db],
                    "engram list --user-id a": ["list", "--user-id", "a", "--db", db]}
        variants: dict[str, dict[str, str]] = {"this code": {}}
        if options.baseline_src is not None:
            variants = {"baseline": {"PYTHONPATH": str(options.baseline_src.resolve())}, **variants}
        loads = [os.getloadavg()[0]]
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for label, args in commands.items():
            for _ in range(options.runs):
                for variant, env in variants.items():
                    times.setdefault((label, variant), []).append(_run(args, env))
            loads.append(os.getloadavg()[0])
    print(f"load average (1 min) {min(loads):.1f} to {max(loads):.1f}; median of {options.runs} runs")
    print("| command | " + " | ".join(f"{v} wall s | {v} CPU s" for v in variants) + " |")
    print("|---|" + "---|---|" * len(variants))
    for label in commands:
        cells = []
        for variant in variants:
            runs = times[(label, variant)]
            cells += [f"{statistics.median(w for w, _ in runs):.2f}", f"{statistics.median(c for _, c in runs):.2f}"]
        print(f"| `{label}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
