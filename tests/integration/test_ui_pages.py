"""The inspector's pages over plain HTTP (no browser): scope counts on every backend, escaping,
login redirects, features that light up when the facade has them, and ``--no-auth`` servers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from engram import Memory
from engram.embed.base import Embedder
from engram.server.rest import create_app
from engram.server.runtime import BackgroundServer
from support.service import Service
from support.ui_seed import ATTACK, Seeded, seed, seeded_service


def test_scopes_lists_every_scope_with_its_counts(memory: Memory) -> None:
    seed(memory)
    rows = {(row["user_id"], row["run_id"]): row for row in memory.scopes()}
    assert set(rows) == {("alice", "chat-1"), ("alice", "chat-2"), ("bob", None)}
    assert rows[("alice", "chat-1")]["episodes"] == 6 and rows[("alice", "chat-1")]["memories"] == 6
    assert rows[("alice", "chat-2")]["statuses"] == {"active": 3, "quarantined": 1}
    assert [row["user_id"] for row in memory.scopes(user_id="bob")] == ["bob"]
    assert memory.scopes(user_id="nobody") == []


@pytest.fixture
def served(tmp_path: Path, embedder: Embedder) -> Iterator[tuple[Service, Seeded]]:
    with seeded_service(tmp_path / "ui.db", embedder) as found:
        yield found


@contextmanager
def logged_in(service: Service, who: str) -> Iterator[httpx.Client]:
    """An httpx client holding a UI session for ``who``'s key."""
    with httpx.Client(base_url=service.url, timeout=60) as client:
        form = client.get("/ui/login")
        token = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
        assert token is not None
        client.post("/ui/login", data={"key": service.tokens[who], "login_csrf": token.group(1), "next": "/ui/"})
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_memory_text_is_escaped_in_the_html(served: tuple[Service, Seeded]) -> None:
    service, seeded = served
    with logged_in(service, "alice") as client:
        for path in (f"/ui/memory/{seeded.xss_script}", "/ui/scope?user_id=alice&run_id=chat-2"):
            html = client.get(path).text
            assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
            assert "<script>window" not in html and "<img src=x" not in html and "<b>bold" not in html
        page = client.get("/ui/")
        assert "script-src 'self'" in page.headers["content-security-policy"]


def test_login_needs_a_valid_key_and_never_redirects_off_site(served: tuple[Service, Seeded]) -> None:
    service, _ = served
    with httpx.Client(base_url=service.url, timeout=60) as client:
        assert client.get("/ui/stats?user_id=alice").headers["location"].startswith("/ui/login?next=")
        form = client.get("/ui/login?next=//evil.example/x")
        token = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
        assert token is not None and 'value="/ui/"' in form.text, "an off-site next is dropped"
        refused = client.post("/ui/login", data={"key": service.tokens["alice"], "login_csrf": "wrong"})
        assert refused.status_code == 403
        done = client.post("/ui/login", data={"key": service.tokens["alice"], "login_csrf": token.group(1),
                                              "next": "https://evil.example/"})
        assert done.status_code == 303 and done.headers["location"] == "/ui/"


def test_an_admin_key_browses_every_scope_and_others_only_their_own(served: tuple[Service, Seeded]) -> None:
    service, seeded = served
    with logged_in(service, "admin") as client:
        page = client.get("/ui/").text
        assert "bob" in page and "chat-2" in page
        assert "peanuts" in client.get(f"/ui/memory/{seeded.bob_memory}").text
        assert "IBAN" in client.get("/ui/quarantine").text
    with logged_in(service, "alice") as client:
        assert "bob" not in client.get("/ui/").text
        assert client.get(f"/ui/memory/{seeded.bob_memory}").status_code == 404
        assert client.get("/ui/stats?user_id=bob").status_code == 403


def test_the_timeline_filters_by_trust_writer_status_kind_and_text(served: tuple[Service, Seeded]) -> None:
    service, _ = served

    def texts(**filters: str) -> list[str]:
        html = client.get("/ui/scope", params={"user_id": "alice", **filters}).text
        return re.findall(r'<p class="text">(?:<a href="[^"]+">)?([^<]*)<', html)

    with logged_in(service, "alice") as client:
        assert texts(trust="tool") == ["weather in Porto: 19C, light rain"]
        assert texts(writer="assistant") == ["Noted: Lisbon, nurse."]
        assert texts(status="quarantined") == [ATTACK]
        assert texts(kind="fact") == []
        assert texts(text="PORTO") == ["I moved to Porto last week."] * 2 + ["weather in Porto: 19C, light rain"] * 2
        assert texts(text="porto", show="memories") == ["I moved to Porto last week.",
                                                        "weather in Porto: 19C, light rain"]
        assert client.get("/ui/scope", params={"user_id": "alice", "trust": "root"}).status_code == 422


def test_a_revoked_key_ends_its_sessions(served: tuple[Service, Seeded]) -> None:
    service, _ = served
    with logged_in(service, "bob") as client:
        assert client.get("/ui/").status_code == 200
        service.keys.revoke(service.key_ids["bob"])
        assert client.get("/ui/").headers["location"].startswith("/ui/login")


def test_feedback_and_as_of_controls_work(tmp_path: Path, embedder: Embedder) -> None:
    with Memory(path=str(tmp_path / "ui.db"), embedder=embedder) as memory:
        seeded = seed(memory)
        with BackgroundServer(create_app(memory, auth=False)) as server, \
                httpx.Client(base_url=server.url, timeout=60) as client:
            html = client.get(f"/ui/memory/{seeded.alice_memory}").text
            assert "Not useful" in html
            posted = client.post(f"/ui/memory/{seeded.alice_memory}/feedback",
                                 data={"csrf": csrf_of(html), "useful": "no", "note": "outdated"})
            assert posted.status_code == 303
            event = memory.history(seeded.alice_memory)[-1]
            assert event["event"] == "FEEDBACK"
            assert 'name="as_of"' in client.get("/ui/search?user_id=alice").text
            page = client.get("/ui/search", params={"user_id": "alice", "q": "tea", "as_of": "2000-01-01"})
            assert page.status_code == 200
