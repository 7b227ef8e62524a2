"""The GitHub observer's API: ``GET /scm/status``, ``POST /sessions/{id}/scm/refresh``, the
kick an agent's turn end gives, and ``orchestrator scm status|refresh`` against it. The
observer is a stand-in that records kicks; the app is the real one, on loopback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import cast

import httpx
import msgspec
import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.typing import ASGIFramework
from typer.testing import CliRunner

from adapters.http import ApiServices, DrainSwitch, TokenAuthority, create_app
from adapters.memory import MemoryStore
from orchestrator import cli
from orchestrator.api import API_PREFIX, RunFile, ScmRefreshOut, ScmStatusOut
from orchestrator.changefeed import ChangeFeed
from orchestrator.domain.model import SessionId
from orchestrator.domain.scm import (
    ObserverState,
    PRRef,
    RateBudgetSnapshot,
    RateResourceState,
    RepoRef,
    SCMAuthState,
    SCMObserverStatus,
)
from orchestrator.runfile import RUN_FILE_NAME, write_run_file
from tests.engine_harness import Engine, running_engine
from tests.http_harness import FakeSessions

P = API_PREFIX
TOKEN = "scm-api-daemon-token-0123456789abcdef"
AUTH = TokenAuthority(TOKEN)  # one hook key for the app and the test's hook tokens


class StubObserver:
    def __init__(self, state: ObserverState = ObserverState.RUNNING, reason: str = "") -> None:
        self.kicks: list[SessionId | RepoRef | PRRef] = []
        self.state, self.reason = state, reason

    def status(self) -> SCMObserverStatus:
        return SCMObserverStatus(
            state=self.state,
            reason=self.reason,
            auth=SCMAuthState(available=True, source="GITHUB_TOKEN"),
            repos=1,
            prs=2,
            not_modified=40,
            guards=41,
            last_error="GitHub said \x1b[31mno\x07\u202e",
            budget=RateBudgetSnapshot(
                resources=(
                    RateResourceState(
                        resource="core",
                        limit=5000,
                        remaining=4990,
                        reset_at=datetime(2026, 5, 1, 12, tzinfo=UTC),
                    ),
                ),
                max_concurrency=2,
            ),
        )

    def kick(self, target: SessionId | RepoRef | PRRef, /) -> bool:
        self.kicks.append(target)
        return target != "app-9"


@asynccontextmanager
async def served(observer: StubObserver | None) -> AsyncIterator[tuple[httpx.AsyncClient, Engine]]:
    store = MemoryStore()
    async with running_engine(store) as engine:
        services = ApiServices(
            store=store,
            lifecycle=engine.manager,
            sessions=FakeSessions(engine),
            changefeed=ChangeFeed(store),
            auth=AUTH,
            drain=DrainSwitch(),
            clock=engine.clock,
            scm=observer,
        )
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        shutdown = trio.Event()
        async with trio.open_nursery() as nursery:
            app = cast("ASGIFramework", create_app(services))
            binds = await nursery.start(partial(serve, app, config, shutdown_trigger=shutdown.wait))
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(
                base_url=binds[0], headers=headers, trust_env=False, timeout=10
            ) as client:
                yield client, engine
            shutdown.set()


async def session(client: httpx.AsyncClient, engine: Engine) -> str:
    await engine.project("app")
    response = await client.post(f"{P}/sessions", json={"projectId": "app", "agent": "stub"})
    assert response.status_code == 201, response.text
    session_id: str = response.json()["id"]
    return session_id


async def test_status_is_the_observers_in_camel_case() -> None:
    async with served(StubObserver()) as (client, _):
        response = await client.get(f"{P}/scm/status")
        assert response.status_code == 200
        body = response.json()
        assert body["state"] == "running"
        assert (body["notModified"], body["prs"]) == (40, 2)
        assert body["budget"]["resources"][0]["remaining"] == 4990
        assert msgspec.json.decode(response.content, type=ScmStatusOut).auth.available


async def test_status_without_an_observer_says_so() -> None:
    async with served(None) as (client, _):
        body = (await client.get(f"{P}/scm/status")).json()
        assert body["state"] == "disabled"
        assert body["reason"] == "this daemon runs no GitHub observer"


async def test_refresh_kicks_the_session_and_answers_202() -> None:
    observer = StubObserver()
    async with served(observer) as (client, engine):
        sid = await session(client, engine)
        response = await client.post(f"{P}/sessions/{sid}/scm/refresh")
        assert response.status_code == 202, response.text
        assert msgspec.json.decode(response.content, type=ScmRefreshOut) == ScmRefreshOut(
            session_id=sid, watching=True
        )
        assert observer.kicks == [sid]
        missing = await client.post(f"{P}/sessions/app-77/scm/refresh")
        assert missing.status_code == 404
        assert observer.kicks == [sid]


@pytest.mark.parametrize("observer", [None, StubObserver(ObserverState.DISABLED, "no token")])
async def test_refresh_with_the_observer_disabled_is_a_conflict_that_says_why(
    observer: StubObserver | None,
) -> None:
    async with served(observer) as (client, engine):
        sid = await session(client, engine)
        response = await client.post(f"{P}/sessions/{sid}/scm/refresh")
        assert response.status_code == 409
        message = response.json()["error"]["message"]
        assert message.startswith("the GitHub observer is disabled: ")
        assert (observer.reason if observer else "no GitHub observer") in message


async def test_an_agents_turn_end_kicks_its_prs() -> None:
    observer = StubObserver()
    async with served(observer) as (client, engine):
        sid = await session(client, engine)
        hook = {"Authorization": f"Bearer {AUTH.session_token(sid)}"}
        for state in ("active", "waiting_input"):
            response = await client.post(
                f"{P}/sessions/{sid}/activity", json={"state": state}, headers=hook
            )
            assert response.status_code == 204
        assert observer.kicks == []
        for state in ("ready", "idle"):
            await client.post(f"{P}/sessions/{sid}/activity", json={"state": state}, headers=hook)
        assert observer.kicks == [sid, sid]
        # The hook token opens only the activity route.
        refused = await client.post(f"{P}/sessions/{sid}/scm/refresh", headers=hook)
        assert refused.status_code == 403


async def test_the_cli_shows_the_status_and_asks_for_a_refresh(tmp_path: Path) -> None:
    observer = StubObserver()
    async with served(observer) as (client, engine):
        sid = await session(client, engine)
        address = str(client.base_url).removeprefix("http://").rstrip("/")
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        write_run_file(
            data_dir / RUN_FILE_NAME,
            RunFile(pid=os.getpid(), address=address, token=TOKEN, started_at=datetime.now(UTC)),
        )
        env = {"ORCHESTRATOR_DATA_DIR": str(data_dir), "COLUMNS": "120"}

        def invoke(*args: str) -> tuple[int, str]:
            result = CliRunner().invoke(cli.app, list(args), env=env)
            return result.exit_code, result.output

        code, shown = await trio.to_thread.run_sync(invoke, "scm", "status")
        assert code == 0, shown
        assert "running" in shown
        assert "2 PRs in 1 repositories" in shown
        assert "41 (40 unchanged, free)" in shown
        assert "4990" in shown
        assert "GitHub said no" in shown
        assert not [ch for ch in ("\x1b", "\x07", "\u202e") if ch in shown]
        code, raw = await trio.to_thread.run_sync(invoke, "scm", "status", "--json")
        assert code == 0
        assert msgspec.json.decode(raw, type=ScmStatusOut).guards == 41
        code, said = await trio.to_thread.run_sync(invoke, "scm", "refresh", sid)
        assert (code, said.strip()) == (0, f"refreshing the PRs of {sid}")
        assert observer.kicks == [sid]
