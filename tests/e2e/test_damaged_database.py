"""A damaged database file at start-up, with the real daemon: one line naming the file and
what to do, exit 1, no traceback, no run-file, and the file left as it was (the user may
still want to recover it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import REPO_ROOT, daemon_env, kill_tmux, write_config

ADVICE = (
    "restore it from a backup, or move it and its -wal and -shm files aside to start with an "
    "empty database"
)
NOT_A_DATABASE = b"these bytes were never a database " * 256
TRUNCATED = b"SQLite format 3\x00" + bytes(5000)


def start(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = write_config(data)
    try:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", "start", *args, "--config", str(config)],
            cwd=REPO_ROOT,
            env=daemon_env(data),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        kill_tmux(data)


@pytest.mark.parametrize(
    ("content", "why"),
    [(NOT_A_DATABASE, "is not a SQLite database"), (TRUNCATED, "is truncated")],
    ids=["not-a-database", "truncated"],
)
@pytest.mark.parametrize("mode", ["foreground", "background"])
def test_a_damaged_database_is_one_line_and_exit_1(
    tmp_path: Path, content: bytes, why: str, mode: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    database = data / "orchestrator.db"
    database.write_bytes(content)
    result = start(data, *(["--foreground"] if mode == "foreground" else []))
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    lines = result.stderr.splitlines()
    expected_start = f"error: the database {database} {why}"
    if mode == "background":
        assert result.stdout == ""
        assert len(lines) == 1, lines
    else:  # the log lines before it say what the daemon was doing; one says what failed
        failures = [line for line in lines if line.startswith("error:") or " ERROR " in line]
        assert failures == lines[-1:], lines
    assert lines[-1].startswith(expected_start), lines[-1]
    assert lines[-1].endswith(ADVICE), lines[-1]
    assert not (data / "daemon.json").exists()
    assert database.read_bytes() == content
    if mode == "background":  # nor in the log the background daemon wrote
        assert "Traceback" not in (data / "daemon.log").read_text()
