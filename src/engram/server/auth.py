"""Who is calling and what they may touch: credentials, scope enforcement, rate limits. The service
errors (401, 403, 413, 429, 503) live in ``engram.errors`` with the rest of the family.

A non-admin key is bound to a ``user_id`` and/or ``agent_id``. Whatever ids a request names, the
server resolves the scope itself: a request naming a different id is refused (403), one naming none
gets the key's ids, and single memories outside the key's scope are reported as not found (404)."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engram.errors import (
    SERVICE_ERRORS,
    AuthenticationError,
    ConfigurationError,
    FeatureUnavailableError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
)
from engram.filters import parse_filters
from engram.models import Scope
from engram.store.key_store import KeyStore

if TYPE_CHECKING:
    from engram.memory import Memory


@dataclass(frozen=True)
class Principal:
    """The caller: the key's id, the scope it is bound to, and whether it is an admin key."""

    key_id: str | None
    scope: Scope
    admin: bool

    @classmethod
    def anonymous(cls) -> Principal:
        """The caller when authentication is off (loopback ``--no-auth``): unrestricted."""
        return cls(key_id=None, scope=Scope(), admin=True)


def credentials(headers: Mapping[str, str]) -> str | None:
    """The API key from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    api_key = headers.get("x-api-key")
    return api_key.strip() if api_key and api_key.strip() else None


def authenticate(keys: KeyStore, token: str | None) -> Principal:
    """The principal for ``token``; AuthenticationError when it is missing, unknown or revoked."""
    if token is None:
        raise AuthenticationError("an API key is required", field="authorization",
                                  hint="send 'Authorization: Bearer egk_...' or 'X-API-Key: egk_...'; "
                                       "create one with: engram keys create --user-id ...")
    key = keys.authenticate(token)
    if key is None:
        raise AuthenticationError("unknown or revoked API key", field="authorization")
    return Principal(key_id=key.id, scope=key.scope, admin=key.admin)


def resolve_scope(principal: Principal, *, user_id: Any = None, agent_id: Any = None, run_id: Any = None,
                  filters: Any = None) -> dict[str, Any]:
    """The scope ids to pass to ``Memory`` for this caller.

    Admin keys get what they asked for (their own ids fill in when the request names none). Other
    keys get their bound ids; naming a different one, top-level or in ``filters``, is refused."""
    given = {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}
    if principal.admin:
        if all(value is None for value in given.values()) and not _filters_name_scope(filters):
            given.update(principal.scope.items())
        return given
    in_filters = parse_filters(filters).scope
    for field, bound in principal.scope.items():
        for value in (given[field], getattr(in_filters, field)):
            if value is not None and value != bound:
                raise PermissionDeniedError(f"this API key may only use {field} {bound!r}", field=field,
                                            hint="use a key created for that scope, or an admin key")
        given[field] = bound
    return given


def _filters_name_scope(filters: Any) -> bool:
    return isinstance(filters, dict) and not parse_filters(filters).scope.is_empty()


def visible(principal: Principal, scope: Scope) -> bool:
    """True when a record stored under ``scope`` belongs to the caller."""
    return principal.admin or principal.scope.contains(scope)


def require_visible(principal: Principal, scope: Scope, memory_id: str) -> None:
    """NotFoundError (never a hint that it exists) when the record is outside the caller's scope."""
    if not visible(principal, scope):
        raise NotFoundError(f"no memory with id {memory_id!r}", field="memory_id")


def scope_of(record: Mapping[str, Any]) -> Scope:
    """The scope a memory or history record (as the facade returns it) belongs to."""
    return Scope(user_id=record.get("user_id"), agent_id=record.get("agent_id"), run_id=record.get("run_id"))


def owned_memory(memory: Memory, principal: Principal, memory_id: str) -> dict[str, Any]:
    """The memory ``memory_id`` if the caller may see it; NotFoundError otherwise (never a hint that it
    exists)."""
    item = memory.get(memory_id)
    if item is None:
        raise NotFoundError(f"no memory with id {memory_id!r}", field="memory_id")
    require_visible(principal, scope_of(item), memory_id)
    return item


def require_admin(principal: Principal, operation: str) -> None:
    """PermissionDeniedError unless the caller holds an admin key."""
    if not principal.admin:
        raise PermissionDeniedError(f"{operation} needs an admin key", hint="engram keys create --admin")


class RateLimiter:
    """A token bucket per caller: ``rate`` requests per second on average, bursts up to ``burst``.

    ``rate`` 0 turns limiting off. At most ``max_callers`` buckets are kept (least recently used go)."""

    def __init__(self, rate: float, burst: int, *, max_callers: int = 10_000) -> None:
        if rate < 0 or (rate > 0 and burst < 1):
            raise ConfigurationError("need rate >= 0 and burst >= 1", field="rate_limit")
        self.rate = rate
        self.burst = float(burst)
        self.max_callers = max_callers
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, caller: str) -> float:
        """Take one token; returns 0 when allowed, else the seconds to wait before retrying."""
        if self.rate == 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(caller, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[caller] = (tokens, now)
            while len(self._buckets) > self.max_callers:
                self._buckets.popitem(last=False)
        return wait

    def check(self, caller: str) -> None:
        """RateLimitError (with ``retry_after``) when the caller's bucket is empty."""
        wait = self.acquire(caller)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise RateLimitError(f"rate limit of {self.rate:g} requests/s (burst {self.burst:g}) exceeded",
                                 retry_after=seconds, hint=f"retry after {seconds} s")



__all__ = ["SERVICE_ERRORS", "AuthenticationError", "FeatureUnavailableError", "PayloadTooLargeError", "Principal",
           "RateLimitError"]
