"""The real daemon: an agent that dies is reported once as exited (``show`` says how), a
spawn whose agent exits at once answers an error with its exit status and output, and a
merged session is cleaned up after ``cleanup.afterMerge`` (docs/behaviour.md, "Terminal
reasons")."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.daemon import tmux_socket_path
from tests.e2e.harness import (
    REPO_ROOT,
    Daemon,
    daemon_env,
    make_repo,
    running_daemon,
    wait_for,
    write_config,
)
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]

# The refusing agent pauses before it exits: tmux may drop what a process printed in the
# instant before it exited (docs/behaviour.md, "Probes and the detecting quarantine").
AGENTS = """
  quiet:
    command: [sh, -c, "echo ready; exec cat"]
  refusing:
    command: [sh, -c, "echo 'error: unknown option --yolo' >&2; sleep 0.2; exit 2"]
"""


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    data_dir = tmp_path / "data"
    config = write_config(data_dir, extra="cleanup:\n  afterMerge: 1s\n")
    # write_config's agents section ends the file's agents list: add ours under it.
    text = config.read_text().replace("agents:\n", "agents:" + AGENTS, 1)
    config.write_text(text)
    with running_daemon(data_dir, config=config) as running:
        response = running.post("/projects", {"id": "app", "path": str(make_repo(tmp_path / "r"))})
        assert response.status_code == 201, response.text
        yield running


def spawn(daemon: Daemon, agent: str = "quiet") -> str:
    response = daemon.post("/sessions", {"projectId": "app", "agent": agent})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def tmux(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    socket = tmux_socket_path(daemon.data_dir)
    return subprocess.run(
        ["tmux", "-S", str(socket), *args], capture_output=True, text=True, check=False
    )


def status(daemon: Daemon, sid: str) -> str:
    return str(daemon.api("GET", f"/sessions/{sid}").json()["status"])


def notification_types(daemon: Daemon) -> list[str]:
    body = daemon.api("GET", "/notifications").json()
    return sorted(item["type"] for item in body)


def test_a_killed_pane_is_one_exited_page_and_show_says_so(daemon: Daemon) -> None:
    sid = spawn(daemon)
    keep = spawn(daemon)  # the tmux server outlives the pane
    hook = {"Authorization": f"Bearer {daemon.session_token(sid)}"}
    response = daemon.post(f"/sessions/{sid}/activity", {"state": "active"}, headers=hook)
    assert response.status_code == 204, response.text
    assert tmux(daemon, "kill-pane", "-t", f"={sid}:").returncode == 0

    wait_for(lambda: status(daemon, sid) == "exited", what="the reaper's verdict")
    wait_for(lambda: notification_types(daemon) == ["reaction.agent-exited"], what="the page")
    shown = subprocess.run(
        [sys.executable, "-m", "orchestrator", "show", sid],
        cwd=REPO_ROOT,
        env=daemon_env(daemon.data_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "runtime_lost" in shown.stdout
    assert "exit status" in shown.stdout
    assert status(daemon, keep) == "spawning"


def test_a_spawn_whose_agent_exits_at_once_is_an_error_with_its_status_and_output(
    daemon: Daemon,
) -> None:
    response = daemon.post("/sessions", {"projectId": "app", "agent": "refusing"})
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert "exit status 2" in message
    assert "error: unknown option --yolo" in message
    errored = daemon.api("GET", "/sessions/app-1").json()
    assert errored["status"] == "errored"
    assert errored["ended"]["exitStatus"] == 2
    assert notification_types(daemon) == []


def test_a_merged_session_is_cleaned_up_after_the_grace_period(daemon: Daemon) -> None:
    sid = spawn(daemon)
    workspace = Path(daemon.api("GET", f"/sessions/{sid}").json()["metadata"]["workspacePath"])
    pr = {"url": "https://github.com/acme/app/pull/9", "number": 9, "merged": True}
    response = daemon.post(f"/sessions/{sid}/pr", pr)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "merged"

    wait_for(lambda: status(daemon, sid) == "done", what="the cleanup after the merge")
    assert not workspace.exists()
    assert tmux(daemon, "has-session", "-t", f"={sid}").returncode != 0
    assert notification_types(daemon) == ["reaction.pr-merged"]
