"""The real daemon keeps its secrets: hook tokens survive SIGTERM and kill -9 restarts and
are rotated only on purpose, no token shows in any process's argv, the data dir is
owner-only under umask 022, and the change stream says when it cannot continue a replay."""

from __future__ import annotations

import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from orchestrator.daemon import WORKTREES_DIR_NAME, tmux_socket_path
from orchestrator.runfile import HOOK_KEY_NAME
from tests.e2e.harness import (
    REPO_ROOT,
    Daemon,
    daemon_env,
    kill_tmux,
    make_repo,
    sse_events,
    start_daemon,
    wait_for,
    write_config,
)
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]


def token_keeper(tokens: Path) -> list[str]:
    """An agent that writes the hook token its environment holds to ``<tokens>/<session>``
    (printf is a shell builtin: the token is in no argv), then reads its pane forever."""
    target = shlex.quote(str(tokens)) + '/"$ORCHESTRATOR_SESSION_ID"'
    script = f'printf %s "$ORCHESTRATOR_HOOK_TOKEN" > {target}.tmp && mv {target}.tmp {target}'
    return ["sh", "-c", f"{script}; exec cat > received.txt"]


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.mkdir()
    return path


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    kill_tmux(path)


def configure(data: Path, tokens: Path, extra: str = "") -> Path:
    return write_config(data, agents={"keeper": token_keeper(tokens)}, extra=extra)


def spawn_keeper(daemon: Daemon, repo: Path, tokens: Path, project: str = "app") -> tuple[str, str]:
    """A session of the token keeper; its id and the hook token its agent was given."""
    if project not in {p["id"] for p in daemon.api("GET", "/projects").json()}:
        response = daemon.post("/projects", {"id": project, "path": str(repo)})
        assert response.status_code == 201, response.text
    body = {"projectId": project, "agent": "keeper", "prompt": "go"}
    response = daemon.post("/sessions", body)
    assert response.status_code == 201, response.text
    sid = str(response.json()["id"])
    return sid, agent_token(tokens, sid)


def agent_token(tokens: Path, sid: str, *, other_than: str = "") -> str:
    path = tokens / sid

    def written() -> bool:
        return path.exists() and path.read_text() not in ("", other_than)

    wait_for(written, what=f"the hook token {sid}'s agent was given")
    return path.read_text()


def report(daemon: Daemon, sid: str, token: str, state: str = "active") -> int:
    hook = {"Authorization": f"Bearer {token}"}
    return daemon.post(f"/sessions/{sid}/activity", {"state": state}, headers=hook).status_code


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=REPO_ROOT,
        env=daemon_env(data),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_adopted_sessions_hook_token_survives_sigterm_and_kill_9(
    data: Path, tokens: Path, tmp_path: Path
) -> None:
    config = configure(data, tokens)
    first = start_daemon(data, config=config)
    try:
        sid, token = spawn_keeper(first, make_repo(tmp_path / "repo"), tokens)
        assert token.startswith(f"{sid}.")
        assert token == first.session_token(sid)
        assert report(first, sid, token) == 204
    finally:
        assert first.stop() == 0
    second = start_daemon(data, config=config)  # after SIGTERM
    try:
        assert second.run.token != first.run.token  # the daemon token is new at every start
        assert second.api("GET", f"/sessions/{sid}").json()["lifecycle"]["isAlive"] is True
        assert report(second, sid, token, "waiting_input") == 204
        assert second.api("GET", f"/sessions/{sid}").json()["status"] == "needs_input"
    finally:
        second.kill_9()
    third = start_daemon(data, config=config)  # after kill -9
    try:
        assert report(third, sid, token, "active") == 204
        assert third.api("GET", f"/sessions/{sid}").json()["status"] == "working"
        forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
        assert report(third, sid, forged) == 401
    finally:
        assert third.stop() == 0


def test_token_rotate_invalidates_hook_tokens_until_the_session_is_restarted(
    data: Path, tokens: Path, tmp_path: Path
) -> None:
    config = configure(data, tokens)
    daemon = start_daemon(data, config=config)
    try:
        sid, token = spawn_keeper(daemon, make_repo(tmp_path / "repo"), tokens)
        rotated = cli(data, "token", "rotate")
        assert rotated.returncode == 0, rotated.stderr
        assert "rotated the hook key" in rotated.stdout
        assert "1 live session(s)" in rotated.stderr
        assert sid in rotated.stderr
        assert report(daemon, sid, token) == 401
    finally:
        assert daemon.stop() == 0
    daemon = start_daemon(data, config=config)  # the rotation was kept
    try:
        assert report(daemon, sid, token) == 401
        assert cli(data, "kill", sid).returncode == 0
        restored = cli(data, "restore", "--fresh", sid)
        assert restored.returncode == 0, restored.stderr
        renewed = agent_token(tokens, sid, other_than=token)
        assert report(daemon, sid, renewed) == 204
    finally:
        assert daemon.stop() == 0


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def process_argvs() -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes()
            except OSError:
                continue  # gone, or not ours to read
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_secrets_stay_private_under_umask_022(data: Path, tokens: Path, tmp_path: Path) -> None:
    daemon = start_daemon(data, config=configure(data, tokens), umask=0o022)
    try:
        sid, token = spawn_keeper(daemon, make_repo(tmp_path / "repo"), tokens)
        assert report(daemon, sid, token) == 204
        # No token in any process's argv: the tmux server keeps the argv of the client that
        # started it, and the agent's environment reached it another way.
        argvs = process_argvs()
        assert argvs  # the scan saw processes
        for secret in (token, daemon.run.token):
            leaking = {pid: argv for pid, argv in argvs.items() if secret.encode() in argv}
            assert leaking == {}
        launch = tmux_socket_path(data).parent / "launch"
        assert list(launch.iterdir()) == []  # the launch script, env and all, is gone
        database = data / "orchestrator.db"
        owner_only = {
            path.name: mode(path)
            for path in (
                database,
                Path(f"{database}-wal"),
                Path(f"{database}-shm"),
                data / "daemon.log",
                data / "daemon.json",
                data / "daemon.lock",
                data / HOOK_KEY_NAME,
            )
        }
        assert owner_only == dict.fromkeys(owner_only, 0o600)
        assert mode(data) == 0o700
        assert mode(data / WORKTREES_DIR_NAME) == 0o700
    finally:
        assert daemon.stop() == 0


def test_a_replay_from_before_a_database_reset_gets_a_resync(
    data: Path, tokens: Path, tmp_path: Path
) -> None:
    config = configure(data, tokens)
    repo = make_repo(tmp_path / "repo")
    daemon = start_daemon(data, config=config)
    try:
        for _ in range(3):
            spawn_keeper(daemon, repo, tokens)
        old_head = sse_events(daemon, params={"since": "0"}, count=6)[-1][0]
    finally:
        assert daemon.stop() == 0
    for suffix in ("", "-wal", "-shm"):
        Path(f"{data / 'orchestrator.db'}{suffix}").unlink(missing_ok=True)
    daemon = start_daemon(data, config=config)
    try:
        # A new project: the old sessions' panes still run, under their old names.
        spawn_keeper(daemon, repo, tokens, project="web")
        first, *rest = sse_events(daemon, headers={"Last-Event-ID": str(old_head)}, count=2)
        assert first[1] == "resync"
        assert first[2]["reason"] == "ahead"
        assert first[2]["lastSeq"] == 0
        assert first[2]["headSeq"] >= 1
        assert rest[0][0] == 1  # then the new log from its start
        listed = cli(data, "events", "--since", str(old_head))
        assert listed.returncode == 0, listed.stderr
        assert "was its database reset?" in listed.stderr
        assert len(listed.stderr.strip().splitlines()) == 1
        assert listed.stdout.split()[0] == "1"
    finally:
        assert daemon.stop() == 0


def test_a_replay_from_trimmed_history_gets_a_resync(
    data: Path, tokens: Path, tmp_path: Path
) -> None:
    daemon = start_daemon(data, config=configure(data, tokens))
    try:
        spawn_keeper(daemon, make_repo(tmp_path / "repo"), tokens)
        spawn_keeper(daemon, tmp_path / "repo", tokens)
        seen = sse_events(daemon, params={"since": "0"}, count=4)
    finally:
        assert daemon.stop() == 0
    # The janitor trims at start: keep only the newest two rows.
    trimmed = configure(data, tokens, extra="retention:\n  changeLogMaxRows: 2\n")
    daemon = start_daemon(data, config=trimmed)
    try:
        head = seen[-1][0]

        def trimmed_by_the_janitor() -> bool:
            first = sse_events(daemon, headers={"Last-Event-ID": "1"}, count=1)[0]
            return first[1] == "resync"

        wait_for(trimmed_by_the_janitor, what="the janitor's trim")
        resync, *_ = sse_events(daemon, headers={"Last-Event-ID": "1"}, count=1)
        body = resync[2]
        assert body["reason"] == "expired"
        assert body["oldestSeq"] > 2
        assert body["lastSeq"] == body["oldestSeq"] - 1
        assert body["headSeq"] >= head
        listed = cli(data, "events", "--json", "--since", "1")
        assert listed.returncode == 0, listed.stderr
        assert f"events 2 to {body['lastSeq']} are no longer kept" in listed.stderr
        printed = [msgspec.json.decode(line)["seq"] for line in listed.stdout.splitlines()]
        assert printed[0] == body["oldestSeq"]
    finally:
        assert daemon.stop() == 0


def test_the_hook_key_is_not_readable_by_others_even_if_left_so(data: Path, tokens: Path) -> None:
    config = configure(data, tokens)
    start_daemon(data, config=config).stop()
    key = data / HOOK_KEY_NAME
    key.chmod(0o644)
    data.chmod(0o755)
    daemon = start_daemon(data, config=config)
    try:
        assert (mode(key), mode(data)) == (0o600, 0o700)
    finally:
        assert daemon.stop() == 0
