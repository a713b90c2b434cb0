"""The ``engram`` command line: thin commands over the ``Memory`` facade. Every command takes
``--db`` (SQLite file) or ``--url``, scope options, and ``--json`` for machine-readable output."""

from __future__ import annotations

from engram.cli import admin, commands, io, learning, server
from engram.cli.common import app


def _mount_optional() -> None:
    try:
        from engram.bench.cli import bench_app
        from engram.bench.serve import serve_command
    except ImportError:
        return
    bench_app.command("serve")(serve_command)
    app.add_typer(bench_app, name="bench", help="Benchmarks: LoCoMo, LongMemEval, scale, concurrency.")


_mount_optional()

__all__ = ["admin", "app", "commands", "io", "learning", "server"]
