"""Start-up refuses a damaged database with one line naming the file and what to do, and
never starts empty in place of data it could not read."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from adapters.sqlite.integrity import check_database_file
from adapters.sqlite.store import open_sqlite_store
from orchestrator.domain.errors import DatabaseDamagedError, StorageUnavailableError
from orchestrator.domain.records import Project
from tests.contract.support import T0


async def a_database(path: Path, sessions: int = 300) -> None:
    """A closed database of several hundred pages (checkpointed: no WAL left)."""
    async with open_sqlite_store(path) as store:
        await store.upsert_project(Project(id="mer", path="/repos/mer", registered_at=T0))
        for _ in range(sessions):
            await store.create_session("mer", now=T0)


WHAT_TO_DO = "restore it from a backup, or move it and its -wal and -shm files aside"


async def refused(
    path: Path, kind: type[Exception] = DatabaseDamagedError, advice: str = WHAT_TO_DO
) -> str:
    """The one-line refusal to open ``path``, naming it and (``advice``) what to do."""
    with pytest.raises(kind) as refusal:
        async with open_sqlite_store(path):
            pass
    message = str(refusal.value)
    assert "\n" not in message
    assert str(path) in message
    assert advice in message
    return message


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    db.write_bytes(b"these are my notes, not a database\n" * 200)
    assert "is not a SQLite database" in await refused(db)


async def test_a_truncated_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    await a_database(db)
    size = db.stat().st_size
    with db.open("r+b") as file:
        file.truncate(size // 2 + 100)
    assert "is truncated (" in await refused(db)
    with db.open("r+b") as file:
        file.truncate(4096 * 3)  # whole pages, fewer than the header counts
    assert "is truncated (3 of its" in await refused(db)


async def test_a_database_failing_its_integrity_check_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    await a_database(db)
    page_size = int.from_bytes(db.read_bytes()[16:18], "big")
    with db.open("r+b") as file:
        file.seek(page_size * 5)
        file.write(os.urandom(page_size))
    message = await refused(db)
    assert "fails its integrity check" in message or "is damaged" in message


async def test_an_empty_database_beside_a_non_empty_wal_is_refused_and_left_alone(
    tmp_path: Path,
) -> None:
    db = tmp_path / "store.db"
    await a_database(db)
    wal = tmp_path / "store.db-wal"
    shutil.copy(db, wal)  # any bytes: what matters is that there is a log to lose
    log = wal.read_bytes()
    db.write_bytes(b"")
    assert "is empty but its write-ahead log holds" in await refused(db)
    assert db.stat().st_size == 0
    assert wal.read_bytes() == log
    db.unlink()
    assert "is missing but its write-ahead log holds" in await refused(db)
    assert not db.exists()


async def test_an_empty_file_with_no_wal_starts_a_fresh_database(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    db.write_bytes(b"")
    async with open_sqlite_store(db) as store:
        assert await store.list_sessions() == []
    await a_database(db, sessions=1)  # and, now holding a session, it reopens
    async with open_sqlite_store(db) as store:
        assert len(await store.list_sessions()) == 1


async def test_a_database_that_cannot_be_opened_is_storage_unavailable(tmp_path: Path) -> None:
    db = tmp_path / "missing-dir" / "store.db"
    await refused(db, StorageUnavailableError, advice="unable to open database file")


def test_the_check_does_not_write_a_sound_database(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    connection = sqlite3.connect(db)
    connection.execute("CREATE TABLE t (x)")
    connection.commit()
    connection.close()
    before = db.read_bytes()
    check_database_file(db)
    assert db.read_bytes() == before
