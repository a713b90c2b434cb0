"""``engram bench faults``: writers killed with SIGKILL mid-add leave a whole, consistent store,
and the checks it relies on do see damage when there is some."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from engram import Memory
from engram.bench.cli import bench_app
from engram.bench.faults import FaultSettings, batch_states, batch_texts, store_checks
from engram.bench.scale import SyntheticEmbedder
from engram.config import EngramConfig


def test_cli_faults_small_run_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "faults"
    result = CliRunner().invoke(bench_app, ["faults", "--trials", "4", "--seed", "3", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == json.loads((out / "faults.json").read_text(encoding="utf-8"))
    assert report["trials"] == 4
    assert sum(report["kills"].values()) == 4
    assert report["kills"]["before_first_ack"] == 0
    assert report["acknowledged_batches"] >= 4
    assert report["lost_acknowledged"] == 0
    assert report["half_written"] == 0
    assert report["unexpected_batches"] == 0
    assert report["writer_errors"] == 0
    assert report["integrity"]["ok"]
    assert report["integrity"]["final"]["integrity_check"] == ["ok"]
    assert not any(report["integrity"]["final"]["orphans"].values())
    assert report["ok"] and report["failures"] == []
    assert {"in_flight_batches", "kill_delay_ms", "wall_seconds", "per_trial", "settings"} <= set(report)
    assert all(row["killed"] for row in report["per_trial"])


def test_checks_detect_missing_rows(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    tag = "faults-x-t0"
    with Memory(config=EngramConfig(path=str(path), guard=False), embedder=SyntheticEmbedder(8)) as memory:
        for number in range(3):
            memory.add(batch_texts(tag, number, 4), user_id=tag, metadata={"batch": number}, infer=False)
        assert batch_states(memory, tag, 4, 8) == {0: "complete", 1: "complete", 2: "complete"}
    assert store_checks(FaultSettings(), path, "faults-x-")["ok"]
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("DELETE FROM vectors WHERE memory_id = (SELECT id FROM memories "
                       "WHERE json_extract(metadata, '$.batch') = 1 LIMIT 1)")
    connection.execute("DELETE FROM memories WHERE id = (SELECT id FROM memories "
                       "WHERE json_extract(metadata, '$.batch') = 2 LIMIT 1)")
    connection.close()
    with Memory(config=EngramConfig(path=str(path), guard=False), embedder=SyntheticEmbedder(8)) as memory:
        assert batch_states(memory, tag, 4, 8) == {0: "complete", 1: "partial", 2: "partial"}
    checks = store_checks(FaultSettings(), path, "faults-x-")
    assert not checks["ok"]
    assert checks["orphans"]["memories_without_vectors"] == 1
    assert checks["orphans"]["episodes_without_memories"] == 1
    assert checks["orphans"]["fts_rows_without_memories"] == 1
