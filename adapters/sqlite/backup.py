"""Backups of the SQLite database: online copies, their check, rotation, the snapshot before
a migration, and the offline restore.

An online copy is ``VACUUM INTO`` on a read connection of its own, in a worker thread: in
WAL mode a reader never blocks the writer, so the daemon keeps committing while the copy is
made, and the copy is one consistent snapshot (everything committed before it started).
The sqlite3 backup API would restart its page copy each time another connection writes,
so under steady writes it may never finish.

Every copy is checked (``PRAGMA integrity_check``) before it gets its final name, and is
owner-only (0600) like the database itself.

``adapters.sqlite.offline`` runs the offline side (restore, check) for the CLI.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import trio

from orchestrator.backups import BackupTaken
from orchestrator.config.schema import BACKUPS_DIR_NAME
from orchestrator.domain.errors import ConflictError, InvalidInputError, OrchestratorError
from orchestrator.runfile import PRIVATE_FILE_MODE, private_dir

SCHEDULED_PREFIX: Final = "orchestrator-"
PRE_MIGRATION_PREFIX: Final = "pre-migration-"
_SIDECARS: Final = ("-wal", "-shm", "-journal")


def default_backups_dir(database: Path) -> Path:
    return database.parent / BACKUPS_DIR_NAME


def stamp(now: datetime | None = None) -> str:
    """A UTC time stamp that sorts as it reads (microseconds keep two copies apart)."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")


def copy_database(database: Path, destination: Path) -> BackupTaken:
    """Copy ``database`` to ``destination`` (which must not exist) with ``VACUUM INTO`` on a
    read-only connection, check the copy, make it 0600. Blocking: run it in a thread."""
    if destination.exists():
        raise ConflictError(f"{destination} exists: a backup never overwrites a file")
    started = time.perf_counter()
    if not destination.parent.is_dir():
        raise InvalidInputError(f"{destination.parent} is not a directory")
    partial = destination.with_name(f".{destination.name}.partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, isolation_level=None)
    try:
        source.execute("VACUUM INTO ?", (str(partial),))
    finally:
        source.close()
    try:
        partial.chmod(PRIVATE_FILE_MODE)
        problem = backup_problem(partial)
        if problem is not None:
            raise OrchestratorError(f"the backup of {database} failed its check: {problem}")
        partial.rename(destination)
    finally:
        partial.unlink(missing_ok=True)
    return BackupTaken(
        path=destination,
        size_bytes=destination.stat().st_size,
        seconds=time.perf_counter() - started,
    )


def backup_problem(path: Path, *, quick: bool = False) -> str | None:
    """What is wrong with the backup at ``path`` (None: it is a whole database of ours)."""
    if not path.is_file():
        return f"{path} is not a file"
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        return f"cannot open it ({exc})"
    try:
        check = "quick_check" if quick else "integrity_check"
        rows = connection.execute(f"PRAGMA {check}").fetchall()
        if rows != [("ok",)]:
            return f"it fails its integrity check ({rows[0][0]})"
        found = connection.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if not found or not found[0]:
            return "it is not an orchestrator database (no schema_migrations table)"
    except sqlite3.Error as exc:
        return f"it is not a readable SQLite database ({exc})"
    finally:
        connection.close()
    return None


def scheduled_backups(directory: Path) -> list[Path]:
    """The rotated backups in ``directory``, oldest first (names sort by time)."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"{SCHEDULED_PREFIX}*.db"))


def rotate(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` rotated backups; return what went."""
    found = scheduled_backups(directory)
    doomed = found[: max(len(found) - keep, 0)]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def newest_good_backup(directory: Path) -> Path | None:
    """The newest backup in ``directory`` (rotated or pre-migration) that passes
    ``quick_check``, or None."""
    if not directory.is_dir():
        return None
    candidates = sorted(directory.glob("*.db"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        if backup_problem(path, quick=True) is None:
            return path
    return None


def snapshot_before_migration(
    database: Path, directory: Path, from_version: int, to_version: int
) -> Path:
    """``<directory>/pre-migration-<from>-to-<to>-<stamp>.db``, taken before a migration
    touches a database that holds data (the daemon is not running yet: nothing writes)."""
    private_dir(directory)
    name = f"{PRE_MIGRATION_PREFIX}{from_version}-to-{to_version}-{stamp()}.db"
    return copy_database(database, directory / name).path


@dataclass(frozen=True, slots=True)
class SqliteBackups:
    """Online backups of the daemon's database (``orchestrator.backups.Backups``)."""

    database: Path
    directory: Path

    async def take(self, to: Path | None = None) -> BackupTaken:
        if to is not None and not to.is_absolute():
            raise InvalidInputError(f"the backup path must be absolute: {to}")
        if to is None:
            private_dir(self.directory)
        destination = to or self.directory / f"{SCHEDULED_PREFIX}{stamp()}.db"
        return await trio.to_thread.run_sync(copy_database, self.database, destination)

    async def rotate(self, keep: int) -> list[Path]:
        return await trio.to_thread.run_sync(rotate, self.directory, keep)

    async def quick_check(self) -> str | None:
        return await trio.to_thread.run_sync(quick_check, self.database)


@dataclass(frozen=True, slots=True)
class Restored:
    database: Path
    moved_aside: list[Path]


def restore_backup(database: Path, backup: Path) -> Restored:
    """Put ``backup`` in place of ``database``: check it, move the current database and its
    sidecar files aside (``<name>.before-restore-<stamp>``), copy the backup in as 0600.
    The caller holds the data-dir lock (the daemon is stopped)."""
    problem = backup_problem(backup)
    if problem is not None:
        raise InvalidInputError(f"{backup} cannot be restored: {problem}")
    suffix = f".before-restore-{stamp()}"
    moved: list[Path] = []
    for current in (database, *(database.with_name(database.name + s) for s in _SIDECARS)):
        if current.exists():
            aside = current.with_name(current.name + suffix)
            current.rename(aside)
            moved.append(aside)
    partial = database.with_name(f".{database.name}.restoring")
    shutil.copyfile(backup, partial)
    partial.chmod(PRIVATE_FILE_MODE)
    partial.rename(database)
    return Restored(database, moved)


def quick_check(database: Path) -> str | None:
    """``PRAGMA quick_check`` of the database file: None when it passes."""
    if not database.exists():
        return None
    return backup_problem(database, quick=True)


__all__ = [
    "BACKUPS_DIR_NAME",
    "Restored",
    "SqliteBackups",
    "backup_problem",
    "copy_database",
    "default_backups_dir",
    "newest_good_backup",
    "quick_check",
    "restore_backup",
    "rotate",
    "snapshot_before_migration",
]
