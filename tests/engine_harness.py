"""A running engine over a chosen store, with recording delivery ports, for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import trio

from adapters.memory import MemoryStore, RecordingMessenger, RecordingNotifier
from adapters.sqlite.store import open_sqlite_store
from orchestrator.clock import TrioClock
from orchestrator.domain.model import (
    ActivitySignal,
    ActivityState,
    ProbeResult,
    RuntimeFacts,
    SessionRecord,
    SpawnOutcome,
)
from orchestrator.domain.reaction_policy import ReactionPolicy
from orchestrator.domain.records import Project
from orchestrator.lifecycle.manager import EngineLimits, LifecycleManager
from orchestrator.outbox import DeliveryPolicy, OutboxDispatcher
from orchestrator.ports import PRMerger, Store

StoreFactory = Callable[[Path], AbstractAsyncContextManager[Store]]


@asynccontextmanager
async def memory_store(_: Path) -> AsyncIterator[Store]:
    yield MemoryStore()


@asynccontextmanager
async def sqlite_store(directory: Path) -> AsyncIterator[Store]:
    async with open_sqlite_store(directory / "engine.db") as store:
        yield store


STORES: dict[str, StoreFactory] = {"memory": memory_store, "sqlite": sqlite_store}

FAST_DELIVERY = DeliveryPolicy(attempts=3, initial_backoff=0.01, max_backoff=0.05)


@dataclass
class Engine:
    store: Store
    manager: LifecycleManager
    dispatcher: OutboxDispatcher
    clock: TrioClock
    messenger: RecordingMessenger = field(default_factory=RecordingMessenger)
    notifier: RecordingNotifier = field(default_factory=RecordingNotifier)

    async def project(self, project_id: str = "mer") -> Project:
        existing = await self.store.get_project(project_id)
        if existing is not None:
            return existing
        return await self.store.upsert_project(
            Project(id=project_id, path=f"/repos/{project_id}", registered_at=self.clock.now())
        )

    async def spawn(self, project_id: str = "mer") -> SessionRecord:
        """A session as a completed spawn leaves it: not_started, alive, with a handle."""
        await self.project(project_id)
        record = await self.store.create_session(project_id, now=self.clock.now())
        return await self.manager.on_spawn_completed(
            record.id,
            SpawnOutcome(
                branch=f"orchestrator/{record.id}",
                workspace_path=f"/work/{record.id}",
                runtime_handle_id=f"{record.id}#1",
                runtime_name="scripted",
                prompt="Fix the flaky test",
            ),
        )

    async def activity(self, session_id: str, state: ActivityState) -> None:
        await self.manager.apply_activity_signal(
            session_id, ActivitySignal(state=state, timestamp=self.clock.now())
        )

    async def probe(
        self, session_id: str, runtime: ProbeResult, process: ProbeResult | None = None
    ) -> None:
        await self.manager.apply_runtime_observation(
            session_id,
            RuntimeFacts(observed_at=self.clock.now(), runtime=runtime, process=process or runtime),
        )

    async def state(self, session_id: str) -> SessionRecord:
        record = await self.store.get_session(session_id)
        assert record is not None
        return record

    async def deliver(self) -> None:
        await self.dispatcher.drain()

    def notified(self) -> list[str]:
        return self.notifier.types()


@asynccontextmanager
async def running_engine(
    store: Store,
    *,
    policy: ReactionPolicy | None = None,
    limits: EngineLimits | None = None,
    messenger: RecordingMessenger | None = None,
    notifier: RecordingNotifier | None = None,
    arm_timers: bool = False,
    clock: TrioClock | None = None,
    merger: PRMerger | None = None,
) -> AsyncIterator[Engine]:
    """An engine over ``store``. Engines that share a store across a restart should share
    ``clock`` too, so time carries on rather than starting over."""
    clock = clock or TrioClock()
    messenger = messenger or RecordingMessenger()
    notifier = notifier or RecordingNotifier()
    manager = LifecycleManager(store, clock=clock, policy=policy, limits=limits)
    dispatcher = OutboxDispatcher(
        store,
        messenger=messenger,
        notifier=notifier,
        clock=clock,
        policy=FAST_DELIVERY,
        merger=merger,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        if arm_timers:
            await manager.arm_timers()
        yield Engine(store, manager, dispatcher, clock, messenger, notifier)
        nursery.cancel_scope.cancel()


MINUTE = timedelta(minutes=1)
