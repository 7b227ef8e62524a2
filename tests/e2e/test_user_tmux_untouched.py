"""The real daemon never touches the user's own tmux server: not when it starts, spawns a
session, kills it, or stops.

The "user" server runs on the default socket of a private ``TMUX_TMPDIR`` that the daemon
inherits too, so a daemon that wrongly used the default server would hit this one (and the
test would see it), never the real user's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.daemon import tmux_socket_path
from tests.e2e.harness import kill_tmux, make_repo, start_daemon, wait_for
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]


@dataclass(frozen=True)
class UserServer:
    tmpdir: Path

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A tmux command as the user types it: no -S, no -L, the default socket."""
        return subprocess.run(
            ["tmux", *args], capture_output=True, text=True, check=False, env=dict(os.environ)
        )

    def state(self) -> tuple[str, list[str]]:
        """The server's pid and every pane as ``session pane-pid``."""
        server = self.tmux("display-message", "-p", "#{pid}")
        assert server.returncode == 0, server.stderr
        panes = self.tmux("list-panes", "-a", "-F", "#{session_name} #{pane_pid}")
        assert panes.returncode == 0, panes.stderr
        return server.stdout.strip(), panes.stdout.splitlines()

    def socket(self) -> Path:
        shown = self.tmux("display-message", "-p", "#{socket_path}")
        assert shown.returncode == 0, shown.stderr
        return Path(shown.stdout.strip()).resolve()


@pytest.fixture
def user_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[UserServer]:
    tmpdir = Path(tempfile.mkdtemp(prefix="orch-u-", dir="/tmp"))
    monkeypatch.setenv("TMUX_TMPDIR", str(tmpdir))  # for us and the daemon we start
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.delenv("TMUX_PANE", raising=False)
    server = UserServer(tmpdir)
    started = server.tmux("-f", os.devnull, "new-session", "-d", "-s", "mine", "sleep", "600")
    assert started.returncode == 0, started.stderr
    try:
        yield server
    finally:
        server.tmux("kill-server")
        shutil.rmtree(tmpdir, ignore_errors=True)


def test_start_spawn_kill_and_stop_leave_the_users_tmux_server_alone(
    user_server: UserServer, tmp_path: Path
) -> None:
    before = user_server.state()
    assert [pane.split()[0] for pane in before[1]] == ["mine"]
    user_socket = user_server.socket()
    assert user_socket.is_relative_to(user_server.tmpdir.resolve())

    data = tmp_path / "data"
    private_socket = tmux_socket_path(data)
    daemon = start_daemon(data)
    try:
        assert user_server.state() == before  # start

        repo = make_repo(tmp_path / "repo")
        response = daemon.post("/projects", {"id": "app", "path": str(repo)})
        assert response.status_code == 201, response.text
        response = daemon.post("/sessions", {"projectId": "app", "agent": "recorder"})
        assert response.status_code == 201, response.text
        sid = str(response.json()["id"])
        # The agent runs on the daemon's private socket, not on the user's server.
        assert private_socket.resolve() != user_socket
        wait_for(private_socket.exists, what="the daemon's tmux socket")
        listed = subprocess.run(
            ["tmux", "-S", str(private_socket), "list-sessions", "-F", "#{session_name}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert listed.stdout.split() == [sid], listed.stderr
        assert user_server.state() == before  # spawn

        response = daemon.post(f"/sessions/{sid}/kill", {})
        assert response.status_code == 200, response.text
        assert daemon.api("GET", f"/sessions/{sid}").json()["status"] == "killed"
        assert user_server.state() == before  # kill

        assert daemon.stop() == 0
        assert user_server.state() == before  # stop
        assert user_server.socket() == user_socket
    finally:
        if daemon.process.poll() is None:
            daemon.stop()
        kill_tmux(data)
