"""The dashboard's pages, fragments, sign-in, CSRF and Host checks through the real app
(in process, over httpx's ASGI transport) over a memory store and a running engine."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from adapters.http import ApiServices, DrainSwitch, TokenAuthority, create_app
from adapters.http.dashboard import DashboardServices
from adapters.http.dashboard.reads import StoreBoardReads
from adapters.http.dashboard.security import COOKIE_NAME, BrowserAuth
from adapters.memory import ManualClock, MemoryStore
from orchestrator.api import API_PREFIX
from orchestrator.changefeed import ChangeFeed
from orchestrator.domain.model import (
    ActivityState,
    PRComment,
    PRObservation,
    ReviewDecision,
    SpawnOutcome,
    TerminationReason,
)
from tests.engine_harness import Engine, running_engine
from tests.http_harness import DAEMON_TOKEN, FakeSessions

BASE = "http://127.0.0.1:8731"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@dataclass
class App:
    engine: Engine
    store: MemoryStore
    browser: BrowserAuth
    clock: ManualClock
    sessions: FakeSessions
    client: httpx.AsyncClient
    """No cookie, no token: a stranger's browser."""

    async def signed_in(self) -> tuple[httpx.AsyncClient, str]:
        """A client holding a session cookie, and the CSRF token its pages carry."""
        token, _ = self.browser.issue_login_token()
        response = await self.client.get(f"/login?token={token}")
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        cookie = response.cookies[COOKIE_NAME]
        self.client.cookies.clear()  # the stranger stays a stranger
        client = httpx.AsyncClient(
            transport=self.client._transport, base_url=BASE, cookies={COOKIE_NAME: cookie}
        )
        page = await client.get("/")
        match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
        assert match is not None
        return client, match.group(1)

    async def spawn(self, prompt: str = "Fix the flaky test") -> str:
        await self.engine.project()
        record = await self.store.create_session("mer", now=self.engine.clock.now())
        await self.engine.manager.on_spawn_completed(record.id, _outcome(record.id, prompt))
        return record.id


def _outcome(session_id: str, prompt: str) -> SpawnOutcome:
    return SpawnOutcome(
        branch=f"orchestrator/{session_id}",
        workspace_path=f"/work/{session_id}",
        runtime_handle_id=session_id,
        runtime_name="fake",
        prompt=prompt,
    )


@pytest.fixture
async def app() -> AsyncIterator[App]:
    store = MemoryStore()
    async with running_engine(store) as engine:
        feed = ChangeFeed(store)
        sessions = FakeSessions(engine)
        auth = TokenAuthority(DAEMON_TOKEN)
        services = ApiServices(
            store=store,
            lifecycle=engine.manager,
            sessions=sessions,
            changefeed=feed,
            auth=auth,
            drain=DrainSwitch(),
            clock=engine.clock,
        )
        clock = ManualClock(engine.clock.now())
        browser = BrowserAuth(DAEMON_TOKEN, clock)
        dashboard = DashboardServices(
            reads=StoreBoardReads(store), store=store, browser=browser, agents=("stub",)
        )
        transport = httpx.ASGITransport(app=create_app(services, dashboard))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield App(engine, store, browser, clock, sessions, client)


PAGES = ["/", "/notifications", "/s/mer-1"]
FRAGMENTS = [
    "/ui/frag/board",
    "/ui/frag/card/mer-1",
    "/ui/frag/session/mer-1",
    "/ui/frag/peek/mer-1",
    "/ui/frag/bell",
    "/ui/frag/notifications",
]


async def test_without_the_cookie_no_page_or_fragment_shows_data(app: App) -> None:
    session_id = await app.spawn("Secret plans")
    for path in PAGES:
        response = await app.client.get(path)
        assert response.status_code == 401, path
        assert "orchestrator dashboard" in response.text
        assert session_id not in response.text
        assert "Secret plans" not in response.text
        assert 'name="csrf-token"' not in response.text
    for path in FRAGMENTS:
        response = await app.client.get(path)
        assert response.status_code == 401, path
        assert response.content == b""
    forged = {"Cookie": f"{COOKIE_NAME}=abc.99999999999.deadbeef"}
    assert (await app.client.get("/", headers=forged)).status_code == 401


async def test_a_login_token_works_once_and_expires_in_a_minute(app: App) -> None:
    token, expires = app.browser.issue_login_token()
    assert expires - app.clock.now() == timedelta(seconds=60)
    first = await app.client.get(f"/login?token={token}")
    assert first.status_code == 303
    set_cookie = first.headers["set-cookie"]
    assert "HttpOnly" in set_cookie
    assert "SameSite=strict" in set_cookie
    assert (await app.client.get(f"/login?token={token}")).status_code == 401

    late, _ = app.browser.issue_login_token()
    app.clock.advance(timedelta(seconds=60))
    response = await app.client.get(f"/login?token={late}")
    assert response.status_code == 401
    assert "already used or has expired" in response.text
    assert (await app.client.get("/login?token=made-up")).status_code == 401


async def test_login_links_need_the_daemon_token(app: App) -> None:
    path = f"{API_PREFIX}/dashboard/login"
    assert (await app.client.post(path)).status_code == 401
    hook = TokenAuthority(DAEMON_TOKEN).session_token("mer-1")
    wrong = await app.client.post(path, headers={"Authorization": f"Bearer {hook}"})
    assert wrong.status_code == 401
    ok = await app.client.post(path, headers={"Authorization": f"Bearer {DAEMON_TOKEN}"})
    assert ok.status_code == 201
    link = ok.json()["path"]
    assert link.startswith("/login?token=")
    assert (await app.client.get(link)).status_code == 303


async def test_cookie_posts_need_the_csrf_token_and_our_origin(app: App) -> None:
    session_id = await app.spawn()
    client, csrf = await app.signed_in()
    send = f"{API_PREFIX}/sessions/{session_id}/send"
    refused = await client.post(send, json={"message": "hi"})
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]
    wrong = await client.post(send, json={"message": "hi"}, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    foreign = {"X-CSRF-Token": csrf, "Origin": "http://127.0.0.1:9999"}
    cross = await client.post(send, json={"message": "hi"}, headers=foreign)
    assert cross.status_code == 403
    assert "cross-site" in cross.json()["error"]["message"]
    kill = await client.post(f"{API_PREFIX}/sessions/{session_id}/kill", content=b"")
    assert kill.status_code == 403
    assert app.sessions.sent == []
    assert not (await app.engine.state(session_id)).lifecycle.state.is_terminal

    own = {"X-CSRF-Token": csrf, "Origin": BASE}
    ok = await client.post(send, json={"message": "hi"}, headers=own)
    assert ok.status_code == 204
    assert app.sessions.sent == [(session_id, "hi")]
    # Reads with the cookie need no token: the page's GETs and its EventSource.
    listed = await client.get(f"{API_PREFIX}/sessions")
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()] == [session_id]
    await client.aclose()


async def test_a_foreign_host_is_refused_but_the_bearer_api_is_untouched(app: App) -> None:
    client, _ = await app.signed_in()
    rebound = {"Host": "evil.example:8731"}
    assert (await client.get("/", headers=rebound)).status_code == 403
    assert (await client.get(f"{API_PREFIX}/sessions", headers=rebound)).status_code == 403
    assert (await app.client.get("/", headers=rebound)).status_code == 403
    for host in ("localhost:8731", "[::1]:8731", "127.0.0.1:45000"):
        assert (await client.get("/", headers={"Host": host})).status_code == 200, host
    bearer = {"Authorization": f"Bearer {DAEMON_TOKEN}", "Host": "evil.example"}
    assert (await app.client.get(f"{API_PREFIX}/sessions", headers=bearer)).status_code == 200
    await client.aclose()


async def test_pages_carry_a_strict_csp_and_no_inline_script_or_style(app: App) -> None:
    session_id = await app.spawn(HOSTILE)
    client, _ = await app.signed_in()
    for path in ["/", "/notifications", f"/s/{session_id}", "/login?token=x"]:
        response = await client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp, path
        assert "default-src 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        scripts = re.findall(r"<script[^>]*>", response.text)
        assert all("src=" in tag for tag in scripts), scripts
        assert " style=" not in response.text
        assert "<script>alert" not in response.text
    await client.aclose()


async def test_attacker_text_is_escaped_everywhere(app: App) -> None:
    session_id = await app.spawn(HOSTILE)
    observation = PRObservation(
        url="javascript:alert(1)",
        number=3,
        review=ReviewDecision.CHANGES_REQUESTED,
        comments=(PRComment(id="c1", author="<b>mallory</b>", body=HOSTILE),),
    )
    await app.engine.manager.apply_pr_observation(session_id, observation)
    client, _ = await app.signed_in()
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    for path in ["/", f"/s/{session_id}", f"/ui/frag/card/{session_id}"]:
        text = (await client.get(path)).text
        assert HOSTILE not in text, path
        assert escaped in text, path
        assert 'href="javascript:' not in text
    detail = (await client.get(f"/s/{session_id}")).text
    assert "&lt;b&gt;mallory&lt;/b&gt;" in detail
    await client.aclose()


async def test_board_columns_and_zones_follow_the_derived_status(app: App) -> None:
    asking, working, killed = [await app.spawn(p) for p in ("Ask", "Work", "Gone")]
    await app.engine.activity(asking, ActivityState.WAITING_INPUT)
    await app.engine.activity(working, ActivityState.ACTIVE)
    await app.engine.manager.on_kill_requested(killed, TerminationReason.MANUALLY_KILLED)
    client, _ = await app.signed_in()
    board = (await client.get("/ui/frag/board")).text
    for session_id, zone in ((asking, "needs_you"), (working, "working"), (killed, "done")):
        assert re.search(rf'id="card-{session_id}"[^>]*data-zone="{zone}"', board), session_id
    assert "killed by a person" in board
    zones = await app.client.get(
        f"{API_PREFIX}/zones", headers={"Authorization": f"Bearer {DAEMON_TOKEN}"}
    )
    assert zones.status_code == 200
    assert {z["id"]: z["zone"] for z in zones.json()} == {
        asking: "needs_you",
        working: "working",
        killed: "done",
    }
    assert (await app.client.get(f"{API_PREFIX}/zones")).status_code == 401
    page = (await client.get("/")).text
    assert "<title>(1 need you) orchestrator</title>" in page
    other = await client.get(f"/ui/frag/card/{asking}?project=mer")
    assert other.status_code == 200
    await app.engine.project("elsewhere")
    filtered = await client.get(f"/ui/frag/card/{asking}?project=elsewhere")
    assert filtered.status_code == 204
    assert (await client.get("/ui/frag/card/mer-99")).status_code == 404
    await client.aclose()


async def test_the_empty_board_explains_a_session(app: App) -> None:
    await app.engine.project()
    client, _ = await app.signed_in()
    page = (await client.get("/")).text
    assert "No sessions yet" in page
    assert "A <strong>session</strong> is one coding agent" in page
    assert 'data-act="spawn"' in page
    await client.aclose()


async def test_unwired_capabilities_answer_501_and_the_peek_says_why(app: App) -> None:
    session_id = await app.spawn()
    client, csrf = await app.signed_in()
    headers = {"X-CSRF-Token": csrf}
    for path in ("/ui/act/notifications/1/read", "/ui/act/notifications/1/resolve"):
        response = await client.post(path, headers=headers)
        assert response.status_code == 501, path
        assert response.json()["error"]["code"] == "not_implemented"
    merge = await client.post(f"/ui/act/s/{session_id}/merge", headers=headers)
    assert merge.status_code == 409  # no open PR: nothing to merge
    peek = await client.get(f"/ui/frag/peek/{session_id}")
    assert "terminal capture is not wired" in peek.text
    await client.aclose()
