"""The ``engram`` command line, run as a real console script on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ENGRAM = [sys.executable, "-m", "engram.cli"]


def engram(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run([*ENGRAM, *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def as_json(*args: str) -> Any:
    return json.loads(engram(*args, "--json").stdout)


def test_add_search_get_update_history_delete(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    added = as_json("add", "I play the cello in a quartet", "I am learning Japanese", "--db", db, "-u", "kim",
                    "--name", "Kim", "--timestamp", "2024-02-03T04:05:06Z", "--metadata", '{"src": "cli"}')
    assert [r["event"] for r in added["results"]] == ["ADD", "ADD"]
    cello_id = added["results"][0]["id"]
    found = as_json("search", "musical instrument", "--db", db, "-u", "kim", "-k", "1")
    assert found["results"][0]["id"] == cello_id
    assert found["results"][0]["sources"][0]["name"] == "Kim"
    assert as_json("get", cello_id, "--db", db)["metadata"] == {"src": "cli"}
    as_json("update", cello_id, "I play the viola in a quartet", "--db", db)
    events = as_json("history", cello_id, "--db", db)
    assert [e["event"] for e in events] == ["ADD", "UPDATE"]
    listed = as_json("list", "--db", db, "-u", "kim", "--filters", '{"src": "cli"}')
    assert listed["total"] == 2
    as_json("delete", cello_id, "--db", db)
    assert as_json("stats", "--db", db, "-u", "kim")["memories"] == 1
    as_json("delete", "--all", "--db", db, "-u", "kim")
    assert as_json("stats", "--db", db)["memories"] == 0
    human = engram("search", "Japanese", "--db", db, "-u", "kim")
    assert "confidence" in human.stdout


def test_errors_are_clean_with_exit_codes(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    engram("init", "--db", db)
    missing_scope = engram("search", "x", "--db", db, check=False)
    assert missing_scope.returncode == 2 and "user_id" in missing_scope.stderr
    assert "Traceback" not in missing_scope.stderr
    bad_filter = engram("list", "--db", db, "-u", "a", "--filters", "{not json", check=False)
    assert bad_filter.returncode == 2 and "--filters" in bad_filter.stderr
    unknown = engram("get", "does-not-exist", "--db", db, check=False)
    assert unknown.returncode == 3 and "does-not-exist" in unknown.stderr


def test_export_import_round_trip_is_lossless(tmp_path: Path) -> None:
    source, target = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    first = as_json("add", "the blue notebook is in the drawer", "--db", source, "-u", "u1",
                    "--metadata", '{"n": 1, "nested": {"x": [1, 2]}}')["results"][0]["id"]
    as_json("add", "agent scoped fact", "--db", source, "--agent-id", "bot")
    as_json("update", first, "the blue notebook is on the shelf", "--db", source)
    dump = tmp_path / "dump.jsonl"
    engram("export", "--db", source, "--out", str(dump))
    counts = as_json("import", str(dump), "--db", target)
    assert counts == {"format": "export", "episode": 2, "memory": 2, "history": 3, "users": ["u1"], "quarantined": 0}
    engram("export", "--db", target, "--out", str(tmp_path / "dump2.jsonl"))
    assert dump.read_text() == (tmp_path / "dump2.jsonl").read_text()
    hit = as_json("search", "where is the notebook", "--db", target, "-u", "u1", "-k", "1")["results"][0]
    assert hit["id"] == first and hit["memory"] == "the blue notebook is on the shelf"


def test_import_messages_jsonl_with_progress(tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    lines = [{"role": "user", "content": f"message {i}", "timestamp": f"2024-01-0{i + 1}T00:00:00Z"}
             for i in range(3)]
    lines.append({"role": "user", "content": "other user", "user_id": "zed"})
    path = tmp_path / "messages.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert as_json("import", str(path), "--db", db, "-u", "amy") == {
        "format": "messages", "messages": 4, "users": ["amy", "zed"], "quarantined": 0}
    assert as_json("stats", "--db", db, "-u", "amy")["episodes"] == 3
    assert as_json("stats", "--db", db, "-u", "zed")["episodes"] == 1
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"role": "user", "content": "ok"}\n{"role": "user", "content": ""}\n')
    failed = engram("import", str(broken), "--db", db, "-u", "amy", "--format", "messages", check=False)
    assert failed.returncode == 2 and "broken.jsonl:2" in failed.stderr


@pytest.mark.parametrize("command", ["add", "search", "list", "get", "update", "delete", "history", "import",
                                     "export", "stats", "demo", "answer", "maintain", "erase", "backup", "restore",
                                     "init", "bench"])
def test_every_command_has_help(command: str) -> None:
    assert "--help" in engram(command, "--help").stdout


def test_demo_prints_results_with_sources(tmp_path: Path) -> None:
    output = engram("demo", "--db", str(tmp_path / "demo.db")).stdout
    assert "Ingested 21 messages" in output and "Maya" in output and "episode" in output
    report = as_json("demo", "--db", str(tmp_path / "demo.db"))
    assert report["stats"]["episodes"] == 21
    assert len(report["queries"]) == 5
    for item in report["queries"]:
        assert item["results"] and all(hit["sources"] for hit in item["results"])
    allergy = report["queries"][1]["results"]
    assert any("peanut" in hit["memory"] for hit in allergy[:2])
    assert any("July 15th" in hit["memory"] for hit in report["queries"][2]["results"][:2])
    assert report["queries"][-1]["abstain"], "the favourite-language question is not answerable from the sample"
