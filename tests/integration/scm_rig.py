"""A rig for the GitHub observer's tests: the fake GitHub in process on trio's mock clock,
the real provider, rate budget and ETag store, and the real lifecycle engine as the sink
(over the memory store), so each test sees what the agent would be sent.

Time is virtual: the fake, the budget and the engine all read trio's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import trio
import trio.testing

from adapters.github.auth import StaticToken
from adapters.github.budget import RateBudget
from adapters.github.client import GitHubClient
from adapters.github.etags import LruETagStore
from adapters.github.provider import GitHubProvider
from adapters.github.retry import RetryPolicy
from adapters.memory import MemoryStore
from orchestrator.clock import TrioClock
from orchestrator.config.schema import GitHubConfig
from orchestrator.domain.errors import StoreError
from orchestrator.domain.model import (
    ESCALATED_EVENT_TYPE,
    PRObservation,
    SessionId,
    SessionKind,
    SessionRecord,
    SpawnOutcome,
)
from orchestrator.domain.records import Project
from orchestrator.domain.scm import RepoRef
from orchestrator.scm import LifecycleSink, ObserverSettings, SCMObserver
from tests.engine_harness import Engine, running_engine
from tests.fakes.github import FakeGitHub, World
from tests.fakes.github.model import Account, PullRequest, Repo
from tests.fakes.github.requestlog import LoggedRequest

Clock = trio.testing.MockClock

EPOCH = 1_780_000_000.0
TOKEN = "ghp_observer_tests_0000000000000000"
SETTINGS = ObserverSettings.of(GitHubConfig())  # the config file's defaults
REPO = RepoRef(owner="acme", name="app")
HOUR = 3600.0


def epoch_now() -> float:
    """Epoch seconds that follow trio's clock: the fake's and the budget's time."""
    return EPOCH + trio.current_time()


class TrioEpoch:
    def now(self) -> float:
        return epoch_now()


class RecordingSink:
    """The engine as the sink, recording what was delivered; ``fail_next`` deliveries
    raise, as a store that cannot write would."""

    def __init__(self, inner: LifecycleSink) -> None:
        self.inner = inner
        self.delivered: list[tuple[SessionId, PRObservation]] = []
        self.fail_next = 0
        self.attempts = 0
        self._delivery = trio.Event()

    async def observe_pr(self, session_id: SessionId, observation: PRObservation) -> None:
        self.attempts += 1
        if self.fail_next:
            self.fail_next -= 1
            raise StoreError("the disk is full")
        await self.inner.observe_pr(session_id, observation)
        self.delivered.append((session_id, observation))
        self._delivery.set()
        self._delivery = trio.Event()

    async def wait_until(
        self, done: Callable[[list[PRObservation]], bool], *, within: float = HOUR
    ) -> None:
        """Until ``done`` holds for the observations delivered so far, in order."""
        with trio.fail_after(within):
            while not done([observation for _, observation in self.delivered]):
                await self._delivery.wait()

    async def wait_for(self, count: int, *, within: float = HOUR) -> None:
        await self.wait_until(lambda seen: len(seen) >= count, within=within)


@dataclass
class Rig:
    fake: FakeGitHub
    repo: Repo
    alice: Account
    bob: Account
    engine: Engine
    store: MemoryStore
    observer: SCMObserver
    provider: GitHubProvider
    budget: RateBudget
    sink: RecordingSink
    etags: LruETagStore
    sessions: list[SessionRecord] = field(default_factory=list)

    @property
    def world(self) -> World:
        return self.fake.world

    async def spawn(
        self, branch: str | None = None, *, kind: SessionKind = SessionKind.WORKER
    ) -> SessionRecord:
        record = await self.store.create_session("app", now=self.engine.clock.now(), kind=kind)
        done = await self.engine.manager.on_spawn_completed(
            record.id,
            SpawnOutcome(
                branch=branch or f"orchestrator/{record.id}",
                workspace_path=f"/work/{record.id}",
                runtime_handle_id=f"{record.id}#1",
                runtime_name="scripted",
            ),
        )
        self.sessions.append(done)
        return done

    def open_pr(self, session: SessionRecord, *, draft: bool = False) -> PullRequest:
        return self.fake.world.open_pr(
            self.repo, head_ref=session.metadata.branch, author=self.alice, draft=draft
        )

    async def watched_pr(self, settle: float = 0.0) -> tuple[SessionRecord, PullRequest]:
        """A session whose PR the observer has found and delivered once; then ``settle``
        seconds more."""
        session = await self.spawn()
        pr = self.open_pr(session)
        await self.sink.wait_for(1)
        await self.settle(settle)
        return session, pr

    def messages(self, session: SessionRecord) -> list[str]:
        return self.engine.messenger.messages_for(session.id)

    async def settle(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass, then deliver what the engine queued."""
        await trio.sleep(seconds)
        await self.engine.deliver()

    def requests(self, path: str = "*", *, status: int | None = None) -> list[LoggedRequest]:
        return self.fake.log.matching(path, status=status)


def escalations(rig: Rig) -> int:
    return rig.engine.notified().count(ESCALATED_EVENT_TYPE)


@asynccontextmanager
async def observing(
    *,
    settings: ObserverSettings = SETTINGS,
    token: str | None = TOKEN,
    run: bool = True,
) -> AsyncIterator[Rig]:
    """A fake GitHub with ``acme/app``, a project on it, the engine, and the observer
    (running in the background unless ``run`` is false)."""
    fake = FakeGitHub(TrioEpoch())
    alice = fake.world.add_user("alice", token=TOKEN)
    bob = fake.world.add_user("bob")
    repo = fake.world.create_repo("acme/app")
    clock = TrioClock(origin=datetime.fromtimestamp(epoch_now(), UTC))
    store = MemoryStore()
    await store.upsert_project(
        Project(
            id="app",
            path="/repos/app",
            repo_origin_url="git@github.com:acme/app.git",
            registered_at=clock.now(),
        )
    )
    budget = RateBudget(clock=epoch_now)
    client = GitHubClient(StaticToken(token), budget, api_url=fake.api_url, mounts=fake.mounts())
    provider = GitHubProvider(client, retry=RetryPolicy(attempts=1))
    etags = LruETagStore()
    async with running_engine(store, clock=clock) as engine:
        sink = RecordingSink(LifecycleSink(engine.manager))
        observer = SCMObserver(provider, sink, store, etags, clock, settings)
        rig = Rig(fake, repo, alice, bob, engine, store, observer, provider, budget, sink, etags)
        try:
            async with trio.open_nursery() as observers:
                if run:
                    await observers.start(observer.run)
                yield rig
                observers.cancel_scope.cancel()
        finally:
            await client.aclose()
