"""The real daemon driven by the CLI as a user would: a project path that is no repository,
restore without a recorded conversation, ``cleanup --dry-run``, ``cleanup`` and ``rm``, with
their output and exit codes (0 done, 1 refused, 2 a usage error)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from tests.e2e.harness import REPO_ROOT, Daemon, daemon_env, git, make_repo, running_daemon
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path / "data") as running:
        yield running


def test_cleanup_and_rm_through_the_cli(daemon: Daemon, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", *args],
            cwd=REPO_ROOT,
            env={**daemon_env(daemon.data_dir), "COLUMNS": "300"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    plain = tmp_path / "plain"
    plain.mkdir()
    refused = cli("project", "add", "plain", str(plain))
    assert refused.returncode == 2
    assert f"{plain} is not a git work tree" in refused.stderr
    repo = make_repo(tmp_path / "repo")
    assert cli("project", "add", "app", str(repo)).returncode == 0

    spawned = cli("spawn", "app", "--agent", "recorder", "--json")
    assert spawned.returncode == 0, spawned.stderr
    sid = msgspec.json.decode(spawned.stdout)["id"]
    worktree = Path(
        msgspec.json.decode(cli("show", sid, "--json").stdout)["metadata"]["workspacePath"]
    )
    assert cli("kill", sid).returncode == 0  # the recorder's received.txt keeps the worktree

    restore = cli("restore", sid)
    assert restore.returncode == 1
    assert "agent recorder has no restore command configured (restoreCommand)" in restore.stderr
    assert "--fresh" in restore.stderr

    would = cli("cleanup", "--dry-run")
    assert would.returncode == 0, would.stderr
    assert f"would keep {sid}: worktree {worktree}: workspace {worktree}: it has uncommitted " \
        "changes (received.txt)" in would.stderr  # fmt: skip

    git(worktree, "add", "received.txt")
    git(worktree, "commit", "-q", "-m", "what the agent got")
    would = cli("cleanup", "--dry-run", "--session", sid)
    assert (would.returncode, would.stdout) == (0, f"would remove {sid}: worktree {worktree}\n")
    assert worktree.is_dir()
    done = cli("cleanup")
    assert (done.returncode, done.stdout) == (0, f"remove {sid}: worktree {worktree}\n")
    assert not worktree.exists()
    assert cli("cleanup").stdout == "nothing to clean up\n"

    second = msgspec.json.decode(cli("spawn", "app", "--agent", "recorder", "--json").stdout)
    live = cli("rm", second["id"])
    assert live.returncode == 1
    assert f"rm {second['id']}: the session is live" in live.stderr
    removed = cli("rm", sid)
    assert (removed.returncode, removed.stdout) == (0, f"removed {sid}\n")
    assert [s["id"] for s in msgspec.json.decode(cli("ls", "--json").stdout)] == [second["id"]]
    again = cli("rm", sid)
    assert again.returncode == 2  # an unknown session is a usage error
    assert "not found" in again.stderr
    third = msgspec.json.decode(cli("spawn", "app", "--agent", "recorder", "--json").stdout)
    assert third["id"] == "app-3"  # the removed session's number is not given out again
