"""`engram migrate`: SQLite -> PostgreSQL -> SQLite keeps every record, embedding and history event."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from engram import Memory
from engram.embed.base import Embedder

PG_URL = os.environ.get("ENGRAM_TEST_PG_URL")
CLI = [sys.executable, "-m", "engram.cli"]


def fill(path: Path, embedder: Embedder) -> None:
    with Memory(path=str(path), embedder=embedder) as memory:
        memory.add([{"role": "user", "name": "Ana", "content": "I adopted a cat called Miso.",
                     "metadata": {"n": 1, "tags": ["pets"]}},
                    {"role": "assistant", "content": "Lovely name!"}], user_id="ana",
                   timestamp="2024-05-01T10:00:00Z")
        kept = memory.add("I work as a nurse in Porto.", user_id="ana", agent_id="helper")["results"][0]["id"]
        memory.update(kept, "I work as a nurse in Lisbon.")
        gone = memory.add("temporary note", user_id="bob")["results"][0]["id"]
        memory.delete(gone)


def export_lines(url: str) -> list[str]:
    out = subprocess.run([*CLI, "export", "--url", url], check=True, capture_output=True, text=True).stdout
    return sorted(line for line in out.splitlines() if line)


def run_migrate(source: str, target: str) -> dict[str, object]:
    result = subprocess.run([*CLI, "migrate", "--from", source, "--to", target, "--json"], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_sqlite_to_sqlite_and_refuses_non_empty_target(tmp_path: Path, embedder: Embedder) -> None:
    fill(tmp_path / "a.db", embedder)
    source, target = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    counts = run_migrate(source, target)
    assert counts["episode"] == 3 and counts["memory"] == 3 and counts["history"] == 6
    assert export_lines(source) == export_lines(target)
    again = subprocess.run([*CLI, "migrate", "--from", source, "--to", target], capture_output=True, text=True)
    assert again.returncode == 2 and "not empty" in again.stderr


@pytest.mark.skipif(not PG_URL, reason="ENGRAM_TEST_PG_URL is not set (CI starts PostgreSQL with .ci/postgres.sh)")
def test_sqlite_postgres_round_trip_is_lossless(tmp_path: Path, embedder: Embedder) -> None:
    import psycopg

    fill(tmp_path / "a.db", embedder)
    schema = f"migrate_{uuid.uuid4().hex[:8]}"
    pg = f"{PG_URL}?schema={schema}"
    source, back = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'back.db'}"
    try:
        run_migrate(source, pg)
        run_migrate(pg, back)
        original = export_lines(source)
        assert export_lines(pg) == original
        assert export_lines(back) == original
        with Memory(url=back, embedder=embedder) as memory:
            hit = memory.search("where does the nurse work", user_id="ana", limit=1)["results"][0]
            assert hit["memory"] == "I work as a nurse in Lisbon."
    finally:
        with psycopg.connect(str(PG_URL), autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
