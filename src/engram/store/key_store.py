"""API keys: random bearer tokens bound to a scope, kept as sha256 hashes next to the memories.

A token is ``egk_`` followed by 32 random bytes (URL-safe base64). Only its sha256 is stored, in an
``api_keys`` table of the same database as the memories (SQLite file or PostgreSQL schema), so the
token is shown once, at creation, and cannot be recovered. ``open_key_store`` picks the backend."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from engram.arguments import validate_scope
from engram.config import EngramConfig, Limits
from engram.errors import ConfigurationError, NotFoundError, StorageError, ValidationError
from engram.models import Scope
from engram.providers import sqlite_file
from engram.store.sqlite_rows import locked_connection
from engram.store.urls import postgres_location, redact_url, store_target
from engram.timeutil import from_storage, to_storage, utcnow

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

TOKEN_PREFIX = "egk_"
TOKEN_BYTES = 32
SHOWN_PREFIX_CHARS = 8
MAX_NAME_CHARS = 200
_COLUMNS = "id, hash, prefix, user_id, agent_id, admin, name, created_at, revoked_at"


class ApiKey(BaseModel):
    """A stored key (never the token itself): its id, the scope it is bound to, and its state."""

    id: str
    prefix: str
    user_id: str | None = None
    agent_id: str | None = None
    admin: bool = False
    name: str | None = None
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def scope(self) -> Scope:
        return Scope(user_id=self.user_id, agent_id=self.agent_id)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_token(token: str) -> str:
    """sha256 of the token, hex: the only form a key is stored in."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh key: the ``egk_`` prefix and 32 random bytes."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


class KeyStore(ABC):
    """Where API keys live. Implementations store rows; the checks live here."""

    def create(self, *, user_id: str | None = None, agent_id: str | None = None, admin: bool = False,
               name: str | None = None) -> tuple[ApiKey, str]:
        """Create a key; returns the stored record and the token (shown once, never stored)."""
        scope = validate_scope(user_id, agent_id, None, Limits(), required=not admin)
        if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME_CHARS):
            raise ValidationError(f"must be a string of at most {MAX_NAME_CHARS} characters", field="name")
        token = new_token()
        key = ApiKey(id=secrets.token_hex(8), prefix=token[:len(TOKEN_PREFIX) + SHOWN_PREFIX_CHARS],
                     user_id=scope.user_id, agent_id=scope.agent_id, admin=admin, name=name, created_at=utcnow())
        self._insert(key, hash_token(token))
        return key, token

    def authenticate(self, token: str) -> ApiKey | None:
        """The active key this token belongs to, or None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        key = self._find(hash_token(token))
        return key if key is not None and key.active else None

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by id (idempotent); raises NotFoundError for an unknown id."""
        self._revoke(key_id, utcnow())
        key = self.get_key(key_id)
        if key is None:
            raise NotFoundError(f"no API key with id {key_id!r}", field="key_id")
        return key

    @abstractmethod
    def get_key(self, key_id: str) -> ApiKey | None:
        """One key by id (revoked or not), or None."""

    @abstractmethod
    def list_keys(self, *, include_revoked: bool = False) -> list[ApiKey]:
        """Every key, oldest first (active ones only unless ``include_revoked``)."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    @abstractmethod
    def _insert(self, key: ApiKey, token_hash: str) -> None: ...

    @abstractmethod
    def _find(self, token_hash: str) -> ApiKey | None: ...

    @abstractmethod
    def _revoke(self, key_id: str, when: datetime) -> None: ...

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _key_from_row(row: tuple[Any, ...]) -> ApiKey:
    key_id, _hash, prefix, user_id, agent_id, admin, name, created_at, revoked_at = row
    if isinstance(created_at, str):
        created_at = from_storage(created_at)
        revoked_at = from_storage(revoked_at) if revoked_at else None
    return ApiKey(id=key_id, prefix=prefix, user_id=user_id, agent_id=agent_id, admin=bool(admin), name=name,
                  created_at=created_at, revoked_at=revoked_at)


class SQLiteKeyStore(KeyStore):
    """Keys in the ``api_keys`` table of the memories' SQLite file, through a connection of its own."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = sqlite_file(str(path))
        try:
            self._connection = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                               timeout=busy_timeout_s)
            self._connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._connection.execute("PRAGMA journal_mode = WAL")
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, "
                "prefix TEXT NOT NULL, user_id TEXT, agent_id TEXT, admin INTEGER NOT NULL DEFAULT 0, name TEXT, "
                "created_at TEXT NOT NULL, revoked_at TEXT)")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the API key table in {self.path}: {exc}", field="path") from exc
        self._lock = threading.Lock()

    def _connected(self) -> AbstractContextManager[sqlite3.Connection]:
        """The connection, under its lock, with sqlite3 errors turned into StorageError."""
        return locked_connection(self._lock, self._connection, f"API key table error in {self.path}")

    def _insert(self, key: ApiKey, token_hash: str) -> None:
        with self._connected() as connection:
            connection.execute(f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                               (key.id, token_hash, key.prefix, key.user_id, key.agent_id, int(key.admin), key.name,
                                to_storage(key.created_at)))

    def _find(self, token_hash: str) -> ApiKey | None:
        with self._connected() as connection:
            row = connection.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE hash = ?", (token_hash,)).fetchone()
        return _key_from_row(row) if row else None

    def _revoke(self, key_id: str, when: datetime) -> None:
        with self._connected() as connection:
            connection.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                               (to_storage(when), key_id))

    def get_key(self, key_id: str) -> ApiKey | None:
        with self._connected() as connection:
            row = connection.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        return _key_from_row(row) if row else None

    def list_keys(self, *, include_revoked: bool = False) -> list[ApiKey]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        with self._connected() as connection:
            rows = connection.execute(f"SELECT {_COLUMNS} FROM api_keys{where} ORDER BY created_at, id").fetchall()
        return [_key_from_row(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class PostgresKeyStore(KeyStore):
    """Keys in an ``api_keys`` table of the store's PostgreSQL schema (``?schema=`` in the URL)."""

    def __init__(self, url: str, *, max_pool_size: int = 4) -> None:
        try:
            import psycopg
            from psycopg import sql
            from psycopg_pool import ConnectionPool

        except ImportError as exc:
            raise ConfigurationError(f"PostgreSQL support is not installed ({exc})", field="url",
                                     hint="pip install 'engramdb[postgres]'") from exc
        self._psycopg_error = psycopg.Error
        plain_url, schema = postgres_location(url)
        self._schema = schema or "public"
        self._redacted = redact_url(plain_url)
        search_path = sql.SQL("SET search_path TO {}, public").format(sql.Identifier(self._schema))

        def configure(connection: psycopg.Connection) -> None:
            connection.execute(search_path)

        try:
            with psycopg.connect(plain_url, autocommit=True, connect_timeout=10) as connection:
                connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._schema)))
                configure(connection)
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS api_keys (id text PRIMARY KEY, hash text NOT NULL UNIQUE, "
                    "prefix text NOT NULL, user_id text, agent_id text, admin boolean NOT NULL DEFAULT false, "
                    "name text, created_at timestamptz NOT NULL, revoked_at timestamptz)")
        except psycopg.Error as exc:
            raise StorageError(f"cannot open the API key table at {self._redacted}: {exc}", field="url") from exc
        self._pool: ConnectionPool = ConnectionPool(plain_url, min_size=1, max_size=max_pool_size,
                                                    kwargs={"autocommit": True}, configure=configure, open=True,
                                                    name="engram-keys")

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        try:
            with self._pool.connection() as connection, connection.cursor() as cursor:
                yield cursor
        except self._psycopg_error as exc:
            raise StorageError(f"API key table error at {self._redacted}: {exc}") from exc

    def _insert(self, key: ApiKey, token_hash: str) -> None:
        with self._cursor() as cursor:
            cursor.execute(f"INSERT INTO api_keys ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL)",
                           (key.id, token_hash, key.prefix, key.user_id, key.agent_id, key.admin, key.name,
                            key.created_at))

    def _find(self, token_hash: str) -> ApiKey | None:
        with self._cursor() as cursor:
            row = cursor.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE hash = %s", (token_hash,)).fetchone()
        return _key_from_row(row) if row else None

    def _revoke(self, key_id: str, when: datetime) -> None:
        with self._cursor() as cursor:
            cursor.execute("UPDATE api_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL", (when, key_id))

    def get_key(self, key_id: str) -> ApiKey | None:
        with self._cursor() as cursor:
            row = cursor.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = %s", (key_id,)).fetchone()
        return _key_from_row(row) if row else None

    def list_keys(self, *, include_revoked: bool = False) -> list[ApiKey]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        with self._cursor() as cursor:
            rows = cursor.execute(f"SELECT {_COLUMNS} FROM api_keys{where} ORDER BY created_at, id").fetchall()
        return [_key_from_row(row) for row in rows]

    def close(self) -> None:
        self._pool.close()


def open_key_store(path: str | None = None, url: str | None = None) -> KeyStore:
    """The key store of the database a ``Memory(path=..., url=...)`` would open (same resolution rules)."""
    resolved = EngramConfig(path=path, url=url).resolved_url()
    target = store_target(resolved)
    if target.backend == "postgres":
        return PostgresKeyStore(resolved)
    if not target.location or target.location == ":memory:":
        raise ConfigurationError("API keys need an SQLite file path", field="path")
    return SQLiteKeyStore(target.location)
