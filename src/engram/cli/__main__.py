"""``python -m engram.cli``."""

from engram.cli import app

app()
