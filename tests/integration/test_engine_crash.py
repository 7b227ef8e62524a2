"""kill -9 of a process running the engine, then a new engine on the same database:
undelivered reactions are delivered exactly once, delivered ones never again, and budgets
survive (no repeated nudge for a state that already fired)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trio

from adapters.sqlite.store import open_sqlite_store
from orchestrator.domain.model import ActivitySignal, ActivityState
from tests.engine_harness import running_engine
from tests.integration.engine_child import DELIVER, SESSIONS, failing_ci

ROOT = Path(__file__).resolve().parents[2]


def run_child_until_killed(database: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.engine_child", str(database)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "delivered"
    finally:
        child.kill()  # SIGKILL: no cleanup, no drain
        child.communicate(timeout=30)


async def test_kill_9_then_restart_delivers_leftovers_exactly_once(tmp_path: Path) -> None:
    database = tmp_path / "engine.db"
    await trio.to_thread.run_sync(run_child_until_killed, database)

    async with open_sqlite_store(database) as store:
        before = await store.list_outbox()
        # A CI nudge for the first (whose failing CI owns its idle), an idle nudge for the rest.
        assert len(before) == SESSIONS
        delivered_before = {e.id for e in before if e.delivered_at is not None}
        assert len(delivered_before) == DELIVER

        async with running_engine(store, arm_timers=True) as engine:
            await engine.deliver()
            sent = engine.messenger.sent
            assert len(sent) == SESSIONS - DELIVER  # each leftover exactly once
            after = await store.list_outbox()
            assert all(e.delivered_at is not None for e in after)
            # Nothing fires again for states that already fired before the crash.
            for record in await store.list_sessions():
                signal = ActivitySignal(state=ActivityState.IDLE, timestamp=engine.clock.now())
                await engine.manager.apply_activity_signal(record.id, signal)
            first = (await store.list_sessions())[0].id
            await engine.manager.apply_pr_observation(first, failing_ci())
            await engine.deliver()
            assert len(engine.messenger.sent) == len(sent)
            assert len(await store.list_outbox()) == SESSIONS
