"""The boot reconcile over a runtime that can read all its sessions at once: one reading
answers every probe (a session it does not list is still probed for real), and a reading
that fails or hangs falls back to probing each session, with the same outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import pytest
import trio
import trio.testing

from adapters.memory import MemoryStore, MemoryWorkspace, Script, ScriptedRuntime
from orchestrator.domain.errors import ProbeError
from orchestrator.domain.model import ActivityState, ProbeResult, SessionState
from orchestrator.ports import RuntimeProbe
from orchestrator.sessions import ReconcileReport, SessionManager, SpawnRequest
from tests.engine_harness import Engine, running_engine
from tests.integration.test_sessions import session_manager

SESSIONS = 6


ALIVE = RuntimeProbe(runtime=ProbeResult.ALIVE, process=ProbeResult.ALIVE)
EXITED = RuntimeProbe(runtime=ProbeResult.ALIVE, process=ProbeResult.DEAD)


class SnapshotRuntime(ScriptedRuntime):
    """A scripted runtime that also answers ``probe_all`` from its script. It lists the
    handles scripted alive or exited; one scripted dead is gone, and one scripted to fail
    or hang is left to its own probe."""

    def __init__(self) -> None:
        super().__init__()
        self.snapshots = 0
        self.snapshot_failure: Exception | None = None
        self.snapshot_hangs = False

    async def probe_all(self) -> Mapping[str, RuntimeProbe]:
        self.snapshots += 1
        if self.snapshot_hangs:
            await trio.sleep_forever()
        if self.snapshot_failure is not None:
            raise self.snapshot_failure
        listed = {Script.ALIVE: ALIVE, Script.EXITED: EXITED}
        return {hid: listed[answer] for hid, answer in self.script.items() if answer in listed}


async def handle_of(engine: Engine, session_id: str) -> str:
    return (await engine.state(session_id)).metadata.runtime_handle_id


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    async with running_engine(MemoryStore()) as running:
        yield running


async def _spawned(engine: Engine, runtime: SnapshotRuntime) -> tuple[SessionManager, list[str]]:
    sessions = session_manager(engine, runtime, MemoryWorkspace())
    await engine.project()
    ids = []
    for _ in range(SESSIONS):
        sid = (await sessions.spawn(SpawnRequest(project_id="mer", agent="aider"))).record.id
        await engine.activity(sid, ActivityState.ACTIVE)
        ids.append(sid)
    return sessions, ids


async def _reconcile(sessions: SessionManager, runtime: SnapshotRuntime) -> ReconcileReport:
    runtime.probes = 0
    return await sessions.reconcile(inventory=runtime, probe_timeout=2.0, concurrency=64)


async def test_one_reading_answers_every_probe(engine: Engine) -> None:
    runtime = SnapshotRuntime()
    sessions, ids = await _spawned(engine, runtime)
    exited = await handle_of(engine, ids[1])
    runtime.script[exited] = Script.EXITED
    report = await _reconcile(sessions, runtime)
    assert runtime.snapshots == 1
    assert runtime.probes == 0
    assert set(report.adopted) == set(ids) - {ids[1]}
    assert report.dead == (ids[1],)


async def test_a_session_the_reading_does_not_list_is_probed_for_real(engine: Engine) -> None:
    runtime = SnapshotRuntime()
    sessions, ids = await _spawned(engine, runtime)
    gone = await handle_of(engine, ids[2])
    runtime.script[gone] = Script.DEAD
    report = await _reconcile(sessions, runtime)
    assert runtime.probes == 1  # only the one the reading did not list
    assert report.dead == (ids[2],)
    assert len(report.adopted) == SESSIONS - 1


@pytest.mark.parametrize("failure", ["raises", "hangs"])
async def test_a_reading_that_fails_falls_back_to_probing_each(
    engine: Engine, failure: str, autojump_clock: trio.testing.MockClock
) -> None:
    runtime = SnapshotRuntime()
    sessions, ids = await _spawned(engine, runtime)
    if failure == "raises":
        runtime.snapshot_failure = ProbeError("tmux list-panes failed: server exited")
    else:
        runtime.snapshot_hangs = True
    hung = await handle_of(engine, ids[0])
    runtime.script[hung] = Script.TIMEOUT
    report = await _reconcile(sessions, runtime)
    assert runtime.probes == SESSIONS
    assert set(report.adopted) == set(ids[1:])
    assert report.quarantined == (ids[0],)
    assert (await engine.state(ids[0])).lifecycle.state is SessionState.DETECTING
