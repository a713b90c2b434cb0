"""Where a store lives, read from its URL: the one place that knows the URL schemes (``sqlite:///file``,
a bare file path, ``postgresql://`` and its aliases) and Engram's ``?schema=`` parameter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from engram.errors import ConfigurationError

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://", "postgresql+psycopg://")


@dataclass(frozen=True)
class StoreTarget:
    """A parsed store URL: the backend, and the SQLite file path or the URL psycopg connects to (with
    ``schema``, Engram's own parameter, taken out)."""

    backend: Literal["sqlite", "postgres"]
    location: str
    schema: str | None = None


def store_target(url: str) -> StoreTarget:
    """Parse ``url``; a ``ConfigurationError`` naming ``url`` for a scheme Engram does not serve."""
    if url.startswith(SQLITE_PREFIX) or "://" not in url:
        return StoreTarget("sqlite", url.removeprefix(SQLITE_PREFIX))
    if url.startswith(POSTGRES_PREFIXES):
        location, schema = postgres_location(url)
        return StoreTarget("postgres", location, schema)
    raise ConfigurationError(f"unsupported store URL {redact_url(url)!r}", field="url",
                             hint="use sqlite:///path/to/file.db or postgresql://user@host/db")


def postgres_location(url: str) -> tuple[str, str | None]:
    """A PostgreSQL URL as psycopg takes it (``postgresql+psycopg://`` made plain, ``schema=`` removed) and
    the schema it named, if any."""
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    parts = urlsplit(plain)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in pairs if key == "schema"), None)
    if schema is None:
        return plain, None
    query = urlencode([(key, value) for key, value in pairs if key != "schema"])
    return urlunsplit(parts._replace(query=query)), schema


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
