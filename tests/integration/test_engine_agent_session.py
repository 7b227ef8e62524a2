"""The lifecycle engine, over each store: the agent's own conversation id reported by its
hook, and the removal of a terminated session."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import trio
import trio.testing

from adapters.memory import MemoryStore
from orchestrator.domain.errors import ConflictError, NotFoundError
from orchestrator.domain.model import (
    ActivitySignal,
    ActivityState,
    SessionState,
    TerminationReason,
)
from orchestrator.domain.records import ChangeType
from tests.engine_harness import STORES, Engine, running_engine


@pytest.fixture(params=sorted(STORES))
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    async with STORES[request.param](tmp_path) as store, running_engine(store) as running:
        yield running


async def report(engine: Engine, sid: str, state: ActivityState, agent_session_id: str) -> None:
    await engine.manager.apply_activity_signal(
        sid,
        ActivitySignal(
            state=state, timestamp=engine.clock.now(), agent_session_id=agent_session_id
        ),
    )


async def test_a_hook_s_agent_session_id_is_recorded_and_logged_once(engine: Engine) -> None:
    sid = (await engine.spawn()).id
    seen = await engine.store.max_change_seq()

    await report(engine, sid, ActivityState.ACTIVE, "conv-1")
    await report(engine, sid, ActivityState.ACTIVE, "conv-1")  # the same again: no change
    await report(engine, sid, ActivityState.ACTIVE, "")  # a hook that does not say: kept

    record = await engine.state(sid)
    assert record.metadata.agent_session_id == "conv-1"
    assert record.metadata.prompt == "Fix the flaky test"  # the rest of the metadata stays
    assert record.lifecycle.state is SessionState.WORKING
    rows = await engine.store.changes_after(seen, limit=100)
    assert [(e.type, json.loads(e.payload).get("agentSessionId")) for e in rows] == [
        (ChangeType.SESSION_UPDATED, "conv-1")
    ]

    # A new id (the agent started another conversation) replaces it, with its own row.
    await report(engine, sid, ActivityState.IDLE, "conv-2")
    assert (await engine.state(sid)).metadata.agent_session_id == "conv-2"
    rows = await engine.store.changes_after(seen, limit=100)
    assert [json.loads(e.payload).get("agentSessionId") for e in rows] == ["conv-1", "conv-2"]


async def test_a_terminated_session_ignores_a_late_agent_session_id(engine: Engine) -> None:
    sid = (await engine.spawn()).id
    await report(engine, sid, ActivityState.ACTIVE, "conv-1")
    await engine.manager.on_kill_requested(sid, TerminationReason.MANUALLY_KILLED)
    await report(engine, sid, ActivityState.ACTIVE, "conv-late")
    assert (await engine.state(sid)).metadata.agent_session_id == "conv-1"


async def test_remove_deletes_a_terminated_session_and_the_engine_forgets_it(
    engine: Engine,
) -> None:
    sid = (await engine.spawn()).id
    live = (await engine.spawn()).id
    await engine.activity(sid, ActivityState.ACTIVE)  # cached by the engine
    await engine.manager.on_kill_requested(sid, TerminationReason.MANUALLY_KILLED)

    with pytest.raises(ConflictError, match=f"session {live} is not_started, not terminated"):
        await engine.manager.remove(live)
    await engine.manager.remove(sid)

    assert await engine.store.get_session(sid) is None
    assert await engine.manager.exists(sid) is False
    with pytest.raises(NotFoundError):
        await engine.manager.get(sid)
    with pytest.raises(NotFoundError):
        await engine.manager.remove(sid)
    await engine.activity(sid, ActivityState.ACTIVE)  # an observation of it is ignored
    assert engine.manager.unknown_observations == 1
    assert await engine.store.get_session(sid) is None
    assert [v.record.id for v in await engine.manager.list()] == [live]
    last = (await engine.store.changes_after(0, limit=100))[-1]
    assert (last.type, last.session_id) == (ChangeType.SESSION_DELETED, sid)


async def test_a_command_queued_behind_a_removal_finds_the_session_gone() -> None:
    class SlowRemoval(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.proceed = trio.Event()

        async def delete_session(self, session_id: str, *, at: datetime) -> bool:
            await self.proceed.wait()
            return await super().delete_session(session_id, at=at)

    store = SlowRemoval()
    async with running_engine(store) as engine:
        sid = (await engine.spawn()).id
        await engine.manager.on_kill_requested(sid)
        outcomes: list[str] = []

        async def remove() -> None:
            await engine.manager.remove(sid)
            outcomes.append("removed")

        async def kill() -> None:
            try:
                await engine.manager.on_kill_requested(sid)
            except NotFoundError:
                outcomes.append("not found")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(remove)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(kill)  # waits for the removal's turn
            await trio.testing.wait_all_tasks_blocked()
            assert outcomes == []
            store.proceed.set()
        assert outcomes == ["removed", "not found"]
        assert engine.manager.cached_sessions == 0
