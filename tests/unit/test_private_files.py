"""The data dir is 0700 and what the daemon keeps there is owner-only whatever the umask,
including files an older version left readable and SQLite's -wal and -shm files."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.daemon import WORKTREES_DIR_NAME, keep_data_dir_private
from orchestrator.runfile import create_private_file, private_dir, restrict_modes


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_private_dir_makes_and_narrows(tmp_path: Path) -> None:
    fresh = tmp_path / "a" / "data"
    private_dir(fresh)
    assert mode(fresh) == 0o700
    wide = tmp_path / "wide"
    wide.mkdir(mode=0o755)
    private_dir(wide)
    assert mode(wide) == 0o700


def test_restrict_modes_only_narrows_and_leaves_links_alone(tmp_path: Path) -> None:
    wide, narrow, folder = tmp_path / "wide", tmp_path / "narrow", tmp_path / "folder"
    wide.write_text("x")
    wide.chmod(0o666)
    narrow.write_text("x")
    narrow.chmod(0o400)
    folder.mkdir(mode=0o775)
    target = tmp_path / "target"
    target.write_text("x")
    target.chmod(0o644)
    link = tmp_path / "link"
    link.symlink_to(target)
    restrict_modes([wide, narrow, folder, link, tmp_path / "missing"])
    assert (mode(wide), mode(narrow), mode(folder)) == (0o600, 0o400, 0o700)
    assert mode(target) == 0o644


def test_sqlite_files_take_the_mode_of_a_database_file_made_first(tmp_path: Path) -> None:
    database = tmp_path / "orchestrator.db"
    create_private_file(database)
    connection = sqlite3.connect(database)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (x)")
        connection.execute("INSERT INTO t VALUES (1)")
        connection.commit()
        sidecars = [Path(f"{database}-wal"), Path(f"{database}-shm")]
        assert all(p.exists() for p in sidecars)
        assert [mode(p) for p in [database, *sidecars]] == [0o600, 0o600, 0o600]
    finally:
        connection.close()


def test_the_data_dir_is_made_private_including_what_was_left_readable(tmp_path: Path) -> None:
    file = tmp_path / "orchestrator.yaml"
    file.write_text("{}\n")
    config = load_config(file, env={"ORCHESTRATOR_DATA_DIR": str(tmp_path / "data")})
    data = config.data_dir
    data.mkdir(mode=0o755)
    left = [
        config.log_file,
        config.run_file,
        data / "hook.key",
        Path(f"{config.database_path}-wal"),
        Path(f"{config.database_path}-shm"),
    ]
    for path in left:
        path.write_text("")
        path.chmod(0o644)
    (data / WORKTREES_DIR_NAME).mkdir(mode=0o755)
    keep_data_dir_private(config)
    assert mode(data) == 0o700
    assert mode(data / WORKTREES_DIR_NAME) == 0o700
    assert mode(config.database_path) == 0o600
    assert {p.name: mode(p) for p in left} == {p.name: 0o600 for p in left}
