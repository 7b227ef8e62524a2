"""A child process running the engine on a SQLite file, for the kill -9 test.

It spawns SESSIONS sessions, fails CI on the first (one CI nudge) and makes each idle (an
idle nudge for the others), then delivers with a messenger that accepts DELIVER messages and hangs on
the next. It prints ``delivered`` once those are marked delivered in the database, then
waits to be killed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from adapters.memory import RecordingMessenger, RecordingNotifier
from adapters.sqlite.store import open_sqlite_store
from orchestrator.clock import SystemClock
from orchestrator.domain.model import (
    ActivitySignal,
    ActivityState,
    CheckStatus,
    CIState,
    PRCheck,
    PRObservation,
    SpawnOutcome,
)
from orchestrator.domain.records import Project
from orchestrator.lifecycle.manager import LifecycleManager
from orchestrator.outbox import OutboxDispatcher

SESSIONS = 6
DELIVER = 3
PR = "https://github.com/acme/app/pull/1"


def failing_ci() -> PRObservation:
    check = PRCheck(name="test", commit="c1", status=CheckStatus.FAILED, log_tail="boom")
    return PRObservation(url=PR, number=1, ci=CIState.FAILING, checks=(check,))


class HangingMessenger(RecordingMessenger):
    """Accepts ``limit`` messages, then never returns."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    async def send(self, session_id: str, message: str, *, resend: bool = False) -> None:
        if len(self.sent) >= self.limit:
            await trio.sleep_forever()
        await super().send(session_id, message, resend=resend)


async def main(database: Path) -> None:
    clock = SystemClock()
    async with open_sqlite_store(database) as store, trio.open_nursery() as nursery:
        manager = LifecycleManager(store, clock=clock)
        await nursery.start(manager.run)
        await store.upsert_project(Project(id="app", path="/repos/app", registered_at=clock.now()))
        ids = []
        for _ in range(SESSIONS):
            sid = (await store.create_session("app", now=clock.now())).id
            await manager.on_spawn_completed(
                sid, SpawnOutcome(runtime_handle_id=sid, runtime_name="x")
            )
            ids.append(sid)
        await manager.apply_pr_observation(ids[0], failing_ci())
        for sid in ids:
            signal = ActivitySignal(state=ActivityState.IDLE, timestamp=clock.now())
            await manager.apply_activity_signal(sid, signal)
        dispatcher = OutboxDispatcher(
            store, messenger=HangingMessenger(DELIVER), notifier=RecordingNotifier(), clock=clock
        )
        store.on_commit = dispatcher.wake
        await nursery.start(dispatcher.run)
        while len([e for e in await store.list_outbox() if e.delivered_at]) < DELIVER:  # noqa: ASYNC110
            await trio.sleep(0.01)
        print("delivered", flush=True)  # noqa: T201 - the parent reads this
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]))
