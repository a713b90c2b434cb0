"""API keys: hashed at rest in the store's own database, scoped, revocable; the ``engram keys``
and ``engram serve`` commands, including the real server process."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import engram.cli.server  # noqa: F401  (registers serve, keys, mcp on the app)
from engram.cli.common import app
from engram.errors import NotFoundError, ScopeMissingError, ValidationError
from engram.store.key_store import TOKEN_PREFIX, open_key_store

runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def stored_rows(store_url: str) -> list[tuple[object, ...]]:
    if store_url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(store_url.removeprefix("sqlite:///")) as connection:
            return connection.execute("SELECT * FROM api_keys").fetchall()
    import psycopg

    from engram.store.urls import postgres_location

    url, schema = postgres_location(store_url)
    with psycopg.connect(url) as connection:
        return connection.execute(f"SELECT * FROM {schema or 'public'}.api_keys").fetchall()


def test_keys_are_hashed_scoped_and_revocable(store_url: str) -> None:
    with open_key_store(url=store_url) as keys:
        key, token = keys.create(user_id="alice", agent_id="planner", name="laptop")
        assert token.startswith(TOKEN_PREFIX) and len(token) > 40 and key.prefix == token[:12]
        rows = [row for row in stored_rows(store_url) if row[0] == key.id]
        assert len(rows) == 1
        assert rows[0][1] == hashlib.sha256(token.encode()).hexdigest()
        assert not any(token in str(value) for row in stored_rows(store_url) for value in row)

        found = keys.authenticate(token)
        assert found is not None and (found.user_id, found.agent_id, found.admin) == ("alice", "planner", False)
        assert keys.authenticate(token + "x") is None and keys.authenticate("not-a-key") is None
        assert key.id in {k.id for k in keys.list_keys()}

        revoked = keys.revoke(key.id)
        assert revoked.revoked_at is not None
        assert keys.authenticate(token) is None
        assert key.id not in {k.id for k in keys.list_keys()}
        assert key.id in {k.id for k in keys.list_keys(include_revoked=True)}

        admin, admin_token = keys.create(admin=True)
        assert admin.admin and keys.authenticate(admin_token) is not None
        with pytest.raises(ScopeMissingError):
            keys.create()
        with pytest.raises(ValidationError):
            keys.create(user_id="")
        with pytest.raises(NotFoundError):
            keys.revoke("no-such-key")


def test_keys_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "keys.db")
    code, output = cli("keys", "create", "--db", db, "--user-id", "kim", "--name", "ci", "--json")
    assert code == 0, output
    created = json.loads(output)
    assert created["key"].startswith(TOKEN_PREFIX) and created["user_id"] == "kim" and created["admin"] is False
    code, output = cli("keys", "create", "--db", db, "--admin", "--json")
    assert code == 0 and json.loads(output)["admin"] is True

    code, output = cli("keys", "list", "--db", db, "--json")
    listed = json.loads(output)
    assert listed[0]["id"] == created["id"] and len(listed) == 2
    assert created["key"] not in output

    code, output = cli("keys", "revoke", created["id"], "--db", db, "--json")
    assert code == 0 and json.loads(output)["revoked_at"]
    assert len(json.loads(cli("keys", "list", "--db", db, "--json")[1])) == 1
    assert len(json.loads(cli("keys", "list", "--db", db, "--all", "--json")[1])) == 2

    code, output = cli("keys", "create", "--db", db)
    assert code == 2 and "user_id" in output
    code, output = cli("keys", "revoke", "missing", "--db", db)
    assert code == 3 and "no API key" in output


def test_serve_refuses_no_auth_off_loopback(tmp_path: Path) -> None:
    code, output = cli("serve", "--no-auth", "--host", "0.0.0.0", "--db", str(tmp_path / "x.db"))
    assert code == 2
    assert "loopback" in output
    assert not (tmp_path / "x.db").exists()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_engram_serve_runs_the_service(tmp_path: Path) -> None:
    db = str(tmp_path / "served.db")
    created = subprocess.run([sys.executable, "-m", "engram.cli", "keys", "create", "--db", db, "--user-id", "kim",
                              "--json"], capture_output=True, text=True, timeout=120, check=True)
    token = json.loads(created.stdout)["key"]
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "engram.cli", "serve", "--db", db, "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "COLUMNS": "200"})
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, server.communicate()[1]
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "engram serve did not come up"
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {token}"}
        added = httpx.post(f"{base}/v1/memories", json={"messages": "I keep bees"}, headers=headers, timeout=30)
        assert added.status_code == 200, added.text
        hits = httpx.post(f"{base}/v1/memories/search", json={"query": "insects"}, headers=headers, timeout=30)
        assert hits.json()["results"][0]["memory"] == "I keep bees"
        assert httpx.get(f"{base}/v1/memories", timeout=5).status_code == 401
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert server.returncode in (0, -15), stderr  # uvicorn re-raises SIGTERM after a graceful shutdown
    assert "Application shutdown complete" in stderr
