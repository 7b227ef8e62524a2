"""Backups through the CLI against the real daemon: ``backup`` while it runs (its path,
size and mode), ``--to`` that never overwrites, ``restore-backup`` refused while the daemon
runs, then a restore round trip with the daemon stopped."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import REPO_ROOT, daemon_env, make_repo, start_daemon
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=REPO_ROOT,
        env={**daemon_env(data_dir), "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_backup_and_restore_round_trip(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first, second = make_repo(tmp_path / "first"), make_repo(tmp_path / "second")
    daemon = start_daemon(data_dir)
    try:
        assert daemon.post("/projects", {"id": "first", "path": str(first)}).status_code == 201
        taken = _cli(data_dir, "backup")
        assert taken.returncode == 0, taken.stderr
        match = re.fullmatch(r"(\S+) \((\d+) (B|KiB|MiB), [\d.]+s\)\n", taken.stdout)
        assert match is not None, taken.stdout
        backup = Path(match.group(1))
        assert backup.parent == data_dir / "backups"
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600
        elsewhere = tmp_path / "copy.db"
        assert _cli(data_dir, "backup", "--to", str(elsewhere)).returncode == 0
        again = _cli(data_dir, "backup", "--to", str(elsewhere))
        assert again.returncode == 1
        assert "never overwrites" in again.stderr
        assert daemon.post("/projects", {"id": "second", "path": str(second)}).status_code == 201
        refused = _cli(data_dir, "restore-backup", str(backup))
        assert refused.returncode == 1
        assert "is running" in refused.stderr
    finally:
        assert daemon.stop() == 0
    restored = _cli(data_dir, "restore-backup", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert "kept the previous file as" in restored.stdout
    aside = re.search(
        r"kept the previous file as (\S+orchestrator\.db\.before-restore-\S+)", restored.stdout
    )
    assert aside is not None
    assert Path(aside.group(1)).is_file()
    daemon = start_daemon(data_dir)
    try:
        projects = {p["id"] for p in daemon.api("GET", "/projects").json()}
        assert projects == {"first"}
    finally:
        assert daemon.stop() == 0
