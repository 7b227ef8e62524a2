"""SIGTERM under load: the daemon drains within its deadline, exits 0, keeps every
acknowledged write, and the next start delivers what was left in the outbox exactly once."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import msgspec
import trio

from adapters.sqlite.store import open_sqlite_store
from orchestrator.api import API_PREFIX
from orchestrator.clock import SystemClock
from orchestrator.daemon import tmux_socket_path
from orchestrator.domain.model import SpawnOutcome
from orchestrator.domain.records import Project
from orchestrator.lifecycle.manager import LifecycleManager
from tests.e2e.harness import kill_tmux, start_daemon, wait_for, write_config
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]

SESSIONS = 200
CLIENTS = 20
DRAIN_TIMEOUT = 10.0


async def _seed(database: Path, socket: Path) -> list[str]:
    """200 sessions as a spawn leaves them: a pane each on the daemon's tmux socket (a
    sleeping stand-in agent) and the spawn recorded. Their hooks are simulated over HTTP."""
    ids = []
    async with open_sqlite_store(database) as store, trio.open_nursery() as nursery:
        manager = LifecycleManager(store, clock=SystemClock())
        await nursery.start(manager.run)
        now = datetime.now(UTC)
        await store.upsert_project(Project(id="app", path="/repos/app", registered_at=now))
        for _ in range(SESSIONS):
            sid = (await store.create_session("app", now=now)).id
            await trio.run_process(
                [
                    "tmux",
                    "-S",
                    str(socket),
                    "-f",
                    "/dev/null",
                    "new-session",
                    "-d",
                    "-s",
                    sid,
                    "sleep 600",
                ]
            )
            outcome = SpawnOutcome(
                runtime_handle_id=sid, runtime_name="tmux", workspace_path="/tmp"
            )
            await manager.on_spawn_completed(sid, outcome)
            ids.append(sid)
        nursery.cancel_scope.cancel()
    return ids


def _pending_outbox(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL"
        ).fetchone()
    return int(count)


def test_sigterm_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    try:
        _drain_under_load(data)
    finally:
        kill_tmux(data)


def _drain_under_load(data: Path) -> None:
    config = write_config(data, drain_timeout=f"{int(DRAIN_TIMEOUT)}s")
    database = data / "orchestrator.db"
    socket = tmux_socket_path(data)
    ids = trio.run(_seed, database, socket)
    daemon = start_daemon(data, config=config)

    acked: dict[str, datetime] = {}
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = threading.Event()
    base = datetime.now(UTC)

    def client(mine: list[str]) -> None:
        with httpx.Client(
            base_url=daemon.base,
            headers={"Authorization": f"Bearer {daemon.run.token}"},
            timeout=15,
            trust_env=False,
        ) as http:
            step = 0
            while not stop.is_set():
                for sid in mine:
                    step += 1
                    at = base + timedelta(milliseconds=step)
                    body = {
                        "state": "waiting_input" if step % 2 else "active",
                        "timestamp": at.isoformat(),
                    }
                    try:
                        response = http.post(
                            f"{API_PREFIX}/sessions/{sid}/activity",
                            content=msgspec.json.encode(body),
                        )
                    except httpx.TransportError:
                        return  # the daemon has gone
                    with lock:
                        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                        if response.is_success:
                            acked[sid] = at
                    if response.status_code == 503:
                        return

    threads = [threading.Thread(target=client, args=(ids[n::CLIENTS],)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    wait_for(lambda: sum(statuses.values()) >= 500, seconds=30, what="load")
    signalled = time.monotonic()
    code = daemon.stop(timeout=DRAIN_TIMEOUT + 20)
    elapsed = time.monotonic() - signalled
    stop.set()
    for thread in threads:
        thread.join(timeout=30)

    assert code == 0, daemon.log()
    assert elapsed < DRAIN_TIMEOUT + 2, f"drain took {elapsed:.1f}s"
    assert statuses.get(204, 0) >= 500
    assert set(statuses) <= {204, 503}, statuses  # refused while draining, never an error
    assert not (data / "daemon.json").exists()

    async def check_acknowledged() -> None:
        async with open_sqlite_store(database) as store:
            for sid, at in acked.items():
                record = await store.get_session(sid)
                assert record is not None
                assert record.lifecycle.activity is not None, record.lifecycle
                assert record.lifecycle.activity.last_activity_at >= at, sid

    trio.run(check_acknowledged)

    # The next start delivers whatever the drain left, and nothing twice.
    again = start_daemon(data, config=config)
    try:
        wait_for(lambda: _pending_outbox(database) == 0, seconds=30, what="the outbox to empty")
    finally:
        assert again.stop() == 0
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        (notified,) = db.execute("SELECT COUNT(*) FROM notifications").fetchone()
        (pages,) = db.execute("SELECT COUNT(*) FROM outbox WHERE action = 'notify'").fetchone()
        (distinct,) = db.execute(
            "SELECT COUNT(DISTINCT session_id || type || created_at) FROM notifications"
        ).fetchone()
    assert pages > 0
    assert notified == pages == distinct
