"""A real Engram REST server for tests: uvicorn on a free 127.0.0.1 port in a background thread,
over a given ``Memory``, with API keys for two users, an agent-bound key and an admin."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from engram import Memory
from engram.client import Client
from engram.server.rest import ServerLimits, create_app
from engram.server.runtime import BackgroundServer
from engram.store.key_store import KeyStore, open_key_store

UNLIMITED = ServerLimits(rate_per_second=0)


@dataclass
class Service:
    """A running server and the tokens of its keys (``alice``, ``bob``, ``alice-planner``, ``admin``)."""

    url: str
    memory: Memory
    keys: KeyStore
    tokens: dict[str, str]
    key_ids: dict[str, str]

    def http(self, who: str | None) -> httpx.Client:
        """An httpx client sending ``who``'s key (no key for None)."""
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def client(self, who: str | None) -> Client:
        """An ``engram.Client`` with ``who``'s key."""
        return Client(self.url, api_key=self.tokens[who] if who else "")


@contextmanager
def running_service(memory: Memory, store_url: str, *, limits: ServerLimits = UNLIMITED) -> Iterator[Service]:
    """Serve ``memory`` with keys kept in the same store as its memories."""
    keys = open_key_store(url=store_url)
    scopes = {"alice": {"user_id": "alice"}, "bob": {"user_id": "bob"},
              "alice-planner": {"user_id": "alice", "agent_id": "planner"}, "admin": {"admin": True}}
    created = {who: keys.create(**scope) for who, scope in scopes.items()}  # type: ignore[arg-type]
    app = create_app(memory, keys=keys, limits=limits)
    try:
        with BackgroundServer(app) as server:
            yield Service(url=server.url, memory=memory, keys=keys,
                          tokens={who: token for who, (_, token) in created.items()},
                          key_ids={who: key.id for who, (key, _) in created.items()})
    finally:
        keys.close()
