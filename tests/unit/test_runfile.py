"""The data-dir lock and the run-file: one daemon per data dir, token readable by owner only."""

from __future__ import annotations

import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.api import RunFile
from orchestrator.runfile import (
    AlreadyRunningError,
    DataDirLock,
    read_run_file,
    remove_run_file,
    write_run_file,
)

RUN = RunFile(
    pid=4242, address="127.0.0.1:8731", token="s3cret", started_at=datetime(2026, 1, 1, tzinfo=UTC)
)


def test_run_file_round_trips_with_owner_only_mode(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "daemon.json"
    write_run_file(path, RUN)
    assert read_run_file(path) == RUN
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["daemon.json"]  # no temp file left


def test_run_file_overwrite_and_idempotent_remove(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    write_run_file(path, RUN)
    write_run_file(
        path, RunFile(pid=1, address="127.0.0.1:1", token="t", started_at=RUN.started_at)
    )
    assert read_run_file(path) is not None
    assert read_run_file(path).pid == 1  # type: ignore[union-attr]
    remove_run_file(path)
    remove_run_file(path)
    assert read_run_file(path) is None


def test_a_corrupt_run_file_reads_as_absent(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text("{not json")
    assert read_run_file(path) is None


def test_second_lock_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    write_run_file(tmp_path / "daemon.json", RUN)
    with (
        DataDirLock(tmp_path),
        pytest.raises(AlreadyRunningError, match=r"pid 4242, 127\.0\.0\.1:8731"),
    ):
        DataDirLock(tmp_path).acquire()
    with DataDirLock(tmp_path):  # released on exit
        pass


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    """kill -9 of a daemon never leaves the data dir locked."""
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from orchestrator.runfile import DataDirLock\n"
        "DataDirLock(Path(sys.argv[1])).acquire()\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(AlreadyRunningError):
            DataDirLock(tmp_path).acquire()
    finally:
        child.kill()
        child.communicate()
    lock = DataDirLock(tmp_path)
    lock.acquire()
    lock.release()
    assert (tmp_path / "daemon.lock").exists()
