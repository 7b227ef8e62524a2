"""The real daemon, driven only through HTTP and the CLI: a session's whole round trip, the
change stream, auth, bad input, single instance."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from orchestrator.api import API_PREFIX
from tests.e2e.harness import (
    REPO_ROOT,
    Daemon,
    daemon_env,
    kill_tmux,
    make_repo,
    running_daemon,
    sse_events,
    start_daemon,
    wait_for,
    write_config,
)
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]

PR = "https://github.com/acme/app/pull/7"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path / "data") as running:
        yield running


def register(daemon: Daemon, repo: Path, project_id: str = "app") -> None:
    response = daemon.post("/projects", {"id": project_id, "path": str(repo)})
    assert response.status_code == 201, response.text


def spawn(daemon: Daemon, project_id: str = "app") -> dict[str, object]:
    response = daemon.post("/sessions", {"projectId": project_id, "agent": "recorder"})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_session_round_trip_over_http(daemon: Daemon, tmp_path: Path) -> None:
    register(daemon, make_repo(tmp_path / "repo"))
    session = spawn(daemon)
    sid = str(session["id"])
    assert session["status"] == "spawning"
    workspace = Path(str(session["metadata"]["workspacePath"]))  # type: ignore[index]
    assert workspace.is_dir()

    # The agent's hook reports activity with its own session token.
    hook = {"Authorization": f"Bearer {daemon.session_token(sid)}"}
    response = daemon.post(f"/sessions/{sid}/activity", {"state": "active"}, headers=hook)
    assert response.status_code == 204, response.text
    assert daemon.api("GET", f"/sessions/{sid}").json()["status"] == "working"

    # A failing check: the agent receives the CI output in its pane.
    observation = {
        "url": PR,
        "number": 7,
        "ci": "failing",
        "checks": [
            {"name": "test", "commit": "c1", "status": "failed", "logTail": "E assert 1 == 2"}
        ],
    }
    response = daemon.post(f"/sessions/{sid}/pr", observation)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ci_failed"
    received = workspace / "received.txt"
    wait_for(
        lambda: received.exists() and "E assert 1 == 2" in received.read_text(),
        what="the CI message in the agent's input",
    )
    assert "CI is failing on your PR." in received.read_text()

    # The change stream carries the session and PR events, in order.
    events = sse_events(daemon, params={"since": "0"}, count=5)
    kinds = [kind for _, kind, _ in events]
    assert kinds[:5] == [
        "session_created",
        "session_updated",  # spawn completed: alive
        "session_updated",  # active
        "pr_created",
        "pr_check_recorded",
    ]
    seqs = [seq for seq, _, _ in events]
    assert seqs == sorted(seqs)
    assert events[3][2]["payload"] == {
        "url": PR,
        "session": sid,
        "state": "open",
        "ci": "failing",
        "review": "none",
        "mergeability": "unknown",
    }
    # Reconnecting with Last-Event-ID replays exactly what came after it.
    resumed = sse_events(daemon, headers={"Last-Event-ID": str(seqs[2])}, count=2)
    assert [seq for seq, _, _ in resumed] == seqs[3:5]


def test_auth(daemon: Daemon, tmp_path: Path) -> None:
    register(daemon, make_repo(tmp_path / "repo"))
    first, second = str(spawn(daemon)["id"]), str(spawn(daemon)["id"])
    anonymous = daemon.client.get(f"{API_PREFIX}/sessions", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    other = {"Authorization": f"Bearer {daemon.session_token(second)}"}
    stolen = daemon.post(f"/sessions/{first}/activity", {"state": "active"}, headers=other)
    assert stolen.status_code in (401, 403)
    own = daemon.post(f"/sessions/{second}/activity", {"state": "active"}, headers=other)
    assert own.status_code == 204
    assert daemon.api("GET", "/sessions", headers=other).status_code in (401, 403)
    assert daemon.client.get("/healthz", headers={"Authorization": ""}).status_code == 200


def test_bad_input_changes_nothing(daemon: Daemon, tmp_path: Path) -> None:
    register(daemon, make_repo(tmp_path / "repo"))
    sid = str(spawn(daemon)["id"])
    before = daemon.api("GET", f"/sessions/{sid}").json()
    seen = sse_events(daemon, params={"since": "0"}, count=2)
    cases = [
        (f"/sessions/{sid}/activity", b"{not json", 400),
        (f"/sessions/{sid}/activity", b'{"state": "dancing"}', 400),
        (f"/sessions/{sid}/activity", b'{"state": "active", "extra": 1}', 400),
        (f"/sessions/{sid}/pr", b'{"url": "x", "ci": "purple"}', 400),
        (
            f"/sessions/{sid}/activity",
            b'{"state": "active", "pad": "' + b"x" * (2 << 20) + b'"}',
            413,
        ),
        ("/sessions/nope-9/activity", b'{"state": "active"}', 404),
        ("/sessions/nope-9/kill", b"{}", 404),
    ]
    for path, body, status in cases:
        response = daemon.api("POST", path, content=body)
        assert response.status_code == status, (path, response.text)
        assert set(response.json()["error"]) == {"code", "message"}
    assert daemon.api("GET", f"/sessions/{sid}").json() == before
    # The next change after the rejected requests is the next valid one: they wrote nothing.
    assert daemon.post(f"/sessions/{sid}/activity", {"state": "idle"}).status_code == 204
    (after,) = sse_events(daemon, headers={"Last-Event-ID": str(seen[-1][0])}, count=1)
    assert after[0] == seen[-1][0] + 1
    assert (after[1], after[2]["payload"]["activity"]) == ("session_updated", "idle")


def test_a_second_daemon_on_the_same_data_dir_is_refused(daemon: Daemon) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "orchestrator", "start", "--foreground"],
        cwd=REPO_ROOT,
        env=daemon_env(daemon.data_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode != 0
    assert "already running" in second.stdout + second.stderr
    assert daemon.client.get("/healthz").status_code == 200


def test_the_api_is_not_reachable_on_a_non_loopback_address(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = write_config(data)
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "start", "--foreground", "--config", str(config)],
        cwd=REPO_ROOT,
        env=daemon_env(data, address="0.0.0.0:0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "0.0.0.0" in result.stdout + result.stderr  # noqa: S104


def test_the_cli_drives_the_daemon(daemon: Daemon, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", *args],
            cwd=REPO_ROOT,
            env=daemon_env(daemon.data_dir),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert cli("project", "add", "app", str(repo)).returncode == 0
    spawned = cli("spawn", "app", "--agent", "recorder", "--json")
    assert spawned.returncode == 0, spawned.stderr
    sid = msgspec.json.decode(spawned.stdout)["id"]
    listed = cli("ls", "--json")
    assert [s["id"] for s in msgspec.json.decode(listed.stdout)] == [sid]
    sent = cli("send", sid, "hello agent")
    assert sent.returncode == 0, sent.stderr
    workspace = Path(
        msgspec.json.decode(cli("show", sid, "--json").stdout)["metadata"]["workspacePath"]
    )
    wait_for(
        lambda: "hello agent" in (workspace / "received.txt").read_text(), what="the sent message"
    )
    missing = cli("show", "nope-1")
    assert missing.returncode == 2  # an unknown session is a usage error
    killed = cli("kill", sid, "--json")
    assert killed.returncode == 0, killed.stderr
    body = msgspec.json.decode(killed.stdout)
    # The recorder wrote received.txt into the worktree: uncommitted work is kept.
    assert body["freed"] is False
    assert "uncommitted" in body["detail"]
    assert workspace.is_dir()
    assert body["session"]["status"] == "killed"


def test_start_and_stop_in_the_background(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = write_config(data)
    env = daemon_env(data)
    started = subprocess.run(
        [sys.executable, "-m", "orchestrator", "start", "--config", str(config)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    assert "127.0.0.1:" in started.stdout
    status = subprocess.run(
        [sys.executable, "-m", "orchestrator", "status", "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    stopped = subprocess.run(
        [sys.executable, "-m", "orchestrator", "stop"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert stopped.returncode == 0, stopped.stderr
    assert not (data / "daemon.json").exists()


def test_restart_keeps_sessions(tmp_path: Path) -> None:
    data = tmp_path / "data"
    repo = make_repo(tmp_path / "repo")
    first = start_daemon(data)
    try:
        register(first, repo)
        sid = str(spawn(first)["id"])
    finally:
        assert first.stop() == 0
    second = start_daemon(data)
    try:
        assert second.run.token != first.run.token
        view = second.api("GET", f"/sessions/{sid}").json()
        assert view["lifecycle"]["isAlive"] is True  # the pane outlived the daemon: adopted
    finally:
        assert second.stop() == 0
        kill_tmux(data)
