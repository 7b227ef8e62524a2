"""``orchestrator import agent-orchestrator`` through the real daemon: a legacy tmux session
on the user's default server (a test-owned ``TMUX_TMPDIR``) is adopted read-only, a gone one
becomes ``runtime_lost``, the legacy files and the user's server are left as they were, and
nobody is paged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import REPO_ROOT, daemon_env, running_daemon
from tests.e2e.test_user_tmux_untouched import UserServer, user_server
from tests.legacy_fixtures import snapshot, v2_installation
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]

__all__ = ["user_server"]  # the fixture, shared with the other user-server test


def _import(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "import", "agent-orchestrator", *args],
        cwd=REPO_ROOT,
        env=daemon_env(data),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_import_adopts_a_live_legacy_session_read_only(
    user_server: UserServer, tmp_path: Path
) -> None:
    legacy = user_server.tmux("new-session", "-d", "-s", "app-3", "sleep", "600")
    assert legacy.returncode == 0, legacy.stderr
    before = user_server.state()
    root = v2_installation(tmp_path)
    files = snapshot(root)
    data = tmp_path / "data"
    with running_daemon(data) as daemon:
        dry = _import(data, "--from", str(root), "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        assert daemon.api("GET", "/sessions").json() == []

        done = _import(data, "--from", str(root), "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["sessions"]["imported"] == 2
        assert (report["sessions"]["live"], report["sessions"]["runtimeLost"]) == (1, 1)
        assert json.loads(dry.stdout)["sessions"] == report["sessions"]
        app3 = daemon.api("GET", "/sessions/app-3").json()
        assert app3["lifecycle"]["state"] == "working"
        orchestrator = daemon.api("GET", "/sessions/app-orchestrator").json()
        assert orchestrator["lifecycle"]["terminationReason"] == "runtime_lost"
        assert (data / "imported-agent-orchestrator.yaml").is_file()

        again = _import(data, "--from", str(root))
        assert again.returncode == 0, again.stderr
        assert "imported 0 project(s), 0 session(s)" in again.stdout
        assert daemon.api("GET", "/notifications").json() == []
    assert user_server.state() == before
    assert snapshot(root) == files


def test_import_is_refused_while_agent_orchestrator_runs(tmp_path: Path) -> None:
    root = v2_installation(tmp_path)
    (root / "running.json").write_text(json.dumps({"pid": 1, "port": 3000}))
    data = tmp_path / "data"
    with running_daemon(data) as daemon:
        refused = _import(data, "--from", str(root))
        assert refused.returncode == 1
        assert "agent-orchestrator is running" in refused.stderr
        assert daemon.api("GET", "/sessions").json() == []
