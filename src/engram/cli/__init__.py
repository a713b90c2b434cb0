"""The ``engram`` command line: thin commands over the ``Memory`` facade. Every command takes
``--db`` (SQLite file) or ``--url``, scope options, and ``--json`` for machine-readable output."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import typer

from engram.cli import admin, commands, io, learning, reembed, server, ui
from engram.cli.common import app
from engram.cli.group import LAZY_COMMANDS, LazyCommand
from engram.errors import ConfigurationError

if TYPE_CHECKING:
    from typer._click import Command


@cache
def _bench_command() -> Command:
    try:
        from engram.bench.cli import bench_app
        from engram.bench.cli_support import SPEED_PANEL
        from engram.bench.serve import serve_command
    except ImportError as exc:
        raise ConfigurationError(f"the benchmarks need more packages ({exc})", field="bench",
                                 hint="pip install 'engramdb[bench]'") from exc
    bench_app.command("serve", rich_help_panel=SPEED_PANEL)(serve_command)
    return typer.main.get_command(bench_app)


LAZY_COMMANDS.append(LazyCommand("bench", _bench_command,
                                 help="Benchmarks: LoCoMo, LongMemEval, scale, concurrency."))

__all__ = ["admin", "app", "commands", "io", "learning", "reembed", "server", "ui"]
