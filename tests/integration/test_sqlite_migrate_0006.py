"""Migration 0006 (outbox_delivered_event) on a database with history: the rebuilt change log keeps every
row and its seq counter (a trimmed seq is never reused), the CDC triggers still write it,
and each PR's changed_at starts at its updated_at."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection, Engine

from adapters.sqlite.migrate import default_directory, discover, migrate
from adapters.sqlite.writer import make_engine

STAMP = "2026-01-01 00:00:00.000000+00:00"
LATER = "2026-01-02 00:00:00.000000+00:00"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(tmp_path / "db.sqlite")
    yield engine
    engine.dispose()


OURS = next(m for m in discover() if m.name.endswith("_outbox_delivered_event.sql"))
BEFORE = [m.version for m in discover() if m.version < OURS.version]
FROM_OURS = [m.version for m in discover() if m.version >= OURS.version]


@pytest.fixture
def before_ours(tmp_path: Path) -> Path:
    """The shipped migrations before this one (found by name: numbers move in merges)."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    for migration in discover():
        if migration.version < OURS.version:
            shutil.copy(Path(str(default_directory() / migration.name)), directory)
    return directory


def sessions(conn: Connection, *nums: int) -> None:
    for num in nums:
        conn.exec_driver_sql(
            "INSERT INTO sessions (id, project_id, num, session_state, created_at, updated_at)"
            " VALUES (?, 'mer', ?, 'working', ?, ?)",
            (f"mer-{num}", num, STAMP, STAMP),
        )


def log(conn: Connection) -> list[tuple[object, ...]]:
    return [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM change_log ORDER BY seq")]


def counter(conn: Connection) -> int:
    (seq,) = conn.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = 'change_log'").one()
    return int(seq)


@pytest.mark.parametrize("trimmed", [2, 5], ids=["some-trimmed", "all-trimmed"])
def test_the_rebuilt_change_log_keeps_its_rows_and_never_reuses_a_seq(
    engine: Engine, before_ours: Path, trimmed: int
) -> None:
    assert migrate(engine, before_ours) == BEFORE
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO projects (id, path, registered_at) VALUES ('mer', '/r', ?)", (STAMP,)
        )
        sessions(conn, 1, 2, 3, 4, 5)
        conn.exec_driver_sql("DELETE FROM change_log WHERE seq <= ?", (trimmed,))
        before = log(conn)
    assert migrate(engine) == FROM_OURS
    with engine.begin() as conn:
        assert log(conn) == before
        assert counter(conn) == 5
        sessions(conn, 6)  # the trigger writes the rebuilt table, after seq 5
        (newest,) = log(conn)[-1:]
        assert newest[:4] == (6, "mer", "mer-6", "session_created")
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        indexes = conn.exec_driver_sql("PRAGMA index_list(change_log)").all()
        assert "idx_change_log_project" in {row[1] for row in indexes}


def test_existing_prs_take_their_updated_at_as_changed_at(
    engine: Engine, before_ours: Path
) -> None:
    migrate(engine, before_ours)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO projects (id, path, registered_at) VALUES ('mer', '/r', ?)", (STAMP,)
        )
        sessions(conn, 1)
        conn.exec_driver_sql(
            "INSERT INTO pr (url, session_id, updated_at) VALUES ('https://x/pull/1', 'mer-1', ?)",
            (LATER,),
        )
    migrate(engine)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT url, updated_at, changed_at FROM pr").all()
    assert [tuple(r) for r in rows] == [("https://x/pull/1", LATER, LATER)]
