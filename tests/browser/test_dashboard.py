"""The dashboard in real headless Chromium against the real daemon on loopback, whose
sessions run a custom agent (``cat > received.txt`` in the worktree, in a real tmux pane).

One daemon and one browser serve the whole module (each test uses its own sessions), so
the suite pays for their start once. Screenshots of the board and of a session page are
saved to ``$ORCHESTRATOR_SCREENSHOTS`` (``make screenshots`` points it at docs/screenshots)
or to the test's temp dir.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.demo import seed_demo
from tests.browser.harness import (
    chromium,
    cli,
    login_path,
    poll,
    register,
    report,
    requires_browser,
    signed_in_page,
    spawn,
    workspace,
    zone_of_card,
)
from tests.e2e.harness import Daemon, running_daemon, wait_for
from tests.tools import requires

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [requires("tmux"), requires("git"), requires_browser()]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    tmp = tmp_path_factory.mktemp("dashboard")
    with running_daemon(tmp / "data") as running:
        register(running, tmp)
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


def test_login_then_live_columns_bell_and_title(daemon: Daemon, browser: Browser) -> None:
    asking, busy = spawn(daemon, "Ask me something"), spawn(daemon, "Keep working")
    report(daemon, asking, "waiting_input")
    report(daemon, busy, "active")
    printed = cli(daemon, "dashboard")
    assert printed.returncode == 0, printed.stderr
    link = printed.stdout.strip()
    assert link.startswith(f"{daemon.base}/login?token=")
    page = signed_in_page(browser, daemon, link=link)
    assert page.url == daemon.base + "/"  # the login link redirected to the board
    assert zone_of_card(page, asking) == "needs_you"
    assert zone_of_card(page, busy) == "working"
    assert page.locator(f'[data-zone-list="needs_you"] #card-{asking}').count() == 1
    assert page.locator(f'[data-zone-list="working"] #card-{busy}').count() == 1
    wait_for(lambda: _unread(page) >= 1, seconds=10, what="the first page in the bell")
    unread = _unread(page)
    page.evaluate("window.__sameDocument = true")

    # An activity post moves the card to Needs you without a reload, within a second.
    report(daemon, busy, "waiting_input")
    took = poll(lambda: zone_of_card(page, busy) == "needs_you", seconds=1.0, what="the move")
    assert took < 1.0
    assert page.locator(f'[data-zone-list="needs_you"] #card-{busy}').count() == 1
    assert page.evaluate("window.__sameDocument") is True
    # Its needs-input page arrives in the bell live, and the title counts who needs you.
    wait_for(lambda: _unread(page) == unread + 1, seconds=10, what="the bell to count the page")
    needs_you = page.locator('[data-zone-list="needs_you"] .card').count()
    assert page.title().startswith(f"({needs_you} need you)")
    page.context.close()

    # The CLI groups sessions by the same zones, computed by the same daemon.
    listed = cli(daemon, "ls", "--by-zone", "--json")
    assert listed.returncode == 0, listed.stderr
    zones = {z["id"]: z["zone"] for z in json.loads(listed.stdout)}
    assert zones[asking] == zones[busy] == "needs_you"
    table = cli(daemon, "ls", "--by-zone")
    assert table.returncode == 0, table.stderr
    assert table.stdout.index("Needs you") < table.stdout.index(busy)


def _unread(page: object) -> int:
    text = page.inner_text("#bell .bell-count")  # type: ignore[attr-defined]
    return int(text)


def test_a_script_in_a_prompt_renders_as_text(daemon: Daemon, browser: Browser) -> None:
    prompt = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> ok'
    session_id = spawn(daemon, prompt)
    page = signed_in_page(browser, daemon)
    title = page.locator(f"#card-{session_id} .title")
    assert title.inner_text() == prompt
    page.goto(f"{daemon.base}/s/{session_id}")
    page.wait_for_selector("#conn[data-state=live]")
    assert prompt in page.inner_text("#session-panels")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("document.scripts.length") == 1  # app.js, nothing injected
    page.context.close()


def test_send_from_the_card_reaches_the_agent_byte_for_byte(
    daemon: Daemon, browser: Browser
) -> None:
    session_id = spawn(daemon, "Listen")
    report(daemon, session_id, "active")
    page = signed_in_page(browser, daemon)
    message = "fix it — naïve \"quotes\" 'single' $HOME `tick` ; \\ & | < > 日本"
    page.click(f"#card-{session_id} [data-act=compose]")
    page.fill(f"#card-{session_id} .compose input", message)
    page.press(f"#card-{session_id} .compose input", "Enter")
    page.wait_for_selector("#toast:not([hidden])")
    assert page.inner_text("#toast") == f"sent to {session_id}"
    received = workspace(daemon, session_id) / "received.txt"
    wait_for(
        lambda: received.exists() and received.read_bytes() == message.encode() + b"\n",
        what="the message in the agent's input",
    )
    page.context.close()


def test_the_terminal_peek_shows_what_the_agents_pane_shows(
    daemon: Daemon, browser: Browser
) -> None:
    session_id = spawn(daemon, "Peek at me")
    report(daemon, session_id, "active")
    # The recorder agent reads its input from the pane's tty, which echoes it.
    response = daemon.post(f"/sessions/{session_id}/send", {"message": "echoed in the pane"})
    assert response.status_code in (202, 204), response.text
    page = signed_in_page(browser, daemon)
    page.goto(f"{daemon.base}/s/{session_id}")
    page.wait_for_selector("#conn[data-state=live]")
    poll(
        lambda: "echoed in the pane" in (page.text_content("#peek") or ""),
        seconds=10,
        what="the pane's text in the peek",
    )
    page.context.close()


def test_mark_read_and_resolve_from_the_notifications_centre(
    daemon: Daemon, browser: Browser
) -> None:
    session_id = spawn(daemon, "Ask me")
    report(daemon, session_id, "waiting_input")
    page = signed_in_page(browser, daemon)
    page.goto(f"{daemon.base}/notifications")
    page.wait_for_selector("#conn[data-state=live]")
    note = f"#notification-list li:has(a:text-is('{session_id}'))"
    page.wait_for_selector(f"{note} [data-act=read]", timeout=10_000)
    page.click(f"{note} [data-act=read]")
    page.wait_for_selector(f"{note} .note-head:has-text('· read')", timeout=5_000)
    page.click(f"{note} [data-act=resolve]")
    page.wait_for_selector(f"{note} .note-head:has-text('· resolved')", timeout=5_000)
    listed = daemon.api("GET", "/notifications").json()
    (mine,) = [n for n in listed if n["sessionId"] == session_id]
    assert mine["readAt"] is not None
    assert mine["resolvedAt"] is not None
    page.context.close()


def test_kill_confirms_then_done_with_its_reason_and_restore_brings_it_back(
    daemon: Daemon, browser: Browser
) -> None:
    session_id = spawn(daemon, "Short-lived")
    report(daemon, session_id, "active")
    page = signed_in_page(browser, daemon)
    card = f"#card-{session_id}"
    page.click(f"{card} [data-act=kill]")
    assert page.inner_text(f"{card} [data-act=kill]") == "Confirm kill"
    page.wait_for_timeout(300)
    body = daemon.api("GET", f"/sessions/{session_id}").json()
    assert body["lifecycle"]["state"] == "working"  # one click kills nothing
    page.click(f"{card} [data-act=kill]")
    poll(lambda: zone_of_card(page, session_id) == "done", seconds=5, what="the card in Done")
    assert page.locator(f'[data-zone-list="done"] {card}').count() == 1
    assert page.text_content(f"{card} .reason") == "killed by a person"  # Done is collapsed

    page.click("#done summary")
    page.click(f"{card} [data-act=restore]")
    poll(lambda: zone_of_card(page, session_id) == "working", seconds=10, what="the restore")
    assert page.locator(f'[data-zone-list="working"] {card}').count() == 1
    page.context.close()


class _Attacker(BaseHTTPRequestHandler):
    """Another origin on loopback (a different port is still the same *site*, so the
    browser sends our SameSite=Strict cookie): a page that posts a kill form to us."""

    target = ""

    def do_GET(self) -> None:
        page = (
            f'<form id="f" method="post" action="{self.target}"></form>'
            '<script>document.getElementById("f").submit()</script>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_no_cookie_shows_no_data_and_a_forged_cross_site_post_is_refused(
    daemon: Daemon, browser: Browser
) -> None:
    session_id = spawn(daemon, "Secret plans for the launch")
    report(daemon, session_id, "active")

    stranger = browser.new_context().new_page()
    stranger.goto(daemon.base + "/")
    text = stranger.inner_text("body")
    assert "Sign in" in text
    assert session_id not in text
    assert "Secret plans" not in text
    assert stranger.locator(".card").count() == 0
    status = stranger.evaluate("fetch('/ui/frag/board').then(r => r.status)")
    assert status == 401
    used = login_path(daemon)
    stranger.goto(daemon.base + used)
    assert stranger.url == daemon.base + "/"
    stranger.context.clear_cookies()
    stranger.goto(daemon.base + used)  # a login link works once
    assert "already used or has expired" in stranger.inner_text("body")
    stranger.context.close()

    page = signed_in_page(browser, daemon)
    _Attacker.target = f"{daemon.base}/api/v1/sessions/{session_id}/kill"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        page.wait_for_url(_Attacker.target)
        assert "cross-site request is refused" in page.inner_text("body")
    finally:
        server.shutdown()
        server.server_close()
    body = daemon.api("GET", f"/sessions/{session_id}").json()
    assert body["lifecycle"]["state"] == "working"
    page.context.close()


def test_screenshots_of_the_board_and_a_session(browser: Browser, tmp_path: Path) -> None:
    # A daemon of its own, so the pictures show the demo board and nothing else.
    target = Path(os.environ.get("ORCHESTRATOR_SCREENSHOTS") or tmp_path / "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    with running_daemon(tmp_path / "data") as daemon:
        ids = seed_demo(daemon, tmp_path)
        for scheme, suffix in (("light", ""), ("dark", "-dark")):
            page = signed_in_page(
                browser, daemon, viewport={"width": 1400, "height": 860}, color_scheme=scheme
            )
            assert page.locator("#columns .card").count() == len(ids) - 1  # one was killed
            page.click("#done summary")  # show the killed one, its reason and Restore
            page.screenshot(path=str(target / f"board{suffix}.png"), full_page=True)
            page.goto(f"{daemon.base}/s/{ids['ci']}")
            page.wait_for_selector("#conn[data-state=live]")
            page.wait_for_selector("#peek .peek, #peek .peek-notice")
            page.screenshot(path=str(target / f"session{suffix}.png"), full_page=True)
            page.context.close()
    for name in ("board.png", "session.png", "board-dark.png", "session-dark.png"):
        assert (target / name).stat().st_size > 10_000, name
