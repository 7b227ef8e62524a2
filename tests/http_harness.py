"""The real HTTP app served by hypercorn's trio worker on a loopback port, over a memory
store and a running engine, with a fake session manager — for the API and SSE tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import cast

import httpx
import msgspec
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.typing import ASGIFramework

from adapters.http import ApiServices, DrainSwitch, SessionCommands, TokenAuthority, create_app
from adapters.http.services import PRCommands
from adapters.http.webhooks import GitHubWebhooks
from adapters.memory import MemoryStore
from orchestrator.api import API_PREFIX
from orchestrator.changefeed import ChangeFeed
from orchestrator.cleanup import CleanupReport, Reclaimed
from orchestrator.domain.errors import ConflictError, InvalidInputError, NotFoundError
from orchestrator.domain.model import SessionId, SpawnOutcome, TerminationReason
from orchestrator.lifecycle.manager import SessionView
from orchestrator.sessions import SpawnRequest
from tests.engine_harness import Engine, running_engine

DAEMON_TOKEN = "test-daemon-token-0123456789abcdef"


class FakeSessions:
    """Spawn, kill, restore, send and rm straight through the lifecycle manager. Sessions
    in ``dirty`` keep their workspace on kill (``ConflictError`` after the termination);
    cleanup answers ``cleanup_report``; project paths in ``bad_paths`` are refused."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dirty: set[SessionId] = set()
        self.sent: list[tuple[SessionId, str]] = []
        self.spawned: list[SpawnRequest] = []
        self.restored: list[tuple[SessionId, bool]] = []
        self.cleanups: list[tuple[SessionId | None, bool]] = []
        self.cleanup_report: CleanupReport | None = None
        self.bad_paths: set[str] = set()

    async def spawn(self, request: SpawnRequest, /) -> SessionView:
        store, clock = self.engine.store, self.engine.clock
        if await store.get_project(request.project_id) is None:
            raise NotFoundError(f"spawn: project {request.project_id!r} not found")
        record = await store.create_session(
            request.project_id, now=clock.now(), issue_id=request.issue_id, kind=request.kind
        )
        self.spawned.append(request)
        await self.engine.manager.on_spawn_completed(record.id, _outcome(record.id, request.prompt))
        return await self.engine.manager.get(record.id)

    async def kill(self, session_id: SessionId, reason: TerminationReason, /) -> bool:
        await self.engine.manager.get(session_id)
        await self.engine.manager.on_kill_requested(session_id, reason)
        if session_id in self.dirty:
            raise ConflictError(f"kill {session_id}: workspace: uncommitted changes; kept")
        return True

    async def restore(
        self, session_id: SessionId, /, *, agent: str | None = None, fresh: bool = False
    ) -> SessionView:
        self.restored.append((session_id, fresh))
        await self.engine.manager.on_restored(session_id, _outcome(session_id, "again"))
        return await self.engine.manager.get(session_id)

    async def cleanup(
        self, *, session_id: SessionId | None = None, dry_run: bool = False
    ) -> CleanupReport:
        self.cleanups.append((session_id, dry_run))
        return self.cleanup_report or CleanupReport(dry_run=dry_run)

    async def remove(self, session_id: SessionId, /) -> Reclaimed:
        await self.engine.manager.remove(session_id)
        return Reclaimed(session_id=session_id, pane=f"{session_id}#1")

    async def check_project_path(self, path: str, /) -> None:
        if path in self.bad_paths:
            raise InvalidInputError(f"{path} is not a git work tree")

    async def send(self, session_id: SessionId, message: str, /) -> None:
        view = await self.engine.manager.get(session_id)
        if view.record.lifecycle.state.is_terminal:
            raise ConflictError(f"send {session_id}: session is terminal")
        self.sent.append((session_id, message))


def _outcome(session_id: SessionId, prompt: str) -> SpawnOutcome:
    return SpawnOutcome(
        branch=f"orchestrator/{session_id}",
        workspace_path=f"/work/{session_id}",
        runtime_handle_id=f"{session_id}#1",
        runtime_name="fake",
        prompt=prompt,
    )


@dataclass
class Served:
    engine: Engine
    store: MemoryStore
    services: ApiServices
    feed: ChangeFeed
    url: str
    client: httpx.AsyncClient
    sessions: FakeSessions
    anonymous: httpx.AsyncClient

    @property
    def auth(self) -> TokenAuthority:
        return self.services.auth

    async def head(self) -> int:
        return await self.store.max_change_seq()

    async def spawn(self, project_id: str = "mer") -> str:
        """A spawned session over HTTP; returns its id."""
        await self.engine.project(project_id)
        response = await self.client.post(
            f"{API_PREFIX}/sessions", json={"projectId": project_id, "agent": "stub"}
        )
        assert response.status_code == 201, response.text
        session_id: str = response.json()["id"]
        return session_id

    def as_token(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def decode(response: httpx.Response) -> object:
    return msgspec.json.decode(response.content)


@asynccontextmanager
async def serve_api(
    *,
    sessions: Callable[[Engine, TokenAuthority], SessionCommands] | None = None,
    subscriber_buffer: int = 1024,
    heartbeat: float = 15.0,
    replay_batch: int = 512,
    pr_actions: Callable[[Engine], PRCommands] | None = None,
    webhooks: Callable[[Engine], GitHubWebhooks] | None = None,
) -> AsyncIterator[Served]:
    """The app on ``127.0.0.1:<free port>``; always shut down on exit, even on failure."""
    store = MemoryStore()
    async with running_engine(store) as engine:
        feed = ChangeFeed(store, subscriber_buffer=subscriber_buffer)
        store.on_commit = feed.notify
        fake = FakeSessions(engine)
        auth = TokenAuthority(DAEMON_TOKEN)
        services = ApiServices(
            store=store,
            lifecycle=engine.manager,
            sessions=sessions(engine, auth) if sessions else fake,
            changefeed=feed,
            auth=auth,
            drain=DrainSwitch(),
            clock=engine.clock,
            version="test",
            heartbeat=heartbeat,
            replay_batch=replay_batch,
            pr_actions=pr_actions(engine) if pr_actions else None,
            github_webhooks=webhooks(engine) if webhooks else None,
        )
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.graceful_timeout = 1.0
        config.accesslog = None
        shutdown = trio.Event()
        async with trio.open_nursery() as nursery:
            await nursery.start(feed.run)
            binds: list[str] = await nursery.start(
                partial(
                    serve,
                    cast("ASGIFramework", create_app(services)),
                    config,
                    shutdown_trigger=shutdown.wait,
                )
            )
            url = binds[0]
            try:
                async with (
                    httpx.AsyncClient(
                        base_url=url,
                        headers={"Authorization": f"Bearer {DAEMON_TOKEN}"},
                        trust_env=False,
                        timeout=10,
                    ) as client,
                    httpx.AsyncClient(base_url=url, trust_env=False, timeout=10) as anonymous,
                ):
                    yield Served(engine, store, services, feed, url, client, fake, anonymous)
            finally:
                feed.close()  # end open event streams before hypercorn's graceful shutdown
                shutdown.set()
            nursery.cancel_scope.deadline = trio.current_time() + 5
