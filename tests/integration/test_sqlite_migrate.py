"""The numbered-SQL migration runner: from empty, idempotent, tamper-evident, atomic."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from adapters.sqlite import tables
from adapters.sqlite.migrate import (
    MigrationError,
    applied_versions,
    default_directory,
    discover,
    migrate,
    split_statements,
)
from adapters.sqlite.store import open_sqlite_store
from adapters.sqlite.writer import make_engine
from orchestrator.domain.model import (
    ActivitySource,
    ActivityState,
    AgentHarness,
    CheckStatus,
    CIState,
    Mergeability,
    Priority,
    PRState,
    ReactionAction,
    ReactionKey,
    ReviewDecision,
    SessionKind,
    SessionState,
    TerminationReason,
)
from orchestrator.domain.records import ChangeType

TABLES = {
    "projects",
    "sessions",
    "pr",
    "pr_checks",
    "pr_comment",
    "reaction_trackers",
    "outbox",
    "notifications",
    "change_log",
    "session_numbers",
    "webhook_deliveries",
    "schema_migrations",
}
TRIGGERS = {
    "sessions_cdc_insert",
    "sessions_cdc_update",
    "sessions_cdc_agent_session",
    "sessions_cdc_delete",
    "pr_cdc_insert",
    "pr_cdc_update",
    "pr_cdc_claim",
    "pr_checks_cdc_insert",
    "pr_checks_cdc_update",
    "notifications_cdc_insert",
}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(tmp_path / "db.sqlite")
    yield engine
    engine.dispose()


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """A private copy of the shipped migrations, free to edit."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    shutil.copy(Path(str(default_directory() / "0001_init.sql")), directory)
    return directory


def schema(engine: Engine) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
        ).all()
    return [(str(kind), str(name), None if sql is None else str(sql)) for kind, name, sql in rows]


def names(engine: Engine, kind: str) -> set[str]:
    return {name for k, name, _ in schema(engine) if k == kind and not name.startswith("sqlite_")}


def test_from_empty_applies_every_migration(engine: Engine) -> None:
    shipped = discover()
    assert migrate(engine) == [m.version for m in shipped]
    assert names(engine, "table") == TABLES
    assert names(engine, "trigger") == TRIGGERS
    assert applied_versions(engine) == {m.version: (m.name, m.checksum) for m in shipped}
    assert (shipped[0].name, shipped[1].name) == ("0001_init.sql", "0002_session_agent.sql")


async def test_a_version_1_database_upgrades_keeping_its_sessions(
    engine: Engine, migrations: Path, tmp_path: Path
) -> None:
    assert migrate(engine, migrations) == [1]  # the shipped 0001 alone: a version 1 database
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO projects (id, path, repo_origin_url, display_name, registered_at)"
            " VALUES ('mer', '/repos/mer', '', '', '2026-01-01 00:00:00.000000+00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO sessions (id, project_id, num, session_state, prompt, created_at,"
            " updated_at) VALUES ('mer-1', 'mer', 1, 'working', 'Fix it',"
            " '2026-01-01 00:00:00.000000+00:00', '2026-01-01 00:00:00.000000+00:00')"
        )
    engine.dispose()
    async with open_sqlite_store(tmp_path / "db.sqlite") as store:  # migrates to the latest
        record = await store.get_session("mer-1")
    assert record is not None
    assert (record.metadata.prompt, record.metadata.agent) == ("Fix it", "")
    assert record.lifecycle.state is SessionState.WORKING


def test_a_version_2_database_upgrades_its_read_and_resolved_notifications(
    engine: Engine, migrations: Path
) -> None:
    shutil.copy(Path(str(default_directory() / "0002_session_agent.sql")), migrations)
    assert migrate(engine, migrations) == [1, 2]
    stamp = "2026-01-01 00:00:00.000000+00:00"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO projects (id, path, registered_at) VALUES ('mer', '/repos/mer', ?)",
            (stamp,),
        )
        conn.exec_driver_sql(
            "INSERT INTO sessions (id, project_id, num, session_state, created_at, updated_at)"
            " VALUES ('mer-1', 'mer', 1, 'working', ?, ?)",
            (stamp, stamp),
        )
        for read, resolved in ((0, 0), (1, 0), (0, 1)):
            conn.exec_driver_sql(
                "INSERT INTO notifications (session_id, project_id, type, priority, message,"
                " created_at, read, resolved) VALUES ('mer-1', 'mer', 't', 'info', 'm', ?, ?, ?)",
                (stamp, read, resolved),
            )
    assert migrate(engine) == [m.version for m in discover()][2:]
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT read, resolved, read_at, resolved_at FROM notifications ORDER BY id"
        ).all()
    # Already read or resolved: counted from their creation, so they can age out.
    assert [tuple(row) for row in rows] == [
        (0, 0, None, None),
        (1, 0, stamp, None),
        (0, 1, None, stamp),
    ]


def test_a_second_run_is_a_no_op(engine: Engine) -> None:
    migrate(engine)
    before = schema(engine)
    assert migrate(engine) == []
    assert schema(engine) == before


def test_an_edited_applied_migration_is_refused(engine: Engine, migrations: Path) -> None:
    migrate(engine, migrations)
    path = migrations / "0001_init.sql"
    path.write_text(path.read_text() + "\n-- a harmless-looking edit\n")
    with pytest.raises(MigrationError, match=r"0001_init\.sql was edited"):
        migrate(engine, migrations)


async def test_the_store_refuses_to_open_on_an_edited_migration(
    tmp_path: Path, migrations: Path
) -> None:
    db = tmp_path / "store.db"
    async with open_sqlite_store(db, migrations=migrations):
        pass
    path = migrations / "0001_init.sql"
    path.write_text(path.read_text().replace("CREATE TABLE projects", "CREATE TABLE  projects"))
    with pytest.raises(MigrationError, match=r"0001_init\.sql"):
        async with open_sqlite_store(db, migrations=migrations):
            pass


def test_a_failed_migration_leaves_no_trace(engine: Engine, migrations: Path) -> None:
    migrate(engine, migrations)
    before = schema(engine)
    (migrations / "0002_half.sql").write_text(
        "CREATE TABLE half (id INTEGER PRIMARY KEY);\n"
        "CREATE TRIGGER half_t AFTER INSERT ON half BEGIN SELECT 1; END;\n"
        "INSERT INTO half VALUES (1);\n"
        "THIS IS NOT SQL;\n"
    )
    with pytest.raises(MigrationError, match=r"0002_half\.sql failed"):
        migrate(engine, migrations)
    assert schema(engine) == before
    assert set(applied_versions(engine)) == {1}


def test_a_failed_first_migration_leaves_an_empty_database(engine: Engine, tmp_path: Path) -> None:
    directory = tmp_path / "bad"
    directory.mkdir()
    (directory / "0001_bad.sql").write_text("CREATE TABLE t (a);\nNOT SQL;\n")
    with pytest.raises(MigrationError, match=r"0001_bad\.sql"):
        migrate(engine, directory)
    assert schema(engine) == []


def test_numbering_gaps_and_a_newer_database_are_refused(
    engine: Engine, migrations: Path, tmp_path: Path
) -> None:
    (migrations / "0003_later.sql").write_text("CREATE TABLE later (a);\n")
    with pytest.raises(MigrationError, match="gap"):
        migrate(engine, migrations)
    (migrations / "0003_later.sql").rename(migrations / "0002_later.sql")
    assert migrate(engine, migrations) == [1, 2]
    older = tmp_path / "older"
    older.mkdir()
    shutil.copy(migrations / "0001_init.sql", older)
    with pytest.raises(MigrationError, match=r"0002_later\.sql .*newer than the code"):
        migrate(engine, older)


def test_split_statements_keeps_trigger_bodies_whole() -> None:
    sql = (
        "-- leading comment; with a semicolon\n"
        "CREATE TABLE a (x);\n"
        "CREATE TRIGGER t AFTER INSERT ON a\nBEGIN\n  INSERT INTO a VALUES (1);\n"
        "  INSERT INTO a VALUES (2);\nEND;\n"
        "/* trailing\n comment */\n-- done\n"
    )
    statements = split_statements(sql)
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER t")
    assert statements[1].endswith("END;")
    with pytest.raises(MigrationError, match="incomplete"):
        split_statements("CREATE TABLE a (x);\nCREATE TABLE b (y)\n")


def test_the_core_tables_mirror_the_migrated_schema(engine: Engine) -> None:
    migrate(engine)
    with engine.connect() as conn:
        for table in tables.metadata.sorted_tables:
            info = conn.exec_driver_sql(f"PRAGMA table_info({table.name})").all()
            assert [row[1] for row in info] == [c.name for c in table.columns], table.name


def test_text_keys_refuse_null_and_strict_tables_refuse_wrong_types(engine: Engine) -> None:
    migrate(engine)
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
            raw.execute("INSERT INTO projects (id, path, registered_at) VALUES (NULL, '/', '')")
        with pytest.raises(sqlite3.IntegrityError):
            raw.execute("INSERT INTO projects (id, path, registered_at) VALUES ('p', 1, X'00')")


ENUM_COLUMNS: list[tuple[str, type[StrEnum], set[str]]] = [
    ("kind", SessionKind, set()),
    ("harness", AgentHarness, set()),
    ("session_state", SessionState, set()),
    ("termination_reason", TerminationReason, set()),
    ("activity_state", ActivityState, {""}),
    ("activity_source", ActivitySource, {""}),
    ("pr_state", PRState, set()),
    ("review_decision", ReviewDecision, set()),
    ("ci_state", CIState, set()),
    ("mergeability", Mergeability, set()),
    ("status", CheckStatus, set()),
    ("reaction", ReactionKey, set()),
    ("action", ReactionAction, set()),
    ("priority", Priority, set()),
    ("event_type", ChangeType, set()),
]


@pytest.mark.parametrize(("column", "enum", "extra"), ENUM_COLUMNS)
def test_enum_checks_allow_exactly_the_domain_values(
    engine: Engine, column: str, enum: type[StrEnum], extra: set[str]
) -> None:
    migrate(engine)  # the CHECKs in force: later migrations rebuild some tables
    sql = "\n".join(sql or "" for kind, _, sql in schema(engine) if kind == "table")
    allowed = set(re.findall(rf"\b{column} = '([^']*)'", sql))
    assert allowed == {member.value for member in enum} | extra
