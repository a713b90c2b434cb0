"""``engram ui``: the web inspector on the local store (127.0.0.1 only, no key)."""

from __future__ import annotations

import threading
import webbrowser
from typing import Annotated

import typer

from engram.cli.common import DbOption, UrlOption, app, err_console, open_memory


@app.command("ui")
def ui_command(
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8770,
    db: DbOption = None, url: UrlOption = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="only print the address")] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "warning",
) -> None:
    """Open the web inspector on the local store: see, search, explain and correct memories.

    It binds 127.0.0.1 only and needs no key; to share it, use `engram serve` (pages at /ui, behind API keys)."""
    from engram.server.runtime import run_server
    from engram.server.ui import create_local_app

    with open_memory(db, url) as memory:
        memory.embedder.embed(["warm up"])
        address = f"http://127.0.0.1:{port}/ui/"
        err_console.print(f"Engram inspector on {address} (loopback only; Ctrl+C stops it)")
        if not no_browser:
            threading.Timer(1.0, webbrowser.open, [address]).start()
        run_server(create_local_app(memory), host="127.0.0.1", port=port, log_level=log_level)
