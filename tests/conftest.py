"""Shared fixtures: one loaded embedder per test session, fresh stores per test, on every backend
available (SQLite always; PostgreSQL when ENGRAM_TEST_PG_URL names a server, as in CI)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engram import Memory
from engram.embed.base import Embedder
from engram.embed.onnx_dynamic import OnnxDynamicInt8Embedder

PG_URL = os.environ.get("ENGRAM_TEST_PG_URL")
BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real offline default embedder, loaded once."""
    return OnnxDynamicInt8Embedder()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for an empty store on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'engram.db'}"
    if not PG_URL:
        pytest.skip("ENGRAM_TEST_PG_URL is not set (CI starts PostgreSQL with .ci/postgres.sh)")
    return PG_URL


@pytest.fixture
def memory(store_url: str, embedder: Embedder) -> Iterator[Memory]:
    """A Memory on an empty store of each backend."""
    instance = Memory(url=store_url, embedder=embedder)
    instance.reset()
    yield instance
    instance.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh SQLite file path (for tests that are about SQLite files themselves)."""
    return tmp_path / "engram.db"


@pytest.fixture
def schema_url() -> Iterator[str]:
    """A PostgreSQL URL for a fresh, empty schema of ENGRAM_TEST_PG_URL's database, dropped afterwards."""
    import psycopg

    if not PG_URL:
        pytest.skip("ENGRAM_TEST_PG_URL is not set (CI starts PostgreSQL with .ci/postgres.sh)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{PG_URL}?schema={schema}"
    with psycopg.connect(PG_URL, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
