"""The dashboard's peek, notification buttons and Merge over the daemon's real services
(``adapters.http.dashboard.wiring``), through the app in process over a memory store."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
import trio

from adapters.http import ApiServices, DrainSwitch, TokenAuthority, create_app
from adapters.http.dashboard import DashboardServices
from adapters.http.dashboard.reads import StoreBoardReads
from adapters.http.dashboard.security import COOKIE_NAME, BrowserAuth
from adapters.http.dashboard.services import PeekUnavailableError
from adapters.http.dashboard.wiring import (
    PRActionsMerger,
    RuntimePaneCapture,
    StoreNotificationActions,
)
from adapters.memory import ManualClock, MemoryStore
from orchestrator.changefeed import ChangeFeed
from orchestrator.domain.errors import ConflictError
from orchestrator.domain.model import ActivityState, PRObservation, SessionId, SpawnOutcome
from orchestrator.ports import RuntimeHandle
from tests.engine_harness import Engine, running_engine
from tests.http_harness import DAEMON_TOKEN, FakeSessions

BASE = "http://127.0.0.1:8731"


@dataclass
class FakePane:
    """A runtime whose panes show ``text``; ``hang`` makes tmux never answer."""

    text: str = ""
    hang: bool = False
    asked: list[tuple[str, int]] = field(default_factory=list)

    async def last_output(self, handle: RuntimeHandle, lines: int) -> str:
        self.asked.append((handle.id, lines))
        if self.hang:
            await trio.sleep_forever()
        return self.text


@dataclass
class RecordingMerges:
    refuse: str = ""
    merged: list[SessionId] = field(default_factory=list)

    async def merge(self, session_id: SessionId) -> object:
        if self.refuse:
            raise ConflictError(self.refuse)
        self.merged.append(session_id)
        return None


@dataclass
class Rig:
    engine: Engine
    store: MemoryStore
    pane: FakePane
    merges: RecordingMerges
    client: httpx.AsyncClient
    csrf: str

    async def spawn(self) -> str:
        await self.engine.project()
        record = await self.store.create_session("mer", now=self.engine.clock.now())
        outcome = SpawnOutcome(
            branch=f"orchestrator/{record.id}",
            workspace_path=f"/work/{record.id}",
            runtime_handle_id=f"pane-{record.id}",
            runtime_name="fake",
            prompt="Fix the flaky test",
        )
        await self.engine.manager.on_spawn_completed(record.id, outcome)
        return record.id


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    store = MemoryStore()
    pane, merges = FakePane(), RecordingMerges()
    async with running_engine(store) as engine:
        services = ApiServices(
            store=store,
            lifecycle=engine.manager,
            sessions=FakeSessions(engine),
            changefeed=ChangeFeed(store),
            auth=TokenAuthority(DAEMON_TOKEN),
            drain=DrainSwitch(),
            clock=engine.clock,
        )
        browser = BrowserAuth(DAEMON_TOKEN, ManualClock(engine.clock.now()))
        dashboard = DashboardServices(
            reads=StoreBoardReads(store),
            store=store,
            browser=browser,
            panes=RuntimePaneCapture(pane, timeout=0.2),
            notifications=StoreNotificationActions(store),
            merger=PRActionsMerger(merges),
        )
        transport = httpx.ASGITransport(app=create_app(services, dashboard))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            token, _ = browser.issue_login_token()
            login = await client.get(f"/login?token={token}")
            client.cookies.set(COOKIE_NAME, login.cookies[COOKIE_NAME])
            page = await client.get("/")
            match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
            assert match is not None
            yield Rig(engine, store, pane, merges, client, match.group(1))


async def test_the_peek_shows_the_panes_last_lines_cleaned_and_escaped(rig: Rig) -> None:
    session_id = await rig.spawn()
    hostile = "\x1b[31mred\x1b[0m \u202eevil\u202c <b>bold</b>"
    rig.pane.text = "\n".join([*(f"line {n}" for n in range(100)), hostile])
    peek = await rig.client.get(f"/ui/frag/peek/{session_id}")
    assert peek.status_code == 200
    assert rig.pane.asked == [(f"pane-{session_id}", 80)]
    assert "line 99" in peek.text
    assert "line 20\n" not in peek.text  # 80 lines: 21..99 and the hostile one
    assert "red evil &lt;b&gt;bold&lt;/b&gt;" in peek.text
    assert "\x1b" not in peek.text
    assert "\u202e" not in peek.text


async def test_a_hung_tmux_gives_a_notice_not_a_hung_page(rig: Rig) -> None:
    session_id = await rig.spawn()
    rig.pane.hang = True
    with trio.fail_after(5):
        peek = await rig.client.get(f"/ui/frag/peek/{session_id}")
    assert peek.status_code == 200
    assert "tmux did not answer within 0.2 s" in peek.text


async def test_an_ended_session_or_an_empty_pane_says_so() -> None:
    capture = RuntimePaneCapture(FakePane(text="  \n"))
    store = MemoryStore()
    async with running_engine(store) as engine:
        record = await engine.spawn()
        with pytest.raises(PeekUnavailableError, match="shows nothing yet"):
            await capture.capture(record, 80)
        ended = await engine.manager.on_kill_requested(record.id)
        with pytest.raises(PeekUnavailableError, match="has ended"):
            await capture.capture(ended, 80)


async def test_notification_buttons_mark_read_and_resolve(rig: Rig) -> None:
    session_id = await rig.spawn()
    await rig.engine.activity(session_id, ActivityState.WAITING_INPUT)
    await rig.engine.deliver()
    (note,) = await rig.store.list_notifications()
    headers = {"X-CSRF-Token": rig.csrf}
    read = await rig.client.post(f"/ui/act/notifications/{note.id}/read", headers=headers)
    assert read.status_code == 204
    resolve = await rig.client.post(f"/ui/act/notifications/{note.id}/resolve", headers=headers)
    assert resolve.status_code == 204
    (marked,) = await rig.store.list_notifications()
    assert marked.read_at is not None
    assert marked.resolved_at is not None
    missing = await rig.client.post("/ui/act/notifications/999/read", headers=headers)
    assert missing.status_code == 404
    forged = await rig.client.post(f"/ui/act/notifications/{note.id}/read")
    assert forged.status_code == 403


async def test_merge_from_a_card_goes_through_the_pr_actions_and_shows_a_refusal(
    rig: Rig,
) -> None:
    session_id = await rig.spawn()
    observation = PRObservation(url="https://github.com/acme/app/pull/7", number=7)
    await rig.engine.manager.apply_pr_observation(session_id, observation)
    headers = {"X-CSRF-Token": rig.csrf}
    merged = await rig.client.post(f"/ui/act/s/{session_id}/merge", headers=headers)
    assert merged.status_code == 204
    assert rig.merges.merged == [session_id]
    rig.merges.refuse = "the PR is not mergeable: checks are failing"
    refused = await rig.client.post(f"/ui/act/s/{session_id}/merge", headers=headers)
    assert refused.status_code == 409
    assert "checks are failing" in refused.text
