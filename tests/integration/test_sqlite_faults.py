"""Storage faults are reported as what they are: a full disk or a file that is not a
database fails reads and writes with ``StorageUnavailableError`` (the write not made),
degrades the store's health with the reason, logs once per episode, and the next commit
after the storage recovers heals it."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio

from adapters.sqlite.store import SqliteStore, open_sqlite_store
from adapters.sqlite.writer import make_engine
from orchestrator.domain.errors import StorageUnavailableError, StoreError, TransientError
from orchestrator.domain.health import HealthStatus, StoreHealth
from orchestrator.domain.model import SessionRecord, SessionState
from orchestrator.domain.records import CommitUnit, Project
from tests.contract.support import T0, at, moved, outbox_item, unit_for

BIG = "x" * 20_000  # an outbox message that needs pages of its own


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with open_sqlite_store(tmp_path / "store.db") as store:
        yield store


async def a_session(store: SqliteStore) -> SessionRecord:
    await store.upsert_project(Project(id="mer", path="/repos/mer", registered_at=T0))
    return await store.create_session("mer", now=T0)


async def cap_pages(store: SqliteStore, *, room: int | None) -> None:
    """Cap the database at ``room`` pages more than it holds (a disk about to fill up), or
    lift the cap (None)."""

    def op(cur: sqlite3.Cursor) -> None:
        if room is None:
            cur.execute("PRAGMA max_page_count = 1073741823")
            return
        (pages,) = cur.execute("PRAGMA page_count").fetchone()
        cur.execute(f"PRAGMA max_page_count = {pages + room}")

    await store.writer.submit(op)


async def fill_until_full(store: SqliteStore, record: SessionRecord) -> StorageUnavailableError:
    for n in range(10_000):
        unit = CommitUnit(
            session_id=record.id, at=at(n), outbox=(outbox_item(record, f"k{n}", message=BIG),)
        )
        try:
            await store.commit(unit)
        except StorageUnavailableError as error:
            return error
    raise AssertionError("the storage never filled up")


async def test_a_full_disk_is_storage_unavailable_until_space_frees(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    record = await a_session(store)
    await cap_pages(store, room=4)
    caplog.set_level(logging.WARNING, logger="adapters.sqlite.faults")

    error = await fill_until_full(store, record)
    assert isinstance(error, StoreError)  # callers that cope with a refused write cope
    assert isinstance(error, TransientError)  # ...and it is worth retrying
    assert "commit for session 'mer-1'" in str(error)
    assert "SQLITE_FULL" in str(error)
    queued = len(await store.list_outbox())
    health = store.health()
    assert (health.status, health.failures) == (HealthStatus.DEGRADED, 1)
    assert "full" in health.reason
    working, changed = moved(record, at(1), state=SessionState.WORKING)
    with pytest.raises(StorageUnavailableError):  # the next write fails too: not made
        await store.commit(
            unit_for(working, changed, outbox=(outbox_item(record, "more", message=BIG),))
        )
    assert store.health().failures == 2
    assert (await store.get_session(record.id)) == record
    assert len(await store.list_outbox()) == queued
    await store.flush()  # commits nothing: no proof the storage works again
    assert store.health().status is HealthStatus.DEGRADED

    await cap_pages(store, room=None)
    await store.commit(unit_for(working, changed))
    assert store.health() == StoreHealth()
    logged = [(r.levelname, " ".join(r.getMessage().split()[:4])) for r in caplog.records]
    assert logged == [  # once per episode, not once per failed write
        ("ERROR", "store degraded: storage unavailable:"),
        ("WARNING", "store recovered after 2"),
    ]


async def test_a_storage_fault_on_a_read_degrades_the_store(
    store: SqliteStore, tmp_path: Path
) -> None:
    record = await a_session(store)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database, " * 512)
    engine = make_engine(junk, read_only=True)
    try:
        with engine.connect() as broken:
            # The real writer, a reader on a file that is not a database.
            damaged = SqliteStore(store.writer, broken)
            with pytest.raises(StorageUnavailableError, match="SQLITE_NOTADB"):
                await damaged.get_session(record.id)
            with pytest.raises(StorageUnavailableError):
                await damaged.changes_after(0, limit=10)
            assert store.health().status is HealthStatus.DEGRADED
            assert "not a database" in store.health().reason
    finally:
        engine.dispose()
    working, changed = moved(record, at(1), state=SessionState.WORKING)
    await store.commit(unit_for(working, changed))
    assert store.health().ok


async def test_a_constraint_violation_leaves_the_store_healthy(store: SqliteStore) -> None:
    record = await a_session(store)
    bad = outbox_item(record, "k", priority="panic")  # type: ignore[arg-type]
    with pytest.raises(StoreError) as refused:
        await store.commit(CommitUnit(session_id=record.id, at=at(1), outbox=(bad,)))
    assert not isinstance(refused.value, StorageUnavailableError)
    assert store.health().ok


# --- a real full file system ------------------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, or a skip where mounting is not allowed (not root, no privilege)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    tool = shutil.which("mount")
    if tool is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    result = subprocess.run(
        [tool, "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


async def test_a_full_file_system_is_storage_unavailable_until_space_frees(
    small_tmpfs: Path,
) -> None:
    ballast = small_tmpfs / "ballast"
    async with open_sqlite_store(small_tmpfs / "store.db") as store:
        record = await a_session(store)
        free = shutil.disk_usage(small_tmpfs).free
        ballast.write_bytes(b"\0" * max(free - 256 * 1024, 0))  # leave room for a little
        error = await fill_until_full(store, record)
        assert "full" in str(error)
        assert store.health().status is HealthStatus.DEGRADED
        ballast.unlink()
        await trio.lowlevel.checkpoint()
        working, changed = moved(record, at(1), state=SessionState.WORKING)
        await store.commit(unit_for(working, changed))
        assert store.health().ok
        stored = await store.get_session(record.id)
        assert stored is not None
        assert stored.lifecycle.state is SessionState.WORKING
