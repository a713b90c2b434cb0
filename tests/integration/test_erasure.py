"""Real erasure: after delete / delete_all / erase, the content is gone from every byte of the files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engram import Memory
from engram.embed.base import Embedder

CANARIES = ("CANARYZEBRA42", "QUOKKAPASSWORD", "hunter2secretpw")


def raw_hits(folder: Path) -> dict[str, int]:
    """Occurrences of each canary (any letter case) in every file of ``folder``."""
    found: dict[str, int] = {}
    for path in folder.iterdir():
        data = path.read_bytes().lower()
        for canary in CANARIES:
            count = data.count(canary.lower().encode())
            if count:
                found[f"{path.name}:{canary}"] = count
    return found


def fill(memory: Memory, user: str, count: int) -> None:
    for i in range(count):
        memory.add([f"{user} filler about gardening, tomatoes and weather number {i}"] * 3, user_id=user)


def test_delete_all_leaves_no_trace_in_database_files(tmp_path: Path, embedder: Embedder) -> None:
    memory = Memory(path=str(tmp_path / "e.db"), embedder=embedder)
    fill(memory, "other", 30)
    victim = memory.add([f"my secret is {CANARIES[0]}", f"password {CANARIES[1]}"], user_id="victim",
                        metadata={"note": CANARIES[2]})
    memory.update(victim["results"][0]["id"], f"updated secret {CANARIES[0]} v2")
    fill(memory, "other2", 10)
    assert raw_hits(tmp_path), "the canaries must be on disk before erasure"
    memory.delete_all(user_id="victim")
    assert raw_hits(tmp_path) == {}
    assert memory.history(victim["results"][0]["id"])[-1]["event"] == "DELETE"
    assert memory.get_all(user_id="other")["total"] == 90
    memory.close()


def test_single_delete_erases_its_content(tmp_path: Path, embedder: Embedder) -> None:
    memory = Memory(path=str(tmp_path / "e.db"), embedder=embedder)
    fill(memory, "u", 10)
    memory_id = memory.add(f"the vault code is {CANARIES[0]}", user_id="u")["results"][0]["id"]
    fill(memory, "u", 5)
    memory.delete(memory_id)
    assert raw_hits(tmp_path) == {}
    memory.close()


def test_cli_erase_backup_restore(tmp_path: Path, embedder: Embedder) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = str(data / "s.db")
    with Memory(path=db, embedder=embedder) as memory:
        memory.add(f"secret {CANARIES[1]}", user_id="gone")
        memory.add("kept note about bicycles", user_id="stays")
    snapshot = tmp_path / "snap.db"
    cli = [sys.executable, "-m", "engram.cli"]
    subprocess.run([*cli, "backup", "--db", db, "--out", str(snapshot), "--json"], check=True, capture_output=True)
    subprocess.run([*cli, "erase", "--db", db, "--user-id", "gone", "--json"], check=True, capture_output=True)
    assert raw_hits(data) == {}
    with Memory(path=db, embedder=embedder) as memory:
        memory.add("written after the backup", user_id="stays")
        assert memory.get_all(user_id="stays")["total"] == 2
    subprocess.run([*cli, "restore", "--db", db, "--from", str(snapshot), "--yes", "--json"], check=True,
                   capture_output=True)
    with Memory(path=db, embedder=embedder) as memory:
        assert memory.get_all(user_id="gone")["total"] == 1
        assert [m["memory"] for m in memory.get_all(user_id="stays")["results"]] == ["kept note about bicycles"]
        assert memory.search("bicycles", user_id="stays")["results"][0]["memory"] == "kept note about bicycles"


def test_erasure_keeps_only_keyed_hashes_of_the_scope_ids(tmp_path: Path, embedder: Embedder) -> None:
    user = "alice.canary@example.com"
    with Memory(path=str(tmp_path / "e.db"), embedder=embedder) as memory:
        added = memory.add(["I like tea", "I live in Oslo"], user_id=user)
        memory.update(added["results"][0]["id"], "I like green tea")
        memory.add("someone else", user_id="bob")
        memory.delete_all(user_id=user)
        history = memory.history(added["results"][0]["id"])
        assert history[-1]["event"] == "DELETE"
        assert all(event["user_id"] != user and event["user_id"].startswith("erased:") for event in history)
    for path in tmp_path.iterdir():
        assert b"alice.canary" not in path.read_bytes().lower(), path.name
