"""Who is looking: browser sessions for API keys, CSRF tokens, and the local (no key) mode.

With ``engram serve`` a person logs in by pasting an API key. The key stays on the server, in a
session table held in memory; the browser gets only a random session id in an ``HttpOnly``,
``SameSite=Strict`` cookie. Every request re-checks the key, so revoking it ends its sessions.
Each session has its own CSRF token, sent back in every form. In local mode (``engram ui``) there is
no key and one CSRF token for the process; requests must name a loopback host (no DNS rebinding)."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlsplit

from engram.errors import AuthenticationError, PermissionDeniedError
from engram.server.auth import Principal, authenticate
from engram.server.runtime import is_loopback
from engram.store.key_store import KeyStore

SESSION_COOKIE = "engram_ui_session"
LOGIN_COOKIE = "engram_ui_login"
COOKIE_PATH = "/ui"
IDLE_TIMEOUT_S = 8 * 3600
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Viewer:
    """The person using the inspector: their principal, CSRF token and a label for the header."""

    principal: Principal
    csrf: str
    label: str
    session_id: str | None = None


@dataclass
class _Session:
    token: str
    csrf: str
    last_seen: float


class LoginRequired(Exception):
    """Raised when a page needs a logged-in session and there is none (the app redirects to login)."""


class Sessions:
    """Browser sessions of one server process: session id -> the API key it logged in with."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()

    def login(self, token: str) -> tuple[str, Principal]:
        """Check ``token`` and open a session for it; AuthenticationError when it is not a valid key."""
        principal = authenticate(self.keys, token.strip() or None)
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session_id] = _Session(token=token.strip(), csrf=secrets.token_urlsafe(32),
                                                  last_seen=time.monotonic())
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session_id, principal

    def viewer(self, session_id: str | None) -> Viewer:
        """The viewer of a session; LoginRequired when it is unknown, expired or its key was revoked."""
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(session_id) if session_id else None
            if session is None or now - session.last_seen > IDLE_TIMEOUT_S:
                self._sessions.pop(session_id or "", None)
                raise LoginRequired
            session.last_seen = now
            self._sessions.move_to_end(session_id or "")
        try:
            principal = authenticate(self.keys, session.token)
        except AuthenticationError:
            self.logout(session_id)
            raise LoginRequired from None
        return Viewer(principal=principal, csrf=session.csrf, label=_label(principal), session_id=session_id)

    def logout(self, session_id: str | None) -> None:
        """Forget a session (idempotent)."""
        with self._lock:
            self._sessions.pop(session_id or "", None)


def local_viewer(csrf: str) -> Viewer:
    """The viewer in local mode: unrestricted, like ``engram`` commands on the same store."""
    return Viewer(principal=Principal.anonymous(), csrf=csrf, label="local store")


def _label(principal: Principal) -> str:
    if principal.admin:
        return "admin key"
    return "key for " + ", ".join(f"{field} {value}" for field, value in principal.scope.items())


def check_csrf(expected: str, given: str | None) -> None:
    """PermissionDeniedError unless the form carried this session's CSRF token."""
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise PermissionDeniedError("the form is stale or came from another site", field="csrf",
                                    hint="reload the page and submit the form again")


def check_origin(headers: dict[str, str]) -> None:
    """PermissionDeniedError when a state-changing request says it came from another origin."""
    origin = headers.get("origin")
    host = headers.get("host", "")
    if origin and urlsplit(origin).netloc != host:
        raise PermissionDeniedError("cross-origin form submissions are refused", field="origin")


def check_local_host(host_header: str) -> None:
    """PermissionDeniedError unless the Host header names a loopback address (DNS rebinding)."""
    host = urlsplit(f"//{host_header}").hostname or ""
    if not is_loopback(host):
        raise PermissionDeniedError(f"the local inspector answers only on loopback hosts, not {host!r}",
                                    field="host", hint="open http://127.0.0.1:<port>/ui")
