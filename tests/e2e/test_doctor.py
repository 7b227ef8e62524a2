"""``orchestrator doctor`` as a user runs it: a healthy setup passes every check (exit 0);
each failure it reports is one FAIL line with a fix, and exit 1; ``--json`` lists them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from orchestrator.api import Health
from orchestrator.cli.client import Presence
from orchestrator.cli.doctor import daemon_check
from orchestrator.doctor import Check, disk_check, tool_check
from tests.e2e.harness import REPO_ROOT, daemon_env, git, make_repo, running_daemon, write_config
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]


def doctor(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {**daemon_env(data_dir), "GITHUB_TOKEN": "ghp_test", "COLUMNS": "300"}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "doctor", *args],
        cwd=REPO_ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def lines(out: str) -> dict[str, str]:
    return {line.split(":", 1)[0][5:]: line for line in out.splitlines()}


def test_a_healthy_setup_passes_every_check(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = write_config(data_dir, extra="defaultAgent: recorder\n")
    with running_daemon(data_dir, config=config) as daemon:
        tokens = {"app-1": daemon.session_token("app-1"), "app-2": daemon.session_token("app-1")}
        checked = daemon.post("/tokens/check", {"tokens": tokens})
        assert checked.json() == [
            {"sessionId": "app-1", "valid": True},
            {"sessionId": "app-2", "valid": False},
        ]
        done = doctor(data_dir)
        assert done.returncode == 0, done.stdout + done.stderr
        found = lines(done.stdout)
        for name in ("config", "tmux", "git", "agent recorder", "free disk", "github token",
                     "daemon", "database"):  # fmt: skip
            assert found[name].startswith("ok   "), found
        assert "by the daemon" in found["database"]
        as_json = doctor(data_dir, "--json")
        assert as_json.returncode == 0
        assert all(check["ok"] for check in json.loads(as_json.stdout))


def test_each_failure_is_reported_with_a_fix(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    repo = make_repo(tmp_path / "repo")
    gone = tmp_path / "gone"
    git(repo, "worktree", "add", "-q", str(gone), "-b", "gone")
    shutil.rmtree(gone)
    write_config(
        data_dir,
        agents={"missing": ["no-such-agent-binary"]},
        extra=f"projects:\n  app:\n    path: {repo}\n",
    )
    done = doctor(data_dir, env={"GITHUB_TOKEN": "", "GH_TOKEN": ""})
    assert done.returncode == 1
    found = lines(done.stdout)
    assert found["agent missing"].startswith("FAIL ")
    assert "no-such-agent-binary is not on PATH (fix: install" in found["agent missing"]
    assert found["github token"].startswith("FAIL ")
    assert "fix: export GITHUB_TOKEN" in found["github token"]
    assert found["daemon"].startswith("FAIL ")
    assert "(fix: orchestrator start)" in found["daemon"]
    assert found["worktrees of app"].startswith("FAIL ")
    assert str(gone) in found["worktrees of app"]
    assert found["database"].startswith("ok   ")  # checked offline: absent is fine


def test_a_damaged_database_and_a_bad_config_fail(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "orchestrator.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 4000)
    (data_dir / "orchestrator.yaml").write_text("reaper: {tick: soon}\n")
    done = doctor(data_dir)
    assert done.returncode == 1
    found = lines(done.stdout)
    assert found["config"].startswith("FAIL ")
    assert "fix: orchestrator config check" in found["config"]
    assert found["database"].startswith("FAIL ")
    assert "restore-backup" in found["database"]


def test_a_missing_tool_and_a_full_disk(tmp_path: Path) -> None:
    def missing(argv: object) -> tuple[int, str]:
        return 127, ""

    tmux = tool_check("tmux", ["tmux", "-V"], "install tmux", run=missing)
    assert tmux == Check(name="tmux", ok=False, detail="tmux is not on PATH", fix="install tmux")
    full = disk_check(tmp_path, minimum=2**62)
    assert not full.ok
    assert "free" in full.detail
    assert full.fix
    assert disk_check(tmp_path / "not" / "yet", minimum=0).ok


def test_a_draining_or_degraded_daemon_fails(tmp_path: Path) -> None:
    sick = Presence(tmp_path, None, alive=True, health=Health(status="degraded"))
    check = daemon_check(sick)
    assert not check.ok
    assert "degraded" in check.detail
