"""Backups of the SQLite database: an online copy while the writer commits, its check and
mode, rotation, the pre-migration snapshot, the offline restore and the damaged-database
message that names the newest good backup."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import sys
from pathlib import Path

import pytest
import trio

from adapters.sqlite.backup import (
    SqliteBackups,
    backup_problem,
    copy_database,
    newest_good_backup,
    restore_backup,
    rotate,
    scheduled_backups,
)
from adapters.sqlite.migrate import default_directory
from adapters.sqlite.offline import main
from adapters.sqlite.store import SqliteStore, open_sqlite_store
from orchestrator.backups import BackupTaken, run_scheduled_backups
from orchestrator.domain.errors import ConflictError, DatabaseDamagedError, InvalidInputError
from orchestrator.domain.records import Project
from orchestrator.runfile import DataDirLock
from tests.contract.support import T0


async def _project(store: SqliteStore) -> None:
    await store.upsert_project(Project(id="mer", path="/repos/mer", registered_at=T0))


def _session_ids(path: Path) -> set[str]:
    connection = sqlite3.connect(path)
    try:
        return {row[0] for row in connection.execute("SELECT id FROM sessions")}
    finally:
        connection.close()


async def test_a_backup_taken_while_the_writer_commits_holds_everything_acknowledged_before(
    tmp_path: Path,
) -> None:
    database = tmp_path / "orchestrator.db"
    async with open_sqlite_store(database) as store:
        await _project(store)
        acknowledged = {(await store.create_session("mer", now=T0)).id for _ in range(50)}
        backups = SqliteBackups(database, tmp_path / "backups")
        stop = trio.Event()

        async def keep_writing() -> None:
            while not stop.is_set():
                await store.create_session("mer", now=T0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_writing)
            await trio.sleep(0.05)
            taken = await backups.take()
            stop.set()
        written_meanwhile = await store.list_sessions()
    assert backup_problem(taken.path) is None
    in_backup = _session_ids(taken.path)
    assert acknowledged <= in_backup
    assert len(written_meanwhile) > len(acknowledged)  # the writer kept going
    assert taken.size_bytes == taken.path.stat().st_size > 0
    assert stat.S_IMODE(taken.path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "backups").stat().st_mode) == 0o700


async def test_a_backup_never_overwrites_and_wants_an_absolute_path(tmp_path: Path) -> None:
    database = tmp_path / "orchestrator.db"
    async with open_sqlite_store(database):
        pass
    existing = tmp_path / "there.db"
    existing.write_text("mine")
    with pytest.raises(ConflictError, match="never overwrites"):
        copy_database(database, existing)
    assert existing.read_text() == "mine"
    backups = SqliteBackups(database, tmp_path / "backups")
    with pytest.raises(InvalidInputError, match="absolute"):
        await backups.take(Path("relative.db"))
    with pytest.raises(InvalidInputError, match="not a directory"):
        copy_database(database, tmp_path / "missing" / "x.db")


def test_rotation_keeps_the_newest(tmp_path: Path) -> None:
    names = [f"orchestrator-2026010{i}T000000000000Z.db" for i in range(1, 6)]
    for name in names:
        (tmp_path / name).write_text("")
    (tmp_path / "pre-migration-1-to-2-x.db").write_text("")
    removed = rotate(tmp_path, 2)
    assert [p.name for p in removed] == names[:3]
    assert [p.name for p in scheduled_backups(tmp_path)] == names[3:]
    assert (tmp_path / "pre-migration-1-to-2-x.db").exists()


async def test_scheduled_backups_rotate_to_keep(tmp_path: Path) -> None:
    database = tmp_path / "orchestrator.db"
    async with open_sqlite_store(database) as store:
        await _project(store)
        backups = SqliteBackups(database, tmp_path / "backups")
        rotations = 0

        class Counted:
            async def take(self, to: Path | None = None, /) -> BackupTaken:
                return await backups.take(to)

            async def rotate(self, keep: int, /) -> list[Path]:
                nonlocal rotations
                removed = await backups.rotate(keep)
                rotations += 1
                if rotations == 5:  # stop once a rotation is done, never between the two
                    scope.cancel()
                return removed

            async def quick_check(self) -> str | None:
                return await backups.quick_check()

        with trio.CancelScope() as scope:
            await run_scheduled_backups(Counted(), every=0.01, keep=3)
    kept = scheduled_backups(tmp_path / "backups")
    assert rotations == 5
    assert len(kept) == 3
    assert all(backup_problem(path) is None for path in kept)


async def test_a_migration_of_a_database_with_data_is_snapshotted_first(tmp_path: Path) -> None:
    database = tmp_path / "orchestrator.db"
    only_first = tmp_path / "migrations"
    only_first.mkdir()
    shutil.copy(Path(str(default_directory() / "0001_init.sql")), only_first)
    async with open_sqlite_store(database, migrations=only_first) as store:
        await _project(store)
    async with open_sqlite_store(database):  # applies 2.. on top of 1
        pass
    snapshots = sorted((tmp_path / "backups").glob("pre-migration-1-to-*.db"))
    assert len(snapshots) == 1
    assert backup_problem(snapshots[0]) is None
    connection = sqlite3.connect(snapshots[0])
    try:
        versions = [row[0] for row in connection.execute("SELECT version FROM schema_migrations")]
    finally:
        connection.close()
    assert versions == [1]
    async with open_sqlite_store(database):  # up to date: no new snapshot
        pass
    assert len(list((tmp_path / "backups").glob("*.db"))) == 1


async def test_a_fresh_database_gets_no_snapshot(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "orchestrator.db"):
        pass
    assert not (tmp_path / "backups").exists()


async def test_restore_round_trip_keeps_the_current_database_aside(tmp_path: Path) -> None:
    database = tmp_path / "orchestrator.db"
    async with open_sqlite_store(database) as store:
        await _project(store)
        first = (await store.create_session("mer", now=T0)).id
        taken = await SqliteBackups(database, tmp_path / "backups").take()
        later = (await store.create_session("mer", now=T0)).id
    restored = restore_backup(database, taken.path)
    assert _session_ids(database) == {first}
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert restored.moved_aside
    assert later in _session_ids(restored.moved_aside[0])
    async with open_sqlite_store(database) as store:
        assert [r.id for r in await store.list_sessions()] == [first]


def test_restore_refuses_a_file_that_is_not_our_backup(tmp_path: Path) -> None:
    database = tmp_path / "orchestrator.db"
    database.write_text("current")
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).close()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    for bad, why in ((foreign, "schema_migrations"), (junk, "not a")):
        with pytest.raises(InvalidInputError, match=why):
            restore_backup(database, bad)
    assert database.read_text() == "current"


async def test_the_offline_restore_refuses_while_the_daemon_holds_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "orchestrator.db"
    async with open_sqlite_store(database):
        pass
    taken = await SqliteBackups(database, tmp_path / "backups").take()
    lock = DataDirLock(tmp_path)
    child = [sys.executable, "-m", "adapters.sqlite.offline", "restore-backup"]
    with lock:
        refused = await trio.run_process(
            [*child, "--data-dir", str(tmp_path), str(taken.path)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=Path(__file__).parents[2],
        )
    assert refused.returncode == 1
    assert b"already running" in refused.stderr
    assert main(["restore-backup", "--data-dir", str(tmp_path), str(taken.path)]) == 0
    out = capsys.readouterr().out
    assert "kept the previous file as" in out
    assert f"restored {taken.path}" in out
    assert main(["quick-check", "--data-dir", str(tmp_path)]) == 0


async def test_a_damaged_database_names_the_newest_good_backup(tmp_path: Path) -> None:
    database = tmp_path / "orchestrator.db"
    async with open_sqlite_store(database) as store:
        await _project(store)
        taken = await SqliteBackups(database, tmp_path / "backups").take()
    with database.open("r+b") as file:
        file.seek(0)
        file.write(b"garbage garbage!")
    os.utime(taken.path)
    with pytest.raises(DatabaseDamagedError) as caught:
        async with open_sqlite_store(database):
            pass
    message = str(caught.value)
    assert f"the newest good backup is {taken.path}" in message
    assert f"orchestrator --data-dir {tmp_path} restore-backup {taken.path}" in message
    assert newest_good_backup(tmp_path / "backups") == taken.path
