"""kill -9 in the middle of a stream of commits: every acknowledged unit survives and the
database stays readable. The writer is a real subprocess; it prints each key once
``commit`` has returned for it, so every printed key was acknowledged."""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import trio

from adapters.sqlite.store import open_sqlite_store

WRITERS = 8
ACKS_BEFORE_KILL = 400

CHILD = """
import sys
from datetime import UTC, datetime

import msgspec
import trio

import trio

from adapters.sqlite.store import open_sqlite_store
from orchestrator.domain.model import Priority, ReactionAction, SessionState
from orchestrator.domain.records import CommitUnit, OutboxItem, Project

WRITERS = int(sys.argv[2])


async def main(path: str) -> None:
    async with open_sqlite_store(path) as store:
        now = datetime.now(UTC)
        await store.upsert_project(Project(id="mer", path="/repos/mer", registered_at=now))
        records = [await store.create_session("mer", now=now) for _ in range(WRITERS)]
        print("ready", flush=True)

        async def writer(record) -> None:
            i = 0
            while True:
                now = datetime.now(UTC)
                state = SessionState.WORKING if i % 2 == 0 else SessionState.IDLE
                record = msgspec.structs.replace(
                    record,
                    lifecycle=msgspec.structs.replace(record.lifecycle, state=state),
                    updated_at=now,
                )
                key = f"{record.id}/{i}"
                item = OutboxItem(
                    dedup_key=key,
                    session_id=record.id,
                    project_id="mer",
                    action=ReactionAction.NOTIFY,
                    reaction=None,
                    event_type="test.ack",
                    priority=Priority.INFO,
                    message=key,
                )
                await store.commit(
                    CommitUnit(
                        session_id=record.id,
                        at=now,
                        session=record,
                        changed=frozenset({"state"}),
                        outbox=(item,),
                    )
                )
                sys.stdout.write(key + "\\n")
                sys.stdout.flush()
                i += 1

        async with trio.open_nursery() as nursery:
            for record in records:
                nursery.start_soon(writer, record)


trio.run(main, sys.argv[1])
"""


def run_and_kill(db: Path, *, writers: int, acks: int) -> list[str]:
    """Start the child, wait for ``acks`` acknowledged keys, SIGKILL it, and return every
    key it printed in full (all of them acknowledged)."""
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(writers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        fd = proc.stdout.fileno()
        buffer = b""
        deadline = time.monotonic() + 30
        try:
            while buffer.count(b"\n") < acks + 1 and time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    buffer += chunk
            os.kill(proc.pid, signal.SIGKILL)
            rest, errors = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == -signal.SIGKILL, errors.decode()
    lines = (buffer + rest).decode().split("\n")
    assert lines[0] == "ready", errors.decode()
    # A torn last line (no newline yet) was not fully printed: not counted as acknowledged.
    return [line for line in lines[1:-1] if line]


def test_kill_9_loses_no_acknowledged_unit(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    acked = run_and_kill(db, writers=WRITERS, acks=ACKS_BEFORE_KILL)
    assert len(acked) >= ACKS_BEFORE_KILL

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {key for (key,) in conn.execute("SELECT dedup_key FROM outbox")}
        assert [key for key in acked if key not in stored] == []
        # Each unit kept its session update and change-log row with its outbox row.
        (updates,) = conn.execute(
            "SELECT COUNT(*) FROM change_log WHERE event_type = 'session_updated'"
        ).fetchone()
        assert updates == len(stored) >= len(acked)
    finally:
        conn.close()


async def test_the_store_reopens_after_a_kill(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    acked = await trio.to_thread.run_sync(lambda: run_and_kill(db, writers=2, acks=50))
    async with open_sqlite_store(db) as store:
        assert [s.id for s in await store.list_sessions()] == ["mer-1", "mer-2"]
        keys = {e.item.dedup_key for e in await store.list_outbox()}
        assert set(acked) <= keys
        assert await store.max_change_seq() == 2 + len(keys)  # 2 created + 1 per unit
