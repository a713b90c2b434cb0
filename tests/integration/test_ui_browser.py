"""The web inspector in a real browser (Debian's Chromium through Playwright) against a real server
on 127.0.0.1: log in with a key, search and open an explanation, release a quarantined record, delete
a memory, tenant isolation through the UI's URLs, stored XSS, keyboard-only use, 200% zoom, and
``engram ui`` (local mode, no key)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engram import Memory
from engram.embed.base import Embedder
from support.browser import launched_browser, screenshot
from support.service import Service
from support.ui_seed import XSS_IMAGE, XSS_SCRIPT, Seeded, seed, seeded_service

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_browser() as instance:
        yield instance


@pytest.fixture
def served(tmp_path: Path, embedder: Embedder) -> Iterator[tuple[Service, Seeded]]:
    with seeded_service(tmp_path / "ui.db", embedder) as found:
        yield found


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def login(page: Any, service: Service, who: str) -> None:
    page.goto(f"{service.url}/ui/")
    page.get_by_label("API key").fill(service.tokens[who])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{service.url}/ui/")


def test_login_search_and_open_an_explanation(page: Any, served: tuple[Service, Seeded]) -> None:
    service, _ = served
    page.goto(f"{service.url}/ui/")
    assert "/ui/login" in page.url, "pages need a session"
    screenshot(page, "login")
    page.get_by_label("API key").fill("egk_not-a-key")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "That key is unknown or revoked."
    login(page, service, "alice")
    rows = page.locator("tbody tr")
    assert rows.count() == 3 and "bob" not in page.locator("main").inner_text()
    screenshot(page, "scopes")
    page.goto(f"{service.url}/ui/search?user_id=alice")
    page.get_by_label("Question").fill("Where does she live now?")
    page.get_by_label("Reference date").fill("2024-06-01")
    page.get_by_role("button", name="Search").click()
    first = page.locator("ol.results > li").first
    assert "Porto" in page.locator("ol.results").inner_text()
    assert "confidence" in page.get_by_role("status").inner_text()
    first.get_by_text("Why this score").click()
    bars = first.locator("details.explain ul.bars li")
    assert bars.count() >= 3 and first.locator("details.explain svg.bar rect").first.is_visible()
    assert "fused relevance" in first.locator("details.explain").inner_text()
    screenshot(page, "search")


def test_release_a_quarantined_record(page: Any, served: tuple[Service, Seeded]) -> None:
    service, seeded = served
    login(page, service, "alice")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Quarantine").click()
    assert "IBAN" in page.locator("tbody").inner_text()
    assert "score" in page.locator("tbody").inner_text(), "the guard's verdict is shown"
    screenshot(page, "quarantine")
    page.locator(f"input[name=ids][value='{seeded.attack}']").check()
    page.get_by_role("button", name="Release selected").click()
    assert "released" in page.get_by_role("status").inner_text()
    with service.http("alice") as api:
        assert api.get(f"/v1/memories/{seeded.attack}").json()["status"] == "active"


def test_delete_a_memory_and_it_is_gone_from_the_api(page: Any, served: tuple[Service, Seeded]) -> None:
    service, seeded = served
    login(page, service, "alice")
    page.goto(f"{service.url}/ui/memory/{seeded.alice_memory}")
    assert "sister Ana" in page.locator("blockquote").inner_text()
    page.get_by_role("link", name="Delete this memory…").click()
    screenshot(page, "delete")
    page.get_by_role("button", name="Delete").click()
    assert page.locator("input:invalid").count() == 1, "the confirmation box is required"
    page.get_by_label("Yes, delete it for good").check()
    page.get_by_role("button", name="Delete").click()
    assert page.get_by_role("status").inner_text() == "The memory was deleted."
    with service.http("alice") as api:
        assert api.get(f"/v1/memories/{seeded.alice_memory}").status_code == 404


def test_edit_a_memory_keeps_its_history(page: Any, served: tuple[Service, Seeded]) -> None:
    service, seeded = served
    login(page, service, "alice")
    page.goto(f"{service.url}/ui/memory/{seeded.alice_moved}")
    assert "supersedes" in page.locator("main").inner_text() and "Lisbon" in page.locator("main").inner_text()
    conversation = page.locator(".conversation").inner_text()
    assert "green tea" in conversation and "weather in Porto" in conversation, "the turns around the source"
    screenshot(page, "memory")
    page.get_by_label("Text").fill("I moved to Porto in April 2024.")
    page.get_by_role("button", name="Save the new text").click()
    assert "updated" in page.get_by_role("status").inner_text()
    history = page.locator("ol.history").inner_text()
    assert "I moved to Porto in April 2024." in history and "before: I moved to Porto last week." in history


def test_one_tenant_cannot_reach_another_through_the_ui(page: Any, served: tuple[Service, Seeded]) -> None:
    service, seeded = served
    alice_text = "allergic"
    login(page, service, "bob")
    assert "alice" not in page.locator("main").inner_text()
    for path, status in ((f"/ui/memory/{seeded.alice_memory}", 404), (f"/ui/memory/{seeded.alice_memory}/delete", 404),
                         ("/ui/scope?user_id=alice", 403), ("/ui/scope?user_id=alice&run_id=chat-1", 403),
                         ("/ui/search?user_id=alice&q=where+does+she+live", 403), ("/ui/stats?user_id=alice", 403),
                         ("/ui/quarantine?user_id=alice", 403)):
        response = page.goto(service.url + path)
        assert response.status == status, path
        assert "Lisbon" not in page.content() and "sister" not in page.content()
    page.goto(f"{service.url}/ui/quarantine")
    assert "IBAN" not in page.content()
    page.goto(f"{service.url}/ui/search?user_id=bob&q=where+does+alice+live")
    assert "Lisbon" not in page.content() and "Porto" not in page.content()
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    for action in ("edit", "delete"):
        response = page.request.post(f"{service.url}/ui/memory/{seeded.alice_memory}/{action}",
                                     form={"csrf": csrf, "text": "hacked", "confirm": "yes"}, max_redirects=0)
        assert response.status == 404
    response = page.request.post(f"{service.url}/ui/quarantine", form={"csrf": csrf, "ids": seeded.attack,
                                                                        "action": "release"}, max_redirects=0)
    assert response.status == 404
    assert service.memory.get(seeded.alice_memory)["memory"] == "My sister Ana is getting married in June."
    assert service.memory.get(seeded.attack)["status"] == "quarantined"
    page.context.clear_cookies()
    login(page, service, "alice-planner")
    assert page.goto(f"{service.url}/ui/memory/{seeded.alice_memory}").status == 404, "agent-bound key"
    assert alice_text not in page.content()


def test_memory_text_is_shown_as_text_never_run(page: Any, served: tuple[Service, Seeded]) -> None:
    service, seeded = served
    login(page, service, "alice")
    for path in (f"/ui/memory/{seeded.xss_script}", f"/ui/memory/{seeded.xss_image}",
                 "/ui/scope?user_id=alice&run_id=chat-2", "/ui/search?user_id=alice&q=tea+friends",
                 "/ui/stats?user_id=alice"):
        page.goto(service.url + path)
        assert page.evaluate("window.__pwned") is None, path
        assert page.locator("main img, main script, main b").count() == 0, path
    page.goto(f"{service.url}/ui/scope?user_id=alice&run_id=chat-2")
    text = page.locator("main").inner_text()
    assert XSS_SCRIPT in text and XSS_IMAGE in text
    screenshot(page, "timeline")


def test_forms_need_the_session_csrf_token_and_cookies_are_strict(page: Any,
                                                                  served: tuple[Service, Seeded]) -> None:
    service, seeded = served
    login(page, service, "alice")
    cookie = next(c for c in page.context.cookies() if c["name"] == "engram_ui_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    url = f"{service.url}/ui/memory/{seeded.alice_memory}/edit"
    assert page.request.post(url, form={"text": "forged"}, max_redirects=0).status == 403
    assert page.request.post(url, form={"text": "forged", "csrf": "guess"}, max_redirects=0).status == 403
    page.goto(f"{service.url}/ui/memory/{seeded.alice_memory}")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    for origin in ("http://evil.example", "null"):
        forged = page.request.post(url, form={"text": "forged", "csrf": csrf}, max_redirects=0,
                                   headers={"Origin": origin})
        assert forged.status == 403, origin
    assert service.memory.get(seeded.alice_memory)["memory"] == "My sister Ana is getting married in June."
    page.get_by_role("button", name="Log out").click()
    assert "/ui/login" in page.goto(f"{service.url}/ui/").url


def tab_until(page: Any, condition: str, limit: int = 80) -> None:
    """Press Tab until the JavaScript ``condition`` (about ``document.activeElement``) holds."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const e = document.activeElement; return {condition}; }})()"):
            return
    raise AssertionError(f"Tab never reached an element where {condition}")


def test_keyboard_only_login_search_and_explanation(page: Any, served: tuple[Service, Seeded]) -> None:
    service, _ = served
    page.goto(f"{service.url}/ui/")
    page.keyboard.type(service.tokens["alice"])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{service.url}/ui/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none", "visible focus"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    tab_until(page, "e.textContent === 'Search'")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/search?*")
    tab_until(page, "e.id === 'q'")
    page.keyboard.type("What does she drink?")
    page.keyboard.press("Enter")
    page.wait_for_selector("ol.results")
    tab_until(page, "e.tagName === 'SUMMARY'")
    page.keyboard.press("Enter")
    assert page.locator("details.explain[open]").count() == 1
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"


def test_pages_reflow_at_200_percent_zoom(browser: Any, served: tuple[Service, Seeded]) -> None:
    service, seeded = served
    context = browser.new_context(viewport={"width": 640, "height": 450})
    page = context.new_page()
    try:
        login(page, service, "alice")
        for path in ("/ui/", "/ui/scope?user_id=alice", f"/ui/memory/{seeded.alice_moved}",
                     "/ui/search?user_id=alice&q=tea", "/ui/quarantine", "/ui/stats?user_id=alice"):
            page.goto(service.url + path)
            for summary in page.locator("summary").all():
                summary.click()
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 200% zoom"
        page.goto(f"{service.url}/ui/stats?user_id=alice")
        screenshot(page, "stats-zoom-200")
        context.close()
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        login(page, service, "alice")
        page.goto(f"{service.url}/ui/stats?user_id=alice")
        assert page.locator("svg.columns rect").count() == 5
        screenshot(page, "stats")
    finally:
        context.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_engram_ui_serves_the_local_store_without_a_key(page: Any, tmp_path: Path, embedder: Embedder) -> None:
    path = tmp_path / "local.db"
    with Memory(path=str(path), embedder=embedder) as memory:
        seed(memory)
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "engram.cli", "ui", "--db", str(path), "--port", str(port),
                                "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/ui/", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1]
            time.sleep(0.2)
        page.goto(base)
        assert page.url == f"{base}/ui/" and page.locator("tbody tr").count() == 4, "every scope, no login"
        assert page.locator("header").inner_text().count("local store") == 1
        screenshot(page, "local")
        page.get_by_role("link", name="Quarantine").first.click()
        page.locator("input[name=ids]").first.check()
        page.get_by_role("button", name="Drop selected…").click()
        page.get_by_role("button", name="Delete them").click()
        assert page.get_by_role("status").inner_text() == "The selected records were deleted."
        rebinding = httpx.get(f"{base}/ui/", headers={"Host": f"attacker.example:{port}"})
        assert rebinding.status_code == 403, "a DNS-rebound name is refused"
    finally:
        process.terminate()
        process.wait(timeout=30)
