"""A numbered-SQL migration runner: plain SQL files, so the schema with its CHECKs, STRICT
tables and triggers is written exactly as SQLite runs it (docs/design.md, "Storage").

Migrations are the files ``NNNN_name.sql`` of the ``migrations`` package (or any directory
passed in), numbered 1, 2, 3… without gaps. Each file is applied in its own
``BEGIN IMMEDIATE`` transaction, one statement at a time (split with
``sqlite3.complete_statement``; ``executescript`` would COMMIT first and break atomicity),
and recorded in ``schema_migrations`` with the sha256 of its text in the same transaction.
So a failing migration leaves no trace, re-running is a no-op, and a database on which an
applied file was edited (or which is newer than this code) is refused with a
``MigrationError`` naming the file.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources.abc import Traversable

from sqlalchemy.engine import Connection, Engine

from adapters.sqlite.tables import encode_ts

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at TEXT NOT NULL
) STRICT
"""


class MigrationError(RuntimeError):
    """The schema cannot be brought up to date; the message names the file."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str  # the file name, e.g. "0001_init.sql"
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def default_directory() -> Traversable:
    """The ``migrations`` package shipped with the code."""
    return importlib.resources.files("migrations")


def discover(directory: Traversable | None = None) -> list[Migration]:
    """Every migration file in ``directory``, in version order. Other files are ignored;
    duplicate or missing numbers are refused."""
    root = default_directory() if directory is None else directory
    found: dict[int, Migration] = {}
    for entry in root.iterdir():
        match = _NAME.match(entry.name)
        if match is None or not entry.is_file():
            continue
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"two migrations share version {version}: {found[version].name}, {entry.name}"
            )
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    migrations = [found[v] for v in sorted(found)]
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"migration numbering has a gap: expected {expected:04d}_*.sql "
                f"before {migration.name}"
            )
    return migrations


def split_statements(sql: str) -> list[str]:
    """The statements of a migration file, each complete (trigger bodies stay whole).

    Raises ``MigrationError`` when text other than comments follows the last statement.
    """
    statements: list[str] = []
    buffer: list[str] = []
    for line in sql.splitlines(keepends=True):
        buffer.append(line)
        text = "".join(buffer)
        if sqlite3.complete_statement(text):
            statement = text.strip()
            if statement:
                statements.append(statement)
            buffer.clear()
    rest = "".join(buffer)
    if _strip_comments(rest).strip():
        raise MigrationError(f"incomplete statement at the end: {rest.strip()[:80]!r}")
    return statements


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


def migrate(
    engine: Engine,
    directory: Traversable | None = None,
    *,
    before_changes: Callable[[int, int], object] | None = None,
) -> list[int]:
    """Apply every pending migration; return the versions applied by this call.

    ``before_changes(from_version, to_version)`` is called once before the first pending
    migration of a database that already has migrations applied (one with data worth a
    snapshot), never for a fresh database or one already up to date.

    Each file runs in its own ``BEGIN IMMEDIATE`` transaction together with its
    ``schema_migrations`` row (and, on a fresh database, the creation of that table), so a
    failure rolls everything of that file back. Concurrent runners serialise on the lock
    and the loser finds the version applied.
    """
    migrations = discover(directory)
    by_version = {m.version: m for m in migrations}
    applied_now: list[int] = []
    if before_changes is not None and migrations:
        recorded = applied_versions(engine)
        if recorded and any(m.version not in recorded for m in migrations):
            before_changes(max(recorded), migrations[-1].version)
    with engine.connect() as conn:
        for migration in migrations:
            with conn.begin():  # BEGIN IMMEDIATE (the engine's begin listener)
                conn.exec_driver_sql(_CREATE_BOOKKEEPING)
                applied = _applied(conn)
                _verify(applied, by_version)
                if migration.version in applied:
                    continue
                try:
                    for statement in split_statements(migration.sql):
                        conn.exec_driver_sql(statement)
                except Exception as exc:
                    raise MigrationError(f"migration {migration.name} failed: {exc}") from exc
                conn.exec_driver_sql(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                    "VALUES (?, ?, ?, ?)",
                    (
                        migration.version,
                        migration.name,
                        migration.checksum,
                        encode_ts(datetime.now(UTC)),
                    ),
                )
            applied_now.append(migration.version)
    if not migrations:
        _verify(applied_versions(engine), by_version)
    return applied_now


def applied_versions(engine: Engine) -> dict[int, tuple[str, str]]:
    """``{version: (name, checksum)}`` as recorded in the database (empty if none)."""
    with engine.connect() as conn, conn.begin():
        exists = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).first()
        return _applied(conn) if exists else {}


def _applied(conn: Connection) -> dict[int, tuple[str, str]]:
    rows = conn.exec_driver_sql("SELECT version, name, checksum FROM schema_migrations")
    return {int(version): (str(name), str(checksum)) for version, name, checksum in rows}


def _verify(applied: dict[int, tuple[str, str]], known: dict[int, Migration]) -> None:
    for version, (name, checksum) in sorted(applied.items()):
        migration = known.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {name} applied, which this code does not have "
                "(the database is newer than the code)"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {migration.name} was edited after being applied "
                f"(recorded sha256 {checksum[:12]}…, file has {migration.checksum[:12]}…); "
                "add a new migration instead"
            )
